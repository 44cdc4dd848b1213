/**
 * Log truncation (issue #12), provoked on real brokers: an unclean leader election on a 3-broker source cluster of
 * the test's own takes away records strait has already replicated, and the new leader then takes new, different
 * records at the same offsets. strait must report the truncation (an error-level log naming route, topic and
 * partition, a `truncation` gap in /v1/status, the strait_records_skipped_total series) and copy every new record,
 * byte for byte — (a) while it runs through the election, (b) when it was stopped during it and starts again with the
 * committed offset and leader epoch (KIP-320's check on assign). The records the source lost stay on the target, before
 * the new ones: strait copied them while the source held them, as it should, and the gap is what says the source no
 * longer does.
 *
 * One drill serves both, on two topics of one partition each (one per case and strait process), whose replicas are
 * brokers 2 (leader) and 3 (follower), with unclean.leader.election.enable=true and min.insync.replicas=1: 100
 * records on both replicas; broker 3 stopped; 200 records written with acks=1 to broker 2 alone, and replicated by
 * strait; (b)'s strait stopped; broker 2 stopped; broker 3 started and elected uncleanly (its log ends at 100); new
 * records written to it at offsets 100.. (150 for (a), 300 for (b)); broker 2 started again, which truncates its log
 * to 100 and follows. Broker 1 holds no replica: every node is a KRaft voter (combined mode), and with the two
 * replicas' brokers down at once for a moment it is the quorum's third member, which comes back with broker 3. (RF 3
 * with two followers stopped would leave one voter of three: no quorum, no ISR change, and the lone leader's high
 * watermark would never move past what the followers had.)
 */
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import * as dev from '../../bench/harness/local-cluster';
import { EmbeddedStore } from '../../shared/store/embedded';
import type { CommittedOffset, ReportedGap } from '../../shared/wire';
import type { PartitionStart } from '../../worker/start-planner';
import { bootstrap, endOffsets, produce, readAll, sameRecord, uniqueName, type ReadRecord, type TestRecord } from '../helpers/kafka';
import { createTopicOn, electUncleanLeader } from '../helpers/kafka-tools';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

const DIR = join(projectRoot(), '.strait', 'test-truncation');
const ALIAS = 'a';
const LEADER = 2;
const FOLLOWER = 3;
/** written while both replicas are in sync */
const KEPT = 100;
/** written to the lone leader with acks=1 and replicated by strait, then lost in the unclean election */
const LOST = 200;
/**
 * written to the new leader at offsets KEPT.. after the election: for (a) fewer than were lost (the new log ends below
 * strait's offset: the committed offset must go back), for (b) more (the new log reaches past strait's offset, so
 * only the leader epoch check can tell that the records there are not the ones strait read)
 */
const FRESH_RUN = 150;
const FRESH_STOP = 300;

interface RunStatus {
  worker: { gaps: ReportedGap[]; starts: PartitionStart[]; errored: { topic: string; code: string }[] };
}

let state: dev.DevState;
const source = () => state.clusters[ALIAS]!.bootstrap;
const started = Date.now();
const log = (line: string) => process.stderr.write(`# ${((Date.now() - started) / 1000).toFixed(1)} s: ${line}\n`);

t.before(async () => {
  await dev.down({ dir: DIR }); // leftovers of an interrupted run
  // on the suite's Kafka (STRAIT_KAFKA_VERSION, as test/fixtures/clusters-up.ts)
  state = await dev.up({ clusters: 1, brokers: 3, zookeeper: false, dir: DIR, log, kafkaVersion: process.env.STRAIT_KAFKA_VERSION });
});
t.teardown(async () => {
  await stopAll();
  await dev.down({ dir: DIR });
});

/** Records whose every byte says which phase wrote them: binary values, two headers, explicit timestamps. */
function records(phase: string, n: number): TestRecord[] {
  const at = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const value = Buffer.alloc(32 + (i % 50));
    for (let j = 0; j < value.length; j++) value[j] = (i * 31 + j * 7 + phase.charCodeAt(0) * 13) & 0xff;
    return {
      partition: 0,
      key: Buffer.from(`${phase}-${i}`),
      value,
      headers: [
        { key: 'phase', value: Buffer.from(phase) },
        { key: 'i', value: Buffer.from(String(i)) },
      ],
      timestamp: at + i,
    };
  });
}

