/**
 * The embedded coordination store of `strait run`: controller and worker in one process, state in one local file
 * (msgpack, written to a temp file, fsynced, renamed), so a restart resumes from the committed offsets.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { StraitError } from '../errors';
import type { RouteConfig } from '../config';
import type { CommitResult, CoordinationStore, LeaderCallbacks, OffsetCommit, RouteClusters, StoredRoute } from './store';
import {
  committedRecord,
  partitionKey,
  sameCommitted,
  type Assignment,
  type CommittedOffset,
  type LoadReport,
  type PartitionAssignment,
  type WorkerInfo,
} from '../wire';

interface FileState {
  format: 1;
  offsets: Record<string, Record<string, CommittedOffset>>;
  managedTopics: Record<string, string[]>;
  assignments: Record<string, Assignment>;
  /** added later in format 1; absent in older files */
  control?: { drained: string[]; paused: string[] };
  /** added later in format 1: routes created over REST */
  routes?: Record<string, StoredRoute>;
  /** added later in format 1: the cluster ids of each route's offsets */
  clusters?: Record<string, RouteClusters>;
}

export class EmbeddedStore implements CoordinationStore {
  private readonly file: string;
  private state: FileState;
  private readonly workers = new Map<string, WorkerInfo>();
  private readonly workerWatchers = new Set<(w: WorkerInfo[]) => void>();
  private readonly assignmentWatchers = new Map<string, Set<(a: Assignment | undefined) => void>>();
  /** load reports live in memory only: a restarted process measures again */
  private readonly reports = new Map<string, LoadReport>();
  private readonly reportWatchers = new Set<(r: LoadReport[]) => void>();
  /** campaigners in arrival order; the first one leads (one process, so nothing else can take it) */
  private readonly campaigners: { id: string; cb: LeaderCallbacks }[] = [];
  private readonly routeWatchers = new Set<(r: Map<string, StoredRoute>) => void>();

