/**
 * The JavaScript baseline: a plain node-rdkafka consume-then-produce loop (every record crosses into JavaScript and
 * back), the way a replicator written directly on node-rdkafka works. Run as its own process by the bench:
 *   node dist/bench/js-loop.js <source> <target> <topic> <targetTopic> <partitions> <records> [consumeBatch]
 */
import Kafka from 'node-rdkafka';
import { disconnectClient } from '../shared/kafka/bounded-call';

async function main(): Promise<void> {
  const [source, target, topic, targetTopic, partitionsArg, recordsArg, batchArg] = process.argv.slice(2);
  const batchSize = Number(batchArg ?? 1000);
  const partitions = Number(partitionsArg);
  const expected = Number(recordsArg);
  const consumer = new Kafka.KafkaConsumer(
    { 'bootstrap.servers': source!, 'group.id': `js-baseline-${Date.now()}`, 'enable.auto.commit': false, 'fetch.wait.max.ms': 50, log_level: 0 },
    {},
  );
  const producer = new Kafka.Producer({
    'bootstrap.servers': target!,
    'enable.idempotence': true,
    'request.required.acks': -1,
    'linger.ms': 5,
    dr_cb: true,
    'queue.buffering.max.messages': 1000000,
    log_level: 0,
  } as Kafka.ProducerGlobalConfig);
  await new Promise<void>((res, rej) => consumer.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  await new Promise<void>((res, rej) => producer.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  producer.setPollInterval(5);
  let delivered = 0;
  let failed = 0;
  producer.on('delivery-report', (err) => (err ? failed++ : delivered++));
  consumer.assign(Array.from({ length: partitions }, (_, p) => ({ topic: topic!, partition: p, offset: 0 })));
  let consumed = 0;
  while (consumed < expected) {
    const batch = await new Promise<Kafka.Message[]>((res, rej) => consumer.consume(batchSize, (e, m) => (e ? rej(e) : res(m))));
    for (const m of batch) {
      for (;;) {
        try {
          producer.produce(targetTopic!, m.partition, m.value, m.key, m.timestamp, undefined, m.headers);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 5)); // local queue full
        }
      }
    }
    consumed += batch.length;
  }
  await new Promise<void>((res) => producer.flush(60_000, () => res()));
  while (delivered + failed < expected) await new Promise((r) => setTimeout(r, 10));
  process.stdout.write(JSON.stringify({ consumed, delivered, failed }) + '\n');
  await new Promise<void>((res) => consumer.disconnect(() => res()));
  await disconnectClient(producer, 30_000);
}

main().catch((e) => {
  process.stderr.write(`js-loop: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
