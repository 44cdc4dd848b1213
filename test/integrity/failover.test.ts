/**
 * Consumer failover without loss or duplicates: a real consumer group reads part of a topic on cluster a and commits,
 * strait (`strait run`, route a -> b) replicates, `strait failover` writes the translated offsets into the group on b,
 * and the same group then reads exactly the remaining records on b. Repeated with a compacted source, transactional
 * producers (committed and aborted), a group lagging far behind, records still in flight, the source unreachable
 * (checkpoints), sync.group.offsets, and a failback after new writes on b.
 */
import t from 'tap';
import Kafka from 'node-rdkafka';
import { loadNative } from '../../native';
import { checkExactlyRest, cli, consumeAndCommit, type Got } from '../helpers/groups';
import { bootstrap, connectProducer, createTopic, disconnect, produce, totalRecords, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

const P = 3;
const a = bootstrap('a');
const b = bootstrap('b');

function records(topic: string, from: number, n: number) {
  return Array.from({ length: n }, (_, k) => ({
    partition: (from + k) % P,
    key: Buffer.from(`k${(from + k) % 97}`),
    value: Buffer.from(`${topic}#${from + k}`),
  }));
}

function route(name: string, source: string, target: string, topics: string[], extra: Record<string, unknown> = {}) {
  return { name, source, target, topics: { include: topics }, groups: { include: ['fo-.*'] }, checkpointIntervalMs: 500, ...extra };
}

function config(routes: unknown[], clusters: Record<string, { bootstrap: string }> = { a: { bootstrap: a }, b: { bootstrap: b } }) {
  return writeConfig({ clusters, routes, worker: { threads: 1, commitIntervalMs: 200 }, controller: { refreshTopicsIntervalMs: 500 } });
}

async function replicated(brokers: string, topic: string, n: number): Promise<void> {
  await waitFor(`${n} records in ${topic}`, async () => (await totalRecords(brokers, topic, P)) >= n, 60_000, 200);
}

t.test('failover: the group resumes on the target at exactly the next record (and --dry-run writes nothing)', async (t) => {
  const topic = uniqueName('fo-plain');
  const group = uniqueName('fo-g');
  await createTopic(a, topic, P);
  await produce(a, topic, records(topic, 0, 3000));
  const cfg = config([route('fo', 'a', 'b', [topic])]);
  const strait = new StraitProcess(cfg);
  const first = await consumeAndCommit(a, group, [topic], 1234);
  t.equal(first.length, 1234);
  await replicated(b, `a.${topic}`, 3000);

  const dry = await cli(cfg, 'failover', group, 'a', 'b', ['--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  t.equal(dry.report?.applied, false);
  t.equal(dry.report?.rows.length, new Set(first.map((g) => g.partition)).size, 'one row per partition the group committed');
  t.ok(
    dry.report?.rows.every((r) => r.kind === 'exact'),
    'every partition translated exactly',
  );
  const offsetsAfterDry = await loadNativeGroupOffsets(b, group);
  t.equal(offsetsAfterDry.length, 0, 'the dry run wrote nothing into the group on b');

  const run = await cli(cfg, 'failover', group, 'a', 'b');
  t.equal(run.code, 0, run.stderr);
  t.equal(run.report?.basis, 'live');
  t.equal(run.report?.maxDuplicates, 0);
  const second = await consumeAndCommit(b, group, [`a.${topic}`], 3000 - first.length);
  checkExactlyRest(
    t,
    records(topic, 0, 3000).map((r) => r.value.toString()),
    first,
    second,
    'plain',
  );
  await strait.stop();
});

async function loadNativeGroupOffsets(brokers: string, group: string) {
  const admin = new (loadNative().Admin)({ 'bootstrap.servers': brokers });
  try {
    return (await admin.listConsumerGroupOffsets(group, null, 10_000)).filter((o) => o.offset >= 0);
  } finally {
    admin.close();
  }
}

t.test('failover with a group lagging far behind, and with a compacted source topic', async (t) => {
  const lagging = uniqueName('fo-lag');
  const compacted = uniqueName('fo-compact');
  const group = uniqueName('fo-g');
  await createTopic(a, lagging, P);
  await createTopic(a, compacted, P, {
    'cleanup.policy': 'compact',
    'segment.ms': '200',
    'min.cleanable.dirty.ratio': '0.001',
    'min.compaction.lag.ms': '0',
    'delete.retention.ms': '100',
  });
  await produce(a, lagging, records(lagging, 0, 30_000));
  // 60 keys, then 9 more rounds of every other key: after compaction only the newest value of each key remains, so
  // the first round's survivors sit between compacted-away offsets (gaps inside the log, not only before it)
  for (let round = 0; round < 10; round++) {
    const keys = Array.from({ length: 60 }, (_, k) => k).filter((k) => round === 0 || Math.floor(k / P) % 2 === 0);
    await produce(
      a,
      compacted,
      keys.map((k) => ({ partition: k % P, key: Buffer.from(`key-${k}`), value: Buffer.from(`${compacted}#${round}-${k}`) })),
    );
    await new Promise((r) => setTimeout(r, 250));
  }
  const readSource = async () => {
    const c = await consumeAndCommit(a, uniqueName('probe'), [compacted], 100_000, 2000);
    return c;
  };
  let survivors: Got[] = [];
  let rolls = 0;
  await waitFor(
    'the log cleaner compacted the source topic',
    async () => {
      // records with new keys roll the segments (segment.ms) so the cleaner can compact them; they are never compacted
      await produce(
        a,
        compacted,
        [0, 1, 2].map((p) => ({ partition: p, key: Buffer.from(`roll-${rolls++}`), value: Buffer.from(`${compacted}#roll-${rolls}`) })),
      );
      survivors = await readSource();
      return survivors.filter((g) => !g.value.includes('#roll-')).length === 60;
    },
    90_000,
    1000,
  );
  const sorted = [...survivors].sort((x, y) => x.partition - y.partition || x.offset - y.offset);
  const gaps = sorted.filter((g, i) => i > 0 && sorted[i - 1]!.partition === g.partition && g.offset > sorted[i - 1]!.offset + 1).length;
  t.ok(gaps > 0, `compaction left ${survivors.length} of the ${330 + rolls} records written, with ${gaps} gaps in the offsets`);
  // the source is stable now (every key-N holds one value; roll keys are unique): this is what replication copies
  const cfg = config([route('fo', 'a', 'b', [lagging, compacted])]);
  const strait = new StraitProcess(cfg);
  const firstLag = await consumeAndCommit(a, group, [lagging], 20);
  const firstCompact = await consumeAndCommit(a, group, [compacted], Math.floor(survivors.length / 2));
  const allCompact = (await readSource()).map((g) => g.value);
  await replicated(b, `a.${lagging}`, 30_000);
  await waitFor(
    'compacted topic replicated',
    async () => (await consumeAndCommit(b, uniqueName('probe'), [`a.${compacted}`], allCompact.length, 1500)).length >= allCompact.length,
    60_000,
    500,
  );
  const run = await cli(cfg, 'failover', group, 'a', 'b');
  t.equal(run.code, 0, run.stderr);
  t.equal(
    run.report?.rows.length,
    new Set([...firstLag, ...firstCompact].map((g) => `${g.topic}/${g.partition}`)).size,
    'a row for every partition the group committed',
  );
  t.ok(
    run.report?.rows.every((r) => r.kind === 'exact'),
    'exact for every partition of both topics',
  );
  const secondLag = await consumeAndCommit(b, group, [`a.${lagging}`], 30_000 - firstLag.length);
  checkExactlyRest(
    t,
    records(lagging, 0, 30_000).map((r) => r.value.toString()),
    firstLag,
    secondLag,
    'lagging 29,980 records behind',
  );
  const secondCompact = await consumeAndCommit(b, group, [`a.${compacted}`], allCompact.length - firstCompact.length);
  checkExactlyRest(t, allCompact, firstCompact, secondCompact, 'compacted');
  await strait.stop();
});

t.test('failover with transactional producers: committed and aborted transactions', async (t) => {
  const group = uniqueName('fo-g');
  const call = (f: (cb: (e: Kafka.LibrdKafkaError | null) => void) => void) =>
    new Promise<void>((res, rej) => f((e) => (e ? rej(new Error(e.message)) : res())));
  const connect = async () => {
    const p = new Kafka.Producer({ 'bootstrap.servers': a, 'transactional.id': uniqueName('txn'), dr_cb: true, log_level: 0 });
    await new Promise<void>((res, rej) => p.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
    p.setPollInterval(20);
    await call((cb) => p.initTransactions(10_000, cb));
    return p;
  };
  // a fresh cluster's transaction coordinator may still be loading: commit an empty-topic transaction until one works
  const warm = uniqueName('fo-txn-warm');
  await createTopic(a, warm, 1);
  await waitFor(
    'transactions available',
    async () => {
      const p = await connect().catch(() => undefined);
      if (!p) return false;
      try {
        await call((cb) => p.beginTransaction(cb));
        p.produce(warm, 0, Buffer.from('warm-up'));
        await call((cb) => p.commitTransaction(10_000, cb));
        return true;
      } catch {
        return false;
      } finally {
        await disconnect(p);
      }
    },
    60_000,
    1000,
  );
  // The input: six transactions of 90 records, committed and aborted in turn, on a fresh topic. This is the test's own
  // producer, not strait: should the broker refuse one of its transaction calls (CI saw INVALID_TXN_STATE once on a
  // loaded machine), the input is written again on another fresh topic, and the producer is always closed (left open,
  // it kept the test process alive until tap's timeout).
  const writeTransactions = async (topic: string): Promise<string[]> => {
    await createTopic(a, topic, P);
    const producer = await connect();
    const committedValues: string[] = [];
    try {
      let n = 0;
      for (let txn = 0; txn < 6; txn++) {
        await call((cb) => producer.beginTransaction(cb));
        const commit = txn % 2 === 0 || txn === 5;
        for (let k = 0; k < 90; k++, n++) {
          const value = `${topic}#${n}${commit ? '' : '-aborted'}`;
          producer.produce(topic, n % P, Buffer.from(value), Buffer.from(`k${n}`));
          if (commit) committedValues.push(value);
        }
        await call((cb) => (commit ? producer.commitTransaction(10_000, cb) : producer.abortTransaction(10_000, cb)));
      }
    } finally {
      await disconnect(producer);
    }
    return committedValues;
  };
  let topic = uniqueName('fo-txn');
  let committedValues: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      committedValues = await writeTransactions(topic);
      break;
    } catch (e) {
      if (attempt >= 3) throw e;
      t.comment(`writing the transactional input failed (${(e as Error).message}); writing it again on a fresh topic`);
      topic = uniqueName('fo-txn');
    }
  }
  const cfg = config([route('fo', 'a', 'b', [topic])]);
  const strait = new StraitProcess(cfg);
  const first = await consumeAndCommit(a, group, [topic], 90);
  t.equal(first.length, 90);
  t.ok(first.every((g) => !g.value.endsWith('-aborted')));
  await waitFor(
    'committed records replicated',
    async () => (await consumeAndCommit(b, uniqueName('probe'), [`a.${topic}`], committedValues.length, 1500)).length >= committedValues.length,
    60_000,
    500,
  );
  const run = await cli(cfg, 'failover', group, 'a', 'b');
  t.equal(run.code, 0, run.stderr);
  t.ok(run.report?.rows.every((r) => r.kind === 'exact'));
  const second = await consumeAndCommit(b, group, [`a.${topic}`], committedValues.length - first.length);
  t.ok(
    second.every((g) => !g.value.endsWith('-aborted')),
    'no aborted record reached the target',
  );
  checkExactlyRest(t, committedValues, first, second, 'transactional');
  await strait.stop();
});

t.test('failover after an exactly-once run, the group moved mid-stream: every record read once across both clusters', async (t) => {
  // delivery: exactly-once puts transaction markers on the target: each commit takes a target offset, so the offset
  // map's runs end at every transaction and translation must treat the markers as gaps
  const topic = uniqueName('fo-eos');
  const group = uniqueName('fo-g');
  await createTopic(a, topic, P);
  const cfg = config([route('fo', 'a', 'b', [topic], { delivery: 'exactly-once', transactionIntervalMs: 200 })]);
  const strait = new StraitProcess(cfg);
  // a steady stream until ten slices after the move: the group moves while records still arrive and replicate. One
  // producer for the whole stream, each slice flushed before the next.
  let produced = 0;
  let moved = false;
  const producer = await connectProducer(a);
  const producing = (async () => {
    try {
      for (let after = 0; after < 10; after += moved ? 1 : 0) {
        for (const r of records(topic, produced, 300)) producer.produce(topic, r.partition, r.value, r.key);
        await new Promise<void>((res, rej) => producer.flush(10_000, (e) => (e ? rej(e) : res())));
        produced += 300;
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await disconnect(producer);
    }
  })();
  await waitFor('replication under way', async () => (await consumeAndCommit(b, uniqueName('probe'), [`a.${topic}`], 1000, 1000)).length >= 1000, 60_000, 500);
  // the group reads all but 300 of what the source held a moment ago (2,000 records or more on each partition): it
  // commits on every partition, so every partition moves
  await waitFor('6,000 records on the source', () => produced >= 6000, 60_000, 100);
  const n = produced - 300;
  const first = await consumeAndCommit(a, group, [topic], n);
  t.equal(first.length, n);
  const run = await cli(cfg, 'failover', group, 'a', 'b');
  moved = true;
  t.equal(run.code, 0, run.stderr);
  t.ok(
    run.report?.rows.length === P && run.report.rows.every((r) => r.kind === 'exact'),
    `every partition of the group translated exactly (${run.report?.rows.map((r) => r.kind).join(', ')})`,
  );
  t.equal(run.report?.maxDuplicates, 0, 'no duplicates to expect');
  await producing;
  const total = produced;
  t.ok(total >= first.length + 3000, `the stream went on after the move (${total} records in all, ${first.length} read on the source)`);
  await waitFor(
    'every record committed on the target',
    async () => (await consumeAndCommit(b, uniqueName('probe'), [`a.${topic}`], total + 1, 1500)).length >= total,
    90_000,
    500,
  );
  // read_committed, like every group of these tests: one more than the rest would show a duplicate
  const second = await consumeAndCommit(b, group, [`a.${topic}`], total - first.length + 1);
  checkExactlyRest(
    t,
    records(topic, 0, total).map((r) => r.value.toString()),
    first,
    second,
    'exactly-once',
  );
  await strait.stop();
});

t.test('failover while records are still in flight: nothing lost, duplicates within the reported bound', async (t) => {
  const topic = uniqueName('fo-flight');
  const group = uniqueName('fo-g');
  await createTopic(a, topic, P);
  const cfg = config([route('fo', 'a', 'b', [topic])]);
  const first = new StraitProcess(cfg);
  await produce(a, topic, records(topic, 0, 6000));
  await replicated(b, `a.${topic}`, 6000);
  await first.stop();
  // replication is behind now: the group reads (and commits) records the target does not have yet
  await produce(a, topic, records(topic, 6000, 6000));
  const read = await consumeAndCommit(a, group, [topic], 9000);
  const run = await cli(cfg, 'failover', group, 'a', 'b', ['--timeout', '2']);
  t.equal(run.code, 0, run.stderr);
  const pending = run.report?.rows.filter((r) => r.kind === 'pending') ?? [];
  t.ok(pending.length > 0, `partitions whose committed offset is beyond what was replicated are reported pending (${pending.length})`);
  t.ok((run.report?.maxDuplicates ?? 0) > 0, `bound reported: at most ${run.report?.maxDuplicates} records read twice`);
  const second = new StraitProcess(cfg);
  await replicated(b, `a.${topic}`, 12_000);
  const onB = await consumeAndCommit(b, group, [`a.${topic}`], 12_000 - read.length + (run.report?.maxDuplicates ?? 0));
  const firstSet = new Set(read.map((g) => g.value));
  const duplicates = onB.filter((g) => firstSet.has(g.value)).length;
  const seen = new Set([...firstSet, ...onB.map((g) => g.value)]);
  t.equal(records(topic, 0, 12_000).filter((r) => !seen.has(r.value.toString())).length, 0, 'no record lost');
  t.ok(duplicates > 0 && duplicates <= run.report!.maxDuplicates, `${duplicates} duplicates, within the reported bound ${run.report?.maxDuplicates}`);
  await second.stop();
});

t.test('source unreachable: failover from the checkpoints on the target; sync.group.offsets keeps an idle group current', async (t) => {
  const topic = uniqueName('fo-cp');
  const group = uniqueName('fo-g');
  const synced = uniqueName('fo-sync');
  await createTopic(a, topic, P);
  await produce(a, topic, records(topic, 0, 2000));
  const cfg = config([route('fo', 'a', 'b', [topic], { syncGroupOffsets: true })]);
  const strait = new StraitProcess(cfg);
  const first = await consumeAndCommit(a, group, [topic], 777);
  const firstSynced = await consumeAndCommit(a, synced, [topic], 1500);
  await replicated(b, `a.${topic}`, 2000);
  // sync.group.offsets: the idle group on b follows the translation
  const want = new Map<number, number>();
  for (const g of firstSynced) want.set(g.partition, Math.max(want.get(g.partition) ?? 0, g.offset + 1));
  await waitFor(
    'synced offsets in the group on b',
    async () => {
      const got = await loadNativeGroupOffsets(b, synced);
      return got.length === want.size && got.every((o) => want.get(o.partition) === o.offset);
    },
    30_000,
    500,
  );
  t.pass('the idle group on b holds exactly the translated offsets');
  // never backwards: move the group on b ahead by hand; the next checkpoint passes leave it alone
  const admin = new (loadNative().Admin)({ 'bootstrap.servers': b });
  await admin.alterConsumerGroupOffsets(synced, [{ topic: `a.${topic}`, partition: 0, offset: 1999 }], 10_000);
  await new Promise((r) => setTimeout(r, 2500));
  t.equal((await loadNativeGroupOffsets(b, synced)).find((o) => o.partition === 0)?.offset, 1999, 'a group ahead of the translation is never moved back');
  admin.close();
  const metrics = await strait.metrics();
  t.match(metrics, new RegExp(`strait_checkpoint_age_seconds\\{route="fo",group="${group}"\\} [0-9.]+`), 'checkpoint age exported per group');
  t.match(metrics, /strait_groups_translated\{route="fo"\} [1-9]/);
  await waitFor('checkpoint of the group written', async () => /strait_checkpoints_written_total\{route="fo"\} [1-9]/.test(await strait.metrics()), 10_000);
  await new Promise((r) => setTimeout(r, 1500)); // the checkpoint pass after the group's commit
  // the failover runs with cluster a unreachable
  const downCfg = config([route('fo', 'a', 'b', [topic])], { a: { bootstrap: '127.0.0.1:1' }, b: { bootstrap: b } });
  const run = await cli(downCfg, 'failover', group, 'a', 'b');
  t.equal(run.code, 0, run.stderr);
  t.equal(run.report?.basis, 'checkpoint', 'used the checkpoints on b');
  t.ok(run.report?.rows.every((r) => r.kind === 'exact'));
  const second = await consumeAndCommit(b, group, [`a.${topic}`], 2000 - first.length);
  checkExactlyRest(
    t,
    records(topic, 0, 2000).map((r) => r.value.toString()),
    first,
    second,
    'from checkpoints',
  );
  await strait.stop();
});

t.test('failback after new writes on b reaches the consumers on a with nothing lost; bad input is named', async (t) => {
  const topic = uniqueName('fo-back');
  const group = uniqueName('fo-g');
  await createTopic(a, topic, P);
  await createTopic(b, topic, P);
  await produce(a, topic, records(topic, 0, 1500));
  // active-active (prefix naming): a.<topic> on b, b.<topic> on a
  const cfg = config([route('ab', 'a', 'b', [topic]), route('ba', 'b', 'a', [topic])]);
  const strait = new StraitProcess(cfg);
  const onA = await consumeAndCommit(a, group, [topic], 500);
  await replicated(b, `a.${topic}`, 1500);
  const over = await cli(cfg, 'failover', group, 'a', 'b');
  t.equal(over.code, 0, over.stderr);
  // while failed over, producers write to b
  const bValues = records(`${topic}-b`, 0, 900);
  await produce(b, topic, bValues);
  const onB = [...(await consumeAndCommit(b, group, [`a.${topic}`], 600)), ...(await consumeAndCommit(b, group, [topic], 400))];
  t.equal(onB.length, 1000);
  await replicated(a, `b.${topic}`, 900);
  const back = await cli(cfg, 'failback', group, 'b', 'a');
  t.equal(back.code, 0, back.stderr);
  t.ok(
    back.report?.rows.some((r) => r.toTopic === topic) && back.report.rows.some((r) => r.toTopic === `b.${topic}`),
    "offsets for the original topic (inverse) and for the replica of b's writes (forward)",
  );
  const againOnA = await consumeAndCommit(a, group, [topic, `b.${topic}`], 2400 - onA.length - onB.length);
  const all = [...records(topic, 0, 1500), ...bValues].map((r) => r.value.toString());
  checkExactlyRest(t, all, [...onA, ...onB], againOnA, 'failback');

  const bad = await cli(config([route('fo', 'a', 'b', [topic])]), 'failover', group, 'b', 'a');
  t.not(bad.code, 0);
  t.match(bad.stderr, /--to: no route replicates from 'b' to 'a' \(routes: fo \(a -> b\)\)/);
  const unknown = await cli(cfg, 'failover', group, 'x', 'b');
  t.match(unknown.stderr, /--from: unknown cluster alias 'x'/);
  // a group with a live member on the target is refused
  const member = new Kafka.KafkaConsumer({ 'bootstrap.servers': a, 'group.id': group, log_level: 0 }, {});
  await new Promise<void>((res, rej) => member.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  member.subscribe([topic]);
  let polling = true;
  const poll = (async () => {
    while (polling) await new Promise<void>((res) => member.consume(10, () => res()));
  })();
  await waitFor(
    'member joined',
    async () => {
      const admin = new (loadNative().Admin)({ 'bootstrap.servers': a });
      try {
        return ((await admin.describeConsumerGroups([group], 5000))[0]?.members ?? 0) > 0;
      } finally {
        admin.close();
      }
    },
    30_000,
    500,
  );
  const busy = await cli(cfg, 'failback', group, 'b', 'a');
  t.not(busy.code, 0);
  t.match(busy.stderr, /has 1 active member\(s\) on cluster 'a'/);
  polling = false;
  await poll;
  await disconnect(member);
  await strait.stop();
});

t.test('identity naming with writes on both clusters: failover (live, and from checkpoints) loses nothing', async (t) => {
  const topic = uniqueName('fo-ident');
  const group = uniqueName('fo-g');
  const group2 = uniqueName('fo-g');
  await createTopic(a, topic, P);
  await createTopic(b, topic, P);
  const identity = { naming: { policy: 'identity' } };
  const cfg = config([route('ab', 'a', 'b', [topic], identity), route('ba', 'b', 'a', [topic], identity)]);
  const strait = new StraitProcess(cfg);
  // writes on both sides, interleaved in time, so each cluster's partitions mix local records and replicas
  const onA = records(`${topic}-a`, 0, 1200);
  const onB = records(`${topic}-b`, 0, 1200);
  for (let i = 0; i < 1200; i += 300) {
    await produce(a, topic, onA.slice(i, i + 300));
    await produce(b, topic, onB.slice(i, i + 300));
  }
  const all = [...onA, ...onB].map((r) => r.value.toString());
  await replicated(a, topic, 2400);
  await replicated(b, topic, 2400);
  const first = await consumeAndCommit(a, group, [topic], 1300);
  const first2 = await consumeAndCommit(a, group2, [topic], 700);
  const run = await cli(cfg, 'failover', group, 'a', 'b');
  t.equal(run.code, 0, run.stderr);
  t.ok(
    run.report?.rows.every((r) => r.kind === 'exact'),
    'every partition translated',
  );
  const second = await consumeAndCommit(b, group, [topic], 10_000);
  const seen = new Set([...first, ...second].map((g) => g.value));
  t.equal(all.filter((v) => !seen.has(v)).length, 0, 'no record lost (live)');
  const firstSet = new Set(first.map((g) => g.value));
  const dup = second.filter((g) => firstSet.has(g.value)).length;
  t.comment(
    `live: ${first.length} read on a, ${second.length} on b, ${dup} of them read on a before (interleaved partitions resume at the lower of the two translations)`,
  );
  t.ok(dup < first.length, 'the group did not start over');
  t.equal(dup, run.report?.maxDuplicates, `the re-read records are exactly the ones reported (${run.report?.maxDuplicates})`);

  // the same with a unreachable: the checkpoints on b carry both directions
  await waitFor(
    'checkpoints of the second group on b',
    async () => {
      const m = await strait.metrics();
      return new RegExp(`strait_checkpoint_age_seconds\\{route="ab",group="${group2}"\\} [0-9.]+`).test(m);
    },
    20_000,
    500,
  );
  await new Promise((r) => setTimeout(r, 1500));
  const downCfg = config([route('ab', 'a', 'b', [topic], identity), route('ba', 'b', 'a', [topic], identity)], {
    a: { bootstrap: '127.0.0.1:1' },
    b: { bootstrap: b },
  });
  const fromCp = await cli(downCfg, 'failover', group2, 'a', 'b');
  t.equal(fromCp.code, 0, fromCp.stderr);
  t.equal(fromCp.report?.basis, 'checkpoint');
  const second2 = await consumeAndCommit(b, group2, [topic], 10_000);
  const seen2 = new Set([...first2, ...second2].map((g) => g.value));
  t.equal(all.filter((v) => !seen2.has(v)).length, 0, 'no record lost (from checkpoints)');
  const first2Set = new Set(first2.map((g) => g.value));
  const dup2 = second2.filter((g) => first2Set.has(g.value)).length;
  t.comment(`checkpoints: ${first2.length} read on a, ${second2.length} on b, ${dup2} read before, ${fromCp.report?.maxDuplicates} reported`);
  t.ok(dup2 <= (fromCp.report?.maxDuplicates ?? 0), 'within what the report says');
  await strait.stop();
});
