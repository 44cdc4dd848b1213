/**
 * The ZooKeeper coordination store of distributed deployments (DESIGN.md, "Coordination store"). Layout under
 * `<root>/<deployment>/`:
 *
 *   workers/<id>                          ephemeral, a WorkerInfo
 *   assignments/<worker>                  an Assignment; its version is a counter kept in the record
 *   offsets/<route>/<topic>/<partition>   {offset, epoch}; read-check-write with the znode version, fenced by epoch
 *   managed/<route>/<topic>               target topics the route created
 *   clusters/<route>                      {source, target, at}: the cluster ids the route's offsets belong to
 *   reports/<worker>                      ephemeral, the worker's last LoadReport (rates and lag per partition)
 *   controller/leader                     ephemeral, the leading controller's id
 *   control/drained/<worker>, control/paused/<route>   operator flags (presence is the state)
 *   routes/<name>                         a route created over REST: {route, revision, updatedAt}
 *
 * Every record is msgpack `{ v: <format>, ...fields }`. Readers take the fields they know and ignore the rest, so a
 * newer writer may add fields without breaking an older reader. Path segments are URI-encoded (Kafka topic names
 * come through unchanged; '/', '%', control characters, '.' and '..' cannot break the tree).
 *
 * Sessions. A disconnection alone keeps the session: the C client reconnects with the same session id and re-sends
 * its watches (ZooKeeper's SetWatches), so ephemeral nodes and watches survive a server restart. The session counts
 * as lost when the server says it expired (the binding then closes its handle and emits 'close' with
 * ZOO_EXPIRED_SESSION_STATE), or when this process stayed disconnected for `lostAfterDisconnectMs` (default: the
 * session timeout): a client only learns of an expiry when it reaches a server again, but by then the controller may
 * already have handed this worker's partitions to another one, so a worker cut off that long must stop without
 * waiting for the server's word (Curator's rule too). Offset commits stay fenced by epoch either way. On a loss the onSessionLost callbacks (and `lost()` of a leading campaign) run at once; then a new
 * session is opened, this process's ephemeral nodes are created again, campaigns re-run, watches re-armed (each
 * delivers the current state once), and the onSessionRestored callbacks run.
 *
 * The `zookeeper` package (the official C client, single-threaded, driven by libuv) reports error codes as numbers
 * to the `a_*` callbacks; its promise API folds them into message strings, so this module uses the callbacks.
 *
 * Authentication and ACLs (`auth`). What the binding (zookeeper 7.3, C client 3.8) offers, read in its node-zk.cpp:
 * `add_auth(scheme, auth)` (digest works; the C client re-sends it when the same handle reconnects), `a_get_acl`
 * (unusable: a getACL the server refuses, e.g. NOAUTH or NONODE, crashes the process — its callback frees a null
 * ACL list), `a_set_acl(path, aclVersion, acl)`. It does NOT offer: an ACL on create (`a_create`/`a_create_ttl` always pass
 * ZOO_OPEN_ACL_UNSAFE), multi-op transactions, SASL (`zookeeper_init_sasl` is never called; the bundled C client is
 * built without Cyrus SASL) or TLS (`zookeeper_init_ssl`). So digest is the only scheme, and every node is created
 * world-open and sealed right after. To keep that window harmless, with `auth` set a node is created by a sealing
 * protocol: create it *empty* and, pipelined on the same session (ZooKeeper runs one session's requests in order),
 * set its ACL expecting ACL version 0; then write the record expecting data version 0. Anyone who read the node in
 * between read nothing; anyone who changed its ACL or data in between makes one of those versioned calls fail, and
 * the node is deleted (this process holds DELETE on the sealed parent) and made again. Readers take an empty record
 * for "not written yet" (absent), and a writer that meets someone else's empty node waits for it to be filled (or,
 * after `placeholderGraceMs`, deletes it: its creator died half-way). Digest credentials travel in clear text, like
 * the rest of the ZooKeeper protocol without TLS: keep ZooKeeper on a trusted network.
 */
import { createHash, randomUUID } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import ZooKeeper from 'zookeeper';
import { isGapReason } from '../native';
import { StraitError } from './errors';
import type { Logger } from './logger';
import { PARTITION_ERROR_CODES } from './partition-errors';
import type { RouteConfig } from './config';
import type { CommitResult, CoordinationStore, LeaderCallbacks, OffsetCommit, RouteClusters, StoredRoute } from './store/store';
import { committedRecord, partitionKey, sameCommitted, type Assignment, type CommittedOffset, type LoadReport, type PartitionAssignment, type ReportedGap, type WorkerInfo } from './wire';

type ZkClient = InstanceType<typeof ZooKeeper>;

const C = ZooKeeper.constants;
/** our own code for "the session this call was issued on ended before it answered" (never a ZooKeeper code) */
const SESSION_GONE = -10_000;
/** the format version written into every record */
const FORMAT = 1;
/**
 * ZooKeeper refuses a request larger than jute.maxbuffer (1 MiB by default) by dropping the connection, which a
 * client would retry forever; refuse it here instead, with the path and the size.
 */
const MAX_NODE_BYTES = 1_000_000;

/** Codes after which the same call may succeed on a reconnected or a new session. */
const RETRIABLE = new Set<number>([
  C.ZCONNECTIONLOSS,
  C.ZOPERATIONTIMEOUT,
  C.ZSESSIONEXPIRED,
  C.ZSESSIONMOVED,
  C.ZINVALIDSTATE,
  C.ZCLOSING,
  SESSION_GONE,
]);

const CODE_NAMES = new Map<number, string>(
  Object.entries(C)
    .filter(([name, value]) => /^Z[A-Z]+$/.test(name) && typeof value === 'number')
    .map(([name, value]) => [value as number, name]),
);

function codeName(rc: number): string {
  return rc === SESSION_GONE ? 'SESSION_GONE' : (CODE_NAMES.get(rc) ?? 'UNKNOWN');
}

/** What the sealing protocol reads of a fresh node's Stat. */
interface SealStat {
  version: number;
  aversion: number;
  numChildren: number;
}

/** The part of a znode Stat this store reads (the binding builds it in createStatObject). */
interface NodeStat {
  version: number;
  czxid: number;
  /** hex session id ('0' for a persistent node) */
  ephemeralOwner: string;
}

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

/** A ZooKeeper ACL entry as the binding takes and gives it (`perms` on read; `perm` on write: helper.js maps it). */
interface AclEntry {
  perms: number;
  scheme: string;
  auth: string;
}

/** The id a digest ACL names for `user:password`: `user:base64(sha1("user:password"))` (DigestAuthenticationProvider). */
export function digestId(credentials: string): string {
  const user = credentials.slice(0, credentials.indexOf(':'));
  return `${user}:${createHash('sha1').update(credentials, 'utf8').digest('base64')}`;
}

