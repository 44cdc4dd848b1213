/**
 * Where a partition starts, and what a commit records (issue #12): the committed offset carries the source topic's id
 * and the leader epoch of the record before it. A topic deleted and created again while strait is stopped is
 * replicated from its start and reported (`recreated`); `start: latest` is resolved and committed before the first
 * fetch, so an idle partition restarted later misses nothing; a restart passes the committed leader epoch on assign.
 */
import { join } from 'node:path';
import t from 'tap';
import { loadNative } from '../../native';
import { EmbeddedStore } from '../../shared/store/embedded';
import type { CommittedOffset } from '../../shared/wire';
import { bootstrap, createTopic, endOffsets, produce, readAll, uniqueName, withAdmin } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

interface Gap {
  route: string;
  topic: string;
  partition: number;
  reason: string;
  from: number;
  to: number;
  skipped: number;
  stopped: boolean;
}
interface Start {
  route: string;
  topic: string;
  partition: number;
  offset: number;
  leaderEpoch?: number;
  topicId?: string;
  from: string;
}
interface RunStatus {
  worker: { gaps: Gap[]; starts: Start[]; errored: unknown[] };
}

const records = (prefix: string, from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ partition: 0, key: Buffer.from(`k${from + i}`), value: Buffer.from(`${prefix}${from + i}`) }));

async function targetEnd(topic: string): Promise<number> {
  try {
    return (await endOffsets(bootstrap('b'), topic, 1))[0]!;
  } catch {
    return -1;
  }
}

function routeConfig(name: string, topic: string, extra: Record<string, unknown> = {}): string {
  return writeConfig({
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name, source: 'a', target: 'b', topics: { include: [topic] }, ...extra }],
    controller: { refreshTopicsIntervalMs: 1000 },
  });
}

/** The committed offsets of a route, read from a stopped `strait run`'s embedded store. */
async function storedOffsets(config: string, route: string): Promise<Map<string, CommittedOffset>> {
  const store = new EmbeddedStore(join(config, '..', 'store'));
  try {
    return await store.readOffsets(route);
  } finally {
    await store.close();
  }
}

/** The leader epoch the source broker reports for the partition's log end. */
async function sourceLeaderEpoch(topic: string): Promise<number | undefined> {
  const admin = new (loadNative().Admin)({ 'bootstrap.servers': bootstrap('a') });
  try {
    return (await admin.listOffsets([{ topic, partition: 0 }], 'latest'))[0]?.leaderEpoch;
  } finally {
    admin.close();
  }
}

/** Deletes the source topic and creates it again (one partition, a new topic id) once the deletion went through. */
async function recreateTopic(topic: string): Promise<void> {
  await withAdmin(bootstrap('a'), (admin) => new Promise<void>((res, rej) => admin.deleteTopic(topic, 30_000, (e) => (e ? rej(e) : res()))));
  await waitFor(
    'the topic created again',
    async () => {
      try {
        await createTopic(bootstrap('a'), topic, 1);
        return true;
      } catch {
        return false;
      }
    },
    60_000,
    500,
  );
}

async function stopped(strait: StraitProcess): Promise<void> {
  if ((await strait.stop()) !== 0) throw new Error(`strait exited with an error:\n${strait.output.slice(-2000)}`);
}

