/**
 * Authentication and ACLs of the ZooKeeper store (`auth`): how a node is made so that only the configured identity
 * ever holds it, how a node changed by someone else meanwhile is caught, and how an older tree is closed.
 *
 * What the binding (zookeeper 7.3, C client 3.8) offers, read in its node-zk.cpp: `add_auth(scheme, auth)` (digest
 * works; the C client re-sends it when the same handle reconnects), `a_get_acl` (unusable: a getACL the server
 * refuses, e.g. NOAUTH or NONODE, crashes the process — its callback frees a null ACL list), `a_set_acl(path,
 * aclVersion, acl)`. It does NOT offer: an ACL on create (`a_create`/`a_create_ttl` always pass ZOO_OPEN_ACL_UNSAFE),
 * multi-op transactions, SASL (`zookeeper_init_sasl` is never called; the bundled C client is built without Cyrus
 * SASL) or TLS (`zookeeper_init_ssl`). So digest is the only scheme, and every node is created world-open and sealed
 * right after. To keep that window harmless, with `auth` set a node is created by a sealing protocol: create it
 * *empty* and, pipelined on the same session (ZooKeeper runs one session's requests in order), set its ACL expecting
 * ACL version 0; then write the record expecting data version 0. Anyone who read the node in between read nothing;
 * anyone who changed its ACL or data in between makes one of those versioned calls fail, and the node is deleted
 * (this process holds DELETE on the sealed parent) and made again. Readers take an empty record for "not written yet"
 * (absent), and a writer that meets someone else's empty node waits for it to be filled (or, after
 * `placeholderGraceMs`, deletes it: its creator died half-way). Digest credentials travel in clear text, like the
 * rest of the ZooKeeper protocol without TLS: keep ZooKeeper on a trusted network.
 */
import { StraitError } from '../../errors';
import { hasRecord } from './codec';
import type { Nodes, NodeStat } from './nodes';
import { digestId, type FilledOptions, type StoreStats, type ZooKeeperAuth } from './options';
import { C, codeName, RETRIABLE, type SessionKeeper } from './session';

/** A ZooKeeper ACL entry as the binding takes and gives it (`perms` on read; `perm` on write: helper.js maps it). */
export interface AclEntry {
  perms: number;
  scheme: string;
  auth: string;
}

/** What the sealing protocol reads of a fresh node's Stat. */
interface SealStat {
  version: number;
  aversion: number;
  numChildren: number;
}

/** The ACL every node gets with `auth`: ALL for its identity and `alsoGrant`, nothing for anyone else. */
export function aclFor(auth: ZooKeeperAuth): AclEntry[] {
  if (auth.scheme !== 'digest')
    throw new StraitError('STRAIT_STORE', `store.auth.scheme '${String(auth.scheme)}' is not supported; allowed: digest`, { field: 'store.auth.scheme' });
  if (!/^[^:]+:.+$/s.test(auth.credentials))
    throw new StraitError('STRAIT_STORE', "store.auth.credentials must be 'user:password' (the value is not shown)", { field: 'store.auth.credentials' });
  const ids = [digestId(auth.credentials), ...(auth.alsoGrant ?? [])];
  return [...new Set(ids)].map((id) => ({ perms: C.ZOO_PERM_ALL, scheme: 'digest', auth: id }));
}

export class Sealer {
  /** persistent nodes this process created empty and has not filled yet (a retry after a lost answer takes them over) */
  private readonly placeholders = new Set<string>();
  /** paths this process is creating right now, with how many creations of each run (only a lone one takes over) */
  private readonly creating = new Map<string, number>();

  constructor(
    private readonly session: SessionKeeper,
    private readonly nodes: Nodes,
    private readonly acl: AclEntry[],
    private readonly opts: FilledOptions,
    private readonly stats: StoreStats,
  ) {}

