/**
 * Chaos, proven for strait distributed and over TLS: two 3-broker clusters of their own started with `--tls` (RF 3,
 * min.insync.replicas 2) and a ZooKeeper of their own; one `strait controller` and two `strait worker` processes
 * (worker ids w1 and w2) reach both clusters only through their SASL_SSL/SCRAM-SHA-512 listeners. A 12-partition
 * topic is written steadily with acks=all throughout, while
 *   1. every source broker is restarted in turn (a roll), and during the roll the worker holding most partitions is
 *      killed with -9 (by the pid the test recorded, which is also the one it registered in ZooKeeper) and started
 *      again 15 s later under the same id: its partitions move to the other worker and come back;
 *   2. the target broker leading most partitions is killed with -9 and started again 20 s later.
 * Then the same independent verification as chaos.test.ts (test/helpers/chaos.ts): every record on the target at
 * least once, in source order per partition, byte-identical; duplicates counted per step and bounded by the
 * in-flight window. A second route, `delivery: exactly-once` (separator `--`: `a--<topic>` on b), replicates the same
 * topic through both steps on the same workers — its partitions move off the killed worker and back, and its
 * transactions meet the target leader's kill: its read_committed copy must hold each source record exactly once.
 * The test's own producer, sampler and readers use the PLAINTEXT listeners: they judge strait, they are not under
 * test.
 *
 * About 4-5 minutes on the 2-core machine (10 when other work keeps its load near 100). Not a file of its own in
 * `npm test`: chaos.test.ts imports it, so both drills run in one tap process, one after the other.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as dev from '../../bench/harness/local-cluster';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import {
  CHAOS_TEST_TIMEOUT_MS,
  ChaosSteps,
  fmt,
  PARTITIONS,
  replayWindow,
  sampleTarget,
  startChaos,
  widenThreadPool,
  withChaosTurn,
  type Watched,
} from '../helpers/chaos';
import { assignmentMap, partitionEvents } from '../helpers/fleet';
import { uniqueName } from '../helpers/kafka';
import { StraitProcess, waitFor, writeConfig } from '../helpers/strait-process';

widenThreadPool();

const DIR = join(projectRoot(), '.strait', 'test-chaos-dist');
const COMMIT_INTERVAL_MS = 1000;
const INFLIGHT_BYTES = 4 * 1024 * 1024;
/** per worker */
const THREADS = 2;
const SESSION_MS = 6000;
const WORKER_DOWN_MS = 15_000;

/**
 * The in-flight window of one partition, in records. Every replay starts at a committed offset, and the records
 * between it and what the target already holds are the only ones written twice:
 *   - a worker killed with -9: its partitions resume on the other worker from the offsets it last committed to
 *     ZooKeeper; beyond them it had at most inflightBytes/threads unacknowledged per forwarder, and at most one
 *     commit interval of deliveries not yet committed;
 *   - a partition moved back to the restarted worker: the controller fences the old owner's epoch before it writes
 *     the new assignment, so the new owner resumes from the old owner's last commit before the fence (one commit
 *     interval of deliveries behind), while the old owner forwards on until it sees its new assignment or its next
 *     commit is refused (worker/committer.ts stops a fenced partition) — at most one more commit interval.
 * Hence the in-flight budget plus two commit intervals of deliveries (replayWindow).
 */
const WINDOW_PER_REPLAY = replayWindow({ inflightBytes: INFLIGHT_BYTES, threads: THREADS, uncommittedMs: 2 * COMMIT_INTERVAL_MS });

/** a partition of a route: both routes replicate the same topic */
const routeKey = (a: { route: string; topic: string; partition: number }) => `${a.route}/${a.topic}/${a.partition}`;

interface ControllerStatusBody {
  isLeader: boolean;
  controller: { assigned: number; workers: { id: string; pid: number }[]; errored: number; erroredPartitions: unknown[] } | null;
}

interface WorkerStatusBody {
  worker: { id: string; totals: { errored: number } };
}