t.test('a source topic deleted and created again while strait is stopped is replicated from its start and reported', async (t) => {
  const topic = uniqueName('recreate');
  const config = routeConfig('recreate', topic);
  await createTopic(bootstrap('a'), topic, 1);
  await produce(bootstrap('a'), topic, records('old', 0, 300));
  const first = new StraitProcess(config);
  await waitFor('300 records replicated', async () => (await targetEnd(`a.${topic}`)) === 300, 90_000, 500);
  await stopped(first);
  const before = (await storedOffsets(config, 'recreate')).get(`${topic}/0`);
  t.match(before, { offset: 300, topicId: /^[A-Za-z0-9_-]{22}$/ }, 'the commit carries the topic id');

  await recreateTopic(topic);
  await produce(bootstrap('a'), topic, records('new', 0, 120));

  const strait = new StraitProcess(config);
  await waitFor("the new topic's 120 records replicated", async () => (await targetEnd(`a.${topic}`)) === 420, 90_000, 500);
  const values = (await readAll(bootstrap('b'), `a.${topic}`, 1, 420)).map((r) => r.value!.toString());
  t.same(
    values.slice(300),
    records('new', 0, 120).map((r) => r.value.toString()),
    'every record of the new topic, from its offset 0, after the old ones',
  );

  const status = await strait.json<RunStatus>('/v1/status');
  t.same(
    status.worker.gaps.map((g) => [g.route, g.topic, g.partition, g.reason, g.from, g.to, g.skipped, g.stopped]),
    [['recreate', topic, 0, 'recreated', 300, 0, 0, false]],
    'a recreated gap in the worker status',
  );
  const start = status.worker.starts.find((s) => s.topic === topic)!;
  t.match(start, { from: 'recreated', offset: 0 }, "started at the new topic's log start");
  t.not(start.topicId, before!.topicId, 'under the new topic id');
  t.match(
    await strait.metrics(),
    new RegExp(`strait_records_skipped_total\\{route="recreate",topic="${topic}",reason="recreated"\\} 0\\n`),
    'the metric series for the reason',
  );
  const lines = strait.output.split('\n').filter((l) => l.includes('"level":50') && l.includes('"reason":"recreated"'));
  t.equal(lines.length, 1, 'one error-level log line');
  t.match(JSON.parse(lines[0]!), { route: 'recreate', topic, partition: 0, from: 300, to: 0, msg: /deleted and created again/ });
  await stopped(strait);
  t.match(
    (await storedOffsets(config, 'recreate')).get(`${topic}/0`),
    { offset: 120, topicId: start.topicId },
    "the new topic's offset is committed under its id",
  );

  const again = new StraitProcess(config);
  await waitFor('started again', async () => (await again.json<RunStatus>('/v1/status')).worker.starts.length > 0, 60_000, 500);
  t.match((await again.json<RunStatus>('/v1/status')).worker.starts[0], { from: 'committed', offset: 120 }, 'a second restart resumes the new topic');
  t.same((await again.json<RunStatus>('/v1/status')).worker.gaps, [], 'and reports nothing');
  await stopped(again);
});

t.test('a source topic deleted and created again while its partition runs is replicated from its start and reported', async (t) => {
  const topic = uniqueName('recreaterun');
  // the controller refreshes topics only at start: the re-creation happens between two of its refreshes, so only the
  // worker's own check of its running partitions' topic ids can see it
  const config = writeConfig({
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'recreaterun', source: 'a', target: 'b', topics: { include: [topic] } }],
    controller: { refreshTopicsIntervalMs: 600_000 },
    worker: { reportIntervalMs: 1000 },
  });
  await createTopic(bootstrap('a'), topic, 1);
  await produce(bootstrap('a'), topic, records('old', 0, 300));
  const strait = new StraitProcess(config);
  await waitFor('300 records replicated', async () => (await targetEnd(`a.${topic}`)) === 300, 90_000, 500);
  const oldId = (await strait.json<RunStatus>('/v1/status')).worker.starts.find((x) => x.topic === topic)?.topicId;
  t.match(oldId, /^[A-Za-z0-9_-]{22}$/, 'started under the first topic id');

  await recreateTopic(topic);
  await produce(bootstrap('a'), topic, records('new', 0, 120));

  // the worker's check (every 10 s here) finds the new id and restarts the partition at the new topic's log start
  await waitFor(
    'the partition restarted under the new topic id',
    async () => (await strait.json<RunStatus>('/v1/status')).worker.starts.some((x) => x.topic === topic && x.from === 'recreated'),
    60_000,
    500,
  );
  const want = records('new', 0, 120).map((r) => r.value.toString());
  let values: string[] = [];
  await waitFor(
    'every record of the new topic replicated',
    async () => {
      const end = await targetEnd(`a.${topic}`);
      if (end < 420) return false;
      values = (await readAll(bootstrap('b'), `a.${topic}`, 1, end)).map((r) => r.value!.toString());
      return want.every((v) => values.includes(v));
    },
    90_000,
    1000,
  );
  t.same(
    values.slice(0, 300),
    records('old', 0, 300).map((r) => r.value.toString()),
    "the old topic's records, as before",
  );
  t.same([...new Set(values.slice(300))].sort(), [...want].sort(), 'then every record of the new topic, from its offset 0');
  const status = await strait.json<RunStatus>('/v1/status');
  t.ok(
    status.worker.gaps.some((g) => g.topic === topic && g.reason === 'recreated' && g.to === 0),
    `a recreated gap in the worker status (${status.worker.gaps.map((g) => g.reason).join(', ')})`,
  );
  const restarted = status.worker.starts.filter((x) => x.topic === topic).pop();
  t.match(restarted, { from: 'recreated', offset: 0 }, "restarted at the new topic's log start");
  t.not(restarted?.topicId, oldId, 'under the new topic id');
  t.ok(strait.output.includes('deleted and created again while their partitions ran here'), 'the restart is logged');
  await stopped(strait);
});

