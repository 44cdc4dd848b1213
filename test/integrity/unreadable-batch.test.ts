/**
 * Issue #12, the zstd case, provoked for real: a source partition holding a record batch this librdkafka cannot
 * decode. Every build of strait now has zstd, so the batch names a codec no build has (attributes codec id 7, unused
 * by Kafka): librdkafka's rd_kafka_msgset_reader_decompress (rdkafka_msgset_reader.c) sends every codec it was not
 * built with, zstd in a build without it as much as an unknown id, to the same `default:` branch, which fails the
 * fetch with _NOT_IMPLEMENTED, "Decompression (codec 0x..) of message at <offset> ... failed: Local: Not implemented",
 * and leaves the fetch position on the batch.
 *
 * No producer can send such a batch (the broker's LogValidator refuses the codec), so it is written into the log: a
 * 1-broker cluster of this file's own is stopped cleanly, one hand-built batch (magic 2, a correct CRC-32C) is appended
 * to the partition's active segment at the log end offset, and the broker starts again. After a clean shutdown it
 * does not scan the segment; it serves the bytes as they are. More records are produced after it.
 *
 * `strait run` must then error the partition at once (STRAIT_SOURCE_UNREADABLE, kafkaCode _NOT_IMPLEMENTED) in its
 * status, metrics, health and one error-level log line, replicate the records before the batch byte for byte, and go
 * no further: nothing after the batch is skipped silently. A controller and a worker over ZooKeeper show the same in
 * GET /v1/partitions, and go past the batch only when the operator deletes the records up to its end (an offset gap,
 * counted as skipped).
 */
