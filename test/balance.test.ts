/**
 * The controller's balancing against the real ZooKeeper and real Kafka clusters: load reports (written through the
 * store by worker sessions) move partitions by weight, once, and only the changed workers are written; the REST API
 * shows them (`/v1/partitions`, lag in `/v1/status`); a departed worker keeps its partitions for
 * `controller.workerGraceMs` and gets them back if it re-registers in time. The "workers" here are store sessions
 * that register and report, so the test decides exactly what they report.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller } from '../controller/controller';
import { buildRestApi } from '../controller/rest';
import { loadConfig, type StraitConfig } from '../shared/config';
import { createLogger } from '../shared/logger';
import { StraitMetrics } from '../shared/metrics';
import { ZooKeeperStore } from '../shared/store/zookeeper/api';
import type { PartitionLoad, WorkerInfo } from '../shared/wire';
import { bootstrap, createTopic, testClusters, uniqueName } from './helpers/kafka';
import { testStoreAuth } from './helpers/zookeeper';
import { waitFor, writeConfig } from './helpers/strait-process';

type Tap = Pick<typeof t, 'teardown'>;

function zkConnect(): string {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  return zk.connect;
}

async function open(t: Tap, deployment: string): Promise<ZooKeeperStore> {
  const store = await ZooKeeperStore.connect({ connect: zkConnect(), deployment, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, auth: testStoreAuth() });
  t.teardown(() => store.close());
  return store;
}

function info(id: string): WorkerInfo {
  return { id, host: 'test', pid: process.pid, threads: 1, version: '0', startedAt: new Date().toISOString() };
}

async function setUp(
  t: Tap,
  partitions: number,
  controller: Record<string, unknown>,
): Promise<{ config: StraitConfig; deployment: string; topic: string; store: ZooKeeperStore; c: Controller; metrics: StraitMetrics }> {
  const topic = uniqueName('bal');
  await createTopic(bootstrap('a'), topic, partitions);
  const deployment = uniqueName('bal');
  const config = loadConfig(
    writeConfig({
      deployment,
      clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
      routes: [{ name: 'r', source: 'a', target: 'b', topics: { include: [topic] } }],
      store: { type: 'zookeeper', connect: zkConnect(), sessionTimeoutMs: 4000, auth: testStoreAuth() },
      // refreshes are driven by the test (tick); load rebalances on every one unless the test says otherwise
      controller: { refreshTopicsIntervalMs: 600_000, rebalanceIntervalMs: 0, rest: { port: 0 }, ...controller },
    }),
  );
  const store = await ZooKeeperStore.connect({ connect: zkConnect(), deployment, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, auth: testStoreAuth() });
  const metrics = new StraitMetrics(false);
  const c = new Controller(config, store, createLogger('test-controller', 'warn'), metrics);
  t.teardown(async () => {
    await c.stop();
    await store.close();
  });
  return { config, deployment, topic, store, c, metrics };
}

const owned = (c: Controller, w: string) => c.assignments().filter((a) => a.worker === w);

/** Sessions w1 and w2 register, the controller starts, and 8 partitions are assigned between them. */
async function twoWorkersAssigned(t: Tap, deployment: string, c: Controller): Promise<[ZooKeeperStore, ZooKeeperStore]> {
  const w1 = await open(t, deployment);
  const w2 = await open(t, deployment);
  await w1.registerWorker(info('w1'));
  await w2.registerWorker(info('w2'));
  await c.start();
  await waitFor('8 partitions on two workers', async () => c.status().assigned === 8 && c.status().workers.length === 2, 30_000, 100);
  // start-up may have queued a pass behind the first (the routes watch asks for one): let it finish before the test
  // writes load reports, or it rebalances between the two workers' reports (tick() resolves after that queued pass)
  await c.tick();
  return [w1, w2];
}

