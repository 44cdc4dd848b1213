/**
 * Broker warm-up for local clusters the bench just started. A fresh broker JVM runs interpreted code at first and
 * creates __consumer_offsets on the first group commit: measured on the 2-core machine, whichever system ran first
 * after the clusters came up paid p50 150–185 ms and p99 1.0–1.2 s in the latency scenario, the later ones 15–19 ms.
 * So before any measurement each cluster takes a scratch topic written at full speed (acks all, uncompressed and in
 * each codec the systems write) while a consumer group reads and commits it, for the given seconds; the topic is
 * then deleted.
 */
import Kafka from 'node-rdkafka';
import { disconnectClient } from '../shared/kafka/bounded-call';
import { createTopic, deleteTopic } from './topics';

export interface WarmupResult {
  seconds: number;
  /** records written and read back per cluster (bootstrap) */
  records: Record<string, { written: number; read: number }>;
}

export async function warmBrokers(
  bootstraps: string[],
  seconds: number,
  partitions: number,
  codecs: readonly string[],
  log: (line: string) => void,
): Promise<WarmupResult> {
  log(`warming the brokers up for ${seconds} s (scratch topic written and read on each cluster)`);
  const counts = await Promise.all(bootstraps.map((b) => warmOne(b, seconds, partitions, codecs)));
  const records: WarmupResult['records'] = {};
  bootstraps.forEach((b, i) => (records[b] = counts[i]!));
  return { seconds, records };
}

async function warmOne(brokers: string, seconds: number, partitions: number, codecs: readonly string[]): Promise<{ written: number; read: number }> {
  const topic = `bench-warmup-${Date.now().toString(36)}`;
  await createTopic(brokers, topic, partitions);
  // every codec the run's systems write with: a broker validates (and for a codec its topic does not keep,
  // recompresses) each batch, and a codec's path in the broker JVM is cold until first used
  const producers = [...new Set(['none', 'lz4', ...codecs])].map(
    (codec) =>
      new Kafka.Producer({
        'bootstrap.servers': brokers,
        'linger.ms': 5,
        'compression.codec': codec,
        // replicators write idempotently: the brokers' producer-state path gets its first use here too
        'enable.idempotence': true,
        'queue.buffering.max.messages': 100_000,
        acks: -1,
        log_level: 0,
      } as Kafka.ProducerGlobalConfig),
  );
  const consumer = new Kafka.KafkaConsumer(
    {
      'bootstrap.servers': brokers,
      'group.id': `${topic}-group`,
      'enable.auto.commit': false,
      'fetch.wait.max.ms': 50,
      'isolation.level': 'read_committed',
      log_level: 0,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  let written = 0;
  let read = 0;
  try {
    for (const producer of producers) {
      await new Promise<void>((res, rej) => producer.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
      producer.setPollInterval(20);
    }
    await new Promise<void>((res, rej) => consumer.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
    consumer.setDefaultConsumeTimeout(50);
    // -2 = OFFSET_BEGINNING
    consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: -2 })));
    const until = Date.now() + seconds * 1000;
    const value = Buffer.alloc(1024, 'w');
    const reading = (async () => {
      while (Date.now() < until) {
        const batch = await new Promise<Kafka.Message[]>((res, rej) => consumer.consume(1000, (e, m) => (e ? rej(e) : res(m))));
        read += batch.length;
        const last = batch[batch.length - 1];
        // a commit per batch: the group coordinator and __consumer_offsets get their first use here, not in a measurement
        if (last) consumer.commitMessage(last);
      }
    })();
    while (Date.now() < until) {
      try {
        producers[written % producers.length]!.produce(topic, written % partitions, value, null);
        written++;
      } catch {
        // local queue full: let delivery reports drain it
        await new Promise((r) => setTimeout(r, 5));
      }
      if (written % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    for (const producer of producers) await new Promise<void>((res, rej) => producer.flush(60_000, (e) => (e ? rej(e) : res())));
    await reading;
  } finally {
    for (const producer of producers) await disconnectClient(producer, 30_000);
    await disconnectClient(consumer, 30_000);
    await deleteTopic(brokers, topic);
  }
  return { written, read };
}
