/**
 * The controller's REST API against a real deployment (ZooKeeper, two Kafka clusters, a leader, a standby and a
 * worker): every endpoint's happy path, and bad input answered with a JSON error naming the field — never a crash.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../bench/harness/kafka-runtime';
import { bootstrap, createTopic, testClusters, uniqueName } from './helpers/kafka';
import { testStoreAuth } from './helpers/zookeeper';
import { StraitProcess, stopAll, waitFor, writeConfig } from './helpers/strait-process';

t.teardown(stopAll);

const TOKEN = 'a-long-enough-test-token-0123456789';

t.test('REST API: auth, reads, pause/resume, rebalance, errors', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const topic = uniqueName('rest');
  await createTopic(bootstrap('a'), topic, 4);
  const config = writeConfig({
    deployment: uniqueName('rest'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'orders', source: 'a', target: 'b', topics: { include: [topic] } }],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: 4000, auth: testStoreAuth() },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0, token: TOKEN } },
    worker: { threads: 1, reportIntervalMs: 500 },
  });
  const leader = new StraitProcess(config, 'controller');
  await leader.restUrl; // up (and campaigning) before the standby starts, so it leads
  await waitFor(
    'the first controller leads',
    async () => {
      const r = await fetch(`${await leader.restUrl}/v1/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return ((await r.json()) as { isLeader: boolean }).isLeader;
    },
    30_000,
    200,
  );
  const standby = new StraitProcess(config, 'controller');
  const worker = new StraitProcess(config, 'worker');
  const worker2 = new StraitProcess(config, 'worker');
  const base = await leader.restUrl;
  const call = async (method: string, path: string, opts: { token?: string | null; body?: string; url?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
    // every change is sent as JSON (the API refuses changes without Content-Type: application/json)
    if (opts.body !== undefined || method !== 'GET') headers['content-type'] = 'application/json';
    const res = await fetch(`${opts.url ?? base}${path}`, { method, headers, ...(opts.body !== undefined ? { body: opts.body } : {}) });
    const text = await res.text();
    t.notMatch(text, TOKEN, `${method} ${path}: the token is never in a response`);
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> & unknown[] };
  };

  // auth
  const noToken = await call('GET', '/v1/status', { token: null });
  t.equal(noToken.status, 401);
  t.match(noToken.body, { code: 'STRAIT_UNAUTHORIZED', field: 'authorization' });
  t.equal((await call('GET', '/v1/status', { token: 'wrong-token-wrong-token' })).status, 401, 'a wrong token is refused');

  // reads
  await waitFor(
    '4 partitions assigned to the worker',
    async () => {
      const s = await call('GET', '/v1/status');
      return (s.body.partitions as { assigned: number } | null)?.assigned === 4 && s.body.workers === 2;
    },
    60_000,
    500,
  );
  const status = await call('GET', '/v1/status');
  t.match(status.body, { isLeader: true, leader: status.body.id, partitions: { desired: 4, assigned: 4, unassigned: 0 } });
  const routes = await call('GET', '/v1/routes');
  t.equal(routes.status, 200);
  t.match(routes.body, [{ name: 'orders', source: 'a', target: 'b', paused: false, partitions: 4 }]);
  t.match((await call('GET', '/v1/routes/orders')).body, { name: 'orders', partitions: 4 });
  t.match((await call('GET', '/v1/routes/orders/topics')).body, { route: 'orders', topics: { [topic]: 4 }, problems: [] });
  const workers = await call('GET', '/v1/workers');
  t.equal(workers.body.length, 2);
  t.match(
    workers.body,
    [
      { partitions: 2, threads: 1, drained: false },
      { partitions: 2, threads: 1, drained: false },
    ],
    'balanced: 2 + 2',
  );
  const ids = (workers.body as { id: string }[]).map((w) => w.id);
  const assignments = await call('GET', '/v1/assignments');
  t.equal(assignments.body.length, 4);
  t.ok(
    (assignments.body as { worker: string; epoch: number }[]).every((a) => ids.includes(a.worker) && a.epoch >= 1),
    'every partition on a registered worker, with an epoch',
  );

  // per-partition load, as the workers report it (every 500 ms here)
  type PartitionRow = {
    route: string;
    topic: string;
    partition: number;
    worker: string;
    epoch: number;
    bytesPerSec: number | null;
    recordsPerSec: number | null;
    lag: number | null;
  };
  await waitFor(
    'every partition reported by its worker',
    async () => ((await call('GET', '/v1/partitions')).body as PartitionRow[]).every((p) => p.bytesPerSec !== null),
    30_000,
    250,
  );
  const partitions = (await call('GET', '/v1/partitions')).body as PartitionRow[];
  t.equal(partitions.length, 4);
  t.ok(
    partitions.every(
      (p) => p.route === 'orders' && p.topic === topic && ids.includes(p.worker) && p.epoch >= 1 && p.bytesPerSec === 0 && p.recordsPerSec === 0,
    ),
    'route, topic, worker, epoch, and rates (0: nothing produced)',
  );
  t.same(partitions.map((p) => p.partition).sort(), [0, 1, 2, 3]);
  const lagging = await call('GET', '/v1/partitions?lagging=true');
  t.equal(lagging.status, 200);
  t.same(lagging.body, [], 'nothing lags on an empty topic');
  const badLagging = await call('GET', '/v1/partitions?lagging=yes');
  t.equal(badLagging.status, 400);
  t.match(badLagging.body, { code: 'STRAIT_BAD_REQUEST', field: 'lagging', message: /true or false/ });
  const badParam = await call('GET', '/v1/partitions?route=orders');
  t.equal(badParam.status, 400);
  t.match(badParam.body, { code: 'STRAIT_BAD_REQUEST', field: 'route' });
  t.match((await call('GET', '/v1/status')).body, { lag: 0, partitions: { errored: 0 } }, 'status: total lag and errored partitions');

  // drain moves a worker's partitions to the other, undrain gives it load again
  const drained = await call('POST', `/v1/workers/${ids[0]}/drain`);
  t.match(drained.body, { worker: ids[0], drained: true, partitionsBefore: 2, partitions: 0 });
  const afterDrain = (await call('GET', '/v1/workers')).body as { id: string; partitions: number; drained: boolean }[];
  t.match(
    afterDrain.find((w) => w.id === ids[0]),
    { partitions: 0, drained: true },
    'the drained worker holds nothing',
  );
  t.match(
    afterDrain.find((w) => w.id === ids[1]),
    { partitions: 4, drained: false },
    'the other took its partitions',
  );
  const undrained = await call('POST', `/v1/workers/${ids[0]}/undrain`);
  t.match(undrained.body, { worker: ids[0], drained: false, partitions: 2 });
  const unknownWorker = await call('POST', '/v1/workers/nobody/drain');
  t.equal(unknownWorker.status, 404);
  t.match(unknownWorker.body, { code: 'STRAIT_UNKNOWN_WORKER', field: 'id' });

  // changes
  // A pause has taken effect when its answer comes, even when it lands while a periodic refresh (every second here)
  // runs with the state read before it: repeated at varying moments, so some land during a refresh.
  const cycles = { paused: 0, resumed: 0 };
  for (let i = 0; i < 12; i++) {
    const paused = await call('POST', '/v1/routes/orders/pause');
    if (paused.body.paused === true) cycles.paused++;
    const after = (await call('GET', '/v1/status')).body.partitions as { desired: number; assigned: number };
    if (after.desired !== 0 || after.assigned !== 0) t.fail(`cycle ${i}: pause answered before it took effect: ${JSON.stringify(after)}`);
    const resumed = await call('POST', '/v1/routes/orders/resume');
    if (resumed.body.paused === false) cycles.resumed++;
    const back = (await call('GET', '/v1/status')).body.partitions as { desired: number; assigned: number };
    if (back.desired !== 4 || back.assigned !== 4) t.fail(`cycle ${i}: resume answered before it took effect: ${JSON.stringify(back)}`);
    await new Promise((r) => setTimeout(r, 37 + i * 71));
  }
  t.same(cycles, { paused: 12, resumed: 12 }, 'pause and resume answered, and took effect, in every cycle');
  await waitFor(
    'every partition reported again after the pauses',
    async () => ((await call('GET', '/v1/partitions')).body as PartitionRow[]).every((p) => p.bytesPerSec !== null),
    30_000,
    250,
  );
  const rebalance = await call('POST', '/v1/rebalance');
  t.match(rebalance.body, { moved: 0, assigned: 4 }, 'a balanced fleet: rebalance moves nothing');

  // bad input
  const unknown = await call('GET', '/v1/routes/ordrs');
  t.equal(unknown.status, 404);
  t.match(unknown.body, { code: 'STRAIT_UNKNOWN_ROUTE', field: 'name', message: /did you mean 'orders'/ });
  const badJson = await call('POST', '/v1/rebalance', { body: '{"force": ' });
  t.equal(badJson.status, 400);
  t.match(badJson.body, { code: 'STRAIT_BAD_REQUEST', field: 'body' });
  const nowhere = await call('GET', '/v1/nowhere');
  t.equal(nowhere.status, 404);
  t.match(nowhere.body, { code: 'STRAIT_NOT_FOUND' });
  const fromStandby = await call('POST', '/v1/rebalance', { url: await standby.restUrl });
  t.equal(fromStandby.status, 409);
  t.match(fromStandby.body, { code: 'STRAIT_NOT_LEADER', message: new RegExp(`leader '${String(status.body.id)}'`) });
  t.equal(leader.child.exitCode, null, 'the leader still runs after all of it');

  // the CLI over the same API
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), ...args, '--url', base], {
      encoding: 'utf8',
      env: { ...process.env, STRAIT_TOKEN: TOKEN },
    });
  const st = cli('status', '--json');
  t.equal(st.status, 0, st.stderr);
  t.match(JSON.parse(st.stdout), { isLeader: true, partitions: { assigned: 4 } });
  const wl = cli('workers', 'list');
  t.match(wl.stdout, new RegExp(`^id\\s+host\\s+pid\\s+threads\\s+partitions\\s+drained\\s+version\\n`), 'a table for people');
  t.match(wl.stdout, ids[1]!);
  const pl = cli('partitions');
  t.equal(pl.status, 0, pl.stderr);
  t.match(pl.stdout, /^route\s+topic\s+partition\s+worker\s+epoch\s+bytesPerSec\s+recordsPerSec\s+lag\n/, 'partitions as a table');
  t.equal(pl.stdout.trim().split('\n').length, 5, 'a header and 4 partitions');
  const plj = cli('partitions', '--lagging', '--json');
  t.equal(plj.status, 0, plj.stderr);
  t.same(JSON.parse(plj.stdout), [], "--lagging --json: the API's JSON");
  const bad = cli('routes', 'pause', 'ordrs');
  t.not(bad.status, 0);
  t.match(bad.stderr, /STRAIT_UNKNOWN_ROUTE.*did you mean 'orders'/);

  for (const p of [worker, worker2, standby, leader]) t.equal(await p.stop(), 0, `${p.role} stopped cleanly`);
});
