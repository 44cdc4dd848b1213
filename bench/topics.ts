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
