/**
 * Znode operations on the store's live session (session.ts): reads that take an empty node for absent (codec.ts),
 * watched reads, and writes that create missing parents; with `auth` every node is made by the sealing protocol
 * (sealing.ts).
 */
import { StraitError } from '../../errors';
import { checkSize, hasRecord } from './codec';
import { parentOf } from './layout';
import type { FilledOptions, StoreStats } from './options';
import { Sealer, type AclEntry } from './sealing';
import { C, type SessionGuard, type SessionKeeper, type ZkClient } from './session';

/** The part of a znode Stat this store reads (the binding builds it in createStatObject). */
export interface NodeStat {
  version: number;
  czxid: number;
  /** hex session id ('0' for a persistent node) */
  ephemeralOwner: string;
}

export interface Node {
  stat: NodeStat;
  data: Buffer | null;
}

export class Nodes {
  /** persistent paths known to exist, so commits do not re-create parents */
  readonly knownPaths = new Set<string>();
  /** makes every node with `acl` (auth configured); none: nodes are world-open */
  readonly sealer: Sealer | undefined;

  constructor(
    private readonly session: SessionKeeper,
    private readonly opts: FilledOptions,
    stats: StoreStats,
    acl: AclEntry[] | undefined,
  ) {
    this.sealer = acl ? new Sealer(session, this, acl, opts, stats) : undefined;
  }

  /** A record node; an empty one (being made by the sealing protocol, see sealing.ts) reads as absent. */
  async getNode(path: string): Promise<Node | undefined> {
    const node = await this.getRaw(path);
    return node && hasRecord(node.data) ? node : undefined;
  }

  async getRaw(path: string): Promise<Node | undefined> {
    const r = await this.session.call<Node>(
      'get',
      path,
      (zk, done) => zk.a_get(path, false, (rc, _e, stat, data) => done(rc, { stat: stat as unknown as NodeStat, data: (data as Buffer | null) ?? null })),
      [C.ZNONODE],
    );
    return r.rc === C.ZOK ? r.value : undefined;
  }

  async children(path: string): Promise<string[]> {
    const r = await this.session.call<string[]>('get children', path, (zk, done) => zk.a_get_children(path, false, (rc, _e, ch) => done(rc, ch)), [C.ZNONODE]);
    return r.rc === C.ZOK ? (r.value ?? []) : [];
  }

  /** exists() that leaves a watch (also on a missing node, for its creation); `onEvent` runs for node events only */
  async existsWatch(path: string, onEvent: () => void): Promise<NodeStat | undefined> {
    const r = await this.session.call<NodeStat>(
      'exists',
      path,
      (zk, done, s) => zk.aw_exists(path, this.session.watcher(s, onEvent), (rc, _e, stat) => done(rc, stat as unknown as NodeStat)),
      [C.ZNONODE],
    );
    return r.rc === C.ZOK ? r.value : undefined;
  }

  /** get() that leaves a data watch on an existing node (a missing one leaves none: ZooKeeper's rule) */
  async getWatch(path: string, onEvent: () => void): Promise<Node | undefined> {
    const r = await this.session.call<Node>(
      'get',
      path,
      (zk, done, s) =>
        zk.aw_get(path, this.session.watcher(s, onEvent), (rc, _e, stat, data) =>
          done(rc, { stat: stat as unknown as NodeStat, data: (data as Buffer | null) ?? null }),
        ),
      [C.ZNONODE],
    );
    // an empty node is still being made: absent for now; the data watch left on it fires when it is filled
    return r.rc === C.ZOK && r.value && hasRecord(r.value.data) ? r.value : undefined;
  }

  async childrenWatch(path: string, onEvent: () => void): Promise<string[]> {
    const r = await this.session.call<string[]>(
      'get children',
      path,
      (zk, done, s) => zk.aw_get_children(path, this.session.watcher(s, onEvent), (rc, _e, ch) => done(rc, ch)),
      [C.ZNONODE],
    );
    return r.rc === C.ZOK ? (r.value ?? []) : [];
  }

