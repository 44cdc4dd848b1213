/**
 * Routes managed over REST against a real deployment (the shared ZooKeeper, two Kafka clusters, a leader, a standby,
 * two workers): a route created with the CLI replicates end to end, an update (exclude a topic; change a producer
 * property) takes effect, the route survives a leader change, delete stops it and keeps its committed offsets; bad
 * input is answered 4xx with the exact field, and config-file routes stay read-only.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { stringify } from 'yaml';
import { projectRoot } from '../bench/harness/kafka-runtime';
import { assignmentMap } from './helpers/fleet';
import { bootstrap, createTopic, produce, testClusters, totalRecords, uniqueName } from './helpers/kafka';
import { testStoreAuth } from './helpers/zookeeper';
import { StraitProcess, stopAll, waitFor, writeConfig } from './helpers/strait-process';

t.teardown(stopAll);

const TOKEN = 'routes-test-token-0123456789abcdef';
const P = 3;

t.test('routes over REST: create, update, leader change, delete, bad input', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const prefix = uniqueName('rr');
  const [t1, t2, fixed] = [`${prefix}-one`, `${prefix}-two`, uniqueName('rr-fixed')];
  for (const topic of [t1, t2, fixed]) await createTopic(bootstrap('a'), topic, P);
  const config = writeConfig({
    deployment: uniqueName('rr'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') }, c: { bootstrap: bootstrap('c') } },
    routes: [{ name: 'fixed', source: 'a', target: 'b', topics: { include: [fixed] } }],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: 4000, auth: testStoreAuth() },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0, token: TOKEN } },
    worker: { threads: 1, commitIntervalMs: 300 },
  });
  const first = new StraitProcess(config, 'controller');
  await waitFor(
    'the first controller leads',
    async () =>
      ((await (await fetch(`${await first.restUrl}/v1/health`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { isLeader: boolean }).isLeader,
    30_000,
    200,
  );
  const second = new StraitProcess(config, 'controller');
  const workers = [new StraitProcess(config, 'worker'), new StraitProcess(config, 'worker')];
  let base = await first.restUrl;
  const standbyUrl = await second.restUrl;
  const call = async (method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string; url?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
    const payload = opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined);
    // every change is sent as JSON (the API refuses changes without Content-Type: application/json)
    if (payload !== undefined || method !== 'GET') headers['content-type'] = 'application/json';
    const res = await fetch(`${opts.url ?? base}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & unknown[] };
  };
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), ...args, '--url', base], {
      encoding: 'utf8',
      env: { ...process.env, STRAIT_TOKEN: TOKEN },
    });
  const landed = (topic: string) => totalRecords(bootstrap('b'), `a.${topic}`, P);
  const send = (topic: string, n: number, tag: string) =>
    produce(
      bootstrap('a'),
      topic,
      Array.from({ length: n }, (_, i) => ({ partition: i % P, key: Buffer.from(`${tag}${i}`), value: Buffer.from(`v${i}`) })),
    );
  await waitFor(
    'the file route assigned to two workers',
    async () => {
      const s = await call('GET', '/v1/status');
      return (s.body.partitions as { assigned: number } | null)?.assigned === P && s.body.workers === 2;
    },
    60_000,
    300,
  );

  // create (CLI) -> replicates end to end
  const routeFile = join(dirname(config), 'route.yaml');
  const route = { name: 'dyn', source: 'a', target: 'b', topics: { include: [`${prefix}-.*`] }, producer: { 'linger.ms': 5 } };
  writeFileSync(routeFile, stringify(route));
  const created = cli('routes', 'create', '--file', routeFile, '--json');
  t.equal(created.status, 0, created.stderr);
  t.match(
    JSON.parse(created.stdout),
    { name: 'dyn', definedIn: 'rest', revision: 1, created: true, topics: { include: [`${prefix}-.*`], exclude: [] }, start: 'earliest' },
    'created, defaults filled',
  );
  const again = cli('routes', 'create', '--file', routeFile);
  t.not(again.status, 0, 'create refuses an existing route');
  t.match(again.stderr, /already exists; use 'strait routes update/);
  await send(t1, 300, 'a');
  await send(t2, 300, 'a');
  await waitFor('both topics of the new route replicated', async () => (await landed(t1)) >= 300 && (await landed(t2)) >= 300, 60_000, 500);
  t.match((await call('GET', '/v1/routes/dyn')).body, { name: 'dyn', definedIn: 'rest', partitions: 2 * P });
  const listed = (await call('GET', '/v1/routes')).body as { name: string; definedIn: string }[];
  t.same(
    listed.map((r) => [r.name, r.definedIn]),
    [
      ['fixed', 'config'],
      ['dyn', 'rest'],
    ],
    'the file route and the REST route, each said where it is defined',
  );

  await sleep(1500);
  t.comment(`t1 on the target after created: ${await landed(t1)}`);
  // update: exclude t2 -> its partitions are unassigned, t1 keeps going
  const upd = await call('PUT', '/v1/routes/dyn', { body: { ...route, topics: { include: [`${prefix}-.*`], exclude: [t2] } } });
  t.equal(upd.status, 200, JSON.stringify(upd.body));
  t.match(upd.body, { revision: 2, created: false, topics: { exclude: [t2] } });
  await waitFor('t2 unassigned', async () => ![...(await assignmentMap(base, TOKEN)).keys()].some((k) => k.startsWith(`${t2}/`)), 30_000, 300);
  const t2Before = await landed(t2);
  await send(t1, 300, 'b');
  await send(t2, 300, 'b');
  await waitFor('t1 goes on after the update', async () => (await landed(t1)) >= 600, 60_000, 500);
  await sleep(2000);
  t.equal(await landed(t2), t2Before, 'nothing more of the excluded topic reached the target');

  await sleep(1500);
  t.comment(`t1 on the target after update1: ${await landed(t1)}`);
  // update a client property: the workers restart the route's forwarders with it, and records keep flowing
  const upd2 = await call('PUT', '/v1/routes/dyn', { body: { ...route, topics: { include: [`${prefix}-.*`], exclude: [t2] }, producer: { 'linger.ms': 20 } } });
  t.match(upd2.body, { revision: 3, producer: { 'linger.ms': 20 } });
  await waitFor('a worker restarted the route with the new settings', () => workers.some((w) => w.output.includes('route definitions changed')), 30_000, 300);
  await send(t1, 300, 'c');
  await waitFor('t1 goes on with the new producer settings', async () => (await landed(t1)) >= 900, 60_000, 500);

  await sleep(1500);
  t.comment(`t1 on the target after update2: ${await landed(t1)}`);
  // bad input, each naming the field
  const badJson = await call('PUT', '/v1/routes/dyn', { raw: '{"source": ' });
  t.equal(badJson.status, 400);
  t.match(badJson.body, { code: 'STRAIT_BAD_REQUEST', field: 'body' });
  const badRegex = await call('PUT', '/v1/routes/dyn2', { body: { source: 'a', target: 'b', topics: { include: ['orders-('] } } });
  t.equal(badRegex.status, 400);
  t.match(badRegex.body, { code: 'STRAIT_INVALID_ROUTE', field: 'body.topics.include[0]', message: /not a valid regular expression/ });
  // the fleet runs exactly-once routes (test/integrity/exactly-once.test.ts); this one matches no topic
  const eos = await call('PUT', '/v1/routes/eos', { body: { source: 'a', target: 'b', topics: { include: [`${prefix}-none`] }, delivery: 'exactly-once' } });
  t.ok(eos.status >= 200 && eos.status < 300, `an exactly-once route is taken (${eos.status})`);
  t.match(eos.body, { name: 'eos', delivery: 'exactly-once' });
  const eosGone = await call('DELETE', '/v1/routes/eos');
  t.ok(eosGone.status >= 200 && eosGone.status < 300, `and deleted (${eosGone.status})`);
  const badAlias = await call('PUT', '/v1/routes/dyn2', { body: { source: 'nowhere', target: 'b' } });
  t.equal(badAlias.status, 400);
  t.match(badAlias.body, { field: 'body.source', message: /unknown cluster alias 'nowhere'.*defined: a, b, c/ });
  const mismatch = await call('PUT', '/v1/routes/dyn2', { body: { name: 'other', source: 'a', target: 'b' } });
  t.equal(mismatch.status, 400);
  t.match(mismatch.body, { field: 'body.name', message: /path names 'dyn2'/ });
  const unknownKey = await call('PUT', '/v1/routes/dyn2', { body: { source: 'a', target: 'b', topcs: {} } });
  t.match(unknownKey.body, { field: 'body.topcs', message: /did you mean 'topics'/ });
  const moveSource = await call('PUT', '/v1/routes/dyn', { body: { ...route, source: 'c' } });
  t.equal(moveSource.status, 400);
  t.match(moveSource.body, { field: 'body.source', message: /cannot change/ });
  const noBody = await call('PUT', '/v1/routes/dyn2', { raw: '[1]' });
  t.equal(noBody.status, 400);
  t.match(noBody.body, { field: 'body' });
  for (const method of ['PUT', 'DELETE']) {
    const ro = await call(method, '/v1/routes/fixed', method === 'PUT' ? { body: { source: 'a', target: 'b' } } : {});
    t.equal(ro.status, 409, `${method} of a config-file route`);
    t.match(ro.body, { code: 'STRAIT_ROUTE_READ_ONLY', field: 'name', message: /config file/ });
  }
  const noToken = await call('PUT', '/v1/routes/dyn2', { token: null, body: { source: 'a', target: 'b' } });
  t.equal(noToken.status, 401);
  t.match(noToken.body, { code: 'STRAIT_UNAUTHORIZED', field: 'authorization' });
  const onStandby = await call('PUT', '/v1/routes/dyn2', { url: standbyUrl, body: { source: 'a', target: 'b' } });
  t.equal(onStandby.status, 409);
  t.match(onStandby.body, { code: 'STRAIT_NOT_LEADER' });
  const delUnknown = await call('DELETE', '/v1/routes/dny');
  t.equal(delUnknown.status, 404);
  t.match(delUnknown.body, { code: 'STRAIT_UNKNOWN_ROUTE', message: /did you mean 'dyn'/ });
  t.equal((await call('GET', '/v1/routes/dyn2')).status, 404, 'no bad request created anything');

  // leader change: the standby leads and has the REST route from the store
  t.equal(await first.stop(), 0, 'the leader stopped');
  base = standbyUrl;
  await waitFor(
    "the standby leads and has discovered the stored route's topics",
    async () => {
      const s = await call('GET', '/v1/status');
      const r = await call('GET', '/v1/routes/dyn');
      return s.body.isLeader === true && (s.body.partitions as { assigned: number } | null)?.assigned === 2 * P && r.body.partitions === P;
    },
    30_000,
    300,
  );
  t.match(
    (await call('GET', '/v1/routes/dyn')).body,
    { definedIn: 'rest', revision: 3, topics: { exclude: [t2] }, partitions: P },
    'the new leader serves the stored route',
  );
  await send(t1, 300, 'd');
  await waitFor('t1 replicates under the new leader', async () => (await landed(t1)) >= 1200, 60_000, 500);

  await sleep(1500);
  t.comment(`t1 on the target after leader change: ${await landed(t1)}`);
  // delete (CLI): partitions unassigned, offsets kept (a new route of the same name goes on from them)
  const del = cli('routes', 'delete', 'dyn', '--json');
  t.equal(del.status, 0, del.stderr);
  t.match(JSON.parse(del.stdout), { route: 'dyn', deleted: true });
  await waitFor(
    "the route's partitions unassigned",
    async () => ![...(await assignmentMap(base, TOKEN)).keys()].some((k) => k.startsWith(`${t1}/`)),
    30_000,
    300,
  );
  t.equal((await call('GET', '/v1/routes/dyn')).status, 404, 'the route is gone');
  const t1Before = await landed(t1);
  await send(t1, 300, 'e');
  await sleep(3000);
  t.equal(await landed(t1), t1Before, 'nothing replicated after the delete');
  const recreated = await call('PUT', '/v1/routes/dyn', { body: { ...route, topics: { include: [t1] } } });
  t.equal(recreated.status, 201);
  t.match(recreated.body, { revision: 1, created: true });
  await waitFor('the recreated route catches up', async () => (await landed(t1)) >= 1500, 60_000, 500);
  await sleep(2000);
  const t1After = await landed(t1);
  t.ok(t1After < 1500 + 300, `the recreated route went on from the committed offsets (${t1After} on the target for 1500 produced, not a second copy)`);
  t.equal((await call('GET', '/v1/routes/fixed')).body.definedIn, 'config');

  for (const p of [...workers, second]) t.equal(await p.stop(), 0, `${p.role} stopped cleanly`);
});