  private readonly lockFile: string;
  private locked = false;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'store.msgpack');
    this.lockFile = join(dir, 'store.lock');
    this.lock(dir);
    this.state = { format: 1, offsets: {}, managedTopics: {}, assignments: {} };
    if (existsSync(this.file)) {
      try {
        const loaded = unpack(readFileSync(this.file)) as FileState;
        if (loaded.format !== 1) throw new Error(`unknown format ${String(loaded.format)}`);
        this.state = { ...this.state, ...loaded, assignments: {} };
      } catch (e) {
        throw new StraitError('STRAIT_STORE', `cannot read the embedded store ${this.file}: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  /**
   * One process per store: two `strait run` on one store.path would each replicate every partition and overwrite
   * each other's offsets. The lock file names the holder (pid, host); a holder that is gone (no such process, or not
   * a node process any more) is taken over; a live one is refused, naming it.
   */
  private lock(dir: string): void {
    const mine = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.lockFile, 'wx');
        try {
          writeSync(fd, mine);
        } finally {
          closeSync(fd);
        }
        this.locked = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new StraitError('STRAIT_STORE', `cannot lock the embedded store ${dir}: ${(e as Error).message}`, { cause: e, field: 'store.path' });
      }
      let holder: { pid?: number; host?: string; since?: string } = {};
      try {
        holder = JSON.parse(readFileSync(this.lockFile, 'utf8')) as typeof holder;
      } catch {
        // unreadable or half-written: treated as left behind
      }
      if (typeof holder.pid === 'number' && holder.host === hostname() && processAlive(holder.pid)) {
        throw new StraitError(
          'STRAIT_STORE',
          `the embedded store ${dir} is in use by another strait process (pid ${holder.pid}, since ${holder.since ?? '?'}): stop it, or give this one another store.path`,
          { field: 'store.path' },
        );
      }
      // left by a process that is gone (killed, or the machine restarted): take it over
      try {
        unlinkSync(this.lockFile);
      } catch {
        // another starter removed it first; the next 'wx' decides
      }
    }
    throw new StraitError('STRAIT_STORE', `cannot lock the embedded store ${dir}: another process keeps taking it`, { field: 'store.path' });
  }

  private persist(): void {
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, pack(this.state));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }

  async registerWorker(info: WorkerInfo): Promise<void> {
    this.workers.set(info.id, info);
    const list = [...this.workers.values()];
    for (const cb of this.workerWatchers) queueMicrotask(() => cb(list));
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return [...this.workers.values()];
  }

  watchWorkers(cb: (workers: WorkerInfo[]) => void): () => void {
    this.workerWatchers.add(cb);
    return () => this.workerWatchers.delete(cb);
  }

  async writeAssignment(worker: string, partitions: PartitionAssignment[], routes?: RouteConfig[]): Promise<Assignment> {
    const a: Assignment = {
      worker,
      version: (this.state.assignments[worker]?.version ?? 0) + 1,
      partitions,
      ...(routes && routes.length > 0 ? { routes } : {}),
    };
    this.state.assignments[worker] = a;
    for (const cb of this.assignmentWatchers.get(worker) ?? []) queueMicrotask(() => cb(a));
    return a;
  }

  async readAssignment(worker: string): Promise<Assignment | undefined> {
    return this.state.assignments[worker];
  }

  watchAssignment(worker: string, cb: (a: Assignment | undefined) => void): () => void {
    let set = this.assignmentWatchers.get(worker);
    if (!set) this.assignmentWatchers.set(worker, (set = new Set()));
    set.add(cb);
    return () => set.delete(cb);
  }

  async deleteAssignment(worker: string): Promise<void> {
    if (!(worker in this.state.assignments)) return;
    delete this.state.assignments[worker];
    for (const cb of this.assignmentWatchers.get(worker) ?? []) queueMicrotask(() => cb(undefined));
  }

  async readOffsets(route: string): Promise<Map<string, CommittedOffset>> {
    return new Map(Object.entries(this.state.offsets[route] ?? {}));
  }

  async commitOffsets(route: string, commits: OffsetCommit[]): Promise<CommitResult> {
    const table = (this.state.offsets[route] ??= {});
    const fenced: CommitResult['fenced'] = [];
    let changed = false;
    for (const c of commits) {
      const key = partitionKey(c.topic, c.partition);
      const cur = table[key];
      if (cur && cur.epoch > c.epoch) {
        fenced.push({ topic: c.topic, partition: c.partition, epoch: cur.epoch });
        continue;
      }
      if (!cur || !sameCommitted(cur, c)) {
        table[key] = committedRecord(c);
        changed = true;
      }
    }
    if (changed) this.persist();
    return { fenced };
  }

  async fence(route: string, partitions: { topic: string; partition: number; epoch: number }[]): Promise<void> {
    const table = (this.state.offsets[route] ??= {});
    let changed = false;
    for (const p of partitions) {
      const key = partitionKey(p.topic, p.partition);
      const cur = table[key];
      if (cur && cur.epoch < p.epoch) {
        table[key] = { ...cur, epoch: p.epoch };
        changed = true;
      }
    }
    if (changed) this.persist();
  }

  async readControl(): Promise<{ drained: Set<string>; paused: Set<string> }> {
    return { drained: new Set(this.state.control?.drained ?? []), paused: new Set(this.state.control?.paused ?? []) };
  }

  async setDrained(worker: string, drained: boolean): Promise<void> {
    this.setFlag('drained', worker, drained);
  }

  async setPaused(route: string, paused: boolean): Promise<void> {
    this.setFlag('paused', route, paused);
  }

  private setFlag(kind: 'drained' | 'paused', name: string, on: boolean): void {
    const control = (this.state.control ??= { drained: [], paused: [] });
    const list = control[kind].filter((x) => x !== name);
    if (on) list.push(name);
    control[kind] = list;
    this.persist();
  }

  async readRouteClusters(route: string): Promise<RouteClusters | undefined> {
    return this.state.clusters?.[route];
  }

  async claimRouteClusters(route: string, ids: RouteClusters): Promise<RouteClusters> {
    const all = (this.state.clusters ??= {});
    const held = all[route];
    if (held) return held;
    all[route] = ids;
    this.persist();
    return ids;
  }

  async resetRoute(route: string): Promise<number> {
    const had = Object.keys(this.state.offsets[route] ?? {}).length;
    delete this.state.offsets[route];
    if (this.state.clusters) delete this.state.clusters[route];
    this.persist();
    return had;
  }

  async readManagedTopics(route: string): Promise<Set<string>> {
    return new Set(this.state.managedTopics[route] ?? []);
  }

  async addManagedTopic(route: string, topic: string): Promise<void> {
    const list = (this.state.managedTopics[route] ??= []);
    if (!list.includes(topic)) {
      list.push(topic);
      this.persist();
    }
  }

  async campaign(id: string, cb: LeaderCallbacks): Promise<() => Promise<void>> {
    const entry = { id, cb };
    this.campaigners.push(entry);
    if (this.campaigners[0] === entry) queueMicrotask(() => cb.elected());
    return async () => {
      const i = this.campaigners.indexOf(entry);
      if (i < 0) return;
      this.campaigners.splice(i, 1);
      const next = this.campaigners[0];
      if (i === 0 && next) queueMicrotask(() => next.cb.elected());
    };
  }

  async readLeader(): Promise<string | undefined> {
    return this.campaigners[0]?.id;
  }

  /** The embedded store has no session to lose. */
  onSessionLost(_cb: () => void): () => void {
    return () => {};
  }

  onSessionRestored(_cb: () => void): () => void {
    return () => {};
  }

  // ---- routes managed over REST

  async readRoutes(): Promise<Map<string, StoredRoute>> {
    return new Map(Object.entries(structuredClone(this.state.routes ?? {})));
  }

  async writeRoute(route: RouteConfig): Promise<StoredRoute> {
    const routes = (this.state.routes ??= {});
    const stored: StoredRoute = { route: structuredClone(route), revision: (routes[route.name]?.revision ?? 0) + 1, updatedAt: new Date().toISOString() };
    routes[route.name] = stored;
    this.persist();
    this.routesChanged();
    return structuredClone(stored);
  }

  async deleteRoute(name: string): Promise<boolean> {
    if (!this.state.routes?.[name]) return false;
    delete this.state.routes[name];
    this.persist();
    this.routesChanged();
    return true;
  }

  watchRoutes(cb: (routes: Map<string, StoredRoute>) => void): () => void {
    this.routeWatchers.add(cb);
    void this.readRoutes().then((r) => this.routeWatchers.has(cb) && cb(r));
    return () => this.routeWatchers.delete(cb);
  }

  private routesChanged(): void {
    for (const cb of this.routeWatchers) void this.readRoutes().then((r) => this.routeWatchers.has(cb) && cb(r));
  }

  async close(): Promise<void> {
    if (this.locked) {
      this.locked = false;
      try {
        unlinkSync(this.lockFile);
      } catch {
        // already gone
      }
    }
    this.reportWatchers.clear();
    this.routeWatchers.clear();
    this.workerWatchers.clear();
    this.assignmentWatchers.clear();
    this.campaigners.length = 0;
  }

  // ---- load reports

  async writeReport(report: LoadReport): Promise<void> {
    this.reports.set(report.worker, report);
    const list = [...this.reports.values()];
    for (const cb of this.reportWatchers) queueMicrotask(() => cb(list));
  }

  async readReports(): Promise<LoadReport[]> {
    return [...this.reports.values()];
  }

  watchReports(cb: (reports: LoadReport[]) => void): () => void {
    this.reportWatchers.add(cb);
    const list = [...this.reports.values()];
    queueMicrotask(() => this.reportWatchers.has(cb) && cb(list));
    return () => this.reportWatchers.delete(cb);
  }
}

/** Whether `pid` is a running node process (a pid reused by another program after a restart does not count). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return /node/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // no /proc to ask: a live process it is
  }
}
