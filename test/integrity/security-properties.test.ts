/**
 * Properties and secrets, attacked against real parts: a kinit command and delivery-weakening properties in a config
 * file (`strait config check` refuses them, naming the field) and over the REST API of a real controller on the shared
 * ZooKeeper (400 naming `body.consumer[...]`), with no file the command would have created; a REST body cannot make
 * the controller read its environment; secret references resolve (`strait run` replicates over the SASL listener with
 * a user from `${env:...}` and a password from `${file:...}`, the controller takes its REST token from a reference)
 * and no resolved value appears in any output, log line or REST response; a missing variable names the config path;
 * and `strait config check` on random documents never crashes and never prints a secret.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import Kafka from 'node-rdkafka';
import t from 'tap';
import { stringify } from 'yaml';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import { DEV_SASL_USERS } from '../../bench/harness/local-cluster';
import { bootstrap, createTopic, endOffsets, produce, testClusters, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

// the timeout only matters if a refused config were run: `strait run` would then keep running
const strait = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });

/** The attack a refused property would carry out: GSSAPI with a kinit command of the attacker's. */
const kinitAttack = (marker: string) => ({ 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanism': 'GSSAPI', 'sasl.kerberos.kinit.cmd': `touch ${marker}` });

t.test('control: librdkafka runs a kinit command it is given (what the refusals below prevent)', async (t) => {
  const marker = join(tmpdir(), uniqueName('strait-kinit-control'));
  const producer = new Kafka.Producer({ 'bootstrap.servers': bootstrap('a'), ...kinitAttack(marker), log_level: 0 } as Kafka.ProducerGlobalConfig);
  // the connect ends one way or the other (GSSAPI against this listener fails); the command runs before it does
  const connected = new Promise<void>((res) => producer.connect({ timeout: 10_000 }, () => res()));
  await waitFor('the kinit command ran', () => existsSync(marker), 15_000, 100);
  t.ok(existsSync(marker), 'a client created with these properties ran the command');
  // disconnecting before the connect ended throws in node-rdkafka ("Producer not connected", seen once in CI)
  await connected;
  if (producer.isConnected()) await new Promise<void>((res) => producer.disconnect(() => res()));
  rmSync(marker, { force: true });
});

function fileWith(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'strait-sec-')), name);
  writeFileSync(file, text);
  return file;
}

t.test('config check refuses code-running and delivery-weakening properties, naming the field', async (t) => {
  const marker = join(tmpdir(), uniqueName('strait-kinit-file'));
  const file = writeConfig({
    clusters: { a: { bootstrap: bootstrap('a'), properties: { acks: 0 } }, b: { bootstrap: bootstrap('b') } },
    routes: [
      {
        name: 'r',
        source: 'a',
        target: 'b',
        consumer: { ...kinitAttack(marker), 'plugin.library.paths': '/tmp/evil.so' },
        producer: { 'enable.idempotence': false, 'linger.ms': 5 },
      },
    ],
  });
  const r = strait(['config', 'check', file]);
  t.equal(r.status, 1, 'exits non-zero');
  t.match(r.stderr, /routes\[0\]\.consumer\["sasl\.kerberos\.kinit\.cmd"\]: is refused: it runs or loads code in the strait process/);
  t.match(r.stderr, /routes\[0\]\.consumer\["plugin\.library\.paths"\]: is refused: it runs or loads code .*dlopen/);
  t.match(r.stderr, /routes\[0\]\.producer\["enable\.idempotence"\]: is refused: it weakens what strait guarantees/);
  t.match(r.stderr, /routes\[0\]\.consumer\["security\.protocol"\]: is refused: it is a security\/identity setting/);
  t.match(r.stderr, /clusters\.a\.properties\.acks: is refused: it weakens what strait guarantees \(strait produces with acks=all\)/);
  t.notMatch(r.stderr, /linger/, 'the allowed tuning property is not a problem');
  t.notMatch(r.stderr + r.stdout, new RegExp(marker), 'the command is not echoed');
  t.equal(r.stdout, '', 'nothing printed as a valid config');
  // strait run refuses the same file before any client exists
  const run = strait(['run', '-c', file, '--no-status-line']);
  t.equal(run.status, 1);
  t.match(run.stderr, /routes\[0\]\.consumer\["sasl\.kerberos\.kinit\.cmd"\]/);
  t.notOk(existsSync(marker), 'the kinit command never ran');
});