import { existsSync, readFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import * as dev from '../../bench/harness/local-cluster';
import { bootstrap, createTopic, endOffsets, produce, readAll, uniqueName, type TestRecord } from '../helpers/kafka';
import { deleteRecords } from '../helpers/kafka-tools';
import { recordBatch, segmentBatches } from '../helpers/record-batch';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';
import { testStoreAuth, testZooKeeper } from '../helpers/zookeeper';
import type { ErroredPartition } from '../../worker/partitions';

const DIR = join(projectRoot(), '.strait', 'test-codec');
/** the attributes' codec bits: 0-4 are none, gzip, snappy, lz4, zstd; 5-7 name no codec */
const UNKNOWN_CODEC = 7;
const BEFORE = 50;
const BAD = 3;
const AFTER = 20;

t.teardown(async () => {
  await stopAll();
  await dev.down({ dir: DIR });
});

const T0 = Date.now() - 60_000;
const records = (from: number, n: number): TestRecord[] =>
  Array.from({ length: n }, (_, i) => ({
    partition: 0,
    key: (from + i) % 5 === 0 ? null : Buffer.from(`k${from + i}`),
    value: Buffer.from(`v${from + i}`),
    // node-rdkafka's producer sends a header value as a C string (cut at the first NUL): text only
    headers: [
      { key: 'h', value: Buffer.from(`h${from + i}`) },
      { key: 'h', value: Buffer.from('again') },
    ],
    // recent: a timestamp older than retention.ms (7 days) lets the broker delete the segment (and the target's copy)
    timestamp: T0 + from + i,
  }));

interface Status {
  controller: { errored: number; erroredPartitions: { route: string; topic: string; partition: number; code: string }[] };
  worker: { errored: ErroredPartition[]; gaps: unknown[] };
}

const topic = uniqueName('badcodec');
const before = records(0, BEFORE);
/** the bootstrap of this file's own cluster, the source */
let own = '';

async function end(brokers: string, topic: string): Promise<number> {
  try {
    return (await endOffsets(brokers, topic, 1))[0]!;
  } catch {
    return -1;
  }
}

/** On a failure, what each process said besides info lines (the last 30 lines). */
function saysOnFailure(t: Test, processes: Record<string, StraitProcess>): void {
  t.teardown(() => {
    if (t.passing()) return;
    for (const [name, p] of Object.entries(processes))
      t.comment(
        `${name}:\n${p.output
          .split('\n')
          .filter((l) => !l.includes('"level":30'))
          .slice(-30)
          .join('\n')}`,
      );
  });
}

t.test(`the source: a partition with a batch of codec ${UNKNOWN_CODEC} between good records, served by a real broker`, async (t) => {
  await dev.down({ dir: DIR });
  const state = await dev.up({ clusters: 1, brokers: 1, zookeeper: false, dir: DIR, kafkaVersion: process.env.STRAIT_KAFKA_VERSION });
  const alias = Object.keys(state.clusters)[0]!;
  const cluster = state.clusters[alias]!;
  own = cluster.bootstrap;
  await createTopic(own, topic, 1);
  await produce(own, topic, before);
  t.equal(await end(own, topic), BEFORE);

  // ---- the bad batch, appended to the stopped broker's active segment at the log end offset
  await dev.stopBroker(alias, 1, { dir: DIR });
  const data = join(cluster.dir, 'data');
  t.ok(existsSync(join(data, '.kafka_cleanshutdown')), 'the broker shut down cleanly: it will not scan the log when it starts');
  const segment = join(data, `${topic}-0`, '00000000000000000000.log');
  const batches = segmentBatches(readFileSync(segment));
  const last = batches[batches.length - 1]!;
  t.equal(last.lastOffset + 1, BEFORE, 'the segment ends at the log end offset');
  const now = Date.now();
  appendFileSync(
    segment,
    recordBatch({
      baseOffset: BEFORE,
      partitionLeaderEpoch: last.partitionLeaderEpoch,
      codec: UNKNOWN_CODEC,
      records: Array.from({ length: BAD }, (_, i) => ({ key: Buffer.from(`bad${i}`), value: Buffer.from(`bad${i}`), timestamp: now })),
    }),
  );
  t.same(
    segmentBatches(readFileSync(segment)).map((b) => [b.baseOffset, b.lastOffset, b.codec, b.crcValid]),
    [...batches.map((b) => [b.baseOffset, b.lastOffset, b.codec, true]), [BEFORE, BEFORE + BAD - 1, UNKNOWN_CODEC, true]],
    "the segment holds the bad batch after the good ones, its CRC made as the broker's batches have theirs",
  );
  await dev.startBroker(alias, 1, { dir: DIR });
  await waitFor('the broker serves the partition again', async () => (await end(own, topic)) >= 0, 60_000, 500);
  t.equal(await end(own, topic), BEFORE + BAD, 'the broker loaded the batch: the log end offset moved past it');
  await produce(own, topic, records(BEFORE + BAD, AFTER));
  t.equal(await end(own, topic), BEFORE + BAD + AFTER, 'records are produced after it');
});

t.test('strait run errors the partition at once, replicates what is before the batch and skips nothing after it', async (t) => {
  const strait = new StraitProcess(
    writeConfig({
      clusters: { own: { bootstrap: own }, b: { bootstrap: bootstrap('b') } },
      routes: [{ name: 'badcodec', source: 'own', target: 'b', topics: { include: [topic] } }],
      controller: { refreshTopicsIntervalMs: 1000 },
      // a short stall timeout: the precise error must stay, not give way to STRAIT_PARTITION_STALLED
      worker: { commitIntervalMs: 500, reportIntervalMs: 1000, stallTimeoutMs: 2000 },
      health: { degradedStatus: 503 },
    }),
  );
  saysOnFailure(t, { strait });
  let errored: ErroredPartition[] = [];
  await waitFor(
    'the partition errored in the worker status',
    async () => (errored = (await strait.json<Status>('/v1/status')).worker.errored).length > 0,
    90_000,
    500,
  );
  t.same(
    errored.map((e) => [e.route, e.topic, e.partition, e.code, e.kafkaCode]),
    [['badcodec', topic, 0, 'STRAIT_SOURCE_UNREADABLE', '_NOT_IMPLEMENTED']],
    "worker status: the partition, strait's code for a batch it cannot decode, and librdkafka's",
  );
  t.match(
    errored[0]!.cause,
    new RegExp(`^source ${topic}\\[0\\]: Decompression \\(codec 0x${UNKNOWN_CODEC}\\) of message at ${BEFORE} of \\d+ bytes failed: Local: Not implemented$`),
    'the cause is what librdkafka says of the batch the broker served, at its offset',
  );

  const target = `own.${topic}`;
  await waitFor(`the ${BEFORE} records before the batch on the target`, async () => (await end(bootstrap('b'), target)) === BEFORE, 60_000, 500);
  const copied = await readAll(bootstrap('b'), target, 1, BEFORE, 30_000);
  t.same(
    copied.map((r) => [r.offset, r.key, r.value, r.headers, r.timestamp]),
    before.map((r, i) => [i, r.key, r.value, r.headers, r.timestamp]),
    'the records before the batch are replicated byte for byte',
  );

  // librdkafka fetches the batch again and again meanwhile; the state must not flap nor the log repeat
  await new Promise((r) => setTimeout(r, 6000));
  const status = await strait.json<Status>('/v1/status');
  t.same(
    status.worker.errored.map((e) => [e.code, e.kafkaCode]),
    [['STRAIT_SOURCE_UNREADABLE', '_NOT_IMPLEMENTED']],
    'still errored with the same code (not replaced by STRAIT_PARTITION_STALLED)',
  );
  t.same(status.worker.gaps, [], 'no offset gap: strait did not jump over the batch');
  await waitFor('the controller sees the errored partition', async () => (await strait.json<Status>('/v1/status')).controller.errored === 1, 30_000, 500);
  t.same(
    (await strait.json<Status>('/v1/status')).controller.erroredPartitions.map((p) => [p.route, p.topic, p.partition, p.code]),
    [['badcodec', topic, 0, 'STRAIT_SOURCE_UNREADABLE']],
    "the controller's status (the load reports /v1/partitions shows) carries the code",
  );

  const metrics = await strait.metrics();
  const labels = `route="badcodec",topic="${topic}"`;
  t.match(metrics, new RegExp(`strait_partition_errored\\{${labels},partition="0",code="STRAIT_SOURCE_UNREADABLE"\\} 1\\n`), 'strait_partition_errored = 1');
  t.match(metrics, new RegExp(`strait_errors_total\\{${labels},code="STRAIT_SOURCE_UNREADABLE"\\} 1\\n`), 'entered the errored state once');
  t.notMatch(metrics, new RegExp(`strait_errors_total\\{${labels},code="STRAIT_PARTITION_STALLED"\\}`), 'never counted as a stall');
  t.notMatch(metrics, new RegExp(`strait_records_skipped_total\\{${labels}`), 'no offset counted as skipped');
  t.match(metrics, new RegExp(`strait_records_total\\{${labels},partition="0"\\} ${BEFORE}\\n`), `${BEFORE} records replicated`);
  t.match(
    metrics,
    new RegExp(`strait_lag_records\\{${labels},partition="0"\\} ${BAD + AFTER}\\n`),
    'the lag holds the batch and everything after it: the partition stands at the batch',
  );

  const res = await fetch(`${await strait.metricsUrl}/v1/health`);
  const health = (await res.json()) as { status: string; reasons?: { code: string; topic?: string; partition?: number; message: string }[] };
  t.same(
    [res.status, health.status, health.reasons?.map((r) => [r.code, r.topic, r.partition])],
    [503, 'degraded', [['STRAIT_SOURCE_UNREADABLE', topic, 0]]],
    'health is degraded, naming the code and the partition',
  );

  const lines = strait.output.split('\n').filter((l) => l.startsWith('{'));
  const errorLines = lines.filter((l) => l.includes('"level":50') && l.includes('"code":"STRAIT_SOURCE_UNREADABLE"'));
  t.equal(errorLines.length, 1, 'one error-level log line, not one per fetch');
  t.match(
    JSON.parse(errorLines[0]!),
    { route: 'badcodec', topic, partition: 0, code: 'STRAIT_SOURCE_UNREADABLE', kafkaCode: '_NOT_IMPLEMENTED', cause: /Decompression \(codec 0x7\)/ },
    'the log line carries route, topic, partition, codes and cause',
  );
  t.same(
    lines.filter((l) => /"level":(40|50)/.test(l) && (l.includes('Not implemented') || l.includes(topic))).length,
    1,
    'no other warning or error line about it (no warning-only reporting, no repeats)',
  );
  t.notOk(strait.output.includes('makes progress again'), 'the errored state never cleared meanwhile');

  t.equal(await end(bootstrap('b'), target), BEFORE, 'nothing after the batch reached the target');
  t.equal(await strait.stop(), 0, 'stops cleanly');
});

t.test('a controller and a worker (ZooKeeper store): GET /v1/partitions shows it errored; deleting the records up to the batch clears it', async (t) => {
  // another source alias: the target topic is own2.<topic>, apart from the one strait run wrote
  const config = writeConfig({
    deployment: uniqueName('badcodec'),
    clusters: { own2: { bootstrap: own }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'badcodec', source: 'own2', target: 'b', topics: { include: [topic] } }],
    store: { type: 'zookeeper', connect: testZooKeeper().connect, auth: testStoreAuth() },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0 } },
    worker: { threads: 1, commitIntervalMs: 500, reportIntervalMs: 1000 },
  });
  const controller = new StraitProcess(config, 'controller');
  const worker = new StraitProcess(config, 'worker');
  saysOnFailure(t, { controller, worker });
  const rest = await controller.restUrl;
  interface Row {
    route: string;
    topic: string;
    partition: number;
    errored: boolean;
    errorCode: string | null;
  }
  let rows: Row[] = [];
  await waitFor(
    'the errored partition in GET /v1/partitions',
    async () => {
      const res = await fetch(`${rest}/v1/partitions`);
      rows = res.ok ? ((await res.json()) as Row[]) : [];
      return rows.some((r) => r.errored);
    },
    90_000,
    500,
  );
  t.same(
    rows.map((r) => [r.route, r.topic, r.partition, r.errored, r.errorCode]),
    [['badcodec', topic, 0, true, 'STRAIT_SOURCE_UNREADABLE']],
    '/v1/partitions: errored, with the code',
  );
  t.match(
    await worker.metrics(),
    new RegExp(`strait_partition_errored\\{route="badcodec",topic="${topic}",partition="0",code="STRAIT_SOURCE_UNREADABLE"\\} 1\\n`),
    "the worker's strait_partition_errored",
  );
  await waitFor(`the ${BEFORE} records before the batch on the target`, async () => (await end(bootstrap('b'), `own2.${topic}`)) >= BEFORE, 60_000, 500);
  t.equal(await end(bootstrap('b'), `own2.${topic}`), BEFORE, 'the records before the batch, and nothing after it, on the target');

  // the operator's way past the batch: delete the records up to its end; the route meets that as an offset gap
  deleteRecords({ bootstrap: own }, topic, [{ partition: 0, offset: BEFORE + BAD }]);
  await waitFor(`the ${AFTER} records after the batch on the target`, async () => (await end(bootstrap('b'), `own2.${topic}`)) >= BEFORE + AFTER, 60_000, 500);
  t.equal(await end(bootstrap('b'), `own2.${topic}`), BEFORE + AFTER, 'every record after the batch, once');
  await waitFor(
    'the partition no longer errored in GET /v1/partitions',
    async () => {
      const res = await fetch(`${rest}/v1/partitions`);
      return res.ok && ((await res.json()) as Row[]).every((r) => !r.errored);
    },
    30_000,
    500,
  );
  const metrics = await worker.metrics();
  t.notMatch(metrics, /strait_partition_errored\{/, 'the errored series is gone');
  t.match(
    metrics,
    new RegExp(`strait_records_skipped_total\\{route="badcodec",topic="${topic}",reason="retention"\\} ${BAD}\\n`),
    `the ${BAD} offsets of the deleted batch are counted as skipped`,
  );
  t.ok(worker.output.includes('makes progress again (was STRAIT_SOURCE_UNREADABLE)'), 'its recovery is logged');
  t.equal(await worker.stop(), 0, 'the worker stops cleanly');
  t.equal(await controller.stop(), 0, 'the controller stops cleanly');
});
