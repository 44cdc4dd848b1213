/**
 * delivery: exactly-once — a commit whose answer is lost. The target broker takes a partition's EndTxn and commits the
 * transaction, but strait never hears back (a proxy in front of the broker holds every answer from that request on):
 * its commit_transaction times out, cannot be aborted, and the forwarder fails with the transaction in doubt. Started
 * again from its last commit it knew of, the partition would send that committed transaction's records once more (the
 * chaos drill's CI caught exactly that: 194 records committed twice after a target broker was killed). strait fences
 * the transactional id instead, reads the target's offset map, and starts after the last committed run: an
 * independent read_committed reader counts 0 duplicates and 0 missing, and strait's log says the transaction in doubt
 * had committed and where the partition started instead.
 */
import { join } from 'node:path';
import t from 'tap';
import * as dev from '../../bench/harness/local-cluster';
import { startTcpProxy } from '../../bench/harness/tcp-proxy';
import { TEST_DEV_DIR } from '../helpers/dir';
import { exactlyOnce, steadyProducer, storedOffsets } from '../helpers/exactly-once';
import { bootstrap, createTopic, readAll, uniqueName, within } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

/** Kafka's API key of EndTxn (the request that commits or aborts a transaction) */
const END_TXN = 26;
const PARTITIONS = 3;
const TOTAL = 30_000;
const DIR = join(TEST_DEV_DIR, 'eos-doubt');

t.teardown(async () => {
  await stopAll();
  await dev.down({ dir: DIR });
});

/** strait's log lines (JSON) whose message matches `re` */
const logLines = (s: StraitProcess, re: RegExp) =>
  s.output
    .split('\n')
    .filter((l) => l.startsWith('{') && re.test(l))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('exactly-once: a commit the broker took but whose answer was lost is not committed twice', async (t) => {
  // a target of its own, reached only through the proxy (its listener advertises the proxy's port)
  await dev.down({ dir: DIR }); // leftovers of an interrupted run
  const state = await dev.up({ clusters: 1, wanListener: true, dir: DIR, kafkaVersion: process.env.STRAIT_KAFKA_VERSION, log: (l) => t.comment(l) });
  const wan = state.clusters.a!.wan!;
  const proxy = await startTcpProxy(`127.0.0.1:${wan.port}`, { port: wan.proxyPort });
  t.teardown(() => proxy.close());
  const source = bootstrap('a');
  const topic = uniqueName('eos-doubt');
  await createTopic(source, topic, PARTITIONS);
  const config = writeConfig({
    clusters: { a: { bootstrap: source }, far: { bootstrap: wan.bootstrap } },
    routes: [{ name: 'eos-doubt', source: 'a', target: 'far', topics: { include: [topic] }, delivery: 'exactly-once', transactionIntervalMs: 300 }],
    worker: { threads: 2, commitIntervalMs: 500 },
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  const strait = new StraitProcess(config);
  const committedOnTarget = () => storedOffsets(config, 'eos-doubt', topic, PARTITIONS).reduce((x, y) => x + y, 0);
  const producer = steadyProducer(source, topic, PARTITIONS, TOTAL, 300, 100);
  await waitFor('transactions committing on the target', () => committedOnTarget() >= 3000, 90_000, 250);

  // the next EndTxn reaches the broker; its answer, and every other one, is held from then on
  await within(proxy.holdResponsesAfter(END_TXN), 30_000, 'an EndTxn request through the proxy');
  const heldAt = producer.produced();
  // commit_transaction times out (10 s), is resumed twice, cannot be aborted: the forwarder fails in doubt
  const failedCommits = () => logLines(strait, /commit_transaction/).filter((l) => l.code === 'STRAIT_PRODUCER_FATAL');
  await waitFor('strait reporting the failed commit', () => failedCommits().length > 0, 90_000, 500);
  const doubt = failedCommits()[0]!;
  t.equal(doubt.level, 50, 'the failed commit is logged at error level, with a code');
  t.match(String(doubt.msg), /could not be aborted .* it may have committed/, `as a commit in doubt (${String(doubt.msg).slice(0, 160)})`);
  const during = await strait.status();
  t.ok(during.worker.totals.errored > 0, `the partition is shown errored while its commit is in doubt (${JSON.stringify(during.worker.totals)})`);
  // the fence cannot complete while answers are held: the partition stays stopped, and says so
  await new Promise((r) => setTimeout(r, 3000));
  t.ok((await strait.status()).worker.totals.errored > 0, 'still errored while the target does not answer');
  proxy.releaseResponses();
  t.ok(producer.produced() > heldAt, `the stream went on meanwhile (${heldAt} -> ${producer.produced()} produced)`);

  await producer.done;
  await waitFor('every record committed on the target', () => committedOnTarget() >= TOTAL, 180_000, 500);
  await waitFor('no partition left errored', async () => (await strait.status()).worker.totals.errored === 0, 60_000, 500);
  const resumed = logLines(strait, /transaction in doubt .* had committed/);
  t.ok(
    resumed.length > 0,
    `the transaction in doubt had committed on the broker, and the partition started after it: ${resumed.map((l) => `${String(l.topic)}[${String(l.partition)}] ${String(l.lastKnownCommit)} -> ${String(l.startsAt)}`).join(', ')}`,
  );

  const src = await readAll(source, topic, PARTITIONS, TOTAL, 60_000);
  t.equal(src.length, TOTAL, 'the source holds every record');
  // one record more than the source holds: a duplicate would be read, not cut off at the count
  const committed = await readAll(wan.bootstrap, `a.${topic}`, PARTITIONS, TOTAL + 1, 20_000, 'read_committed');
  t.equal(committed.length, TOTAL, `read_committed: ${committed.length} records on the target for ${TOTAL} on the source`);
  exactlyOnce(t, src, committed, PARTITIONS);
  t.equal(await strait.stop(), 0, 'strait stops cleanly');
});
