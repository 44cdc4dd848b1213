/**
 * The controller: discovers topics (TopicManager), computes the assignment over registered workers, fences moved
 * partitions with a new epoch, and writes each changed worker's assignment to the store. Workers never rebalance
 * among themselves; only the partitions that move are touched.
 */
import type { RouteConfig, StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { CoordinationStore, StoredRoute } from '../shared/store';
import { partitionKey, type PartitionAssignment, type WorkerInfo } from '../shared/wire';
import { assign, type Owned } from './assignment';
import { TopicManager, type DesiredPartition, type RefreshResult, type TopicProblem } from './topic-manager';

export interface ControllerStatus {
  workers: WorkerInfo[];
  routes: Record<string, { topics: Record<string, number>; partitions: number; paused: boolean }>;
  problems: TopicProblem[];
  lastRefresh?: string;
  assigned: number;
}

function key(p: { route: string; topic: string; partition: number }): string {
  return `${p.route}|${partitionKey(p.topic, p.partition)}`;
}

export class Controller {
  readonly topics: TopicManager;
  private timer: NodeJS.Timeout | undefined;
  private workers: WorkerInfo[] = [];
  private current = new Map<string, Owned>();
  private readonly epochs = new Map<string, number>();
  private desired = new Map<string, DesiredPartition>();
  private last: RefreshResult | undefined;
  private lastRefresh: Date | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private unwatch: (() => void) | undefined;
  private unwatchRoutes: (() => void) | undefined;
  /** routes created over REST, as last read from the store (a config-file route of the same name wins) */
  private stored = new Map<string, StoredRoute>();
  /** routes whose committed epochs have been read into `epochs` */
  private readonly epochsLoaded = new Set<string>();
  /** worker id -> the store session it registered on, as last seen */
  private sessions = new Map<string, string | undefined>();
  /** workers whose assignment is written again at the next reassignment, even if none of their partitions moved */
  private readonly rewrite = new Set<string>();
  readonly paused = new Set<string>();
  /** workers that keep running but receive no partitions (operator drain) */
  readonly drained = new Set<string>();

  constructor(
    private readonly config: StraitConfig,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {
    this.topics = new TopicManager(config, store, log, () => this.routes());
  }

  /** The routes to replicate: the config file's, then those created over REST. */
  routes(): RouteConfig[] {
    const fromFile = new Set(this.config.routes.map((r) => r.name));
    return [...this.config.routes, ...[...this.stored.values()].filter((s) => !fromFile.has(s.route.name)).map((s) => s.route)];
  }

  /** A REST-managed route by name (undefined for config-file routes and unknown names). */
  storedRoute(name: string): StoredRoute | undefined {
    return this.config.routes.some((r) => r.name === name) ? undefined : this.stored.get(name);
  }

  /** Creates or replaces a REST-managed route; its partitions follow at once. */
  async putRoute(route: RouteConfig): Promise<StoredRoute> {
    const s = await this.store.writeRoute(route);
    this.useStoredRoutes(new Map(this.stored).set(route.name, s));
    await this.tick();
    return s;
  }

  /** Deletes a REST-managed route: its partitions are unassigned; committed offsets stay in the store. */
  async deleteRoute(name: string): Promise<boolean> {
    const had = await this.store.deleteRoute(name);
    if (this.paused.has(name)) await this.setPaused(name, false);
    const next = new Map(this.stored);
    next.delete(name);
    this.useStoredRoutes(next);
    await this.tick();
    return had;
  }

  /** A changed definition is sent again to every worker holding partitions of that route. */
  private useStoredRoutes(next: Map<string, StoredRoute>): void {
    const changed = new Set<string>();
    for (const [name, s] of next) if (this.stored.get(name)?.revision !== s.revision) changed.add(name);
    for (const name of this.stored.keys()) if (!next.has(name)) changed.add(name);
    this.stored = next;
    if (changed.size === 0) return;
    for (const [k, o] of this.current) if (changed.has(k.slice(0, k.indexOf('|')))) this.rewrite.add(o.worker);
    this.log.info({ routes: [...changed] }, 'routes managed over REST changed');
  }

  async start(): Promise<void> {
    const control = await this.store.readControl();
    for (const r of control.paused) this.paused.add(r);
    for (const w of control.drained) this.drained.add(w);
    this.workers = await this.store.listWorkers();
    // A controller that takes over (standby elected, or restarted) continues from the assignments in the store, so
    // nothing moves just because the leader changed.
    for (const w of this.workers) {
      const a = await this.store.readAssignment(w.id);
      for (const p of a?.partitions ?? []) this.current.set(key(p), { worker: w.id, epoch: p.epoch });
    }
    this.stored = await this.store.readRoutes();
    // A worker that lost its store session stopped everything and ignores the assignment it held then; only a newer
    // version starts it again. So every worker gets a fresh write once from a new leader (it may have come back before
    // this controller started), and again whenever it registers on a new session.
    for (const w of this.workers) this.rewrite.add(w.id);
    this.sessions = new Map(this.workers.map((w) => [w.id, w.session]));
    this.unwatch = this.store.watchWorkers((w) => {
      for (const x of w) if (this.sessions.get(x.id) !== x.session) this.rewrite.add(x.id);
      this.sessions = new Map(w.map((x) => [x.id, x.session]));
      this.workers = w;
      this.reassign().catch((e: Error) => this.log.error({ err: e.message }, 'reassignment after a worker change failed; retrying next refresh'));
    });
    this.unwatchRoutes = this.store.watchRoutes((r) => {
      this.useStoredRoutes(r);
      void this.tick();
    });
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.config.controller.refreshTopicsIntervalMs);
  }

  /** One refresh + reassignment; never overlaps itself. */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.refreshAndAssign()
      .catch((e: Error) => this.log.error({ err: e.message }, 'controller refresh failed'))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async refreshAndAssign(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.topics.ensureInternalTopics();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot create strait internal topics yet; retrying');
    }
    const result = await this.topics.refresh(this.paused);
    this.last = result;
    this.lastRefresh = new Date();
    this.metrics.topicErrors.reset();
    for (const p of result.problems) {
      this.metrics.topicErrors.set({ route: p.route, topic: p.topic, code: p.code }, 1);
      this.log.error({ route: p.route, topic: p.topic, targetTopic: p.targetTopic, code: p.code }, p.message);
    }
    // A route whose source could not be read keeps its current partitions (the data path does not depend on us).
    const failedRoutes = new Set(result.problems.filter((p) => p.topic === '*').map((p) => p.route));
    const desired = new Map<string, DesiredPartition>();
    for (const p of result.partitions) desired.set(key(p), p);
    for (const [k, p] of this.desired) if (failedRoutes.has(p.route) && !desired.has(k)) desired.set(k, p);
    this.desired = desired;
    await this.reassign();
  }

  private async reassign(): Promise<void> {
    // nothing to assign before the first refresh: an empty desired set would take every partition from every worker
    if (this.stopped || this.last === undefined) return;
    // epochs survive restarts through the store: start above anything a previous controller handed out (for a route
    // created over REST too, which may reuse the name, and so the committed offsets, of a deleted one)
    for (const route of this.routes()) {
      if (this.epochsLoaded.has(route.name)) continue;
      for (const [pk, c] of await this.store.readOffsets(route.name)) {
        const k = `${route.name}|${pk}`;
        this.epochs.set(k, Math.max(this.epochs.get(k) ?? 0, c.epoch));
      }
      this.epochsLoaded.add(route.name);
    }
    const { assignment, moved } = assign({
      current: this.current,
      workers: this.workers.map((w) => w.id).filter((w) => !this.drained.has(w)),
      partitions: [...this.desired.keys()],
      epochs: this.epochs,
    });
    const changedWorkers = new Set<string>();
    for (const k of moved) {
      changedWorkers.add(assignment.get(k)!.worker);
      const before = this.current.get(k);
      if (before) changedWorkers.add(before.worker);
    }
    for (const [k, o] of this.current) if (!assignment.has(k)) changedWorkers.add(o.worker);
    const live = new Set(this.workers.map((w) => w.id));
    for (const w of this.rewrite) if (live.has(w)) changedWorkers.add(w);
    // fence before anyone starts: the previous owner's commits are refused from here on
    const byRoute = new Map<string, { topic: string; partition: number; epoch: number }[]>();
    for (const k of moved) {
      const d = this.desired.get(k)!;
      const epoch = assignment.get(k)!.epoch;
      this.epochs.set(k, epoch);
      byRoute.set(d.route, [...(byRoute.get(d.route) ?? []), { topic: d.topic, partition: d.partition, epoch }]);
    }
    for (const [route, list] of byRoute) await this.store.fence(route, list);
    this.current = assignment;
    for (const w of changedWorkers) {
      const parts: PartitionAssignment[] = [];
      for (const [k, o] of assignment) {
        if (o.worker !== w) continue;
        const d = this.desired.get(k)!;
        parts.push({ route: d.route, topic: d.topic, partition: d.partition, targetTopic: d.targetTopic, compression: d.compression, epoch: o.epoch });
      }
      // a departed worker gets an empty assignment with a higher version: if it comes back (a new session) it sees
      // that, not the partitions it had, which others own now
      const defs = [...new Set(parts.map((p) => p.route))].flatMap((r) => this.storedRoute(r)?.route ?? []);
      await this.store.writeAssignment(w, live.has(w) ? parts : [], live.has(w) ? defs : []);
      this.rewrite.delete(w);
    }
    if (moved.length > 0) this.log.info({ moved: moved.length, workers: this.workers.length, partitions: assignment.size }, 'assignment updated');
  }

  /** Pauses or resumes a route (kept in the store, so a new leader keeps it); its partitions stop or start. */
  async setPaused(route: string, paused: boolean): Promise<void> {
    await this.store.setPaused(route, paused);
    if (paused) this.paused.add(route);
    else this.paused.delete(route);
    await this.tick();
  }

  /** Drains a worker (its partitions move to the others; it gets none until undrained), kept in the store. */
  async setDrained(worker: string, drained: boolean): Promise<number> {
    await this.store.setDrained(worker, drained);
    const before = this.assignments().filter((a) => a.worker === worker).length;
    if (drained) this.drained.add(worker);
    else this.drained.delete(worker);
    await this.reassign();
    return before;
  }

  /** partition -> worker and epoch, as last written */
  assignments(): { route: string; topic: string; partition: number; targetTopic: string; worker: string; epoch: number }[] {
    const out = [];
    for (const [k, o] of this.current) {
      const d = this.desired.get(k);
      if (d) out.push({ route: d.route, topic: d.topic, partition: d.partition, targetTopic: d.targetTopic, worker: o.worker, epoch: o.epoch });
    }
    return out;
  }

  /** partitions that should be replicated (routes not paused, topics not held) */
  desiredCount(): number {
    return this.desired.size;
  }

  status(): ControllerStatus {
    const routes: ControllerStatus['routes'] = {};
    for (const r of this.routes()) {
      const topics = this.last?.topics[r.name] ?? {};
      routes[r.name] = { topics, partitions: Object.values(topics).reduce((a, b) => a + b, 0), paused: r.paused || this.paused.has(r.name) };
    }
    return { workers: this.workers, routes, problems: this.last?.problems ?? [], lastRefresh: this.lastRefresh?.toISOString(), assigned: this.current.size };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.unwatch?.();
    this.unwatchRoutes?.();
    await this.running;
    await this.topics.close();
  }
}
