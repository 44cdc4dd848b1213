/**
 * Security of the ZooKeeper store (issue 14, "ZooKeeper" and "Proof"), against the real test ZooKeeper and Kafka:
 * - with store.auth, every node of a running deployment carries an ACL granting ALL to strait's digest identity and
 *   nothing to anyone else; a client without credentials, or with wrong ones, is refused (NOAUTH) on every read and
 *   write of every node (get, set, getChildren, create below, delete, setACL), while strait works end to end;
 * - a tree made without auth (an older deployment) is closed when a store with auth connects, and a credential
 *   rotation through store.auth.alsoGrant hands the tree over without a moment nobody can read it;
 * - a forged route inside an assignment record (written with valid credentials: a compromised or stale writer),
 *   whose consumer properties would run `touch` through librdkafka's kinit command, is refused by a real worker:
 *   error state reported, the route's partitions not started, the file never made;
 * - config check refuses a ZooKeeper store without auth unless allowUnauthenticated, and never shows the password.
 */
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pack, unpack } from 'msgpackr';
import Kafka from 'node-rdkafka';
import t from 'tap';
import ZooKeeper from 'zookeeper';
import { redactConfig, validateConfig, validateRoute } from '../../shared/config';
import { ZooKeeperStore } from '../../shared/store/zookeeper/api';
import { digestId } from '../../shared/store/zookeeper/options';
import { bootstrap, createTopic, produce, totalRecords, uniqueName } from '../helpers/kafka';
import { partitionEvents } from '../helpers/fleet';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';
import { rawZooKeeper, testZooKeeper } from '../helpers/zookeeper';
import { configProblems } from '../helpers/config';

t.teardown(stopAll);

const C = ZooKeeper.constants;
const SESSION_MS = 4000;

type Tap = Pick<typeof t, 'teardown'>;

async function client(t: Tap, credentials?: string): Promise<ZooKeeper> {
  const zk = await rawZooKeeper(testZooKeeper().connect, credentials);
  t.teardown(() => void zk.close());
  return zk;
}

/** The numeric code of one call of the binding's callback API (its promise API folds codes into strings). */
function rc(start: (done: (code: number, ...rest: unknown[]) => void) => unknown): Promise<{ code: number; rest: unknown[] }> {
  return new Promise((res) => {
    const r = start((code, ...rest) => res({ code, rest }));
    if (typeof r === 'number' && r !== C.ZOK) res({ code: r, rest: [] });
  });
}

function codeName(code: number): string {
  return Object.entries(C).find(([k, v]) => /^Z[A-Z]+$/.test(k) && v === code)?.[0] ?? String(code);
}

/** Every node from `path` down, as the authenticated client sees the tree. */
async function tree(zk: ZooKeeper, path: string): Promise<string[]> {
  const kids = await rc((done) => zk.a_get_children(path, false, done));
  if (kids.code !== C.ZOK) throw new Error(`get children ${path}: ${codeName(kids.code)}`);
  const out = [path];
  for (const k of kids.rest[1] as string[]) out.push(...(await tree(zk, `${path}/${k}`)));
  return out;
}

async function aclOf(zk: ZooKeeper, path: string): Promise<{ perms: number; scheme: string; auth: string }[]> {
  const r = await rc((done) => zk.a_get_acl(path, done));
  if (r.code !== C.ZOK) throw new Error(`get ACL ${path}: ${codeName(r.code)}`);
  return (r.rest[1] as { perms: number; scheme: string; auth: string }[]).map((a) => ({ perms: a.perms, scheme: a.scheme, auth: a.auth }));
}

/**
 * Tries every read and write on `path` with `zk`; returns the operations that were NOT refused with NOAUTH
 * (`op path: CODE`), so an empty list means "refused everywhere".
 */
