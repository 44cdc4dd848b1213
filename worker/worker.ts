/**
 * The worker process's control plane (main thread): registers in the store, watches its own assignment, and starts
 * or stops only the partitions that changed — no other partition pauses.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { RouteConfig, StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { CoordinationStore } from '../shared/store/store';
import { routePartitionKey, type Assignment, type PartitionAssignment } from '../shared/wire';
import { Pipeline } from './pipeline';

const pkg = require('../../package.json') as { version: string };

/** how many of its most recent offset gaps a worker's load report carries (the controller shows them) */
const REPORTED_GAPS = 20;

/** how long a worker waits before it tries again to start assigned partitions that could not start */
const ASSIGN_RETRY_MS = 5000;
/** how often running partitions' source topic ids are compared with the ones they started with (at least) */
const TOPIC_ID_CHECK_MS = 10_000;
/** an exactly-once partition fenced while this worker owns it starts again after this, times its streak (capped) */
const FENCED_RESTART_MS = 1000;
const FENCED_RESTART_MAX_MS = 30_000;

/** JSON with object keys sorted (and undefined fields dropped), so two equal route definitions compare equal */
function canonical(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export class Worker {
  readonly id: string;
  readonly pipeline: Pipeline;
  private owned = new Map<string, PartitionAssignment>();
  private unwatch: (() => void) | undefined;
  private applying: Promise<void> = Promise.resolve();
  /** assignments up to this version are stale (this worker lost its session holding them) */
  private staleUpTo = 0;
  private lastVersion = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  private topicIdTimer: NodeJS.Timeout | undefined;
  private checkingIds = false;
  private stopping = false;
  private reporting: Promise<void> | undefined;
  private lastReportAt = Date.now();
  /** the assignment applied last, applied again by `retryTimer` while some of its partitions could not start */
  private current: Assignment | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** restarts of fenced exactly-once partitions waiting for their time (restartFenced) */
  private readonly fencedTimers = new Set<NodeJS.Timeout>();
  /** routes whose definition in the last assignment could not be verified (name -> assignment version) */
  readonly unverifiedRoutes = new Map<string, number>();

  constructor(
    private readonly config: StraitConfig,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {
    this.id = config.worker.id ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
    this.pipeline = new Pipeline(config, this.id, store, log, metrics);
    this.pipeline.onFenced = (key, streak) => this.restartFenced(key, streak);
  }

  async start(): Promise<void> {
    this.pipeline.start();
    this.unwatch = this.store.watchAssignment(this.id, (a) => this.enqueue(a));
    await this.store.registerWorker({
      id: this.id,
      host: hostname(),
      pid: process.pid,
      threads: this.config.worker.threads,
      version: pkg.version,
      startedAt: new Date().toISOString(),
    });
    this.enqueue(await this.store.readAssignment(this.id));
    this.reportTimer = setInterval(() => void this.report(), this.config.worker.reportIntervalMs);
    this.topicIdTimer = setInterval(() => void this.checkTopicIds(), Math.max(this.config.worker.reportIntervalMs, TOPIC_ID_CHECK_MS));
  }

  /**
   * A source topic deleted and created again while its partitions run here: they are stopped and started again
   * (in line with assignments, never beside one), which starts them at the new topic's log start and reports the
   * `recreated` gap. Records the consumer read from the new topic at the old position before this check are sent
   * again (duplicates, never a loss).
   */
  private async checkTopicIds(): Promise<void> {
    if (this.checkingIds) return;
    this.checkingIds = true;
    try {
      const keys = await this.pipeline.recreatedTopics();
      if (keys.length === 0 || this.stopping) return;
      await this.restartOwned(
        keys,
        "source topics were deleted and created again while their partitions ran here: restarting them at the new topics' log start",
      );
    } finally {
      this.checkingIds = false;
    }
  }

  /**
   * An exactly-once partition's transactional producer was fenced while this worker still owns it: a previous owner
   * that had not yet stopped it (its unassign still on the way) initialised the same transactional id after this worker
   * did. The partition starts again here, after FENCED_RESTART_MS times its streak: the start fences that producer in
   * turn and resumes from the target's offset map, so nothing the fenced transaction held is lost or doubled. A
   * partition this worker no longer owns stays stopped; one the store shows under a newer epoch is not started
   * (Pipeline.assign), so two workers never take turns fencing each other.
   */
  private restartFenced(key: string, streak: number): void {
    if (this.stopping) return;
    const timer = setTimeout(
      () => {
        this.fencedTimers.delete(timer);
        if (this.stopping || !this.owned.has(key)) return;
        void this.restartOwned([key], 'an exactly-once partition fenced while this worker owns it: starting it again from the offset map');
      },
      Math.min(FENCED_RESTART_MAX_MS, FENCED_RESTART_MS * Math.max(1, streak)),
    );
    this.fencedTimers.add(timer);
  }

  /**
   * Stops owned partitions (`keys`, route|topic/partition) and starts them again, in line with assignments (never
   * beside one): their start is planned anew. A key this worker does not own (any more) is left alone.
   */
  private restartOwned(keys: string[], why: string): Promise<void> {
    this.applying = this.applying
      .then(async () => {
        const parts = keys.flatMap((k) => this.owned.get(k) ?? []);
        if (parts.length === 0 || this.stopping) return;
        this.log.warn({ partitions: parts.map((p) => `${p.route}:${p.topic}[${p.partition}]`) }, why);
        this.pipeline.unassign(parts);
        if (!(await this.pipeline.drained(parts.map(routePartitionKey), 30_000)))
          this.log.warn({ partitions: parts.length }, 'restarting partitions before they finished draining (30 s)');
        const started = await this.pipeline.assign(parts.filter((p) => this.owned.has(routePartitionKey(p))));
        for (const p of parts) if (!started.has(routePartitionKey(p))) this.owned.delete(routePartitionKey(p));
        if (started.size < parts.length) this.retryLater();
      })
      .catch((e: Error) => this.log.error({ err: e.message, partitions: keys }, `${why}: failed`));
    return this.applying;
  }

  /** Writes this worker's load report (rates and lag per partition) for the controller's balancing and REST. */
  report(): Promise<void> {
    // a slow store must not stack reports up: the next one measures the longer window
    if (this.reporting) return this.reporting;
    const now = Date.now();
    const report = {
      worker: this.id,
      at: now,
      windowMs: now - this.lastReportAt,
      partitions: this.pipeline.measureLoad(now),
      gaps: this.pipeline.gaps.slice(-REPORTED_GAPS),
    };
    this.lastReportAt = now;
    this.reporting = this.store
      .writeReport(report)
      .catch((e: Error) => this.log.warn({ err: e.message, partitions: report.partitions.length }, 'writing the load report failed; the next one follows'))
      .finally(() => (this.reporting = undefined));
    return this.reporting;
  }

  private enqueue(a: Assignment | undefined, force = false): void {
    this.applying = this.applying.then(() => this.apply(a, force)).catch((e: Error) => this.log.error({ err: e.message }, 'applying assignment failed'));
  }

  /**
   * The store lost this worker's session: another worker may own its partitions at any moment, so stop them all now
   * (in-flight records are flushed and committed under the old epochs, which fencing refuses if they already moved).
   * The assignment it held is stale from here on; only a newer one from the controller starts partitions again.
   */
  suspend(): void {
    this.staleUpTo = Math.max(this.staleUpTo, this.lastVersion);
    this.log.warn(
      { worker: this.id, partitions: this.owned.size, staleUpTo: this.staleUpTo },
      'coordination session lost: stopping every partition until a new assignment',
    );
    this.enqueue(undefined, true);
  }

  private async apply(a: Assignment | undefined, force = false): Promise<void> {
    if (a && a.version <= this.staleUpTo && !force) {
      this.log.info({ version: a.version, staleUpTo: this.staleUpTo }, 'ignoring an assignment from before the session loss');
      return;
    }
    if (a) this.lastVersion = a.version;
    this.current = a;
    const { verified, refused } = await this.verifyRoutes(a);
    const next = new Map<string, PartitionAssignment>();
    for (const p of a?.partitions ?? []) if (!refused.has(p.route)) next.set(routePartitionKey(p), p);
    // routes created over REST come with the assignment; one whose client settings changed restarts here, and so
    // does a partition whose target topic or compression changed (the route's naming or compression was updated)
    const changedRoutes = this.pipeline.learnRoutes(verified);
    const restart = [...next.entries()].filter(([k, p]) => {
      const o = this.owned.get(k);
      return o !== undefined && (changedRoutes.has(p.route) || o.targetTopic !== p.targetTopic || o.compression !== p.compression);
    });
    const restarting = new Set(restart.map(([k]) => k));
    const removed = [...this.owned.entries()].filter(([k]) => !next.has(k) || restarting.has(k)).map(([, p]) => p);
    const added = [...next.entries()].filter(([k]) => !this.owned.has(k) || restarting.has(k)).map(([, p]) => p);
    // Same partition, new epoch (the controller restarted): keep replicating, commit under the new epoch.
    for (const [k, p] of next) if (this.owned.has(k)) this.pipeline.renewEpoch(p);
    // one line per partition that starts or stops here, so an operator (and the fleet tests) can tell that a
    // reassignment touched only the partitions that moved
    for (const p of removed) this.log.info({ route: p.route, topic: p.topic, partition: p.partition, epoch: p.epoch }, 'partition stopped');
    if (removed.length > 0) this.pipeline.unassign(removed);
    if (changedRoutes.size > 0 || restart.length > 0) {
      const routeKeys = [...this.owned.entries()].filter(([, p]) => changedRoutes.has(p.route)).map(([k]) => k);
      if (!(await this.pipeline.drained([...new Set([...routeKeys, ...restarting])], 30_000))) {
        this.log.warn({ routes: [...changedRoutes] }, 'partitions of a changed route did not finish within 30 s; restarting them anyway');
      }
      for (const r of changedRoutes) this.pipeline.sendRoute(r);
      this.log.info({ routes: [...changedRoutes], partitions: restart.length }, 'route definitions changed: partitions restarted with the new settings');
    }
    // `owned` is what really started: a partition the pipeline could not start stays out of it (errored there as
    // STRAIT_ASSIGN_FAILED), so applying the assignment again, a little later, starts it
    const started = added.length > 0 ? await this.pipeline.assign(added) : new Set<string>();
    this.pipeline.retainUnstarted(new Set(next.keys()));
    for (const p of added) {
      if (started.has(routePartitionKey(p))) this.log.info({ route: p.route, topic: p.topic, partition: p.partition, epoch: p.epoch }, 'partition started');
      else next.delete(routePartitionKey(p));
    }
    this.owned = next;
    if (started.size < added.length) this.retryLater();
  }

  /** Applies the current assignment again in ASSIGN_RETRY_MS, for partitions that could not start (once pending). */
  private retryLater(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue(this.current);
    }, ASSIGN_RETRY_MS);
  }

  /**
   * DESIGN.md, "Security model": a route definition carried by an assignment runs only if it is the one the
   * controller stored (routes/<name>) or the one this worker's own config file holds under that name. Anything else
   * (a forged or stale record) is an error state, and none of that route's partitions run here — not even under the
   * config file's definition, since the assignment that names them is not trustworthy for that route.
   */
  private async verifyRoutes(a: Assignment | undefined): Promise<{ verified: RouteConfig[]; refused: Set<string> }> {
    const carried = a?.routes ?? [];
    const refused = new Set<string>();
    const verified: RouteConfig[] = [];
    if (carried.length > 0) {
      const stored = await this.store.readRoutes();
      for (const def of carried) {
        const name = typeof def.name === 'string' ? def.name : '';
        const own = this.config.routes.find((r) => r.name === name);
        const fromStore = stored.get(name)?.route;
        const seen = canonical(def);
        if ((fromStore !== undefined && canonical(fromStore) === seen) || (own !== undefined && canonical(own) === seen)) {
          verified.push(def);
          continue;
        }
        refused.add(name);
        if (this.unverifiedRoutes.get(name) !== a!.version) {
          this.metrics.errors.inc({ route: name, topic: '', code: 'STRAIT_ROUTE_UNVERIFIED' });
          this.log.error(
            { route: name, code: 'STRAIT_ROUTE_UNVERIFIED', version: a!.version, stored: fromStore !== undefined, inConfigFile: own !== undefined },
            `assignment ${a!.version} carries a definition of route '${name}' that matches neither the route the controller stored nor this worker's config file; its partitions are not started`,
          );
        }
        this.unverifiedRoutes.set(name, a!.version);
        this.metrics.routeUnverified.set({ route: name }, 1);
      }
    }
    for (const name of [...this.unverifiedRoutes.keys()]) {
      if (refused.has(name)) continue;
      this.unverifiedRoutes.delete(name);
      this.metrics.routeUnverified.set({ route: name }, 0);
      this.log.info({ route: name }, 'route definition verified again');
    }
    return { verified, refused };
  }

  async stop(flushTimeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.reportTimer);
    clearInterval(this.topicIdTimer);
    clearTimeout(this.retryTimer);
    for (const t of this.fencedTimers) clearTimeout(t);
    this.fencedTimers.clear();
    await this.reporting;
    this.unwatch?.();
    await this.applying;
    clearTimeout(this.retryTimer);
    await this.pipeline.stop(flushTimeoutMs);
  }
}
