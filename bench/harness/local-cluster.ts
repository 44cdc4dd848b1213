/**
 * `strait dev`: real KRaft Kafka clusters (one node each, or N nodes for fault drills) and a real ZooKeeper on
 * 127.0.0.1, for the demo, the tests and the bench. Every process is started detached with its pid recorded in
 * `<dir>/state.json`; `down`, `roll`, `kill` and `stop` signal exactly those pids (after checking that each still runs
 * our command line) and wait for them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Kafka from 'node-rdkafka';
import { StraitError } from '../../shared/errors';
import { BROKER_ALT_NAMES, issueCertificate, makeCertificateAuthority, pemKeyStore } from './dev-certificates';
import { DEFAULT_KAFKA_VERSION, ensureKafka, javaArgs, requireJava, type KafkaRuntime } from './kafka-runtime';

/** One KRaft node of a cluster: broker and controller in one JVM (see `brokerProperties` for why combined). */
export interface BrokerState {
  /** Kafka's node.id, 1..N */
  id: number;
  port: number;
  controllerPort: number;
  pid: number;
  /** holds server.properties (the marker that proves a pid is this broker) and data/ */
  dir: string;
  logDir: string;
  saslPort?: number;
  /** with `tls`: the SSL (mTLS), SASL_SSL (SCRAM-SHA-512) and SASL_PLAINTEXT (SCRAM-SHA-256) listeners' ports */
  sslPort?: number;
  saslSslPort?: number;
  scramPort?: number;
}

/** The secured listeners of a cluster started with `tls`, each as a comma-separated bootstrap of every broker. */
export interface ClusterTls {
  /** SSL, client certificate required (mTLS): `security.protocol: SSL` with the client certificate and key below */
  ssl: string;
  /** SASL_SSL, mechanism SCRAM-SHA-512, users DEV_SASL_USERS */
  saslSsl: string;
  /** SASL_PLAINTEXT, mechanism SCRAM-SHA-256, users DEV_SASL_USERS */
  saslPlaintextScram: string;
  /** PEM CA certificate that signed the brokers' certificate: `ssl.ca.location` */
  caLocation: string;
  /** PEM client certificate and key for the SSL listener: `ssl.certificate.location`, `ssl.key.location` */
  certificateLocation: string;
  keyLocation: string;
  /** the brokers' PEM key store (their key and certificate chain) */
  brokerKeyStore: string;
}

export interface ClusterState {
  /** every broker of the cluster, comma-separated */
  bootstrap: string;
  /** pid, port, controllerPort and logDir are the first broker's, for callers written for single-broker clusters */
  pid: number;
  port: number;
  controllerPort: number;
  clusterId: string;
  /** the cluster's folder; with one broker it is also that broker's `dir` (data in `<dir>/data`) */
  dir: string;
  logDir: string;
  brokers: BrokerState[];
  /** SASL_PLAINTEXT (PLAIN) listener, when started with `sasl`: users in DEV_SASL_USERS, ACLs enforced there */
  saslBootstrap?: string;
  /** the first broker's SASL port */
  saslPort?: number;
  /** a listener advertised through a proxy port (the bench's `wan` scenario puts its delay proxy there); one broker only */
  wan?: { port: number; proxyPort: number; bootstrap: string };
  /** with `tls`: the SSL, SASL_SSL and SCRAM listeners and the files a client needs for them */
  tls?: ClusterTls;
}

/** The harness's TLS material (`<dir>/tls`), shared by every cluster of a `tls` start. */
export interface DevTls {
  dir: string;
  caLocation: string;
  /** the CA's private key: tests issue more certificates with it */
  caKeyLocation: string;
  /** what every broker presents (subject alternative names 127.0.0.1 and localhost) */
  brokerCertificateLocation: string;
  /** Kafka's PEM key store: the broker's key and chain */
  brokerKeyStore: string;
  certificateLocation: string;
  keyLocation: string;
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
  tls?: DevTls;
  kafkaHome: string;
  kafkaVersion: string;
  startedAt: string;
}

