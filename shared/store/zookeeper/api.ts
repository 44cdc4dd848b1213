/**
 * The ZooKeeper coordination store of distributed deployments (DESIGN.md, "Coordination store"): the
 * CoordinationStore API. Where each thing is kept: layout.ts; how each record is written: codec.ts; the session and
 * what happens when it is lost: session.ts; authentication, ACLs and the sealing protocol: sealing.ts; how every
 * watch runs: watch.ts; leader election: leader.ts.
 */
import type { RouteConfig } from '../../config';
import type { CommitResult, CoordinationStore, LeaderCallbacks, OffsetCommit, RouteClusters, StoredRoute } from '../store';
import {
  committedRecord,
  partitionKey,
  sameCommitted,
  type Assignment,
  type CommittedOffset,
  type LoadReport,
  type PartitionAssignment,
  type WorkerInfo,
} from '../../wire';
import {
  decodeAssignment,
  decodeOffset,
  decodeReport,
  decodeRouteClusters,
  decodeStoredRoute,
  decodeWorker,
  encodeAssignment,
  encodeFlag,
  encodeManagedTopic,
  encodeOffset,
  encodeReport,
  encodeRouteClusters,
  encodeStoredRoute,
  encodeWorker,
} from './codec';
import { Election } from './leader';
import { Layout, parentOf, unsegment } from './layout';
import { Nodes } from './nodes';
import { fillOptions, type FilledOptions, type StoreStats, type ZooKeeperStoreOptions } from './options';
import { aclFor } from './sealing';
import { C, SessionKeeper } from './session';
import { RESET, WatchSet, type Watch } from './watch';

export class ZooKeeperStore implements CoordinationStore {
  /** counters for operators (and tests): how often a versioned write lost a race and was retried, sessions opened */
  readonly stats: StoreStats = { versionConflicts: 0, sessions: 0, sessionsLost: 0, tamperedNodes: 0, aclsReconciled: 0 };

  private readonly opts: FilledOptions;
  private readonly layout: Layout;
  private readonly session: SessionKeeper;
  private readonly nodes: Nodes;
  private readonly watches: WatchSet;
  private readonly election: Election;
  /** ephemeral nodes this process keeps (worker registrations): path -> data, created again on a new session */
  private readonly ephemerals = new Map<string, Buffer>();

  private constructor(opts: ZooKeeperStoreOptions) {
    this.opts = fillOptions(opts);
    this.layout = new Layout(this.opts.root, opts.deployment);
    const acl = opts.auth ? aclFor(opts.auth) : undefined;
    this.session = new SessionKeeper(this.opts, this.stats, {
      stopOwnership: () => this.election.stepDown(),
      reestablish: () => this.reestablish(),
    });
    this.nodes = new Nodes(this.session, this.opts, this.stats, acl);
    this.watches = new WatchSet(() => !this.session.closed, this.opts.log);
    this.election = new Election(this.session, this.nodes, this.watches, this.layout.leader, this.opts.log);
  }

