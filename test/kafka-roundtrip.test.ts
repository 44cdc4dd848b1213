import t from 'tap';
import { bootstrap, createTopic, produce, readAll, uniqueName } from './helpers/kafka';

t.test('node-rdkafka produce/consume roundtrip on a fresh topic of a real cluster', async (t) => {
  const brokers = bootstrap('a');
  const topic = uniqueName('roundtrip');
  await createTopic(brokers, topic, 3);
  const records = Array.from({ length: 300 }, (_, i) => ({
    partition: i % 3,
    key: Buffer.from(`k${i}`),
    value: Buffer.from(`v${i}`),
    headers: [{ key: 'h', value: Buffer.from([i % 256]) }],
  }));
  await produce(brokers, topic, records);
  const got = await readAll(brokers, topic, 3, records.length, 30_000);
  t.equal(got.length, records.length, 'every record read back');
  for (const p of [0, 1, 2]) {
    const sent = records.filter((r) => r.partition === p).map((r) => r.value.toString());
    const read = got
      .filter((r) => r.partition === p)
      .sort((x, y) => x.offset - y.offset)
      .map((r) => r.value?.toString());
    t.same(read, sent, `partition ${p} in order`);
  }
  t.same(got.find((r) => r.key?.toString() === 'k7')?.headers, [{ key: 'h', value: Buffer.from([7]) }], 'headers kept');
});