t.test('reports balance by weight, once; only changed workers are written; /v1/partitions and lag over REST', async (t) => {
  const { config, deployment, topic, store, c } = await setUp(t, 8, {});
  const [w1, w2] = await twoWorkersAssigned(t, deployment, c);
  t.equal(owned(c, 'w1').length, 4, 'by count first: 4 + 4');
  const epochsBefore = new Map(c.assignments().map((a) => [`${a.topic}/${a.partition}`, a.epoch]));

  // w1's partitions are busy (1000 B/s), w2's nearly idle (10 B/s), and two of w2's lag
  const lags = [5, 50, 0, 7];
  const load = (w: string, bytes: number, lag: (i: number) => number): PartitionLoad[] =>
    owned(c, w).map((a, i) => ({
      route: 'r',
      topic: a.topic,
      partition: a.partition,
      bytesPerSec: bytes,
      recordsPerSec: bytes / 100,
      lag: lag(i),
      errored: false,
    }));
  const light = load('w2', 10, (i) => lags[i]!);
  // counted from before the reports: a pass that was already running when tick() is called (one the registrations or
  // the routes watch started) may do the rebalance itself, and tick() then waits for one more, which writes nothing
  const writesBefore = c.writesTotal;
  await w1.writeReport({ worker: 'w1', at: Date.now(), windowMs: 5000, partitions: load('w1', 1000, () => 0) });
  await w2.writeReport({ worker: 'w2', at: Date.now(), windowMs: 5000, partitions: light });
  await waitFor('the controller has both reports', async () => c.partitions().every((p) => p.bytesPerSec !== null), 10_000, 50);
  t.equal(c.status().lag, 62, 'status: total lag is the sum of the reported lags');

  await c.tick();
  const heavy = (w: string) => owned(c, w).filter((a) => !light.some((l) => l.partition === a.partition)).length;
  t.equal(heavy('w1'), 2, 'w1 kept two of its busy partitions');
  t.equal(heavy('w2'), 2, 'two busy partitions moved to w2 (4000 vs 40 B/s was far outside the 10% tolerance)');
  t.equal(owned(c, 'w2').length, 6, 'w2 keeps its idle ones too: balance is by bytes/s, not by count');
  t.equal(c.writesTotal - writesBefore, 2, 'both workers written once (each holds a changed set)');
  const moved = c.assignments().filter((a) => a.worker === 'w2' && !light.some((l) => l.partition === a.partition));
  t.ok(
    moved.every((a) => a.epoch === epochsBefore.get(`${a.topic}/${a.partition}`)! + 1),
    'moved partitions have a new epoch',
  );
  // tick() resolves after the writes
  const stored = await store.readAssignment('w2');
  t.equal(stored?.partitions.length, 6, 'the store holds the new assignment');

  const writesSettled = c.writesTotal;
  await c.tick();
  t.equal(c.writesTotal - writesSettled, 0, 'same reports again: nothing moves, nothing is written (no flapping)');
  t.equal(owned(c, 'w2').length, 6);

  // REST, in process (fastify inject): the partitions view, lagging filter and sort, bad query values
  const api = buildRestApi({ id: 'test', config, store, leader: () => c });
  t.teardown(() => api.close());
  const all = await api.inject({ method: 'GET', url: '/v1/partitions' });
  t.equal(all.statusCode, 200);
  const rows = all.json<{ topic: string; partition: number; worker: string; epoch: number; bytesPerSec: number | null; lag: number | null }[]>();
  t.equal(rows.length, 8);
  t.ok(
    rows.every((r) => r.topic === topic && (r.worker === 'w1' || r.worker === 'w2') && r.epoch >= 1),
    'every partition with its worker and epoch',
  );
  t.equal(rows.filter((r) => r.bytesPerSec === 1000).length, 2, "moved partitions: the old owner's report no longer counts as theirs");
  const lagging = await api.inject({ method: 'GET', url: '/v1/partitions?lagging=true' });
  t.same(
    lagging.json<{ lag: number }[]>().map((r) => r.lag),
    [50, 7, 5],
    'lagging: lag > 0 only, most lagging first',
  );
  const bad = await api.inject({ method: 'GET', url: '/v1/partitions?lagging=maybe' });
  t.equal(bad.statusCode, 400);
  t.match(bad.json(), { code: 'STRAIT_BAD_REQUEST', field: 'lagging' });
  const unknown = await api.inject({ method: 'GET', url: '/v1/partitions?laging=true' });
  t.equal(unknown.statusCode, 400);
  t.match(unknown.json(), { field: 'laging', message: /did you mean 'lagging'/ });
  const status = await api.inject({ method: 'GET', url: '/v1/status' });
  t.match(status.json(), { lag: 62, partitions: { desired: 8, assigned: 8, unassigned: 0, errored: 0 } });

  // an errored partition is counted
  await w2.writeReport({ worker: 'w2', at: Date.now() + 1, windowMs: 5000, partitions: light.map((p, i) => ({ ...p, errored: i === 0 })) });
  await waitFor('the error is reported', async () => c.status().errored === 1, 10_000, 50);
  t.pass('status counts the errored partition');
});

