/**
 * The harness's broker and ZooKeeper processes: started detached (format first for a new broker), waited for until
 * they answer, and signalled only by their recorded pid after checking that it still runs our command line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Kafka from 'node-rdkafka';
import { StraitError } from '../../shared/errors';
import { brokerProperties, DEV_SASL_USERS } from './broker-properties';
import type { BrokerState, ClusterState, DevState, ZooKeeperState } from './cluster-state';
import { javaArgs, type KafkaRuntime } from './kafka-runtime';

/**
 * Heap of each node when a cluster has several. Two 3-node clusters, ZooKeeper, strait and MirrorMaker 2 share a
 * 2-core, 24 GiB machine with other work. Measured during the chaos test (12 partitions at RF 3, a steady producer,
 * strait replicating, brokers restarting): 160-190 MB of the heap in use, 320-360 MB resident per node.
 */
export const DEFAULT_MULTI_BROKER_HEAP = '384m';

/** Alive and still running the command line we started (guards against pid reuse). */
export function isOurs(pid: number, marker: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) [ZX]/.test(stat)) return false; // exited, waiting to be reaped
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

function log4jConfig(dir: string): string {
  const file = join(dir, 'log4j.properties');
  writeFileSync(
    file,
    [
      'log4j.rootLogger=INFO, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.request.logger=WARN',
      'log4j.logger.state.change.logger=WARN',
      'log4j.logger.kafka.log.LogCleaner=WARN',
      'log4j.logger.org.apache.zookeeper=WARN',
      '',
    ].join('\n'),
  );
  return file;
}

