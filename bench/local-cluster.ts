/**
 * `strait dev`: real single-node KRaft Kafka clusters and a real ZooKeeper on 127.0.0.1, for the demo, the tests and
 * the bench. Every process is started detached with its pid recorded in `<dir>/state.json`; `down` stops exactly
 * those pids (after checking that each still runs our command line) and waits for them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Kafka from 'node-rdkafka';
import { StraitError } from '../shared/errors';
import { DEFAULT_KAFKA_VERSION, ensureKafka, javaArgs, requireJava, type KafkaRuntime } from './kafka-runtime';

export interface ClusterState {
  bootstrap: string;
  pid: number;
  port: number;
  controllerPort: number;
  clusterId: string;
  dir: string;
  logDir: string;
  /** SASL_PLAINTEXT (PLAIN) listener, when started with `sasl`: users in DEV_SASL_USERS, ACLs enforced there */
  saslBootstrap?: string;
  saslPort?: number;
  /** a listener advertised through a proxy port (the bench's `wan` scenario puts its delay proxy there) */
  wan?: { port: number; proxyPort: number; bootstrap: string };
}

export interface ZooKeeperState {
  connect: string;
  pid: number;
  port: number;
  dir: string;
  logDir: string;
  /**
   * the digest credentials strait processes of this harness authenticate with (store.auth), made up when the
   * ZooKeeper state is created; kept in the state file (a local dev secret), never printed
   */
  auth: { scheme: 'digest'; credentials: string };
}

/** Fresh digest credentials for a harness ZooKeeper. */
function newZooKeeperAuth(): ZooKeeperState['auth'] {
  return { scheme: 'digest', credentials: `strait-dev:${randomBytes(18).toString('base64url')}` };
}

export interface DevState {
  clusters: Record<string, ClusterState>;
  zookeeper?: ZooKeeperState;
  kafkaHome: string;
  kafkaVersion: string;
  startedAt: string;
}

export interface UpOptions {
  clusters?: number;
  zookeeper?: boolean;
  kafkaVersion?: string;
  /** state folder; default .strait/dev */
  dir?: string;
  log?: (line: string) => void;
  /** broker heap, default 512m */
  heap?: string;
  /** extra server.properties lines for every broker */
  brokerProperties?: Record<string, string>;
  /** add a SASL_PLAINTEXT listener (PLAIN, users DEV_SASL_USERS) and the ACL authorizer to every broker */
  sasl?: boolean;
  /** add a listener advertised through a proxy port to every broker (`ClusterState.wan`) */
  wanListener?: boolean;
}

/**
 * The harness's SASL users. `admin` is a super user (so is ANONYMOUS: the PLAINTEXT listener and the KRaft
 * controller listener stay unrestricted); every other user gets only the ACLs a test grants it.
 */
export const DEV_SASL_USERS: Record<string, string> = { admin: 'admin-secret', strait: 'strait-secret', limited: 'limited-secret' };

export const DEFAULT_DEV_DIR = '.strait/dev';

export function aliasFor(i: number): string {
  return String.fromCharCode('a'.charCodeAt(0) + i);
}

export function statePath(dir = DEFAULT_DEV_DIR): string {
  return join(resolve(dir), 'state.json');
}

export function readState(dir = DEFAULT_DEV_DIR): DevState | undefined {
  const file = statePath(dir);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as DevState;
}

function writeState(dir: string, state: DevState): void {
  mkdirSync(resolve(dir), { recursive: true });
  writeFileSync(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);
}

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

/** `n` distinct free ports on 127.0.0.1. */
async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
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

function kraftId(): string {
  // Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding. A leading '-' would read as an option.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function listenerProperties(c: ClusterState): Record<string, string> {
  const listeners = [`PLAINTEXT://127.0.0.1:${c.port}`, `CONTROLLER://127.0.0.1:${c.controllerPort}`];
  const advertised = [`PLAINTEXT://127.0.0.1:${c.port}`];
  const protocols = ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT'];
  const props: Record<string, string> = {};
  if (c.saslPort) {
    listeners.push(`SASL_PLAINTEXT://127.0.0.1:${c.saslPort}`);
    advertised.push(`SASL_PLAINTEXT://127.0.0.1:${c.saslPort}`);
    protocols.push('SASL_PLAINTEXT:SASL_PLAINTEXT');
    const users = Object.entries(DEV_SASL_USERS).map(([u, pw]) => `user_${u}="${pw}"`).join(' ');
    Object.assign(props, {
      'sasl.enabled.mechanisms': 'PLAIN',
      'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${users};`,
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'super.users': 'User:ANONYMOUS;User:admin',
    });
  }
  if (c.wan) {
    listeners.push(`WAN://127.0.0.1:${c.wan.port}`);
    advertised.push(`WAN://127.0.0.1:${c.wan.proxyPort}`);
    protocols.push('WAN:PLAINTEXT');
  }
  return {
    ...props,
    listeners: listeners.join(','),
    'advertised.listeners': advertised.join(','),
    'listener.security.protocol.map': protocols.join(','),
  };
}

