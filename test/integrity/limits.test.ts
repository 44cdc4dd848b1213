/**
 * Edges of the data path: records up to the target's max.message.bytes replicate; a record the target rejects as too
 * large stops its partition with a clear error and is never skipped (the committed offset stays before it) while
 * other partitions keep replicating; committed offsets are mirrored to a consumer group on the source; an unreachable
 * cluster is named in the status.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import Kafka from 'node-rdkafka';
import { bootstrap, createTopic, endOffsets, produce, readAll, uniqueName } from '../helpers/kafka';
import { loadNative } from '../../native';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

async function groupOffsets(brokers: string, group: string, topic: string, partitions: number): Promise<number[]> {
  const c = new Kafka.KafkaConsumer({ 'bootstrap.servers': brokers, 'group.id': group, log_level: 0 }, {});
  await new Promise<void>((res, rej) => c.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  try {
    const tps = await new Promise<Kafka.TopicPartitionOffset[]>((res, rej) =>
      c.committed(
        Array.from({ length: partitions }, (_, p) => ({ topic, partition: p })),
        10_000,
        (e, r) => (e ? rej(e) : res(r)),
      ),
    );
    return tps.map((x) => x.offset);
  } finally {
    await new Promise<void>((res) => c.disconnect(() => res()));
  }
}

t.test('too-large records stop only their partition; large records within the limit pass; source group mirrors offsets', async (t) => {
  const a = bootstrap('a');
  const b = bootstrap('b');
  const topic = uniqueName('limits');
  // the source accepts 3 MB records; the target topic gets Kafka's default limit (~1 MB) because configs are not synced
  await createTopic(a, topic, 2, { 'max.message.bytes': String(3 * 1024 * 1024) });
  // random bytes: the broker checks the compressed batch size, and strait's default codec would shrink repeated bytes
  const big = randomBytes(900 * 1024); // within the target's limit
  const huge = randomBytes(2 * 1024 * 1024); // over it
  await produce(
    a,
    topic,
    [
      ...Array.from({ length: 5 }, (_, i) => ({ partition: 0, key: Buffer.from(`p0-${i}`), value: i === 3 ? huge : Buffer.from(`small-${i}`) })),
      ...Array.from({ length: 5 }, (_, i) => ({ partition: 1, key: Buffer.from(`p1-${i}`), value: big })),
    ],
    { 'message.max.bytes': 10 * 1024 * 1024 },
  );
  const strait = new StraitProcess(
    writeConfig({
      deployment: 'limits',
      clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
      routes: [{ name: 'limits', source: 'a', target: 'b', topics: { include: [topic] }, syncTopicConfigs: false }],
      worker: { commitIntervalMs: 300, targetRetryMs: 1000 },
    }),
  );
  await waitFor(
    'partition 1 replicated',
    async () => {
      try {
        return (await endOffsets(b, `a.${topic}`, 2))[1] === 5;
      } catch {
        return false;
      }
    },
    60_000,
  );
  t.pass('900 KB records within the target limit replicate');
  await waitFor('partition 0 stopped with an error', async () => (await strait.status()).worker.totals.errored === 1, 30_000);
  const ends = await endOffsets(b, `a.${topic}`, 2);
  // records after the rejected one that were already in flight may land; the committed offset (checked below)
  // stays at the rejected record, so a restart after the fix replays from there: never skipped
  t.ok(ends[0]! >= 3, 'partition 0: the records before the too-large one landed');
  // the partition error codes of issue #12: strait's code, with Kafka's own name beside it
  t.match(
    strait.output,
    /"code":"STRAIT_TARGET_REJECTED","kafkaCode":"MSG_SIZE_TOO_LARGE".*target rejected offset 3 of /,
    'the log names the error and the offset',
  );
  t.match(await strait.metrics(), /strait_errors_total\{route="limits",topic="[^"]+",code="STRAIT_TARGET_REJECTED"\} 1/);
  await waitFor(
    'offsets mirrored to the source group',
    async () => {
      const g = await groupOffsets(a, 'strait.limits.limits', topic, 2);
      return g[0] === 3 && g[1] === 5;
    },
    30_000,
    500,
  );
  t.pass("the source cluster's group strait.limits.limits holds 3 (before the rejected record) and 5");
  await new Promise((r) => setTimeout(r, 3000));
  t.equal((await strait.status()).worker.totals.errored, 1, 'retried every second or two, the refusal persists: still errored (never shown as a recovery)');
  t.match(await strait.metrics(), /strait_errors_total\{route="limits",topic="[^"]+",code="STRAIT_TARGET_REJECTED"\} 1\n/, 'and counted once');

  // the cause goes away without anyone re-assigning the partition: the target topic takes 3 MB records now
  const admin = new (loadNative().Admin)({ 'bootstrap.servers': b });
  try {
    await admin.alterTopicConfigs(`a.${topic}`, { 'max.message.bytes': String(3 * 1024 * 1024) }, [], 10_000);
  } finally {
    admin.close();
  }
  await waitFor('the partition recovers by itself', async () => (await strait.status()).worker.totals.errored === 0, 60_000, 500);
  t.ok(strait.output.includes('makes progress again (was STRAIT_TARGET_REJECTED)'), 'its recovery is logged');
  const landed = await readAll(
    b,
    `a.${topic}`,
    2,
    (await endOffsets(b, `a.${topic}`, 2)).reduce((x, y) => x + y, 0),
  );
  const keys = new Set(landed.filter((r) => r.partition === 0).map((r) => r.key!.toString()));
  t.same([...keys].sort(), ['p0-0', 'p0-1', 'p0-2', 'p0-3', 'p0-4'], 'every record of partition 0 on the target, the once-refused one included');
  t.ok(
    landed.some((r) => r.partition === 0 && r.key!.toString() === 'p0-3' && r.value!.length === huge.length),
    'the 2 MB record whole',
  );
  // what landed after the refused record before the retry is sent again: duplicates, and strait counts them exactly
  const duplicates = landed.filter((r) => r.partition === 0).length - keys.size;
  const resent = Number(/strait_records_resent_total\{route="limits",topic="[^"]+"\} (\d+)/.exec(await strait.metrics())?.[1] ?? 0);
  t.equal(resent, duplicates, `strait_records_resent_total counts the duplicates the retry made (${duplicates})`);
  await waitFor('offsets mirrored past it', async () => (await groupOffsets(a, 'strait.limits.limits', topic, 2))[0] === 5, 30_000, 500);
  t.equal(await strait.stop(), 0);
});

t.test('an unreachable cluster is named, and strait keeps running', async (t) => {
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: '127.0.0.1:1' }, b: { bootstrap: bootstrap('b') } },
      routes: [{ name: 'nowhere', source: 'a', target: 'b' }],
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  await waitFor(
    'problem reported',
    async () => (await strait.status()).controller.problems.some((p) => /cluster 'a' \(127\.0\.0\.1:1\) is unreachable/.test(p.message)),
    60_000,
    500,
  );
  t.pass('status names the unreachable cluster and its bootstrap');
  // refreshes run every second, but the dead cluster is asked less and less often (1 s doubling, up to 60 s)
  await waitFor(
    'backoff grows past the refresh interval',
    async () => (await strait.status()).controller.problems.some((p) => (p.retryInMs ?? 0) > 1500),
    60_000,
    500,
  );
  t.pass('the controller backs off from the unreachable cluster');
  t.equal(strait.child.exitCode, null, 'still running');
  t.equal(await strait.stop(), 0);
});
