/**
 * The failover scenario's clients: a producer of numbered records (record i goes to partition i % P with key "i", so
 * a reader on either cluster knows exactly which record it holds), and a consumer that reads as a real consumer group
 * from the group's committed offsets, stops per partition at a limit or at the end, and commits what it read.
 */
import Kafka from 'node-rdkafka';
import { disconnectClient } from '../shared/kafka/bounded-call';

/** Produces records 0..n-1 of `recordSize` bytes (at least the key fits) to `topic`; resolves when all are acked. */
export async function produceNumbered(brokers: string, topic: string, partitions: number, n: number, recordSize: number): Promise<void> {
  const producer = new Kafka.Producer({
    'bootstrap.servers': brokers,
    'linger.ms': 10,
    'batch.size': 1048576,
    'queue.buffering.max.messages': 1_000_000,
    acks: -1,
    log_level: 0,
  } as Kafka.ProducerGlobalConfig);
  await new Promise<void>((res, rej) => producer.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  producer.setPollInterval(20);
  const value = Buffer.alloc(recordSize, 'x');
  try {
    for (let i = 0; i < n; i++) {
      for (;;) {
        try {
          producer.produce(topic, i % partitions, value, Buffer.from(String(i)));
          break;
        } catch {
          // local queue full: let delivery reports drain it
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }
    await new Promise<void>((res, rej) => producer.flush(120_000, (e) => (e ? rej(e) : res())));
  } finally {
    await disconnectClient(producer, 30_000);
  }
}

/** The number a numbered record carries in its key (-1 when it is not one of ours). */
export function recordNumber(m: Kafka.Message): number {
  const k = m.key === undefined || m.key === null ? '' : m.key.toString();
  return /^\d+$/.test(k) ? Number(k) : -1;
}

export interface GroupReadOptions {
  /** per partition: read at most this many records (beyond the committed offset) */
  limit: (partition: number) => number;
  /** per partition: the offset to stop at (the high watermark when reading to the end) */
  end: (partition: number) => number;
  /** give up on partitions that got nothing for this long */
  idleMs: number;
  onRecord: (m: Kafka.Message) => void;
}

/**
 * Reads `topic` as consumer group `group` from its committed offsets (the earliest offset where it has none), the way
 * a restarted consumer of that group would, and commits the offset after the last record it read of each partition.
 * Returns the number of records read.
 */
export async function readAsGroup(brokers: string, group: string, topic: string, partitions: number, o: GroupReadOptions): Promise<number> {
  const c = new Kafka.KafkaConsumer(
    { 'bootstrap.servers': brokers, 'group.id': group, 'enable.auto.commit': false, 'enable.partition.eof': false, 'fetch.wait.max.ms': 50, log_level: 0 },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((res, rej) => c.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  let read = 0;
  try {
    const all = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }));
    const committed = await new Promise<Kafka.TopicPartitionOffset[]>((res, rej) => c.committed(all, 10_000, (e, tp) => (e ? rej(e) : res(tp))));
    const next = new Map<number, number>();
    const count = new Map<number, number>();
    const open = new Set<number>();
    for (const tp of committed) {
      const at = tp.offset !== undefined && tp.offset >= 0 ? tp.offset : 0;
      next.set(tp.partition, at);
      count.set(tp.partition, 0);
      if (o.limit(tp.partition) > 0 && at < o.end(tp.partition)) open.add(tp.partition);
    }
    // -2 = OFFSET_BEGINNING: a partition without a committed offset starts at its earliest record
    c.assign(committed.map((tp) => ({ topic, partition: tp.partition, offset: tp.offset !== undefined && tp.offset >= 0 ? tp.offset : -2 })) as never);
    let idleSince = Date.now();
    while (open.size > 0 && Date.now() - idleSince < o.idleMs) {
      const batch = await new Promise<Kafka.Message[]>((res, rej) => c.consume(1000, (e, m) => (e ? rej(e) : res(m))));
      for (const m of batch) {
        const p = m.partition;
        if (!open.has(p)) continue; // fetched past the limit before the pause took effect: not read
        idleSince = Date.now();
        o.onRecord(m);
        read++;
        const n = count.get(p)! + 1;
        count.set(p, n);
        next.set(p, m.offset + 1);
        if (n >= o.limit(p) || m.offset + 1 >= o.end(p)) {
          open.delete(p);
          c.pause([{ topic, partition: p }]);
        }
      }
    }
    const commits = committed.filter((tp) => count.get(tp.partition)! > 0).map((tp) => ({ topic, partition: tp.partition, offset: next.get(tp.partition)! }));
    if (commits.length > 0) c.commitSync(commits);
  } finally {
    await new Promise<void>((res) => c.disconnect(() => res()));
  }
  return read;
}
