/**
 * Offsets that left the source log before strait read them are counted, never skipped silently: records are deleted
 * (Kafka's deleteRecords) past the committed offset while strait is stopped; on restart strait reports exactly how
 * many offsets it skipped (strait_records_skipped_total, an error-level log, the worker's status) and goes on from the
 * log start, or, with `onGap: stop`, errors the partition instead. A fresh partition still starts at `start`.
 */
import t from 'tap';
import { bootstrap, createTopic, endOffsets, produce, readAll, uniqueName } from '../helpers/kafka';
import { deleteRecords } from '../helpers/kafka-tools';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';
import { type PartitionProgress, forwarderOptions, loadNative } from '../../native';

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
interface RunStatus {
  worker: { errored: { topic: string; partition: number; code: string; kafkaCode: string | null }[]; gaps: Gap[] };
}

const records = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ partition: 0, key: Buffer.from(`k${from + i}`), value: Buffer.from(`v${from + i}`) }));

async function targetEnd(topic: string): Promise<number> {
  try {
    return (await endOffsets(bootstrap('b'), topic, 1))[0]!;
  } catch {
    return -1;
  }
}

/** Replicates 1,000 records, stops strait, writes 1,500 more and deletes the source log up to offset 2,200. */
async function gapWhileStopped(topic: string, config: string): Promise<void> {
  await createTopic(bootstrap('a'), topic, 1);
  await produce(bootstrap('a'), topic, records(0, 1000));
  const first = new StraitProcess(config);
  await waitFor('1,000 records replicated', async () => (await targetEnd(`a.${topic}`)) === 1000, 90_000, 500);
  if ((await first.stop()) !== 0) throw new Error(`strait exited with an error:\n${first.output.slice(-2000)}`);
  await produce(bootstrap('a'), topic, records(1000, 1500));
  deleteRecords('a', topic, [{ partition: 0, offset: 2200 }]);
}

t.test('onGap continue (default): skipped offsets are counted exactly, logged at error level, and replication goes on', async (t) => {
  const topic = uniqueName('gap');
  const config = writeConfig({
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'gap', source: 'a', target: 'b', topics: { include: [topic] } }],
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  await gapWhileStopped(topic, config);
  const strait = new StraitProcess(config);
  await waitFor('the 300 records after the gap replicated', async () => (await targetEnd(`a.${topic}`)) === 1300, 90_000, 500);
  const values = (await readAll(bootstrap('b'), `a.${topic}`, 1, 1300)).map((r) => r.value!.toString());
  t.same(
    values.slice(0, 1000),
    records(0, 1000).map((r) => r.value.toString()),
    'the first 1,000 records, as before the stop',
  );
  t.same(
    values.slice(1000),
    records(2200, 300).map((r) => r.value.toString()),
    'then the records from the new log start on',
  );

  const metrics = await strait.metrics();
  t.match(
    metrics,
    new RegExp(`strait_records_skipped_total\\{route="gap",topic="${topic}",reason="retention"\\} 1200\\n`),
    'strait_records_skipped_total = 1,200 (2,200 deleted, 1,000 of them already replicated)',
  );
  const status = await strait.json<RunStatus>('/v1/status');
  t.same(
    status.worker.gaps.map((g) => [g.route, g.topic, g.partition, g.reason, g.from, g.to, g.skipped, g.stopped]),
    [['gap', topic, 0, 'retention', 1000, 2200, 1200, false]],
    'the gap is a problem in the worker status',
  );
  t.same(status.worker.errored, [], 'the partition is not errored: it goes on');
  // the controller's view (what `strait controller` shows for a fleet): the gap comes with the worker's load report
  let shown: (Gap & { worker: string })[] = [];
  await waitFor(
    'the gap in the controller status',
    async () => (shown = (await strait.json<{ controller: { gaps: (Gap & { worker: string })[] } }>('/v1/status')).controller.gaps).length > 0,
    30_000,
    500,
  );
  t.same(
    shown.map((g) => [g.route, g.topic, g.partition, g.reason, g.from, g.to, g.skipped, g.stopped]),
    [['gap', topic, 0, 'retention', 1000, 2200, 1200, false]],
    'the controller status lists the gap too',
  );
  t.ok(
    shown.every((g) => typeof g.worker === 'string' && g.worker.length > 0),
    'with the worker that met it',
  );
  const lines = strait.output.split('\n').filter((l) => l.includes('"level":50') && l.includes('"reason":"retention"'));
  t.equal(lines.length, 1, 'one error-level log line for the gap');
  t.match(JSON.parse(lines[0]!), { route: 'gap', topic, partition: 0, from: 1000, to: 2200, skipped: 1200, msg: /1200 offsets skipped/ });

  await produce(bootstrap('a'), topic, records(2500, 100));
  await waitFor('later records replicated', async () => (await targetEnd(`a.${topic}`)) === 1400, 60_000, 500);
  t.match(await strait.metrics(), /strait_records_skipped_total\{route="gap",[^}]*\} 1200\n/, 'the count stays at 1,200');
  t.equal(await strait.stop(), 0);
});

