/**
 * `strait dev`: real KRaft Kafka clusters (one node each, or N nodes for fault drills) and a real ZooKeeper on
 * 127.0.0.1, for the demo, the tests and the bench. Every process is started detached with its pid recorded in
 * `<dir>/state.json`; `down`, `roll`, `kill` and `stop` signal exactly those pids (after checking that each still runs
 * our command line) and wait for them.
 *
 * This module brings the whole set up and down and is the harness's one entry point: the state file
 * (cluster-state.ts), the processes (processes.ts, broker-properties.ts), health (cluster-health.ts) and the drills
 * (cluster-operations.ts) live beside it, and their public parts are exported from here.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StraitError } from '../../shared/errors';
import { DEV_CLIENT_CN } from './broker-properties';
import {
  aliasFor,
  DEFAULT_DEV_DIR,
  newZooKeeperAuth,
  readState,
  statePath,
  writeState,
  type BrokerState,
  type ClusterState,
  type DevState,
  type DevTls,
} from './cluster-state';
import { BROKER_ALT_NAMES, issueCertificate, makeCertificateAuthority, pemKeyStore } from './dev-certificates';
import { DEFAULT_KAFKA_VERSION, ensureKafka, requireJava } from './kafka-runtime';
import { freePort, freePorts } from './ports';
import { brokerMarker, runningProcesses, startCluster, startZooKeeper, stopAndWait, zkMarker } from './processes';

export type { BrokerState, ClusterState, ClusterTls, DevState, DevTls, ZooKeeperState } from './cluster-state';
export { aliasFor, DEFAULT_DEV_DIR, readState, runtimeOf, statePath } from './cluster-state';
export { DEV_CLIENT_CN, DEV_SASL_USERS } from './broker-properties';
export { freePort } from './ports';
export { brokerRunning, DEFAULT_MULTI_BROKER_HEAP, isOurs, runningProcesses, startCluster, stopPid, waitForMetadata } from './processes';
export { clusterHealth, waitForFullIsr, type ClusterHealth, type PartitionHealth } from './cluster-health';
export {
  killBroker,
  rollCluster,
  startBroker,
  startOwnZooKeeper,
  startStoppedCluster,
  startStoppedZooKeeper,
  stopBroker,
  stopCluster,
  stopOwnZooKeeper,
  stopZooKeeper,
  type BrokerOptions,
  type RollStep,
} from './cluster-operations';

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

export const MAX_BROKERS = 9;

function kraftId(): string {
  // Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding. A leading '-' would read as an option.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
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
    throw new StraitError('STRAIT_USAGE', `--brokers: the wan listener (bench 'wan' scenario) proxies one broker; use --brokers 1 with it`, {
      field: 'brokers',
    });
  }
  const log = opts.log ?? (() => {});
  const existing = readState(dir);
  if (existing) {
    const running = runningProcesses(existing);
    if (running.length > 0) {
      throw new StraitError(
        'STRAIT_DEV_ALREADY_RUNNING',
        `local clusters already run from ${statePath(dir)}: ${running.join(', ')}; use 'strait dev status' or 'strait dev down'`,
      );
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
        id,
        port: port!,
        controllerPort: controllerPort!,
        pid: 0,
        dir: bdir,
        logDir: join(bdir, 'logs'),
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
        ssl: list((b) => b.sslPort),
        saslSsl: list((b) => b.saslSslPort),
        saslPlaintextScram: list((b) => b.scramPort),
        caLocation: t.caLocation,
        certificateLocation: t.certificateLocation,
        keyLocation: t.keyLocation,
        brokerKeyStore: t.brokerKeyStore,
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
  log(
    `starting ${count} Kafka ${runtime.version} cluster${count > 1 ? 's' : ''}${brokers > 1 ? ` of ${brokers} brokers` : ''}${opts.zookeeper ? ' and ZooKeeper' : ''} ...`,
  );
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
