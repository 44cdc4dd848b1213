/**
 * The worker's commit policy, behind one small interface (`Committer`) — the seam exactly-once will replace.
 *
 * At-least-once: every commit interval, each route on its own writes its offset-map runs to the target, then commits
 * the offsets they cover to the store (epoch-fenced), then has the pool threads mirror them into the source cluster's
 * consumer group. A route whose commits keep failing errors its partitions with STRAIT_COMMIT_FAILING.
 *
 * A route with `delivery: exactly-once` commits its records and their offset-map runs in target transactions in the
 * pool threads; here it only has the store and the source group follow what those transactions committed.
 */
import type { RouteConfig, StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { OffsetMapRecord } from '../shared/offset-map/records';
import { targetEndBefore } from '../shared/offset-map/runs';
import { OffsetMapWriter } from '../shared/offset-map/writer';
import { routeClientProps } from '../shared/kafka/client-settings';
import type { CoordinationStore, OffsetCommit } from '../shared/store/store';
import { partitionKey, routePartitionKey } from '../shared/wire';
import { runtimeKey, type ErroredPartition, type PartitionRuntime } from './partitions';

/** What the pipeline offers a committer. */
export interface CommitHost {
  readonly workerId: string;
  /** the worker's partition table: a commit advances `committed` and drops the runs it wrote */
  readonly partitions: ReadonlyMap<string, PartitionRuntime>;
  route(name: string): RouteConfig | undefined;
  /** stops partitions a newer epoch owns */
  unassign(parts: { route: string; topic: string; partition: number }[]): void;
  /** asks the pool thread of `shard` to commit `offsets` to the source group */
  mirror(shard: number, route: string, offsets: { topic: string; partition: number; offset: number }[]): void;
}

export interface Committer {
  /** commits what every route has ready; resolves once each route due committed or failed */
  commit(): Promise<void>;
  /** once per commit interval: a commit still running counts as a failed interval */
  checkStuck(): void;
  /** whether the route partition is errored because its commits fail */
  failing(p: { route: string; topic: string; partition: number }): boolean;
  /** the partitions errored because their route's commits fail */
  errored(): ErroredPartition[];
  /** routes with a commit under way */
  busyRoutes(): string[];
  close(): Promise<void>;
}

/** A route's commits: each route commits on its own, so one that cannot finish holds no other. */
interface RouteCommitState {
  running?: Promise<void>;
  startedAt: number;
  /** a commit asked for while one was running: it runs once that one ends */
  again?: Promise<void>;
  /** commit intervals in a row that ended without a successful commit */
  failures: number;
  lastError?: string;
  /** since when the route is errored (STRAIT_COMMIT_FAILING), and the partitions marked */
  erroredSince?: number;
  marked: Map<string, { topic: string; partition: number }>;
}

/** commit intervals in a row without a successful commit before a route's partitions are errored */
export const COMMIT_FAILURES_BEFORE_ERROR = 10;

export class AtLeastOnceCommitter implements Committer {
  private readonly writers = new Map<string, OffsetMapWriter>();
  /** per route: its commit in progress, and how long commits have been failing */
  private readonly routeCommits = new Map<string, RouteCommitState>();

  constructor(
    private readonly host: CommitHost,
    private readonly config: StraitConfig,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {}

  failing(p: { route: string; topic: string; partition: number }): boolean {
    return this.routeCommits.get(p.route)?.marked.has(routePartitionKey(p)) === true;
  }

  errored(): ErroredPartition[] {
    const out: ErroredPartition[] = [];
    for (const [route, st] of this.routeCommits) {
      if (st.erroredSince === undefined) continue;
      for (const [k, m] of st.marked) {
        if (!this.host.partitions.has(k)) continue;
        out.push({
          route,
          topic: m.topic,
          partition: m.partition,
          code: 'STRAIT_COMMIT_FAILING',
          kafkaCode: null,
          cause: `no commit for ${st.failures} commit intervals: ${st.lastError ?? ''}`,
          since: new Date(st.erroredSince).toISOString(),
        });
      }
    }
    return out;
  }

  busyRoutes(): string[] {
    return [...this.routeCommits].filter(([, st]) => st.running).map(([r]) => r);
  }

  async close(): Promise<void> {
    for (const w of this.writers.values()) await w.close();
  }

  private writer(route: string): OffsetMapWriter {
    const r = this.host.route(route)!;
    let w = this.writers.get(r.target);
    if (!w) {
      const props = routeClientProps(this.config, r, this.host.workerId).producer;
      w = new OffsetMapWriter(r.target, { ...props, 'client.id': `strait-${this.host.workerId}-offset-map` });
      this.writers.set(r.target, w);
    }
    return w;
  }

  /**
   * Writes offset-map runs, then commits offsets to the store, then mirrors them to the source group — each route on
   * its own: a route whose commit cannot finish (target down, a missing ACL on the offset map) holds no other route.
   * Resolves once every route due has committed (or failed); a route still busy commits again once it is done.
   */
  commit(): Promise<void> {
    const due = new Set<string>();
    for (const p of this.host.partitions.values()) if (p.committable > p.committed || p.runs.size > 0) due.add(p.route);
    return Promise.all([...due].map((route) => this.commitRoute(route))).then(() => undefined);
  }

  private commitState(route: string): RouteCommitState {
    let st = this.routeCommits.get(route);
    if (!st) this.routeCommits.set(route, (st = { startedAt: 0, failures: 0, marked: new Map() }));
    return st;
  }

  private commitRoute(route: string): Promise<void> {
    const st = this.commitState(route);
    if (st.running) {
      st.again ??= st.running.then(() => {
        st.again = undefined;
        return this.commitRoute(route);
      });
      return st.again;
    }
    st.startedAt = Date.now();
    st.running = this.doCommitRoute(route)
      .then(
        () => this.commitSucceeded(route, st),
        (e: Error) => {
          this.commitFailed(route, st, e.message);
          this.log.warn({ route, err: e.message, failures: st.failures }, 'offset commit failed; retrying next interval');
        },
      )
      .finally(() => (st.running = undefined));
    return st.running;
  }

  /** A commit still running after a whole interval counts as a failed interval (it may never end: no timeout). */
  checkStuck(): void {
    const now = Date.now();
    for (const [route, st] of this.routeCommits) {
      if (st.running && now - st.startedAt >= this.config.worker.commitIntervalMs)
        this.commitFailed(route, st, `a commit has not finished for ${now - st.startedAt} ms`);
    }
  }

  private commitFailed(route: string, st: RouteCommitState, message: string): void {
    st.failures++;
    st.lastError = message;
    this.metrics.commitFailures.inc({ route });
    if (st.failures < COMMIT_FAILURES_BEFORE_ERROR || st.erroredSince !== undefined) return;
    st.erroredSince = Date.now();
    for (const rt of this.host.partitions.values()) {
      if (rt.route !== route || rt.draining) continue;
      st.marked.set(routePartitionKey(rt), { topic: rt.topic, partition: rt.partition });
      this.metrics.partitionErrored.set({ route, topic: rt.topic, partition: String(rt.partition), code: 'STRAIT_COMMIT_FAILING' }, 1);
      this.metrics.errors.inc({ route, topic: rt.topic, code: 'STRAIT_COMMIT_FAILING' });
    }
    this.log.error(
      { route, code: 'STRAIT_COMMIT_FAILING', failures: st.failures, partitions: st.marked.size, cause: message },
      `offsets of route '${route}' have not been committed for ${st.failures} commit intervals: ${message}; a restart would re-read everything since the last commit`,
    );
  }

  private commitSucceeded(route: string, st: RouteCommitState): void {
    st.failures = 0;
    delete st.lastError;
    if (st.erroredSince === undefined) return;
    for (const m of st.marked.values())
      this.metrics.partitionErrored.remove({ route, topic: m.topic, partition: String(m.partition), code: 'STRAIT_COMMIT_FAILING' });
    this.log.warn({ route, erroredSeconds: Math.round((Date.now() - st.erroredSince) / 1000) }, `offsets of route '${route}' are committed again`);
    st.marked.clear();
    delete st.erroredSince;
  }

  private async doCommitRoute(route: string): Promise<void> {
    const list = [...this.host.partitions.values()].filter((p) => p.route === route && (p.committable > p.committed || p.runs.size > 0));
    if (list.length === 0) return;
    const snapshot = list.map((p) => ({ p, committable: p.committable, leaderEpoch: p.leaderEpoch, runs: [...p.runs.values()] }));
    const records: OffsetMapRecord[] = snapshot.flatMap(({ p, runs }) =>
      runs.map(([srcStart, srcEnd, delta]) => ({
        v: 1 as const,
        route,
        sourceTopic: p.topic,
        partition: p.partition,
        targetTopic: p.targetTopic,
        srcStart,
        srcEnd,
        delta,
      })),
    );
    // exactly-once: the pool threads wrote these runs inside the transactions that committed their records, and the
    // committable offsets are where those transactions ended (worker/pump.ts): the store follows the target here
    if (this.host.route(route)?.delivery !== 'exactly-once') await this.writer(route).write(records);
    for (const { p, runs } of snapshot) for (const r of runs) if (p.runs.get(r[0]) === r) p.runs.delete(r[0]);
    const commits: OffsetCommit[] = snapshot
      .filter((s) => s.committable > s.p.committed)
      .map((s) => {
        const targetEnd = targetEndBefore(s.p.recentRuns.values(), s.committable);
        return {
          topic: s.p.topic,
          partition: s.p.partition,
          offset: s.committable,
          epoch: s.p.epoch,
          ...(s.p.topicId !== undefined ? { topicId: s.p.topicId } : {}),
          ...(s.leaderEpoch !== undefined ? { leaderEpoch: s.leaderEpoch } : {}),
          ...(targetEnd !== undefined ? { targetEnd } : {}),
        };
      });
    if (commits.length === 0) return;
    const result = await this.store.commitOffsets(route, commits);
    this.metrics.commits.inc({ route }, commits.length - result.fenced.length);
    const fenced = new Set(result.fenced.map((f) => partitionKey(f.topic, f.partition)));
    if (result.fenced.length > 0) {
      this.metrics.fenced.inc({ route }, result.fenced.length);
      // a partition that came back here while this commit was in flight (moved away and back: its new runtime holds
      // an epoch at least the fencing one) belongs to that runtime, which keeps running; only the others stop
      const stale = result.fenced.filter((f) => (this.host.partitions.get(runtimeKey(route, f.topic, f.partition))?.epoch ?? 0) < f.epoch);
      this.log.warn(
        { route, fenced: result.fenced, stopping: stale.length },
        'commits refused: a newer epoch owns these partitions; stopping them here unless they came back with it',
      );
      this.host.unassign(stale.map((f) => ({ route, ...f })));
    }
    const mirrored = new Map<number, { topic: string; partition: number; offset: number }[]>();
    for (const s of snapshot) {
      // committable past the partition's own: it went back meanwhile (a truncation gap), and what was just written is
      // not its position any more; the next commit writes that
      if (fenced.has(partitionKey(s.p.topic, s.p.partition)) || s.committable <= s.p.committed || s.committable > s.p.committable) continue;
      s.p.committed = s.committable;
      // runs wholly below the committed offset's own run are never needed for `targetEnd` again
      let keep = -1;
      for (const start of s.p.recentRuns.keys()) if (start <= s.committable - 1 && start > keep) keep = start;
      for (const start of s.p.recentRuns.keys()) if (start < keep) s.p.recentRuns.delete(start);
      mirrored.set(s.p.shard, [...(mirrored.get(s.p.shard) ?? []), { topic: s.p.topic, partition: s.p.partition, offset: s.committable }]);
    }
    for (const [shard, offsets] of mirrored) this.host.mirror(shard, route, offsets);
  }
}
