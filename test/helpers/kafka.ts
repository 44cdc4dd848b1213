/**
 * Test-side Kafka clients on node-rdkafka: the shared real clusters, unique topic names, produce and read-back.
 */
import { randomBytes } from 'node:crypto';
import Kafka from 'node-rdkafka';
import * as dev from '../../bench/harness/local-cluster';
import { disconnectClient } from '../../shared/kafka/bounded-call';
import { TEST_DEV_DIR } from './dir';

export function testClusters(): dev.DevState {
  const state = dev.readState(TEST_DEV_DIR);
  if (!state) throw new Error(`no test clusters in ${TEST_DEV_DIR}: run the suite through 'npm test' (tap's before hook starts them)`);
  return state;
}

export function bootstrap(alias: string): string {
  const c = testClusters().clusters[alias];
  if (!c) throw new Error(`no test cluster '${alias}'`);
  return c.bootstrap;
}

/**
 * Disconnects a node-rdkafka client, waiting at most `ms`: a disconnect callback that never comes (seen under load)
 * must not hang a test; librdkafka's threads end with the process.
 */
/** bounded; a producer's poll interval stops first (disconnectClient) */
export function disconnect(client: Parameters<typeof disconnectClient>[0], ms = 15_000): Promise<void> {
  return disconnectClient(client, ms);
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function withAdmin<T>(brokers: string, fn: (admin: Kafka.IAdminClient) => Promise<T>): Promise<T> {
  const admin = Kafka.AdminClient.create({ 'bootstrap.servers': brokers, log_level: 0 });
  try {
    return await fn(admin);
  } finally {
    admin.disconnect();
  }
}

export async function createTopic(brokers: string, topic: string, partitions: number, config: Record<string, string> = {}): Promise<void> {
  await withAdmin(
    brokers,
    (admin) =>
      new Promise<void>((res, rej) =>
        admin.createTopic({ topic, num_partitions: partitions, replication_factor: 1, config }, 15_000, (err) => (err ? rej(err) : res())),
      ),
  );
}

export interface TestRecord {
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: { key: string; value: Buffer }[];
  timestamp?: number;
}

export async function connectProducer(brokers: string, extra: Record<string, string | number | boolean> = {}): Promise<Kafka.Producer> {
  const producer = new Kafka.Producer({ 'bootstrap.servers': brokers, dr_cb: true, 'enable.idempotence': true, 'linger.ms': 5, log_level: 0, ...extra });
  await new Promise<void>((res, rej) => producer.connect({ timeout: 10_000 }, (err) => (err ? rej(err) : res())));
  producer.setPollInterval(20);
  return producer;
}

/** Produces every record and waits for all delivery reports; throws on the first failed delivery. */
export async function produce(brokers: string, topic: string, records: TestRecord[], extra: Record<string, string | number | boolean> = {}): Promise<void> {
  const producer = await connectProducer(brokers, extra);
  try {
    let pending = 0;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    producer.on('delivery-report', (err) => {
      pending--;
      if (err && !failure) failure = new Error(`delivery failed: ${err.message}`);
      if (pending < 50_000 || failure) wake?.();
    });
    for (const r of records) {
      for (;;) {
        try {
          const headers = r.headers?.map((h) => ({ [h.key]: h.value }));
          producer.produce(topic, r.partition, r.value, r.key, r.timestamp ?? Date.now(), undefined, headers);
          pending++;
          break;
        } catch (e) {
          if (!/Queue full/i.test((e as Error).message)) throw e;
          await new Promise<void>((res) => {
            wake = res;
            setTimeout(res, 50);
          });
        }
      }
      if (pending >= 100_000)
        await new Promise<void>((res) => {
          wake = res;
          setTimeout(res, 50);
        });
      if (failure) throw failure;
    }
    while (pending > 0 && !failure)
      await new Promise<void>((res) => {
        wake = res;
        setTimeout(res, 50);
      });
    if (failure) throw failure;
  } finally {
    await disconnect(producer);
  }
}

export interface ReadRecord {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: string; value: Buffer }[];
  timestamp: number;
}