function brokerProperties(c: ClusterState, extra: Record<string, string>): string {
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${c.controllerPort}`,
    ...listenerProperties(c),
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': join(c.dir, 'data'),
    'num.partitions': '1',
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '8',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '4',
    'group.initial.rebalance.delay.ms': '0',
    // the log cleaner looks for compactable logs every second (default 15 s), so compaction is observable in tests
    'log.cleaner.backoff.ms': '1000',
    'auto.create.topics.enable': 'false',
    'log.segment.bytes': String(256 * 1024 * 1024),
    'num.network.threads': '2',
    'num.io.threads': '4',
    ...extra,
  };
  return `${Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
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

/** Waits until the broker answers a metadata request and lists itself. */
export async function waitForMetadata(bootstrap: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new StraitError('STRAIT_DEV_START_FAILED', `the broker at ${bootstrap} exited`);
    const producer = new Kafka.Producer({ 'metadata.broker.list': bootstrap, 'socket.connection.setup.timeout.ms': 1000, log_level: 0 });
    try {
      const md = await new Promise<Kafka.Metadata>((res, rej) => {
        producer.connect({ timeout: 2000 }, (err, data) => (err ? rej(err) : res(data)));
      });
      if (md.brokers.length > 0) return;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      if (producer.isConnected()) await new Promise<void>((res) => producer.disconnect(() => res()));
    }
    await sleep(250);
  }
  throw new StraitError('STRAIT_DEV_START_FAILED', `the broker at ${bootstrap} did not answer a metadata request within ${timeoutMs} ms (${last})`);
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

/** Formats (first time only) and starts one broker; resolves when it answers metadata. */
export async function startCluster(runtime: KafkaRuntime, c: ClusterState, opts: { heap?: string; brokerProperties?: Record<string, string> } = {}): Promise<number> {
  mkdirSync(c.logDir, { recursive: true });
  const props = join(c.dir, 'server.properties');
  const log4j = log4jConfig(c.dir);
  if (!existsSync(join(c.dir, 'data', 'meta.properties'))) {
    writeFileSync(props, brokerProperties(c, opts.brokerProperties ?? {}));
    const r = spawnSync('java', javaArgs(runtime, 'kafka.tools.StorageTool', ['format', '-t', c.clusterId, '-c', props], { heap: '128m', log4j }), { encoding: 'utf8' });
    if (r.status !== 0) throw new StraitError('STRAIT_DEV_START_FAILED', `formatting ${c.dir} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
  }
  const logFile = join(c.logDir, 'server.log');
  c.pid = spawnJava(javaArgs(runtime, 'kafka.Kafka', [props], { heap: opts.heap ?? '512m', log4j }), logFile);
  try {
    await waitForMetadata(c.bootstrap, 60_000, () => isOurs(c.pid, props));
  } catch (e) {
    stopPid(c.pid, props);
    throw new StraitError('STRAIT_DEV_START_FAILED', `${(e as Error).message}\n--- ${logFile} ---\n${tail(logFile)}`, { cause: e });
  }
  return c.pid;
}

async function startZooKeeper(runtime: KafkaRuntime, z: ZooKeeperState): Promise<void> {
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
  z.pid = spawnJava(javaArgs(runtime, 'org.apache.zookeeper.server.ZooKeeperServerMain', [cfg], { heap: '256m', log4j }), logFile);
  try {
    await waitForZooKeeper(z.port, 30_000, () => isOurs(z.pid, cfg));
  } catch (e) {
    stopPid(z.pid, cfg);
    throw new StraitError('STRAIT_DEV_START_FAILED', `${(e as Error).message}\n--- ${logFile} ---\n${tail(logFile)}`, { cause: e });
  }
}

function clusterMarker(c: ClusterState): string {
  return join(c.dir, 'server.properties');
}

function zkMarker(z: ZooKeeperState): string {
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

async function waitGone(pid: number, marker: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isOurs(pid, marker)) return true;
    await sleep(100);
  }
  return !isOurs(pid, marker);
}

async function stopAndWait(pid: number, marker: string, graceMs = 20_000): Promise<void> {
  if (!stopPid(pid, marker)) return;
  if (!(await waitGone(pid, marker, graceMs))) {
    stopPid(pid, marker, 'SIGKILL');
    await waitGone(pid, marker, 10_000);
  }
}

export function runningProcesses(state: DevState): string[] {
  const out: string[] = [];
  for (const [alias, c] of Object.entries(state.clusters)) if (isOurs(c.pid, clusterMarker(c))) out.push(`kafka ${alias} (pid ${c.pid})`);
  if (state.zookeeper && isOurs(state.zookeeper.pid, zkMarker(state.zookeeper))) out.push(`zookeeper (pid ${state.zookeeper.pid})`);
  return out;
}

export async function up(opts: UpOptions = {}): Promise<DevState> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const count = opts.clusters ?? 2;
  if (!Number.isInteger(count) || count < 1 || count > 26) {
    throw new StraitError('STRAIT_USAGE', `--clusters: '${count}' is not allowed; use a whole number from 1 to 26`, { field: 'clusters' });
  }
  const log = opts.log ?? (() => {});
  const existing = readState(dir);
  if (existing) {
    const running = runningProcesses(existing);
    if (running.length > 0) {
      throw new StraitError('STRAIT_DEV_ALREADY_RUNNING', `local clusters already run from ${statePath(dir)}: ${running.join(', ')}; use 'strait dev status' or 'strait dev down'`);
    }
  }
  requireJava();
  const runtime = ensureKafka(opts.kafkaVersion ?? DEFAULT_KAFKA_VERSION, log);
  // A fresh start: data from an earlier run that was not brought down cleanly is discarded.
  rmSync(join(dir, 'clusters'), { recursive: true, force: true });
  rmSync(join(dir, 'zookeeper'), { recursive: true, force: true });
  const state: DevState = { clusters: {}, kafkaHome: runtime.home, kafkaVersion: runtime.version, startedAt: new Date().toISOString() };
  for (let i = 0; i < count; i++) {
    const alias = aliasFor(i);
    const ports = await freePorts(2 + (opts.sasl ? 1 : 0) + (opts.wanListener ? 2 : 0));
    const [port, controllerPort] = [ports.shift()!, ports.shift()!];
    const cdir = join(dir, 'clusters', alias);
    const c: ClusterState = { bootstrap: `127.0.0.1:${port}`, pid: 0, port, controllerPort, clusterId: kraftId(), dir: cdir, logDir: join(cdir, 'logs') };
    if (opts.sasl) {
      c.saslPort = ports.shift()!;
      c.saslBootstrap = `127.0.0.1:${c.saslPort}`;
    }
    if (opts.wanListener) {
      const [wanPort, proxyPort] = [ports.shift()!, ports.shift()!];
      c.wan = { port: wanPort, proxyPort, bootstrap: `127.0.0.1:${proxyPort}` };
    }
    state.clusters[alias] = c;
  }
  if (opts.zookeeper) {
    const port = await freePort();
    const zdir = join(dir, 'zookeeper');
    state.zookeeper = { connect: `127.0.0.1:${port}`, pid: 0, port, dir: zdir, logDir: join(zdir, 'logs'), auth: newZooKeeperAuth() };
  }
  writeState(dir, state);
  log(`starting ${count} Kafka ${runtime.version} cluster${count > 1 ? 's' : ''}${opts.zookeeper ? ' and ZooKeeper' : ''} ...`);
  const starts: Promise<unknown>[] = Object.values(state.clusters).map((c) => startCluster(runtime, c, opts).then(() => writeState(dir, state)));
  if (state.zookeeper) starts.push(startZooKeeper(runtime, state.zookeeper).then(() => writeState(dir, state)));
  const results = await Promise.allSettled(starts);
  writeState(dir, state);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await down({ dir });
    throw failed.reason;
  }
  return state;
}

export async function down(opts: { dir?: string } = {}): Promise<string[]> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const state = readState(dir);
  if (!state) return [];
  const stopped = runningProcesses(state);
  const stops: Promise<void>[] = Object.values(state.clusters).map((c) => stopAndWait(c.pid, clusterMarker(c)));
  if (state.zookeeper) stops.push(stopAndWait(state.zookeeper.pid, zkMarker(state.zookeeper)));
  await Promise.all(stops);
  rmSync(statePath(dir), { force: true });
  rmSync(join(dir, 'clusters'), { recursive: true, force: true });
  rmSync(join(dir, 'zookeeper'), { recursive: true, force: true });
  return stopped;
}

/** Stops one broker (its data is kept), e.g. to test a target outage. */
export async function stopCluster(alias: string, opts: { dir?: string; signal?: NodeJS.Signals } = {}): Promise<void> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const c = clusterOf(dir, alias);
  if (opts.signal === 'SIGKILL') {
    stopPid(c.pid, clusterMarker(c), 'SIGKILL');
    await waitGone(c.pid, clusterMarker(c), 10_000);
  } else {
    await stopAndWait(c.pid, clusterMarker(c));
  }
}

/** Starts a stopped broker again on the same ports with the same data. */
export async function startStoppedCluster(alias: string, opts: { dir?: string; heap?: string } = {}): Promise<void> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const state = readState(dir);
  const c = clusterOf(dir, alias);
  if (isOurs(c.pid, clusterMarker(c))) return;
  await startCluster(runtimeOf(state!), c, opts);
  state!.clusters[alias] = c;
  writeState(dir, state!);
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

function clusterOf(dir: string, alias: string): ClusterState {
  const state = readState(dir);
  if (!state) throw new StraitError('STRAIT_DEV_NOT_RUNNING', `no local clusters recorded in ${statePath(dir)}; run 'strait dev up'`);
  const c = state.clusters[alias];
  if (!c) throw new StraitError('STRAIT_USAGE', `unknown cluster alias '${alias}' (local clusters: ${Object.keys(state.clusters).join(', ')})`, { field: 'alias' });
  return c;
}

export function runtimeOf(state: DevState): KafkaRuntime {
  return { version: state.kafkaVersion, home: state.kafkaHome, classpath: `${state.kafkaHome}/libs/*` };
}