async function notRefused(zk: ZooKeeper, path: string): Promise<string[]> {
  const ops: [string, (done: (code: number) => void) => unknown][] = [
    ['get', (d) => zk.a_get(path, false, d)],
    ['getChildren', (d) => zk.a_get_children(path, false, d)],
    ['set', (d) => zk.a_set(path, Buffer.from('forged'), -1, d)],
    ['create child', (d) => zk.a_create(`${path}/forged`, Buffer.from('forged'), C.ZOO_PERSISTENT, d)],
    // getACL is not tried: the binding crashes on a refused one (its callback frees a null ACL list)
    ['setACL', (d) => zk.a_set_acl(path, -1, [{ perms: C.ZOO_PERM_ALL, scheme: 'world', auth: 'anyone' }], d)],
    ['delete', (d) => zk.a_delete_(path, -1, d)],
  ];
  const out: string[] = [];
  for (const [op, start] of ops) {
    const r = await rc(start);
    if (r.code !== C.ZNOAUTH) out.push(`${op} ${path}: ${codeName(r.code)}`);
  }
  return out;
}

t.test('config check: a ZooKeeper store needs store.auth or an explicit allowUnauthenticated; the password is never shown', async (t) => {
  const base = { clusters: { a: { bootstrap: 'x:1' }, b: { bootstrap: 'y:1' } }, routes: [{ name: 'r', source: 'a', target: 'b' }] };
  const problems = configProblems;
  const none = problems({ ...base, store: { type: 'zookeeper', connect: 'z:2181' } });
  t.match(none, [{ path: 'store.auth', message: /required when store.type is 'zookeeper'.*allowUnauthenticated/ }]);
  t.same(problems({ ...base, store: { type: 'zookeeper', connect: 'z:2181', allowUnauthenticated: true } }), [], 'an explicit opt-out is accepted');
  t.same(problems({ ...base, store: { type: 'embedded' } }), [], 'the embedded store needs no auth');
  const secret = 'pa55:word-not-to-show';
  const withAuth = { ...base, store: { type: 'zookeeper', connect: 'z:2181', auth: { scheme: 'digest', credentials: `strait:${secret}` } } };
  const config = validateConfig(withAuth);
  t.same(config.store.auth, { scheme: 'digest', credentials: `strait:${secret}`, alsoGrant: [] });
  const shown = JSON.stringify(redactConfig(config));
  t.notOk(shown.includes(secret), 'redactConfig hides the password');
  t.ok(shown.includes('strait:<redacted>'), 'and keeps the user name');
  const both = problems({ ...withAuth, store: { ...withAuth.store, allowUnauthenticated: true } });
  t.match(both, [{ path: 'store.allowUnauthenticated' }]);
  const bad = [
    problems({ ...base, store: { type: 'zookeeper', connect: 'z:2181', auth: { scheme: 'sasl', credentials: `strait:${secret}` } } }),
    problems({ ...base, store: { type: 'zookeeper', connect: 'z:2181', auth: { scheme: 'digest', credentials: `no-colon-${secret.replace(':', '')}` } } }),
    problems({
      ...base,
      store: { type: 'zookeeper', connect: 'z:2181', auth: { scheme: 'digest', credentials: `strait:${secret}`, alsoGrant: [`old:${secret}`] } },
    }),
  ];
  t.match(bad[0], [{ path: 'store.auth.scheme' }]);
  t.match(bad[1], [{ path: 'store.auth.credentials' }]);
  t.match(bad[2], [{ path: 'store.auth.alsoGrant[0]' }]);
  for (const ps of bad) t.notOk(JSON.stringify(ps).includes(secret.split(':')[1]!), `no secret in ${JSON.stringify(ps)}`);
});

