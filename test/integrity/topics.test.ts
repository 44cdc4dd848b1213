/**
 * Topic management: new topics and new partitions after start, config sync (never the excluded settings), exclude
 * patterns and internal topics, and a target that cannot be mirrored held with a clear error while others flow.
 */
import t from 'tap';
import Kafka from 'node-rdkafka';
import { loadNative } from '../../native';
import { bootstrap, createPartitions, createTopic, produce, totalRecords, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

const recs = (n: number, partition = 0) => Array.from({ length: n }, (_, i) => ({ partition, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) }));

async function topicNames(brokers: string): Promise<string[]> {
  const p = new Kafka.Producer({ 'bootstrap.servers': brokers, log_level: 0 });
  await new Promise<void>((res, rej) => p.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  const md = await new Promise<Kafka.Metadata>((res, rej) => p.getMetadata({ timeout: 10_000 }, (e, m) => (e ? rej(e) : res(m))));
  await new Promise<void>((res) => p.disconnect(() => res()));
  return md.topics.map((x) => x.name);
}

t.test('topics and partitions created after start, config sync, excludes, conflicts', async (t) => {
  const a = bootstrap('a');
  const b = bootstrap('b');
  const base = uniqueName('topics');
  await createTopic(a, `${base}.first`, 2, { 'retention.ms': '3600000', 'min.insync.replicas': '1', 'cleanup.policy': 'delete' });
  await produce(a, `${base}.first`, recs(100));
  await createTopic(a, `${base}.skip-me`, 1);
  await produce(a, `${base}.skip-me`, recs(10));
  // a target topic strait did not create, with fewer partitions than its source: must be held, not changed
  await createTopic(a, `${base}.conflict`, 3);
  await produce(a, `${base}.conflict`, recs(10));
  await createTopic(b, `a.${base}.conflict`, 1);
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
      routes: [{ name: 'topics', source: 'a', target: 'b', topics: { include: [`${base}\\..*`], exclude: ['.*skip.*'] } }],
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  await waitFor('first topic replicated', async () => (await totalRecords(b, `a.${base}.first`, 2)) === 100, 60_000);

  const native = loadNative();
  const admin = new native.Admin({ 'bootstrap.servers': b });
  const cfg = (await admin.describeTopicConfigs([`a.${base}.first`], 10_000))[`a.${base}.first`]!;
  t.equal(cfg['retention.ms']?.value, '3600000', 'retention.ms copied');
  t.not(cfg['min.insync.replicas']?.source, 'DYNAMIC_TOPIC_CONFIG', 'min.insync.replicas never copied');

  // configs re-synced on refresh
  const srcAdmin = new native.Admin({ 'bootstrap.servers': a });
  await srcAdmin.alterTopicConfigs(`${base}.first`, { 'retention.ms': '7200000' }, [], 10_000);
  await waitFor(
    'retention change synced',
    async () => (await admin.describeTopicConfigs([`a.${base}.first`], 10_000))[`a.${base}.first`]!['retention.ms']?.value === '7200000',
    30_000,
    500,
  );
  t.pass('a changed source config reaches the target on the next refresh');

  // a new topic after start, then a new partition on it
  await createTopic(a, `${base}.later`, 1);
  await produce(a, `${base}.later`, recs(50));
  await waitFor('new topic replicated', async () => (await totalRecords(b, `a.${base}.later`, 1)) === 50, 60_000);
  t.pass('a topic created after start is replicated');
  await createPartitions(a, `${base}.later`, 2);
  await produce(a, `${base}.later`, recs(30, 1));
  await waitFor('new partition replicated', async () => (await totalRecords(b, `a.${base}.later`, 2)) === 80, 60_000);
  t.pass('a partition added after start is replicated');

  const names = await topicNames(b);
  t.notOk(names.includes(`a.${base}.skip-me`), 'excluded topic not replicated');
  t.notOk(
    names.some((n) => n.startsWith('a.__')),
    'internal topics never replicated',
  );
  t.ok(names.includes('__strait-offset-map'), 'offset-map topic exists on the target');

  const status = await strait.status();
  const conflict = status.controller.problems.find((p) => p.topic === `${base}.conflict`);
  t.equal(conflict?.code, 'STRAIT_TOPIC_CONFLICT', 'conflicting topic reported in status');
  t.match(conflict?.message, /has 1 partitions but source .* has 3/);
  t.match(
    await strait.metrics(),
    new RegExp(`strait_topic_error\\{route="topics",topic="${base.replace(/[.-]/g, '\\$&')}\\.conflict",code="STRAIT_TOPIC_CONFLICT"\\} 1`),
  );
  t.equal(await totalRecords(b, `a.${base}.conflict`, 1), 0, 'the held topic was not written');
  admin.close();
  srcAdmin.close();
  await strait.stop();
});