t.test('REST: forbidden properties and references in a route body are refused; the token can be a reference', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const token = `rest-token-${uniqueName('t').replace(/[^A-Za-z0-9]/g, '')}`;
  process.env.STRAIT_SEC_REST_TOKEN = token;
  const config = writeConfig({
    deployment: uniqueName('secprops'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: 4000, auth: zk.auth },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0, token: '${env:STRAIT_SEC_REST_TOKEN}' } },
    worker: { threads: 1, commitIntervalMs: 300 },
  });
  const topic = uniqueName('sec-rest');
  await createTopic(bootstrap('a'), topic, 1);
  await produce(
    bootstrap('a'),
    topic,
    Array.from({ length: 20 }, (_, i) => ({ partition: 0, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) })),
  );
  const controller = new StraitProcess(config, 'controller');
  // a live worker: a route the API accepted would run on it (the kinit command with it)
  const worker = new StraitProcess(config, 'worker');
  const base = await controller.restUrl;
  const call = async (method: string, path: string, body?: unknown, auth = token) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${auth}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      body: JSON.parse(text) as { code?: string; field?: string; message?: string; problems?: { path: string; message: string }[] },
    };
  };
  await waitFor('the controller leads', async () => (await call('GET', '/v1/health')).text.includes('"isLeader":true'), 30_000, 200);
  t.equal(
    (await call('GET', '/v1/health', undefined, 'wrong-token-0123456789')).status,
    401,
    'a wrong token is refused: the reference resolved to the real one',
  );

  const marker = join(tmpdir(), uniqueName('strait-kinit-rest'));
  const kinit = await call('PUT', '/v1/routes/x', {
    source: 'a',
    target: 'b',
    topics: { include: [topic] },
    consumer: { 'sasl.kerberos.kinit.cmd': `touch ${marker}` },
  });
  const full = await call('PUT', '/v1/routes/x', { source: 'a', target: 'b', topics: { include: [topic] }, consumer: kinitAttack(marker) });
  t.equal(full.status, 400);
  t.same((full.body.problems ?? []).map((p) => p.path).sort(), [
    'body.consumer["sasl.kerberos.kinit.cmd"]',
    'body.consumer["sasl.mechanism"]',
    'body.consumer["security.protocol"]',
  ]);
  t.equal(kinit.status, 400);
  t.equal(kinit.body.code, 'STRAIT_INVALID_ROUTE');
  t.equal(kinit.body.field, 'body.consumer["sasl.kerberos.kinit.cmd"]', 'names the field');
  t.match(kinit.body.message, /runs or loads code in the strait process/, 'says why');
  t.notMatch(kinit.text, new RegExp(marker), 'the command is not echoed');

  const weak = await call('PUT', '/v1/routes/x', {
    source: 'a',
    target: 'b',
    producer: { acks: 0, 'message.timeout.ms': 1000 },
    consumer: { 'isolation.level': 'read_uncommitted', 'fetch.max.byte': 1 },
  });
  t.equal(weak.status, 400);
  const paths = (weak.body.problems ?? []).map((p) => p.path).sort();
  t.same(paths, ['body.consumer["fetch.max.byte"]', 'body.consumer["isolation.level"]', 'body.producer.acks', 'body.producer["message.timeout.ms"]']);
  t.match(weak.body.message, /body\.consumer\["fetch\.max\.byte"\]: is not an allowed tuning property; did you mean 'fetch\.max\.bytes'/);

  const probe = await call('PUT', '/v1/routes/x', { source: 'a', target: 'b', topics: { include: ['${env:STRAIT_SEC_REST_TOKEN}', '${file:/etc/hostname}'] } });
  t.equal(probe.status, 400, 'a reference in a REST body is refused, never resolved');
  t.equal(probe.body.field, 'body.topics.include[0]');
  t.notOk(probe.text.includes(token), "the controller's environment does not leak into the response");

  const ok = await call('PUT', '/v1/routes/x', {
    source: 'a',
    target: 'b',
    topics: { include: [topic] },
    producer: { 'linger.ms': 7 },
    consumer: { 'fetch.min.bytes': 1, 'fetch.wait.max.ms': 50 },
  });
  t.equal(ok.status, 201, 'a route with tuning properties only is accepted');
  await waitFor(
    'the accepted route replicated on the worker',
    async () => {
      try {
        return (await endOffsets(bootstrap('b'), `a.${topic}`, 1))[0] === 20;
      } catch {
        return false;
      }
    },
    60_000,
    300,
  );
  t.pass('the worker ran the accepted route (20 of 20 records)');
  t.notOk(existsSync(marker), 'the kinit command never ran');
  t.equal(await worker.stop(), 0);
  t.equal(await controller.stop(), 0);
  t.notOk(worker.output.includes(token), 'the token is in no worker log line');
  t.notOk(controller.output.includes(token), 'the token is in no log line');
  t.match(controller.output, /\$\{env:STRAIT_SEC_REST_TOKEN\}/, 'the startup log shows the reference');
});

