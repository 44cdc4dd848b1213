/**
 * Secret references in the config: `${env:NAME}` and `${file:/path}` resolve at validation, problems name the path and
 * the reference (never a value), redacted output shows the reference wherever it was (even under a non-secret key),
 * and the logger scrubs resolved values from every line. Plus a fast-check fuzz of validation with random documents,
 * random client property maps and random references: only ConfigError is ever thrown, no secret is ever in its text.
 */
import t from 'tap';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { redactConfig, shownValue, validateConfig } from '../shared/config';
import { ConfigError } from '../shared/errors';
import { createLogger } from '../shared/logger';
import { TUNING_PROPERTIES } from '../shared/client-properties';
import { configProblems } from './helpers/config';

const dir = mkdtempSync(join(tmpdir(), 'strait-refs-'));
const secretFile = join(dir, 'password');
writeFileSync(secretFile, '\n  file-secret-9f3a1c  \n');
process.env.STRAIT_TEST_REF_USER = 'env-user-7d2e';
process.env.STRAIT_TEST_REF_TOKEN = 'env-token-0123456789abcdef';

const doc = () => ({
  deployment: 'refs',
  clusters: {
    a: { bootstrap: '127.0.0.1:9092' },
    b: {
      bootstrap: '127.0.0.1:9093',
      properties: { 'sasl.username': '${env:STRAIT_TEST_REF_USER}', 'sasl.password': `\${file:${secretFile}}`, 'sasl.mechanism': 'PLAIN' },
    },
  },
  routes: [{ name: 'r', source: 'a', target: 'b' }],
  controller: { rest: { token: '${env:STRAIT_TEST_REF_TOKEN}' } },
});

const problemsOf = configProblems;

t.test('env and file references resolve; file contents are trimmed', async (t) => {
  const c = validateConfig(doc());
  t.equal(c.clusters.b!.properties['sasl.username'], 'env-user-7d2e');
  t.equal(c.clusters.b!.properties['sasl.password'], 'file-secret-9f3a1c');
  t.equal(c.controller.rest.token, 'env-token-0123456789abcdef', 'the REST token can be a reference');
});

t.test('redacted output shows references, not values, under any key', async (t) => {
  const text = JSON.stringify(redactConfig(validateConfig(doc())));
  for (const v of ['env-user-7d2e', 'file-secret-9f3a1c', 'env-token-0123456789abcdef']) t.notOk(text.includes(v), `no ${v}`);
  const out = redactConfig(validateConfig(doc()));
  t.equal(out.clusters.b!.properties['sasl.username'], '${env:STRAIT_TEST_REF_USER}', 'a non-secret-looking key from a reference shows the reference');
  t.equal(out.clusters.b!.properties['sasl.password'], `\${file:${secretFile}}`);
  t.equal(out.controller.rest.token, '${env:STRAIT_TEST_REF_TOKEN}');
  t.equal(out.clusters.b!.properties['sasl.mechanism'], 'PLAIN', 'literal non-secrets stay');
});

t.test('messages show a referenced value as its reference (the user in an authentication error)', async (t) => {
  const c = validateConfig(doc());
  t.equal(shownValue(c, ['clusters', 'b', 'properties', 'sasl.username'], c.clusters.b!.properties['sasl.username']), '${env:STRAIT_TEST_REF_USER}');
  t.equal(shownValue(c, ['clusters', 'b', 'properties', 'sasl.mechanism'], 'PLAIN'), 'PLAIN', 'a literal is shown as is');
});

