/**
 * The controller: discovers topics (TopicManager), computes the assignment over registered workers, fences moved
 * partitions with a new epoch, and writes each changed worker's assignment to the store. Workers never rebalance
 * among themselves; only the partitions that move are touched.
 */
import type { RouteConfig, StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { CoordinationStore, StoredRoute } from '../shared/store/store';
import { routePartitionKey, type LoadReport, type PartitionAssignment, type ReportedGap, type WorkerInfo } from '../shared/wire';
import { assign, changedWorkers, type Owned } from './assignment';
import { Checkpointer } from './checkpointer';
import { WorkerReports } from './worker-reports';
import { TopicManager, type DesiredPartition, type RefreshResult, type TopicProblem } from './topic-manager';

export interface ControllerStatus {
  workers: WorkerInfo[];
  routes: Record<string, { topics: Record<string, number>; partitions: number; paused: boolean }>;
  problems: TopicProblem[];
  lastRefresh?: string;
  assigned: number;
  /** sum of the lag the owners of assigned partitions last reported (partitions not reported yet count 0) */
  lag: number;
  /** assigned partitions whose owner reports them making no progress because of an error */
  errored: number;
  /** those partitions, with the code their owner reported */
  erroredPartitions: { route: string; topic: string; partition: number; worker: string; code: string }[];
  /** the offset gaps live workers reported last (records skipped, or a partition stopped by onGap: stop), oldest first */
  gaps: (ReportedGap & { worker: string })[];
}

/** One assigned partition with what its owner last reported (null before the first report). */
export interface PartitionView {
  route: string;
  topic: string;
  partition: number;
  targetTopic: string;
  worker: string;
  epoch: number;
  bytesPerSec: number | null;
  recordsPerSec: number | null;
  lag: number | null;
  errored: boolean;
  /** STRAIT_* partition code while errored, else null */
  errorCode: string | null;
  reportedAt: string | null;
}

/** how many assignment writes run at once (a fleet-wide change is hundreds of writes) */
const WRITE_CONCURRENCY = 16;

export class Controller {
  readonly topics: TopicManager;
  readonly checkpoints: Checkpointer;
  private timer: NodeJS.Timeout | undefined;
  private workers: WorkerInfo[] = [];
  private current = new Map<string, Owned>();
  private readonly epochs = new Map<string, number>();
  private desired = new Map<string, DesiredPartition>();
  private last: RefreshResult | undefined;
  private lastRefresh: Date | undefined;
  private running: Promise<void> | undefined;
  /** the pass queued behind the running one (see tick) */
  private next: Promise<void> | undefined;
  private stopped = false;
  private unwatch: (() => void) | undefined;
  private unwatchReports: (() => void) | undefined;
  private internalReady = false;
  /** what the workers report (loads, weights, gaps) and the anti-entropy check */
  private readonly reports: WorkerReports;
  /** workers that own partitions but are not registered: when they went */
  private readonly departed = new Map<string, number>();
  private graceTimer: NodeJS.Timeout | undefined;
  /** reassignments run one at a time (worker watch, timer, REST) */
  private assigning: Promise<void> = Promise.resolve();
  private unwatchRoutes: (() => void) | undefined;
  /** routes created over REST, as last read from the store (a config-file route of the same name wins) */
  private stored = new Map<string, StoredRoute>();
  /** routes whose committed epochs have been read into `epochs` */
  private readonly epochsLoaded = new Set<string>();
  /** worker id -> the store session it registered on, as last seen */
  private sessions = new Map<string, string | undefined>();
  /** when owned partitions last could move between live workers (a rebalance by load) */
  private lastRebalanceAt = Date.now();
  /** the workers that could receive partitions at the previous reassignment: one not among them has joined */
  private knownWorkers = new Set<string>();
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
    this.reports = new WorkerReports(config, log, metrics);
    this.topics = new TopicManager(config, store, log, () => this.routes());
    this.checkpoints = new Checkpointer(config, log, metrics, () => this.routes().filter((r) => !r.paused && !this.paused.has(r.name)));
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
      for (const p of a?.partitions ?? []) this.current.set(routePartitionKey(p), { worker: w.id, epoch: p.epoch });
    }
    this.stored = await this.store.readRoutes();
    // A worker that lost its store session stopped everything and ignores the assignment it held then; only a newer
    // version starts it again. So every worker gets a fresh write once from a new leader (it may have come back before
    // this controller started), and again whenever it registers on a new session.
    for (const w of this.workers) this.rewrite.add(w.id);
    this.sessions = new Map(this.workers.map((w) => [w.id, w.session]));
    this.knownWorkers = new Set(this.eligibleWorkers());
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
    this.unwatchReports = this.store.watchReports((r) => this.takeReports(r));
    await this.tick();
    // the periodic refresh skips a beat while a pass runs (a slow cluster must not make passes run back to back)
    this.timer = setInterval(() => {
      if (!this.running) void this.tick();
    }, this.config.controller.refreshTopicsIntervalMs);
    this.checkpoints.start();
  }

  /**
   * One refresh + reassignment; never overlaps itself. A call made while a pass runs gets a pass that starts after it
   * (calls made meanwhile share that one): the running pass may have read the state before the caller changed it (a
   * pause, a resume), and the caller's change must have taken effect when its promise resolves.
   */
  tick(): Promise<void> {
    if (this.running) {
      this.next ??= this.running.then(() => {
        this.next = undefined;
        return this.tick();
      });
      return this.next;
    }
    this.running = this.refreshAndAssign()
      .catch((e: Error) => {
        // leadership ended while this pass ran: what it could not write is the next leader's to decide
        if (this.stopped) this.log.info({ err: e.message }, 'controller pass ended with the leadership');
        else this.log.error({ err: e.message }, 'controller refresh failed');
      })
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
    // A route held because its clusters changed loses its partitions (its offsets belong to other clusters).
    const failedRoutes = new Set(result.problems.filter((p) => p.topic === '*' && p.code !== 'STRAIT_CLUSTER_CHANGED').map((p) => p.route));
    const desired = new Map<string, DesiredPartition>();
    for (const p of result.partitions) desired.set(routePartitionKey(p), p);
    for (const [k, p] of this.desired) if (failedRoutes.has(p.route) && !desired.has(k)) desired.set(k, p);
    this.desired = desired;
    await this.reassign();
  }

  /** Takes the workers' load reports (WorkerReports); a worker that runs other partitions than assigned is written again. */
  private takeReports(reports: LoadReport[]): void {
    const repair = this.reports.take(reports, {
      live: new Set(this.workers.map((w) => w.id)),
      current: this.current,
      desired: this.desired,
      rewriting: this.rewrite,
      routes: this.routes().map((r) => r.name),
    });
    if (repair.length === 0) return;
    for (const w of repair) this.rewrite.add(w);
    this.reassign().catch((e: Error) => this.log.error({ err: e.message }, 'writing a repaired assignment failed; retrying next refresh'));
  }

  private reassign(): Promise<void> {
    const run = this.assigning.then(() => this.reassignNow());
    this.assigning = run.catch((e: Error) => this.log.error({ err: e.message }, 'reassignment failed'));
    return run;
  }

  private async reassignNow(): Promise<void> {
    // nothing to assign before the first refresh: an empty desired set would take every partition from every worker
    if (this.stopped || this.last === undefined) return;
    // epochs survive restarts through the store: start above anything a previous controller handed out (for a route
    // created over REST too, which may reuse the name, and so the committed offsets, of a deleted one)
    for (const route of this.routes()) {
      if (this.epochsLoaded.has(route.name)) continue;
      for (const [pk, c] of await this.store.readOffsets(route.name)) {
        const k = `${route.name}|${pk}`; // routePartitionKey of a store key (`topic/partition`)
        this.epochs.set(k, Math.max(this.epochs.get(k) ?? 0, c.epoch));
      }
      this.epochsLoaded.add(route.name);
    }
    const live = new Set(this.workers.map((w) => w.id));
    const holding = this.holdingWorkers(live);
    this.reports.retain(this.desired);
    const eligible = this.eligibleWorkers();
    // Owned partitions move between live workers (a rebalance by load) when a worker joined, or at most once per
    // controller.rebalanceIntervalMs: each move costs a pause and the in-flight window in duplicates, and measured
    // loads are noisy (a partition that just moved reports its catch-up burst). A worker leaving, a new partition or
    // a drain only places what has no live owner, on the least loaded workers. A new leader starts the interval anew,
    // so a controller failover moves nothing by itself.
    const now = Date.now();
    const joined = eligible.some((w) => !this.knownWorkers.has(w));
    const rebalance = joined || now - this.lastRebalanceAt >= this.config.controller.rebalanceIntervalMs;
    this.knownWorkers = new Set(eligible);
    if (rebalance) this.lastRebalanceAt = now;
    const { assignment, moved } = assign({
      current: this.current,
      rebalance,
      workers: eligible,
      partitions: [...this.desired.keys()],
      epochs: this.epochs,
      weights: this.reports.weights,
      tolerance: this.config.controller.balanceTolerance,
      holding: holding.held,
    });
    const changed = changedWorkers(this.current, assignment, moved);
    // a worker back within its grace period lost its session meanwhile and ignores the assignment it had: write it again
    for (const w of holding.returned) if ([...assignment.values()].some((o) => o.worker === w)) changed.add(w);
    // so does a worker that registered on a new store session (and every worker once under a new leader)
    for (const w of this.rewrite) if (live.has(w)) changed.add(w);
    // fence before anyone starts: the previous owner's commits are refused from here on
    const byRoute = new Map<string, { topic: string; partition: number; epoch: number }[]>();
    for (const k of moved) {
      const d = this.desired.get(k)!;
      const epoch = assignment.get(k)!.epoch;
      this.epochs.set(k, epoch);
      let list = byRoute.get(d.route);
      if (!list) byRoute.set(d.route, (list = []));
      list.push({ topic: d.topic, partition: d.partition, epoch });
    }
    for (const [route, list] of byRoute) await this.store.fence(route, list);
    this.current = assignment;
    // one pass over the assignment for every changed worker, not one pass per worker
    const parts = new Map<string, PartitionAssignment[]>([...changed].map((w) => [w, []]));
    for (const [k, o] of assignment) {
      const list = parts.get(o.worker);
      if (!list) continue;
      const d = this.desired.get(k)!;
      list.push({ route: d.route, topic: d.topic, partition: d.partition, targetTopic: d.targetTopic, compression: d.compression, epoch: o.epoch });
    }
    // a departed worker (grace over) gets an empty assignment with a higher version: if it comes back (a new
    // session) it sees that, not the partitions it had, which others own now
    const queue = [...changed];
    const writer = async () => {
      for (let w = queue.shift(); w !== undefined; w = queue.shift()) {
        // a controller being stopped (leadership lost) writes nothing more; the store refuses it anyway (term-bound)
        if (this.stopped) return;
        const list = live.has(w) || holding.held.includes(w) ? parts.get(w)! : [];
        // the definitions of REST-managed routes travel with the assignment, so a worker knows every route it is given
        const defs = [...new Set(list.map((p) => p.route))].flatMap((r) => this.storedRoute(r)?.route ?? []);
        // cleared before the write: a new session registered meanwhile asks again and is not erased afterwards
        this.rewrite.delete(w);
        try {
          await this.store.writeAssignment(w, list, defs);
          this.reports.written(w);
        } catch (e) {
          this.rewrite.add(w);
          throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, queue.length) }, writer));
    this.lastWrites = changed.size;
    this.writesTotal += changed.size;
    if (moved.length > 0) {
      this.metrics.moved.inc(moved.length);
      this.log.info(
        { moved: moved.length, written: changed.size, workers: this.workers.length, holding: holding.held, partitions: assignment.size },
        'assignment updated',
      );
    }
  }

  /**
   * Workers that own partitions but are not registered, still inside `controller.workerGraceMs`: they keep their
   * partitions. Also the workers that came back within it. Arms a timer for the first grace period to end.
   */
  private holdingWorkers(live: ReadonlySet<string>): { held: string[]; returned: string[] } {
    const now = Date.now();
    const grace = this.config.controller.workerGraceMs;
    const owners = new Set<string>();
    for (const o of this.current.values()) owners.add(o.worker);
    const returned: string[] = [];
    for (const w of [...this.departed.keys()]) {
      if (live.has(w)) {
        if (now - this.departed.get(w)! < grace) returned.push(w);
        this.departed.delete(w);
      } else if (!owners.has(w)) {
        this.departed.delete(w);
      }
    }
    for (const w of owners) if (!live.has(w) && !this.departed.has(w)) this.departed.set(w, now);
    const held: string[] = [];
    let next = Infinity;
    for (const [w, at] of this.departed) {
      const left = at + grace - now;
      if (left > 0) {
        held.push(w);
        next = Math.min(next, left);
      }
    }
    clearTimeout(this.graceTimer);
    if (held.length > 0 && !this.stopped) {
      this.log.warn({ workers: held, graceMs: grace }, 'workers gone: their partitions stay theirs until the grace period ends');
      this.graceTimer = setTimeout(() => void this.reassign(), next + 10);
    }
    return { held, returned };
  }

  /** workers written by the last reassignment (the bench and tests check it is proportional to the change) */
  lastWrites = 0;
  /** workers written by every reassignment so far */
  writesTotal = 0;

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

  /** workers registered in the store, drained ones included (strait_controller_workers) */
  registeredWorkers(): number {
    return this.workers.length;
  }

  /** registered workers that may receive partitions (not drained) */
  private eligibleWorkers(): string[] {
    return this.workers.map((w) => w.id).filter((w) => !this.drained.has(w));
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

  /** every assigned partition with its owner's last report */
  partitions(): PartitionView[] {
    const out: PartitionView[] = [];
    for (const [k, o] of this.current) {
      const d = this.desired.get(k);
      if (!d) continue;
      const l = this.reports.loads.get(k);
      const mine = l !== undefined && l.worker === o.worker;
      out.push({
        route: d.route,
        topic: d.topic,
        partition: d.partition,
        targetTopic: d.targetTopic,
        worker: o.worker,
        epoch: o.epoch,
        bytesPerSec: mine ? l.bytesPerSec : null,
        recordsPerSec: mine ? l.recordsPerSec : null,
        lag: mine && l.lag >= 0 ? l.lag : null,
        errored: mine ? l.errored : false,
        errorCode: mine && l.errored ? (l.errorCode ?? null) : null,
        reportedAt: mine ? new Date(l.at).toISOString() : null,
      });
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
    let lag = 0;
    const erroredPartitions: ControllerStatus['erroredPartitions'] = [];
    for (const [k, o] of this.current) {
      const l = this.reports.loads.get(k);
      if (!l || l.worker !== o.worker) continue;
      if (l.lag > 0) lag += l.lag;
      if (l.errored) erroredPartitions.push({ route: l.route, topic: l.topic, partition: l.partition, worker: o.worker, code: l.errorCode ?? 'UNKNOWN' });
    }
    return {
      workers: this.workers,
      routes,
      problems: this.last?.problems ?? [],
      lastRefresh: this.lastRefresh?.toISOString(),
      assigned: this.current.size,
      lag,
      errored: erroredPartitions.length,
      erroredPartitions,
      gaps: this.reports.gapsOf(new Set(this.workers.map((w) => w.id))),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.graceTimer);
    this.unwatch?.();
    this.unwatchReports?.();
    this.unwatchRoutes?.();
    await this.running;
    await this.next;
    await this.assigning;
    await this.checkpoints.stop();
    await this.topics.close();
  }
}
