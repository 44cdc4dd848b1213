import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, StraitError } from '../shared/errors';
import { loadConfig, redactConfig, validateConfig } from '../shared/config';
import { projectRoot } from '../bench/harness/kafka-runtime';
import { configProblems } from './helpers/config';

const base = () => ({
  clusters: { a: { bootstrap: '127.0.0.1:9092' }, b: { bootstrap: '127.0.0.1:9093', properties: { 'sasl.password': 'hunter2-secret' } } },
  routes: [{ name: 'a-to-b', source: 'a', target: 'b', topics: { include: ['orders.*'] } }],
});

const problems = configProblems;

t.test('every example config in examples/ is valid', async (t) => {
  const dir = join(projectRoot(), 'examples');
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));
  t.ok(files.length >= 2, 'active-passive and active-active examples exist');
  t.ok(files.includes('active-passive.yaml') && files.includes('active-active.yaml'));
  // the examples take their secrets from references: provide them (files under a temp dir stand in for /etc/strait)
  const secrets = mkdtempSync(join(tmpdir(), 'strait-example-secrets-'));
  const env = {
    STRAIT_STANDBY_SASL_PASSWORD: 'example-password',
    STRAIT_REST_TOKEN: 'example-token-0123456789',
    STRAIT_ZK_CREDENTIALS: 'strait:example-zk-password',
  };
  Object.assign(process.env, env);
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    for (const m of text.matchAll(/\$\{file:\/etc\/strait\/secrets\/([^}]+)\}/g)) writeFileSync(join(secrets, m[1]!), 'example-file-secret\n');
    const copy = join(secrets, f);
    writeFileSync(copy, text.replaceAll('${file:/etc/strait/secrets/', `\${file:${secrets}/`));
    const c = loadConfig(copy);
    t.ok(c.routes.length >= 1, `${f}: has routes`);
    t.notMatch(text, /password: (?!\$\{)/, `${f}: passwords are references`);
  }
  const aa = loadConfig(join(dir, 'active-active.yaml'));
  t.same(
    aa.routes.map((r) => `${r.source}->${r.target}:${r.naming.policy}`),
    ['east->west:identity', 'west->east:identity'],
  );
});

t.test('defaults are filled', async (t) => {
  const c = validateConfig(base());
  const r = c.routes[0]!;
  t.equal(r.naming.policy, 'prefix');
  t.equal(r.naming.separator, '.');
  t.equal(r.start, 'earliest');
  t.equal(r.compression, 'source');
  t.same(r.topics.exclude, []);
  t.equal(c.controller.refreshTopicsIntervalMs, 10_000);
  t.equal(c.store.type, 'embedded');
  t.ok(c.worker.threads >= 1, 'threads 0 = one per core');
  t.equal(c.controller.rest.host, '127.0.0.1', 'REST binds to loopback unless configured');
});

t.test('errors name the exact path, the bad value and what is allowed', async (t) => {
  const bad = base() as Record<string, unknown>;
  const routes = bad.routes as Record<string, unknown>[];
  routes.push({ name: 'second', source: 'a', target: 'b', topics: { include: ['ok', '(unclosed'] }, naming: { policy: 'prefx' }, start: 'beginning' });
  const ps = problems(bad);
  const at = (path: string) => ps.find((p) => p.path === path)?.message ?? '';
  t.match(at('routes[1].topics.include[1]'), /'\(unclosed' is not a valid regular expression/);
  t.match(at('routes[1].naming.policy'), /'prefx' is not allowed; allowed: one of prefix, identity/);
  t.match(at('routes[1].start'), /'beginning' is not allowed; allowed: one of earliest, latest/);
});

t.test('unknown keys are rejected with a did-you-mean hint', async (t) => {
  const bad = base() as Record<string, unknown>;
  (bad.routes as Record<string, unknown>[])[0]!.topcs = { include: ['x'] };
  bad.controler = {};
  const ps = problems(bad);
  t.match(ps.find((p) => p.path === 'routes[0].topcs')?.message, /unknown key; did you mean 'topics'\?/);
  t.match(ps.find((p) => p.path === 'controler')?.message, /did you mean 'controller'\?/);
});