  /**
   * Opens a session (StraitError STRAIT_STORE naming the connect string if none comes within connectTimeoutMs) and
   * creates the deployment's folders.
   */
  static async connect(opts: ZooKeeperStoreOptions): Promise<ZooKeeperStore> {
    const store = new ZooKeeperStore(opts);
    await store.session.start();
    try {
      for (const dir of store.layout.folders) await store.nodes.ensurePath(dir);
      if (store.nodes.sealer && store.opts.reconcileAcls) await store.reconcileAcls();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  /** the current session's id (hex), if there is one */
  get sessionId(): string | undefined {
    return this.session.current?.id || undefined;
  }

  /**
   * The current session's id and password (hex), e.g. for an operator tool or a test that takes the session over
   * and closes it, which expires it for real.
   */
  sessionCredentials(): { id: string; password: string } | undefined {
    const s = this.session.current;
    return s?.id ? { id: s.id, password: String(s.zk.client_password) } : undefined;
  }

  /** With `auth`: the configured ACL set on every node of the deployment (sealing.ts, `Sealer.reconcile`). */
  async reconcileAcls(): Promise<{ nodes: number; changed: number; refused: string[] }> {
    if (!this.nodes.sealer) return { nodes: 0, changed: 0, refused: [] };
    return this.nodes.sealer.reconcile(this.layout.base);
  }

  /** After a new session (session.ts): ephemeral nodes again, campaigns again, watches re-armed (each delivers). */
  private async reestablish(): Promise<void> {
    for (const [path, data] of this.ephemerals) await this.nodes.createEphemeral(path, data, 'worker');
    this.election.rearm();
    await this.watches.rearmAll();
  }

  // ---- workers

  async registerWorker(info: WorkerInfo): Promise<void> {
    const path = this.layout.worker(info.id);
    const data = encodeWorker(info);
    this.ephemerals.set(path, data);
    await this.nodes.createEphemeral(path, data, 'worker');
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return this.readWorkers(await this.nodes.children(this.layout.workers));
  }

  /** `onEvent`: leave a data watch on each node too (a registration still being filled counts once it is) */
  private async readWorkers(names: string[], onEvent?: () => void): Promise<WorkerInfo[]> {
    const dir = this.layout.workers;
    const read = (path: string) => (onEvent ? this.nodes.getWatch(path, onEvent) : this.nodes.getNode(path));
    const nodes = await Promise.all(names.map(async (n) => ({ path: `${dir}/${n}`, node: await read(`${dir}/${n}`) })));
    const out: WorkerInfo[] = [];
    for (const { path, node } of nodes) if (node) out.push(decodeWorker(node.data, path, node.stat.ephemeralOwner));
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Delivers the full list once the watch is armed, then after every change of the set of workers. */
  watchWorkers(cb: (workers: WorkerInfo[]) => void): () => void {
    const dir = this.layout.workers;
    return this.watches.start(dir, async (w) => {
      const names = await this.nodes.childrenWatch(dir, w.rearm);
      const list = await this.readWorkers(names, w.rearm);
      // a worker registered again on a new session counts as a change (see WorkerInfo.session)
      const key = list.map((x) => `${x.id} ${x.session ?? ''}`).join('\n');
      if (w.fresh(key)) this.session.safely(() => cb(list), 'workers watch callback');
    });
  }

  // ---- assignments

  async writeAssignment(worker: string, partitions: PartitionAssignment[], routes?: RouteConfig[]): Promise<Assignment> {
    const guard = this.election.guard(`write the assignment of worker '${worker}'`);
    const path = this.layout.assignment(worker);
    const parts = partitions.map((p) => ({
      route: p.route,
      topic: p.topic,
      partition: p.partition,
      targetTopic: p.targetTopic,
      compression: p.compression,
      epoch: p.epoch,
    }));
    const extra = routes && routes.length > 0 ? { routes } : {};
    for (;;) {
      const cur = await this.nodes.getNode(path);
      if (!cur) {
        const a: Assignment = { worker, version: 1, partitions: parts, ...extra };
        guard?.(await this.session.liveSession(Date.now() + this.opts.operationTimeoutMs));
        if ((await this.nodes.createNode(path, encodeAssignment(a, path), C.ZOO_PERSISTENT)) === 'created') return a;
      } else {
        const a: Assignment = { worker, version: decodeAssignment(cur.data, path).version + 1, partitions: parts, ...extra };
        if (await this.nodes.setNode(path, encodeAssignment(a, path), cur.stat.version, guard)) return a;
      }
      this.stats.versionConflicts++;
    }
  }

  async readAssignment(worker: string): Promise<Assignment | undefined> {
    const path = this.layout.assignment(worker);
    const node = await this.nodes.getNode(path);
    return node ? decodeAssignment(node.data, path) : undefined;
  }

  async deleteAssignment(worker: string): Promise<void> {
    const path = this.layout.assignment(worker);
    await this.nodes.deleteNode(path, -1, this.election.guard(`delete the assignment of worker '${worker}'`));
  }

  /** Delivers the current assignment (or undefined) once the watch is armed, then after every write or delete. */
  watchAssignment(worker: string, cb: (a: Assignment | undefined) => void): () => void {
    const path = this.layout.assignment(worker);
    return this.watches.start(path, async (w) => {
      const stat = await this.nodes.existsWatch(path, w.rearm);
      let a: Assignment | undefined;
      let key = 'none';
      if (stat) {
        const node = await this.nodes.getNode(path);
        // deleted between the two reads, or not filled yet: the exists watch fires on either, and runs this again
        if (node) {
          a = decodeAssignment(node.data, path);
          key = `${node.stat.czxid}:${node.stat.version}`;
        }
      }
      if (w.fresh(key)) this.session.safely(() => cb(a), 'assignment watch callback');
    });
  }

  // ---- offsets

  async readOffsets(route: string): Promise<Map<string, CommittedOffset>> {
    const dir = this.layout.offsetsRoute(route);
    const out = new Map<string, CommittedOffset>();
    const topics = await this.nodes.children(dir);
    await Promise.all(
      topics.map(async (t) => {
        const partitions = await this.nodes.children(`${dir}/${t}`);
        await Promise.all(
          partitions.map(async (p) => {
            if (!/^\d+$/.test(p)) return;
            const path = `${dir}/${t}/${p}`;
            const node = await this.nodes.getNode(path);
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
    const path = this.layout.offset(route, c.topic, c.partition);
    const data = encodeOffset(committedRecord(c));
    for (;;) {
      const cur = await this.nodes.getNode(path);
      if (!cur) {
        if (!this.nodes.knownPaths.has(parentOf(path))) await this.nodes.ensurePath(parentOf(path));
        if ((await this.nodes.createNode(path, data, C.ZOO_PERSISTENT)) === 'created') return undefined;
      } else {
        const rec = decodeOffset(cur.data, path);
        if (rec.epoch > c.epoch) return { topic: c.topic, partition: c.partition, epoch: rec.epoch };
        if (rec.offset !== undefined && sameCommitted({ ...rec, offset: rec.offset }, c)) return undefined;
        if (await this.nodes.setNode(path, data, cur.stat.version)) return undefined;
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
        const path = this.layout.offset(route, p.topic, p.partition);
        for (;;) {
          const cur = await this.nodes.getNode(path);
          if (!cur) return;
          const rec = decodeOffset(cur.data, path);
          if (rec.epoch >= p.epoch) return;
          if (await this.nodes.setNode(path, encodeOffset({ ...rec, epoch: p.epoch }), cur.stat.version)) return;
          this.stats.versionConflicts++;
        }
      }),
    );
  }

  // ---- cluster ids of a route's offsets

  async readRouteClusters(route: string): Promise<RouteClusters | undefined> {
    const path = this.layout.clusters(route);
    const node = await this.nodes.getNode(path);
    return node ? decodeRouteClusters(node.data, path) : undefined;
  }

  async claimRouteClusters(route: string, ids: RouteClusters): Promise<RouteClusters> {
    // create-if-absent: of two claimers the first wins and the other reads its record
    if ((await this.nodes.createNode(this.layout.clusters(route), encodeRouteClusters(ids), C.ZOO_PERSISTENT)) === 'created') return ids;
    return (await this.readRouteClusters(route)) ?? ids;
  }

  async resetRoute(route: string): Promise<number> {
    const dir = this.layout.offsetsRoute(route);
    let had = 0;
    // the partition nodes only: the topic folders stay, as other processes know them (knownPaths) and commit into them
    for (const t of await this.nodes.children(dir)) {
      for (const p of await this.nodes.children(`${dir}/${t}`)) if (await this.nodes.deleteNode(`${dir}/${t}/${p}`, -1)) had++;
    }
    await this.nodes.deleteNode(this.layout.clusters(route), -1);
    return had;
  }

  // ---- operator control: <base>/control/drained/<worker>, <base>/control/paused/<route> (presence is the state)

  async readControl(): Promise<{ drained: Set<string>; paused: Set<string> }> {
    const [drained, paused] = await Promise.all([this.nodes.children(this.layout.drained), this.nodes.children(this.layout.paused)]);
    return { drained: new Set(drained.map(unsegment)), paused: new Set(paused.map(unsegment)) };
  }

  async setDrained(worker: string, drained: boolean): Promise<void> {
    await this.setFlag(this.layout.drainedWorker(worker), drained);
  }

  async setPaused(route: string, paused: boolean): Promise<void> {
    await this.setFlag(this.layout.pausedRoute(route), paused);
  }

  private async setFlag(path: string, on: boolean): Promise<void> {
    if (on) await this.nodes.createNode(path, encodeFlag(), C.ZOO_PERSISTENT);
    else await this.nodes.deleteNode(path, -1);
  }

  // ---- managed topics

  async readManagedTopics(route: string): Promise<Set<string>> {
    return new Set((await this.nodes.children(this.layout.managedRoute(route))).map(unsegment));
  }

  async addManagedTopic(route: string, topic: string): Promise<void> {
    await this.nodes.createNode(this.layout.managedTopic(route, topic), encodeManagedTopic(), C.ZOO_PERSISTENT);
  }

  // ---- load reports

  /**
   * Overwrites the worker's report node, or creates it (ephemeral: it goes with this session). After a session
   * loss the next report creates it again; it is not one of the registrations `restore` re-creates.
   */
  async writeReport(report: LoadReport): Promise<void> {
    const path = this.layout.report(report.worker);
    const data = encodeReport(report);
    for (;;) {
      if (this.session.closed) throw this.session.closedError();
      if (await this.nodes.setNode(path, data, -1)) return;
      if ((await this.nodes.createNode(path, data, C.ZOO_EPHEMERAL)) === 'created') return;
    }
  }

  async readReports(): Promise<LoadReport[]> {
    const dir = this.layout.reports;
    const names = await this.nodes.children(dir);
    const nodes = await Promise.all(names.map(async (n) => ({ path: `${dir}/${n}`, node: await this.nodes.getNode(`${dir}/${n}`) })));
    const out: LoadReport[] = [];
    for (const { path, node } of nodes) {
      const report = node && this.readableReport(node.data, path);
      if (report) out.push(report);
    }
    return out;
  }

  /** A report node's record; an unreadable one is logged and skipped. */
  private readableReport(data: Buffer | null, path: string): LoadReport | undefined {
    try {
      return decodeReport(data, path);
    } catch (e) {
      this.opts.log?.warn({ err: (e as Error).message }, 'skipping an unreadable load report');
      return undefined;
    }
  }

  /**
   * One children watch on reports/ and one data watch per report node, so a new report costs one read of that node
   * (not of all of them). The first delivery comes once every node present is read.
   */
  watchReports(cb: (reports: LoadReport[]) => void): () => void {
    const dir = this.layout.reports;
    const known = new Map<string, LoadReport>();
    const nodes = new Map<string, Watch>();
    /** >0 while the list watch reads new nodes: they deliver once, together */
    let batching = 0;
    const deliver = () => {
      if (list.live() && batching === 0) this.session.safely(() => cb([...known.values()]), 'reports watch callback');
    };
    const nodeWatch = (name: string): Watch => {
      const path = `${dir}/${name}`;
      return this.watches.add(path, async (w) => {
        const node = await this.nodes.getWatch(path, w.rearm);
        if (!w.fresh(node ? `${node.stat.czxid}:${node.stat.version}` : 'none')) return;
        known.delete(name);
        const report = node && this.readableReport(node.data, path);
        if (report) known.set(name, report);
        deliver();
      });
    };
    const list = this.watches.add(dir, async (w) => {
      const names = new Set(await this.nodes.childrenWatch(dir, w.rearm));
      if (!w.live()) return;
      let changed = w.last === RESET;
      w.last = 'armed';
      for (const [name, n] of nodes) {
        if (names.has(name)) continue;
        this.watches.stop(n);
        nodes.delete(name);
        if (known.delete(name)) changed = true;
      }
      const reads: Promise<void>[] = [];
      for (const name of names) {
        if (nodes.has(name)) continue;
        const n = nodeWatch(name);
        nodes.set(name, n);
        reads.push(n.job.trigger());
        changed = true;
      }
      batching++;
      try {
        await Promise.all(reads);
      } finally {
        batching--;
      }
      if (changed) deliver();
    });
    void list.job.trigger();
    return () => {
      this.watches.stop(list);
      for (const n of nodes.values()) this.watches.stop(n);
    };
  }

  // ---- leader election

  campaign(id: string, cb: LeaderCallbacks): Promise<() => Promise<void>> {
    return this.election.campaign(id, cb);
  }

  readLeader(): Promise<string | undefined> {
    return this.election.readLeader();
  }

  // ---- routes managed over REST

  async readRoutes(): Promise<Map<string, StoredRoute>> {
    const dir = this.layout.routes;
    const names = await this.nodes.children(dir);
    const out = new Map<string, StoredRoute>();
    await Promise.all(
      names.map(async (n) => {
        const node = await this.nodes.getNode(`${dir}/${n}`);
        if (node) out.set(unsegment(n), decodeStoredRoute(node.data, `${dir}/${n}`));
      }),
    );
    return out;
  }

  /** Read, write with the version read (a lost race reads again), so concurrent writers never skip a revision. */
  async writeRoute(route: RouteConfig): Promise<StoredRoute> {
    const path = this.layout.route(route.name);
    for (;;) {
      const cur = await this.nodes.getNode(path);
      const stored: StoredRoute = { route, revision: cur ? decodeStoredRoute(cur.data, path).revision + 1 : 1, updatedAt: new Date().toISOString() };
      const data = encodeStoredRoute(stored);
      if (!cur) {
        if ((await this.nodes.createNode(path, data, C.ZOO_PERSISTENT)) === 'created') return stored;
      } else if (await this.nodes.setNode(path, data, cur.stat.version)) {
        return stored;
      }
      this.stats.versionConflicts++;
    }
  }

  async deleteRoute(name: string): Promise<boolean> {
    return this.nodes.deleteNode(this.layout.route(name), -1);
  }

  /** A watch on the folder (routes created or deleted) and on every route's node (routes updated). */
  watchRoutes(cb: (routes: Map<string, StoredRoute>) => void): () => void {
    const dir = this.layout.routes;
    return this.watches.start(dir, async (w) => {
      const names = await this.nodes.childrenWatch(dir, w.rearm);
      const out = new Map<string, StoredRoute>();
      const versions: string[] = [];
      for (const n of names.sort()) {
        const node = await this.nodes.getWatch(`${dir}/${n}`, w.rearm);
        if (!node) continue;
        out.set(unsegment(n), decodeStoredRoute(node.data, `${dir}/${n}`));
        versions.push(`${n}:${node.stat.czxid}:${node.stat.version}`);
      }
      if (w.fresh(versions.join('\n'))) this.session.safely(() => cb(out), 'routes watch callback');
    });
  }

  // ---- session callbacks, close

  onSessionLost(cb: () => void): () => void {
    return this.session.onSessionLost(cb);
  }

  onSessionRestored(cb: () => void): () => void {
    return this.session.onSessionRestored(cb);
  }

  /** Closes the session (the server drops its ephemeral nodes at once) and every watch; no handle or timer is left. */
  async close(): Promise<void> {
    if (this.session.closed) return;
    this.watches.close();
    this.election.close();
    this.session.close();
  }
}