t.test('secret references: a SASL user from ${env:...} and password from ${file:...} replicate; no value in any output', async (t) => {
  const a = testClusters().clusters.a!;
  if (!a.saslBootstrap) throw new Error('test cluster a has no SASL listener');
  const topic = uniqueName('sec-ref');
  await createTopic(bootstrap('a'), topic, 2);
  await produce(
    bootstrap('a'),
    topic,
    Array.from({ length: 200 }, (_, i) => ({ partition: i % 2, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) })),
  );
  const password = DEV_SASL_USERS.admin!;
  const passwordFile = fileWith('sasl-password', `${password}\n`);
  process.env.STRAIT_SEC_SASL_USER = 'admin';
  const cluster = {
    bootstrap: a.saslBootstrap,
    properties: {
      'security.protocol': 'SASL_PLAINTEXT',
      'sasl.mechanism': 'PLAIN',
      'sasl.username': '${env:STRAIT_SEC_SASL_USER}',
      'sasl.password': `\${file:${passwordFile}}`,
    },
  };
  const file = writeConfig({
    clusters: { x: cluster, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'sasl', source: 'x', target: 'b', topics: { include: [topic] } }],
    controller: { refreshTopicsIntervalMs: 1000 },
  });

  const check = strait(['config', 'check', file]);
  t.equal(check.status, 0, check.stderr);
  const printed = JSON.parse(check.stdout) as { clusters: { x: { properties: Record<string, string> } } };
  t.equal(printed.clusters.x.properties['sasl.username'], '${env:STRAIT_SEC_SASL_USER}', 'config check prints the reference, even under a non-secret key');
  t.equal(printed.clusters.x.properties['sasl.password'], `\${file:${passwordFile}}`);
  t.notOk(check.stdout.includes(password) || check.stderr.includes(password));

  const run = new StraitProcess(file);
  await waitFor(
    'all 200 records replicated from the SASL listener',
    async () => {
      try {
        const ends = await endOffsets(bootstrap('b'), `x.${topic}`, 2);
        return ends[0]! + ends[1]! === 200;
      } catch {
        return false;
      }
    },
    90_000,
    500,
  );
  t.pass('replicated 200 of 200 records with credentials from references');
  const responses = [JSON.stringify(await run.status()), await run.metrics()].join('\n');
  t.equal(await run.stop(), 0);
  for (const [what, text] of [
    ['output and logs', run.output],
    ['REST and metrics responses', responses],
  ] as const) {
    t.notOk(text.includes(password), `the password is not in the ${what}`);
  }
  t.notMatch(run.output, /"sasl\.username":"admin"/, 'the user from a reference is logged as its reference');
  t.match(run.output, /"sasl\.username":"\$\{env:STRAIT_SEC_SASL_USER\}"/);
});