  /**
   * create(empty), setACL(ACL version 0) and exists() issued back to back on one session (ZooKeeper answers one
   * session's requests in order), so the stat tells how the node looked right after it was sealed; resolves with all
   * three. Retries the group through disconnections like `call`.
   */
  private async createAndSeal(path: string, flags: number): Promise<{ created: number; sealed: number; stat: SealStat | undefined }> {
    const acl = this.acl;
    const deadline = Date.now() + this.opts.operationTimeoutMs;
    for (;;) {
      const s = await this.session.liveSession(deadline);
      const [c, a, e] = await Promise.all([
        this.session.issue<string>(s, (zk, done) => zk.a_create(path, Buffer.alloc(0), flags, (rc, _e, p) => done(rc, p))),
        this.session.issue<void>(s, (zk, done) => zk.a_set_acl(path, 0, acl, (rc) => done(rc))),
        this.session.issue<SealStat>(s, (zk, done) => zk.a_exists(path, false, (rc, _e, stat) => done(rc, stat as unknown as SealStat))),
      ]);
      if (this.session.closed) throw this.session.closedError();
      if (c.rc === C.ZOK && a.rc === C.ZBADVERSION) {
        // Another strait process of this deployment racing to make the same folder: its pipelined setACL(0) came in
        // between our create and our setACL(0). Seal again at whatever ACL version it is now: that needs ADMIN, which
        // our own identity's ACL (a peer's seal) or a world-open one grants, and an ACL that shuts this identity out
        // does not (NOAUTH: tampered). The stat read after it still tells whether data was written meanwhile.
        const again = await this.session.call<void>('set ACL', path, (zk, done) => zk.a_set_acl(path, -1, acl, (rc) => done(rc)), [C.ZNOAUTH, C.ZNONODE]);
        const stat =
          again.rc === C.ZOK
            ? await this.session.call<SealStat>('exists', path, (zk, done) => zk.a_exists(path, false, (rc, _e, st) => done(rc, st as unknown as SealStat)), [
                C.ZNONODE,
              ])
            : undefined;
        return { created: c.rc, sealed: again.rc, stat: stat?.rc === C.ZOK ? stat.value : undefined };
      }
      if (!RETRIABLE.has(c.rc)) return { created: c.rc, sealed: a.rc, stat: e.rc === C.ZOK ? e.value : undefined };
      if (Date.now() >= deadline) {
        throw new StraitError('STRAIT_STORE', `ZooKeeper create ${path} on ${this.opts.connect} failed: ${codeName(c.rc)} (${c.rc})`, { retriable: true });
      }
      await this.session.wait(Math.min(100, deadline - Date.now()));
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
  async createSealed(path: string, data: Buffer, flags: number): Promise<'created' | 'exists'> {
    let waitingSince: { czxid: number; at: number } | undefined;
    this.creating.set(path, (this.creating.get(path) ?? 0) + 1);
    try {
      for (;;) {
        const r = await this.createAndSeal(path, flags);
        if (r.created === C.ZNONODE) {
          await this.nodes.remakeParent(path);
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
          throw new StraitError('STRAIT_STORE', `ZooKeeper create ${path} on ${this.opts.connect} failed: ${codeName(r.created)} (${r.created})`, {
            retriable: false,
          });
        }
        // the node is there: a record (done), or an empty node someone is still filling
        const node = await this.nodes.getRaw(path);
        if (!node) continue;
        if (hasRecord(node.data)) return 'exists';
        const mine = this.placeholders.has(path) || (node.stat.ephemeralOwner !== '0' && node.stat.ephemeralOwner === this.session.current?.id);
        if (mine && this.creating.get(path) === 1) {
          // ours, from an attempt whose answers were lost: seal it (again) and fill it
          const sealed = await this.session.call<void>('set ACL', path, (zk, done) => zk.a_set_acl(path, -1, this.acl, (rc) => done(rc)), [C.ZNONODE]);
          if (sealed.rc === C.ZNONODE) continue;
          const filled = await this.fill(path, data, node.stat.version);
          if (filled !== 'retry') return filled;
          continue;
        }
        if (!waitingSince || waitingSince.czxid !== node.stat.czxid) waitingSince = { czxid: node.stat.czxid, at: Date.now() };
        if (Date.now() - waitingSince.at >= this.opts.placeholderGraceMs) {
          this.opts.log?.warn(
            { path, graceMs: this.opts.placeholderGraceMs },
            'a ZooKeeper node stayed empty (its creator stopped half-way); deleting it and making it again',
          );
          await this.nodes.deleteNode(path, node.stat.version);
          continue;
        }
        await this.session.wait(50);
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
    const r = await this.session.call<NodeStat>(
      'set',
      path,
      (zk, done) => zk.a_set(path, data, version, (rc, _e, stat) => done(rc, stat as unknown as NodeStat)),
      [C.ZBADVERSION, C.ZNONODE],
    );
    this.placeholders.delete(path);
    if (r.rc === C.ZOK) return 'created';
    // deleted under us (another writer's grace ran out): make it again
    if (r.rc === C.ZNONODE) return 'retry';
    return 'exists';
  }

  private async tampered(path: string, why: string): Promise<void> {
    this.stats.tamperedNodes++;
    this.opts.log?.error(
      { path, code: 'STRAIT_STORE_TAMPERED' },
      `a ZooKeeper node strait had just created was changed by another client (${why}); deleting it and making it again`,
    );
    this.placeholders.delete(path);
    await this.nodes.deleteNode(path, -1);
  }

  /** One folder of `Nodes.ensurePath`, made (or found) and sealed in one pipelined step. */
  async createFolder(path: string): Promise<void> {
    const r = await this.createAndSeal(path, C.ZOO_PERSISTENT);
    const why = this.tamperedReason(r);
    if (why || (r.created === C.ZOK && r.stat && r.stat.numChildren > 0)) await this.checkFreshFolder(path, why);
    if (r.created !== C.ZOK && r.created !== C.ZNODEEXISTS) {
      throw new StraitError('STRAIT_STORE', `ZooKeeper create ${path} on ${this.opts.connect} failed: ${codeName(r.created)} (${r.created})`);
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
      throw new StraitError(
        'STRAIT_STORE',
        `the ZooKeeper node ${path} was changed by another client while strait created it (${why}); remove it and start again`,
      );
    }
    await this.session.wait(200);
    for (const child of await this.nodes.children(path)) {
      const at = `${path}/${child}`;
      const r = await this.session.call<SealStat>('get', at, (zk, done) => zk.a_get(at, false, (rc, _e, stat) => done(rc, stat as unknown as SealStat)), [
        C.ZNONODE,
        C.ZNOAUTH,
      ]);
      if (r.rc === C.ZNONODE || (r.rc === C.ZOK && r.value && r.value.aversion > 0)) continue;
      this.stats.tamperedNodes++;
      this.opts.log?.error({ path: at, code: 'STRAIT_STORE_TAMPERED' }, 'an unsealed ZooKeeper node appeared in a folder strait had just created; deleting it');
      await this.nodes.deleteNode(at, -1);
    }
  }

  /**
   * Sets the configured ACL on every node of the deployment (`base`) and on the root folders above it (those this
   * identity may administer), so a tree made before auth was configured, or before a rotation changed `alsoGrant`, is
   * closed and handed over. It writes every node (one setACL each, ~10k nodes in about a second or two): the binding
   * can not read an ACL safely — its getACL callback dereferences a null ACL list when the server answers with an
   * error (node-zk.cpp acl_completion -> deallocate_ACL_vector(NULL)), and a node may vanish or be closed to us
   * between listing and reading. A node this identity may not change is reported.
   */
  async reconcile(base: string): Promise<{ nodes: number; changed: number; refused: string[] }> {
    const want = this.acl;
    const result = { nodes: 0, changed: 0, refused: [] as string[] };
    const seal = async (path: string, above: boolean): Promise<void> => {
      const r = await this.session.call<void>('set ACL', path, (zk, done) => zk.a_set_acl(path, -1, want, (rc) => done(rc)), [C.ZNONODE, C.ZNOAUTH]);
      if (r.rc === C.ZNONODE) return;
      result.nodes++;
      if (r.rc === C.ZOK) result.changed++;
      // a root folder above the deployment that another identity holds (a shared root) is theirs to keep
      else if (!above) result.refused.push(path);
    };
    const walk = async (path: string): Promise<void> => {
      await seal(path, false);
      const kids = await this.nodes.children(path).catch(() => [] as string[]);
      // bounded: a deployment holds a node per partition under offsets/
      for (let i = 0; i < kids.length; i += 64) await Promise.all(kids.slice(i, i + 64).map((k) => walk(`${path}/${k}`)));
    };
    const parts = base.split('/').slice(1);
    for (let i = 1; i < parts.length; i++) await seal(`/${parts.slice(0, i).join('/')}`, true);
    await walk(base);
    this.stats.aclsReconciled += result.changed;
    this.opts.log?.[result.refused.length > 0 ? 'error' : 'info'](
      { nodes: result.nodes, sealed: result.changed, refused: result.refused.slice(0, 20) },
      result.refused.length > 0
        ? 'some ZooKeeper nodes of this deployment can not be changed with store.auth (another identity holds them)'
        : 'ZooKeeper ACLs of this deployment set to store.auth',
    );
    return result;
  }
}