t.test('types, missing fields and cross references', async (t) => {
  const bad = base() as Record<string, unknown>;
  const r = (bad.routes as Record<string, unknown>[])[0]!;
  r.target = 'c';
  r.replicationFactor = 'three';
  (bad.clusters as Record<string, Record<string, unknown>>).a!.bootstrap = 'no-port-here';
  let ps = problems(bad);
  t.match(ps.find((p) => p.path === 'routes[0].replicationFactor')?.message, /must be integer, got 'three'/);
  t.match(ps.find((p) => p.path === 'clusters.a.bootstrap')?.message, /'no-port-here' does not match host:port/);
  // cross references are checked once the shape is right
  (bad.clusters as Record<string, Record<string, unknown>>).a!.bootstrap = '127.0.0.1:1';
  r.replicationFactor = 1;
  ps = problems(bad);
  t.match(ps.find((p) => p.path === 'routes[0].target')?.message, /unknown cluster alias 'c'.*defined: a, b/);
  ps = problems({ routes: [] });
  t.match(ps.find((p) => p.path === 'clusters')?.message, /is required/);
  ps = problems({ ...base(), store: { type: 'zookeeper' } });
  t.match(ps.find((p) => p.path === 'store.connect')?.message, /required when store.type is 'zookeeper'/);
  const dup = base();
  dup.routes.push({ ...dup.routes[0]! });
  t.match(problems(dup).find((p) => p.path === 'routes[1].name')?.message, /unique/);
});

t.test('a separator that occurs in an alias is rejected for the prefix policy', async (t) => {
  const c = { clusters: { 'dc.east': { bootstrap: 'h:1' }, west: { bootstrap: 'h:2' } }, routes: [{ name: 'r', source: 'dc.east', target: 'west' }] };
  t.match(problems(c).find((p) => p.path === 'routes[0].naming.separator')?.message, /occurs in the source alias 'dc\.east'/);
  const ok = structuredClone(c) as Record<string, unknown>;
  (ok.routes as Record<string, unknown>[])[0]!.naming = { separator: '_' };
  t.same(problems(ok), []);
});

t.test("a prefix separator is checked against every alias of the deployment, not only the route's two", async (t) => {
  // 'dc.x' is neither end of the route, but a topic named by a route from it ('dc.x.orders') can reach 'a'
  const third = {
    clusters: { a: { bootstrap: 'h:1' }, b: { bootstrap: 'h:2' }, 'dc.x': { bootstrap: 'h:3' } },
    routes: [{ name: 'r', source: 'a', target: 'b' }],
  };
  t.match(problems(third).find((p) => p.path === 'routes[0].naming.separator')?.message, /'\.' occurs in the cluster alias 'dc\.x' \(clusters\.dc\.x\)/);
  // a multi-character separator: no alias contains '--', but 'a---orders' reads as 'a' + '-orders' or 'a-' + 'orders'
  const shadow = {
    clusters: { a: { bootstrap: 'h:1' }, 'a-': { bootstrap: 'h:2' }, b: { bootstrap: 'h:3' } },
    routes: [{ name: 'r', source: 'a', target: 'b', naming: { separator: '--' } }],
  };
  t.match(problems(shadow).find((p) => p.path === 'routes[0].naming.separator')?.message, /aliases 'a' and 'a-' cannot be told apart/);
  // aliases may contain a character of the separator as long as names stay unambiguous
  const dashes = {
    clusters: { 'dc-a': { bootstrap: 'h:1' }, 'dc-b': { bootstrap: 'h:2' } },
    routes: [
      { name: 'r', source: 'dc-a', target: 'dc-b', naming: { separator: '--' } },
      { name: 's', source: 'dc-b', target: 'dc-a', naming: { separator: '--' } },
    ],
  };
  t.same(problems(dashes), []);
});