export interface UpOptions {
  clusters?: number;
  /** KRaft nodes per cluster, default 1; with 3 or more: replication factor 3 and min.insync.replicas 2 */
  brokers?: number;
  zookeeper?: boolean;
  kafkaVersion?: string;
  /** state folder; default .strait/dev */
  dir?: string;
  log?: (line: string) => void;
  /** broker heap, default 512m with one broker per cluster, DEFAULT_MULTI_BROKER_HEAP with more */
  heap?: string;
  /** extra server.properties lines for every broker */
  brokerProperties?: Record<string, string>;
  /** add a SASL_PLAINTEXT listener (PLAIN, users DEV_SASL_USERS) and the ACL authorizer to every broker */
  sasl?: boolean;
  /** add a listener advertised through a proxy port to every broker (`ClusterState.wan`) */
  wanListener?: boolean;
  /**
   * add SSL (client certificates required), SASL_SSL (SCRAM-SHA-512) and SASL_PLAINTEXT (SCRAM-SHA-256) listeners
   * to every broker, with a CA and certificates made on the spot (`ClusterState.tls`, `DevState.tls`)
   */
  tls?: boolean;
}

/**
 * The harness's SASL users. `admin` is a super user (so is ANONYMOUS: the PLAINTEXT listener and the KRaft
 * controller listener stay unrestricted); every other user gets only the ACLs a test grants it.
 */
export const DEV_SASL_USERS: Record<string, string> = { admin: 'admin-secret', strait: 'strait-secret', limited: 'limited-secret' };

/** The common name of the harness's client certificate; the brokers map `CN=strait` to the principal `User:strait`. */
export const DEV_CLIENT_CN = 'strait';

export const DEFAULT_DEV_DIR = '.strait/dev';

/**
 * Heap of each node when a cluster has several. Two 3-node clusters, ZooKeeper, strait and MirrorMaker 2 share a
 * 2-core, 24 GiB machine with other work. Measured during the chaos test (12 partitions at RF 3, a steady producer,
 * strait replicating, brokers restarting): 160-190 MB of the heap in use, 320-360 MB resident per node.
 */
export const DEFAULT_MULTI_BROKER_HEAP = '384m';

export const MAX_BROKERS = 9;

export function aliasFor(i: number): string {
  return String.fromCharCode('a'.charCodeAt(0) + i);
}

export function statePath(dir = DEFAULT_DEV_DIR): string {
  return join(resolve(dir), 'state.json');
}

