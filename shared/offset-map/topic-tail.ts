/**
 * Reads one of strait's own compacted topics (`__strait-offset-map`, `__strait-checkpoints`) on a cluster up to its
 * current end, and on later calls only what was appended since. No consumer group membership: partitions are
 * assigned directly, nothing is committed.
 */
import Kafka from 'node-rdkafka';
import type { ClientProps } from '../config';
import { StraitError } from '../errors';

const OFFSET_BEGINNING = -2;

export class TopicTail {
  private consumer: Kafka.KafkaConsumer | undefined;
  private readonly next = new Map<number, number>();
  /** catch-ups run one at a time: one librdkafka consumer must never be assigned and polled from two loops at once */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly clusterAlias: string,
    private readonly props: ClientProps,
    readonly topic: string,
    private readonly onRecord: (key: Buffer | null, value: Buffer | null, partition: number, offset: number) => void,
  ) {}

  private async connect(timeoutMs: number): Promise<Kafka.KafkaConsumer> {
    if (this.consumer) return this.consumer;
    const c = new Kafka.KafkaConsumer(
      {
        ...this.props,
        'group.id': `strait-reader-${this.topic}`,
        'enable.auto.commit': false,
        'enable.partition.eof': false,
        'isolation.level': 'read_committed',
        log_level: 0,
      } as Kafka.ConsumerGlobalConfig,
      { 'auto.offset.reset': 'earliest' },
    );
    try {
      await new Promise<void>((res, rej) =>
        c.connect({ timeout: timeoutMs }, (err) =>
          err ? rej(new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${this.clusterAlias}': ${err.message}`, { retriable: true })) : res(),
        ),
      );
    } catch (e) {
      c.disconnect(); // its librdkafka instance goes with it; the next pass makes a new one
      throw e;
    }
    this.consumer = c;
    return c;
  }

  private partitions(c: Kafka.KafkaConsumer, timeoutMs: number): Promise<number> {
    return new Promise((res, rej) =>
      c.getMetadata({ topic: this.topic, timeout: timeoutMs }, (err, md) => {
        if (err) return rej(new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${this.clusterAlias}': ${err.message}`, { retriable: true }));
        const t = md.topics.find((x) => x.name === this.topic);
        res(t === undefined || (t as { error?: unknown }).error ? 0 : t.partitions.length);
      }),
    );
  }

  private highWatermark(c: Kafka.KafkaConsumer, partition: number, timeoutMs: number): Promise<number> {
    return new Promise((res, rej) => {
      // librdkafka answers within its timeout; the extra bound covers a callback that never comes (seen under load)
      const timer = setTimeout(
        () =>
          rej(
            new StraitError('STRAIT_KAFKA', `${this.topic} on '${this.clusterAlias}': no watermark answer within ${timeoutMs + 5000} ms`, { retriable: true }),
          ),
        timeoutMs + 5000,
      );
      c.queryWatermarkOffsets(this.topic, partition, timeoutMs, (err, o) => {
        clearTimeout(timer);
        if (err) rej(new StraitError('STRAIT_KAFKA', `${this.topic} on '${this.clusterAlias}': ${err.message}`, { retriable: true }));
        else res(o.highOffset);
      });
    });
  }

  /** Reads everything appended up to the end as of now (as of when it starts). Returns the number of records read. */
  catchUp(timeoutMs = 15_000): Promise<number> {
    const run = this.queue.then(() => this.catchUpNow(timeoutMs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async catchUpNow(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const c = await this.connect(timeoutMs);
    const n = await this.partitions(c, timeoutMs);
    if (n === 0) return 0;
    const ends: number[] = [];
    for (let p = 0; p < n; p++) ends.push(await this.highWatermark(c, p, Math.max(1000, deadline - Date.now())));
    const behind = ends.map((end, p) => end > (this.next.get(p) ?? 0));
    if (!behind.some(Boolean)) return 0;
    c.assign(ends.map((_, p) => ({ topic: this.topic, partition: p, offset: this.next.get(p) ?? OFFSET_BEGINNING })) as never);
    let read = 0;
    try {
      while (ends.some((end, p) => (this.next.get(p) ?? 0) < end)) {
        if (Date.now() > deadline) {
          throw new StraitError('STRAIT_KAFKA', `reading ${this.topic} on cluster '${this.clusterAlias}' did not reach its end within ${timeoutMs} ms`, {
            retriable: true,
          });
        }
        const batch = await new Promise<Kafka.Message[]>((res, rej) => c.consume(1000, (err, msgs) => (err ? rej(err) : res(msgs))));
        for (const m of batch) {
          this.onRecord((m.key as Buffer | null | undefined) ?? null, m.value ?? null, m.partition, m.offset);
          this.next.set(m.partition, m.offset + 1);
          read++;
        }
        if (batch.length === 0) {
          // transaction markers and compacted-away offsets advance the position without delivering a record
          const positions = c.position(undefined as never) as { partition: number; offset?: number }[];
          for (const pos of positions)
            if (pos.offset !== undefined && pos.offset >= 0) this.next.set(pos.partition, Math.max(this.next.get(pos.partition) ?? 0, pos.offset));
        }
      }
    } finally {
      c.unassign();
    }
    return read;
  }

  async close(): Promise<void> {
    await this.queue;
    const c = this.consumer;
    this.consumer = undefined;
    if (c)
      await new Promise<void>((res) => {
        // bounded: a disconnect callback that never comes must not hold a shutdown
        const timer = setTimeout(res, 30_000);
        c.disconnect(() => {
          clearTimeout(timer);
          res();
        });
      });
  }
}