t.test('route setups that would loop or duplicate are rejected, naming the field', async (t) => {
  const clusters = { a: { bootstrap: 'h:1' }, b: { bootstrap: 'h:2' }, c: { bootstrap: 'h:3' } };
  const route = (source: string, target: string, naming: Record<string, string> = {}, include = ['orders']) => ({
    name: `${source}-${target}`,
    source,
    target,
    topics: { include },
    naming,
  });
  // mixed policies round one cycle: b's identity copy of 'a.orders' comes back to b as 'a.a.orders', and so on
  let ps = problems({ clusters, routes: [route('a', 'b', {}, ['.*']), route('b', 'a', { policy: 'identity' }, ['.*'])] });
  t.match(
    ps.find((p) => p.path === 'routes[1].naming.policy')?.message,
    /'identity' differs from routes\[0\]\.naming\.policy \('prefix'\).*same cycle of clusters \(b, a\)/,
  );
  // the same routes carrying different topics never form a cycle
  t.same(problems({ clusters, routes: [route('a', 'b', {}, ['orders']), route('b', 'a', { policy: 'identity' }, ['payments'])] }), []);
  ps = problems({ clusters, routes: [route('a', 'b', { separator: '_' }), route('b', 'c'), route('c', 'a', { separator: '_' })] });
  t.match(ps.find((p) => p.path === 'routes[1].naming.separator')?.message, /'\.' differs from routes\[0\]\.naming\.separator \('_'\)/);
  // a ring of three with one odd route: reported once, at that route, next to an unrelated separator problem
  ps = problems({
    clusters: { ...clusters, 'dc.x': { bootstrap: 'h:4' } },
    routes: [route('a', 'b', { policy: 'identity' }), route('b', 'c', { policy: 'identity' }), route('c', 'a')],
  });
  t.same(ps.map((p) => p.path).sort(), ['routes[2].naming.policy', 'routes[2].naming.separator']);
  // identity: a pair and a ring are fine, a mesh gives a record two ways into a cluster
  const id = { policy: 'identity' };
  t.same(problems({ clusters, routes: [route('a', 'b', id), route('b', 'a', id)] }), []);
  t.same(problems({ clusters, routes: [route('a', 'b', id), route('b', 'c', id), route('c', 'a', id)] }), []);
  ps = problems({ clusters, routes: [route('a', 'b', id), route('b', 'c', id), route('a', 'c', id)] });
  t.match(ps.find((p) => p.path === 'routes[2].source')?.message, /originate on 'a' would reach 'c' both from 'b' and from 'a'/);
  // a cycle a record enters without passing its origin (b <-> c, fed from a)
  ps = problems({ clusters, routes: [route('a', 'b', id), route('b', 'c', id), route('c', 'b', id)] });
  t.match(ps.find((p) => p.path === 'routes[2].source')?.message, /originate on 'a' would reach 'b' both from 'a' and from 'c'/);
});

t.test('secrets are never printed back', async (t) => {
  const bad = base() as Record<string, unknown>;
  (bad.clusters as Record<string, Record<string, Record<string, unknown>>>).b!.properties!['sasl.password'] = { nested: 'hunter2-secret' };
  let err: unknown;
  try {
    validateConfig(bad);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError);
  t.notMatch((err as Error).message, /hunter2/, 'error text carries no secret');
  t.match((err as Error).message, /clusters\.b\.properties\["sasl\.password"\]/);
  const redacted = JSON.stringify(redactConfig(validateConfig(base())));
  t.notMatch(redacted, /hunter2/);
  t.match(redacted, /<redacted>/);
});

t.test('unreadable and unparsable files get a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-config-'));
  t.throws(() => loadConfig(join(dir, 'missing.yaml')), { code: 'STRAIT_CONFIG_UNREADABLE' });
  t.throws(() => loadConfig(join(dir, 'missing.yaml')), StraitError);
  writeFileSync(join(dir, 'bad.yaml'), 'clusters: [unclosed\n');
  t.throws(() => loadConfig(join(dir, 'bad.yaml')), /is not valid YAML/);
  writeFileSync(join(dir, 'bad.json'), '{"clusters": ');
  t.throws(() => loadConfig(join(dir, 'bad.json')), /is not valid JSON/);
});

t.test("every profile keeps producer batches within Kafka's default max.message.bytes", async (t) => {
  const { PROFILES } = await import('../shared/kafka/client-settings');
  for (const [name, p] of Object.entries(PROFILES)) {
    const batch = Number(p.producer['batch.size'] ?? 1000000); // librdkafka's default
    t.ok(batch <= 1048588, `${name}: batch.size ${batch} <= 1048588 (a larger batch is rejected whole by a default broker)`);
  }
});

