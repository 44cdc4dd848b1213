/**
 * The distributed deployment against the real ZooKeeper and two real Kafka clusters: two `strait controller`
 * processes (one leads) and three `strait worker` processes share a 12-partition topic. kill -9 of a worker moves
 * its partitions within the session timeout + 5 s and nothing is lost; kill -9 of the leading controller hands the
 * lead to the standby within the session timeout + 2 s, and replication goes on. A second route, `delivery:
 * exactly-once` (identity naming: `<topic>` on b), replicates the same topic on the same fleet through both kills: its
 * read_committed copy holds each source record exactly once, in source order.
 */
import { createServer, type AddressInfo } from 'node:net';
import t from 'tap';
import { bootstrap, createTopic, endOffsets, produce, readAll, testClusters, uniqueName } from './helpers/kafka';
import { testStoreAuth } from './helpers/zookeeper';
import { exactlyOnce } from './helpers/exactly-once';
import { fleetDiagnosis } from './helpers/fleet';
import { StraitProcess, stopAll, waitFor, writeConfig } from './helpers/strait-process';

t.teardown(stopAll);

const SESSION_MS = 4000;
const PARTITIONS = 12;
/** both routes' partitions: `dist` (at-least-once) and `dist-eos` (exactly-once) replicate the same topic */
const ASSIGNED = 2 * PARTITIONS;

interface ControllerStatusBody {
  id: string;
  leader: string | null;
  isLeader: boolean;
  controller: { assigned: number; workers: { id: string }[] } | null;
}

async function batch(topic: string, from: number, n: number): Promise<void> {
  await produce(
    bootstrap('a'),
    topic,
    Array.from({ length: n }, (_, i) => ({ partition: (from + i) % PARTITIONS, key: Buffer.from(`k${from + i}`), value: Buffer.from(`v${from + i}`) })),
  );
}

async function landed(topic: string): Promise<number> {
  try {
    return (await endOffsets(bootstrap('b'), `a.${topic}`, PARTITIONS)).reduce((x, y) => x + y, 0);
  } catch {
    return 0;
  }
}