t.test('missing, empty, unreadable and malformed references name the path and the reference', async (t) => {
  const bad = doc();
  delete process.env.STRAIT_TEST_REF_MISSING;
  process.env.STRAIT_TEST_REF_EMPTY = '  ';
  mkdirSync(join(dir, 'adir'), { recursive: true });
  (bad.clusters.b.properties as Record<string, string>)['sasl.username'] = '${env:STRAIT_TEST_REF_MISSING}';
  (bad.clusters.b.properties as Record<string, string>)['sasl.password'] = `\${file:${join(dir, 'nope')}}`;
  (bad.clusters.a as Record<string, unknown>).properties = {
    'ssl.key.password': '${env:STRAIT_TEST_REF_EMPTY}',
    'ssl.ca.pem': `\${file:${join(dir, 'adir')}}`,
    'ssl.key.pem': '${file:relative/path}',
    'sasl.oauthbearer.config': '${env:1BAD}',
    'ssl.certificate.pem': '${env:UNCLOSED',
  };
  const ps = problemsOf(bad);
  const at = (p: string) => ps.find((x) => x.path === p)?.message ?? '';
  t.match(at('clusters.b.properties["sasl.username"]'), /^\$\{env:STRAIT_TEST_REF_MISSING\}: environment variable STRAIT_TEST_REF_MISSING is not set$/);
  t.match(at('clusters.b.properties["sasl.password"]'), /\$\{file:.*nope\}: the file cannot be read \(ENOENT\)/);
  t.match(at('clusters.a.properties["ssl.key.password"]'), /environment variable STRAIT_TEST_REF_EMPTY is empty/);
  t.match(at('clusters.a.properties["ssl.ca.pem"]'), /is not a regular file/);
  t.match(at('clusters.a.properties["ssl.key.pem"]'), /needs an absolute path/);
  t.match(at('clusters.a.properties["sasl.oauthbearer.config"]'), /'1BAD' is not an environment variable name/);
  t.match(at('clusters.a.properties["ssl.certificate.pem"]'), /unterminated reference/);
  t.notMatch(JSON.stringify(ps), /env-token-0123456789abcdef/, 'the resolved token of the same document is not in the problems');
});

t.test('references are refused inside routes (config file and REST bodies)', async (t) => {
  const ps = problemsOf({ ...doc(), routes: [{ name: 'r', source: 'a', target: 'b', topics: { include: [`\${file:/etc/passwd}`] } }] });
  t.equal(ps[0]?.path, 'routes[0].topics.include[0]');
  t.match(ps[0]?.message, /a reference .* is not allowed in a route/);
});

t.test('a referenced value that fails validation is shown as the reference', async (t) => {
  process.env.STRAIT_TEST_REF_SHORT = 'short-tok9';
  const ps = problemsOf({ ...doc(), controller: { rest: { token: '${env:STRAIT_TEST_REF_SHORT}' } }, store: { connect: '${env:STRAIT_TEST_REF_USER}' } });
  const text = JSON.stringify(ps);
  t.match(ps.find((p) => p.path === 'controller.rest.token')?.message, /\$\{env:STRAIT_TEST_REF_SHORT\}/);
  t.match(ps.find((p) => p.path === 'store.connect')?.message, /the value of \$\{env:STRAIT_TEST_REF_USER\} does not match/);
  t.notOk(text.includes('short-tok9') || text.includes('env-user-7d2e'), 'no resolved value in any problem');
});

t.test('the logger scrubs resolved values from every line', async (t) => {
  validateConfig(doc());
  let written = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.toString();
      cb();
    },
  });
  const log = createLogger('refs-test', 'info', sink);
  log.info({ detail: 'connecting as env-user-7d2e with file-secret-9f3a1c' }, 'token env-token-0123456789abcdef');
  await new Promise((r) => setImmediate(r));
  t.match(written, /connecting as <redacted> with <redacted>/);
  t.notMatch(written, /file-secret|env-user-7d2e|env-token/);
  t.doesNotThrow(() => JSON.parse(written), 'the line is still JSON');
});

// ---- fuzz ----

