/** The bench's topics: created and deleted through an admin client, and counted by their high watermarks. */
import Kafka from 'node-rdkafka';

async function admin<T>(brokers: string, fn: (a: Kafka.IAdminClient) => Promise<T>): Promise<T> {
  const a = Kafka.AdminClient.create({ 'bootstrap.servers': brokers, log_level: 0 });
  try {
    return await fn(a);
  } finally {
    a.disconnect();
  }
}

export async function createTopic(brokers: string, topic: string, partitions: number, config: Record<string, string> = {}): Promise<void> {
  await admin(
    brokers,
    (a) =>
      new Promise<void>((res, rej) =>
        a.createTopic({ topic, num_partitions: partitions, replication_factor: -1 as never, config }, 30_000, (e) => (e && e.code !== 36 ? rej(e) : res())),
      ),
  );
}

export async function deleteTopic(brokers: string, topic: string): Promise<void> {
  await admin(brokers, (a) => new Promise<void>((res) => a.deleteTopic(topic, 30_000, () => res())));
}

export class Watermarks {
  private client: Kafka.Producer | undefined;
  constructor(private readonly brokers: string) {}
  async total(topic: string, partitions: number): Promise<number> {
    return (await this.perPartition(topic, partitions)).reduce((a, b) => a + b, 0);
  }
  /** high watermark of every partition (all 0 while the topic is unknown) */
  async perPartition(topic: string, partitions: number): Promise<number[]> {
    if (!this.client) {
      const c = new Kafka.Producer({ 'bootstrap.servers': this.brokers, log_level: 0 });
      await new Promise<void>((res, rej) => c.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
      this.client = c;
    }
    const c = this.client;
    try {
      return await Promise.all(
        Array.from(
          { length: partitions },
          (_, p) => new Promise<number>((res, rej) => c.queryWatermarkOffsets(topic, p, 2000, (e, o) => (e ? rej(e) : res(o.highOffset)))),
        ),
      );
    } catch {
      // librdkafka keeps answering "unknown topic" for a topic that did not exist when first asked: start afresh
      this.client = undefined;
      await new Promise<void>((res) => c.disconnect(() => res()));
      return new Array<number>(partitions).fill(0);
    }
  }
  async close(): Promise<void> {
    if (this.client) await new Promise<void>((res) => this.client!.disconnect(() => res()));
  }
}

/**
 * The clock's last tick for a system that writes the target in transactions: its commit markers take target offsets,
 * so the end offsets reach the record count before the last records commit. Instead each source partition ends in a
 * record keyed `key` (appended before the system starts, `appendEndRecords`), and a partition is done once a
 * read_committed consumer finds that record near the end of the target partition: it is the last record of the
 * partition and order is kept per partition, so everything before it committed too.
 */
export class CommittedEnd {
  private client: Kafka.KafkaConsumer | undefined;
  private readonly done = new Set<number>();
  constructor(
    private readonly brokers: string,
    private readonly topic: string,
    private readonly partitions: number,
    private readonly key: string,
  ) {}

  /** Whether every partition's end record committed; `ends` are the target's high watermarks. */
  async reached(ends: number[]): Promise<boolean> {
    const open = ends.map((end, p) => ({ end, p })).filter(({ end, p }) => !this.done.has(p) && end > 0);
    if (open.length > 0) {
      if (!this.client) {
        const c = new Kafka.KafkaConsumer(
          {
            'bootstrap.servers': this.brokers,
            'group.id': `bench-end-${Date.now()}`,
            'isolation.level': 'read_committed',
            'enable.auto.commit': false,
            log_level: 0,
          },
          {},
        );
        await new Promise<void>((res, rej) => c.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
        c.setDefaultConsumeTimeout(50);
        this.client = c;
      }
      const c = this.client;
      // the end record is followed by its transaction's commit marker; a few offsets more leave room for aborted ones
      c.assign(open.map(({ end, p }) => ({ topic: this.topic, partition: p, offset: Math.max(0, end - 16) })));
      const batch = await new Promise<Kafka.Message[]>((res, rej) => c.consume(1000, (e, m) => (e ? rej(e) : res(m))));
      for (const m of batch) if (m.key?.toString() === this.key) this.done.add(m.partition);
      c.unassign();
    }
    return this.done.size === this.partitions;
  }

  async close(): Promise<void> {
    if (this.client) await new Promise<void>((res) => this.client!.disconnect(() => res()));
  }
}

/** Appends one record keyed `key` to every partition of `topic` (see CommittedEnd). */
export async function appendEndRecords(brokers: string, topic: string, partitions: number, key: string, size: number): Promise<void> {
  const p = new Kafka.Producer({ 'bootstrap.servers': brokers, dr_cb: true, log_level: 0 });
  await new Promise<void>((res, rej) => p.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  try {
    for (let i = 0; i < partitions; i++) p.produce(topic, i, Buffer.alloc(size, 'e'), Buffer.from(key));
    await new Promise<void>((res, rej) => p.flush(30_000, (e) => (e ? rej(e) : res())));
  } finally {
    await new Promise<void>((res) => p.disconnect(() => res()));
  }
}