t.test('controllers elect one leader; a worker or the leader killed with -9 loses nothing', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const topic = uniqueName('dist');
  await createTopic(bootstrap('a'), topic, PARTITIONS);
  await batch(topic, 0, 6000);
  const config = writeConfig({
    deployment: uniqueName('d'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [
      { name: 'dist', source: 'a', target: 'b', topics: { include: [topic] } },
      { name: 'dist-eos', source: 'a', target: 'b', topics: { include: [topic] }, naming: { policy: 'identity' }, delivery: 'exactly-once' },
    ],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: SESSION_MS, auth: testStoreAuth() },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0 } },
    worker: { threads: 1, commitIntervalMs: 300 },
  });
  const controllers = [new StraitProcess(config, 'controller'), new StraitProcess(config, 'controller')];
  const workers = [new StraitProcess(config, 'worker'), new StraitProcess(config, 'worker'), new StraitProcess(config, 'worker')];
  const statuses = () => Promise.all(controllers.filter((c) => c.child.exitCode === null).map((c) => c.json<ControllerStatusBody>('/v1/status')));
  await waitFor(
    'one leader with all partitions on three workers',
    async () => {
      const s = await statuses();
      const leaders = s.filter((x) => x.isLeader);
      return leaders.length === 1 && leaders[0]!.controller!.assigned === ASSIGNED && leaders[0]!.controller!.workers.length === 3;
    },
    60_000,
    500,
  );
  const s0 = await statuses();
  t.equal(s0.length, 2, 'both controllers run (one leads, one stands by)');
  t.equal(s0.filter((x) => x.isLeader).length, 1, 'exactly one controller leads');
  t.ok(
    s0.every((x) => x.leader === s0.find((y) => y.isLeader)!.id),
    'both controllers name the same leader',
  );
  await waitFor('the first 6000 records replicated', async () => (await landed(topic)) >= 6000, 60_000, 500);

  // a worker dies without a word: its session expires and its partitions move
  const victim = workers[0]!;
  await victim.kill9();
  const killedAt = Date.now();
  await batch(topic, 6000, 6000);
  await waitFor(
    'the dead worker is gone and its partitions reassigned',
    async () => {
      const leader = (await statuses()).find((x) => x.isLeader);
      return leader?.controller?.workers.length === 2 && leader.controller.assigned === ASSIGNED;
    },
    SESSION_MS + 30_000,
    200,
  );
  const movedAfter = Date.now() - killedAt;
  t.ok(movedAfter <= SESSION_MS + 5000, `partitions reassigned ${movedAfter} ms after kill -9 (session timeout ${SESSION_MS} ms + 5 s allowed)`);
  await waitFor('all 12000 records replicated after the move', async () => (await landed(topic)) >= 12_000, 60_000, 500);

  // the leading controller dies: the standby leads, replication never depended on it
  const leaderIdx = (await Promise.all(controllers.map((c) => c.json<ControllerStatusBody>('/v1/status')))).findIndex((x) => x.isLeader);
  await controllers[leaderIdx]!.kill9();
  const leaderKilledAt = Date.now();
  await batch(topic, 12_000, 6000);
  const standby = controllers[1 - leaderIdx]!;
  await waitFor('the standby leads', async () => (await standby.json<ControllerStatusBody>('/v1/status')).isLeader, SESSION_MS + 30_000, 200);
  const tookOver = Date.now() - leaderKilledAt;
  t.ok(tookOver <= SESSION_MS + 2000, `standby led ${tookOver} ms after the leader's kill -9 (session timeout ${SESSION_MS} ms + 2 s allowed)`);
  await waitFor('all 18000 records replicated', async () => (await landed(topic)) >= 18_000, 60_000, 500);
  const after = await standby.json<ControllerStatusBody>('/v1/status');
  t.equal(after.controller?.assigned, ASSIGNED, 'the new leader kept every partition of both routes assigned');

  // nothing lost: every key is on the target; duplicates only from the moved partitions' in-flight window
  const total = await landed(topic);
  const rows = await readAll(bootstrap('b'), `a.${topic}`, PARTITIONS, total);
  const keys = new Set(rows.map((r) => r.key?.toString()));
  let missing = 0;
  for (let i = 0; i < 18_000; i++) if (!keys.has(`k${i}`)) missing++;
  t.equal(missing, 0, 'every one of the 18000 keys landed');
  t.comment(`duplicates (in-flight window of the killed worker): ${total - 18_000}`);
  const srcEnds = await endOffsets(bootstrap('a'), topic, PARTITIONS);
  const dstEnds = await endOffsets(bootstrap('b'), `a.${topic}`, PARTITIONS);
  t.ok(
    dstEnds.every((e, p) => e >= srcEnds[p]!),
    'every target partition holds at least its source partition',
  );

  // the exactly-once route went through both kills: its read_committed copy holds each source record once, in order
  // each look reads until it has them all or 20 s passed: a bound on the whole read (it was 3 s) counted too few
  // records on a loaded machine, where the reader, not the replicator, was slow
  const committedCount = async () => (await readAll(bootstrap('b'), topic, PARTITIONS, 18_000, 20_000, 'read_committed')).length;
  await waitFor('the exactly-once copy to commit all 18000 records', async () => (await committedCount()) >= 18_000, 90_000, 1000).catch(async (e: Error) => {
    throw new Error(`${e.message}\n${await fleetDiagnosis(bootstrap('b'), topic, PARTITIONS, standby, [...workers, standby])}`);
  });
  const source = await readAll(bootstrap('a'), topic, PARTITIONS, 18_000);
  const committed = await readAll(bootstrap('b'), topic, PARTITIONS, 18_001, 10_000, 'read_committed');
  t.equal(committed.length, 18_000, 'the exactly-once copy holds 18000 committed records, no more');
  exactlyOnce(t, source, committed, PARTITIONS);
  for (const p of [...workers.slice(1), standby]) t.equal(await p.stop(), 0, `${p.role} stopped cleanly`);
});

t.test('a controller or worker that cannot open its metrics port exits at once, naming metrics.port', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const taken = createServer();
  await new Promise<void>((res) => taken.listen(0, '127.0.0.1', res));
  t.teardown(() => new Promise<void>((res) => taken.close(() => res())));
  const port = (taken.address() as AddressInfo).port;
  const config = writeConfig({
    deployment: uniqueName('port'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: SESSION_MS, auth: testStoreAuth() },
    controller: { rest: { port: 0 } },
    metrics: { port },
  });
  for (const role of ['controller', 'worker'] as const) {
    const p = new StraitProcess(config, role);
    const started = Date.now();
    // before the fix the store session kept the failed process alive; the timeout here is what catches that
    const code = await Promise.race([p.exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 15_000))]);
    t.not(code, 'alive', `strait ${role} exited by itself (${Date.now() - started} ms)`);
    t.not(code, 0, `strait ${role} exited with an error code`);
    t.match(p.output, new RegExp(`strait: metrics: cannot listen on 127\\.0\\.0\\.1:${port}[\\s\\S]*metrics\\.port`), `strait ${role} names metrics.port`);
    await p.kill9();
  }
});