t.test('controller.rebalanceIntervalMs: load moves nothing owned inside the interval; a worker joining rebalances at once', async (t) => {
  const { deployment, c } = await setUp(t, 8, { rebalanceIntervalMs: 600_000 });
  const [w1, w2] = await twoWorkersAssigned(t, deployment, c);
  const before = new Map(c.assignments().map((a) => [`${a.topic}/${a.partition}`, a.worker]));
  // the same skew that moves two partitions at once with the interval 0 (test above)
  const load = (w: string, bytes: number): PartitionLoad[] =>
    owned(c, w).map((a) => ({ route: 'r', topic: a.topic, partition: a.partition, bytesPerSec: bytes, recordsPerSec: bytes / 100, lag: 0, errored: false }));
  await w1.writeReport({ worker: 'w1', at: Date.now(), windowMs: 5000, partitions: load('w1', 1000) });
  await w2.writeReport({ worker: 'w2', at: Date.now(), windowMs: 5000, partitions: load('w2', 10) });
  await waitFor('the controller has both reports', async () => c.partitions().every((p) => p.bytesPerSec !== null), 10_000, 50);
  await c.tick();
  await c.tick();
  t.same(new Map(c.assignments().map((a) => [`${a.topic}/${a.partition}`, a.worker])), before, 'inside the interval a skew of 4000 vs 40 B/s moves nothing');

  const w3 = await open(t, deployment);
  await w3.registerWorker(info('w3'));
  await waitFor('the third worker receives partitions', async () => owned(c, 'w3').length > 0, 30_000, 100);
  const moved = c.assignments().filter((a) => before.get(`${a.topic}/${a.partition}`) !== a.worker);
  t.ok(
    moved.some((a) => a.worker === 'w3'),
    `a join rebalances at once: ${moved.length} partitions moved, ${owned(c, 'w3').length} to the new worker`,
  );
  const loads = ['w1', 'w2', 'w3'].map((w) => owned(c, w).reduce((sum, a) => sum + (before.get(`${a.topic}/${a.partition}`) === 'w1' ? 1000 : 10), 0));
  t.ok(Math.max(...loads) < 4040, `the busy worker gave load away (loads by the last reports: ${loads.join(', ')} B/s)`);
});

t.test('errored partitions keep their weight: a worker with a problem does not look idle and receive more', async (t) => {
  const { deployment, c } = await setUp(t, 8, {});
  const [w1, w2] = await twoWorkersAssigned(t, deployment, c);
  const load = (w: string, bytes: number, errored: boolean): PartitionLoad[] =>
    owned(c, w).map((a) => ({
      route: 'r',
      topic: a.topic,
      partition: a.partition,
      bytesPerSec: bytes,
      recordsPerSec: bytes / 100,
      lag: 0,
      errored,
      ...(errored ? { errorCode: 'STRAIT_TARGET_REJECTED' } : {}),
    }));
  const report = async (b1: number, errored1: boolean) => {
    const at = Date.now();
    await w1.writeReport({ worker: 'w1', at, windowMs: 5000, partitions: load('w1', b1, errored1) });
    await w2.writeReport({ worker: 'w2', at, windowMs: 5000, partitions: load('w2', 1000, false) });
    await waitFor('the controller has both reports', async () => c.partitions().every((p) => p.bytesPerSec === (p.worker === 'w1' ? b1 : 1000)), 10_000, 50);
  };
  // balanced: 4 x 1000 B/s each
  await report(1000, false);
  await c.tick();
  const before = new Map(c.assignments().map((a) => [`${a.topic}/${a.partition}`, a.worker]));
  // w1's partitions are errored now: they move 0 B/s, and would weigh ~nothing if that were taken as their load
  for (let i = 0; i < 3; i++) await report(0, true);
  await c.tick();
  t.same(new Map(c.assignments().map((a) => [`${a.topic}/${a.partition}`, a.worker])), before, 'nothing moves onto the worker whose partitions are errored');
});

