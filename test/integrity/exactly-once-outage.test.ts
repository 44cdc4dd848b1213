/**
 * delivery: exactly-once — the target cluster stopped for 60 s mid-stream: the open transactions cannot finish (their
 * records are not acknowledged, or the commit times out), the forwarders report it, abort what they can and start their
 * partitions again from the last committed run; once the target is back, an independent read_committed reader sees
 * every source record exactly once, in source order per partition.
 *
 * And the memory bound: an exactly-once route gives each partition a forwarder (and consumer) of its own; they split
 * the route's part of `worker.inflightBytes` on their pool thread (shared/kafka/client-settings.ts, partitionShare),
 * so a target outage with a large backlog keeps the worker's in-flight bytes within its budget. The route's
 * transaction interval there is long (10 s), so that what bounds a partition's reads during the outage is its share of
 * the budget, not one interval's reads: with each partition taking its thread's whole share, as before the split, in
 * flight would pass the bound. The consumers' prefetch, which the split also caps, shows in RSS (the delivery bench,
 * BENCHMARKS.md).
 */
import t from 'tap';
import { startStoppedCluster, stopCluster } from '../../bench/harness/local-cluster';
import { withClusterLock } from '../helpers/cluster-lock';
import { TEST_DEV_DIR } from '../helpers/dir';
import { exactlyOnce, steadyProducer, storedOffsets } from '../helpers/exactly-once';
import { bootstrap, createTopic, produce, readAll, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

const PARTITIONS = 3;
const OUTAGE_MS = 60_000;

/** The sum of a labelled counter's (or gauge's) samples in a Prometheus text page (0 when absent). */
const counter = (page: string, name: string) =>
  [...page.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);

t.test('exactly-once: the target stopped for 60 s mid-stream: reported, then 0 duplicates and 0 missing for read_committed readers', (t) =>
  withClusterLock('c', async () => {
    const a = bootstrap('a');
    const c = bootstrap('c'); // besides this file only the outage and active-active tests use cluster c, under the same lock
    const topic = uniqueName('eos-outage');
    const target = `a.${topic}`;
    const TOTAL = 45_000;
    await createTopic(a, topic, PARTITIONS);
    const config = writeConfig({
      clusters: { a: { bootstrap: a }, c: { bootstrap: c } },
      routes: [{ name: 'eos-outage', source: 'a', target: 'c', topics: { include: [topic] }, delivery: 'exactly-once', transactionIntervalMs: 300 }],
      worker: { threads: 2, commitIntervalMs: 500 },
      controller: { refreshTopicsIntervalMs: 1000 },
    });
    const strait = new StraitProcess(config);
    // the store follows the target's committed transactions (the end offsets count transaction markers too)
    const committedOnTarget = () => storedOffsets(config, 'eos-outage', topic, PARTITIONS).reduce((x, y) => x + y, 0);
    // a steady producer for the whole test: 500 records every 250 ms before, during and after the outage
    const producer = steadyProducer(a, topic, PARTITIONS, TOTAL, 500, 250);
    await waitFor('transactions committing on the target', () => committedOnTarget() >= 5000, 90_000, 250);
    const before = await strait.metrics();

    await stopCluster('c', { dir: TEST_DEV_DIR });
    const down = Date.now();
    t.ok(producer.produced() < TOTAL, `the stream still flowed when the target stopped (${producer.produced()} of ${TOTAL} produced)`);
    // never silent: while the target is away the partitions are in an error state with a code, counted
    await waitFor(
      'the forwarders reporting that their transactions cannot finish',
      async () => counter(await strait.metrics(), 'strait_errors_total') > counter(before, 'strait_errors_total'),
      OUTAGE_MS,
      1000,
    );
    const during = await strait.status();
    t.ok(
      during.worker.totals.errored > 0 || during.worker.totals.paused > 0,
      `partitions shown errored or paused while the target is down (${JSON.stringify(during.worker.totals)})`,
    );
    // and they stay errored while it is away: a forwarder started again waits for its init_transactions, which is no
    // progress either (a pool thread is not blocked by it, so its reports go on)
    await waitFor('every partition errored', async () => (await strait.status()).worker.totals.errored === PARTITIONS, 30_000, 500);
    const looks: number[] = [];
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 2000));
      looks.push((await strait.status()).worker.totals.errored);
    }
    t.same(
      looks.filter((n) => n !== PARTITIONS),
      [],
      `every partition errored at each of 8 looks 2 s apart while the target is down (errored: ${looks.join(', ')})`,
    );
    const errors = strait.output
      .split('\n')
      .filter((l) => /"level":50/.test(l))
      .map((l) => /"code":"(STRAIT_[A-Z_]+)"/.exec(l)?.[1])
      .filter(Boolean);
    t.ok(errors.length > 0, `error-level logs with codes while the target is down (${[...new Set(errors)].join(', ')})`);
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - down))));
    t.equal(strait.child.exitCode, null, 'strait is still running after 60 s without its target');

    await startStoppedCluster('c', { dir: TEST_DEV_DIR });
    await producer.done;
    await waitFor('every record committed on the target after the outage', () => committedOnTarget() >= TOTAL, 180_000, 500);
    await waitFor('no partition left errored', async () => (await strait.status()).worker.totals.errored === 0, 60_000, 500);

    const source = await readAll(a, topic, PARTITIONS, TOTAL, 60_000);
    t.equal(source.length, TOTAL, 'the source holds every record');
    // one record more than the source holds: a duplicate would be read, not cut off at the count
    const committed = await readAll(c, target, PARTITIONS, TOTAL + 1, 20_000, 'read_committed');
    t.equal(committed.length, TOTAL, `read_committed: ${committed.length} records on the target for ${TOTAL} on the source`);
    exactlyOnce(t, source, committed, PARTITIONS);
    const uncommitted = await readAll(c, target, PARTITIONS, TOTAL * 2, 20_000, 'read_uncommitted');
    t.comment(`read_uncommitted sees ${uncommitted.length - TOTAL} records of aborted transactions`);
    t.equal(await strait.stop(), 0);
  }),
);