export function readState(dir = DEFAULT_DEV_DIR): DevState | undefined {
  const file = statePath(dir);
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as DevState;
  // a state.json written before clusters had brokers[] (a dev session still running across an upgrade)
  for (const c of Object.values(state.clusters)) {
    c.brokers ??= [{ id: 1, port: c.port, controllerPort: c.controllerPort, pid: c.pid, dir: c.dir, logDir: c.logDir, ...(c.saslPort ? { saslPort: c.saslPort } : {}) }];
  }
  return state;
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

/**
 * A port that was free a moment ago, below the kernel's ephemeral range. Brokers and ZooKeeper restart on the ports they
 * were given; a port from the ephemeral range (what `listen(0)` hands out) can meanwhile become the local end of any
 * outgoing connection on the machine — a client reconnecting to another broker, say — and the restart then fails to
 * bind. Ports below the range are only ever taken by a listener that asks for one.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralRangeStart();
  const [min, max] = [10_000, low - 1];
  for (let i = 0; max - min >= 1000 && i < 200; i++) {
    const port = min + Math.floor(Math.random() * (max - min + 1));
    if (await canListen(port)) return port;
  }
  return anyPort();
}

function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

function anyPort(): Promise<number> {
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

function listenerProperties(c: ClusterState, b: BrokerState): Record<string, string> {
  const listeners = [`PLAINTEXT://127.0.0.1:${b.port}`, `CONTROLLER://127.0.0.1:${b.controllerPort}`];
  const advertised = [`PLAINTEXT://127.0.0.1:${b.port}`];
  const protocols = ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT'];
  const props: Record<string, string> = {};
  if (b.saslPort) {
    listeners.push(`SASL_PLAINTEXT://127.0.0.1:${b.saslPort}`);
    advertised.push(`SASL_PLAINTEXT://127.0.0.1:${b.saslPort}`);
    protocols.push('SASL_PLAINTEXT:SASL_PLAINTEXT');
    const users = Object.entries(DEV_SASL_USERS).map(([u, pw]) => `user_${u}="${pw}"`).join(' ');
    Object.assign(props, {
      'sasl.enabled.mechanisms': 'PLAIN',
      'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${users};`,
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'super.users': 'User:ANONYMOUS;User:admin',
    });
  }
  if (c.tls && b.sslPort && b.saslSslPort && b.scramPort) {
    // Listener names SSL and SASL_SSL are the protocol names (what a Kafka operator expects to see); the SCRAM-SHA-256
    // listener is SASL_PLAINTEXT under its own name, so it can sit beside the PLAIN one of `sasl`.
    for (const [name, port, protocol] of [['SSL', b.sslPort, 'SSL'], ['SASL_SSL', b.saslSslPort, 'SASL_SSL'], ['SCRAM', b.scramPort, 'SASL_PLAINTEXT']] as const) {
      listeners.push(`${name}://127.0.0.1:${port}`);
      advertised.push(`${name}://127.0.0.1:${port}`);
      protocols.push(`${name}:${protocol}`);
    }
    const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    Object.assign(props, {
      'ssl.keystore.type': 'PEM',
      'ssl.keystore.location': c.tls.brokerKeyStore,
      'ssl.truststore.type': 'PEM',
      'ssl.truststore.location': c.tls.caLocation,
      'listener.name.ssl.ssl.client.auth': 'required',
      // an mTLS client is User:<CN> (the harness's client certificate: User:strait, the SCRAM user's name)
      'ssl.principal.mapping.rules': 'RULE:^CN=([^,]+)$/$1/,DEFAULT',
      'listener.name.sasl_ssl.sasl.enabled.mechanisms': 'SCRAM-SHA-512',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': scram,
      'listener.name.scram.sasl.enabled.mechanisms': 'SCRAM-SHA-256',
      'listener.name.scram.scram-sha-256.sasl.jaas.config': scram,
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

/**
 * Every node runs broker and controller in one JVM (KRaft combined mode), and with N nodes all N are voters. A
 * separate quorum would add 3 JVMs per cluster (about 1.5 GB and the CPU of their fetch loops on a 2-core machine
 * shared with the other cluster, ZooKeeper, strait and MirrorMaker 2) and would leave the controllers out of every
 * drill; combined, a roll or a kill -9 also moves the active controller, which is the harder case for clients.
 * Three voters keep a quorum with one node down, which is all the drills ever take away.
 */
function brokerProperties(c: ClusterState, b: BrokerState, extra: Record<string, string>): string {
  const n = c.brokers.length;
  // Production shape from 3 nodes on: a record acknowledged with acks=all is on 2 replicas at least, so one node
  // lost (killed, restarting) never loses an acknowledged record and never blocks producers.
  const rf = String(Math.min(n, 3));
  const minIsr = n >= 3 ? '2' : '1';
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': String(b.id),
    'controller.quorum.voters': c.brokers.map((x) => `${x.id}@127.0.0.1:${x.controllerPort}`).join(','),
    ...listenerProperties(c, b),
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': join(b.dir, 'data'),
    'num.partitions': '1',
    'default.replication.factor': rf,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': rf,
    'offsets.topic.num.partitions': '8',
    'transaction.state.log.replication.factor': rf,
    'transaction.state.log.min.isr': minIsr,
    'transaction.state.log.num.partitions': '4',
    'group.initial.rebalance.delay.ms': '0',
    // the log cleaner looks for compactable logs every second (default 15 s), so compaction is observable in tests
    'log.cleaner.backoff.ms': '1000',
    'auto.create.topics.enable': 'false',
    'log.segment.bytes': String(256 * 1024 * 1024),
    'num.network.threads': '2',
    'num.io.threads': n > 1 ? '2' : '4',
    // A roll leaves the last restarted node leading nothing; Kafka moves leadership back to the preferred replicas
    // every leader.imbalance.check.interval.seconds (300 by default), which would keep a 3-node cluster lopsided for
    // minutes after each drill. 30 s restores the usual balance between drills.
    ...(n > 1 ? { 'leader.imbalance.check.interval.seconds': '30' } : {}),
    ...extra,
  };
  return `${Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
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
  throw new StraitError('STRAIT_DEV_START_FAILED', `the broker at ${bootstrap} did not answer a metadata request${nodeId === undefined ? '' : ` listing node ${nodeId}`} within ${timeoutMs} ms (${last})`);
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
async function startBrokerProcess(runtime: KafkaRuntime, c: ClusterState, b: BrokerState, opts: { heap?: string; brokerProperties?: Record<string, string> } = {}): Promise<number> {
  mkdirSync(b.logDir, { recursive: true });
  const props = brokerMarker(b);
  const log4j = log4jConfig(b.dir);
  if (!existsSync(join(b.dir, 'data', 'meta.properties'))) {
    writeFileSync(props, brokerProperties(c, b, opts.brokerProperties ?? {}));
    // SCRAM credentials go into the bootstrap metadata at format time (KIP-900, Kafka 3.5+): no broker needs to be up
    const scram = c.tls ? Object.entries(DEV_SASL_USERS).flatMap(([u, pw]) => ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${u},password=${pw}]`])) : [];
    const r = spawnSync('java', javaArgs(runtime, 'kafka.tools.StorageTool', ['format', '-t', c.clusterId, '-c', props, ...scram], { heap: '128m', log4j }), { encoding: 'utf8' });
    if (r.status !== 0) throw new StraitError('STRAIT_DEV_START_FAILED', `formatting ${b.dir} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
  }
  const logFile = join(b.logDir, 'server.log');
  const heap = opts.heap ?? (c.brokers.length > 1 ? DEFAULT_MULTI_BROKER_HEAP : '512m');
  const logFrom = fileSize(logFile);
  b.pid = spawnJava(javaArgs(runtime, 'kafka.Kafka', [props], { heap, log4j }), logFile);
  syncFirstBroker(c);
  try {
    // A node of a multi-node cluster waits for a quorum of its peers, which start at the same time.
    await waitForMetadata(`127.0.0.1:${b.port}`, c.brokers.length > 1 ? 120_000 : 60_000, () => isOurs(b.pid, props), b.id);
  } catch (e) {
    stopPid(b.pid, props);
    throw new StraitError('STRAIT_DEV_START_FAILED', `${c.brokers.length > 1 ? `broker ${b.id}: ` : ''}${(e as Error).message}\n--- ${logFile} (this start) ---\n${startLog(logFile, logFrom)}`, { cause: e });
  }
  return b.pid;
}

/** Keeps the single-broker fields (`pid`) in step with the first broker. */
function syncFirstBroker(c: ClusterState): void {
  c.pid = c.brokers[0]!.pid;
}

/** Starts every node of a cluster that is not running, at once (a KRaft node needs a quorum of its peers up). */
export async function startCluster(runtime: KafkaRuntime, c: ClusterState, opts: { heap?: string; brokerProperties?: Record<string, string> } = {}): Promise<number> {
  const stopped = c.brokers.filter((b) => !isOurs(b.pid, brokerMarker(b)));
  const results = await Promise.allSettled(stopped.map((b) => startBrokerProcess(runtime, c, b, opts)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
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
  const logFrom = fileSize(logFile);
  z.pid = spawnJava(javaArgs(runtime, 'org.apache.zookeeper.server.ZooKeeperServerMain', [cfg], { heap: '256m', log4j }), logFile);
  try {
    await waitForZooKeeper(z.port, 30_000, () => isOurs(z.pid, cfg));
  } catch (e) {
    stopPid(z.pid, cfg);
    throw new StraitError('STRAIT_DEV_START_FAILED', `${(e as Error).message}\n--- ${logFile} (this start) ---\n${startLog(logFile, logFrom)}`, { cause: e });
  }
}

function brokerMarker(b: BrokerState): string {
  return join(b.dir, 'server.properties');
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

/** A fresh CA, the brokers' certificate and key store, and a client certificate (CN=strait), in `dir`. */
function makeDevTls(dir: string): DevTls {
  const ca = makeCertificateAuthority(dir);
  const broker = issueCertificate(ca, dir, 'broker', { cn: 'localhost', altNames: BROKER_ALT_NAMES, usage: 'server' });
  const client = issueCertificate(ca, dir, 'client', { cn: DEV_CLIENT_CN, usage: 'client' });
  return {
    dir,
    caLocation: ca.certificate,
    caKeyLocation: ca.key,
    brokerCertificateLocation: broker.certificate,
    brokerKeyStore: pemKeyStore(join(dir, 'broker-keystore.pem'), broker, ca),
    certificateLocation: client.certificate,
    keyLocation: client.key,
  };
}

export async function up(opts: UpOptions = {}): Promise<DevState> {
  const dir = resolve(opts.dir ?? DEFAULT_DEV_DIR);
  const count = opts.clusters ?? 2;
  if (!Number.isInteger(count) || count < 1 || count > 26) {
    throw new StraitError('STRAIT_USAGE', `--clusters: '${count}' is not allowed; use a whole number from 1 to 26`, { field: 'clusters' });
  }
  const brokers = opts.brokers ?? 1;
  if (!Number.isInteger(brokers) || brokers < 1 || brokers > MAX_BROKERS) {
    throw new StraitError('STRAIT_USAGE', `--brokers: '${brokers}' is not allowed; use a whole number from 1 to ${MAX_BROKERS}`, { field: 'brokers' });
  }
  if (opts.wanListener && brokers > 1) {
    throw new StraitError('STRAIT_USAGE', `--brokers: the wan listener (bench 'wan' scenario) proxies one broker; use --brokers 1 with it`, { field: 'brokers' });
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
  rmSync(join(dir, 'tls'), { recursive: true, force: true });
  const state: DevState = { clusters: {}, kafkaHome: runtime.home, kafkaVersion: runtime.version, startedAt: new Date().toISOString() };
  // all at once: ports probed one call apart could come back twice
  const perBroker = 2 + (opts.sasl ? 1 : 0) + (opts.tls ? 3 : 0);
  const ports = await freePorts(count * (brokers * perBroker + (opts.wanListener ? 2 : 0)));
  if (opts.tls) state.tls = makeDevTls(join(dir, 'tls'));
  for (let i = 0; i < count; i++) {
    const alias = aliasFor(i);
    const cdir = join(dir, 'clusters', alias);
    const nodes: BrokerState[] = [];
    for (let id = 1; id <= brokers; id++) {
      const [port, controllerPort] = ports.splice(0, 2);
      const saslPort = opts.sasl ? ports.shift() : undefined;
      const [sslPort, saslSslPort, scramPort] = opts.tls ? ports.splice(0, 3) : [];
      // one broker keeps the layout single-broker callers know (data in <cluster dir>/data)
      const bdir = brokers === 1 ? cdir : join(cdir, `broker-${id}`);
      nodes.push({
        id, port: port!, controllerPort: controllerPort!, pid: 0, dir: bdir, logDir: join(bdir, 'logs'),
        ...(saslPort !== undefined ? { saslPort } : {}),
        ...(opts.tls ? { sslPort: sslPort!, saslSslPort: saslSslPort!, scramPort: scramPort! } : {}),
      });
    }
    const first = nodes[0]!;
    const c: ClusterState = {
      bootstrap: nodes.map((b) => `127.0.0.1:${b.port}`).join(','),
      pid: 0,
      port: first.port,
      controllerPort: first.controllerPort,
      clusterId: kraftId(),
      dir: cdir,
      logDir: first.logDir,
      brokers: nodes,
    };
    if (opts.sasl) {
      c.saslPort = first.saslPort!;
      c.saslBootstrap = nodes.map((b) => `127.0.0.1:${b.saslPort}`).join(',');
    }
    if (state.tls) {
      const t = state.tls;
      const list = (pick: (b: BrokerState) => number | undefined) => nodes.map((b) => `127.0.0.1:${pick(b)}`).join(',');
      c.tls = {
        ssl: list((b) => b.sslPort), saslSsl: list((b) => b.saslSslPort), saslPlaintextScram: list((b) => b.scramPort),
        caLocation: t.caLocation, certificateLocation: t.certificateLocation, keyLocation: t.keyLocation, brokerKeyStore: t.brokerKeyStore,
      };
    }
    if (opts.wanListener) {
      const [wanPort, proxyPort] = ports.splice(0, 2);
      c.wan = { port: wanPort!, proxyPort: proxyPort!, bootstrap: `127.0.0.1:${proxyPort}` };
    }
    state.clusters[alias] = c;
  }
  if (opts.zookeeper) {
    const port = await freePort();
    const zdir = join(dir, 'zookeeper');
    state.zookeeper = { connect: `127.0.0.1:${port}`, pid: 0, port, dir: zdir, logDir: join(zdir, 'logs'), auth: newZooKeeperAuth() };
  }
  writeState(dir, state);
  log(`starting ${count} Kafka ${runtime.version} cluster${count > 1 ? 's' : ''}${brokers > 1 ? ` of ${brokers} brokers` : ''}${opts.zookeeper ? ' and ZooKeeper' : ''} ...`);
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
  const stops: Promise<void>[] = Object.values(state.clusters).flatMap((c) => c.brokers.map((b) => stopAndWait(b.pid, brokerMarker(b))));
  if (state.zookeeper) stops.push(stopAndWait(state.zookeeper.pid, zkMarker(state.zookeeper)));
  await Promise.all(stops);
  rmSync(statePath(dir), { force: true });
  rmSync(join(dir, 'clusters'), { recursive: true, force: true });
  rmSync(join(dir, 'zookeeper'), { recursive: true, force: true });
  rmSync(join(dir, 'tls'), { recursive: true, force: true });
  return stopped;
}

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

/** SIGTERM (a controlled shutdown: leadership moves away first) or SIGKILL, then waits for the process to end. */
async function stopBrokerProcess(b: BrokerState, kill: boolean, graceMs = 60_000): Promise<void> {
  if (kill) {
    stopPid(b.pid, brokerMarker(b), 'SIGKILL');
    if (!(await waitGone(b.pid, brokerMarker(b), 10_000))) throw new StraitError('STRAIT_DEV_START_FAILED', `broker ${b.id} (pid ${b.pid}) still runs 10 s after SIGKILL`);
  } else {
    await stopAndWait(b.pid, brokerMarker(b), graceMs);
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

export interface PartitionHealth {
  topic: string;
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

export interface ClusterHealth {
  /** registered, unfenced brokers */
  brokers: number[];
  partitions: PartitionHealth[];
  /** partitions whose ISR is smaller than their replica set (Kafka's UnderReplicatedPartitions, cluster-wide) */
  underReplicated: PartitionHealth[];
  /** partitions without a leader */
  offline: PartitionHealth[];
}

/** One metadata request (every topic, internal ones included) answered by any broker of `bootstrap`. */
export async function clusterHealth(bootstrap: string, timeoutMs = 10_000): Promise<ClusterHealth> {
  const producer = new Kafka.Producer({ 'metadata.broker.list': bootstrap, 'socket.connection.setup.timeout.ms': 2000, log_level: 0 });
  let timer: NodeJS.Timeout | undefined;
  try {
    // node-rdkafka's connect callback has been seen never to fire while brokers restart: bound it ourselves
    const md = await Promise.race([
      new Promise<Kafka.Metadata>((res, rej) => producer.connect({ timeout: timeoutMs, allTopics: true } as never, (err, data) => (err ? rej(err) : res(data)))),
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no metadata from ${bootstrap} within ${timeoutMs} ms`)), timeoutMs + 2000))),
    ]);
    const partitions = md.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.id, leader: p.leader, replicas: p.replicas, isr: p.isrs })));
    return {
      brokers: md.brokers.map((x) => x.id).sort((x, y) => x - y),
      partitions,
      underReplicated: partitions.filter((p) => p.isr.length < p.replicas.length),
      offline: partitions.filter((p) => p.leader < 0),
    };
  } finally {
    clearTimeout(timer);
    if (producer.isConnected()) await new Promise<void>((res) => producer.disconnect(() => res()));
  }
}