  /** Creates a node; 'exists' if it is already there (with a record). Missing parents are created (persistent). */
  async createNode(path: string, data: Buffer, flags: number): Promise<'created' | 'exists'> {
    checkSize(path, data);
    if (this.sealer) return this.sealer.createSealed(path, data, flags);
    for (;;) {
      const r = await this.session.call<string>('create', path, (zk, done) => zk.a_create(path, data, flags, (rc, _e, p) => done(rc, p)), [
        C.ZNODEEXISTS,
        C.ZNONODE,
      ]);
      if (r.rc === C.ZOK) return 'created';
      if (r.rc === C.ZNODEEXISTS) return 'exists';
      // a parent is missing (never made, or removed by hand): make it and try again
      await this.remakeParent(path);
    }
  }

  /** After a create found no parent: forget it was known, and make it (again). */
  async remakeParent(path: string): Promise<void> {
    this.knownPaths.delete(parentOf(path));
    await this.ensurePath(parentOf(path), true);
  }

  /** setData with an expected version: the new Stat, or undefined when the version moved on or the node is gone. */
  async setNode(path: string, data: Buffer, version: number, guard?: SessionGuard): Promise<NodeStat | undefined> {
    checkSize(path, data);
    const set = (zk: ZkClient, done: (rc: number, value?: NodeStat) => void) =>
      zk.a_set(path, data, version, (rc, _e, stat) => done(rc, stat as unknown as NodeStat));
    const r = await this.session.call<NodeStat>('set', path, set, [C.ZBADVERSION, C.ZNONODE], guard);
    return r.rc === C.ZOK ? r.value : undefined;
  }

  async deleteNode(path: string, version: number, guard?: SessionGuard): Promise<boolean> {
    const r = await this.session.call<void>('delete', path, (zk, done) => zk.a_delete_(path, version, (rc) => done(rc)), [C.ZBADVERSION, C.ZNONODE], guard);
    return r.rc === C.ZOK;
  }

  /**
   * Creates `path` and its parents as persistent nodes (NODEEXISTS from a racing creator is fine). With auth, each
   * folder made here is sealed in the same pipelined step; one that exists already and still has the open ACL of
   * version 0 (made before auth was configured) is sealed by the same request.
   */
  async ensurePath(path: string, force = false): Promise<void> {
    if (!force && this.knownPaths.has(path)) return;
    let at = '';
    for (const part of path.split('/').slice(1)) {
      at += `/${part}`;
      if (!force && this.knownPaths.has(at)) continue;
      const here = at;
      if (this.sealer) {
        await this.sealer.createFolder(here);
        this.knownPaths.add(here);
        continue;
      }
      const r = await this.session.call<string>(
        'create',
        here,
        (zk, done) => zk.a_create(here, Buffer.alloc(0), C.ZOO_PERSISTENT, (rc, _e, p) => done(rc, p)),
        [C.ZNODEEXISTS],
      );
      if (r.rc === C.ZOK || r.rc === C.ZNODEEXISTS) this.knownPaths.add(here);
    }
  }

  /**
   * Creates an ephemeral node owned by the current session. A node of the same name held by one of this process's
   * earlier sessions is replaced; one held by another session (a previous incarnation that has not expired yet)
   * is waited for, up to staleNodeWaitMs, then reported.
   */
  async createEphemeral(path: string, data: Buffer, what: string): Promise<void> {
    const deadline = Date.now() + this.opts.staleNodeWaitMs;
    for (;;) {
      if (this.session.closed) throw this.session.closedError();
      if ((await this.createNode(path, data, C.ZOO_EPHEMERAL)) === 'created') return;
      const node = await this.getNode(path);
      if (!node) continue;
      const owner = node.stat.ephemeralOwner;
      if (owner === this.session.current?.id) {
        // created by an earlier try whose answer was lost, or registered before: make the data current
        if (await this.setNode(path, data, node.stat.version)) return;
        continue;
      }
      if (this.session.previousSessions.has(owner)) {
        await this.deleteNode(path, node.stat.version);
        continue;
      }
      if (owner === '0') throw new StraitError('STRAIT_STORE', `${path} is a persistent node; a ${what} registration must be ephemeral (remove it by hand)`);
      if (Date.now() >= deadline) {
        throw new StraitError(
          'STRAIT_STORE',
          `the ${what} node ${path} is held by another live ZooKeeper session (0x${owner}) after ${this.opts.staleNodeWaitMs} ms: is a second process running with the same id?`,
          {
            retriable: true,
          },
        );
      }
      await this.session.wait(Math.min(250, deadline - Date.now()));
    }
  }
}