t.test('balancing keys: defaults, and bad values named by path', async (t) => {
  const c = validateConfig(base());
  t.equal(c.controller.workerGraceMs, 0, 'grace 0: partitions move at session expiry');
  t.equal(c.controller.balanceTolerance, 0.1);
  t.equal(c.worker.reportIntervalMs, 5000);
  t.match(problems({ ...base(), controller: { workerGraceMs: -1 } }), [{ path: 'controller.workerGraceMs' }]);
  t.match(problems({ ...base(), controller: { balanceTolerance: 2 } }), [{ path: 'controller.balanceTolerance' }]);
  t.equal(validateConfig({ ...base(), controller: { workerGraceMs: 30_000, balanceTolerance: 0.25 } }).controller.workerGraceMs, 30_000);
});

t.test('failure-reporting keys: onGap and health.degradedStatus, defaults and bad values named by path', async (t) => {
  const c = validateConfig(base());
  t.equal(c.routes[0]!.onGap, 'continue', 'offset gaps: go on from the log start by default');
  t.equal(c.health.degradedStatus, 200, '/v1/health answers 200 while degraded by default');
  t.equal(validateConfig({ ...base(), routes: [{ ...base().routes[0]!, onGap: 'stop' }], health: { degradedStatus: 503 } }).routes[0]!.onGap, 'stop');
  const gap = problems({ ...base(), routes: [{ ...base().routes[0]!, onGap: 'skip' }] });
  t.match(gap, [{ path: 'routes[0].onGap', message: /continue.*stop|stop.*continue/ }], 'names the path and the allowed values');
  const status = problems({ ...base(), health: { degradedStatus: 500 } });
  t.match(status, [{ path: 'health.degradedStatus', message: /200.*503/ }]);
});

t.test('delivery keys: at-least-once by default, exactly-once with its transaction sizes, bad values named by path', async (t) => {
  const r = validateConfig(base()).routes[0]!;
  t.equal(r.delivery, 'at-least-once', 'at-least-once unless a route asks for exactly-once');
  t.equal(r.transactionIntervalMs, 500);
  t.equal(r.transactionMaxBytes, 8 * 1024 * 1024);
  const eos = validateConfig({ ...base(), routes: [{ ...base().routes[0]!, delivery: 'exactly-once', transactionIntervalMs: 200 }] }).routes[0]!;
  t.equal(eos.delivery, 'exactly-once');
  t.equal(eos.transactionIntervalMs, 200);
  t.match(problems({ ...base(), routes: [{ ...base().routes[0]!, delivery: 'exactly_once' }] }), [
    { path: 'routes[0].delivery', message: /'exactly_once' is not allowed; allowed: one of at-least-once, exactly-once/ },
  ]);
  t.match(problems({ ...base(), routes: [{ ...base().routes[0]!, transactionIntervalMs: 0 }] }), [{ path: 'routes[0].transactionIntervalMs' }]);
  t.match(problems({ ...base(), routes: [{ ...base().routes[0]!, transactionMaxBytes: 10 }] }), [{ path: 'routes[0].transactionMaxBytes' }]);
  // the transactional producer is strait's: a route cannot name its id or its isolation
  for (const [side, key] of [
    ['producer', 'transactional.id'],
    ['consumer', 'isolation.level'],
  ] as const)
    t.match(problems({ ...base(), routes: [{ ...base().routes[0]!, delivery: 'exactly-once', [side]: { [key]: 'x' } }] }), [
      { path: `routes[0].${side}["${key}"]`, message: /refused/ },
    ]);
});

t.test('a controller/worker fleet takes delivery: exactly-once like strait run (test/integrity/exactly-once.test.ts)', async (t) => {
  const fleet = { ...base(), store: { type: 'zookeeper', connect: '127.0.0.1:1', allowUnauthenticated: true } };
  t.same(problems({ ...fleet, routes: [{ ...base().routes[0]!, delivery: 'exactly-once' }] }), [], 'no problem with an exactly-once route');
  t.equal(validateConfig({ ...fleet, routes: [{ ...base().routes[0]!, delivery: 'exactly-once' }] }).routes[0]!.delivery, 'exactly-once');
});