t.test('onGap stop: the partition is errored with STRAIT_OFFSET_GAP and nothing is skipped', async (t) => {
  const topic = uniqueName('gapstop');
  const config = writeConfig({
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'gapstop', source: 'a', target: 'b', onGap: 'stop', topics: { include: [topic] } }],
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  await gapWhileStopped(topic, config);
  const strait = new StraitProcess(config);
  await waitFor('the partition errored', async () => (await strait.json<RunStatus>('/v1/status')).worker.errored.length === 1, 90_000, 500);
  const status = await strait.json<RunStatus>('/v1/status');
  t.same(
    status.worker.errored.map((e) => [e.topic, e.partition, e.code, e.kafkaCode]),
    [[topic, 0, 'STRAIT_OFFSET_GAP', 'OFFSET_OUT_OF_RANGE']],
  );
  t.same(
    status.worker.gaps.map((g) => [g.reason, g.from, g.to, g.skipped, g.stopped]),
    [['retention', 1000, 2200, 1200, true]],
    'the gap is reported with what would be skipped',
  );
  const metrics = await strait.metrics();
  t.match(metrics, new RegExp(`strait_partition_errored\\{route="gapstop",topic="${topic}",partition="0",code="STRAIT_OFFSET_GAP"\\} 1`));
  t.notMatch(metrics, /strait_records_skipped_total\{route="gapstop"/, 'nothing counted as skipped');
  const res = await fetch(`${await strait.metricsUrl}/v1/health`);
  const body = (await res.json()) as { status: string; reasons: { code: string }[] };
  t.same(
    [res.status, body.status, body.reasons.map((r) => r.code)],
    [200, 'degraded', ['STRAIT_OFFSET_GAP']],
    'health: 200 (the default) with status degraded and the reason',
  );
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(await targetEnd(`a.${topic}`), 1000, 'nothing more was replicated');
  t.equal(await strait.stop(), 0);
});

t.test('a fresh partition still starts at `start` (no reset error): latest skips what was there', async (t) => {
  const topic = uniqueName('latest');
  await createTopic(bootstrap('a'), topic, 1);
  await produce(bootstrap('a'), topic, records(0, 100));
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
      routes: [{ name: 'latest', source: 'a', target: 'b', start: 'latest', topics: { include: [topic] } }],
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  // the partition is in the forwarder once its progress is reported (the paused gauge); `latest` is then resolved by
  // one ListOffsets request, given a few seconds here
  await waitFor(
    'target topic created and the partition in the forwarder',
    async () =>
      (await targetEnd(`a.${topic}`)) === 0 &&
      new RegExp(`strait_partition_paused\\{route="latest",topic="${topic}",partition="0"\\} 0`).test(await strait.metrics()),
    90_000,
    500,
  );
  await new Promise((r) => setTimeout(r, 3000));
  await produce(bootstrap('a'), topic, records(100, 50));
  await waitFor('the 50 new records replicated', async () => (await targetEnd(`a.${topic}`)) === 50, 60_000, 500);
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(await targetEnd(`a.${topic}`), 50, 'still 50: the 100 records written before the start were not copied');
  t.same(
    (await readAll(bootstrap('b'), `a.${topic}`, 1, 50)).map((r) => r.value!.toString()),
    records(100, 50).map((r) => r.value.toString()),
    'exactly the records written after the start',
  );
  const status = await strait.json<RunStatus>('/v1/status');
  t.same([status.worker.errored, status.worker.gaps], [[], []], 'no error, no gap');
  t.equal(await strait.stop(), 0);
});

// Seen in bench runs on a healthy single-broker source: false `truncation` gaps with to = from - 1. librdkafka's
// rd_kafka_consume_batch_queue (2.12, rdkafka_queue.c) moves its application position to offset + 1 of every event
// it hands out, an end-of-partition event at offset N included; pausing a partition (the in-flight budget) restarts
// its fetch at that position, N + 1, past the log end: OFFSET_OUT_OF_RANGE. Made on demand here: every record and
// the end-of-partition event are in librdkafka's queue before the first pump, whose records exceed the budget.
t.test('a healthy source reports no gap when the in-flight budget pauses a partition at the log end', async (t) => {
  const topic = uniqueName('eofpause');
  const target = `${topic}.copy`;
  await createTopic(bootstrap('a'), topic, 1);
  await createTopic(bootstrap('b'), target, 1);
  const value = (i: number) => Buffer.from(`v${i}:`.padEnd(1024, 'x'));
  const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ partition: 0, key: Buffer.from(`k${from + i}`), value: value(from + i) }));
  await produce(bootstrap('a'), topic, batch(0, 200));
  const native = loadNative();
  const fw = new native.Forwarder(
    forwarderOptions({
      consumer: { 'bootstrap.servers': bootstrap('a'), 'group.id': uniqueName('eofpause') },
      producer: { 'bootstrap.servers': bootstrap('b') },
      inflightBytes: 64 * 1024,
      batchSize: 1000,
    }),
  );
  t.teardown(() => fw.close(5000));
  t.same(fw.assign([{ topic, partition: 0, targetTopic: target, offset: -2 }]), []);
  await new Promise((r) => setTimeout(r, 3000)); // librdkafka fetches the 200 records and reaches the log end
  const seen: PartitionProgress[] = [];
  let overBudget = false;
  const pumpUntil = async (what: string, done: (p: PartitionProgress) => boolean) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      fw.pump(50);
      const progress = fw.progress();
      overBudget ||= progress.overBudget;
      const p = progress.partitions.find((x) => x.topic === topic)!;
      seen.push(p);
      if (done(p)) return;
      if (Date.now() > deadline) throw new Error(`${what}: not within 60 s (${JSON.stringify(p)})`);
      await new Promise((r) => setImmediate(r));
    }
  };
  await pumpUntil('the 200 records acknowledged', (p) => p.committable === 200 && p.inflight === 0 && !p.paused);
  t.ok(overBudget, 'the first pump took more than the in-flight budget: the partition was paused and resumed');
  // the fetch restarted after the pause answers within a few fetch round trips
  const settle = Date.now() + 3000;
  await pumpUntil('a settled partition', () => Date.now() > settle);
  await produce(bootstrap('a'), topic, batch(200, 50));
  await pumpUntil('the 50 new records acknowledged', (p) => p.committable === 250 && p.inflight === 0);
  t.same(
    seen.flatMap((p) => p.gaps ?? []),
    [],
    'no gap reported',
  );
  t.same(
    seen.filter((p) => p.error !== undefined).map((p) => p.error),
    [],
    'no partition error',
  );
  t.equal(
    seen.reduce((n, p) => n + p.records, 0),
    250,
    'every record delivered once',
  );
  t.equal((await endOffsets(bootstrap('b'), target, 1))[0], 250, 'the target holds 250 records');
  t.same(
    (await readAll(bootstrap('b'), target, 1, 250)).map((r) => r.value!.toString()),
    batch(0, 250).map((r) => r.value.toString()),
    'the target holds the 250 records in order, none twice',
  );
});
