/**
 * Reads one of strait's own compacted topics (`__strait-offset-map`, `__strait-checkpoints`) on a cluster up to its
 * current end, and on later calls only what was appended since. No consumer group membership: partitions are
 * assigned directly, nothing is committed.
 *
 * Every call to the client is bounded in time, and a catch-up as a whole ends by its deadline: the topics are written
 * while they are read (exactly-once workers commit offset-map runs every transaction interval), so "read until no record
 * comes for a while" never ends under a steady writer. A consume call returns at the partitions' end (end-of-partition
 * events) or after a short wait for records; a call that does not answer within its bound drops the client (the call
 * cannot be cancelled) and the next catch-up goes on, with a new one, from where this one got.
 */
import Kafka from 'node-rdkafka';
import type { ClientProps } from '../config';
import { StraitError } from '../errors';
import { CALLBACK_SLACK_MS, CallTimedOut, boundedCall, disconnectClient } from '../kafka/bounded-call';

const OFFSET_BEGINNING = -2;
/** how long one consume call waits for a record that has not been fetched yet */
const CONSUME_WAIT_MS = 100;
/** records one consume call returns at most */
const CONSUME_BATCH = 1000;

/**
 * How many records to ask one consume call for, with `remaining` offsets left below the end. node-rdkafka's batch
 * consume ends only with that many records or after CONSUME_WAIT_MS without one: an end-of-partition event does not
 * end it, and librdkafka raises none while a writer keeps each fetch busy (seen: one call ran 13 s, 430 offsets past the
 * end, beside a writer committing every 50 ms). Asking for at most half the offsets left ends the call at the end:
 * each committed record of a transactional topic takes at least one offset besides its own (its transaction's marker
 * is shared by the records of that transaction), so half the offsets are records unless compaction or aborted
 * transactions left gaps, and then the call reads at most that many records past the end.
 */
export function consumeCount(remaining: number): number {
  return Math.min(CONSUME_BATCH, Math.max(1, Math.floor(remaining / 2)));
}

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
        // the end-of-partition event ends a consume call at the end and carries the position past transaction markers
        'enable.partition.eof': true,
        'isolation.level': 'read_committed',
        log_level: 0,
      } as Kafka.ConsumerGlobalConfig,
      { 'auto.offset.reset': 'earliest' },
    );
    c.setDefaultConsumeTimeout(CONSUME_WAIT_MS);
    c.on('partition.eof', (e: Kafka.EofEvent) => {
      // a dropped client's late answer moves nothing: the records before its end were not taken
      if (this.consumer === c && e.topic === this.topic && e.offset >= 0) this.next.set(e.partition, Math.max(this.next.get(e.partition) ?? 0, e.offset));
    });
    try {
      await boundedCall<void>(`connecting to cluster '${this.clusterAlias}' to read ${this.topic}`, timeoutMs + CALLBACK_SLACK_MS, (done) =>
        c.connect({ timeout: timeoutMs }, (err) =>
          done(err ? new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${this.clusterAlias}': ${err.message}`, { retriable: true }) : null),
        ),
      );
    } catch (e) {
      this.drop(c); // its librdkafka instance goes with it; the next pass makes a new one
      throw e;
    }
    this.consumer = c;
    return c;
  }

  /** Disconnects a client that is no longer used, in the background and bounded. */
  private drop(c: Kafka.KafkaConsumer): Promise<void> {
    if (this.consumer === c) this.consumer = undefined;
    return disconnectClient(c, 30_000);
  }

  private partitions(c: Kafka.KafkaConsumer, timeoutMs: number): Promise<number> {
    return boundedCall(`metadata of ${this.topic} on '${this.clusterAlias}'`, timeoutMs + CALLBACK_SLACK_MS, (done) =>
      c.getMetadata({ topic: this.topic, timeout: timeoutMs }, (err, md) => {
        if (err) return done(new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${this.clusterAlias}': ${err.message}`, { retriable: true }));
        const t = md.topics.find((x) => x.name === this.topic);
        done(null, t === undefined || (t as { error?: unknown }).error ? 0 : t.partitions.length);
      }),
    );
  }

  private watermarks(c: Kafka.KafkaConsumer, partition: number, timeoutMs: number): Promise<{ low: number; high: number }> {
    return boundedCall(`the end of ${this.topic}[${partition}] on '${this.clusterAlias}'`, timeoutMs + CALLBACK_SLACK_MS, (done) =>
      c.queryWatermarkOffsets(this.topic, partition, timeoutMs, (err, o) =>
        done(
          err ? new StraitError('STRAIT_KAFKA', `${this.topic} on '${this.clusterAlias}': ${err.message}`, { retriable: true }) : null,
          o && { low: o.lowOffset, high: o.highOffset },
        ),
      ),
    );
  }

  /**
   * One batch of at most `count` records (see consumeCount). node-rdkafka's call returns with `count` records or after
   * CONSUME_WAIT_MS without one; it is bounded by the catch-up's deadline too.
   */
  private consume(c: Kafka.KafkaConsumer, count: number, boundMs: number): Promise<Kafka.Message[]> {
    return boundedCall(`reading ${this.topic} on '${this.clusterAlias}'`, boundMs, (done) =>
      c.consume(count, (err, msgs) =>
        done(err ? new StraitError('STRAIT_KAFKA', `reading ${this.topic} on '${this.clusterAlias}': ${err.message}`, { retriable: true }) : null, msgs),
      ),
    );
  }

  /** Reads everything appended up to the end as of now (as of when it starts). Returns the number of records read. */
  catchUp(timeoutMs = 15_000): Promise<number> {
    const run = this.queue.then(() => this.catchUpNow(timeoutMs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async catchUpNow(timeoutMs: number): Promise<number> {
    const c = await this.connect(timeoutMs);
    try {
      return await this.readToEnd(c, timeoutMs);
    } catch (e) {
      // a call still running on the client (it cannot be cancelled): the next catch-up takes a new client
      if (e instanceof CallTimedOut) void this.drop(c);
      throw e;
    }
  }

  private async readToEnd(c: Kafka.KafkaConsumer, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const n = await this.partitions(c, timeoutMs);
    if (n === 0) return 0;
    const ends: number[] = [];
    for (let p = 0; p < n; p++) {
      const { low, high } = await this.watermarks(c, p, Math.max(1000, deadline - Date.now()));
      ends.push(high);
      // what retention or compaction removed from the head is no offset to wait for
      if (low > (this.next.get(p) ?? 0)) this.next.set(p, low);
    }
    const left = () => ends.reduce((sum, end, p) => sum + Math.max(0, end - (this.next.get(p) ?? 0)), 0);
    if (left() === 0) return 0;
    c.assign(ends.map((_, p) => ({ topic: this.topic, partition: p, offset: this.next.get(p) ?? OFFSET_BEGINNING })) as never);
    let read = 0;
    try {
      while (left() > 0) {
        if (Date.now() > deadline) {
          throw new StraitError('STRAIT_KAFKA', `reading ${this.topic} on cluster '${this.clusterAlias}' did not reach its end within ${timeoutMs} ms`, {
            retriable: true,
          });
        }
        const batch = await this.consume(c, consumeCount(left()), Math.max(0, deadline - Date.now()) + CALLBACK_SLACK_MS);
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
      if (this.consumer === c) c.unassign();
    }
    return read;
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.consumer) await this.drop(this.consumer);
  }
}