t.test('start: latest on an idle partition is committed before the first fetch: records produced while strait was stopped arrive', async (t) => {
  const topic = uniqueName('latest');
  const config = routeConfig('latest', topic, { start: 'latest' });
  await createTopic(bootstrap('a'), topic, 1);
  await produce(bootstrap('a'), topic, records('before', 0, 50));
  const first = new StraitProcess(config);
  await waitFor('the partition started', async () => (await first.json<RunStatus>('/v1/status')).worker.starts.length > 0, 60_000, 500);
  t.match((await first.json<RunStatus>('/v1/status')).worker.starts[0], { from: 'latest', offset: 50 }, '`latest` resolved to the log end');
  await stopped(first);
  t.match((await storedOffsets(config, 'latest')).get(`${topic}/0`), { offset: 50 }, 'and committed although nothing was read');

  await produce(bootstrap('a'), topic, records('stopped', 50, 40));
  const strait = new StraitProcess(config);
  await waitFor('the 40 records produced while stopped replicated', async () => (await targetEnd(`a.${topic}`)) === 40, 60_000, 500);
  const values = (await readAll(bootstrap('b'), `a.${topic}`, 1, 40)).map((r) => r.value!.toString());
  t.same(
    values,
    records('stopped', 50, 40).map((r) => r.value.toString()),
    'exactly the records produced while strait was stopped, none from before its first start',
  );
  await stopped(strait);
});

t.test('the leader epoch is committed with the offset and passed on assign after a restart', async (t) => {
  const topic = uniqueName('epoch');
  const config = routeConfig('epoch', topic);
  await createTopic(bootstrap('a'), topic, 1);
  await produce(bootstrap('a'), topic, records('e', 0, 100));
  const first = new StraitProcess(config);
  await waitFor('100 records replicated', async () => (await targetEnd(`a.${topic}`)) === 100, 90_000, 500);
  await stopped(first);
  const stored = (await storedOffsets(config, 'epoch')).get(`${topic}/0`)!;
  t.equal(stored.offset, 100, 'the offset after the last record');
  t.type(stored.leaderEpoch, 'number', 'a leader epoch is stored with it');
  t.equal(stored.leaderEpoch, await sourceLeaderEpoch(topic), 'the leader epoch the source broker reports for it');

  const strait = new StraitProcess(config);
  await waitFor('started again', async () => (await strait.json<RunStatus>('/v1/status')).worker.starts.length > 0, 60_000, 500);
  t.match(
    (await strait.json<RunStatus>('/v1/status')).worker.starts[0],
    { from: 'committed', offset: 100, leaderEpoch: stored.leaderEpoch, topicId: stored.topicId },
    'the restart assigns the committed offset with its leader epoch',
  );
  await produce(bootstrap('a'), topic, records('e', 100, 10));
  await waitFor('later records replicated (the epoch check passed)', async () => (await targetEnd(`a.${topic}`)) === 110, 60_000, 500);
  t.same((await strait.json<RunStatus>('/v1/status')).worker.gaps, [], 'no gap: the log still holds the committed offset in that epoch');
  await stopped(strait);
});
