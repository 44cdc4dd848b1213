/**
 * What the workers report, as the controller keeps it: each assigned partition's last load (from its owner only), the
 * smoothed weights the balancer reads, each worker's recent offset gaps, the route lag metric — and the anti-entropy
 * check that tells which workers run other partitions than they are assigned.
 */
import type { StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import { routePartitionKey, type LoadReport, type PartitionLoad, type ReportedGap } from '../shared/wire';
import type { Owned } from './assignment';

/** The controller's state a batch of reports is read against. */
export interface ReportContext {
  /** registered workers */
  live: ReadonlySet<string>;
  /** partition -> owner, as last written */
  current: ReadonlyMap<string, Owned>;
  /** partitions that should run */
  desired: ReadonlySet<string> | ReadonlyMap<string, unknown>;
  /** workers whose assignment is written again anyway */
  rewriting: ReadonlySet<string>;
  routes: string[];
}

export class WorkerReports {
  /** the last load each partition's owner reported, and who reported it */
  readonly loads = new Map<string, PartitionLoad & { worker: string; at: number }>();
  /** bytes/s per partition, smoothed over reports; survives a move (the new owner reports soon) */
  readonly weights = new Map<string, number>();
  /** when each worker's assignment was last written (a report measured soon after may not show it yet) */
  private readonly writtenAt = new Map<string, number>();
  /** workers whose last report disagreed with their assignment, and since when */
  private readonly mismatchSince = new Map<string, number>();
  /** each live worker's recent offset gaps, from its last report */
  private readonly gaps = new Map<string, ReportedGap[]>();
  /** the `at` of the last report taken from each worker (the watch delivers every report each time) */
  private readonly reportSeen = new Map<string, number>();

  constructor(
    /** read at each report (the settle time after a write is two of the workers' report intervals) */
    private readonly config: StraitConfig,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {}

  /** `worker`'s assignment was just written. */
  written(worker: string): void {
    this.writtenAt.set(worker, Date.now());
  }

  /**
   * Keeps what the owners report: a report about a partition the worker no longer owns (it moved since) is ignored.
   * The weight is smoothed (mean of the previous weight and the new rate) so one noisy window moves nothing. Returns
   * the workers whose assignment must be written again (`reconcile`).
   */
  take(reports: LoadReport[], ctx: ReportContext): string[] {
    const repair: string[] = [];
    for (const r of reports) {
      if (!ctx.live.has(r.worker) || this.reportSeen.get(r.worker) === r.at) continue;
      this.reportSeen.set(r.worker, r.at);
      this.gaps.set(r.worker, r.gaps ?? []);
      if (this.reconcile(r, ctx)) repair.push(r.worker);
      for (const p of r.partitions) {
        const k = routePartitionKey(p);
        if (ctx.current.get(k)?.worker !== r.worker) continue;
        this.loads.set(k, { ...p, worker: r.worker, at: r.at });
        // an errored partition moves nothing, which says nothing about its load: keep the weight it had (taking its
        // 0 B/s would make its worker look idle and pile partitions onto the worker that already has a problem)
        if (p.errored) continue;
        const before = this.weights.get(k);
        this.weights.set(k, before === undefined ? p.bytesPerSec : (before + p.bytesPerSec) / 2);
      }
    }
    // what is kept per worker goes with the worker
    for (const perWorker of [this.reportSeen, this.gaps, this.mismatchSince, this.writtenAt]) {
      for (const w of perWorker.keys()) if (!ctx.live.has(w)) perWorker.delete(w);
    }
    const lag = new Map<string, number>(ctx.routes.map((r) => [r, 0]));
    for (const [k, l] of this.loads) if (l.lag > 0 && ctx.current.get(k)?.worker === l.worker) lag.set(l.route, (lag.get(l.route) ?? 0) + l.lag);
    for (const [route, n] of lag) this.metrics.routeLag.set({ route }, n);
    return repair;
  }

  /**
   * Anti-entropy: a worker whose report (what it really runs, started or failing to start) differs from what the
   * controller assigned it, in two reports in a row taken well after the last write to it, gets its assignment written
   * again (a new version, which it applies). Whatever lost the difference — a write that never reached it, an
   * assignment it dropped — a partition must not stay assigned and idle, or running twice, unseen.
   */
  private reconcile(r: LoadReport, ctx: ReportContext): boolean {
    const now = Date.now();
    const settle = 2 * this.config.worker.reportIntervalMs;
    if (now - (this.writtenAt.get(r.worker) ?? 0) < settle || ctx.rewriting.has(r.worker)) {
      this.mismatchSince.delete(r.worker);
      return false;
    }
    const reported = new Set(r.partitions.map((p) => routePartitionKey(p)));
    const assigned = new Set<string>();
    for (const [k, o] of ctx.current) if (o.worker === r.worker && ctx.desired.has(k)) assigned.add(k);
    const missing = [...assigned].filter((k) => !reported.has(k));
    const extra = [...reported].filter((k) => !assigned.has(k) && ctx.desired.has(k));
    if (missing.length === 0 && extra.length === 0) {
      this.mismatchSince.delete(r.worker);
      return false;
    }
    const since = this.mismatchSince.get(r.worker);
    if (since === undefined) {
      this.mismatchSince.set(r.worker, now);
      return false;
    }
    this.mismatchSince.delete(r.worker);
    this.metrics.assignmentRepairs.inc();
    this.log.error(
      {
        worker: r.worker,
        missing: missing.slice(0, 10),
        extra: extra.slice(0, 10),
        missingCount: missing.length,
        extraCount: extra.length,
        sinceMs: now - since,
      },
      `worker '${r.worker}' runs other partitions than it is assigned (${missing.length} assigned but not running, ${extra.length} running but not assigned): writing its assignment again`,
    );
    return true;
  }

  /** Drops what is kept about partitions no longer desired. */
  retain(desired: ReadonlyMap<string, unknown>): void {
    for (const k of this.weights.keys()) if (!desired.has(k)) this.weights.delete(k);
    for (const k of this.loads.keys()) if (!desired.has(k)) this.loads.delete(k);
  }

  /** the offset gaps the given workers reported last, oldest first */
  gapsOf(workers: ReadonlySet<string>): (ReportedGap & { worker: string })[] {
    return [...this.gaps]
      .filter(([w]) => workers.has(w))
      .flatMap(([worker, list]) => list.map((g) => ({ ...g, worker })))
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }
}
