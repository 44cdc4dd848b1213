import t from 'tap';
import Kafka from 'node-rdkafka';
import { loadNative, type GroupOffset, type NativeAdmin } from '../native';
import { kafkaCodeOf } from '../shared/kafka/errors';
import { bootstrap, createTopic, produce, uniqueName } from './helpers/kafka';
import { waitFor } from './helpers/strait-process';

const PARTITIONS = 3;
const PER_PARTITION = [10, 6, 4];
// what the consumer commits: partitions 0 and 1 only, so partition 2 has no committed offset
const COMMITTED = [7, 4];

function byPartition(offsets: GroupOffset[]): Record<number, GroupOffset> {
  return Object.fromEntries(offsets.map((o) => [o.partition, o]));
}

async function startConsumer(brokers: string, group: string, topic: string, records: number): Promise<Kafka.KafkaConsumer> {
  const consumer = new Kafka.KafkaConsumer(
    { 'bootstrap.servers': brokers, 'group.id': group, 'enable.auto.commit': false, log_level: 0 },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((res, rej) => consumer.connect({ timeout: 10_000 }, (err) => (err ? rej(err) : res())));
  consumer.subscribe([topic]);
  let seen = 0;
  const deadline = Date.now() + 60_000;
  while (seen < records && Date.now() < deadline) {
    seen += (await new Promise<Kafka.Message[]>((res, rej) => consumer.consume(100, (err, msgs) => (err ? rej(err) : res(msgs))))).length;
  }
  if (seen < records) throw new Error(`consumer read ${seen} of ${records} records`);
  consumer.commitSync(COMMITTED.map((offset, partition) => ({ topic, partition, offset })));
  return consumer;
}

t.test('consumer groups: list, describe, committed offsets and altering them on a real cluster', async (t) => {
  const brokers = bootstrap('a');
  const native = loadNative();
  const admin: NativeAdmin = new native.Admin({ 'bootstrap.servers': brokers });
  t.teardown(() => admin.close());
  const topic = uniqueName('groups');
  const group = uniqueName('group');
  await createTopic(brokers, topic, PARTITIONS);
  await produce(
    brokers,
    topic,
    PER_PARTITION.flatMap((n, partition) => Array.from({ length: n }, (_, i) => ({ partition, key: null, value: Buffer.from(`v${partition}-${i}`) }))),
  );

  const consumer = await startConsumer(
    brokers,
    group,
    topic,
    PER_PARTITION.reduce((a, b) => a + b, 0),
  );
  let connected = true;
  t.teardown(async () => {
    if (connected) await new Promise<void>((res) => consumer.disconnect(() => res()));
  });

  // while the consumer is a member
  const listed = (await admin.listConsumerGroups(15_000)).find((g) => g.groupId === group);
  t.ok(listed, 'listConsumerGroups includes the group');
  t.equal(listed?.state, 'Stable', 'listed state while the member consumes');
  t.equal(listed?.isSimple, false, 'a subscribing consumer group is not a simple group');

  const [active, ...rest] = await admin.describeConsumerGroups([group], 15_000);
  t.same(rest, [], 'one description per group asked');
  t.equal(active?.groupId, group);
  t.equal(active?.state, 'Stable');
  t.equal(active?.members, 1, 'one member while consuming');
  t.notOk(active?.error);

  const all = await admin.listConsumerGroupOffsets(group, null, 15_000);
  t.same(
    all.map((o) => [o.topic, o.partition, o.offset]),
    COMMITTED.map((offset, partition) => [topic, partition, offset]),
    'null partitions: exactly the committed partitions, in order',
  );
  for (const o of all) t.notOk(o.error, `partition ${o.partition} has no error`);

  const asked = await admin.listConsumerGroupOffsets(
    group,
    [
      { topic, partition: 2 },
      { topic, partition: 0 },
    ],
    15_000,
  );
  t.same(
    asked.map((o) => [o.partition, o.offset]),
    [
      [0, COMMITTED[0]],
      [2, -1],
    ],
    'named partitions: -1 where nothing is committed, sorted by partition',
  );

  // Kafka refuses an admin commit (no member id, generation -1) for a group with a live member
  let refusal: string | undefined;
  try {
    const res = await admin.alterConsumerGroupOffsets(group, [{ topic, partition: 0, offset: 1 }], 15_000);
    refusal = res
      .map((o) => o.error)
      .filter(Boolean)
      .join('; ');
    t.equal(res.length, 1, 'one result per partition');
  } catch (e) {
    refusal = (e as Error).message;
  }
  t.match(
    refusal,
    /alterConsumerGroupOffsets: .*(UNKNOWN_MEMBER_ID|GROUP_SUBSCRIBED_TO_TOPIC|ILLEGAL_GENERATION|REBALANCE_IN_PROGRESS)|(UNKNOWN_MEMBER_ID|GROUP_SUBSCRIBED_TO_TOPIC|ILLEGAL_GENERATION|REBALANCE_IN_PROGRESS): /,
    `altering an active group is refused with the broker error (${refusal})`,
  );
  t.equal(byPartition(await admin.listConsumerGroupOffsets(group, null, 15_000))[0]?.offset, COMMITTED[0], 'the refused alter changed nothing');

  await new Promise<void>((res) => consumer.disconnect(() => res()));
  connected = false;

  let empty = active;
  await waitFor(
    'the group to have no members',
    async () => {
      [empty] = await admin.describeConsumerGroups([group], 15_000);
      return empty?.members === 0;
    },
    30_000,
    250,
  );
  t.equal(empty?.state, 'Empty', 'state after the only member left');
  t.equal(empty?.members, 0);
  t.equal((await admin.listConsumerGroups(15_000)).find((g) => g.groupId === group)?.state, 'Empty', 'listed as Empty too');

  const altered = await admin.alterConsumerGroupOffsets(
    group,
    [
      { topic, partition: 0, offset: 3, metadata: 'strait-test' },
      { topic, partition: 2, offset: 1 },
    ],
    15_000,
  );
  t.same(
    altered.map((o) => [o.partition, o.offset, o.error]),
    [
      [0, 3, undefined],
      [2, 1, undefined],
    ],
    'alter on the empty group succeeds per partition',
  );

  const after = byPartition(await admin.listConsumerGroupOffsets(group, null, 15_000));
  t.same(Object.keys(after).map(Number), [0, 1, 2], 'partition 2 now has a committed offset');
  t.equal(after[0]?.offset, 3, 'partition 0 moved to the altered offset');
  t.equal(after[0]?.metadata, 'strait-test', 'metadata stored with the offset');
  t.equal(after[1]?.offset, COMMITTED[1], 'partition 1 untouched');
  t.equal(after[2]?.offset, 1, 'partition 2 committed by the alter');

  // a real consumer of the group resumes from the altered offsets
  const resumed = new Kafka.KafkaConsumer(
    { 'bootstrap.servers': brokers, 'group.id': group, 'enable.auto.commit': false, log_level: 0 },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((res, rej) => resumed.connect({ timeout: 10_000 }, (err) => (err ? rej(err) : res())));
  try {
    resumed.subscribe([topic]);
    const firstOffset: Record<number, number> = {};
    const want = PER_PARTITION[0]! - 3 + PER_PARTITION[1]! - COMMITTED[1]! + PER_PARTITION[2]! - 1;
    let seen = 0;
    const deadline = Date.now() + 60_000;
    while (seen < want && Date.now() < deadline) {
      for (const m of await new Promise<Kafka.Message[]>((res, rej) => resumed.consume(100, (err, msgs) => (err ? rej(err) : res(msgs))))) {
        firstOffset[m.partition] ??= m.offset;
        seen++;
      }
    }
    t.equal(seen, want, 'the resumed consumer reads exactly the records past the altered offsets');
    t.same(firstOffset, { 0: 3, 1: COMMITTED[1], 2: 1 }, 'first offset read per partition');
  } finally {
    await new Promise<void>((res) => resumed.disconnect(() => res()));
  }
});

t.test('a group nobody uses is described as Dead with no members and lists no offsets', async (t) => {
  const admin: NativeAdmin = new (loadNative().Admin)({ 'bootstrap.servers': bootstrap('a') });
  t.teardown(() => admin.close());
  const group = uniqueName('nobody');
  const [d] = await admin.describeConsumerGroups([group], 15_000);
  t.equal(d?.groupId, group);
  t.equal(d?.state, 'Dead');
  t.equal(d?.members, 0);
  t.same(await admin.listConsumerGroupOffsets(group, null, 15_000), [], 'no committed offsets');
  t.notOk(
    (await admin.listConsumerGroups(15_000)).some((g) => g.groupId === group),
    'not listed',
  );
});

t.test('bad arguments reject with a TypeError naming the field', async (t) => {
  const admin = new (loadNative().Admin)({ 'bootstrap.servers': '127.0.0.1:9' }) as NativeAdmin & Record<string, (...a: unknown[]) => Promise<unknown>>;
  t.teardown(() => admin.close());
  const bad: [string, unknown[], RegExp][] = [
    ['listConsumerGroups', [0], /^listConsumerGroups: timeoutMs must be an integer from 1 to 3600000 \(got 0\)$/],
    ['describeConsumerGroups', ['g'], /^describeConsumerGroups: groups must be an array of group ids \(got "g"\)$/],
    ['describeConsumerGroups', [['g', 7]], /^describeConsumerGroups: groups\[1\] must be a non-empty string \(got 7\)$/],
    ['describeConsumerGroups', [[]], /^describeConsumerGroups: groups is empty$/],
    ['listConsumerGroupOffsets', ['', null], /^listConsumerGroupOffsets: group must be a non-empty string/],
    [
      'listConsumerGroupOffsets',
      ['g', [{ topic: 't', partition: -1 }]],
      /^listConsumerGroupOffsets: partitions\[0\]\.partition must be an integer >= 0 \(got -1\)$/,
    ],
    ['listConsumerGroupOffsets', ['g', []], /partitions is empty \(pass null for all\)/],
    ['listConsumerGroupOffsets', ['g', null, 1.5], /timeoutMs must be an integer/],
    [
      'alterConsumerGroupOffsets',
      [
        'g',
        [
          { topic: 't', partition: 0, offset: 1 },
          { partition: 0, offset: 1 },
        ],
      ],
      /^alterConsumerGroupOffsets: offsets\[1\]\.topic must be a non-empty string \(got undefined\)$/,
    ],
    [
      'alterConsumerGroupOffsets',
      ['g', [{ topic: 't', partition: 0 }]],
      /^alterConsumerGroupOffsets: offsets\[0\]\.offset must be an integer >= 0 \(got undefined\)$/,
    ],
    [
      'alterConsumerGroupOffsets',
      ['g', [{ topic: 't', partition: 0, offset: 5, metadata: 3 }]],
      /^alterConsumerGroupOffsets: offsets\[0\]\.metadata must be a string \(got 3\)$/,
    ],
    ['alterConsumerGroupOffsets', ['g', null], /^alterConsumerGroupOffsets: offsets must be an array \(got null\)$/],
    // the topic calls share the shape (native/admin_request.h)
    ['describeTopics', [[]], /^describeTopics: topics is empty$/],
    ['describeTopics', ['t'], /^describeTopics: topics must be an array of topic names \(got "t"\)$/],
    ['describeTopicConfigs', [[''], 1000], /^describeTopicConfigs: topics\[0\] must be a non-empty string \(got ""\)$/],
    ['alterTopicConfigs', ['t', { 'retention.ms': 5 }, []], /^alterTopicConfigs: set\.retention\.ms must be a string \(got 5\)$/],
    ['alterTopicConfigs', ['t', { 'retention.ms': '5' }, 'x'], /^alterTopicConfigs: deleteNames must be an array of config names \(got "x"\)$/],
    ['listOffsets', [[{ topic: 't', partition: 0 }], 'middle'], /^listOffsets: spec must be "earliest" or "latest" \(got "middle"\)$/],
    ['listOffsets', [[], 'latest'], /^listOffsets: partitions is empty$/],
    ['clusterId', [0], /^clusterId: timeoutMs must be an integer from 1 to 3600000 \(got 0\)$/],
  ];
  for (const [method, args, re] of bad) {
    const err = await admin[method]!(...args).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    t.type(err, TypeError, `${method}(${JSON.stringify(args)}) rejects with a TypeError`);
    t.match(err?.message, re);
  }
});

t.test('an unreachable cluster rejects every admin call with a clear message and its kafkaCode within the timeout', async (t) => {
  const admin: NativeAdmin = new (loadNative().Admin)({ 'bootstrap.servers': '127.0.0.1:9' });
  const timeoutMs = 1500;
  const calls: [string, () => Promise<unknown>][] = [
    ['listConsumerGroups', () => admin.listConsumerGroups(timeoutMs)],
    ['describeConsumerGroups', () => admin.describeConsumerGroups(['g'], timeoutMs)],
    ['listConsumerGroupOffsets', () => admin.listConsumerGroupOffsets('g', null, timeoutMs)],
    ['alterConsumerGroupOffsets', () => admin.alterConsumerGroupOffsets('g', [{ topic: 't', partition: 0, offset: 1 }], timeoutMs)],
    ['describeTopics', () => admin.describeTopics(['t'], timeoutMs)],
    ['describeTopicConfigs', () => admin.describeTopicConfigs(['t'], timeoutMs)],
    ['alterTopicConfigs', () => admin.alterTopicConfigs('t', { 'retention.ms': '1000' }, [], timeoutMs)],
    ['listOffsets', () => admin.listOffsets([{ topic: 't', partition: 0 }], 'latest', timeoutMs)],
    ['clusterId', () => admin.clusterId(timeoutMs)],
  ];
  for (const [name, call] of calls) {
    const started = Date.now();
    const err = await call().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const ms = Date.now() - started;
    t.ok(err, `${name} rejects`);
    t.match(err?.message, new RegExp(`^${name}: (_TIMED_OUT|_TRANSPORT|_ALL_BROKERS_DOWN)\\b`), `${name} names the failure: ${err?.message}`);
    t.equal(kafkaCodeOf(err), err?.message.split(': ')[1], `${name} carries the same librdkafka name as its kafkaCode`);
    // the request timeout, with room for a loaded machine
    t.ok(ms < timeoutMs + 5000, `${name} gave up in ${ms} ms`);
  }
  // close() while a request is in flight: the request keeps the handle alive and still settles
  const pending = admin.listConsumerGroups(timeoutMs).then(
    () => 'resolved',
    (e: unknown) => (e as Error).message,
  );
  admin.close();
  t.match(await pending, /^listConsumerGroups: /, 'a request in flight at close() still rejects cleanly');
  t.match(
    await admin.listConsumerGroups().then(
      () => '',
      (e: unknown) => (e as Error).message,
    ),
    /^listConsumerGroups: Admin is closed$/,
  );
});