t.test('a worker that reports other partitions than assigned, twice, gets its assignment written again', async (t) => {
  const { deployment, store, c, config, metrics } = await setUp(t, 8, {});
  config.worker.reportIntervalMs = 200; // the settle time after a write is two report intervals
  const [w1, w2] = await twoWorkersAssigned(t, deployment, c);
  const versionOf = async (w: string) => (await store.readAssignment(w))!.version;
  const v1 = await versionOf('w1');
  await sleep(500);
  const load = (w: string, drop: number): PartitionLoad[] =>
    owned(c, w)
      .slice(drop)
      .map((a) => ({ route: 'r', topic: a.topic, partition: a.partition, bytesPerSec: 100, recordsPerSec: 1, lag: 0, errored: false }));
  // w2 reports what it was given; w1 lacks one partition (a write it never applied, say)
  await w2.writeReport({ worker: 'w2', at: Date.now(), windowMs: 200, partitions: load('w2', 0) });
  await w1.writeReport({ worker: 'w1', at: Date.now(), windowMs: 200, partitions: load('w1', 1) });
  await sleep(300);
  t.equal(await versionOf('w1'), v1, 'one report that disagrees is not acted on');
  await w1.writeReport({ worker: 'w1', at: Date.now(), windowMs: 200, partitions: load('w1', 1) });
  await waitFor('w1 written again', async () => (await versionOf('w1')) > v1, 10_000, 50);
  t.same(
    (await store.readAssignment('w1'))!.partitions.map((p) => p.partition).sort(),
    owned(c, 'w1')
      .map((a) => a.partition)
      .sort(),
    'the same partitions, a new version',
  );
  t.equal(await versionOf('w2'), 1, 'the worker whose report agrees is not written');
  t.match(await metrics.registry.metrics(), /strait_assignment_repairs_total 1\n/, 'strait_assignment_repairs_total counts it');
});

t.test('controller.workerGraceMs: a departed worker keeps its partitions for the grace period, and gets them back', async (t) => {
  const GRACE = 4000;
  const { deployment, store, c } = await setUp(t, 4, { workerGraceMs: GRACE });
  const w1 = await open(t, deployment);
  let w2 = await open(t, deployment);
  await w1.registerWorker(info('w1'));
  await w2.registerWorker(info('w2'));
  await c.start();
  await waitFor('4 partitions on two workers', async () => c.status().assigned === 4 && owned(c, 'w2').length === 2, 30_000, 100);
  const mine = owned(c, 'w2')
    .map((a) => `${a.partition}:${a.epoch}`)
    .sort();
  const version = (await store.readAssignment('w2'))!.version;

  // w2's session ends: it is gone from the registry at once, but its partitions stay within the grace period
  await w2.close();
  const goneAt = Date.now();
  await waitFor('the controller sees one worker', async () => c.status().workers.length === 1, 10_000, 50);
  await sleep(300);
  t.same(
    owned(c, 'w2')
      .map((a) => `${a.partition}:${a.epoch}`)
      .sort(),
    mine,
    'still w2, same epochs, inside the grace period',
  );

  // back within the grace period: same partitions and epochs, and a new write (it ignores what it had before)
  w2 = await open(t, deployment);
  await w2.registerWorker(info('w2'));
  await waitFor('w2 written again', async () => ((await store.readAssignment('w2'))?.version ?? 0) > version, 10_000, 50);
  t.ok(Date.now() - goneAt < GRACE, 'it came back within the grace period');
  t.same((await store.readAssignment('w2'))!.partitions.map((p) => `${p.partition}:${p.epoch}`).sort(), mine, 'the same partitions, same epochs');

  // gone again, for longer than the grace period: then, and only then, its partitions move
  await w2.close();
  const leftAt = Date.now();
  await waitFor('the controller sees one worker again', async () => c.status().workers.length === 1, 10_000, 50);
  await sleep(GRACE / 2);
  t.equal(owned(c, 'w2').length, 2, 'halfway through the grace period: nothing moved');
  await waitFor('w2 partitions moved to w1', async () => owned(c, 'w1').length === 4, GRACE + 10_000, 50);
  const after = Date.now() - leftAt;
  t.ok(after >= GRACE - 100, `moved ${after} ms after the worker left (grace ${GRACE} ms)`);
  t.ok(after < GRACE + 5000, `and not much later (${after} ms)`);
  // the controller's view changes before its store writes finish: wait for the write
  await waitFor('the departed worker is written an empty assignment', async () => (await store.readAssignment('w2'))?.partitions.length === 0, 10_000, 50);
  t.pass('the departed worker is written an empty assignment');
  const epochs = new Map(mine.map((x) => x.split(':').map(Number) as [number, number]));
  t.same(
    owned(c, 'w1')
      .filter((a) => epochs.has(a.partition))
      .map((a) => `${a.partition}:${a.epoch}`)
      .sort(),
    [...epochs].map(([p, e]) => `${p}:${e + 1}`).sort(),
    'moved with a new epoch',
  );
});
