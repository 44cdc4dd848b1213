/** What a ZooKeeper store is given (options, filled with their defaults once) and what it counts. */
import { createHash } from 'node:crypto';
import { StraitError } from '../../errors';
import type { Logger } from '../../logger';

/** Digest authentication of the store's sessions, and the ACL every node gets. */
export interface ZooKeeperAuth {
  scheme: 'digest';
  /** `user:password`; the password is never logged, printed or stored */
  credentials: string;
  /**
   * further digest identities (`user:base64(sha1(user:password))`, the id of a ZooKeeper digest ACL) granted ALL on
   * every node besides this process's own: a credential rotation adds the new identity here first (README, "Security")
   */
  alsoGrant?: string[];
}

/** The id a digest ACL names for `user:password`: `user:base64(sha1("user:password"))` (DigestAuthenticationProvider). */
export function digestId(credentials: string): string {
  const user = credentials.slice(0, credentials.indexOf(':'));
  return `${user}:${createHash('sha1').update(credentials, 'utf8').digest('base64')}`;
}

/** `user` of `user:password` (safe to log) */
export function digestUser(credentials: string): string {
  return credentials.slice(0, Math.max(0, credentials.indexOf(':')));
}

export interface ZooKeeperStoreOptions {
  /** `host:port[,host:port...][/chroot]` */
  connect: string;
  /** the replication deployment; its subtree is `<root>/<deployment>` */
  deployment: string;
  /** default `/strait` */
  root?: string;
  /** requested session timeout, ms; the server negotiates it within its min/max. Default 10 000 */
  sessionTimeoutMs?: number;
  /** how long `connect()`, and each attempt to replace a lost session, waits for a session. Default 15 000 */
  connectTimeoutMs?: number;
  /**
   * disconnected this long, the session counts as lost. Default: the negotiated session timeout (Curator's rule), so a
   * ZooKeeper restart shorter than about two thirds of it keeps the session (the C client retries every third of it)
   */
  lostAfterDisconnectMs?: number;
  /** how long one store call keeps retrying through disconnections before it fails (retriable). Default 30 000 */
  operationTimeoutMs?: number;
  /**
   * how long registering waits for a node of the same name that another session holds (a restarted worker's previous
   * incarnation, not yet expired) to go away. Default twice the session timeout
   */
  staleNodeWaitMs?: number;
  /** the C client's own log level (0 silent, 1 error ... 4 debug); process-wide, printed to stdout. Default 0 */
  clientLogLevel?: number;
  /**
   * digest authentication; every node this store creates then grants ALL to this identity (and `alsoGrant`) and
   * nothing to anyone else. Without it nodes are world-open (config check refuses that unless
   * store.allowUnauthenticated is set)
   */
  auth?: ZooKeeperAuth;
  /**
   * with `auth`: on connect, set the ACL of every node of the deployment (and of the root above it) that differs from
   * the configured one, so a tree made before auth was configured (or before a rotation) is closed. Default true
   */
  reconcileAcls?: boolean;
  /** with `auth`: how long a writer waits for another session's empty (half-made) node to be filled before deleting it. Default 5000 */
  placeholderGraceMs?: number;
  log?: Logger;
}

export interface FilledOptions {
  connect: string;
  deployment: string;
  root: string;
  sessionTimeoutMs: number;
  connectTimeoutMs: number;
  lostAfterDisconnectMs: number | undefined;
  operationTimeoutMs: number;
  staleNodeWaitMs: number;
  clientLogLevel: number;
  auth: ZooKeeperAuth | undefined;
  reconcileAcls: boolean;
  placeholderGraceMs: number;
  log: Logger | undefined;
}

export function fillOptions(opts: ZooKeeperStoreOptions): FilledOptions {
  const root = (opts.root ?? '/strait').replace(/\/+$/, '');
  if (!root.startsWith('/')) throw new StraitError('STRAIT_STORE', `the ZooKeeper root '${opts.root}' must start with '/'`, { field: 'store.root' });
  return {
    connect: opts.connect,
    deployment: opts.deployment,
    root,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 10_000,
    connectTimeoutMs: opts.connectTimeoutMs ?? 15_000,
    lostAfterDisconnectMs: opts.lostAfterDisconnectMs,
    operationTimeoutMs: opts.operationTimeoutMs ?? 30_000,
    staleNodeWaitMs: opts.staleNodeWaitMs ?? 2 * (opts.sessionTimeoutMs ?? 10_000),
    clientLogLevel: opts.clientLogLevel ?? 0,
    auth: opts.auth,
    reconcileAcls: opts.reconcileAcls ?? true,
    placeholderGraceMs: opts.placeholderGraceMs ?? 5000,
    log: opts.log,
  };
}

/** what a store counts (`ZooKeeperStore.stats`) */
export interface StoreStats {
  versionConflicts: number;
  sessions: number;
  sessionsLost: number;
  tamperedNodes: number;
  aclsReconciled: number;
}
