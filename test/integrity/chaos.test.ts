/**
 * Chaos, proven: two 3-broker clusters of their own (RF 3, min.insync.replicas 2), a 12-partition topic written
 * steadily with acks=all, `strait run` replicating it, and the brokers restarted and killed under it: a rolling restart
 * of every source broker, then of every target broker, then kill -9 of the source broker leading most partitions
 * (back after 20 s), then the same on the target. An independent reader then checks the target against the source:
 * every record there at least once, in source order per partition, byte-identical; duplicates counted per step and
 * bounded by the in-flight window.
 *
 * A second route, `delivery: exactly-once` (separator `--`, so its copy is `a--<topic>` on b, beside
 * the at-least-once route's `a.<topic>`), replicates the same topic
 * through every step in the same process: its read_committed copy must hold each source record exactly once, in
 * source order — across target broker restarts, leader elections and transaction coordinators moving.
 *
 * This file also runs the distributed drill of chaos-distributed.ts, first: one tap process runs both one after the
 * other, where two files used to take both of `npm test`'s lanes (.taprc jobs: 2) while one waited for the other's turn.
 * In `npm test` (about 8 minutes of it, 14 with the distributed drill; `npm run test:chaos` runs only this file). It stayed out until `strait run` stopped
 * aborting on a librdkafka assertion (rd_kafka_enq_once_del_source_return: eonce->refcnt > 0) when a group
 * coordinator came back after the checkpointer's group calls had timed out (native/admin.h, HandleSlot).
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import { CHAOS_TEST_TIMEOUT_MS, ChaosSteps, PARTITIONS, replayWindow, sampleTarget, startChaos, widenThreadPool, withChaosTurn } from '../helpers/chaos';
import { storedOffsets } from '../helpers/exactly-once';
import { StraitProcess, waitFor, writeConfig } from '../helpers/strait-process';
// the distributed drill registers its test on import: it runs before the one below, in this process
import './chaos-distributed';

widenThreadPool();

const DIR = join(projectRoot(), '.strait', 'test-chaos');
const COMMIT_INTERVAL_MS = 1000;
const INFLIGHT_BYTES = 4 * 1024 * 1024;
const THREADS = 2;

/**
 * The in-flight window of one partition, in records: strait replays a partition from its committed offset, and the
 * records between that offset and what the target already has are the only ones it can write twice. Per forwarder
 * at most inflightBytes/threads are unacknowledged, and the committed offset trails the acknowledged one by at most
 * one commit interval of deliveries (replayWindow).
 */
const WINDOW_PER_REPLAY = replayWindow({ inflightBytes: INFLIGHT_BYTES, threads: THREADS, uncommittedMs: COMMIT_INTERVAL_MS });

// Broker restarts are JVM starts: about 10 s each on an idle 2-core machine, up to 100 s when it is saturated. The
// whole test takes about 4-5 minutes idle and 13 under a load of 40-60 (781 s measured); with the wait for its turn
// (withChaosTurn) the limit stays inside tap's per-file timeout (.taprc: 2700 s).

t.test(
  'rolling restarts and kill -9 of leaders on both sides: nothing lost, order kept, duplicates within the in-flight window',
  { timeout: CHAOS_TEST_TIMEOUT_MS },
  (t) =>
    withChaosTurn(t, async () => {
      const run = await startChaos(t, DIR, { brokers: 3 });
      const { a, b, topic, started } = run;
      t.comment(`two 3-broker clusters up in ${((Date.now() - started) / 1000).toFixed(1)} s: a ${a.bootstrap}, b ${b.bootstrap}`);
      const config = writeConfig({
        clusters: { a: { bootstrap: a.bootstrap }, b: { bootstrap: b.bootstrap } },
        routes: [
          { name: 'chaos', source: 'a', target: 'b', topics: { include: [topic] } },
          { name: 'chaos-eos', source: 'a', target: 'b', topics: { include: [topic] }, naming: { separator: '--' }, delivery: 'exactly-once' },
        ],
        worker: { threads: THREADS, commitIntervalMs: COMMIT_INTERVAL_MS, inflightBytes: INFLIGHT_BYTES },
        controller: { refreshTopicsIntervalMs: 1000 },
      });
      const strait = new StraitProcess(config);
      // strait's log stays for a look after a failure (dev.down removes only the clusters)
      t.teardown(() => writeFileSync(join(DIR, 'strait.log'), strait.output));
      const watched = () => [{ label: 'strait', process: strait }];
      const sampler = await sampleTarget(t, run, watched);

      const chaos = new ChaosSteps(t, DIR, run, sampler, watched);
      await chaos.step('roll every source broker', chaos.roll('a'));
      await chaos.step('roll every target broker', chaos.roll('b'));
      await chaos.step('kill -9 the source broker leading most partitions, back after 20 s', chaos.killLeader('a'));
      await chaos.step('kill -9 the target broker leading most partitions, back after 20 s', chaos.killLeader('b'));

      const source = await chaos.verify(WINDOW_PER_REPLAY, async (sourceEnds) => {
        // the store follows the exactly-once route's committed transactions: all of the source, then nothing is open
        const committed = () => storedOffsets(config, 'chaos-eos', topic, PARTITIONS);
        await waitFor('the exactly-once route to commit the whole source', () => committed().every((o, p) => o >= sourceEnds[p]!), 120_000, 250);
        const status = await strait.status();
        t.equal(status.worker.totals.errored, 0, 'no partition errored in strait');
        t.equal(await strait.stop(), 0, 'strait stops cleanly');
      });
      await chaos.verifyExactlyOnce(`a--${topic}`, source, [strait.output]);
    }),
);