t.test('an open tree (made without auth) is closed when a store with auth connects; rotation through alsoGrant', async (t) => {
  const { connect } = testZooKeeper();
  // a root of its own: the shared /strait root is sealed to the harness identity
  const root = `/${uniqueName('legacy')}`;
  const deployment = 'd';
  const base = `${root}/${deployment}`;
  const legacy = await ZooKeeperStore.connect({ connect, root, deployment, sessionTimeoutMs: SESSION_MS });
  await legacy.writeAssignment('w1', [{ route: 'r', topic: 't', partition: 0, targetTopic: 'a.t', compression: 'lz4', epoch: 1 }]);
  await legacy.commitOffsets('r', [{ topic: 't', partition: 0, offset: 5, epoch: 1 }]);
  await legacy.addManagedTopic('r', 'a.t');
  await legacy.setPaused('r', true);
  await legacy.close();
  const anon = await client(t);
  t.equal(codeName((await rc((done) => anon.a_get(`${base}/offsets/r/t/0`, false, done))).code), 'ZOK', 'before: the legacy tree is open to anyone');

  const old = `old-${Date.now()}:first-password`;
  const next = `new-${Date.now()}:second-password`;
  // 1. the old identity seals the tree and grants the new one as well (a rolling restart with alsoGrant added)
  const s1 = await ZooKeeperStore.connect({
    connect,
    root,
    deployment,
    sessionTimeoutMs: SESSION_MS,
    auth: { scheme: 'digest', credentials: old, alsoGrant: [digestId(next)] },
  });
  t.ok(s1.stats.aclsReconciled > 0, `${s1.stats.aclsReconciled} nodes got their ACL set`);
  await s1.commitOffsets('r', [{ topic: 't', partition: 1, offset: 7, epoch: 1 }]);
  await s1.close();
  const asOld = await client(t, old);
  const asNew = await client(t, next);
  const nodes = await tree(asOld, root);
  t.ok(nodes.includes(`${base}/offsets/r/t/1`) && nodes.includes(`${base}/control/paused/r`), `the tree: ${nodes.length} nodes`);
  const both = [digestId(old), digestId(next)].sort();
  for (const n of nodes) {
    t.same(
      (await aclOf(asOld, n)).map((a) => `${a.scheme}:${a.auth}:${a.perms}`).sort(),
      both.map((id) => `digest:${id}:${C.ZOO_PERM_ALL}`),
      `${n}: old and new identities, no one else`,
    );
  }
  for (const n of [`${base}/offsets/r/t/0`, `${base}/assignments/w1`]) t.same(await notRefused(anon, n), [], `after: ${n} refuses an unauthenticated client`);
  // 2. the fleet switches to the new credentials (3. and drops the old grant): the new identity alone remains
  const s2 = await ZooKeeperStore.connect({ connect, root, deployment, sessionTimeoutMs: SESSION_MS, auth: { scheme: 'digest', credentials: next } });
  t.same([...(await s2.readOffsets('r')).values()].map((o) => o.offset).sort(), [5, 7], 'the new identity reads what both wrote');
  await s2.close();
  for (const n of nodes) t.same(await aclOf(asNew, n), [{ perms: C.ZOO_PERM_ALL, scheme: 'digest', auth: digestId(next) }], `${n}: the new identity only`);
  t.same(await notRefused(asOld, `${base}/offsets/r/t/0`), [], 'the old credentials are refused everywhere once the rotation is done');
  // clean up with the new identity (the test ZooKeeper is shared)
  for (const n of [...nodes].reverse()) await rc((done) => asNew.a_delete_(n, -1, done));
});