t.test(
  'distributed over SASL_SSL: a source roll with a worker killed -9 in it, kill -9 of a target leader: nothing lost, order kept, duplicates within the in-flight window',
  { timeout: CHAOS_TEST_TIMEOUT_MS },
  (t) =>
    withChaosTurn(t, async () => {
      const run = await startChaos(t, DIR, { brokers: 3, tls: true, zookeeper: true });
      const { state, a, b, topic, started } = run;
      const zk = state.zookeeper!;
      t.comment(`two 3-broker TLS clusters and ZooKeeper up in ${fmt(Date.now() - started)}: a ${a.tls!.saslSsl}, b ${b.tls!.saslSsl} (SASL_SSL)`);

      // strait sees each cluster only through its SASL_SSL listener; the password reaches it from the environment
      process.env.CHAOS_SCRAM_PASSWORD = dev.DEV_SASL_USERS.strait!;
      const saslSsl = (c: dev.ClusterState) => ({
        bootstrap: c.tls!.saslSsl,
        properties: {
          'security.protocol': 'SASL_SSL',
          'ssl.ca.location': c.tls!.caLocation,
          'sasl.mechanisms': 'SCRAM-SHA-512',
          'sasl.username': 'strait',
          'sasl.password': '${env:CHAOS_SCRAM_PASSWORD}',
        },
      });
      const deployment = uniqueName('chaos-dist');
      const config = (workerId?: string) =>
        writeConfig({
          deployment,
          clusters: { a: saslSsl(a), b: saslSsl(b) },
          routes: [
            { name: 'chaos', source: 'a', target: 'b', topics: { include: [topic] } },
            { name: 'chaos-eos', source: 'a', target: 'b', topics: { include: [topic] }, naming: { separator: '--' }, delivery: 'exactly-once' },
          ],
          store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: SESSION_MS, auth: zk.auth },
          controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0 } },
          worker: {
            ...(workerId ? { id: workerId } : {}),
            threads: THREADS,
            commitIntervalMs: COMMIT_INTERVAL_MS,
            inflightBytes: INFLIGHT_BYTES,
            reportIntervalMs: 1000,
          },
        });
      const controller = new StraitProcess(config(), 'controller');
      const ids = ['w1', 'w2'];
      const configs = ids.map((id) => config(id));
      const workers = configs.map((c) => new StraitProcess(c, 'worker'));
      /** every incarnation of each worker, for the logs kept after the test */
      const incarnations: StraitProcess[][] = workers.map((w) => [w]);
      // strait's logs stay for a look after a failure (dev.down removes only the clusters and ZooKeeper)
      t.teardown(() => {
        writeFileSync(join(DIR, 'controller.log'), controller.output);
        incarnations.forEach((list, i) => writeFileSync(join(DIR, `worker-${ids[i]}.log`), list.map((p) => p.output).join('\n')));
      });
      const watched = (): Watched[] => [
        { label: 'strait controller', process: controller },
        ...workers.map((process, i) => ({ label: `strait worker ${ids[i]}`, process })),
      ];
      const controllerStatus = () => controller.json<ControllerStatusBody>('/v1/status');
      await waitFor(
        'the controller leading, with all partitions of both routes on two workers',
        async () => {
          const s = await controllerStatus().catch(() => undefined);
          return s?.isLeader === true && s.controller?.assigned === 2 * PARTITIONS && s.controller.workers.length === 2;
        },
        60_000,
        500,
      );
      const rest = await controller.restUrl;

      const sampler = await sampleTarget(t, run, watched);

      const chaos = new ChaosSteps(t, DIR, run, sampler, watched);

      // Step 1: the roll, and once its first broker is back in every ISR (the second one about to stop), kill -9 of
      // the worker holding most partitions; it starts again WORKER_DOWN_MS later under the same id.
      const rollWithWorkerKill = async (): Promise<string> => {
        let markFirstBack: () => void = () => {};
        const firstBrokerBack = new Promise<void>((r) => (markFirstBack = r));
        const rolling = chaos.roll('a', (l) => {
          if (/broker 1: ISR full/.test(l)) markFirstBack();
        })();
        const killing = (async () => {
          await Promise.race([firstBrokerBack, rolling]);
          const owners = await assignmentMap(rest, undefined, routeKey);
          const held = ids.map((id) => [...owners.values()].filter((w) => w === id).length);
          const i = held[1]! > held[0]! ? 1 : 0;
          const victimParts = [...owners].filter(([, w]) => w === ids[i]).map(([p]) => p);
          const victim = workers[i]!;
          const pid = victim.child.pid!;
          const registered = (await controllerStatus()).controller?.workers.find((w) => w.id === ids[i]);
          t.equal(registered?.pid, pid, `worker ${ids[i]} is registered in ZooKeeper under the pid the test recorded (${pid})`);
          const survivor = workers[1 - i]!;
          const survivorEvents = partitionEvents(survivor).length;
          await victim.kill9();
          const killedAt = Date.now();
          t.comment(`kill -9 of worker ${ids[i]} (pid ${pid}, ${held[i]} partitions)`);
          await sleep(WORKER_DOWN_MS);
          const restarted = new StraitProcess(configs[i]!, 'worker');
          workers[i] = restarted;
          incarnations[i]!.push(restarted);
          const restartedAt = Date.now();
          await waitFor(
            `worker ${ids[i]} running partitions again after its restart`,
            () => partitionEvents(restarted).some((e) => e.what === 'started'),
            60_000,
            200,
          );
          const taken = partitionEvents(survivor)
            .slice(survivorEvents)
            .filter((e) => e.what === 'started' && e.at >= killedAt);
          const back = partitionEvents(restarted).filter((e) => e.what === 'started');
          const takenParts = new Set(taken.map(routeKey));
          t.same(
            victimParts.filter((p) => !takenParts.has(p)),
            [],
            `worker ${ids[i]}'s ${held[i]} partitions started on ${ids[1 - i]} while it was down`,
          );
          return (
            `worker ${ids[i]} (pid ${pid}, ${held[i]} partitions) killed -9 when broker 1 was back in every ISR; ` +
            `${taken.length} started on ${ids[1 - i]} ${taken.length > 0 ? fmt(Math.max(...taken.map((e) => e.at)) - killedAt) : '-'} after the kill; ` +
            `${ids[i]} started again after ${fmt(restartedAt - killedAt)} and ran ${back.length} partitions ${fmt(Math.min(...back.map((e) => e.at)) - restartedAt)} after its start`
          );
        })();
        const [rolled, killed] = await Promise.all([rolling, killing]);
        return `${rolled}; ${killed}`;
      };

      await chaos.step('roll every source broker, kill -9 of a worker during it (back after 15 s)', rollWithWorkerKill);
      await chaos.step('kill -9 the target broker leading most partitions, back after 20 s', chaos.killLeader('b'));

      const source = await chaos.verify(WINDOW_PER_REPLAY, async (sourceEnds) => {
        const settleAsked = Date.now();
        // the workers commit the exactly-once route's offsets to ZooKeeper after its transactions commit
        // (its lag in the workers' reports: the source's end minus the offset committed with the transactions)
        let lags = '';
        await waitFor(
          `the exactly-once route to commit the whole source (${sourceEnds.reduce((x, y) => x + y, 0)} records)`,
          async () => {
            const res = await fetch(`${rest}/v1/partitions`);
            const rows = ((await res.json()) as { route: string; lag: number | null; reportedAt: string | null }[]).filter(
              (r) => r.route === 'chaos-eos' && r.reportedAt !== null && Date.parse(r.reportedAt) > settleAsked,
            );
            lags = rows.map((r) => r.lag).join(',');
            return rows.length === PARTITIONS && rows.every((r) => r.lag === 0);
          },
          120_000,
          500,
        ).catch((e: Error) => {
          throw new Error(`${e.message}; last lags reported: ${lags}`);
        });
        const s = await controllerStatus();
        t.same(s.controller?.erroredPartitions, [], 'no partition errored, by the controller');
        for (const [i, w] of workers.entries()) {
          const ws = await w.json<WorkerStatusBody>('/v1/status');
          t.equal(ws.worker.totals.errored, 0, `no partition errored in worker ${ids[i]}`);
        }
        for (const [i, w] of workers.entries()) t.equal(await w.stop(), 0, `worker ${ids[i]} stops cleanly`);
        t.equal(await controller.stop(), 0, 'the controller stops cleanly');
        const secret = dev.DEV_SASL_USERS.strait!;
        t.notOk(
          [controller, ...incarnations.flat()].some((p) => p.output.includes(secret)),
          'the SCRAM password appears in no output',
        );
      });
      await chaos.verifyExactlyOnce(
        `a--${topic}`,
        source,
        [controller, ...incarnations.flat()].map((x) => x.output),
      );
    }),
);