/** What a failed start wrote from byte `from` on: its ERROR and FATAL lines (the cause), then the last lines. */
function startLog(file: string, from: number): string {
  let text: string;
  try {
    text = readFileSync(file).subarray(from).toString('utf8').trimEnd();
  } catch {
    return '(no log)';
  }
  if (text === '') return '(this start wrote nothing to the log)';
  const lines = text.split('\n');
  const errors = lines.filter((l) => /\b(ERROR|FATAL)\b|^Error|^Exception|insufficient memory/.test(l)).slice(0, 5);
  return [...(errors.length > 0 ? ['errors:', ...errors, 'last lines:'] : []), ...lines.slice(-8)].join('\n');
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function spawnJava(args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn('java', args, { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    if (child.pid === undefined) throw new StraitError('STRAIT_DEV_START_FAILED', 'java did not start');
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * Waits until the broker at `bootstrap` answers a metadata request and lists itself (`nodeId`: lists that node, which
 * a KRaft broker does only once the controller has registered and unfenced it).
 */
export async function waitForMetadata(bootstrap: string, timeoutMs: number, alive: () => boolean, nodeId?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new StraitError('STRAIT_DEV_START_FAILED', `the broker at ${bootstrap} exited`);
    const producer = new Kafka.Producer({ 'metadata.broker.list': bootstrap, 'socket.connection.setup.timeout.ms': 1000, log_level: 0 });
    try {
      const md = await new Promise<Kafka.Metadata>((res, rej) => {
        producer.connect({ timeout: 2000 }, (err, data) => (err ? rej(err) : res(data)));
      });
      if (nodeId === undefined ? md.brokers.length > 0 : md.brokers.some((x) => x.id === nodeId)) return;
      last = `node ${nodeId} not listed yet`;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      if (producer.isConnected()) await new Promise<void>((res) => producer.disconnect(() => res()));
    }
    await sleep(250);
  }
  throw new StraitError(
    'STRAIT_DEV_START_FAILED',
    `the broker at ${bootstrap} did not answer a metadata request${nodeId === undefined ? '' : ` listing node ${nodeId}`} within ${timeoutMs} ms (${last})`,
  );
}

async function waitForZooKeeper(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new StraitError('STRAIT_DEV_START_FAILED', `ZooKeeper on port ${port} exited`);
    const answer = await new Promise<string>((res) => {
      const sock = createConnection({ host: '127.0.0.1', port }, () => sock.end('ruok'));
      let data = '';
      sock.setTimeout(1000, () => sock.destroy());
      sock.on('data', (d) => (data += d.toString()));
      sock.on('close', () => res(data));
      sock.on('error', () => res(''));
    });
    if (answer === 'imok') return;
    await sleep(200);
  }
  throw new StraitError('STRAIT_DEV_START_FAILED', `ZooKeeper on 127.0.0.1:${port} did not answer 'ruok' within ${timeoutMs} ms`);
}

/** Formats (first time only) and starts one node; resolves when it answers metadata listing itself. */
export async function startBrokerProcess(
  runtime: KafkaRuntime,
  c: ClusterState,
  b: BrokerState,
  opts: { heap?: string; brokerProperties?: Record<string, string> } = {},
): Promise<number> {
  mkdirSync(b.logDir, { recursive: true });
  const props = brokerMarker(b);
  const log4j = log4jConfig(b.dir);
  if (!existsSync(join(b.dir, 'data', 'meta.properties'))) {
    writeFileSync(props, brokerProperties(c, b, opts.brokerProperties ?? {}));
    // SCRAM credentials go into the bootstrap metadata at format time (KIP-900, Kafka 3.5+): no broker needs to be up
    const scram = c.tls
      ? Object.entries(DEV_SASL_USERS).flatMap(([u, pw]) =>
          ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${u},password=${pw}]`]),
        )
      : [];
    const r = spawnSync('java', javaArgs(runtime, 'kafka.tools.StorageTool', ['format', '-t', c.clusterId, '-c', props, ...scram], { heap: '128m', log4j }), {
      encoding: 'utf8',
    });
    if (r.status !== 0)
      throw new StraitError('STRAIT_DEV_START_FAILED', `formatting ${b.dir} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
  }
  const logFile = join(b.logDir, 'server.log');
  const heap = opts.heap ?? (c.brokers.length > 1 ? DEFAULT_MULTI_BROKER_HEAP : '512m');
  const logFrom = fileSize(logFile);
  b.pid = spawnJava(javaArgs(runtime, 'kafka.Kafka', [props], { heap, log4j }), logFile);
  syncFirstBroker(c);
  try {
    // A node of a multi-node cluster waits for a quorum of its peers, which start at the same time. A single broker
    // restarted with the test suite's logs to recover, beside the chaos tests' six brokers, took over 60 s too (CI
    // of 6226209: exactly-once-outage's target cluster); it is given the same 120 s.
    await waitForMetadata(`127.0.0.1:${b.port}`, 120_000, () => isOurs(b.pid, props), b.id);
  } catch (e) {
    stopPid(b.pid, props);
    throw new StraitError(
      'STRAIT_DEV_START_FAILED',
      `${c.brokers.length > 1 ? `broker ${b.id}: ` : ''}${(e as Error).message}\n--- ${logFile} (this start) ---\n${startLog(logFile, logFrom)}`,
      { cause: e },
    );
  }
  return b.pid;
}

/** Keeps the single-broker fields (`pid`) in step with the first broker. */
function syncFirstBroker(c: ClusterState): void {
  c.pid = c.brokers[0]!.pid;
}

/** Starts every node of a cluster that is not running, at once (a KRaft node needs a quorum of its peers up). */
export async function startCluster(
  runtime: KafkaRuntime,
  c: ClusterState,
  opts: { heap?: string; brokerProperties?: Record<string, string> } = {},
): Promise<number> {
  const stopped = c.brokers.filter((b) => !isOurs(b.pid, brokerMarker(b)));
  const results = await Promise.allSettled(stopped.map((b) => startBrokerProcess(runtime, c, b, opts)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return c.pid;
}

export async function startZooKeeper(runtime: KafkaRuntime, z: ZooKeeperState): Promise<void> {
  mkdirSync(z.logDir, { recursive: true });
  mkdirSync(join(z.dir, 'data'), { recursive: true });
  const cfg = join(z.dir, 'zoo.cfg');
  writeFileSync(
    cfg,
    [
      `dataDir=${join(z.dir, 'data')}`,
      `clientPort=${z.port}`,
      'clientPortAddress=127.0.0.1',
      'tickTime=500',
      'minSessionTimeout=1000',
      'maxSessionTimeout=60000',
      'maxClientCnxns=0',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr,stat,cons',
      '',
    ].join('\n'),
  );
  const log4j = log4jConfig(z.dir);
  const logFile = join(z.logDir, 'zookeeper.log');
  const logFrom = fileSize(logFile);
  z.pid = spawnJava(javaArgs(runtime, 'org.apache.zookeeper.server.ZooKeeperServerMain', [cfg], { heap: '256m', log4j }), logFile);
  try {
    await waitForZooKeeper(z.port, 30_000, () => isOurs(z.pid, cfg));
  } catch (e) {
    stopPid(z.pid, cfg);
    throw new StraitError('STRAIT_DEV_START_FAILED', `${(e as Error).message}\n--- ${logFile} (this start) ---\n${startLog(logFile, logFrom)}`, { cause: e });
  }
}

export function brokerMarker(b: BrokerState): string {
  return join(b.dir, 'server.properties');
}

export function zkMarker(z: ZooKeeperState): string {
  return join(z.dir, 'zoo.cfg');
}

/** Sends SIGTERM (SIGKILL after the grace period) to a pid we started; false if it was not ours / not running. */
export function stopPid(pid: number, marker: string, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  if (!isOurs(pid, marker)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, marker: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isOurs(pid, marker)) return true;
    await sleep(100);
  }
  return !isOurs(pid, marker);
}

export async function stopAndWait(pid: number, marker: string, graceMs = 20_000): Promise<void> {
  if (!stopPid(pid, marker)) return;
  if (!(await waitGone(pid, marker, graceMs))) {
    stopPid(pid, marker, 'SIGKILL');
    await waitGone(pid, marker, 10_000);
  }
}

export function runningProcesses(state: DevState): string[] {
  const out: string[] = [];
  for (const [alias, c] of Object.entries(state.clusters)) {
    for (const b of c.brokers) {
      if (isOurs(b.pid, brokerMarker(b))) out.push(c.brokers.length === 1 ? `kafka ${alias} (pid ${b.pid})` : `kafka ${alias} broker ${b.id} (pid ${b.pid})`);
    }
  }
  if (state.zookeeper && isOurs(state.zookeeper.pid, zkMarker(state.zookeeper))) out.push(`zookeeper (pid ${state.zookeeper.pid})`);
  return out;
}

/** Whether a broker's recorded pid still runs that broker. */
export function brokerRunning(b: BrokerState): boolean {
  return isOurs(b.pid, brokerMarker(b));
}

/** SIGTERM (a controlled shutdown: leadership moves away first) or SIGKILL, then waits for the process to end. */
export async function stopBrokerProcess(b: BrokerState, kill: boolean, graceMs = 60_000): Promise<void> {
  if (kill) {
    stopPid(b.pid, brokerMarker(b), 'SIGKILL');
    if (!(await waitGone(b.pid, brokerMarker(b), 10_000)))
      throw new StraitError('STRAIT_DEV_START_FAILED', `broker ${b.id} (pid ${b.pid}) still runs 10 s after SIGKILL`);
  } else {
    await stopAndWait(b.pid, brokerMarker(b), graceMs);
  }
}