/**
 * Waits until every broker of the cluster is registered and every partition's ISR is its full replica set again
 * (under-replicated = 0, nothing offline), twice in a row: one broker's metadata cache may trail the controller's.
 */
export async function waitForFullIsr(c: ClusterState, timeoutMs = 180_000): Promise<ClusterHealth> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no metadata yet';
  let healthyOnce = false;
  while (Date.now() < deadline) {
    try {
      const h = await clusterHealth(c.bootstrap);
      const missing = c.brokers.map((b) => b.id).filter((id) => !h.brokers.includes(id));
      if (missing.length === 0 && h.underReplicated.length === 0 && h.offline.length === 0) {
        if (healthyOnce) return h;
        healthyOnce = true;
      } else {
        healthyOnce = false;
        last = [
          missing.length > 0 ? `brokers not registered: ${missing.join(', ')}` : '',
          h.underReplicated.length > 0 ? `${h.underReplicated.length} partitions under-replicated (e.g. ${h.underReplicated.slice(0, 3).map((p) => `${p.topic}-${p.partition} isr [${p.isr.join(',')}] of [${p.replicas.join(',')}]`).join('; ')})` : '',
          h.offline.length > 0 ? `${h.offline.length} partitions offline` : '',
        ].filter(Boolean).join(', ');
      }
    } catch (e) {
      healthyOnce = false;
      last = (e as Error).message;
    }
    await sleep(500);
  }
  throw new StraitError('STRAIT_DEV_START_FAILED', `cluster ${c.bootstrap}: ISR not full within ${timeoutMs} ms (${last})`);
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
  if (down.length > 0) throw new StraitError('STRAIT_DEV_NOT_RUNNING', `cluster ${alias}: broker${down.length > 1 ? 's' : ''} ${down.join(', ')} not running; start ${down.length > 1 ? 'them' : 'it'} before a roll ('strait dev start ${alias} ${down[0]}')`);
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

function clusterOf(dir: string, alias: string): { state: DevState; c: ClusterState } {
  const state = readState(dir);
  if (!state) throw new StraitError('STRAIT_DEV_NOT_RUNNING', `no local clusters recorded in ${statePath(dir)}; run 'strait dev up'`);
  const c = state.clusters[alias];
  if (!c) throw new StraitError('STRAIT_USAGE', `unknown cluster alias '${alias}' (local clusters: ${Object.keys(state.clusters).join(', ')})`, { field: 'alias' });
  return { state, c };
}

function brokerOf(dir: string, alias: string, id: number): { state: DevState; c: ClusterState; b: BrokerState } {
  const { state, c } = clusterOf(dir, alias);
  const b = c.brokers.find((x) => x.id === id);
  if (!b) throw new StraitError('STRAIT_USAGE', `cluster ${alias} has no broker '${id}' (its brokers: ${c.brokers.map((x) => x.id).join(', ')})`, { field: 'broker-id' });
  return { state, c, b };
}

export function runtimeOf(state: DevState): KafkaRuntime {
  return { version: state.kafkaVersion, home: state.kafkaHome, classpath: `${state.kafkaHome}/libs/*` };
}
