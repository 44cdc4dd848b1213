/**
 * The fault drills on running local clusters: stop and start a whole cluster, one broker (SIGTERM or kill -9) or
 * ZooKeeper, a rolling restart, and a ZooKeeper of a test's own outside the state file.
 */
import { join, resolve } from 'node:path';
import { StraitError } from '../../shared/errors';
import {
  brokerOf,
  clusterOf,
  DEFAULT_DEV_DIR,
  newZooKeeperAuth,
  readState,
  runtimeOf,
  writeState,
  type BrokerState,
  type ZooKeeperState,
} from './cluster-state';
import { waitForFullIsr } from './cluster-health';
import type { KafkaRuntime } from './kafka-runtime';
import { freePort } from './ports';
import {
  brokerRunning,
  isOurs,
  startBrokerProcess,
  startCluster,
  startZooKeeper,
  stopAndWait,
  stopBrokerProcess,
  stopPid,
  waitGone,
  zkMarker,
} from './processes';

/** Stops every broker of a cluster (its data is kept), e.g. to test a target outage. */
export async function stopCluster(alias: string, opts: { dir?: string; signal?: NodeJS.Signals } = {}): Promise<void> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const { c } = clusterOf(dir, alias);
  await Promise.all(c.brokers.map((b) => stopBrokerProcess(b, opts.signal === 'SIGKILL')));
}

/** Starts the stopped brokers of a cluster again on the same ports with the same data. */
export async function startStoppedCluster(alias: string, opts: { dir?: string; heap?: string } = {}): Promise<void> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const { state, c } = clusterOf(dir, alias);
  if (c.brokers.every(brokerRunning)) return;
  try {
    await startCluster(runtimeOf(state), c, opts);
  } finally {
    writeState(dir, state);
  }
}

export interface BrokerOptions {
  dir?: string;
  heap?: string;
}

/** Stops one broker of a cluster, keeping its data: SIGTERM by default, `kill: true` for kill -9. */
export async function stopBroker(alias: string, id: number, opts: BrokerOptions & { kill?: boolean } = {}): Promise<BrokerState> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const { b } = brokerOf(dir, alias, id);
  await stopBrokerProcess(b, opts.kill === true);
  return b;
}

/** kill -9 of one broker by its recorded pid (no controlled shutdown, unflushed data left to log recovery). */
export function killBroker(alias: string, id: number, opts: BrokerOptions = {}): Promise<BrokerState> {
  return stopBroker(alias, id, { ...opts, kill: true });
}

/** Starts one stopped broker again (same ports, same data); resolves once the cluster lists it. */
export async function startBroker(alias: string, id: number, opts: BrokerOptions = {}): Promise<BrokerState> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const { state, c, b } = brokerOf(dir, alias, id);
  if (brokerRunning(b)) return b;
  try {
    await startBrokerProcess(runtimeOf(state), c, b, opts);
  } finally {
    writeState(dir, state);
  }
  return b;
}

export interface RollStep {
  broker: number;
  /** SIGTERM to process exit (the controlled shutdown) */
  stopMs: number;
  /** start to listed in metadata */
  startMs: number;
  /** listed to every partition's ISR full again */
  isrMs: number;
}

/**
 * A rolling restart as operators do it: for each broker in turn, a controlled shutdown (SIGTERM, wait for the exit),
 * start it again, and wait until every partition's ISR is full before the next one — never two replicas away at once,
 * so with min.insync.replicas 2 of 3 producers using acks=all never stop. The cluster must be healthy to begin.
 */
export async function rollCluster(alias: string, opts: BrokerOptions & { log?: (line: string) => void; isrTimeoutMs?: number } = {}): Promise<RollStep[]> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const log = opts.log ?? (() => {});
  const { c } = clusterOf(dir, alias);
  const down = c.brokers.filter((b) => !brokerRunning(b)).map((b) => b.id);
  if (down.length > 0)
    throw new StraitError(
      'STRAIT_DEV_NOT_RUNNING',
      `cluster ${alias}: broker${down.length > 1 ? 's' : ''} ${down.join(', ')} not running; start ${down.length > 1 ? 'them' : 'it'} before a roll ('strait dev start ${alias} ${down[0]}')`,
    );
  await waitForFullIsr(c, opts.isrTimeoutMs);
  const steps: RollStep[] = [];
  for (const { id } of c.brokers) {
    const t0 = Date.now();
    const b = await stopBroker(alias, id, { dir });
    const t1 = Date.now();
    log(`kafka ${alias} broker ${id}: stopped (pid ${b.pid}) in ${((t1 - t0) / 1000).toFixed(1)} s`);
    const started = await startBroker(alias, id, { dir, ...(opts.heap ? { heap: opts.heap } : {}) });
    const t2 = Date.now();
    log(`kafka ${alias} broker ${id}: started (pid ${started.pid}) in ${((t2 - t1) / 1000).toFixed(1)} s; waiting for the ISR to be full`);
    await waitForFullIsr(clusterOf(dir, alias).c, opts.isrTimeoutMs);
    const t3 = Date.now();
    log(`kafka ${alias} broker ${id}: ISR full in ${((t3 - t2) / 1000).toFixed(1)} s`);
    steps.push({ broker: id, stopMs: t1 - t0, startMs: t2 - t1, isrMs: t3 - t2 });
  }
  return steps;
}

/** Stops ZooKeeper (data kept) or starts it again on the same port. */
export async function stopZooKeeper(opts: { dir?: string } = {}): Promise<void> {
  const state = readState(opts.dir ?? DEFAULT_DEV_DIR);
  if (!state?.zookeeper) throw new StraitError('STRAIT_DEV_NOT_RUNNING', 'no local ZooKeeper was started (strait dev up --zookeeper)');
  await stopAndWait(state.zookeeper.pid, zkMarker(state.zookeeper));
}

export async function startStoppedZooKeeper(opts: { dir?: string } = {}): Promise<void> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const state = readState(dir);
  if (!state?.zookeeper) throw new StraitError('STRAIT_DEV_NOT_RUNNING', 'no local ZooKeeper was started (strait dev up --zookeeper)');
  if (isOurs(state.zookeeper.pid, zkMarker(state.zookeeper))) return;
  await startZooKeeper(runtimeOf(state), state.zookeeper);
  writeState(dir, state);
}

/**
 * A ZooKeeper of its own in `dir` (port: a free one unless given), outside any state.json: for a test that stops and
 * starts ZooKeeper without disturbing the shared one. Stop it with `stopOwnZooKeeper`; starting the same state again
 * reuses its port and data.
 */
export async function startOwnZooKeeper(runtime: KafkaRuntime, dir: string, existing?: ZooKeeperState): Promise<ZooKeeperState> {
  const port = existing?.port ?? (await freePort());
  const z: ZooKeeperState = existing ?? { connect: `127.0.0.1:${port}`, pid: 0, port, dir, logDir: join(dir, 'logs'), auth: newZooKeeperAuth() };
  await startZooKeeper(runtime, z);
  return z;
}

export async function stopOwnZooKeeper(z: ZooKeeperState, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (signal === 'SIGKILL') {
    stopPid(z.pid, zkMarker(z), 'SIGKILL');
    await waitGone(z.pid, zkMarker(z), 10_000);
  } else {
    await stopAndWait(z.pid, zkMarker(z));
  }
}
