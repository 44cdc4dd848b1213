/**
 * The worker's data plane, seen from the main thread: a piscina pool whose threads each run `pump.ts` (native
 * forwarders), partitions sharded across them, batched progress aggregated here, and offset commits: offset-map runs
 * first, then the store (epoch-fenced), then the mirror in the source cluster's consumer group.
 */
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { RouteConfig, StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import { routeClientProps } from '../shared/profiles';
import { ClusterIdentity, ClusterIds } from '../shared/cluster-identity';
import type { CoordinationStore, OffsetCommit } from '../shared/store/store';
import { partitionKey, type CommittedOffset, type FromPump, type PartitionAssignment, type PartitionLoad, type PumpTask, type ReportedGap, type RouteClients, type ToPump } from '../shared/wire';
import type { ForwarderProgress, GapReport, ListedOffset, PartitionProgress } from '../native';
import { partitionErrorCode, type PartitionErrorCode } from '../shared/partition-errors';
import type { OffsetMapRecord } from '../shared/offset-map';
import { OffsetMapWriter } from './offset-map-writer';
import { SourcePositions } from './source-positions';

export interface PartitionRuntime {
  route: string;
  topic: string;
  partition: number;
  targetTopic: string;
  epoch: number;
  shard: number;
  /** what the store holds */
  committed: number;
  /** what the forwarder says is safe to commit */
  committable: number;
  /** the leader epoch of the record before `committable`, when known: committed with it (KIP-320) */
  leaderEpoch?: number;
  /** the source topic's id (KIP-516) this partition replicates, committed with every offset */
  topicId?: string;
  highWatermark?: number;
  records: number;
  bytes: number;
  lastTimestamp: number;
  paused: boolean;
  /** why the partition makes no progress (the forwarder's message); absent while it is healthy */
  error?: string;
  errorCode?: PartitionErrorCode;
  /** librdkafka's name of the underlying error */
  kafkaCode?: string;
  erroredAt?: number;
  /** when its committable offset last moved, or it last had nothing to do (ms): the stall clock */
  movedAt: number;
  /** errored with STRAIT_PARTITION_STALLED since (ms), and why */
  stalledSince?: number;
  stallCause?: string;
  /** unassigned, waiting for its last in-flight records before the final commit */
  draining: boolean;
  runs: Map<number, [number, number, number]>;
  /** `records` and `bytes` at the last load report, and when it was measured (ms) */
  reported: { records: number; bytes: number; at: number };
}

export interface PipelineTotals {
  /** records sent again after a restart inside this worker (strait_records_resent_total) */
  resent: number;
  records: number;
  bytes: number;
  partitions: number;
  lag: number;
  errored: number;
  paused: number;
}

/** A partition that makes no progress, as /v1/status and /v1/health show it. */
export interface ErroredPartition {
  route: string;
  topic: string;
  partition: number;
  code: PartitionErrorCode;
  kafkaCode: string | null;
  cause: string;
  since: string;
}

/** An offset gap this worker met (the same record travels in its load reports). */
export type GapProblem = ReportedGap;

/**
 * Where a partition started on this worker (the worker's /v1/status keeps the last ones): its committed offset, or a
 * logical start resolved to a concrete offset and committed before the first fetch.
 */
export interface PartitionStart {
  route: string;
  topic: string;
  partition: number;
  epoch: number;
  /** >= 0; -2 (earliest) or -1 (latest) only when the source could not be asked */
  offset: number;
  /** passed with the offset on assign, so the leader checks its log (KIP-320) */
  leaderEpoch?: number;
  topicId?: string;
  /** committed: resumed; earliest/latest: no committed offset (the route's start); recreated: the committed offset
   *  belongs to a topic of the same name that was deleted (another topic id) */
  from: 'committed' | 'earliest' | 'latest' | 'recreated';
  at: string;
}

/** A start worked out before the partition is handed to a pool thread. */
interface PlannedStart extends Omit<PartitionStart, 'route' | 'topic' | 'partition' | 'epoch' | 'at'> {
  /** the recreated topic's gap, reported once the partition runs */
  gap?: GapReport;
  /** a resolved logical start, to commit before the first fetch */
  commit: boolean;
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

/** how many recent gaps the status endpoint keeps */
const GAP_HISTORY = 100;
/** how many recent partition starts the status endpoint keeps */
const START_HISTORY = 100;

function runtimeKey(route: string, topic: string, partition: number): string {
  return `${route}|${partitionKey(topic, partition)}`;
}

export class Pipeline {
  private pool: Piscina | undefined;
  private readonly ports: MessagePort[] = [];
  private readonly shardLoad: number[] = [];
  private readonly tasks: Promise<unknown>[] = [];
  readonly partitions = new Map<string, PartitionRuntime>();
  private readonly writers = new Map<string, OffsetMapWriter>();
  private commitTimer: NodeJS.Timeout | undefined;
  /** per route: its commit in progress, and how long commits have been failing */
  private readonly routeCommits = new Map<string, RouteCommitState>();
  private stoppedShards = new Set<number>();
  /** routes created over REST, as the last assignment carried them */
  private readonly carried = new Map<string, RouteConfig>();
  /** route -> the client settings the pool threads have (JSON), to tell a changed route from an unchanged one */
  private readonly sentClients = new Map<string, string>();
  private onStopped: (() => void) | undefined;
  /** the most recent offset gaps, newest last */
  readonly gaps: GapProblem[] = [];
  /** the most recent partition starts, newest last */
  readonly starts: PartitionStart[] = [];
  private readonly positions: SourcePositions;
  /** assigned partitions that could not be handed to a pool thread (see `assign`), by runtime key */
  private readonly unstarted = new Map<string, ErroredPartition>();
  private readonly clusterIds: ClusterIds;
  /** per route, client and code: client-level errors (applyClientError) */
  private readonly clientErrors = new Map<string, { route: string; client: 'consumer' | 'producer'; code: string; message: string; count: number; first: number; last: number; loggedAt: number }>();
  private readonly identity: ClusterIdentity;
  readonly totals: PipelineTotals = { records: 0, bytes: 0, partitions: 0, lag: 0, errored: 0, paused: 0, resent: 0 };
  /** fired after a progress batch changes totals (the TTY status line listens) */
  onProgress: (() => void) | undefined;

  constructor(
    private readonly config: StraitConfig,
    private readonly workerId: string,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {
    this.clusterIds = new ClusterIds(config, `strait-${workerId}-admin`, 30_000, 2000);
    this.identity = new ClusterIdentity(config, store, this.clusterIds.of);
    this.positions = new SourcePositions((alias) => this.clusterIds.admin(alias));
  }

  /** a route's definition: one carried by an assignment, else the config file's */
  route(name: string): RouteConfig | undefined {
    return this.carried.get(name) ?? this.config.routes.find((r) => r.name === name);
  }

  private routeList(): RouteConfig[] {
    return [...this.config.routes.filter((r) => !this.carried.has(r.name)), ...this.carried.values()];
  }

  private routeClients(): RouteClients[] {
    return this.config.routes.map((r) => this.clientsOf(r));
  }

  private clientsOf(r: RouteConfig): RouteClients {
    const threads = this.config.worker.threads;
    const props = routeClientProps(this.config, r, this.workerId);
    return {
      route: r.name,
      options: {
        // the prefetch queue is bounded like the in-flight budget: memory stays within twice the budget
        consumer: { 'queued.max.messages.kbytes': Math.max(1024, Math.floor(this.config.worker.inflightBytes / threads / 1024)), ...props.consumer },
        producer: props.producer,
        inflightBytes: Math.max(1 << 20, Math.floor(this.config.worker.inflightBytes / threads)),
        compression: 'lz4',
        onGap: r.onGap,
        ...(r.naming.policy === 'identity' ? { provenance: { localOrigin: r.source, dropOrigin: r.target, maxHops: 8 } } : {}),
      },
    };
  }

  /**
   * Takes the route definitions an assignment carries. New routes go to the pool threads at once; the names of
   * routes whose client settings changed are returned, and reach the threads only through `sendRoute` once none
   * of their partitions runs here (a thread replaces a route's forwarder only while it is idle).
   */
  learnRoutes(defs: RouteConfig[]): Set<string> {
    const changed = new Set<string>();
    for (const def of defs) {
      const missing = [def.source, def.target].filter((a) => this.config.clusters[a] === undefined);
      if (missing.length > 0) {
        this.log.error({ route: def.name, clusters: missing }, `route '${def.name}' uses cluster aliases this worker's config file does not define (${missing.join(', ')}); its partitions cannot run here`);
        continue;
      }
      this.carried.set(def.name, def);
      const clients = this.clientsOf(def);
      const json = JSON.stringify(clients);
      const sent = this.sentClients.get(def.name);
      if (sent === json) continue;
      if (sent === undefined) this.sendRoute(def.name);
      else changed.add(def.name);
    }
    return changed;
  }

  /** Sends a route's current client settings to every pool thread. */
  sendRoute(name: string): void {
    const def = this.route(name);
    if (!def) return;
    const clients = this.clientsOf(def);
    this.sentClients.set(name, JSON.stringify(clients));
    for (let shard = 0; shard < this.ports.length; shard++) this.send(shard, { type: 'route', clients });
  }

  /** Resolves once none of `keys` (`route|topic/partition`) runs here any more, or after `timeoutMs` (false). */
  /**
   * Keys of running partitions whose source topic now has another id than the one they started with: the topic was
   * deleted and created again while they ran (faster than the controller's refresh, which would have unassigned and
   * re-assigned them). Restarting them (Worker) starts them at the new topic's log start with a `recreated` gap. A
   * topic whose id cannot be read now is left for the next check.
   */
  async recreatedTopics(): Promise<string[]> {
    const bySource = new Map<string, Map<string, PartitionRuntime[]>>();
    for (const rt of this.partitions.values()) {
      if (rt.draining || rt.topicId === undefined) continue;
      const source = this.route(rt.route)?.source;
      if (source === undefined) continue;
      let topics = bySource.get(source);
      if (!topics) bySource.set(source, (topics = new Map()));
      topics.set(rt.topic, [...(topics.get(rt.topic) ?? []), rt]);
    }
    const out: string[] = [];
    for (const [source, topics] of bySource) {
      let ids: Map<string, string>;
      try {
        ids = (await this.positions.topicIds(source, [...topics.keys()])).ids;
      } catch {
        continue;
      }
      for (const [topic, list] of topics) {
        const now = ids.get(topic);
        if (now === undefined) continue;
        for (const rt of list) if (!rt.draining && rt.topicId !== now) out.push(runtimeKey(rt.route, rt.topic, rt.partition));
      }
    }
    return out;
  }

  async drained(keys: string[], timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (keys.some((k) => this.partitions.has(k))) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  }

  start(): void {
    const threads = this.config.worker.threads;
    // Long-lived tasks: fixed thread count, no idle timeout, no Atomics wait (it would block the thread's event loop
    // that delivers our port messages) — as DESIGN.md asks of state that lives in a pool thread.
    this.pool = new Piscina({
      filename: join(__dirname, 'pump.js'),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
    });
    const routes = this.routeClients();
    for (const r of routes) this.sentClients.set(r.route, JSON.stringify(r));
    for (let shard = 0; shard < threads; shard++) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (m: FromPump) => this.onMessage(m));
      this.ports.push(port1);
      this.shardLoad.push(0);
      const task: PumpTask = { shard, port: port2, routes, progressIntervalMs: 200, targetRetryMs: this.config.worker.targetRetryMs };
      this.tasks.push(
        this.pool.run(task, { transferList: [port2] }).catch((e: Error) => {
          this.log.error({ shard, err: e.message }, 'pump thread failed');
          this.stoppedShards.add(shard);
        }),
      );
    }
    this.commitTimer = setInterval(() => {
      this.checkStuckCommits();
      void this.commit();
    }, this.config.worker.commitIntervalMs);
  }

  private send(shard: number, m: ToPump): void {
    this.ports[shard]?.postMessage(m);
  }

  /**
   * Starts replicating partitions, each from its committed offset (or the route's start position), and returns the
   * keys (`route|topic/partition`) handed to a pool thread. A partition left out could not be started (no definition
   * of its route, its offsets unreadable): it is errored with STRAIT_ASSIGN_FAILED until a later call starts it or
   * `retainUnstarted` drops it. A pool thread retries what it cannot start itself (worker/pump.ts).
   */
  async assign(parts: PartitionAssignment[]): Promise<Set<string>> {
    const started = new Set<string>();
    const byRoute = new Map<string, PartitionAssignment[]>();
    for (const p of parts) byRoute.set(p.route, [...(byRoute.get(p.route) ?? []), p]);
    for (const [route, list] of byRoute) {
      const routeCfg = this.route(route);
      if (!routeCfg) {
        this.notStarted(route, list, 'this worker has no definition of the route (not in its config file, not carried by the assignment)');
        continue;
      }
      // Offsets of other clusters are never resumed at (shared/cluster-identity.ts). A cluster that does not tell its
      // id now is not waited for: the controller holds the route as soon as it can tell.
      const changed = await this.identity.check(routeCfg).catch((e: Error) => {
        this.log.debug({ route, err: e.message }, 'cluster ids not known yet; the controller checks them');
        return undefined;
      });
      if (changed) {
        this.notStarted(route, list, changed.message, changed.code);
        continue;
      }
      let offsets: Awaited<ReturnType<CoordinationStore['readOffsets']>>;
      try {
        offsets = await this.store.readOffsets(route);
      } catch (e) {
        this.notStarted(route, list, `reading the route's committed offsets failed: ${(e as Error).message}`);
        continue;
      }
      const fresh = list.filter((p) => this.partitions.get(runtimeKey(route, p.topic, p.partition))?.draining !== false);
      const planned = await this.planStarts(routeCfg, fresh, offsets);
      const fenced = await this.commitStarts(route, fresh, planned);
      const perShard = new Map<number, ToPump & { type: 'assign' }>();
      for (const p of list) {
        const key = runtimeKey(route, p.topic, p.partition);
        if (fenced.has(key)) continue;
        started.add(key);
        this.startedNow(key);
        if (this.partitions.get(key)?.draining === false) continue;
        const committed = offsets.get(partitionKey(p.topic, p.partition));
        const plan = planned.get(key)!;
        const previous = this.partitions.get(key);
        // A partition still draining goes back to the thread that drains it, which re-activates it in place (its
        // in-flight records stay counted); elsewhere the least-loaded thread. It stays on that thread while assigned.
        const shard = previous ? previous.shard : this.shardLoad.indexOf(Math.min(...this.shardLoad));
        this.shardLoad[shard]!++;
        if (previous) this.clearError(previous, 'unassigned');
        // a recreated topic's old offset means nothing in the new one: only what was committed for the new one counts
        const stored = plan.commit || plan.from === 'recreated' ? -1 : (committed?.offset ?? -1);
        const rt: PartitionRuntime = {
          route, topic: p.topic, partition: p.partition, targetTopic: p.targetTopic, epoch: p.epoch, shard,
          committed: plan.committedNow === true ? plan.offset : stored,
          committable: plan.from === 'recreated' ? Math.max(-1, plan.offset) : Math.max(stored, plan.offset, previous?.committable ?? -1), records: 0, bytes: 0, lastTimestamp: -1,
          paused: false, draining: false, movedAt: Date.now(), runs: previous?.runs ?? new Map(), reported: { records: 0, bytes: 0, at: Date.now() },
          ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}),
          ...(plan.topicId !== undefined ? { topicId: plan.topicId } : {}),
        };
        this.partitions.set(key, rt);
        this.noteStart({ route, topic: p.topic, partition: p.partition, epoch: p.epoch, offset: plan.offset, from: plan.from, at: new Date().toISOString(), ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}), ...(plan.topicId !== undefined ? { topicId: plan.topicId } : {}) });
        if (plan.gap) this.applyGap(rt, plan.gap);
        let msg = perShard.get(shard);
        if (!msg) perShard.set(shard, (msg = { type: 'assign', route, entries: [] }));
        msg.entries.push({ topic: p.topic, partition: p.partition, targetTopic: p.targetTopic, offset: plan.offset, ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}), compression: p.compression });
      }
      for (const [shard, msg] of perShard) this.send(shard, msg);
      this.log.info({ route, partitions: list.length }, 'partitions assigned');
    }
    this.updateAssignedGauge();
    return started;
  }

  /**
   * Where each partition starts. A committed offset is resumed with its leader epoch, unless the source topic now has
   * another id than the one committed with it (deleted and created again): then, like a partition without a committed
   * offset, it starts at a logical position (the new topic's log start, or the route's `start`), which is resolved to
   * a concrete offset here so it can be committed before the first fetch: a restart or a move resumes there instead
   * of resolving `latest` again and skipping what arrived in between. A source that cannot be asked leaves the checks
   * out (logged) rather than holding the partitions back; the forwarder then resolves the logical position itself.
   */
  private async planStarts(routeCfg: RouteConfig, list: PartitionAssignment[], offsets: Map<string, CommittedOffset>): Promise<Map<string, PlannedStart & { committedNow?: boolean }>> {
    const route = routeCfg.name;
    const out = new Map<string, PlannedStart & { committedNow?: boolean }>();
    if (list.length === 0) return out;
    let ids = new Map<string, string>();
    try {
      const found = await this.positions.topicIds(routeCfg.source, [...new Set(list.map((p) => p.topic))]);
      ids = found.ids;
      if (found.errors.size > 0) this.log.warn({ route, topics: Object.fromEntries(found.errors) }, `the ids of these source topics of route '${route}' cannot be read; their partitions start without the check for a re-created topic`);
    } catch (e) {
      this.log.warn({ route, err: (e as Error).message }, `the source topic ids of route '${route}' cannot be read; ${list.length} partitions start without the check for a re-created topic`);
    }
    const resolve: Record<'earliest' | 'latest', PartitionAssignment[]> = { earliest: [], latest: [] };
    for (const p of list) {
      const key = runtimeKey(route, p.topic, p.partition);
      const committed = offsets.get(partitionKey(p.topic, p.partition));
      const topicId = ids.get(p.topic);
      if (committed && !(committed.topicId !== undefined && topicId !== undefined && committed.topicId !== topicId)) {
        const known = topicId ?? committed.topicId;
        out.set(key, { offset: committed.offset, from: 'committed', commit: false, ...(committed.leaderEpoch !== undefined ? { leaderEpoch: committed.leaderEpoch } : {}), ...(known !== undefined ? { topicId: known } : {}) });
        continue;
      }
      const from = committed ? 'recreated' : routeCfg.start;
      const spec = committed ? 'earliest' : routeCfg.start;
      resolve[spec].push(p);
      out.set(key, {
        offset: spec === 'earliest' ? -2 : -1,
        from,
        commit: false,
        ...(topicId !== undefined ? { topicId } : {}),
        // skipped: what strait can count of the old topic is nothing past the committed offset (its log is gone)
        ...(committed ? { gap: { reason: 'recreated' as const, from: committed.offset, to: 0, skipped: 0, stopped: false } } : {}),
      });
    }
    for (const spec of ['earliest', 'latest'] as const) {
      if (resolve[spec].length === 0) continue;
      let listed: Map<string, ListedOffset>;
      try {
        listed = await this.positions.offsets(routeCfg.source, resolve[spec].map((p) => ({ topic: p.topic, partition: p.partition })), spec);
      } catch (e) {
        this.log.warn({ route, spec, err: (e as Error).message }, `the ${spec} offsets of ${resolve[spec].length} partitions of route '${route}' cannot be read; they start at '${spec}' unresolved, and commit it only once a record arrives`);
        continue;
      }
      for (const p of resolve[spec]) {
        const plan = out.get(runtimeKey(route, p.topic, p.partition))!;
        const l = listed.get(partitionKey(p.topic, p.partition));
        if (l?.offset === undefined || l.offset < 0) {
          this.log.warn({ route, topic: p.topic, partition: p.partition, spec, err: l?.error ?? 'not in the answer' }, `the ${spec} offset of ${p.topic}[${p.partition}] of route '${route}' cannot be read; it starts at '${spec}' unresolved`);
          continue;
        }
        plan.offset = l.offset;
        plan.commit = true;
        if (l.leaderEpoch !== undefined) plan.leaderEpoch = l.leaderEpoch;
        if (plan.gap) plan.gap.to = l.offset;
      }
    }
    return out;
  }

  /**
   * Commits the resolved starts under the partitions' epochs before they fetch. Returns the runtime keys a newer
   * epoch owns (fenced: not started here). A commit that fails is logged; the regular commits write it later.
   */
  private async commitStarts(route: string, list: PartitionAssignment[], planned: Map<string, PlannedStart & { committedNow?: boolean }>): Promise<Set<string>> {
    const fenced = new Set<string>();
    const commits: OffsetCommit[] = [];
    for (const p of list) {
      const plan = planned.get(runtimeKey(route, p.topic, p.partition))!;
      if (!plan.commit) continue;
      commits.push({ topic: p.topic, partition: p.partition, offset: plan.offset, epoch: p.epoch, ...(plan.topicId !== undefined ? { topicId: plan.topicId } : {}), ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}) });
    }
    if (commits.length === 0) return fenced;
    try {
      const result = await this.store.commitOffsets(route, commits);
      this.metrics.commits.inc({ route }, commits.length - result.fenced.length);
      for (const f of result.fenced) fenced.add(runtimeKey(route, f.topic, f.partition));
      if (result.fenced.length > 0) {
        this.metrics.fenced.inc({ route }, result.fenced.length);
        this.log.warn({ route, fenced: result.fenced }, 'not starting these partitions: a newer epoch owns them');
      }
      for (const c of commits) {
        const plan = planned.get(runtimeKey(route, c.topic, c.partition))!;
        if (!fenced.has(runtimeKey(route, c.topic, c.partition))) plan.committedNow = true;
      }
    } catch (e) {
      this.log.warn({ route, partitions: commits.length, err: (e as Error).message }, `the resolved start offsets of route '${route}' could not be committed before the first fetch; the next commit writes them`);
    }
    return fenced;
  }

  private noteStart(s: PartitionStart): void {
    this.starts.push(s);
    if (this.starts.length > START_HISTORY) this.starts.splice(0, this.starts.length - START_HISTORY);
  }

  /** Partitions an assignment gave this worker that it could not hand to a pool thread: errored until started. */
  private notStarted(route: string, list: PartitionAssignment[], cause: string, code: 'STRAIT_ASSIGN_FAILED' | 'STRAIT_CLUSTER_CHANGED' = 'STRAIT_ASSIGN_FAILED'): void {
    const fresh: PartitionAssignment[] = [];
    for (const p of list) {
      const key = runtimeKey(route, p.topic, p.partition);
      const cur = this.unstarted.get(key);
      if (cur?.code === code) {
        cur.cause = cause;
        continue;
      }
      if (cur) this.metrics.partitionErrored.remove({ route, topic: p.topic, partition: String(p.partition), code: cur.code });
      fresh.push(p);
      this.unstarted.set(key, { route, topic: p.topic, partition: p.partition, code, kafkaCode: null, cause, since: new Date().toISOString() });
      this.metrics.partitionErrored.set({ route, topic: p.topic, partition: String(p.partition), code }, 1);
      this.metrics.errors.inc({ route, topic: p.topic, code });
    }
    if (fresh.length > 0) {
      this.log.error({ route, code, partitions: fresh.map((p) => `${p.topic}[${p.partition}]`), cause }, `${fresh.length} assigned partitions of route '${route}' cannot start on this worker: ${cause}; retried`);
    }
  }

  private startedNow(key: string): void {
    const u = this.unstarted.get(key);
    if (!u) return;
    this.unstarted.delete(key);
    this.metrics.partitionErrored.remove({ route: u.route, topic: u.topic, partition: String(u.partition), code: u.code });
    this.log.warn({ route: u.route, topic: u.topic, partition: u.partition, code: u.code }, `partition ${u.topic}[${u.partition}] of route '${u.route}' started (was ${u.code})`);
  }

  /** Forgets the partitions that could not start and are no longer assigned here (keys not in `assigned`). */
  retainUnstarted(assigned: Set<string>): void {
    for (const [key, u] of this.unstarted) {
      if (assigned.has(key)) continue;
      this.unstarted.delete(key);
      this.metrics.partitionErrored.remove({ route: u.route, topic: u.topic, partition: String(u.partition), code: u.code });
    }
  }

  /**
   * FOR TESTS ONLY: every pool thread's forwarder of `route` raises a fatal idempotent-producer error (librdkafka's
   * rd_kafka_test_fatal_error); the pool threads refuse it unless the process runs with STRAIT_TEST_FAULTS=1.
   */
  injectFatalErrorForTest(route: string, reason = 'injected by a test'): void {
    for (let shard = 0; shard < this.ports.length; shard++) this.send(shard, { type: 'test-fatal', route, reason });
  }

  /** Stops partitions; their in-flight records complete and are committed. */
  unassign(parts: { route: string; topic: string; partition: number }[]): void {
    const perShard = new Map<string, ToPump & { type: 'unassign' }>();
    for (const p of parts) {
      const rt = this.partitions.get(runtimeKey(p.route, p.topic, p.partition));
      if (!rt || rt.draining) continue;
      rt.draining = true;
      this.shardLoad[rt.shard]!--;
      const k = `${rt.shard}|${p.route}`;
      let msg = perShard.get(k);
      if (!msg) perShard.set(k, (msg = { type: 'unassign', route: p.route, entries: [] }));
      msg.entries.push({ topic: p.topic, partition: p.partition });
    }
    for (const [k, msg] of perShard) this.send(Number(k.split('|')[0]), msg);
    this.updateAssignedGauge();
  }

  /**
   * Every replicating partition's rates since the previous call (or since it was assigned) and its lag (source high
   * watermark minus the committed offset; -1 until both are known). Draining partitions are left out.
   */
  measureLoad(now = Date.now()): PartitionLoad[] {
    const out: PartitionLoad[] = [];
    for (const rt of this.partitions.values()) {
      if (rt.draining) continue;
      const seconds = Math.max(0.001, (now - rt.reported.at) / 1000);
      const commitFailing = this.routeCommits.get(rt.route)?.marked.has(runtimeKey(rt.route, rt.topic, rt.partition)) === true;
      out.push({
        route: rt.route,
        topic: rt.topic,
        partition: rt.partition,
        bytesPerSec: (rt.bytes - rt.reported.bytes) / seconds,
        recordsPerSec: (rt.records - rt.reported.records) / seconds,
        lag: rt.highWatermark !== undefined && rt.committed >= 0 ? Math.max(0, rt.highWatermark - rt.committed) : -1,
        errored: rt.error !== undefined || commitFailing || rt.stalledSince !== undefined,
        ...(rt.errorCode !== undefined ? { errorCode: rt.errorCode } : commitFailing ? { errorCode: 'STRAIT_COMMIT_FAILING' } : rt.stalledSince !== undefined ? { errorCode: 'STRAIT_PARTITION_STALLED' } : {}),
      });
      rt.reported = { records: rt.records, bytes: rt.bytes, at: now };
    }
    // assigned here but not started (STRAIT_ASSIGN_FAILED): reported too, so the controller knows this worker holds
    // them (and shows them errored) rather than taking them for lost
    for (const [k, u] of this.unstarted) {
      if (this.partitions.get(k)?.draining === false) continue;
      out.push({ route: u.route, topic: u.topic, partition: u.partition, bytesPerSec: 0, recordsPerSec: 0, lag: -1, errored: true, errorCode: u.code });
    }
    return out;
  }

  private updateAssignedGauge(): void {
    const counts = new Map<string, number>();
    for (const r of this.routeList()) counts.set(r.name, 0);
    for (const p of this.partitions.values()) if (!p.draining) counts.set(p.route, (counts.get(p.route) ?? 0) + 1);
    for (const [route, n] of counts) this.metrics.assigned.set({ route }, n);
    this.totals.partitions = [...counts.values()].reduce((a, b) => a + b, 0);
  }

  private onMessage(m: FromPump): void {
    if (m.type === 'error') {
      this.log.error({ shard: m.shard, route: m.route, err: m.message }, 'forwarder error');
      this.metrics.errors.inc({ route: m.route, topic: '', code: 'STRAIT_FORWARDER' });
      return;
    }
    if (m.type === 'fatal') {
      this.log.error(
        { route: m.route, shard: m.shard, code: 'STRAIT_PRODUCER_FATAL', kafkaCode: m.code ?? null, cause: m.cause, partitions: m.partitions, retryInMs: m.retryInMs, streak: m.streak },
        `the target producer of route '${m.route}' failed fatally (${m.code ?? 'no Kafka code'}: ${m.cause}); its forwarder is closed and its ${m.partitions} partitions start again from their last acknowledged offsets in ${m.retryInMs} ms`,
      );
      return;
    }
    if (m.type === 'restarted') {
      this.metrics.producerRestarts.inc({ route: m.route });
      this.log.warn({ route: m.route, shard: m.shard, partitions: m.partitions }, `route '${m.route}': ${m.partitions} partitions run again in a new forwarder after a fatal producer error`);
      return;
    }
    for (const [route, progress] of Object.entries(m.routes)) this.applyProgress(route, progress);
    if (m.type === 'stopped') {
      this.stoppedShards.add(m.shard);
      if (this.stoppedShards.size >= this.ports.length) this.onStopped?.();
    }
    this.onProgress?.();
  }

  private applyProgress(route: string, progress: ForwarderProgress): void {
    const latencyCount = progress.latency.counts.reduce((a, b) => a + b, 0);
    if (latencyCount > 0) this.metrics.latency.add({ route }, progress.latency.counts, progress.latency.sumMs / 1000);
    if (progress.consumerError) this.applyClientError(route, 'consumer', progress.consumerError);
    if (progress.producerError) this.applyClientError(route, 'producer', progress.producerError);
    let lag = 0;
    for (const pp of progress.partitions) {
      const rt = this.partitions.get(runtimeKey(route, pp.topic, pp.partition));
      if (!rt) continue;
      this.applyPartition(rt, pp);
      if (rt.highWatermark !== undefined && rt.committable >= 0) lag += Math.max(0, rt.highWatermark - rt.committable);
    }
    this.totals.lag = lag;
    let errored = 0;
    let paused = 0;
    for (const p of this.partitions.values()) {
      if (p.error) errored++;
      if (p.paused) paused++;
    }
    this.totals.errored = errored;
    this.totals.paused = paused;
    this.metrics.inflightBytes.set(progress.inflightBytes);
  }

  private applyPartition(rt: PartitionRuntime, pp: PartitionProgress): void {
    const labels = { route: rt.route, topic: rt.topic, partition: String(rt.partition) };
    const advanced = pp.committable > rt.committable;
    if (pp.committable > rt.committable) {
      rt.committable = pp.committable;
      rt.leaderEpoch = pp.committableLeaderEpoch;
    } else if (pp.committable >= 0 && pp.committable === rt.committable && pp.committableLeaderEpoch !== undefined) {
      rt.leaderEpoch = pp.committableLeaderEpoch;
    }
    if (pp.highWatermark !== undefined && pp.highWatermark >= 0) rt.highWatermark = pp.highWatermark;
    if (pp.records > 0) {
      rt.records += pp.records;
      rt.bytes += pp.bytes;
      this.totals.records += pp.records;
      this.totals.bytes += pp.bytes;
      this.metrics.records.inc(labels, pp.records);
      this.metrics.bytes.inc(labels, pp.bytes);
    }
    if (pp.dropped > 0) this.metrics.dropped.inc({ route: rt.route, topic: rt.topic }, pp.dropped);
    if (pp.resent !== undefined && pp.resent > 0) {
      this.metrics.resent.inc({ route: rt.route, topic: rt.topic }, pp.resent);
      this.totals.resent += pp.resent;
    }
    if (pp.lastTimestamp > 0) {
      rt.lastTimestamp = pp.lastTimestamp;
      this.metrics.recordAge.set(labels, Math.max(0, (Date.now() - pp.lastTimestamp) / 1000));
    }
    if (rt.highWatermark !== undefined && rt.committable >= 0) this.metrics.lag.set(labels, Math.max(0, rt.highWatermark - rt.committable));
    // nothing committed yet: a restart reads from the route's start, so the whole log counts (an upper bound)
    if (rt.highWatermark !== undefined) this.metrics.committedLag.set(labels, Math.max(0, rt.highWatermark - Math.max(0, rt.committed)));
    rt.paused = pp.paused;
    this.metrics.paused.set(labels, pp.paused ? 1 : 0);
    this.applyError(rt, pp);
    this.checkStall(rt, pp, advanced);
    for (const gap of pp.gaps ?? []) this.applyGap(rt, gap);
    for (const run of pp.runs) rt.runs.set(run[0], run);
    if (!pp.assigned && pp.inflight === 0 && rt.draining) {
      // final state reported: commit it, then forget the partition
      void this.commit().then(() => {
        const cur = this.partitions.get(runtimeKey(rt.route, rt.topic, rt.partition));
        if (cur === rt) {
          this.partitions.delete(runtimeKey(rt.route, rt.topic, rt.partition));
          this.clearError(rt, 'unassigned');
        }
      });
    }
  }

  /** Enters, changes or leaves the errored state as the forwarder reports it. */
  private applyError(rt: PartitionRuntime, pp: PartitionProgress): void {
    if (pp.error === undefined) {
      if (rt.error !== undefined && !rt.draining) this.clearError(rt, 'recovered');
      return;
    }
    const code = partitionErrorCode(pp.errorKind, pp.errorCode);
    if (rt.error !== undefined && rt.errorCode === code && rt.kafkaCode === pp.errorCode) {
      rt.error = pp.error;
      return;
    }
    if (rt.errorCode !== undefined && rt.errorCode !== code) this.metrics.partitionErrored.remove({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: rt.errorCode });
    rt.error = pp.error;
    rt.errorCode = code;
    rt.kafkaCode = pp.errorCode;
    rt.erroredAt = Date.now();
    this.metrics.partitionErrored.set({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code }, 1);
    this.metrics.errors.inc({ route: rt.route, topic: rt.topic, code });
    this.log.error(
      { route: rt.route, topic: rt.topic, partition: rt.partition, code, kafkaCode: pp.errorCode, cause: pp.error },
      `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes no progress: ${code} (${pp.errorCode ?? 'no Kafka code'}): ${pp.error}`,
    );
  }

  private clearError(rt: PartitionRuntime, why: 'recovered' | 'unassigned'): void {
    if (rt.error === undefined) return;
    if (rt.errorCode !== undefined) this.metrics.partitionErrored.remove({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: rt.errorCode });
    if (why === 'recovered') {
      const seconds = rt.erroredAt !== undefined ? Math.round((Date.now() - rt.erroredAt) / 1000) : undefined;
      this.log.warn({ route: rt.route, topic: rt.topic, partition: rt.partition, code: rt.errorCode, erroredSeconds: seconds }, `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes progress again (was ${rt.errorCode})`);
    }
    delete rt.error;
    delete rt.errorCode;
    delete rt.kafkaCode;
    delete rt.erroredAt;
  }

  /**
   * A partition with work to do whose committable offset stands still for worker.stallTimeoutMs is errored
   * (STRAIT_PARTITION_STALLED), whatever the cause: a cluster down, a producer that gets no acknowledgement, a fetch
   * that returns nothing. One with a precise error already is left to that error.
   */
  private checkStall(rt: PartitionRuntime, pp: PartitionProgress, advanced: boolean): void {
    const now = Date.now();
    const behind = rt.highWatermark !== undefined && rt.committable >= 0 && rt.highWatermark > rt.committable;
    if (advanced || rt.draining || (pp.inflight === 0 && !behind)) {
      rt.movedAt = now;
      if (rt.stalledSince !== undefined) this.clearStall(rt, true);
      return;
    }
    if (rt.error !== undefined) {
      if (rt.stalledSince !== undefined) this.clearStall(rt, false);
      return;
    }
    if (rt.stalledSince !== undefined || now - rt.movedAt < this.config.worker.stallTimeoutMs) return;
    const seconds = Math.round((now - rt.movedAt) / 1000);
    const route = this.route(rt.route);
    const what = pp.inflight > 0
      ? `${pp.inflight} records in flight to target '${route?.target ?? '?'}' and none acknowledged`
      : `the source '${route?.source ?? '?'}' is ${rt.highWatermark! - rt.committable} records ahead and none was read`;
    // the newest client-level error of the route's producer and of its consumer, if one came while it stood still
    const newest = (client: 'consumer' | 'producer') =>
      [...this.clientErrors.values()].filter((e) => e.route === rt.route && e.client === client).sort((a, b) => b.last - a.last)[0];
    const said = [newest('producer'), newest('consumer')]
      .filter((e) => e !== undefined && now - e.last < seconds * 1000)
      .map((e) => `; the ${e!.client === 'consumer' ? 'source consumer' : 'target producer'} last said ${e!.code}: ${e!.message}`)
      .join('');
    rt.stalledSince = now;
    rt.stallCause = `no progress for ${seconds} s: ${what}${said}`;
    this.metrics.partitionErrored.set({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: 'STRAIT_PARTITION_STALLED' }, 1);
    this.metrics.errors.inc({ route: rt.route, topic: rt.topic, code: 'STRAIT_PARTITION_STALLED' });
    this.log.error(
      { route: rt.route, topic: rt.topic, partition: rt.partition, code: 'STRAIT_PARTITION_STALLED', inflight: pp.inflight, committable: rt.committable, highWatermark: rt.highWatermark, cause: rt.stallCause },
      `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes no progress: STRAIT_PARTITION_STALLED: ${rt.stallCause}`,
    );
  }

  private clearStall(rt: PartitionRuntime, recovered: boolean): void {
    this.metrics.partitionErrored.remove({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: 'STRAIT_PARTITION_STALLED' });
    if (recovered) {
      const seconds = Math.round((Date.now() - rt.stalledSince!) / 1000);
      this.log.warn({ route: rt.route, topic: rt.topic, partition: rt.partition, code: 'STRAIT_PARTITION_STALLED', erroredSeconds: seconds }, `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes progress again (was STRAIT_PARTITION_STALLED)`);
    }
    delete rt.stalledSince;
    delete rt.stallCause;
  }

  /**
   * An error a client reports for itself, not for a partition (a broker down, all brokers down, a transport failure):
   * counted in strait_client_errors_total, listed in the worker's status, and logged at error level the first time
   * and then at most once a minute per route, client and code (it repeats with every poll). What it does to
   * partitions shows as STRAIT_PARTITION_STALLED once they stand still.
   */
  private applyClientError(route: string, client: 'consumer' | 'producer', text: string): void {
    const i = text.indexOf(':');
    const code = i > 0 ? text.slice(0, i) : 'UNKNOWN';
    const message = i > 0 ? text.slice(i + 1).trim() : text;
    const now = Date.now();
    this.metrics.clientErrors.inc({ route, client, code });
    const key = `${route}|${client}|${code}`;
    const e = this.clientErrors.get(key) ?? { route, client, code, message, count: 0, first: now, last: now, loggedAt: 0 };
    e.message = message;
    e.count++;
    e.last = now;
    this.clientErrors.set(key, e);
    if (now - e.loggedAt < 60_000) return;
    e.loggedAt = now;
    const who = client === 'consumer' ? 'source consumer' : 'target producer';
    this.log.error({ route, client, code, cause: message, count: e.count }, `route '${route}': the ${who} reports ${code}: ${message} (${e.count} times since ${new Date(e.first).toISOString()}; logged at most once a minute)`);
  }

  /** the client-level errors of each route's source consumer and target producer, by code, seen in the last 5 minutes */
  get recentClientErrors(): { route: string; client: 'consumer' | 'producer'; code: string; message: string; count: number; first: string; last: string }[] {
    const since = Date.now() - 5 * 60_000;
    return [...this.clientErrors.values()].filter((e) => e.last >= since).map((e) => ({ route: e.route, client: e.client, code: e.code, message: e.message, count: e.count, first: new Date(e.first).toISOString(), last: new Date(e.last).toISOString() }));
  }

  private applyGap(rt: PartitionRuntime, gap: GapReport): void {
    // stopped: nothing is skipped yet (the offsets are gone, but the partition waits for the operator)
    if (!gap.stopped) this.metrics.skipped.inc({ route: rt.route, topic: rt.topic, reason: gap.reason }, gap.skipped);
    this.gaps.push({ route: rt.route, topic: rt.topic, partition: rt.partition, ...gap, at: new Date().toISOString() });
    if (this.gaps.length > GAP_HISTORY) this.gaps.splice(0, this.gaps.length - GAP_HISTORY);
    const where = `${rt.topic}[${rt.partition}] of route '${rt.route}'`;
    const what =
      gap.reason === 'retention'
        ? `offsets ${gap.from}..${gap.to - 1} were deleted from the source (retention or deleteRecords) before strait read them: ${gap.skipped} offsets skipped`
        : gap.reason === 'recreated'
          ? `the source topic was deleted and created again (topic id ${rt.topicId ?? 'unknown'}) since offset ${gap.from} was committed: the old topic's records from offset ${gap.from} on were never read, the new topic is replicated from its start`
          : `offset ${gap.from} is past the source's log end ${gap.to} (log truncated, e.g. an unclean leader election): records strait replicated from offset ${gap.to} on are no longer in the source`;
    const action = gap.stopped ? 'partition stopped (onGap: stop)' : `replication goes on from offset ${gap.to}`;
    this.log.error({ route: rt.route, topic: rt.topic, partition: rt.partition, reason: gap.reason, from: gap.from, to: gap.to, skipped: gap.skipped, stopped: gap.stopped }, `${where}: ${what}; ${action}`);
  }

  /** every partition of this worker that makes no progress */
  errored(): ErroredPartition[] {
    const out: ErroredPartition[] = [];
    for (const rt of this.partitions.values()) {
      if (rt.stalledSince !== undefined && rt.error === undefined && !rt.draining) {
        out.push({ route: rt.route, topic: rt.topic, partition: rt.partition, code: 'STRAIT_PARTITION_STALLED', kafkaCode: null, cause: rt.stallCause ?? '', since: new Date(rt.stalledSince).toISOString() });
        continue;
      }
      if (rt.error === undefined || rt.errorCode === undefined || rt.draining) continue;
      out.push({ route: rt.route, topic: rt.topic, partition: rt.partition, code: rt.errorCode, kafkaCode: rt.kafkaCode ?? null, cause: rt.error, since: new Date(rt.erroredAt ?? Date.now()).toISOString() });
    }
    out.push(...this.unstarted.values());
    for (const [route, st] of this.routeCommits) {
      if (st.erroredSince === undefined) continue;
      for (const [k, m] of st.marked) {
        if (!this.partitions.has(k)) continue;
        out.push({ route, topic: m.topic, partition: m.partition, code: 'STRAIT_COMMIT_FAILING', kafkaCode: null, cause: `no commit for ${st.failures} commit intervals: ${st.lastError ?? ''}`, since: new Date(st.erroredSince).toISOString() });
      }
    }
    return out;
  }

  private writer(route: string): OffsetMapWriter {
    const r = this.route(route)!;
    let w = this.writers.get(r.target);
    if (!w) {
      const props = routeClientProps(this.config, r, this.workerId).producer;
      w = new OffsetMapWriter(r.target, { ...props, 'client.id': `strait-${this.workerId}-offset-map` });
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
    for (const p of this.partitions.values()) if (p.committable > p.committed || p.runs.size > 0) due.add(p.route);
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
  private checkStuckCommits(): void {
    const now = Date.now();
    for (const [route, st] of this.routeCommits) {
      if (st.running && now - st.startedAt >= this.config.worker.commitIntervalMs) this.commitFailed(route, st, `a commit has not finished for ${now - st.startedAt} ms`);
    }
  }

  private commitFailed(route: string, st: RouteCommitState, message: string): void {
    st.failures++;
    st.lastError = message;
    this.metrics.commitFailures.inc({ route });
    if (st.failures < COMMIT_FAILURES_BEFORE_ERROR || st.erroredSince !== undefined) return;
    st.erroredSince = Date.now();
    for (const rt of this.partitions.values()) {
      if (rt.route !== route || rt.draining) continue;
      st.marked.set(runtimeKey(rt.route, rt.topic, rt.partition), { topic: rt.topic, partition: rt.partition });
      this.metrics.partitionErrored.set({ route, topic: rt.topic, partition: String(rt.partition), code: 'STRAIT_COMMIT_FAILING' }, 1);
      this.metrics.errors.inc({ route, topic: rt.topic, code: 'STRAIT_COMMIT_FAILING' });
    }
    this.log.error({ route, code: 'STRAIT_COMMIT_FAILING', failures: st.failures, partitions: st.marked.size, cause: message }, `offsets of route '${route}' have not been committed for ${st.failures} commit intervals: ${message}; a restart would re-read everything since the last commit`);
  }

  private commitSucceeded(route: string, st: RouteCommitState): void {
    st.failures = 0;
    delete st.lastError;
    if (st.erroredSince === undefined) return;
    for (const m of st.marked.values()) this.metrics.partitionErrored.remove({ route, topic: m.topic, partition: String(m.partition), code: 'STRAIT_COMMIT_FAILING' });
    this.log.warn({ route, erroredSeconds: Math.round((Date.now() - st.erroredSince) / 1000) }, `offsets of route '${route}' are committed again`);
    st.marked.clear();
    delete st.erroredSince;
  }

  private async doCommitRoute(route: string): Promise<void> {
    const list = [...this.partitions.values()].filter((p) => p.route === route && (p.committable > p.committed || p.runs.size > 0));
    if (list.length === 0) return;
    const snapshot = list.map((p) => ({ p, committable: p.committable, leaderEpoch: p.leaderEpoch, runs: [...p.runs.values()] }));
    const records: OffsetMapRecord[] = snapshot.flatMap(({ p, runs }) =>
      runs.map(([srcStart, srcEnd, delta]) => ({ v: 1 as const, route, sourceTopic: p.topic, partition: p.partition, targetTopic: p.targetTopic, srcStart, srcEnd, delta })),
    );
    await this.writer(route).write(records);
    for (const { p, runs } of snapshot) for (const r of runs) if (p.runs.get(r[0]) === r) p.runs.delete(r[0]);
    const commits: OffsetCommit[] = snapshot
      .filter((s) => s.committable > s.p.committed)
      .map((s) => ({ topic: s.p.topic, partition: s.p.partition, offset: s.committable, epoch: s.p.epoch, ...(s.p.topicId !== undefined ? { topicId: s.p.topicId } : {}), ...(s.leaderEpoch !== undefined ? { leaderEpoch: s.leaderEpoch } : {}) }));
    if (commits.length === 0) return;
    const result = await this.store.commitOffsets(route, commits);
    this.metrics.commits.inc({ route }, commits.length - result.fenced.length);
    const fenced = new Set(result.fenced.map((f) => partitionKey(f.topic, f.partition)));
    if (result.fenced.length > 0) {
      this.metrics.fenced.inc({ route }, result.fenced.length);
      // a partition that came back here while this commit was in flight (moved away and back: its new runtime holds
      // an epoch at least the fencing one) belongs to that runtime, which keeps running; only the others stop
      const stale = result.fenced.filter((f) => (this.partitions.get(runtimeKey(route, f.topic, f.partition))?.epoch ?? 0) < f.epoch);
      this.log.warn({ route, fenced: result.fenced, stopping: stale.length }, 'commits refused: a newer epoch owns these partitions; stopping them here unless they came back with it');
      this.unassign(stale.map((f) => ({ route, ...f })));
    }
    const mirrored: { topic: string; partition: number; offset: number }[][] = this.ports.map(() => []);
    for (const s of snapshot) {
      if (fenced.has(partitionKey(s.p.topic, s.p.partition)) || s.committable <= s.p.committed) continue;
      s.p.committed = s.committable;
      mirrored[s.p.shard]!.push({ topic: s.p.topic, partition: s.p.partition, offset: s.committable });
    }
    mirrored.forEach((offsets, shard) => offsets.length > 0 && this.send(shard, { type: 'commit', route, offsets }));
  }

  /** Flushes in-flight records (up to `flushTimeoutMs`), commits what landed, and stops the pool. */
  async stop(flushTimeoutMs = 10_000): Promise<void> {
    if (this.commitTimer) clearInterval(this.commitTimer);
    const allStopped = new Promise<void>((res) => {
      this.onStopped = res;
      if (this.stoppedShards.size >= this.ports.length) res();
    });
    for (let shard = 0; shard < this.ports.length; shard++) this.send(shard, { type: 'stop', flushTimeoutMs });
    // the fallback timer is cleared once the shards report: a pending timer would keep the process alive 25 s after
    // it has stopped
    let fallback: NodeJS.Timeout | undefined;
    await Promise.race([allStopped, new Promise((r) => (fallback = setTimeout(r, flushTimeoutMs + 15_000)))]);
    clearTimeout(fallback);
    // bounded: a route whose commit cannot finish (target down) must not hold the shutdown; what it did not commit
    // is read again after the restart
    let commitBound: NodeJS.Timeout | undefined;
    const committed = await Promise.race([this.commit().then(() => true), new Promise<false>((r) => (commitBound = setTimeout(() => r(false), flushTimeoutMs)))]);
    clearTimeout(commitBound);
    if (!committed) this.log.error({ routes: [...this.routeCommits].filter(([, st]) => st.running).map(([r]) => r), waitedMs: flushTimeoutMs }, 'stopping without the final commit of these routes: it did not finish in time; their partitions resume from the last committed offsets');
    await Promise.allSettled(this.tasks);
    for (const p of this.ports) p.close();
    await this.pool?.destroy();
    for (const w of this.writers.values()) await w.close();
    this.clusterIds.close();
  }
}