/** `user` of `user:password` (safe to log) */
function digestUser(credentials: string): string {
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

interface FilledOptions {
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

/** One ZooKeeper session: a client handle from the moment it is created until it is closed or expires. */
class Session {
  /** hex session id, known once connected */
  id = '';
  /** negotiated session timeout, ms */
  timeoutMs = 0;
  /** set before we close the handle ourselves, so its 'close' event is not taken for an expiry */
  closing = false;
  ended = false;
  /** calls issued on this session that have not answered yet; each fails with SESSION_GONE when the session ends */
  readonly pending = new Set<() => void>();

  constructor(readonly zk: ZkClient) {}
}

/** Runs `fn`; a trigger while it runs makes it run once more afterwards, so runs never overlap and none is lost. */
class Rerun {
  private running: Promise<void> | undefined;
  private dirty = false;
  /** the error that ended the last run, if it failed */
  lastError: unknown;

  constructor(
    private readonly fn: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
  ) {}

  trigger(): Promise<void> {
    if (this.running) {
      this.dirty = true;
      return this.running;
    }
    this.running = (async () => {
      this.lastError = undefined;
      try {
        do {
          this.dirty = false;
          await this.fn();
        } while (this.dirty);
      } catch (e) {
        this.lastError = e;
        this.onError(e);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** resolves when no run is in progress */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

interface Watch {
  active: boolean;
  /** what was last delivered; RESET forces the next read to be delivered */
  last: string | symbol;
  job: Rerun;
}

interface Campaign {
  id: string;
  /** tells this campaign's leader record from another campaign of the same session */
  token: string;
  cb: LeaderCallbacks;
  active: boolean;
  leader: boolean;
  /** grows by one each time this campaign is elected: a leader's writes belong to one term (see `leaderGuard`) */
  term: number;
  job: Rerun;
}

/** Checks, before each attempt of a call, that the call may still run on this session (throws if not). */
type SessionGuard = (s: Session) => void;

const RESET = Symbol('reset');

const packr = new Packr({ useRecords: false });

function encode(fields: Record<string, unknown>): Buffer {
  return packr.pack({ v: FORMAT, ...fields });
}

function badRecord(path: string, why: string, cause?: unknown): StraitError {
  return new StraitError('STRAIT_STORE', `the ZooKeeper record ${path} is unreadable: ${why}`, { cause });
}

/** Unpacks a record; any format version >= 1 is accepted (newer writers only add fields). */
function decode(data: Buffer | null, path: string): Record<string, unknown> {
  if (!data || data.length === 0) throw badRecord(path, 'it is empty');
  let r: unknown;
  try {
    r = packr.unpack(data);
  } catch (e) {
    throw badRecord(path, 'it is not msgpack', e);
  }
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw badRecord(path, 'it is not a msgpack map');
  const v = (r as Record<string, unknown>).v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw badRecord(path, "it has no format version field 'v'");
  return r as Record<string, unknown>;
}

function num(r: Record<string, unknown>, key: string, path: string): number {
  const x = r[key];
  if (typeof x !== 'number' || !Number.isFinite(x)) throw badRecord(path, `field '${key}' is not a number`);
  return x;
}

function str(r: Record<string, unknown>, key: string, path: string): string {
  const x = r[key];
  if (typeof x !== 'string') throw badRecord(path, `field '${key}' is not a string`);
  return x;
}

function decodeWorker(data: Buffer | null, path: string, session: string): WorkerInfo {
  const r = decode(data, path);
  return {
    session,
    id: str(r, 'id', path),
    host: str(r, 'host', path),
    pid: num(r, 'pid', path),
    threads: num(r, 'threads', path),
    version: str(r, 'version', path),
    startedAt: str(r, 'startedAt', path),
  };
}

/** The most an assignment's compressed body may inflate to (a tampered node must not exhaust memory). */
const MAX_INFLATED_BYTES = 256 * 1024 * 1024;

/**
 * An assignment record. Over ZooKeeper's node limit (about 9,000 partitions of one worker), its partitions and routes
 * go deflated in `z` (topic and route names repeat, so it shrinks ~10x); below it the record stays plain, so a
 * worker of an older version reads every assignment it could read before.
 */
function encodeAssignment(a: Assignment): Buffer {
  const plain = encode({ ...a });
  if (plain.length <= MAX_NODE_BYTES) return plain;
  const { partitions, routes, ...rest } = a;
  return encode({ ...rest, z: deflateRawSync(packr.pack({ partitions, ...(routes ? { routes } : {}) })) });
}

function decodeAssignment(data: Buffer | null, path: string): Assignment {
  let r = decode(data, path);
  if (r.z !== undefined) {
    if (!Buffer.isBuffer(r.z) && !(r.z instanceof Uint8Array)) throw badRecord(path, "field 'z' is not bytes");
    let body: unknown;
    try {
      body = packr.unpack(inflateRawSync(r.z, { maxOutputLength: MAX_INFLATED_BYTES }));
    } catch (e) {
      throw badRecord(path, "field 'z' does not inflate to a msgpack map", e);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRecord(path, "field 'z' is not a msgpack map");
    r = { ...r, ...(body as Record<string, unknown>) };
  }
  const parts = r.partitions;
  if (!Array.isArray(parts)) throw badRecord(path, "field 'partitions' is not a list");
  const partitions: PartitionAssignment[] = parts.map((p: unknown, i) => {
    if (typeof p !== 'object' || p === null) throw badRecord(path, `partitions[${i}] is not a map`);
    const q = p as Record<string, unknown>;
    const at = `${path} partitions[${i}]`;
    return {
      route: str(q, 'route', at),
      topic: str(q, 'topic', at),
      partition: num(q, 'partition', at),
      targetTopic: str(q, 'targetTopic', at),
      compression: str(q, 'compression', at),
      epoch: num(q, 'epoch', at),
    };
  });
  const routes = r.routes === undefined ? undefined : decodeRouteList(r.routes, `${path} routes`);
  return { worker: str(r, 'worker', path), version: num(r, 'version', path), partitions, ...(routes ? { routes } : {}) };
}

/** A route definition as the controller validated it; only the fields every reader relies on are checked. */
function decodeRouteConfig(x: unknown, at: string): RouteConfig {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw badRecord(at, 'the route is not a map');
  const q = x as Record<string, unknown>;
  for (const k of ['name', 'source', 'target']) str(q, k, at);
  return q as unknown as RouteConfig;
}

function decodeRouteList(x: unknown, at: string): RouteConfig[] {
  if (!Array.isArray(x)) throw badRecord(at, 'it is not a list');
  return x.map((r, i) => decodeRouteConfig(r, `${at}[${i}]`));
}

function decodeStoredRoute(data: Buffer | null, path: string): StoredRoute {
  const r = decode(data, path);
  return { route: decodeRouteConfig(r.route, `${path} route`), revision: num(r, 'revision', path), updatedAt: str(r, 'updatedAt', path) };
}

/**
 * numbers per partition in a report record: partition, bytes/s, records/s, lag, errored (0: no; 1: yes, code not
 * known; 2 + i: yes, with the i-th of REPORTED_CODES)
 */
const REPORT_FIELDS = 5;

/**
 * A load report is one znode per worker (1 MB at most), so it is packed: `routes: {route: {topic: [partition,
 * bytesPerSec, recordsPerSec, lag, errored, partition, ...]}}`, rates rounded to whole numbers — about 15 bytes a
 * partition, room for some 60,000 partitions on one worker.
 */
const REPORTED_CODES = Object.keys(PARTITION_ERROR_CODES);

function encodeErrored(p: LoadReport['partitions'][number]): number {
  if (!p.errored) return 0;
  const i = p.errorCode === undefined ? -1 : REPORTED_CODES.indexOf(p.errorCode);
  return i < 0 ? 1 : 2 + i;
}

function encodeReport(r: LoadReport): Buffer {
  const routes: Record<string, Record<string, number[]>> = {};
  for (const p of r.partitions) {
    const topics = (routes[p.route] ??= {});
    (topics[p.topic] ??= []).push(p.partition, Math.round(p.bytesPerSec), Math.round(p.recordsPerSec), Math.round(p.lag), encodeErrored(p));
  }
  return encode({ worker: r.worker, at: r.at, windowMs: r.windowMs, routes, ...(r.gaps && r.gaps.length > 0 ? { gaps: r.gaps } : {}) });
}

/** A report's gaps: each kept only if it has the fields a reader shows (a newer writer may add more). */
function decodeGaps(x: unknown, path: string): ReportedGap[] {
  if (x === undefined) return [];
  if (!Array.isArray(x)) throw badRecord(path, "field 'gaps' is not a list");
  return x.flatMap((g: unknown, i) => {
    if (typeof g !== 'object' || g === null) throw badRecord(path, `gaps[${i}] is not a map`);
    const q = g as Record<string, unknown>;
    const at = `${path} gaps[${i}]`;
    const reason = str(q, 'reason', at);
    if (!isGapReason(reason)) return [];
    return [{ route: str(q, 'route', at), topic: str(q, 'topic', at), partition: num(q, 'partition', at), reason, from: num(q, 'from', at), to: num(q, 'to', at), skipped: num(q, 'skipped', at), stopped: q.stopped === true, at: str(q, 'at', at) }];
  });
}

function decodeReport(data: Buffer | null, path: string): LoadReport {
  const r = decode(data, path);
  const routes = r.routes;
  if (typeof routes !== 'object' || routes === null) throw badRecord(path, "field 'routes' is not a map");
  const partitions: LoadReport['partitions'] = [];
  for (const [route, topics] of Object.entries(routes as Record<string, unknown>)) {
    if (typeof topics !== 'object' || topics === null) throw badRecord(path, `routes.${route} is not a map`);
    for (const [topic, rows] of Object.entries(topics as Record<string, unknown>)) {
      if (!Array.isArray(rows) || rows.length % REPORT_FIELDS !== 0 || !rows.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw badRecord(path, `routes.${route}.${topic} is not a list of ${REPORT_FIELDS} numbers per partition`);
      }
      for (let i = 0; i < rows.length; i += REPORT_FIELDS) {
        const [partition, bytesPerSec, recordsPerSec, lag, errored] = rows.slice(i, i + REPORT_FIELDS) as number[];
        const code = errored! >= 2 ? REPORTED_CODES[errored! - 2] : undefined;
        partitions.push({ route, topic, partition: partition!, bytesPerSec: bytesPerSec!, recordsPerSec: recordsPerSec!, lag: lag!, errored: errored! >= 1, ...(code !== undefined ? { errorCode: code } : {}) });
      }
    }
  }
  const gaps = decodeGaps(r.gaps, path);
  return { worker: str(r, 'worker', path), at: num(r, 'at', path), windowMs: num(r, 'windowMs', path), partitions, ...(gaps.length > 0 ? { gaps } : {}) };
}

/**
 * `offset` is optional so that a record that only carries an epoch (a newer writer's fence) still reads; `topicId` and
 * `leaderEpoch` are absent from records older workers wrote.
 */
function decodeOffset(data: Buffer | null, path: string): Omit<CommittedOffset, 'offset'> & { offset: number | undefined } {
  const r = decode(data, path);
  return {
    offset: r.offset === undefined ? undefined : num(r, 'offset', path),
    epoch: num(r, 'epoch', path),
    ...(r.topicId !== undefined ? { topicId: str(r, 'topicId', path) } : {}),
    ...(r.leaderEpoch !== undefined ? { leaderEpoch: num(r, 'leaderEpoch', path) } : {}),
  };
}

/** A znode name for any string: URI-encoded, with '.' and '..' (not allowed as znode names) spelled out. */
function segment(name: string, what: string): string {
  if (name.length === 0) throw new StraitError('STRAIT_STORE', `${what} must not be empty`, { field: what });
  if (name === '.') return '%2E';
  if (name === '..') return '%2E%2E';
  try {
    return encodeURIComponent(name);
  } catch (e) {
    throw new StraitError('STRAIT_STORE', `${what} '${name}' is not valid Unicode`, { field: what, cause: e });
  }
}

function unsegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

export class ZooKeeperStore implements CoordinationStore {
  /** counters for operators (and tests): how often a versioned write lost a race and was retried, sessions opened */
  readonly stats = { versionConflicts: 0, sessions: 0, sessionsLost: 0, tamperedNodes: 0, aclsReconciled: 0 };

  private readonly opts: FilledOptions;
  private readonly base: string;
  private current: Session | undefined;
  private state: 'connected' | 'disconnected' | 'lost' | 'closed' = 'lost';
  private closed = false;
  private lostTimer: NodeJS.Timeout | undefined;
  /** ids of this process's earlier sessions: a node one of them still holds is ours to replace */
  private readonly previousSessions = new Set<string>();
  /** ephemeral nodes this process keeps (worker registrations): path -> data, created again on a new session */
  private readonly ephemerals = new Map<string, Buffer>();
  private readonly watches = new Set<Watch>();
  private readonly campaigns = new Set<Campaign>();
  private readonly lostCallbacks = new Set<() => void>();
  private readonly restoredCallbacks = new Set<() => void>();
  /** wake-ups for calls waiting on a session or backing off; close() and every session change run them */
  private readonly waiters = new Set<() => void>();
  /** persistent paths known to exist, so commits do not re-create parents */
  private readonly knownPaths = new Set<string>();
  /** the ACL of every node this store creates (auth configured), else undefined (world-open) */
  private readonly acl: AclEntry[] | undefined;
  /** persistent nodes this process created empty and has not filled yet (a retry after a lost answer takes them over) */
  private readonly placeholders = new Set<string>();
  /** paths this process is creating right now, with how many creations of each run (only a lone one takes over) */
  private readonly creating = new Map<string, number>();

  private constructor(opts: ZooKeeperStoreOptions) {
    const root = (opts.root ?? '/strait').replace(/\/+$/, '');
    if (!root.startsWith('/')) throw new StraitError('STRAIT_STORE', `the ZooKeeper root '${opts.root}' must start with '/'`, { field: 'store.root' });
    this.opts = {
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
    this.base = `${root}/${segment(opts.deployment, 'deployment')}`;
    const auth = opts.auth;
    if (auth) {
      if (auth.scheme !== 'digest') throw new StraitError('STRAIT_STORE', `store.auth.scheme '${String(auth.scheme)}' is not supported; allowed: digest`, { field: 'store.auth.scheme' });
      if (!/^[^:]+:.+$/s.test(auth.credentials)) throw new StraitError('STRAIT_STORE', "store.auth.credentials must be 'user:password' (the value is not shown)", { field: 'store.auth.credentials' });
      const ids = [digestId(auth.credentials), ...(auth.alsoGrant ?? [])];
      this.acl = [...new Set(ids)].map((id) => ({ perms: C.ZOO_PERM_ALL, scheme: 'digest', auth: id }));
    }
  }

  /**
   * Opens a session (StraitError STRAIT_STORE naming the connect string if none comes within connectTimeoutMs) and
   * creates the deployment's folders.
   */
  static async connect(opts: ZooKeeperStoreOptions): Promise<ZooKeeperStore> {
    const store = new ZooKeeperStore(opts);
    store.adopt(await store.openSession());
    try {
      for (const dir of ['workers', 'assignments', 'offsets', 'managed', 'clusters', 'controller', 'reports', 'routes']) await store.ensurePath(`${store.base}/${dir}`);
      if (store.acl && store.opts.reconcileAcls) await store.reconcileAcls();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  /** the current session's id (hex), if there is one */
  get sessionId(): string | undefined {
    return this.current?.id || undefined;
  }

  /**
   * The current session's id and password (hex), e.g. for an operator tool or a test that takes the session over
   * and closes it, which expires it for real.
   */
  sessionCredentials(): { id: string; password: string } | undefined {
    const s = this.current;
    return s?.id ? { id: s.id, password: String(s.zk.client_password) } : undefined;
  }

  // ---- paths

  private workerPath(id: string): string {
    return `${this.base}/workers/${segment(id, 'worker id')}`;
  }

  private assignmentPath(worker: string): string {
    return `${this.base}/assignments/${segment(worker, 'worker id')}`;
  }

  private offsetsRoute(route: string): string {
    return `${this.base}/offsets/${segment(route, 'route')}`;
  }

  private offsetPath(route: string, topic: string, partition: number): string {
    if (!Number.isInteger(partition) || partition < 0) throw new StraitError('STRAIT_STORE', `partition ${partition} of ${topic} is not a partition number`, { field: 'partition' });
    return `${this.offsetsRoute(route)}/${segment(topic, 'topic')}/${partition}`;
  }

  private reportPath(worker: string): string {
    return `${this.base}/reports/${segment(worker, 'worker id')}`;
  }

  private get leaderPath(): string {
    return `${this.base}/controller/leader`;
  }

  // ---- sessions

  private openSession(): Promise<Session> {
    const { connect, sessionTimeoutMs, connectTimeoutMs, clientLogLevel } = this.opts;
    const zk = new ZooKeeper({
      connect,
      timeout: sessionTimeoutMs,
      debug_level: clientLogLevel,
      host_order_deterministic: false,
      // The binding closes the handle as if the session expired after this many socket wake-ups in a row that did
      // not complete a response (node-zk.cpp zk_io_cb; default 10). A response of a few hundred KB arrives in more
      // pieces than that, so large reads would look like expiries; real connection loss is the C client's to detect.
      response_counter_limit: 2 ** 31 - 1,
    });
    const s = new Session(zk);
    return new Promise<Session>((resolve, reject) => {
      let opened = false;
      const fail = (e: StraitError) => {
        clearTimeout(timer);
        this.endSession(s);
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new StraitError('STRAIT_STORE', `no ZooKeeper session with ${connect} within ${connectTimeoutMs} ms (is ZooKeeper running and reachable there?)`, { retriable: true })),
        connectTimeoutMs,
      );
      // with auth, the session is handed out only once the server took the credentials: no request of ours may run
      // as world:anyone (the C client sends add_auth first and again on every reconnect of this handle)
      let authed = this.opts.auth === undefined;
      const ready = () => {
        if (!opened || !authed || s.ended) return;
        clearTimeout(timer);
        if (this.closed) return fail(new StraitError('STRAIT_STORE', 'the ZooKeeper store was closed'));
        resolve(s);
      };
      zk.on('connect', () => {
        if (opened) return this.sessionEvent(s, 'connect');
        opened = true;
        s.id = String(zk.client_id);
        s.timeoutMs = Number(zk.timeout) > 0 ? Number(zk.timeout) : sessionTimeoutMs;
        ready();
      });
      zk.on('connecting', () => this.sessionEvent(s, 'connecting'));
      zk.on('close', (_zk: unknown, code: number) => {
        if (s.closing) return;
        if (!opened) {
          fail(new StraitError('STRAIT_STORE', `ZooKeeper at ${connect} ended the session before it started: ${codeName(code)} (${code})`, { retriable: code !== C.ZOO_AUTH_FAILED_STATE }));
          return;
        }
        this.sessionEvent(s, 'close', code);
      });
      try {
        zk.init({});
        const auth = this.opts.auth;
        if (auth) {
          const rc = zk.add_auth(auth.scheme, auth.credentials, (code: number) => {
            if (code !== C.ZOK) {
              fail(new StraitError('STRAIT_STORE', `ZooKeeper at ${connect} refused the store.auth credentials of user '${digestUser(auth.credentials)}': ${codeName(code)} (${code})`, { field: 'store.auth.credentials', retriable: RETRIABLE.has(code) }));
              return;
            }
            authed = true;
            ready();
          }) as unknown;
          if (typeof rc === 'number' && rc !== C.ZOK) throw new Error(`add_auth: ${codeName(rc)} (${rc})`);
        }
      } catch (e) {
        fail(new StraitError('STRAIT_STORE', `cannot start a ZooKeeper client for ${connect}: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  private adopt(s: Session): void {
    this.current = s;
    this.state = 'connected';
    this.stats.sessions++;
    this.opts.log?.info({ zookeeper: this.opts.connect, session: s.id, timeoutMs: s.timeoutMs }, 'ZooKeeper session open');
    this.wake();
  }

  /** Ends a session's handle: its pending calls fail with SESSION_GONE (their callers retry elsewhere). */
  private endSession(s: Session): void {
    if (s.ended) return;
    s.closing = true;
    s.ended = true;
    for (const fail of [...s.pending]) fail();
    s.pending.clear();
    // closes the session on the server when connected (its ephemeral nodes go at once); a no-op on a closed handle
    s.zk.close();
  }

  private sessionEvent(s: Session, event: 'connect' | 'connecting' | 'close', code?: number): void {
    if (s !== this.current || this.closed) return;
    if (event === 'connecting') {
      if (this.state !== 'connected') return;
      this.state = 'disconnected';
      const limit = this.opts.lostAfterDisconnectMs ?? s.timeoutMs;
      this.opts.log?.warn({ zookeeper: this.opts.connect, session: s.id, lostAfterMs: limit }, 'disconnected from ZooKeeper; reconnecting');
      clearTimeout(this.lostTimer);
      this.lostTimer = setTimeout(() => {
        if (s === this.current && this.state === 'disconnected') this.sessionLost(`disconnected for ${limit} ms`);
      }, limit);
      this.lostTimer.unref();
    } else if (event === 'connect') {
      clearTimeout(this.lostTimer);
      if (this.state === 'disconnected') this.opts.log?.info({ zookeeper: this.opts.connect, session: s.id }, 'reconnected to ZooKeeper; session kept');
      this.state = 'connected';
      this.wake();
    } else {
      this.sessionLost(code === C.ZOO_EXPIRED_SESSION_STATE ? 'the session expired' : `the client closed: ${codeName(code ?? 0)} (${code})`);
    }
  }

  private sessionLost(reason: string): void {
    const s = this.current;
    if (!s || this.closed) return;
    this.current = undefined;
    this.state = 'lost';
    this.stats.sessionsLost++;
    clearTimeout(this.lostTimer);
    if (s.id) this.previousSessions.add(s.id);
    this.opts.log?.error({ zookeeper: this.opts.connect, session: s.id, reason }, 'ZooKeeper session lost; stopping ownership and opening a new session');
    // first of all: whoever acted on this session stops
    for (const c of this.campaigns) {
      if (!c.leader) continue;
      c.leader = false;
      this.safely(() => c.cb.lost(), 'leader lost callback');
    }
    for (const cb of [...this.lostCallbacks]) this.safely(cb, 'session lost callback');
    this.endSession(s);
    this.wake();
    // the binding may be inside its own event dispatch here; build the next client from a clean stack
    setImmediate(() => void this.reconnect());
  }

  private async reconnect(): Promise<void> {
    let delay = 200;
    while (!this.closed && !this.current) {
      try {
        const s = await this.openSession();
        if (this.closed) {
          this.endSession(s);
          return;
        }
        this.adopt(s);
        await this.restore(s);
        return;
      } catch (e) {
        if (this.closed) return;
        this.opts.log?.warn({ zookeeper: this.opts.connect, err: (e as Error).message }, 'cannot open a ZooKeeper session yet; retrying');
        await this.wait(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  /** After a new session: ephemeral nodes again, campaigns again, watches re-armed (each delivers), then callbacks. */
  private async restore(s: Session): Promise<void> {
    for (;;) {
      if (s !== this.current || this.closed) return;
      try {
        for (const [path, data] of this.ephemerals) await this.createEphemeral(path, data, 'worker');
        for (const c of this.campaigns) void c.job.trigger();
        const rearms: Promise<void>[] = [];
        for (const w of this.watches) {
          w.last = RESET;
          rearms.push(w.job.trigger());
        }
        await Promise.all(rearms);
        break;
      } catch (e) {
        if (s !== this.current || this.closed) return;
        this.opts.log?.error({ err: (e as Error).message }, 'restoring registrations on the new ZooKeeper session failed; retrying');
        await this.wait(1000);
      }
    }
    if (s !== this.current || this.closed) return;
    this.opts.log?.info({ zookeeper: this.opts.connect, session: s.id }, 'ZooKeeper session restored');
    for (const cb of [...this.restoredCallbacks]) this.safely(cb, 'session restored callback');
  }

  private safely(fn: () => void, what: string): void {
    try {
      fn();
    } catch (e) {
      this.opts.log?.error({ err: (e as Error).message }, `${what} threw`);
    }
  }

  /** Resolves after `ms`, or earlier on any session change or close. */
  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private closedError(): StraitError {
    return new StraitError('STRAIT_STORE', `the ZooKeeper store for ${this.opts.connect} is closed`);
  }

  private async liveSession(deadline: number): Promise<Session> {
    for (;;) {
      if (this.closed) throw this.closedError();
      if (this.state === 'connected' && this.current) return this.current;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new StraitError('STRAIT_STORE', `no ZooKeeper session with ${this.opts.connect} for ${this.opts.operationTimeoutMs} ms`, { retriable: true });
      }
      await this.wait(left);
    }
  }

  // ---- calls

  /** Issues one call on one session; never throws for a ZooKeeper code (rc), only for a call the binding refused. */
  private issue<T>(s: Session, start: (zk: ZkClient, done: (rc: number, value?: T) => void) => unknown): Promise<{ rc: number; value: T | undefined }> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (rc: number, value?: T) => {
        if (settled) return;
        settled = true;
        s.pending.delete(gone);
        resolve({ rc, value });
      };
      const gone = () => finish(SESSION_GONE);
      if (s.ended) return gone();
      s.pending.add(gone);
      let rc: unknown;
      try {
        rc = start(s.zk, finish);
      } catch {
        rc = C.ZBADARGUMENTS;
      }
      if (typeof rc === 'number' && rc !== C.ZOK) finish(rc);
    });
  }

  /**
   * Runs a call on the live session, retrying through disconnections and session changes until the operation
   * deadline. Returns on ZOK or on a code in `accept`; throws StraitError otherwise.
   */
  private async call<T>(
    op: string,
    path: string,
    start: (zk: ZkClient, done: (rc: number, value?: T) => void, s: Session) => unknown,
    accept: readonly number[] = [],
    guard?: SessionGuard,
  ): Promise<{ rc: number; value: T | undefined }> {
    const deadline = Date.now() + this.opts.operationTimeoutMs;
    for (;;) {
      const s = await this.liveSession(deadline);
      guard?.(s);
      const r = await this.issue<T>(s, (zk, done) => start(zk, done, s));
      if (r.rc === C.ZOK || accept.includes(r.rc)) return r;
      if (this.closed) throw this.closedError();
      const retriable = RETRIABLE.has(r.rc);
      if (!retriable || Date.now() >= deadline) {
        const auth = this.opts.auth;
        const hint =
          r.rc !== C.ZNOAUTH ? '' : auth ? `: the identity of store.auth (user '${digestUser(auth.credentials)}') has no access there (wrong credentials, or the node belongs to another identity)` : ': the node has an ACL; set store.auth';
        throw new StraitError('STRAIT_STORE', `ZooKeeper ${op} ${path} on ${this.opts.connect} failed: ${codeName(r.rc)} (${r.rc})${hint}`, { retriable, ...(r.rc === C.ZNOAUTH ? { field: 'store.auth' } : {}) });
      }
      await this.wait(Math.min(100, deadline - Date.now()));
    }
  }

  /** A record node; an empty one (being made by the sealing protocol, see the top) reads as absent. */
  private async getNode(path: string): Promise<{ stat: NodeStat; data: Buffer | null } | undefined> {
    const node = await this.getRaw(path);
    return node && node.data && node.data.length > 0 ? node : undefined;
  }

  private async getRaw(path: string): Promise<{ stat: NodeStat; data: Buffer | null } | undefined> {
    const r = await this.call<{ stat: NodeStat; data: Buffer | null }>('get', path, (zk, done) =>
      zk.a_get(path, false, (rc, _e, stat, data) => done(rc, { stat: stat as unknown as NodeStat, data: (data as Buffer | null) ?? null })),
      [C.ZNONODE],
    );
    return r.rc === C.ZOK ? r.value : undefined;
  }

  private async children(path: string): Promise<string[]> {
    const r = await this.call<string[]>('get children', path, (zk, done) => zk.a_get_children(path, false, (rc, _e, ch) => done(rc, ch)), [C.ZNONODE]);
    return r.rc === C.ZOK ? (r.value ?? []) : [];
  }

  /** exists() that leaves a watch (also on a missing node, for its creation); `onEvent` runs for node events only */
  private async existsWatch(path: string, onEvent: () => void): Promise<NodeStat | undefined> {
    const r = await this.call<NodeStat>('exists', path, (zk, done, s) =>
      zk.aw_exists(path, this.watcher(s, onEvent), (rc, _e, stat) => done(rc, stat as unknown as NodeStat)),
      [C.ZNONODE],
    );
    return r.rc === C.ZOK ? r.value : undefined;
  }

  /** get() that leaves a data watch on an existing node (a missing one leaves none: ZooKeeper's rule) */
  private async getWatch(path: string, onEvent: () => void): Promise<{ stat: NodeStat; data: Buffer | null } | undefined> {
    const r = await this.call<{ stat: NodeStat; data: Buffer | null }>('get', path, (zk, done, s) =>
      zk.aw_get(path, this.watcher(s, onEvent), (rc, _e, stat, data) => done(rc, { stat: stat as unknown as NodeStat, data: (data as Buffer | null) ?? null })),
      [C.ZNONODE],
    );
    // an empty node is still being made: absent for now; the data watch left on it fires when it is filled
    return r.rc === C.ZOK && r.value?.data && r.value.data.length > 0 ? r.value : undefined;
  }

  private async childrenWatch(path: string, onEvent: () => void): Promise<string[]> {
    const r = await this.call<string[]>('get children', path, (zk, done, s) =>
      zk.aw_get_children(path, this.watcher(s, onEvent), (rc, _e, ch) => done(rc, ch)),
      [C.ZNONODE],
    );
    return r.rc === C.ZOK ? (r.value ?? []) : [];
  }

  /**
   * The C client also hands every watcher the session's state changes (type ZOO_SESSION_EVENT) without consuming
   * the watch; only node events (created, deleted, changed, child) mean "read again".
   */
  private watcher(s: Session, onEvent: () => void): (type: number) => void {
    return (type: number) => {
      if (type === C.ZOO_SESSION_EVENT || type === C.ZOO_NOTWATCHING_EVENT) return;
      if (s !== this.current || this.closed) return;
      onEvent();
    };
  }

  private checkSize(path: string, data: Buffer): void {
    if (data.length > MAX_NODE_BYTES) {
      throw new StraitError('STRAIT_STORE', `the record for ${path} is ${data.length} bytes, over the ${MAX_NODE_BYTES} bytes a ZooKeeper node can hold`);
    }
  }

  /** Creates a node; 'exists' if it is already there (with a record). Missing parents are created (persistent). */
  private async createNode(path: string, data: Buffer, flags: number): Promise<'created' | 'exists'> {
    this.checkSize(path, data);
    if (this.acl) return this.createSealed(path, data, flags);
    for (;;) {
      const r = await this.call<string>('create', path, (zk, done) => zk.a_create(path, data, flags, (rc, _e, p) => done(rc, p)), [C.ZNODEEXISTS, C.ZNONODE]);
      if (r.rc === C.ZOK) return 'created';
      if (r.rc === C.ZNODEEXISTS) return 'exists';
      // a parent is missing (never made, or removed by hand): make it and try again
      this.knownPaths.delete(parentOf(path));
      await this.ensurePath(parentOf(path), true);
    }
  }

  /**
   * create(empty), setACL(ACL version 0) and exists() issued back to back on one session (ZooKeeper answers one
   * session's requests in order), so the stat tells how the node looked right after it was sealed; resolves with all
   * three. Retries the group through disconnections like `call`.
   */
  private async createAndSeal(path: string, flags: number): Promise<{ created: number; sealed: number; stat: SealStat | undefined }> {
    const acl = this.acl!;
    const deadline = Date.now() + this.opts.operationTimeoutMs;
    for (;;) {
      const s = await this.liveSession(deadline);
      const [c, a, e] = await Promise.all([
        this.issue<string>(s, (zk, done) => zk.a_create(path, Buffer.alloc(0), flags, (rc, _e, p) => done(rc, p))),
        this.issue<void>(s, (zk, done) => zk.a_set_acl(path, 0, acl, (rc) => done(rc))),
        this.issue<SealStat>(s, (zk, done) => zk.a_exists(path, false, (rc, _e, stat) => done(rc, stat as unknown as SealStat))),
      ]);
      if (this.closed) throw this.closedError();
      if (c.rc === C.ZOK && a.rc === C.ZBADVERSION) {
        // Another strait process of this deployment racing to make the same folder: its pipelined setACL(0) came in
        // between our create and our setACL(0). Seal again at whatever ACL version it is now: that needs ADMIN, which
        // our own identity's ACL (a peer's seal) or a world-open one grants, and an ACL that shuts this identity out
        // does not (NOAUTH: tampered). The stat read after it still tells whether data was written meanwhile.
        const again = await this.call<void>('set ACL', path, (zk, done) => zk.a_set_acl(path, -1, acl, (rc) => done(rc)), [C.ZNOAUTH, C.ZNONODE]);
        const stat = again.rc === C.ZOK ? await this.call<SealStat>('exists', path, (zk, done) => zk.a_exists(path, false, (rc, _e, st) => done(rc, st as unknown as SealStat)), [C.ZNONODE]) : undefined;
        return { created: c.rc, sealed: again.rc, stat: stat?.rc === C.ZOK ? stat.value : undefined };
      }
      if (!RETRIABLE.has(c.rc)) return { created: c.rc, sealed: a.rc, stat: e.rc === C.ZOK ? e.value : undefined };
      if (Date.now() >= deadline) {
        throw new StraitError('STRAIT_STORE', `ZooKeeper create ${path} on ${this.opts.connect} failed: ${codeName(c.rc)} (${c.rc})`, { retriable: true });
      }
      await this.wait(Math.min(100, deadline - Date.now()));
    }
  }

  /** Why a node this process just created and sealed can not be trusted, if it can not. */
  private tamperedReason(r: { created: number; sealed: number; stat: SealStat | undefined }): string | undefined {
    if (r.created !== C.ZOK) return undefined;
    if (r.sealed !== C.ZOK) return `its ACL was changed before this process sealed it (${codeName(r.sealed)})`;
    if (!r.stat) return 'it was deleted before this process sealed it';
    if (r.stat.version !== 0) return 'its data was written before this process sealed it';
    return undefined;
  }

  /** The sealing protocol (see the top of this file): empty node, ACL at once, then the record. */
  private async createSealed(path: string, data: Buffer, flags: number): Promise<'created' | 'exists'> {
    let waitingSince: { czxid: number; at: number } | undefined;
    this.creating.set(path, (this.creating.get(path) ?? 0) + 1);
    try {
      for (;;) {
        const r = await this.createAndSeal(path, flags);
        if (r.created === C.ZNONODE) {
          this.knownPaths.delete(parentOf(path));
          await this.ensurePath(parentOf(path), true);
          continue;
        }
        if (r.created === C.ZOK) {
          if (flags === C.ZOO_PERSISTENT) this.placeholders.add(path);
          const why = this.tamperedReason(r);
          if (why) {
            await this.tampered(path, why);
            continue;
          }
          const filled = await this.fill(path, data, 0);
          if (filled !== 'retry') return filled;
          continue;
        }
        if (r.created !== C.ZNODEEXISTS) {
          throw new StraitError('STRAIT_STORE', `ZooKeeper create ${path} on ${this.opts.connect} failed: ${codeName(r.created)} (${r.created})`, { retriable: false });
        }
        // the node is there: a record (done), or an empty node someone is still filling
        const node = await this.getRaw(path);
        if (!node) continue;
        if (node.data && node.data.length > 0) return 'exists';
        const mine = this.placeholders.has(path) || (node.stat.ephemeralOwner !== '0' && node.stat.ephemeralOwner === this.current?.id);
        if (mine && this.creating.get(path) === 1) {
          // ours, from an attempt whose answers were lost: seal it (again) and fill it
          const sealed = await this.call<void>('set ACL', path, (zk, done) => zk.a_set_acl(path, -1, this.acl!, (rc) => done(rc)), [C.ZNONODE]);
          if (sealed.rc === C.ZNONODE) continue;
          const filled = await this.fill(path, data, node.stat.version);
          if (filled !== 'retry') return filled;
          continue;
        }
        if (!waitingSince || waitingSince.czxid !== node.stat.czxid) waitingSince = { czxid: node.stat.czxid, at: Date.now() };
        if (Date.now() - waitingSince.at >= this.opts.placeholderGraceMs) {
          this.opts.log?.warn({ path, graceMs: this.opts.placeholderGraceMs }, 'a ZooKeeper node stayed empty (its creator stopped half-way); deleting it and making it again');
          await this.deleteNode(path, node.stat.version);
          continue;
        }
        await this.wait(50);
      }
    } finally {
      const n = (this.creating.get(path) ?? 1) - 1;
      if (n > 0) this.creating.set(path, n);
      else this.creating.delete(path);
    }
  }

  /**
   * Writes the record into a sealed empty node; 'retry' when it must be made again. Once sealed only holders of the
   * credentials can write, so a version that moved on means another strait writer filled it: the caller reads it.
   */
  private async fill(path: string, data: Buffer, version: number): Promise<'created' | 'exists' | 'retry'> {
    const r = await this.call<NodeStat>('set', path, (zk, done) => zk.a_set(path, data, version, (rc, _e, stat) => done(rc, stat as unknown as NodeStat)), [C.ZBADVERSION, C.ZNONODE]);
    this.placeholders.delete(path);
    if (r.rc === C.ZOK) return 'created';
    // deleted under us (another writer's grace ran out): make it again
    if (r.rc === C.ZNONODE) return 'retry';
    return 'exists';
  }

  private async tampered(path: string, why: string): Promise<void> {
    this.stats.tamperedNodes++;
    this.opts.log?.error({ path, code: 'STRAIT_STORE_TAMPERED' }, `a ZooKeeper node strait had just created was changed by another client (${why}); deleting it and making it again`);
    this.placeholders.delete(path);
    await this.deleteNode(path, -1);
  }

  /** setData with an expected version: the new Stat, or undefined when the version moved on or the node is gone. */
  private async setNode(path: string, data: Buffer, version: number, guard?: SessionGuard): Promise<NodeStat | undefined> {
    this.checkSize(path, data);
    const set = (zk: ZkClient, done: (rc: number, value?: NodeStat) => void) => zk.a_set(path, data, version, (rc, _e, stat) => done(rc, stat as unknown as NodeStat));
    const r = await this.call<NodeStat>('set', path, set, [C.ZBADVERSION, C.ZNONODE], guard);
    return r.rc === C.ZOK ? r.value : undefined;
  }

  private async deleteNode(path: string, version: number, guard?: SessionGuard): Promise<boolean> {
    const r = await this.call<void>('delete', path, (zk, done) => zk.a_delete_(path, version, (rc) => done(rc)), [C.ZBADVERSION, C.ZNONODE], guard);
    return r.rc === C.ZOK;
  }

  /**
   * Creates `path` and its parents as persistent nodes (NODEEXISTS from a racing creator is fine). With auth, each
   * folder made here is sealed in the same pipelined step; one that exists already and still has the open ACL of
   * version 0 (made before auth was configured) is sealed by the same request.
   */
  private async ensurePath(path: string, force = false): Promise<void> {
    if (!force && this.knownPaths.has(path)) return;
    let at = '';
    for (const part of path.split('/').slice(1)) {
      at += `/${part}`;
      if (!force && this.knownPaths.has(at)) continue;
      const here = at;
      if (this.acl) {
        const r = await this.createAndSeal(here, C.ZOO_PERSISTENT);
        const why = this.tamperedReason(r);
        if (why || (r.created === C.ZOK && r.stat && r.stat.numChildren > 0)) await this.checkFreshFolder(here, why);
        if (r.created !== C.ZOK && r.created !== C.ZNODEEXISTS) {
          throw new StraitError('STRAIT_STORE', `ZooKeeper create ${here} on ${this.opts.connect} failed: ${codeName(r.created)} (${r.created})`);
        }
        this.knownPaths.add(here);
        continue;
      }
      const r = await this.call<string>('create', here, (zk, done) => zk.a_create(here, Buffer.alloc(0), C.ZOO_PERSISTENT, (rc, _e, p) => done(rc, p)), [C.ZNODEEXISTS]);
      if (r.rc === C.ZOK || r.rc === C.ZNODEEXISTS) this.knownPaths.add(here);
    }
  }

  /**
   * A folder this process just made had children (or a changed ACL) by the time it was sealed. A child made by
   * another strait process is sealed by that process's own pipelined request at once; one still unsealed (ACL
   * version 0) a moment later, or one this identity can not read, was made by someone without the credentials and is
   * deleted (this process holds DELETE on the folder). A folder whose ACL was changed can not be trusted at all.
   */
  private async checkFreshFolder(path: string, why: string | undefined): Promise<void> {
    if (why && why !== 'its data was written before this process sealed it') {
      this.stats.tamperedNodes++;
      throw new StraitError('STRAIT_STORE', `the ZooKeeper node ${path} was changed by another client while strait created it (${why}); remove it and start again`);
    }
    await this.wait(200);
    for (const child of await this.children(path)) {
      const at = `${path}/${child}`;
      const r = await this.call<SealStat>('get', at, (zk, done) => zk.a_get(at, false, (rc, _e, stat) => done(rc, stat as unknown as SealStat)), [C.ZNONODE, C.ZNOAUTH]);
      if (r.rc === C.ZNONODE || (r.rc === C.ZOK && r.value && r.value.aversion > 0)) continue;
      this.stats.tamperedNodes++;
      this.opts.log?.error({ path: at, code: 'STRAIT_STORE_TAMPERED' }, 'an unsealed ZooKeeper node appeared in a folder strait had just created; deleting it');
      await this.deleteNode(at, -1);
    }
  }

  /**
   * Sets the configured ACL on every node of the deployment and on the root folders above it (those this identity
   * may administer), so a tree made before auth was configured, or before a rotation changed `alsoGrant`, is closed
   * and handed over. It writes every node (one setACL each, ~10k nodes in about a second or two): the binding can not
   * read an ACL safely — its getACL callback dereferences a null ACL list when the server answers with an error
   * (node-zk.cpp acl_completion -> deallocate_ACL_vector(NULL)), and a node may vanish or be closed to us between
   * listing and reading. A node this identity may not change is reported.
   */
  async reconcileAcls(): Promise<{ nodes: number; changed: number; refused: string[] }> {
    const want = this.acl;
    const result = { nodes: 0, changed: 0, refused: [] as string[] };
    if (!want) return result;
    const seal = async (path: string, above: boolean): Promise<void> => {
      const r = await this.call<void>('set ACL', path, (zk, done) => zk.a_set_acl(path, -1, want, (rc) => done(rc)), [C.ZNONODE, C.ZNOAUTH]);
      if (r.rc === C.ZNONODE) return;
      result.nodes++;
      if (r.rc === C.ZOK) result.changed++;
      // a root folder above the deployment that another identity holds (a shared root) is theirs to keep
      else if (!above) result.refused.push(path);
    };
    const walk = async (path: string): Promise<void> => {
      await seal(path, false);
      const kids = await this.children(path).catch(() => [] as string[]);
      // bounded: a deployment holds a node per partition under offsets/
      for (let i = 0; i < kids.length; i += 64) await Promise.all(kids.slice(i, i + 64).map((k) => walk(`${path}/${k}`)));
    };
    const parts = this.base.split('/').slice(1);
    for (let i = 1; i < parts.length; i++) await seal(`/${parts.slice(0, i).join('/')}`, true);
    await walk(this.base);
    this.stats.aclsReconciled += result.changed;
    this.opts.log?.[result.refused.length > 0 ? 'error' : 'info'](
      { nodes: result.nodes, sealed: result.changed, refused: result.refused.slice(0, 20) },
      result.refused.length > 0 ? 'some ZooKeeper nodes of this deployment can not be changed with store.auth (another identity holds them)' : 'ZooKeeper ACLs of this deployment set to store.auth',
    );
    return result;
  }

  /**
   * Creates an ephemeral node owned by the current session. A node of the same name held by one of this process's
   * earlier sessions is replaced; one held by another session (a previous incarnation that has not expired yet)
   * is waited for, up to staleNodeWaitMs, then reported.
   */
  private async createEphemeral(path: string, data: Buffer, what: string): Promise<void> {
    const deadline = Date.now() + this.opts.staleNodeWaitMs;
    for (;;) {
      if (this.closed) throw this.closedError();
      if ((await this.createNode(path, data, C.ZOO_EPHEMERAL)) === 'created') return;
      const node = await this.getNode(path);
      if (!node) continue;
      const owner = node.stat.ephemeralOwner;
      if (owner === this.current?.id) {
        // created by an earlier try whose answer was lost, or registered before: make the data current
        if (await this.setNode(path, data, node.stat.version)) return;
        continue;
      }
      if (this.previousSessions.has(owner)) {
        await this.deleteNode(path, node.stat.version);
        continue;
      }
      if (owner === '0') throw new StraitError('STRAIT_STORE', `${path} is a persistent node; a ${what} registration must be ephemeral (remove it by hand)`);
      if (Date.now() >= deadline) {
        throw new StraitError('STRAIT_STORE', `the ${what} node ${path} is held by another live ZooKeeper session (0x${owner}) after ${this.opts.staleNodeWaitMs} ms: is a second process running with the same id?`, {
          retriable: true,
        });
      }
      await this.wait(Math.min(250, deadline - Date.now()));
    }
  }

  // ---- workers

  async registerWorker(info: WorkerInfo): Promise<void> {
    const path = this.workerPath(info.id);
    const { session: _session, ...fields } = info;
    const data = encode(fields);
    this.ephemerals.set(path, data);
    await this.createEphemeral(path, data, 'worker');
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return this.readWorkers(await this.children(`${this.base}/workers`));
  }

  /** `onEvent`: leave a data watch on each node too (a registration still being filled counts once it is) */
  private async readWorkers(names: string[], onEvent?: () => void): Promise<WorkerInfo[]> {
    const dir = `${this.base}/workers`;
    const read = (path: string) => (onEvent ? this.getWatch(path, onEvent) : this.getNode(path));
    const nodes = await Promise.all(names.map(async (n) => ({ path: `${dir}/${n}`, node: await read(`${dir}/${n}`) })));
    const out: WorkerInfo[] = [];
    for (const { path, node } of nodes) if (node) out.push(decodeWorker(node.data, path, node.stat.ephemeralOwner));
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Delivers the full list once the watch is armed, then after every change of the set of workers. */
  watchWorkers(cb: (workers: WorkerInfo[]) => void): () => void {
    const dir = `${this.base}/workers`;
    const w: Watch = {
      active: true,
      last: RESET,
      job: new Rerun(
        async () => {
          if (!w.active || this.closed) return;
          const names = await this.childrenWatch(dir, () => void w.job.trigger());
          const list = await this.readWorkers(names, () => void w.job.trigger());
          // a worker registered again on a new session counts as a change (see WorkerInfo.session)
          const key = list.map((x) => `${x.id} ${x.session ?? ''}`).join('\n');
          if (!w.active || this.closed || key === w.last) return;
          w.last = key;
          this.safely(() => cb(list), 'workers watch callback');
        },
        (e) => this.watchFailed(e, dir),
      ),
    };
    this.watches.add(w);
    void w.job.trigger();
    return () => {
      w.active = false;
      this.watches.delete(w);
    };
  }

  private watchFailed(e: unknown, path: string): void {
    if (this.closed) return;
    // a failed re-arm is retried on the next session change; until then this watch is quiet
    this.opts.log?.error({ err: (e as Error).message, path }, 're-arming a ZooKeeper watch failed');
  }

  // ---- assignments

  async writeAssignment(worker: string, partitions: PartitionAssignment[], routes?: RouteConfig[]): Promise<Assignment> {
    const guard = this.leaderGuard(`write the assignment of worker '${worker}'`);
    const path = this.assignmentPath(worker);
    const parts = partitions.map((p) => ({ route: p.route, topic: p.topic, partition: p.partition, targetTopic: p.targetTopic, compression: p.compression, epoch: p.epoch }));
    const extra = routes && routes.length > 0 ? { routes } : {};
    for (;;) {
      const cur = await this.getNode(path);
      if (!cur) {
        const a: Assignment = { worker, version: 1, partitions: parts, ...extra };
        guard?.(await this.liveSession(Date.now() + this.opts.operationTimeoutMs));
        if ((await this.createNode(path, this.assignmentRecord(a, path), C.ZOO_PERSISTENT)) === 'created') return a;
      } else {
        const a: Assignment = { worker, version: decodeAssignment(cur.data, path).version + 1, partitions: parts, ...extra };
        if (await this.setNode(path, this.assignmentRecord(a, path), cur.stat.version, guard)) return a;
      }
      this.stats.versionConflicts++;
    }
  }

  /** The record of an assignment, refused (naming the worker and what to do) if even compressed it is too large. */
  private assignmentRecord(a: Assignment, path: string): Buffer {
    const data = encodeAssignment(a);
    if (data.length > MAX_NODE_BYTES) {
      throw new StraitError(
        'STRAIT_STORE',
        `the assignment of worker '${a.worker}' (${a.partitions.length} partitions) is ${data.length} bytes compressed at ${path}, over the ${MAX_NODE_BYTES} bytes a ZooKeeper node can hold: run more workers, so each holds fewer partitions`,
      );
    }
    return data;
  }

  async readAssignment(worker: string): Promise<Assignment | undefined> {
    const path = this.assignmentPath(worker);
    const node = await this.getNode(path);
    return node ? decodeAssignment(node.data, path) : undefined;
  }

  async deleteAssignment(worker: string): Promise<void> {
    const path = this.assignmentPath(worker);
    await this.deleteNode(path, -1, this.leaderGuard(`delete the assignment of worker '${worker}'`));
  }

  /**
   * Assignments are the leader's to write, and only within the leadership (term, session) a write was issued under.
   * A call retries through session changes (`call`), so without this a controller that lost its session could still
   * land a write queued before the loss after the next leader's writes, and hand a worker a stale assignment nobody
   * corrects. In a process that runs no campaign (tools, tests writing assignments directly) writes are not bound.
   */
  private leaderGuard(what: string): SessionGuard | undefined {
    if (this.campaigns.size === 0) return undefined;
    const c = [...this.campaigns].find((x) => x.leader);
    const term = c?.term;
    const session = this.current;
    return (s) => {
      if (c && c.leader && c.term === term && s === session) return;
      throw new StraitError('STRAIT_NOT_LEADER', `cannot ${what}: this process no longer leads in the term the write was issued in (its ZooKeeper session ${session?.id ?? '(none)'} was lost, or leadership moved)`, { retriable: false });
    };
  }

  /** Delivers the current assignment (or undefined) once the watch is armed, then after every write or delete. */
  watchAssignment(worker: string, cb: (a: Assignment | undefined) => void): () => void {
    const path = this.assignmentPath(worker);
    const w: Watch = {
      active: true,
      last: RESET,
      job: new Rerun(
        async () => {
          for (;;) {
            if (!w.active || this.closed) return;
            const stat = await this.existsWatch(path, () => void w.job.trigger());
            let a: Assignment | undefined;
            let key = 'none';
            if (stat) {
              const node = await this.getNode(path);
              // deleted between the two reads, or not filled yet: the exists watch fires on either, and runs this again
              if (node) {
                a = decodeAssignment(node.data, path);
                key = `${node.stat.czxid}:${node.stat.version}`;
              }
            }
            if (!w.active || this.closed || key === w.last) return;
            w.last = key;
            this.safely(() => cb(a), 'assignment watch callback');
            return;
          }
        },
        (e) => this.watchFailed(e, path),
      ),
    };
    this.watches.add(w);
    void w.job.trigger();
    return () => {
      w.active = false;
      this.watches.delete(w);
    };
  }

  // ---- offsets

  async readOffsets(route: string): Promise<Map<string, CommittedOffset>> {
    const dir = this.offsetsRoute(route);
    const out = new Map<string, CommittedOffset>();
    const topics = await this.children(dir);
    await Promise.all(
      topics.map(async (t) => {
        const partitions = await this.children(`${dir}/${t}`);
        await Promise.all(
          partitions.map(async (p) => {
            if (!/^\d+$/.test(p)) return;
            const path = `${dir}/${t}/${p}`;
            const node = await this.getNode(path);
            if (!node) return;
            const rec = decodeOffset(node.data, path);
            if (rec.offset !== undefined) out.set(partitionKey(unsegment(t), Number(p)), { ...rec, offset: rec.offset });
          }),
        );
      }),
    );
    return out;
  }

  async commitOffsets(route: string, commits: OffsetCommit[]): Promise<CommitResult> {
    const results = await Promise.all(commits.map((c) => this.commitOne(route, c)));
    return { fenced: results.filter((r): r is CommitResult['fenced'][number] => r !== undefined) };
  }

  /** Read, check the epoch, write with the version read; a lost race reads again. */
  private async commitOne(route: string, c: OffsetCommit): Promise<CommitResult['fenced'][number] | undefined> {
    const path = this.offsetPath(route, c.topic, c.partition);
    const data = encode({ ...committedRecord(c) });
    for (;;) {
      const cur = await this.getNode(path);
      if (!cur) {
        if (!this.knownPaths.has(parentOf(path))) await this.ensurePath(parentOf(path));
        if ((await this.createNode(path, data, C.ZOO_PERSISTENT)) === 'created') return undefined;
      } else {
        const rec = decodeOffset(cur.data, path);
        if (rec.epoch > c.epoch) return { topic: c.topic, partition: c.partition, epoch: rec.epoch };
        if (rec.offset !== undefined && sameCommitted({ ...rec, offset: rec.offset }, c)) return undefined;
        if (await this.setNode(path, data, cur.stat.version)) return undefined;
      }
      this.stats.versionConflicts++;
    }
  }

  /**
   * Raises the stored epoch of partitions that have a committed offset, like the embedded store: a partition that
   * never committed has no record to fence, and no offset a stale owner could move backwards.
   */
  async fence(route: string, partitions: { topic: string; partition: number; epoch: number }[]): Promise<void> {
    await Promise.all(
      partitions.map(async (p) => {
        const path = this.offsetPath(route, p.topic, p.partition);
        for (;;) {
          const cur = await this.getNode(path);
          if (!cur) return;
          const rec = decodeOffset(cur.data, path);
          if (rec.epoch >= p.epoch) return;
          if (await this.setNode(path, encode({ ...rec, epoch: p.epoch }), cur.stat.version)) return;
          this.stats.versionConflicts++;
        }
      }),
    );
  }

  // ---- cluster ids of a route's offsets

  private clustersPath(route: string): string {
    return `${this.base}/clusters/${segment(route, 'route')}`;
  }

  async readRouteClusters(route: string): Promise<RouteClusters | undefined> {
    const path = this.clustersPath(route);
    const node = await this.getNode(path);
    if (!node) return undefined;
    const r = decode(node.data, path);
    return { source: str(r, 'source', path), target: str(r, 'target', path), at: str(r, 'at', path) };
  }

  async claimRouteClusters(route: string, ids: RouteClusters): Promise<RouteClusters> {
    // create-if-absent: of two claimers the first wins and the other reads its record
    if ((await this.createNode(this.clustersPath(route), encode({ source: ids.source, target: ids.target, at: ids.at }), C.ZOO_PERSISTENT)) === 'created') return ids;
    return (await this.readRouteClusters(route)) ?? ids;
  }

  async resetRoute(route: string): Promise<number> {
    const dir = this.offsetsRoute(route);
    let had = 0;
    // the partition nodes only: the topic folders stay, as other processes know them (knownPaths) and commit into them
    for (const t of await this.children(dir)) {
      for (const p of await this.children(`${dir}/${t}`)) if (await this.deleteNode(`${dir}/${t}/${p}`, -1)) had++;
    }
    await this.deleteNode(this.clustersPath(route), -1);
    return had;
  }

  // ---- managed topics

  // ---- operator control: <base>/control/drained/<worker>, <base>/control/paused/<route> (presence is the state)

  async readControl(): Promise<{ drained: Set<string>; paused: Set<string> }> {
    const [drained, paused] = await Promise.all([this.children(`${this.base}/control/drained`), this.children(`${this.base}/control/paused`)]);
    return { drained: new Set(drained.map(unsegment)), paused: new Set(paused.map(unsegment)) };
  }

  async setDrained(worker: string, drained: boolean): Promise<void> {
    await this.setFlag(`${this.base}/control/drained/${segment(worker, 'worker')}`, drained);
  }

  async setPaused(route: string, paused: boolean): Promise<void> {
    await this.setFlag(`${this.base}/control/paused/${segment(route, 'route')}`, paused);
  }

  private async setFlag(path: string, on: boolean): Promise<void> {
    if (on) await this.createNode(path, encode({ at: new Date().toISOString() }), C.ZOO_PERSISTENT);
    else await this.deleteNode(path, -1);
  }

  async readManagedTopics(route: string): Promise<Set<string>> {
    return new Set((await this.children(`${this.base}/managed/${segment(route, 'route')}`)).map(unsegment));
  }

  async addManagedTopic(route: string, topic: string): Promise<void> {
    const path = `${this.base}/managed/${segment(route, 'route')}/${segment(topic, 'topic')}`;
    await this.createNode(path, encode({ addedAt: new Date().toISOString() }), C.ZOO_PERSISTENT);
  }

  // ---- load reports

  /**
   * Overwrites the worker's report node, or creates it (ephemeral: it goes with this session). After a session
   * loss the next report creates it again; it is not one of the registrations `restore` re-creates.
   */
  async writeReport(report: LoadReport): Promise<void> {
    const path = this.reportPath(report.worker);
    const data = encodeReport(report);
    for (;;) {
      if (this.closed) throw this.closedError();
      if (await this.setNode(path, data, -1)) return;
      if ((await this.createNode(path, data, C.ZOO_EPHEMERAL)) === 'created') return;
    }
  }

  async readReports(): Promise<LoadReport[]> {
    const dir = `${this.base}/reports`;
    const names = await this.children(dir);
    const nodes = await Promise.all(names.map(async (n) => ({ path: `${dir}/${n}`, node: await this.getNode(`${dir}/${n}`) })));
    const out: LoadReport[] = [];
    for (const { path, node } of nodes) {
      if (!node) continue;
      try {
        out.push(decodeReport(node.data, path));
      } catch (e) {
        this.opts.log?.warn({ err: (e as Error).message }, 'skipping an unreadable load report');
      }
    }
    return out;
  }

  /**
   * One children watch on reports/ and one data watch per report node, so a new report costs one read of that node
   * (not of all of them). The first delivery comes once every node present is read.
   */
  watchReports(cb: (reports: LoadReport[]) => void): () => void {
    const dir = `${this.base}/reports`;
    const known = new Map<string, LoadReport>();
    const nodes = new Map<string, Watch>();
    let active = true;
    /** >0 while the list job reads new nodes: they deliver once, together */
    let batching = 0;
    const deliver = () => {
      if (active && !this.closed && batching === 0) this.safely(() => cb([...known.values()]), 'reports watch callback');
    };
    const nodeWatch = (name: string): Watch => {
      const path = `${dir}/${name}`;
      const w: Watch = {
        active: true,
        last: RESET,
        job: new Rerun(
          async () => {
            if (!w.active || this.closed) return;
            const node = await this.getWatch(path, () => void w.job.trigger());
            const key = node ? `${node.stat.czxid}:${node.stat.version}` : 'none';
            if (!w.active || this.closed || key === w.last) return;
            w.last = key;
            known.delete(name);
            if (node) {
              try {
                known.set(name, decodeReport(node.data, path));
              } catch (e) {
                this.opts.log?.warn({ err: (e as Error).message }, 'skipping an unreadable load report');
              }
            }
            deliver();
          },
          (e) => this.watchFailed(e, path),
        ),
      };
      return w;
    };
    const list: Watch = {
      active: true,
      last: RESET,
      job: new Rerun(
        async () => {
          if (!list.active || this.closed) return;
          const names = new Set(await this.childrenWatch(dir, () => void list.job.trigger()));
          if (!list.active || this.closed) return;
          let changed = list.last === RESET;
          list.last = 'armed';
          for (const [name, w] of nodes) {
            if (names.has(name)) continue;
            w.active = false;
            this.watches.delete(w);
            nodes.delete(name);
            if (known.delete(name)) changed = true;
          }
          const reads: Promise<void>[] = [];
          for (const name of names) {
            if (nodes.has(name)) continue;
            const w = nodeWatch(name);
            nodes.set(name, w);
            this.watches.add(w);
            reads.push(w.job.trigger());
            changed = true;
          }
          batching++;
          try {
            await Promise.all(reads);
          } finally {
            batching--;
          }
          if (changed) deliver();
        },
        (e) => this.watchFailed(e, dir),
      ),
    };
    this.watches.add(list);
    void list.job.trigger();
    return () => {
      active = false;
      list.active = false;
      this.watches.delete(list);
      for (const w of nodes.values()) {
        w.active = false;
        this.watches.delete(w);
      }
    };
  }

  // ---- leader election

  async campaign(id: string, cb: LeaderCallbacks): Promise<() => Promise<void>> {
    const c: Campaign = {
      id,
      token: randomUUID(),
      cb,
      active: true,
      leader: false,
      term: 0,
      job: new Rerun(
        () => this.contest(c),
        (e) => this.watchFailed(e, `${this.leaderPath} (campaign ${id})`),
      ),
    };
    const resign = async () => {
      if (!c.active) return;
      c.active = false;
      this.campaigns.delete(c);
      await c.job.idle();
      c.leader = false;
      if (this.closed) return;
      // by the record, not by c.leader: a round cut short by resign may have created it without electing anyone
      const node = await this.getNode(this.leaderPath);
      if (node && node.stat.ephemeralOwner === this.current?.id && decode(node.data, this.leaderPath).token === c.token) {
        await this.deleteNode(this.leaderPath, node.stat.version);
      }
    };
    this.campaigns.add(c);
    await c.job.trigger();
    if (c.job.lastError !== undefined && !c.leader) {
      await resign().catch(() => {});
      throw c.job.lastError;
    }
    return resign;
  }

  /** One round: try to create the leader node; whoever holds it, leave a watch that runs the next round. */
  private async contest(c: Campaign): Promise<void> {
    const path = this.leaderPath;
    for (;;) {
      if (!c.active || this.closed) return;
      await this.createNode(path, encode({ id: c.id, token: c.token, since: new Date().toISOString() }), C.ZOO_EPHEMERAL);
      const stat = await this.existsWatch(path, () => void c.job.trigger());
      if (!stat) continue; // gone already (its holder left): contest again
      if (this.previousSessions.has(stat.ephemeralOwner)) {
        // left by this process's lost session, which the server has not expired yet
        await this.deleteNode(path, stat.version);
        continue;
      }
      let mine = false;
      if (stat.ephemeralOwner === this.current?.id) {
        const node = await this.getNode(path);
        if (!node) continue;
        mine = node.stat.ephemeralOwner === this.current?.id && decode(node.data, path).token === c.token;
      }
      if (!c.active || this.closed) return;
      if (mine && !c.leader) {
        c.leader = true;
        c.term++;
        this.opts.log?.info({ id: c.id, session: this.current?.id }, 'elected leader');
        this.safely(() => c.cb.elected(), 'elected callback');
      } else if (!mine && c.leader) {
        c.leader = false;
        this.safely(() => c.cb.lost(), 'leader lost callback');
      }
      return;
    }
  }

  async readLeader(): Promise<string | undefined> {
    const node = await this.getNode(this.leaderPath);
    return node ? str(decode(node.data, this.leaderPath), 'id', this.leaderPath) : undefined;
  }

  // ---- routes managed over REST

  private routePath(name: string): string {
    return `${this.base}/routes/${segment(name, 'route')}`;
  }

  async readRoutes(): Promise<Map<string, StoredRoute>> {
    const dir = `${this.base}/routes`;
    const names = await this.children(dir);
    const out = new Map<string, StoredRoute>();
    await Promise.all(
      names.map(async (n) => {
        const node = await this.getNode(`${dir}/${n}`);
        if (node) out.set(unsegment(n), decodeStoredRoute(node.data, `${dir}/${n}`));
      }),
    );
    return out;
  }

  /** Read, write with the version read (a lost race reads again), so concurrent writers never skip a revision. */
  async writeRoute(route: RouteConfig): Promise<StoredRoute> {
    const path = this.routePath(route.name);
    for (;;) {
      const cur = await this.getNode(path);
      const stored: StoredRoute = { route, revision: cur ? decodeStoredRoute(cur.data, path).revision + 1 : 1, updatedAt: new Date().toISOString() };
      const data = encode({ ...stored });
      if (!cur) {
        if ((await this.createNode(path, data, C.ZOO_PERSISTENT)) === 'created') return stored;
      } else if (await this.setNode(path, data, cur.stat.version)) {
        return stored;
      }
      this.stats.versionConflicts++;
    }
  }

  async deleteRoute(name: string): Promise<boolean> {
    return this.deleteNode(this.routePath(name), -1);
  }

  /** A watch on the folder (routes created or deleted) and on every route's node (routes updated). */
  watchRoutes(cb: (routes: Map<string, StoredRoute>) => void): () => void {
    const dir = `${this.base}/routes`;
    const w: Watch = {
      active: true,
      last: RESET,
      job: new Rerun(
        async () => {
          if (!w.active || this.closed) return;
          const names = await this.childrenWatch(dir, () => void w.job.trigger());
          const out = new Map<string, StoredRoute>();
          const versions: string[] = [];
          for (const n of names.sort()) {
            const node = await this.getWatch(`${dir}/${n}`, () => void w.job.trigger());
            if (!node) continue;
            out.set(unsegment(n), decodeStoredRoute(node.data, `${dir}/${n}`));
            versions.push(`${n}:${node.stat.czxid}:${node.stat.version}`);
          }
          const key = versions.join('\n');
          if (!w.active || this.closed || key === w.last) return;
          w.last = key;
          this.safely(() => cb(out), 'routes watch callback');
        },
        (e) => this.watchFailed(e, dir),
      ),
    };
    this.watches.add(w);
    void w.job.trigger();
    return () => {
      w.active = false;
      this.watches.delete(w);
    };
  }

  // ---- session callbacks, close

  onSessionLost(cb: () => void): () => void {
    this.lostCallbacks.add(cb);
    return () => this.lostCallbacks.delete(cb);
  }

  onSessionRestored(cb: () => void): () => void {
    this.restoredCallbacks.add(cb);
    return () => this.restoredCallbacks.delete(cb);
  }

  /** Closes the session (the server drops its ephemeral nodes at once) and every watch; no handle or timer is left. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closed';
    clearTimeout(this.lostTimer);
    for (const w of this.watches) w.active = false;
    this.watches.clear();
    for (const c of this.campaigns) c.active = false;
    this.campaigns.clear();
    this.lostCallbacks.clear();
    this.restoredCallbacks.clear();
    const s = this.current;
    this.current = undefined;
    if (s) this.endSession(s);
    this.wake();
  }
}
