/**
 * Fleet operations on a real distributed deployment (a ZooKeeper of this test's own, two Kafka clusters, one
 * controller, three then four workers) while a producer keeps writing a 24-partition topic:
 *   (a) kill -9 of a worker: its partitions replicate again within the session timeout + 5 s, and the surviving
 *       workers never stop a partition they kept (their logs list every partition start and stop);
 *   (b) a fourth worker joins: it receives load, and only the partitions moved to it were stopped anywhere;
 *   (c) ZooKeeper is stopped for longer than the session timeout and started again on the same port and data:
 *       workers and controller re-register, replication resumes, nobody touches anything;
 * and at the end every key produced is on the target.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { runtimeOf, startOwnZooKeeper, stopOwnZooKeeper } from '../bench/harness/local-cluster';
import { assignmentMap, missingKeys, partitionEvents, runningPartitions, SteadyProducer, workerId, type PartitionEvent } from './helpers/fleet';
import { bootstrap, createTopic, testClusters, totalRecords, uniqueName } from './helpers/kafka';
import { testStoreAuth } from './helpers/zookeeper';
import { StraitProcess, stopAll, waitFor, writeConfig } from './helpers/strait-process';

t.teardown(stopAll);

const SESSION_MS = 4000;
const PARTITIONS = 24;

interface ControllerStatusBody {
  isLeader: boolean;
  controller: { assigned: number; workers: { id: string }[] } | null;
}

const pk = (e: { topic: string; partition: number }) => `${e.topic}/${e.partition}`;
const sorted = (xs: Iterable<string>) => [...xs].sort();

t.test('a fleet survives kill -9 of a worker, grows by one, and rides out a ZooKeeper restart', async (t) => {
  const zkDir = mkdtempSync(join(tmpdir(), 'strait-ops-zk-'));
  let zk = await startOwnZooKeeper(runtimeOf(testClusters()), zkDir);
  t.teardown(async () => {
    await stopOwnZooKeeper(zk, 'SIGKILL');
    rmSync(zkDir, { recursive: true, force: true });
  });
  const topic = uniqueName('ops');
  await createTopic(bootstrap('a'), topic, PARTITIONS);
  const config = writeConfig({
    deployment: uniqueName('ops'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'ops', source: 'a', target: 'b', topics: { include: [topic] } }],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: SESSION_MS, auth: testStoreAuth() },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0 } },
    // reports every second: balancing by load waits for controller.rebalanceIntervalMs anyway, and a worker that runs
    // other partitions than assigned is repaired two reports after the settle time (see Controller.reconcile)
    worker: { threads: 1, commitIntervalMs: 300, reportIntervalMs: 1000 },
  });
  const controller = new StraitProcess(config, 'controller');
  const workers = [new StraitProcess(config, 'worker'), new StraitProcess(config, 'worker'), new StraitProcess(config, 'worker')];
  // STRAIT_TEST_DUMP=<folder>: every process's output is written there at the end (to study a failure)
  const dump = process.env.STRAIT_TEST_DUMP;
  if (dump)
    t.teardown(() => [controller, ...workers].forEach((p, i) => writeFileSync(join(dump, `ops-${i === 0 ? 'controller' : `worker-${i}`}.log`), p.output)));
  const producer = new SteadyProducer(bootstrap('a'), topic, PARTITIONS);
  await producer.start();
  t.teardown(() => producer.stop().catch(() => 0));
  const status = () => controller.json<ControllerStatusBody>('/v1/status');
  const settled = async (n: number) => {
    const s = await status();
    return s.isLeader && s.controller?.workers.length === n && s.controller.assigned === PARTITIONS;
  };
  await waitFor('24 partitions on three workers', () => settled(3), 60_000, 300);
  const rest = await controller.restUrl;
  const ids = await Promise.all(workers.map((w) => workerId(w)));
  await waitFor('replication under way', async () => (await totalRecords(bootstrap('b'), `a.${topic}`, PARTITIONS)) > 1000, 60_000, 500);

  // (a) kill -9 of a worker, once every worker runs exactly what it is assigned: a worker still starting (a retried
  // start, or a ZooKeeper session it lost under load and got back) must not count as a reaction to the kill
  let before = await assignmentMap(rest);
  await waitFor(
    'every worker runs what it is assigned before the kill',
    async () => {
      before = await assignmentMap(rest);
      return (
        before.size === PARTITIONS &&
        workers.every((w, i) => sorted(runningPartitions(w)).join() === sorted([...before].filter(([, x]) => x === ids[i]).map(([p]) => p)).join())
      );
    },
    30_000,
    300,
  );
  const victimId = ids[0]!;
  const victimParts = sorted([...before].filter(([, w]) => w === victimId).map(([p]) => p));
  t.ok(victimParts.length > 0, `the victim held ${victimParts.length} partitions`);
  const survivors = workers.slice(1);
  const eventsBefore = survivors.map((w) => partitionEvents(w).length);
  await workers[0]!.kill9();
  const killedAt = Date.now();
  await waitFor(
    "the victim's partitions reassigned",
    async () => {
      if (!(await settled(2))) return false;
      return [...(await assignmentMap(rest)).values()].every((w) => w !== victimId);
    },
    SESSION_MS + 30_000,
    200,
  );
  const movedAfter = Date.now() - killedAt;
  t.ok(movedAfter <= SESSION_MS + 5000, `partitions reassigned ${movedAfter} ms after kill -9 (session timeout ${SESSION_MS} ms + 5 s allowed)`);
  await waitFor(
    "the survivors started the victim's partitions",
    () => {
      const started = survivors.flatMap((w, i) =>
        partitionEvents(w)
          .slice(eventsBefore[i])
          .filter((e) => e.what === 'started'),
      );
      return started.length >= victimParts.length;
    },
    30_000,
    200,
  );
  const afterKill: PartitionEvent[][] = survivors.map((w, i) => partitionEvents(w).slice(eventsBefore[i]));
  t.same(
    afterKill.flat().filter((e) => e.what === 'stopped'),
    [],
    'the surviving workers stopped no partition',
  );
  t.same(
    sorted(
      afterKill
        .flat()
        .filter((e) => e.what === 'started')
        .map(pk),
    ),
    victimParts,
    "the survivors started exactly the victim's partitions",
  );
  const lastStart = Math.max(...afterKill.flat().map((e) => e.at));
  t.ok(lastStart - killedAt <= SESSION_MS + 5000, `the last of them started ${lastStart - killedAt} ms after kill -9`);

  // (b) a fourth worker joins
  const beforeJoin = await assignmentMap(rest);
  const live = [...survivors];
  const marks = live.map((w) => partitionEvents(w).length);
  const fourth = new StraitProcess(config, 'worker');
  workers.push(fourth);
  const fourthId = await workerId(fourth);
  await waitFor(
    'the fourth worker holds partitions',
    async () => (await settled(3)) && [...(await assignmentMap(rest)).values()].includes(fourthId),
    60_000,
    200,
  );
  const afterJoin = await assignmentMap(rest);
  const moved = sorted([...afterJoin].filter(([p, w]) => beforeJoin.get(p) !== w).map(([p]) => p));
  const toFourth = moved.filter((p) => afterJoin.get(p) === fourthId);
  // balancing is by measured bytes/s, so the leader may also even out the old workers in the same step; what must
  // hold is that only moved partitions stop and start, each once
  t.ok(toFourth.length >= 1, `${toFourth.length} partitions moved to the fourth worker (${moved.length} moved in all)`);
  const everyone = [...live, fourth];
  const marksAll = [...marks, 0];
  const joinEvents = () => everyone.flatMap((w, i) => partitionEvents(w).slice(marksAll[i]));
  await waitFor(
    'the moved partitions stopped on their old owners and started on their new ones',
    () => {
      const ev = joinEvents();
      return ev.filter((e) => e.what === 'stopped').length >= moved.length && ev.filter((e) => e.what === 'started').length >= moved.length;
    },
    30_000,
    200,
  );
  const stopped = joinEvents()
    .filter((e) => e.what === 'stopped')
    .map(pk);
  t.same(sorted([...new Set(stopped)]), moved, 'only the moved partitions were stopped');
  // load rebalances are spaced by controller.rebalanceIntervalMs (a join rebalances once, at once): nothing moves twice
  t.equal(stopped.length, moved.length, 'each moved partition stopped once');
  const started = joinEvents()
    .filter((e) => e.what === 'started')
    .map(pk);
  t.same(sorted([...new Set(started)]), moved, 'only the moved partitions were started');
  t.equal(started.length, moved.length, 'each moved partition started once');
  t.same(
    sorted(
      partitionEvents(fourth)
        .filter((e) => e.what === 'started')
        .map(pk),
    ),
    toFourth,
    'the fourth worker started exactly the partitions moved to it',
  );
  await waitFor(
    'the fourth worker replicates records',
    async () => (await fourth.json<{ worker: { totals: { records: number } } }>('/v1/status')).worker.totals.records > 0,
    30_000,
    300,
  );
  live.push(fourth);

  // (c) ZooKeeper goes away for longer than the session timeout and comes back on the same port and data
  const leaderSessionsBefore = controller.output.split('\n').filter((l) => l.includes('elected leader: assigning')).length;
  await stopOwnZooKeeper(zk);
  const zkDownAt = Date.now();
  await sleep(SESSION_MS + 2000);
  zk = await startOwnZooKeeper(runtimeOf(testClusters()), zkDir, zk);
  const zkUpAt = Date.now();
  t.comment(`ZooKeeper down for ${zkUpAt - zkDownAt} ms`);
  await waitFor(
    'the controller leads again with three workers and every partition',
    async () => {
      if (!(await settled(3))) return false;
      const s = await status();
      return sorted(s.controller!.workers.map((w) => w.id)).join() === sorted([ids[1]!, ids[2]!, fourthId]).join();
    },
    60_000,
    300,
  );
  t.comment(`controller settled ${Date.now() - zkUpAt} ms after ZooKeeper came back`);
  // a new leader lists assignments once its first topic refresh is in (before that the list is empty)
  let after = new Map<string, string>();
  await waitFor('the leader lists every assignment', async () => (after = await assignmentMap(rest)).size === PARTITIONS, 30_000, 300);
  const liveIds = [ids[1]!, ids[2]!, fourthId];
  const assignedTo = (id: string) => sorted([...after].filter(([, x]) => x === id).map(([p]) => p));
  // every partition a worker holds in the store is running there again
  await waitFor(
    'every worker runs what it is assigned',
    () => live.every((w, i) => sorted(runningPartitions(w)).join() === assignedTo(liveIds[i]!).join()),
    30_000,
    300,
  ).catch((e: Error) => {
    // what differs, and what each worker said about its session and assignments, for the note on a failure
    live.forEach((w, i) => {
      const running = runningPartitions(w);
      const assigned = assignedTo(liveIds[i]!);
      t.comment(
        `${liveIds[i]}: assigned but not running ${JSON.stringify(assigned.filter((p) => !running.has(p)))}, running but not assigned ${JSON.stringify([...running].filter((p) => !assigned.includes(p)))}`,
      );
      for (const line of w.output
        .split('\n')
        .filter((l) => /session|assignment|applying/.test(l))
        .slice(-12))
        t.comment(`  ${line.slice(0, 300)}`);
    });
    throw e;
  });
  live.forEach((w, i) =>
    t.same(
      sorted(runningPartitions(w)),
      assignedTo(liveIds[i]!),
      `worker ${liveIds[i]} runs exactly its ${assignedTo(liveIds[i]!).length} assigned partitions again`,
    ),
  );
  const repairs = /strait_assignment_repairs_total (\d+)/.exec(await controller.metrics())?.[1] ?? '?';
  // a repair means a worker ran other partitions than assigned for a while (see the controller's error log)
  t.comment(`assignments repaired by the controller so far: ${repairs}`);
  const landedBefore = await totalRecords(bootstrap('b'), `a.${topic}`, PARTITIONS);
  await waitFor(
    'replication resumed after the restart',
    async () => (await totalRecords(bootstrap('b'), `a.${topic}`, PARTITIONS)) > landedBefore + 500,
    60_000,
    500,
  );
  t.ok(controller.output.split('\n').filter((l) => l.includes('elected leader: assigning')).length >= leaderSessionsBefore, 'the controller leads (again)');

  // nothing lost over all of it
  const produced = await producer.stop();
  await waitFor(`all ${produced} records on the target`, async () => (await totalRecords(bootstrap('b'), `a.${topic}`, PARTITIONS)) >= produced, 60_000, 500);
  const present = await totalRecords(bootstrap('b'), `a.${topic}`, PARTITIONS);
  const missing = await missingKeys(bootstrap('b'), `a.${topic}`, PARTITIONS, produced, present);
  t.same(missing.slice(0, 20), [], `every one of the ${produced} keys landed (${missing.length} missing)`);
  if (missing.length > 0) {
    // key k<n> was written to source partition n % PARTITIONS: where each of those partitions started, and what every
    // process said at warning level or above about it
    const parts = [...new Set(missing.map((n) => n % PARTITIONS))];
    const onSource = await missingKeys(bootstrap('a'), topic, PARTITIONS, produced, await totalRecords(bootstrap('a'), topic, PARTITIONS));
    t.comment(`of the keys missing on the target, missing on the source as well: ${JSON.stringify(missing.filter((n) => onSource.includes(n)).slice(0, 20))}`);
    const about = (l: string) => parts.some((p) => l.includes(`[${p}]`) || l.includes(`"partition":${p},`));
    for (const [i, w] of [controller, ...workers].entries())
      for (const line of w.output.split('\n').filter((l) => (l.includes('partitions assigned') || /"level":(40|50|60)/.test(l)) && about(l)))
        t.comment(`${i === 0 ? 'controller' : `worker ${i}`}: ${line.slice(0, 1500)}`);
  }
  t.comment(`producer: ${producer.ticks} ticks, ${producer.refused} refused (${producer.lastRefusal ?? '-'})`);
  t.comment(`produced ${produced}, on the target ${present} (duplicates from the killed worker's in-flight window and the restart: ${present - produced})`);
  for (const p of [...live, controller]) t.equal(await p.stop(), 0, `${p.role} stopped cleanly`);
});