t.test('a running deployment with store.auth: every node closed to others; a forged route in an assignment is refused', async (t) => {
  const { connect, auth } = testZooKeeper();
  const wrong = `${auth.credentials.slice(0, auth.credentials.indexOf(':'))}:not-the-password`;
  const deployment = uniqueName('sec');
  const fileTopic = uniqueName('sec-file');
  const restTopic = uniqueName('sec-rest');
  await createTopic(bootstrap('a'), fileTopic, 2);
  await createTopic(bootstrap('a'), restTopic, 2);
  const send = (topic: string, from: number, n: number) =>
    produce(
      bootstrap('a'),
      topic,
      Array.from({ length: n }, (_, i) => ({ partition: (from + i) % 2, key: Buffer.from(`k${from + i}`), value: Buffer.from(`v${from + i}`) })),
    );
  await send(fileTopic, 0, 200);
  await send(restTopic, 0, 200);
  const doc = {
    deployment,
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'file-route', source: 'a', target: 'b', topics: { include: [fileTopic] }, start: 'earliest' }],
    store: { type: 'zookeeper', connect, sessionTimeoutMs: SESSION_MS, auth },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0 } },
    worker: { threads: 1, commitIntervalMs: 300, reportIntervalMs: 500 },
  };
  const configFile = writeConfig(doc);
  const controller = new StraitProcess(configFile, 'controller');
  const worker = new StraitProcess(configFile, 'worker');
  // a route "created over REST": what the REST API stores, written through a store with the same credentials
  const store = await ZooKeeperStore.connect({ connect, deployment, sessionTimeoutMs: SESSION_MS, auth });
  t.teardown(() => store.close());
  const config = validateConfig(doc);
  await store.writeRoute(validateRoute({ name: 'rest-route', source: 'a', target: 'b', topics: { include: [restTopic] }, start: 'earliest' }, config));

  // end to end with auth: both routes replicate (the carried definition of rest-route is verified and runs)
  await waitFor(
    'both routes replicated',
    async () =>
      (await totalRecords(bootstrap('b'), `a.${fileTopic}`, 2).catch(() => 0)) >= 200 &&
      (await totalRecords(bootstrap('b'), `a.${restTopic}`, 2).catch(() => 0)) >= 200,
    90_000,
    500,
  );
  await waitFor(
    'offsets committed for both routes',
    async () => (await store.readOffsets('file-route')).size === 2 && (await store.readOffsets('rest-route')).size === 2,
    30_000,
    300,
  );
  const workerId = (await worker.json<{ worker: { id: string } }>('/v1/status')).worker.id;
  await waitFor('a load report', async () => (await store.readReports()).length === 1, 30_000, 300);

  // every node of the deployment (and the root above it) grants ALL to strait's identity only
  const owner = await client(t, auth.credentials);
  const base = `/strait/${deployment}`;
  const nodes = await tree(owner, base);
  const kinds = [
    'controller/leader',
    `workers/${workerId}`,
    `assignments/${workerId}`,
    'offsets/file-route/',
    'offsets/rest-route/',
    'routes/rest-route',
    `reports/${workerId}`,
    'managed/',
  ];
  for (const k of kinds)
    t.ok(
      nodes.some((n) => n.startsWith(`${base}/${encodeURI(k)}`) || n.startsWith(`${base}/${k}`)),
      `the tree holds ${k}`,
    );
  const mine = [{ perms: C.ZOO_PERM_ALL, scheme: 'digest', auth: digestId(auth.credentials) }];
  for (const n of ['/strait', ...nodes]) t.same(await aclOf(owner, n), mine, `ACL of ${n}`);

  // a second client without credentials, and one with the wrong password: refused on every read and write
  const anon = await client(t);
  const impostor = await client(t, wrong);
  for (const [who, zk] of [
    ['unauthenticated', anon],
    ['wrong credentials', impostor],
  ] as const) {
    const leaks: string[] = [];
    for (const n of nodes) leaks.push(...(await notRefused(zk, n)));
    t.same(leaks, [], `${who}: NOAUTH on get/getChildren/set/create/setACL/delete of all ${nodes.length} nodes`);
  }
  t.same(await tree(owner, base).then((l) => l.filter((n) => n.endsWith('/forged'))), [], 'nothing was created by the refused clients');

  // the forged assignment: written with valid credentials (a compromised writer), it carries a rest-route whose
  // consumer runs a command through librdkafka, and a route nobody defined
  const marker = join(tmpdir(), `strait-kinit-${process.pid}-${Date.now()}`);
  const markerEvil = `${marker}-evil`;
  t.teardown(() => {
    rmSync(marker, { force: true });
    rmSync(markerEvil, { force: true });
  });
  const payload = (file: string) => ({ 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanisms': 'GSSAPI', 'sasl.kerberos.kinit.cmd': `touch ${file}` });
  const features = (Kafka as unknown as { features: string[] }).features;
  if (features.includes('sasl_gssapi')) {
    // the payload is live on this librdkafka: a client made with it in this process runs the command
    const control = `${marker}-control`;
    t.teardown(() => rmSync(control, { force: true }));
    const probe = new Kafka.KafkaConsumer({ 'bootstrap.servers': bootstrap('a'), 'group.id': 'probe', ...payload(control) } as Kafka.ConsumerGlobalConfig, {});
    await new Promise<void>((res) => probe.connect({ timeout: 3000 }, () => res()));
    await waitFor('the control client ran the kinit command', () => existsSync(control), 10_000, 100).catch(() => undefined);
    probe.disconnect();
    t.ok(existsSync(control), 'control: the same properties in an unchecked client do run the command');
  } else {
    t.comment(`librdkafka here has no GSSAPI (${features.join(',')}): the kinit payload could not run anyway; the worker must still refuse the route`);
  }
  const path = `${base}/assignments/${encodeURIComponent(workerId)}`;
  const got = await rc((done) => owner.a_get(path, false, done));
  const current = unpack(got.rest[2] as Buffer) as {
    version: number;
    partitions: { route: string; topic: string; partition: number; targetTopic: string; compression: string; epoch: number }[];
    routes?: Record<string, unknown>[];
  };
  const legit = current.routes?.find((r) => r.name === 'rest-route');
  t.ok(legit, 'the controller carries the rest-route definition in the assignment');
  const forged = {
    ...current,
    v: 1,
    version: current.version + 1,
    partitions: [
      ...current.partitions,
      { route: 'evil-route', topic: fileTopic, partition: 0, targetTopic: `evil.${fileTopic}`, compression: 'none', epoch: 1 },
    ],
    routes: [
      { ...legit, consumer: { ...(legit!.consumer as object), ...payload(marker) } },
      { ...legit, name: 'evil-route', topics: { include: [fileTopic], exclude: [] }, consumer: payload(markerEvil) },
    ],
  };
  const startedBefore = partitionEvents(worker).filter((e) => e.what === 'started').length;
  const wrote = await rc((done) => owner.a_set(path, pack(forged), (got.rest[1] as { version: number }).version, done));
  t.equal(codeName(wrote.code), 'ZOK', 'the forged assignment is in the store');
  await waitFor(
    'the worker reports the unverified routes',
    async () => {
      const s = await worker.json<{ worker: { unverifiedRoutes: string[] } }>('/v1/status');
      return s.worker.unverifiedRoutes.includes('rest-route') && s.worker.unverifiedRoutes.includes('evil-route');
    },
    20_000,
    200,
  );
  const metrics = await worker.metrics();
  t.match(metrics, /strait_route_unverified\{route="rest-route"\} 1/);
  t.match(metrics, /strait_route_unverified\{route="evil-route"\} 1/);
  t.ok(
    metrics
      .split('\n')
      .some(
        (l) => l.startsWith('strait_errors_total{') && l.includes('route="rest-route"') && l.includes('code="STRAIT_ROUTE_UNVERIFIED"') && l.endsWith(' 1'),
      ),
    'strait_errors_total counts the refusal once',
  );
  const errors = worker.output.split('\n').filter((l) => l.includes('"code":"STRAIT_ROUTE_UNVERIFIED"'));
  t.ok(
    errors.some((l) => l.includes('"level":50') && l.includes('"route":"rest-route"')),
    'an error-level log line names rest-route and the code',
  );
  t.ok(
    errors.some((l) => l.includes('"route":"evil-route"')),
    'and one names evil-route',
  );
  t.notOk(worker.output.includes('kinit'), 'the forged properties are not echoed in the log');
  await waitFor('rest-route stopped on the worker', async () => /strait_partitions_assigned\{route="rest-route"\} 0/.test(await worker.metrics()), 20_000, 200);
  // the file route keeps replicating meanwhile
  await send(fileTopic, 200, 100);
  await waitFor('the file route goes on', async () => (await totalRecords(bootstrap('b'), `a.${fileTopic}`, 2).catch(() => 0)) >= 300, 60_000, 500);
  await sleep(2000);
  const events = partitionEvents(worker);
  // The controller sees the worker report other partitions than it assigned (rest-route's, stopped) and writes the
  // legitimate assignment again (Controller.reconcile): rest-route may start again, with its stored definition, but
  // only after that repair; nothing starts under the forged assignment.
  const startedAfter = events.slice(startedBefore).filter((e) => e.what === 'started');
  const repairs = controller.output
    .split('\n')
    .filter((l) => l.includes('runs other partitions than it is assigned') && l.includes(workerId))
    .map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
  t.ok(
    startedAfter.every((e) => e.route === 'rest-route' && repairs.some((at) => at <= e.at)),
    `no partition started under the forged assignment (${startedAfter.length} rest-route partitions started again after ${repairs.length} repair(s) by the controller)`,
  );
  t.ok(
    events.some((e) => e.what === 'stopped' && e.route === 'rest-route'),
    "rest-route's running partitions were stopped",
  );
  t.notOk(
    events.some((e) => e.route === 'evil-route'),
    'evil-route never ran',
  );
  t.notOk(existsSync(marker), `${marker} does not exist: the kinit command never ran`);
  t.notOk(existsSync(markerEvil), `${markerEvil} does not exist`);
  t.equal(worker.child.exitCode, null, 'the worker is still up');
  t.equal(controller.child.exitCode, null, 'the controller is still up');
});