/** Reads every partition from the beginning until `count` records arrived (or `timeoutMs` passed). */
export async function readAll(
  brokers: string,
  topic: string,
  partitions: number,
  count: number,
  timeoutMs = 60_000,
  isolation: 'read_committed' | 'read_uncommitted' = 'read_committed',
): Promise<ReadRecord[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'bootstrap.servers': brokers,
      'group.id': uniqueName('reader'),
      'enable.auto.commit': false,
      'enable.partition.eof': false,
      log_level: 0,
      'isolation.level': isolation,
    },
    {},
  );
  await new Promise<void>((res, rej) => consumer.connect({ timeout: 10_000 }, (err) => (err ? rej(err) : res())));
  const out: ReadRecord[] = [];
  try {
    consumer.assign(Array.from({ length: partitions }, (_, p) => ({ topic, partition: p, offset: -2 })) as never);
    const deadline = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < deadline) {
      const batch = await new Promise<Kafka.Message[]>((res, rej) => consumer.consume(5000, (err, msgs) => (err ? rej(err) : res(msgs))));
      for (const m of batch) {
        out.push({
          partition: m.partition,
          offset: m.offset,
          key: m.key === undefined ? null : (m.key as Buffer | null),
          value: m.value,
          headers: (m.headers ?? []).map((h) => {
            const [key, value] = Object.entries(h)[0] as [string, Buffer];
            return { key, value: Buffer.from(value) };
          }),
          timestamp: m.timestamp ?? -1,
        });
      }
    }
  } finally {
    await disconnect(consumer);
  }
  return out;
}

/**
 * `promise`, or a rejection after `ms`: a node-rdkafka callback that never comes (seen under load: a watermark query
 * whose callback never fired, leaving the test waiting on nothing) becomes a failure the caller can retry.
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        res(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        rej(e as Error);
      },
    );
  });
}

/** High watermark of every partition (bounded: 30 s). */
export function endOffsets(brokers: string, topic: string, partitions: number): Promise<number[]> {
  return within(endOffsetsNow(brokers, topic, partitions), 30_000, `watermarks of ${topic} on ${brokers}`);
}

async function endOffsetsNow(brokers: string, topic: string, partitions: number): Promise<number[]> {
  const producer = new Kafka.Producer({ 'bootstrap.servers': brokers, log_level: 0 });
  await new Promise<void>((res, rej) => producer.connect({ timeout: 10_000 }, (err) => (err ? rej(err) : res())));
  try {
    const out: number[] = [];
    for (let p = 0; p < partitions; p++) {
      out.push(await new Promise<number>((res, rej) => producer.queryWatermarkOffsets(topic, p, 5000, (err, o) => (err ? rej(err) : res(o.highOffset)))));
    }
    return out;
  } finally {
    await disconnect(producer);
  }
}

/** Records in a topic (sum of high watermarks), or -1 while the topic is not there yet. */
export async function totalRecords(brokers: string, topic: string, partitions: number): Promise<number> {
  try {
    return (await endOffsets(brokers, topic, partitions)).reduce((x, y) => x + y, 0);
  } catch {
    return -1;
  }
}

/** A seeded PRNG (mulberry32) so generated test data is reproducible: the bench's. */
export { prng } from '../../bench/assign';

export function sameRecord(a: ReadRecord, b: ReadRecord): boolean {
  const eq = (x: Buffer | null, y: Buffer | null) => (x === null || y === null ? x === y : x.equals(y));
  return (
    eq(a.key, b.key) &&
    eq(a.value, b.value) &&
    a.timestamp === b.timestamp &&
    a.headers.length === b.headers.length &&
    a.headers.every((h, i) => h.key === b.headers[i]!.key && h.value.equals(b.headers[i]!.value))
  );
}

export async function createPartitions(brokers: string, topic: string, total: number): Promise<void> {
  await withAdmin(brokers, (admin) => new Promise<void>((res, rej) => admin.createPartitions(topic, total, 15_000, (err) => (err ? rej(err) : res()))));
}