function asRead(r: TestRecord): ReadRecord {
  return { partition: r.partition, offset: -1, key: r.key, value: r.value, headers: r.headers ?? [], timestamp: r.timestamp! };
}

/** Indexes of `got` that differ from `want` (or are missing or extra), the first 10. */
function mismatches(got: ReadRecord[], want: TestRecord[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(got.length, want.length) && out.length < 10; i++) {
    if (got[i] === undefined || want[i] === undefined || !sameRecord(got[i]!, asRead(want[i]!))) out.push(i);
  }
  return out;
}

async function end(brokers: string, topic: string): Promise<number> {
  try {
    return (await endOffsets(brokers, topic, 1))[0]!;
  } catch {
    return -1;
  }
}

/** The log end once the source answers (right after a leader change the first query may fail). */
async function sourceEnd(topic: string): Promise<number> {
  let at = -1;
  await waitFor(`the log end of ${topic}`, async () => (at = await end(source(), topic)) >= 0, 30_000, 500);
  return at;
}

async function partitionOf(topic: string): Promise<dev.PartitionHealth | undefined> {
  try {
    return (await dev.clusterHealth(source(), 5000)).partitions.find((p) => p.topic === topic && p.partition === 0);
  } catch {
    return undefined;
  }
}

async function waitForPartition(topic: string, what: string, ok: (p: dev.PartitionHealth) => boolean, timeoutMs = 60_000): Promise<void> {
  let last: dev.PartitionHealth | undefined;
  try {
    await waitFor(what, async () => (last = await partitionOf(topic)) !== undefined && ok(last), timeoutMs, 500);
  } catch (e) {
    throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

const acksOne = { acks: 1, 'enable.idempotence': false };

/** A topic of the drill, the route that replicates it, and what was written to it in each phase. */
interface Subject {
  topic: string;
  route: string;
  config: string;
  kept: TestRecord[];
  lost: TestRecord[];
  fresh: TestRecord[];
}

function subject(route: string, fresh: number): Subject {
  const topic = uniqueName(route);
  const config = writeConfig({
    clusters: { src: { bootstrap: source() }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: route, source: 'src', target: 'b', topics: { include: [topic] } }],
    controller: { refreshTopicsIntervalMs: 1000 },
    worker: { commitIntervalMs: 500 },
  });
  return { topic, route, config, kept: records('kept', KEPT), lost: records('lost', LOST), fresh: records('fresh', fresh) };
}

const replicated = (s: Subject, n: number) =>
  waitFor(`${n} records of ${s.topic} replicated`, async () => (await end(bootstrap('b'), `src.${s.topic}`)) === n, 90_000, 500);

/** Both replicas hold the kept records. */
async function prepare(subjects: Subject[]): Promise<void> {
  for (const s of subjects) {
    createTopicOn(state, source(), s.topic, `${LEADER}:${FOLLOWER}`, { 'unclean.leader.election.enable': 'true', 'min.insync.replicas': '1' });
    await waitForPartition(s.topic, `${s.topic} led by broker ${LEADER} with both replicas in sync`, (p) => p.leader === LEADER && p.isr.length === 2);
    await produce(source(), s.topic, s.kept);
  }
}

/** The follower stops; the records then written with acks=1 are on the leader alone. */
async function writeToLoneLeader(t: Test, subjects: Subject[]): Promise<void> {
  log('the follower stops');
  await dev.stopBroker(ALIAS, FOLLOWER, { dir: DIR });
  for (const s of subjects) {
    await waitForPartition(s.topic, `the ISR of ${s.topic} down to broker ${LEADER}`, (p) => p.isr.length === 1 && p.isr[0] === LEADER);
    await produce(source(), s.topic, s.lost, acksOne);
    t.equal(await sourceEnd(s.topic), KEPT + LOST, `the lone leader's log of ${s.topic} ends at ${KEPT + LOST}`);
  }
}

/** The leader stops, the stale follower becomes leader uncleanly and takes new records at the reused offsets. */
async function electStaleFollower(t: Test, subjects: Subject[]): Promise<void> {
  log('the leader stops, the stale follower starts');
  await dev.stopBroker(ALIAS, LEADER, { dir: DIR });
  await dev.startBroker(ALIAS, FOLLOWER, { dir: DIR });
  for (const s of subjects) {
    // KRaft's controller elects it by itself under unclean.leader.election.enable; the tool asks when it has not
    try {
      await waitForPartition(s.topic, `broker ${FOLLOWER} elected`, (p) => p.leader === FOLLOWER, 5000);
    } catch {
      const election = electUncleanLeader(state, source(), s.topic, 0);
      await waitForPartition(s.topic, `broker ${FOLLOWER} elected uncleanly (${election.status}: ${election.output})`, (p) => p.leader === FOLLOWER);
    }
    t.equal(await sourceEnd(s.topic), KEPT, `the new leader's log of ${s.topic} ends at ${KEPT}: the ${LOST} records written to the old one are gone`);
    await produce(source(), s.topic, s.fresh, acksOne);
  }
}

/** The old leader comes back: it truncates its log to where the new leader's diverged, and follows. */
async function bringBackOldLeader(t: Test, subjects: Subject[]): Promise<void> {
  log('the old leader starts');
  await dev.startBroker(ALIAS, LEADER, { dir: DIR });
  for (const s of subjects) {
    await waitForPartition(s.topic, `broker ${LEADER} back in the ISR of ${s.topic}`, (p) => p.isr.length === 2, 120_000);
    const held = await readAll(source(), s.topic, 1, KEPT + s.fresh.length);
    t.same(
      mismatches(held, [...s.kept, ...s.fresh]),
      [],
      `the source holds the ${KEPT} kept records of ${s.topic}, then the ${s.fresh.length} new ones at offsets ${KEPT}..`,
    );
  }
  log('drill done');
}

/**
 * What the target must hold: every record strait replicated before the election, the lost ones included — they were
 * copied while the source still had them, and nothing takes a record back from the target; the truncation gap is what
 * says they are no longer in the source — then every new record, in order, byte for byte. No record twice.
 */
async function checkTarget(t: Test, strait: StraitProcess, s: Subject): Promise<void> {
  const target = `src.${s.topic}`;
  const want = [...s.kept, ...s.lost, ...s.fresh];
  try {
    await waitFor(`the target to hold ${want.length} records`, async () => (await end(bootstrap('b'), target)) >= want.length, 60_000, 500);
  } catch (e) {
    const gaps = (await strait.json<RunStatus>('/v1/status')).worker.gaps;
    throw new Error(`${(e as Error).message}: it holds ${await end(bootstrap('b'), target)}; strait's gaps: ${JSON.stringify(gaps)}`);
  }
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(await end(bootstrap('b'), target), want.length, `exactly ${want.length} records on the target, none twice`);
  const got = await readAll(bootstrap('b'), target, 1, want.length);
  t.same(
    mismatches(got, want),
    [],
    `the target holds the ${KEPT} kept records, the ${LOST} records the source lost (replicated before it lost them), then the ${s.fresh.length} new ones, byte-identical`,
  );
}

/** The truncation is reported: one gap in the worker's status, the metric series, one error-level log line. */
async function checkReported(t: Test, strait: StraitProcess, { route, topic }: Subject): Promise<void> {
  let gaps: ReportedGap[] = [];
  await waitFor(
    'the truncation gap in the worker status',
    async () => (gaps = (await strait.json<RunStatus>('/v1/status')).worker.gaps).length > 0,
    60_000,
    500,
  );
  t.same(
    gaps.map((g) => [g.route, g.topic, g.partition, g.reason, g.from, g.to, g.skipped, g.stopped]),
    [[route, topic, 0, 'truncation', KEPT + LOST, KEPT, 0, false]],
    `one truncation gap: strait was at ${KEPT + LOST}, the source's log diverged at ${KEPT}, where replication goes on`,
  );
  t.match(
    await strait.metrics(),
    new RegExp(`strait_records_skipped_total\\{route="${route}",topic="${topic}",reason="truncation"\\} 0\\n`),
    'the strait_records_skipped_total series for the reason (0: no record the source still has was skipped)',
  );
  const lines = strait.output.split('\n').filter((l) => l.includes('"level":50') && l.includes('"reason":"truncation"'));
  t.equal(lines.length, 1, 'one error-level log line');
  t.match(
    JSON.parse(lines[0] ?? '{}'),
    {
      route,
      topic,
      partition: 0,
      from: KEPT + LOST,
      to: KEPT,
      skipped: 0,
      msg: new RegExp(`truncated below offset ${KEPT + LOST}.*goes on from offset ${KEPT}$`),
    },
    'naming route, topic and partition',
  );
  t.same((await strait.json<RunStatus>('/v1/status')).worker.errored, [], 'and the partition is not errored: it goes on');
}

async function storedOffset(configFile: string, route: string, topic: string): Promise<CommittedOffset | undefined> {
  const store = new EmbeddedStore(join(configFile, '..', 'store'));
  try {
    return (await store.readOffsets(route)).get(`${topic}/0`);
  } finally {
    await store.close();
  }
}

async function stopped(strait: StraitProcess): Promise<void> {
  if ((await strait.stop()) !== 0) throw new Error(`strait exited with an error:\n${strait.output.slice(-2000)}`);
}

t.test('an unclean leader election on the source takes away records strait replicated', async (t) => {
  // the same drill for two topics: one replicated by a strait that runs through it, one by a strait stopped during it
  const run = subject('trunc-run', FRESH_RUN);
  const stop = subject('trunc-stop', FRESH_STOP);
  await prepare([run, stop]);
  const running = new StraitProcess(run.config);
  const first = new StraitProcess(stop.config);
  await Promise.all([replicated(run, KEPT), replicated(stop, KEPT)]);
  await writeToLoneLeader(t, [run, stop]);
  await Promise.all([replicated(run, KEPT + LOST), replicated(stop, KEPT + LOST)]);
  await stopped(first);
  const before = await storedOffset(stop.config, stop.route, stop.topic);
  t.match(before, { offset: KEPT + LOST, leaderEpoch: Number }, 'the stopped strait committed the offset past the lost records with its leader epoch');
  await electStaleFollower(t, [run, stop]);
  await bringBackOldLeader(t, [run, stop]);

  await t.test('(a) strait running through it reports the truncation and copies every new record', async (t) => {
    await checkTarget(t, running, run);
    await checkReported(t, running, run);
    await stopped(running);
    // strait's offset (300) is no longer in the source's log, which ends at 250: the commits went back with it
    t.match(
      await storedOffset(run.config, run.route, run.topic),
      { offset: KEPT + FRESH_RUN, leaderEpoch: Number },
      `the committed offset went back to the new log's end, ${KEPT + FRESH_RUN}`,
    );
  });

  await t.test('(b) strait stopped during it finds the truncation on restart (the epoch passed on assign) and copies every new record', async (t) => {
    const strait = new StraitProcess(stop.config);
    await waitFor('the partition started', async () => (await strait.json<RunStatus>('/v1/status')).worker.starts.length > 0, 60_000, 500);
    t.match(
      (await strait.json<RunStatus>('/v1/status')).worker.starts[0],
      { from: 'committed', offset: KEPT + LOST, leaderEpoch: before!.leaderEpoch },
      'the restart assigns the committed offset with its leader epoch',
    );
    await checkTarget(t, strait, stop);
    await checkReported(t, strait, stop);
    await stopped(strait);
    const after = await storedOffset(stop.config, stop.route, stop.topic);
    t.equal(after?.offset, KEPT + FRESH_STOP, "the committed offset is the new log's end");
    t.ok((after?.leaderEpoch ?? -1) > before!.leaderEpoch!, `under the new leader's epoch (${after?.leaderEpoch} > ${before!.leaderEpoch})`);

    // a further restart passes the epoch check: nothing reported again, later records arrive
    const again = new StraitProcess(stop.config);
    await produce(source(), stop.topic, records('more', 10));
    await replicated(stop, KEPT + LOST + FRESH_STOP + 10);
    t.same((await again.json<RunStatus>('/v1/status')).worker.gaps, [], 'no gap reported again');
    await stopped(again);
  });
});
