/**
 * The ZooKeeper store's session: opened, kept through disconnections, replaced when lost; and every call, run on the
 * live session with a deadline.
 *
 * A disconnection alone keeps the session: the C client reconnects with the same session id and re-sends its watches
 * (ZooKeeper's SetWatches), so ephemeral nodes and watches survive a server restart. The session counts as lost when
 * the server says it expired (the binding then closes its handle and emits 'close' with ZOO_EXPIRED_SESSION_STATE),
 * or when this process stayed disconnected for `lostAfterDisconnectMs` (default: the session timeout): a client only
 * learns of an expiry when it reaches a server again, but by then the controller may already have handed this
 * worker's partitions to another one, so a worker cut off that long must stop without waiting for the server's word
 * (Curator's rule too). Offset commits stay fenced by epoch either way. On a loss the onSessionLost callbacks (and
 * `lost()` of a leading campaign) run at once; then a new session is opened, this process's ephemeral nodes are
 * created again, campaigns re-run, watches re-armed (each delivers the current state once), and the
 * onSessionRestored callbacks run.
 *
 * The `zookeeper` package (the official C client, single-threaded, driven by libuv) reports error codes as numbers
 * to the `a_*` callbacks; its promise API folds them into message strings, so this module uses the callbacks.
 */
import ZooKeeper from 'zookeeper';
import { StraitError } from '../../errors';
import { digestUser, type FilledOptions, type StoreStats } from './options';

export type ZkClient = InstanceType<typeof ZooKeeper>;

export const C = ZooKeeper.constants;
/** our own code for "the session this call was issued on ended before it answered" (never a ZooKeeper code) */
const SESSION_GONE = -10_000;

/** Codes after which the same call may succeed on a reconnected or a new session. */
export const RETRIABLE = new Set<number>([
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

export function codeName(rc: number): string {
  return rc === SESSION_GONE ? 'SESSION_GONE' : (CODE_NAMES.get(rc) ?? 'UNKNOWN');
}

/** One ZooKeeper session: a client handle from the moment it is created until it is closed or expires. */
export class Session {
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

/** Checks, before each attempt of a call, that the call may still run on this session (throws if not). */
export type SessionGuard = (s: Session) => void;

/** What the store does when its session changes. */
export interface SessionHooks {
  /** on a loss, before the onSessionLost callbacks: whoever acted on the lost session stops */
  stopOwnership(): void;
  /** on a new session: this process's ephemeral nodes, campaigns and watches again (a throw is retried) */
  reestablish(): Promise<void>;
}

/** Keeps one live session for a store: opens it, notices its loss, replaces it, and runs calls on it. */
export class SessionKeeper {
  current: Session | undefined;
  /** set once by close(); nothing runs on afterwards */
  closed = false;
  /** ids of this process's earlier sessions: a node one of them still holds is ours to replace */
  readonly previousSessions = new Set<string>();
  private state: 'connected' | 'disconnected' | 'lost' | 'closed' = 'lost';
  private lostTimer: NodeJS.Timeout | undefined;
  private readonly lostCallbacks = new Set<() => void>();
  private readonly restoredCallbacks = new Set<() => void>();
  /** wake-ups for calls waiting on a session or backing off; close() and every session change run them */
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly opts: FilledOptions,
    private readonly stats: StoreStats,
    private readonly hooks: SessionHooks,
  ) {}

  /** Opens the first session (StraitError STRAIT_STORE naming the connect string if none comes in time). */
  async start(): Promise<void> {
    this.adopt(await this.openSession());
  }

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
        () =>
          fail(
            new StraitError('STRAIT_STORE', `no ZooKeeper session with ${connect} within ${connectTimeoutMs} ms (is ZooKeeper running and reachable there?)`, {
              retriable: true,
            }),
          ),
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
          fail(
            new StraitError('STRAIT_STORE', `ZooKeeper at ${connect} ended the session before it started: ${codeName(code)} (${code})`, {
              retriable: code !== C.ZOO_AUTH_FAILED_STATE,
            }),
          );
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
              fail(
                new StraitError(
                  'STRAIT_STORE',
                  `ZooKeeper at ${connect} refused the store.auth credentials of user '${digestUser(auth.credentials)}': ${codeName(code)} (${code})`,
                  { field: 'store.auth.credentials', retriable: RETRIABLE.has(code) },
                ),
              );
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
    this.hooks.stopOwnership();
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
        await this.hooks.reestablish();
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

  onSessionLost(cb: () => void): () => void {
    this.lostCallbacks.add(cb);
    return () => this.lostCallbacks.delete(cb);
  }

  onSessionRestored(cb: () => void): () => void {
    this.restoredCallbacks.add(cb);
    return () => this.restoredCallbacks.delete(cb);
  }

  /** Runs a callback of the store's user; a throw is logged, never passed on. */
  safely(fn: () => void, what: string): void {
    try {
      fn();
    } catch (e) {
      this.opts.log?.error({ err: (e as Error).message }, `${what} threw`);
    }
  }

  /** Resolves after `ms`, or earlier on any session change or close. */
  wait(ms: number): Promise<void> {
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

  closedError(): StraitError {
    return new StraitError('STRAIT_STORE', `the ZooKeeper store for ${this.opts.connect} is closed`);
  }

  async liveSession(deadline: number): Promise<Session> {
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
  issue<T>(s: Session, start: (zk: ZkClient, done: (rc: number, value?: T) => void) => unknown): Promise<{ rc: number; value: T | undefined }> {
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
  async call<T>(
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
          r.rc !== C.ZNOAUTH
            ? ''
            : auth
              ? `: the identity of store.auth (user '${digestUser(auth.credentials)}') has no access there (wrong credentials, or the node belongs to another identity)`
              : ': the node has an ACL; set store.auth';
        throw new StraitError('STRAIT_STORE', `ZooKeeper ${op} ${path} on ${this.opts.connect} failed: ${codeName(r.rc)} (${r.rc})${hint}`, {
          retriable,
          ...(r.rc === C.ZNOAUTH ? { field: 'store.auth' } : {}),
        });
      }
      await this.wait(Math.min(100, deadline - Date.now()));
    }
  }

  /**
   * The C client also hands every watcher the session's state changes (type ZOO_SESSION_EVENT) without consuming
   * the watch; only node events (created, deleted, changed, child) mean "read again".
   */
  watcher(s: Session, onEvent: () => void): (type: number) => void {
    return (type: number) => {
      if (type === C.ZOO_SESSION_EVENT || type === C.ZOO_NOTWATCHING_EVENT) return;
      if (s !== this.current || this.closed) return;
      onEvent();
    };
  }

  /** Closes the session (the server drops its ephemeral nodes at once); no handle or timer is left. */
  close(): void {
    this.closed = true;
    this.state = 'closed';
    clearTimeout(this.lostTimer);
    this.lostCallbacks.clear();
    this.restoredCallbacks.clear();
    const s = this.current;
    this.current = undefined;
    if (s) this.endSession(s);
    this.wake();
  }
}
