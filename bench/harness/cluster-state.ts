/**
 * What `strait dev` records in `<dir>/state.json`: every cluster, broker and ZooKeeper it started (pids, ports, folders)
 * and the Kafka runtime they run on; and the lookups of a cluster or broker by alias and id.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StraitError } from '../../shared/errors';
import type { KafkaRuntime } from './kafka-runtime';

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
export function newZooKeeperAuth(): ZooKeeperState['auth'] {
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
  const state = JSON.parse(readFileSync(file, 'utf8')) as DevState;
  // a state.json written before clusters had brokers[] (a dev session still running across an upgrade)
  for (const c of Object.values(state.clusters)) {
    c.brokers ??= [
      { id: 1, port: c.port, controllerPort: c.controllerPort, pid: c.pid, dir: c.dir, logDir: c.logDir, ...(c.saslPort ? { saslPort: c.saslPort } : {}) },
    ];
  }
  return state;
}

export function writeState(dir: string, state: DevState): void {
  mkdirSync(resolve(dir), { recursive: true });
  writeFileSync(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);
}

export function clusterOf(dir: string, alias: string): { state: DevState; c: ClusterState } {
  const state = readState(dir);
  if (!state) throw new StraitError('STRAIT_DEV_NOT_RUNNING', `no local clusters recorded in ${statePath(dir)}; run 'strait dev up'`);
  const c = state.clusters[alias];
  if (!c)
    throw new StraitError('STRAIT_USAGE', `unknown cluster alias '${alias}' (local clusters: ${Object.keys(state.clusters).join(', ')})`, { field: 'alias' });
  return { state, c };
}

export function brokerOf(dir: string, alias: string, id: number): { state: DevState; c: ClusterState; b: BrokerState } {
  const { state, c } = clusterOf(dir, alias);
  const b = c.brokers.find((x) => x.id === id);
  if (!b)
    throw new StraitError('STRAIT_USAGE', `cluster ${alias} has no broker '${id}' (its brokers: ${c.brokers.map((x) => x.id).join(', ')})`, {
      field: 'broker-id',
    });
  return { state, c, b };
}

export function runtimeOf(state: DevState): KafkaRuntime {
  return { version: state.kafkaVersion, home: state.kafkaHome, classpath: `${state.kafkaHome}/libs/*` };
}