const SECRET_PREFIX = 'fz-secret-';
const allowed = Object.keys(TUNING_PROPERTIES);
const propName = fc.oneof(
  fc.constantFrom(...allowed, 'acks', 'sasl.kerberos.kinit.cmd', 'plugin.library.paths', 'group.id', 'ssl.key.location', 'sasl.password', 'linger.msec'),
  fc.string({ maxLength: 30 }),
);
const scalar = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const envName = fc.constantFrom('STRAIT_FZ_A', 'STRAIT_FZ_B', 'STRAIT_FZ_C');
const reference = fc.oneof(
  envName.map((n) => `\${env:${n}}`),
  fc.constantFrom(
    `\${file:${secretFile}}`,
    `\${file:${dir}/missing}`,
    '${file:relative}',
    '${file:/dev/null}',
    '${env:}',
    '${env:A',
    'x${env:STRAIT_TEST_REF_USER}y',
  ),
  fc.string({ maxLength: 12 }).map((s) => `\${env:${s}}`),
);
const stringish = fc.oneof(scalar, reference);
const props = fc.dictionary(propName, stringish, { maxKeys: 6 });
const route = fc.record(
  {
    name: fc.oneof(fc.constant('r'), fc.string({ maxLength: 10 }), reference),
    source: fc.constantFrom('a', 'b', 'zz'),
    target: fc.constantFrom('a', 'b', '${env:STRAIT_TEST_REF_USER}'),
    consumer: props,
    producer: props,
    topics: fc.record(
      { include: fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.constant('(a*)*'), fc.constant('(')), { maxLength: 3 }) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['name'] },
);
const cluster = fc.record({ bootstrap: fc.oneof(fc.constant('h:1'), stringish), properties: props }, { requiredKeys: [] });
const document = fc.oneof(
  fc.record(
    {
      deployment: stringish,
      clusters: fc.dictionary(fc.constantFrom('a', 'b', 'c.d', 'x y'), cluster, { maxKeys: 3 }),
      routes: fc.array(route, { maxLength: 3 }),
      controller: fc.record({ rest: fc.record({ token: stringish, port: fc.oneof(fc.integer(), stringish) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
      store: fc.record({ type: fc.constantFrom('embedded', 'zookeeper', 'x'), connect: stringish }, { requiredKeys: [] }),
      extra: scalar,
    },
    { requiredKeys: [] },
  ),
  fc.anything(),
);
// mostly valid documents, so the redaction of accepted configs is exercised too
const resolvable = fc.constantFrom('${env:STRAIT_FZ_A}', '${env:STRAIT_FZ_B}', '${env:STRAIT_FZ_C}', `\${file:${secretFile}}`, 'u-${env:STRAIT_FZ_A}-v');
const nearlyValid = fc.record(
  {
    deployment: fc.oneof(fc.constant('d'), resolvable),
    clusters: fc.record({
      a: fc.record({
        bootstrap: fc.oneof(fc.constant('h:1'), resolvable),
        properties: fc.dictionary(
          fc.constantFrom(
            'sasl.username',
            'sasl.password',
            'ssl.key.password',
            'security.protocol',
            'ssl.ca.pem',
            'sasl.oauthbearer.client.id',
            'linger.ms',
            'acks',
          ),
          fc.oneof(resolvable, fc.string({ maxLength: 8 })),
          { maxKeys: 5 },
        ),
      }),
      b: fc.constant({ bootstrap: 'h:2' }),
    }),
    routes: fc
      .constant([{ name: 'r', source: 'a', target: 'b' }])
      .chain((rs) =>
        fc
          .record({ linger: fc.integer({ min: -2, max: 1000 }), batch: fc.integer({ min: 0, max: 100000 }) })
          .map(({ linger, batch }) => rs.map((r) => ({ ...r, producer: { 'linger.ms': linger, 'batch.size': batch } }))),
      ),
    controller: fc.record({ rest: fc.record({ token: resolvable }, { requiredKeys: [] }) }),
    store: fc.record({ path: fc.oneof(fc.constant('/tmp/x'), resolvable) }, { requiredKeys: [] }),
  },
  { requiredKeys: ['clusters'] },
);
const secretValue = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{6,16}$/), fc.string({ minLength: 6, maxLength: 16 }));

t.test('fuzz: random documents only ever raise ConfigError, and never show a resolved value', async (t) => {
  let valid = 0;
  let refused = 0;
  fc.assert(
    fc.property(
      fc.oneof(document, nearlyValid),
      fc.record({ STRAIT_FZ_A: secretValue, STRAIT_FZ_B: secretValue, STRAIT_FZ_C: secretValue }, { requiredKeys: [] }),
      (d, env: Record<string, string>) => {
        // each run's environment holds secrets with a recognisable prefix; one of them must never be printed
        const names = Object.keys(env);
        for (const n of names) process.env[n] = `${SECRET_PREFIX}${env[n]}`;
        try {
          const c = validateConfig(d);
          valid++;
          const shown = JSON.stringify(redactConfig(c));
          if (shown.includes(SECRET_PREFIX) || shown.includes('file-secret-9f3a1c') || shown.includes('env-user-7d2e'))
            throw new Error(`redacted config shows a secret: ${shown}`);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          refused++;
          const text = `${e.message}\n${JSON.stringify(e.problems)}`;
          if (text.includes(SECRET_PREFIX) || text.includes('file-secret-9f3a1c') || text.includes('env-user-7d2e'))
            throw new Error(`error shows a secret: ${text}`);
        } finally {
          for (const n of names) delete process.env[n];
        }
      },
    ),
    { numRuns: 3000 },
  );
  t.ok(refused > 0, `${refused} documents refused`);
  t.ok(valid > 100, `${valid} documents valid (their redacted form checked)`);
  t.comment(`${valid} valid, ${refused} refused`);
});