t.test(
  "exactly-once: a route's partitions split its share of worker.inflightBytes: a target outage with a backlog 4x the budget stays within it, and each record lands once",
  (t) =>
    withClusterLock('c', async () => {
      const a = bootstrap('a');
      const c = bootstrap('c');
      const topic = uniqueName('eos-budget');
      const P = 6;
      const MiB = 1 << 20;
      const BUDGET = 12 * MiB; // 2 threads: 6 MiB a thread, 2 MiB for each of its 3 partitions
      const VALUE = 8 * 1024;
      const big = (from: number, n: number) =>
        Array.from({ length: n }, (_, k) => ({
          partition: (from + k) % P,
          key: Buffer.from(`k${from + k}`),
          value: Buffer.from(`value-${from + k}-`.padEnd(VALUE, 'x')),
        }));
      await createTopic(a, topic, P);
      const config = writeConfig({
        clusters: { a: { bootstrap: a }, c: { bootstrap: c } },
        routes: [
          // a transaction longer than the outage's reads take to reach the budget: the budget, not the interval, stops them
          { name: 'eos-budget', source: 'a', target: 'c', topics: { include: [topic] }, delivery: 'exactly-once', transactionIntervalMs: 10_000 },
        ],
        worker: { threads: 2, commitIntervalMs: 500, inflightBytes: BUDGET },
        controller: { refreshTopicsIntervalMs: 1000 },
      });
      const strait = new StraitProcess(config);
      const committedOnTarget = () => storedOffsets(config, 'eos-budget', topic, P).reduce((x, y) => x + y, 0);
      const FIRST = 600;
      const TOTAL = FIRST + 6000; // 6,000 x 8 KiB = 48 MiB during the outage: 4x the budget, 8x a partition's prefetch
      await produce(a, topic, big(0, FIRST));
      await waitFor('the first transactions committed on the target', () => committedOnTarget() >= FIRST, 90_000, 250);

      await stopCluster('c', { dir: TEST_DEV_DIR });
      // in flight: consumed and not acknowledged; a forwarder may go one fetch past its budget before it pauses. Sampled
      // from the moment the target is gone, while the backlog is written, and for 20 s after.
      const bound = 2 * BUDGET + P * MiB;
      let most = 0;
      let rss = 0;
      let until = Number.POSITIVE_INFINITY;
      const sampling = (async () => {
        while (Date.now() < until) {
          const page = await strait.metrics();
          most = Math.max(most, counter(page, 'strait_inflight_bytes'));
          rss = Math.max(rss, counter(page, 'strait_process_process_resident_memory_bytes'));
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      try {
        for (let i = FIRST; i < TOTAL; i += 500) await produce(a, topic, big(i, 500));
      } finally {
        until = Date.now() + 20_000;
        await sampling;
      }
      // every partition has 8 MiB to read and its share is 2 MiB: the budget, reached, is what holds them
      t.ok(most >= BUDGET / 2, `the budget was reached while the target was down (most ${(most / MiB).toFixed(1)} MiB in flight, budget ${BUDGET / MiB} MiB)`);
      t.ok(most <= bound, `in flight stayed within twice worker.inflightBytes and a fetch a partition (${(most / MiB).toFixed(1)} <= ${bound / MiB} MiB)`);
      t.comment(`peak RSS of strait run during the outage: ${(rss / MiB).toFixed(0)} MiB`);

      await startStoppedCluster('c', { dir: TEST_DEV_DIR });
      await waitFor('every record committed on the target after the outage', () => committedOnTarget() >= TOTAL, 180_000, 500);
      const source = await readAll(a, topic, P, TOTAL, 60_000);
      const committed = await readAll(c, `a.${topic}`, P, TOTAL + 1, 20_000, 'read_committed');
      t.equal(committed.length, TOTAL, `read_committed: ${committed.length} records on the target for ${TOTAL} on the source`);
      exactlyOnce(t, source, committed, P);
      t.equal(await strait.stop(), 0);
    }),
);
