/**
 * Load reports in both stores: written by a worker's session, read and watched by another, compact enough for a
 * ZooKeeper node, and gone with the worker's session (ZooKeeper: an ephemeral node).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import t from 'tap';
import { EmbeddedStore } from '../shared/store/embedded';
import { validateConfig } from '../shared/config';
import { createLogger } from '../shared/logger';
import { StraitMetrics } from '../shared/metrics';
import { Pipeline } from '../worker/pipeline';
import type { PartitionRuntime } from '../worker/partitions';
import { ZooKeeperStore } from '../shared/store/zookeeper/api';
import type { LoadReport, PartitionLoad } from '../shared/wire';
import { testClusters, uniqueName } from './helpers/kafka';
import { rawZooKeeper, testStoreAuth } from './helpers/zookeeper';
import { waitFor } from './helpers/strait-process';

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

function rows(route: string, topic: string, n: number, bytes = 1000.4): PartitionLoad[] {
  return Array.from({ length: n }, (_, i) => ({
    route,
    topic,
    partition: i,
    bytesPerSec: bytes * (i + 1),
    recordsPerSec: 10.6,
    lag: i === 0 ? -1 : i * 3,
    errored: i === 2,
  }));
}

const byWorker = (list: LoadReport[]) => Object.fromEntries(list.map((r) => [r.worker, r]));

t.test('ZooKeeper: write, read and watch across sessions; rounded rates; ephemeral; refused over 1 MB', async (t) => {
  const deployment = uniqueName('reports');
  const controller = await open(t, deployment);
  const w1 = await open(t, deployment);
  const w2 = await open(t, deployment);
  const seen: LoadReport[][] = [];
  const unwatch = controller.watchReports((r) => seen.push(r));
  t.teardown(unwatch);
  await waitFor('the watch delivers the empty list once armed', () => seen.length >= 1, 10_000, 20);
  t.same(seen[0], []);

  const topic = 'orders/eu.%1'; // a name that needs encoding in a path, never in the record
  const r1: LoadReport = { worker: 'w/1', at: 1000, windowMs: 5000, partitions: [...rows('r1', topic, 4), ...rows('r2', 'other', 2)] };
  r1.partitions[3] = { ...r1.partitions[3]!, errored: true, errorCode: 'STRAIT_SOURCE_NOT_AUTHORIZED' };
  await w1.writeReport(r1);
  await waitFor('the watch delivers w/1', () => seen.at(-1)?.length === 1, 10_000, 20);
  const got = (await controller.readReports())[0]!;
  t.match(got, { worker: 'w/1', at: 1000, windowMs: 5000 });
  t.equal(got.partitions.length, 6);
  t.same(
    got.partitions.find((p) => p.route === 'r1' && p.partition === 1),
    { route: 'r1', topic, partition: 1, bytesPerSec: 2001, recordsPerSec: 11, lag: 3, errored: false },
    'rates rounded to whole numbers; lag and partition kept',
  );
  t.equal(got.partitions.find((p) => p.route === 'r1' && p.partition === 0)!.lag, -1, 'unknown lag stays -1');
  t.equal(got.gaps, undefined, 'a report without gaps has none');
  const gap = {
    route: 'r1',
    topic,
    partition: 2,
    reason: 'retention' as const,
    from: 1000,
    to: 2200,
    skipped: 1200,
    stopped: false,
    at: '2026-11-30T12:00:00.000Z',
  };
  await w1.writeReport({ ...r1, at: 1500, gaps: [gap, { ...gap, reason: 'truncation', from: 5000, to: 4000, skipped: 0, stopped: true }] });
  await waitFor('the report with gaps', async () => (await controller.readReports())[0]?.at === 1500, 10_000, 20);
  t.same(
    (await controller.readReports())[0]!.gaps,
    [gap, { ...gap, reason: 'truncation', from: 5000, to: 4000, skipped: 0, stopped: true }],
    'gaps travel whole',
  );
  t.equal(got.partitions.find((p) => p.route === 'r1' && p.partition === 2)!.errored, true);
  t.equal(got.partitions.find((p) => p.route === 'r1' && p.partition === 2)!.errorCode, undefined, 'errored without a code: no code');
  t.match(
    got.partitions.find((p) => p.route === 'r1' && p.partition === 3),
    { errored: true, errorCode: 'STRAIT_SOURCE_NOT_AUTHORIZED' },
    'the partition code travels with the report',
  );

  // the record: msgpack {v:1, ...}, ephemeral (owned by w1's session)
  const raw = await rawZooKeeper(zkConnect(), testStoreAuth().credentials);
  t.teardown(() => void raw.close());
  const [stat, data] = (await raw.get(`/strait/${deployment}/reports/w%2F1`, false)) as [{ ephemeralOwner: string }, Buffer];
  t.equal(stat.ephemeralOwner, w1.sessionId, "ephemeral, owned by the worker's session");
  t.match(
    unpack(data),
    { v: 1, worker: 'w/1', routes: { r1: { [topic]: [0, 1000, 11, -1, 0, 1, 2001, 11, 3, 0, 2, 3001, 11, 6, 1, 3, 4002, 11, 9, 2] } } },
    "errored: 1 without a code, 2 + the code's index with one",
  );

  // a second worker, then an update of the first: each delivery is the full set
  await w2.writeReport({ worker: 'w2', at: 2000, windowMs: 5000, partitions: rows('r1', 'x', 1) });
  await waitFor('both reports delivered', () => seen.at(-1)?.length === 2, 10_000, 20);
  await w1.writeReport({ ...r1, at: 3000 });
  await waitFor('the update delivered', () => byWorker(seen.at(-1) ?? [])['w/1']?.at === 3000, 10_000, 20);
  t.equal(byWorker(seen.at(-1)!)['w2']?.at, 2000, 'the other report is still there');

  // the worker's session ends: its report goes with it
  await w1.close();
  await waitFor('w/1 report gone from the watch', () => seen.at(-1)?.length === 1 && seen.at(-1)![0]!.worker === 'w2', 10_000, 20);
  t.same(
    (await controller.readReports()).map((r) => r.worker),
    ['w2'],
    'gone from reads too',
  );

  // compact: 20,000 partitions fit in one node; 100,000 do not, and the error says so
  const big = await open(t, deployment);
  await big.writeReport({ worker: 'big', at: 1, windowMs: 5000, partitions: rows('r', 'busy-topic', 20_000, 123_456) });
  await waitFor('the big report delivered', () => (seen.at(-1) ?? []).some((r) => r.worker === 'big'), 10_000, 20);
  t.equal(byWorker(seen.at(-1)!)['big']?.partitions.length, 20_000);
  await t.rejects(big.writeReport({ worker: 'big', at: 2, windowMs: 5000, partitions: rows('r', 'busy-topic', 100_000, 123_456) }), {
    code: 'STRAIT_STORE',
    message: /bytes, over the 1000000 bytes/,
  });
});

t.test('embedded store: write, read, watch', async (t) => {
  const store = new EmbeddedStore(mkdtempSync(join(tmpdir(), 'strait-reports-')));
  t.teardown(() => store.close());
  const seen: LoadReport[][] = [];
  store.watchReports((r) => seen.push(r));
  await waitFor('armed', () => seen.length === 1, 1000, 5);
  const r: LoadReport = { worker: 'w1', at: 5, windowMs: 5000, partitions: rows('r', 't', 3) };
  await store.writeReport(r);
  await waitFor('delivered', () => seen.length === 2, 1000, 5);
  t.same(seen[1], [r]);
  t.same(await store.readReports(), [r]);
});

t.test("a worker's measurement: rates over the window since the last report, lag against the committed offset", async (t) => {
  const config = validateConfig({
    clusters: { a: { bootstrap: '127.0.0.1:1' }, b: { bootstrap: '127.0.0.1:2' } },
    routes: [{ name: 'r', source: 'a', target: 'b' }],
  });
  const store = new EmbeddedStore(mkdtempSync(join(tmpdir(), 'strait-measure-')));
  t.teardown(() => store.close());
  // never started: no pool threads, only the bookkeeping measureLoad reads
  const pipeline = new Pipeline(config, 'w1', store, createLogger('test', 'warn'), new StraitMetrics(false));
  const rt = (partition: number, extra: Partial<PartitionRuntime>): PartitionRuntime => ({
    route: 'r',
    topic: 't',
    partition,
    targetTopic: 'a.t',
    epoch: 1,
    shard: 0,
    committed: -1,
    committable: -1,
    records: 0,
    bytes: 0,
    lastTimestamp: -1,
    paused: false,
    draining: false,
    movedAt: 0,
    runs: new Map(),
    recentRuns: new Map(),
    reported: { records: 0, bytes: 0, at: 1000 },
    ...extra,
  });
  pipeline.partitions.set('r|t/0', rt(0, { records: 500, bytes: 50_000, committed: 400, highWatermark: 1000 }));
  pipeline.partitions.set('r|t/1', rt(1, { highWatermark: 10 })); // nothing committed yet: lag unknown
  pipeline.partitions.set('r|t/2', rt(2, { error: 'MSG_SIZE_TOO_LARGE', committed: 5, highWatermark: 5 }));
  pipeline.partitions.set('r|t/3', rt(3, { draining: true, records: 9 }));
  const first = pipeline.measureLoad(3000);
  t.same(
    first.map((p) => p.partition),
    [0, 1, 2],
    'draining partitions are not reported',
  );
  t.match(first[0], { bytesPerSec: 25_000, recordsPerSec: 250, lag: 600, errored: false }, '50,000 B and 500 records in 2 s; 1000 - 400');
  t.match(first[1], { lag: -1, bytesPerSec: 0 });
  t.match(first[2], { lag: 0, errored: true });
  const p0 = pipeline.partitions.get('r|t/0')!;
  p0.records += 100;
  p0.bytes += 10_000;
  const second = pipeline.measureLoad(4000);
  t.match(second[0], { bytesPerSec: 10_000, recordsPerSec: 100 }, 'the next window counts only what came after the last report');
});