t.test('a missing variable or unreadable file names the config path and the reference', async (t) => {
  delete process.env.STRAIT_SEC_MISSING;
  const file = writeConfig({
    clusters: {
      a: { bootstrap: bootstrap('a'), properties: { 'sasl.password': '${env:STRAIT_SEC_MISSING}' } },
      b: { bootstrap: bootstrap('b'), properties: { 'ssl.key.password': '${file:/nonexistent/strait/secret}' } },
    },
    routes: [{ name: 'r', source: 'a', target: 'b' }],
  });
  for (const args of [
    ['config', 'check', file],
    ['run', '-c', file, '--no-status-line'],
  ]) {
    const r = strait(args);
    t.equal(r.status, 1, `${args[0]}: exits 1`);
    t.match(r.stderr, /clusters\.a\.properties\["sasl\.password"\]: \$\{env:STRAIT_SEC_MISSING\}: environment variable STRAIT_SEC_MISSING is not set/);
    t.match(r.stderr, /clusters\.b\.properties\["ssl\.key\.password"\]: \$\{file:\/nonexistent\/strait\/secret\}: the file cannot be read \(ENOENT\)/);
  }
});

t.test('fuzz: config check on random documents never crashes and never prints a secret', async (t) => {
  const secret = `fz-cli-secret-${uniqueName('s').replace(/[^A-Za-z0-9]/g, '')}`;
  const secretFile = fileWith('secret', `${secret}\n`);
  const ref = fc.constantFrom('${env:STRAIT_SEC_FZ}', `\${file:${secretFile}}`, '${env:STRAIT_SEC_FZ_UNSET}', 'pre-${env:STRAIT_SEC_FZ}');
  const value = fc.oneof(ref, fc.string({ maxLength: 10 }), fc.integer(), fc.boolean());
  const props = fc.dictionary(fc.constantFrom('sasl.password', 'acks', 'linger.ms', 'sasl.kerberos.kinit.cmd', 'fetch.min.bytes', 'client.id'), value, {
    maxKeys: 2,
  });
  const clusterProps = fc.dictionary(
    fc.constantFrom('sasl.password', 'sasl.username', 'sasl.kerberos.kinit.cmd', 'ssl.key.password', 'acks'),
    fc.oneof(ref, fc.string({ maxLength: 10 })),
    { maxKeys: 3 },
  );
  const doc = fc.record(
    {
      deployment: fc.oneof(fc.constant('d'), ref),
      clusters: fc.record({
        a: fc.record({ bootstrap: fc.oneof(fc.constant('h:1'), ref), properties: clusterProps }),
        b: fc.record({ bootstrap: fc.constant('h:2'), properties: clusterProps }),
      }),
      routes: fc.array(
        fc.record({
          name: fc.constantFrom('r', '${env:STRAIT_SEC_FZ}'),
          source: fc.constant('a'),
          target: fc.constantFrom('a', 'b'),
          producer: props,
          consumer: props,
        }),
        { maxLength: 1 },
      ),
      controller: fc.record({ rest: fc.record({ token: ref }, { requiredKeys: [] }) }),
      store: fc.record({ path: fc.oneof(fc.constant('/tmp/strait-fz-store'), ref) }, { requiredKeys: [] }),
    },
    { requiredKeys: ['clusters'] },
  );
  // each check is a process start (seconds on a busy 2-core machine): a few random documents plus one valid
  // document full of references, so the printed (redacted) config is checked too
  const valid = {
    clusters: {
      a: { bootstrap: 'h:1', properties: { 'sasl.username': '${env:STRAIT_SEC_FZ}', 'sasl.password': `\${file:${secretFile}}` } },
      b: { bootstrap: 'h:2' },
    },
    routes: [{ name: 'r', source: 'a', target: 'b', producer: { 'linger.ms': 5 } }],
    controller: { rest: { token: 'pre-${env:STRAIT_SEC_FZ}' } },
  };
  const samples = [valid, ...fc.sample(doc, { numRuns: 9, seed: 14 })];
  const codes = new Map<number | null, number>();
  for (const d of samples) {
    const file = fileWith('fuzz.yaml', stringify(d));
    const r = strait(['config', 'check', file], { STRAIT_SEC_FZ: secret });
    codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
    const all = r.stdout + r.stderr;
    if (r.status !== 0 && r.status !== 1) t.fail(`exit ${r.status}: ${all}`);
    if (/unexpected error|TypeError|RangeError/.test(all)) t.fail(`crashed: ${all}`);
    if (all.includes(secret)) t.fail(`printed the secret: ${all}`);
  }
  t.comment(`exit codes: ${JSON.stringify([...codes])}`);
  t.ok((codes.get(0) ?? 0) > 0 && (codes.get(1) ?? 0) > 0, 'both valid and invalid documents were checked');
});
