/**
 * The worker's data plane, seen from the main thread: a piscina pool whose threads each run `pump.ts` (native
 * forwarders), partitions sharded across them and started where their committed offsets say. Beside it: the routes
 * it knows (route-catalog.ts), what the threads report (progress.ts), partitions that could not start (unstarted.ts),
 * their health (partition-health.ts) and the commit policy (committer.ts).
 */
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { RouteConfig, StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import { ClusterIdentity, ClusterIds } from '../shared/cluster-identity';
import type { CoordinationStore } from '../shared/store/store';
import {
  partitionKey,
  routePartitionKey,
  type FromPump,
  type PartitionAssignment,
  type PartitionLoad,
  type PumpTask,
  type ReportedGap,
  type ToPump,
} from '../shared/wire';
import { AtLeastOnceCommitter, type Committer } from './committer';
import { PartitionHealth } from './partition-health';
import { ProgressApplier, type PipelineTotals } from './progress';
import { runtimeKey, type ErroredPartition, type PartitionRuntime } from './partitions';
import { RouteCatalog } from './route-catalog';
import { SourcePositions } from './source-positions';
import { UnstartedPartitions } from './unstarted';
import { StartPlanner, type PartitionStart } from './start-planner';
import { OffsetMapView } from '../shared/offset-map/readers';
import type { OffsetIndex } from '../shared/offset-map/runs';
import { routeClientProps, transactionSettings, transactionalId } from '../shared/kafka/client-settings';
import { fenceTransactionalIds } from './fencing';

/** An offset gap this worker met (the same record travels in its load reports). */
export type GapProblem = ReportedGap;

/** how many recent partition starts the status endpoint keeps */
const START_HISTORY = 100;
/** the starts one "partitions assigned" log line lists (the rest are counted); /v1/status keeps the last START_HISTORY */
const MAX_LOGGED_STARTS = 64;
/** how long reading a target's offset map (exactly-once starts) may take */
const OFFSET_MAP_READ_MS = 15_000;
/** exactly-once: a partition whose commit is in doubt is fenced and looked up again after this, doubled up to the max */
const RESUME_RETRY_MS = 1000;
const RESUME_RETRY_MAX_MS = 30_000;

export class Pipeline {
  private pool: Piscina | undefined;
  private readonly ports: MessagePort[] = [];
  private readonly shardLoad: number[] = [];
  private readonly tasks: Promise<unknown>[] = [];
  readonly partitions = new Map<string, PartitionRuntime>();
  private readonly committer: Committer;
  private commitTimer: NodeJS.Timeout | undefined;
  private stoppedShards = new Set<number>();
  private readonly routes: RouteCatalog;
  private onStopped: (() => void) | undefined;
  /** the most recent partition starts, newest last */
  readonly starts: PartitionStart[] = [];
  private readonly positions: SourcePositions;
  private readonly startPlanner: StartPlanner;
  /** assigned partitions that could not be handed to a pool thread (see `assign`), by runtime key */
  private readonly unstarted: UnstartedPartitions;
  private readonly clusterIds: ClusterIds;
  private readonly health: PartitionHealth;
  private readonly identity: ClusterIdentity;
  private readonly progress: ProgressApplier;
  /** fired after a progress batch changes totals (the TTY status line listens) */
  onProgress: (() => void) | undefined;
  /**
   * fired when an exactly-once partition's transactional producer was fenced here (runtime key, and the pump's count
   * of fatal errors in a row for it): the worker starts it again if it still owns it (worker/worker.ts)
   */
  onFenced: ((key: string, streak: number) => void) | undefined;
  /** exactly-once routes' target offset maps, read incrementally (where their partitions resume) */
  private readonly offsetMaps = new Map<string, OffsetMapView>();
  /** exactly-once partitions whose commit is in doubt, being resumed from the target (resumeFromTarget) */
  private readonly resuming = new Set<string>();
  private stopping = false;

  constructor(
    private readonly config: StraitConfig,
    private readonly workerId: string,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {
    this.routes = new RouteCatalog(config, workerId, log, (clients) => {
      for (let shard = 0; shard < this.ports.length; shard++) this.send(shard, { type: 'route', clients });
    });
    this.clusterIds = new ClusterIds(config, `strait-${workerId}-admin`, 30_000, 2000);
    this.identity = new ClusterIdentity(config, store, this.clusterIds.of);
    this.positions = new SourcePositions((alias) => this.clusterIds.admin(alias));
    this.startPlanner = new StartPlanner(this.positions, store, log, metrics);
    this.health = new PartitionHealth(log, metrics, config.worker.stallTimeoutMs, (name) => this.route(name));
    this.unstarted = new UnstartedPartitions(log, metrics);
    this.progress = new ProgressApplier(this.partitions, this.health, metrics, (rt) => this.forgetDrained(rt));
    this.committer = new AtLeastOnceCommitter(
      {
        workerId,
        partitions: this.partitions,
        route: (name) => this.route(name),
        unassign: (parts) => this.unassign(parts),
        mirror: (shard, route, offsets) => this.send(shard, { type: 'commit', route, offsets }),
      },
      config,
      store,
      log,
      metrics,
    );
  }

  /**
   * A target's offset map, read up to its end (shared/offset-map/topic-tail.ts bounds every call and the read as a
   * whole: a read that fails fails the start, which is retried, and the next read goes on from where this one got).
   */
  private async readOffsetMap(alias: string): Promise<OffsetIndex> {
    let view = this.offsetMaps.get(alias);
    if (!view) this.offsetMaps.set(alias, (view = new OffsetMapView(this.config, alias)));
    return view.catchUp(OFFSET_MAP_READ_MS);
  }

  /** a route's definition: one carried by an assignment, else the config file's */
  route(name: string): RouteConfig | undefined {
    return this.routes.route(name);
  }

  /** Takes the route definitions an assignment carries; returns those whose client settings changed (RouteCatalog). */
  learnRoutes(defs: RouteConfig[]): Set<string> {
    return this.routes.learn(defs);
  }

  /** Sends a route's current client settings to every pool thread. */
  sendRoute(name: string): void {
    this.routes.send(name);
  }

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
        for (const rt of list) if (!rt.draining && rt.topicId !== now) out.push(routePartitionKey(rt));
      }
    }
    return out;
  }

  /** Resolves once none of `keys` (`route|topic/partition`) runs here any more, or after `timeoutMs` (false). */
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
    const routes = this.routes.initial();
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
      this.committer.checkStuck();
      void this.commit();
    }, this.config.worker.commitIntervalMs);
  }

  private send(shard: number, m: ToPump): void {
    this.ports[shard]?.postMessage(m);
  }

  /** The controller handed a running partition out again under a new epoch: it keeps running, and commits under it. */
  renewEpoch(p: { route: string; topic: string; partition: number; epoch: number }): void {
    const rt = this.partitions.get(routePartitionKey(p));
    if (rt) rt.epoch = p.epoch;
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
        this.unstarted.add(route, list, 'this worker has no definition of the route (not in its config file, not carried by the assignment)');
        continue;
      }
      // Offsets of other clusters are never resumed at (shared/cluster-identity.ts). A cluster that does not tell its
      // id now is not waited for: the controller holds the route as soon as it can tell.
      const changed = await this.identity.check(routeCfg).catch((e: Error) => {
        this.log.debug({ route, err: e.message }, 'cluster ids not known yet; the controller checks them');
        return undefined;
      });
      if (changed) {
        this.unstarted.add(route, list, changed.message, changed.code);
        continue;
      }
      let offsets: Awaited<ReturnType<CoordinationStore['readOffsets']>>;
      try {
        offsets = await this.store.readOffsets(route);
      } catch (e) {
        this.unstarted.add(route, list, `reading the route's committed offsets failed: ${(e as Error).message}`);
        continue;
      }
      // The controller raises a partition's stored epoch before it hands the partition to a new owner: one stored under
      // a newer epoch than this assignment's belongs to another worker. An exactly-once start would fence that owner's
      // transactional producer (init_transactions under the same id), so it is not started, nor fenced, here. (An
      // at-least-once start finds the same in StartPlanner.commit, which the store refuses.)
      const notRunning = list.filter((p) => this.partitions.get(runtimeKey(route, p.topic, p.partition))?.draining !== false);
      const newer = new Set(
        routeCfg.delivery !== 'exactly-once'
          ? []
          : notRunning
              .filter((p) => (offsets.get(partitionKey(p.topic, p.partition))?.epoch ?? 0) > p.epoch)
              .map((p) => runtimeKey(route, p.topic, p.partition)),
      );
      if (newer.size > 0) this.log.warn({ route, partitions: [...newer] }, 'not starting these partitions: a newer epoch owns them');
      const fresh = notRunning.filter((p) => !newer.has(runtimeKey(route, p.topic, p.partition)));
      const planned = await this.startPlanner.plan(routeCfg, fresh, offsets);
      if (routeCfg.delivery === 'exactly-once') {
        try {
          // fence the partitions' previous owners first, then read where they committed last (worker/fencing.ts)
          const tx = transactionSettings(routeCfg);
          const props = routeClientProps(this.config, routeCfg, this.workerId).producer;
          await fenceTransactionalIds(
            routeCfg.target,
            props,
            fresh.map((p) => transactionalId(tx, p.topic, p.partition)),
            OFFSET_MAP_READ_MS,
          );
          this.startPlanner.resumeFromTarget(routeCfg, fresh, planned, await this.readOffsetMap(routeCfg.target));
        } catch (e) {
          this.unstarted.add(
            route,
            list,
            `exactly-once: the partitions' previous owners cannot be fenced, or the offset map on '${routeCfg.target}' cannot be read (a partition resumes after its last committed run there): ${(e as Error).message}`,
          );
          continue;
        }
      }
      const fenced = await this.startPlanner.commit(routeCfg, fresh, planned);
      const resent = await this.startPlanner.resent(routeCfg, fresh, offsets, planned);
      const perShard = new Map<number, ToPump & { type: 'assign' }>();
      // where each partition starts, for the log line below: "topic[p]@offset from" (a move or restart is traced by it)
      const starts: string[] = [];
      for (const p of list) {
        const key = runtimeKey(route, p.topic, p.partition);
        if (fenced.has(key) || newer.has(key)) continue;
        started.add(key);
        this.unstarted.started(key);
        if (this.partitions.get(key)?.draining === false) continue;
        const committed = offsets.get(partitionKey(p.topic, p.partition));
        const plan = planned.get(key)!;
        const previous = this.partitions.get(key);
        // A partition still draining goes back to the thread that drains it, which re-activates it in place (its
        // in-flight records stay counted); elsewhere the least-loaded thread. It stays on that thread while assigned.
        const shard = previous ? previous.shard : this.shardLoad.indexOf(Math.min(...this.shardLoad));
        this.shardLoad[shard]!++;
        if (previous) this.health.clearError(previous, 'unassigned');
        // a recreated topic's old offset means nothing in the new one: only what was committed for the new one counts
        const stored = plan.commit || plan.from === 'recreated' ? -1 : (committed?.offset ?? -1);
        const rt: PartitionRuntime = {
          route,
          topic: p.topic,
          partition: p.partition,
          targetTopic: p.targetTopic,
          epoch: p.epoch,
          shard,
          committed: plan.committedNow === true ? plan.offset : stored,
          committable: plan.from === 'recreated' ? Math.max(-1, plan.offset) : Math.max(stored, plan.offset, previous?.committable ?? -1),
          records: 0,
          bytes: 0,
          lastTimestamp: -1,
          paused: false,
          draining: false,
          movedAt: Date.now(),
          runs: previous?.runs ?? new Map(),
          recentRuns: previous?.recentRuns ?? new Map(),
          reported: { records: 0, bytes: 0, at: Date.now() },
          ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}),
          ...(plan.topicId !== undefined ? { topicId: plan.topicId } : {}),
        };
        this.partitions.set(key, rt);
        this.noteStart({
          route,
          topic: p.topic,
          partition: p.partition,
          epoch: p.epoch,
          offset: plan.offset,
          from: plan.from,
          at: new Date().toISOString(),
          ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}),
          ...(plan.topicId !== undefined ? { topicId: plan.topicId } : {}),
          ...(resent.has(key) ? { resent: resent.get(key) } : {}),
        });
        starts.push(`${p.topic}[${p.partition}]@${plan.offset} ${plan.from}${previous ? ' (was draining here)' : ''}`);
        if (resent.has(key)) this.progress.resentOnStart(rt, resent.get(key)!);
        if (plan.gap) this.health.applyGap(rt, plan.gap);
        let msg = perShard.get(shard);
        if (!msg) perShard.set(shard, (msg = { type: 'assign', route, entries: [] }));
        msg.entries.push({
          topic: p.topic,
          partition: p.partition,
          targetTopic: p.targetTopic,
          offset: plan.offset,
          ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}),
          compression: p.compression,
        });
      }
      for (const [shard, msg] of perShard) this.send(shard, msg);
      this.log.info(
        {
          route,
          partitions: list.length,
          starts: starts.length > MAX_LOGGED_STARTS ? [...starts.slice(0, MAX_LOGGED_STARTS), `... ${starts.length - MAX_LOGGED_STARTS} more`] : starts,
        },
        'partitions assigned',
      );
    }
    this.updateAssignedGauge();
    return started;
  }

  private noteStart(s: PartitionStart): void {
    this.starts.push(s);
    if (this.starts.length > START_HISTORY) this.starts.splice(0, this.starts.length - START_HISTORY);
  }

  /** Forgets the partitions that could not start and are no longer assigned here (keys not in `assigned`). */
  retainUnstarted(assigned: Set<string>): void {
    this.unstarted.retain(assigned);
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
      const commitFailing = this.committer.failing(rt);
      out.push({
        route: rt.route,
        topic: rt.topic,
        partition: rt.partition,
        bytesPerSec: (rt.bytes - rt.reported.bytes) / seconds,
        recordsPerSec: (rt.records - rt.reported.records) / seconds,
        lag: rt.highWatermark !== undefined && rt.committed >= 0 ? Math.max(0, rt.highWatermark - rt.committed) : -1,
        errored: rt.error !== undefined || commitFailing || rt.stalledSince !== undefined,
        ...(rt.errorCode !== undefined
          ? { errorCode: rt.errorCode }
          : commitFailing
            ? { errorCode: 'STRAIT_COMMIT_FAILING' }
            : rt.stalledSince !== undefined
              ? { errorCode: 'STRAIT_PARTITION_STALLED' }
              : {}),
      });
      rt.reported = { records: rt.records, bytes: rt.bytes, at: now };
    }
    // assigned here but not started (STRAIT_ASSIGN_FAILED): reported too, so the controller knows this worker holds
    // them (and shows them errored) rather than taking them for lost
    for (const [k, u] of this.unstarted.entries()) {
      if (this.partitions.get(k)?.draining === false) continue;
      out.push({ route: u.route, topic: u.topic, partition: u.partition, bytesPerSec: 0, recordsPerSec: 0, lag: -1, errored: true, errorCode: u.code });
    }
    return out;
  }

  private updateAssignedGauge(): void {
    const counts = new Map<string, number>();
    for (const r of this.routes.list()) counts.set(r.name, 0);
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
        {
          route: m.route,
          shard: m.shard,
          code: 'STRAIT_PRODUCER_FATAL',
          kafkaCode: m.code ?? null,
          cause: m.cause,
          partitions: m.partitions,
          ...(m.fenced ? { fenced: true } : m.unknownCommit ? { outcomeUnknown: true } : { retryInMs: m.retryInMs }),
          streak: m.streak,
        },
        m.fenced
          ? `the transactional producer of route '${m.route}' was fenced by a newer owner of its partition (${m.code ?? 'no Kafka code'}: ${m.cause}); its open transaction is aborted and the partition stays stopped here until it is assigned again (at once if this worker still owns it)`
          : m.unknownCommit
            ? `the transaction of route '${m.route}' on ${m.unknownCommit.topic}[${m.unknownCommit.partition}] failed in its commit and could not be aborted (${m.code ?? 'no Kafka code'}: ${m.cause}): it may have committed; its forwarder is closed and the partition starts again after the last run the target's offset map committed, read once its transactional id is fenced`
            : `the target producer of route '${m.route}' failed fatally (${m.code ?? 'no Kafka code'}: ${m.cause}); its forwarder is closed and its ${m.partitions} partitions start again from their last acknowledged offsets in ${m.retryInMs} ms`,
      );
      if (m.fencedPartition) this.onFenced?.(runtimeKey(m.route, m.fencedPartition.topic, m.fencedPartition.partition), m.streak);
      if (m.unknownCommit) void this.resumeFromTarget(runtimeKey(m.route, m.unknownCommit.topic, m.unknownCommit.partition));
      return;
    }
    if (m.type === 'resumed') {
      this.log.warn(
        { route: m.route, topic: m.topic, partition: m.partition, lastKnownCommit: m.lastKnown, startsAt: m.at },
        m.at > m.lastKnown
          ? `exactly-once: the transaction in doubt on ${m.topic}[${m.partition}] of route '${m.route}' had committed: the partition starts again at ${m.at}, after it (not at ${m.lastKnown}, which would have committed its ${m.at - m.lastKnown} records twice)`
          : `exactly-once: the transaction in doubt on ${m.topic}[${m.partition}] of route '${m.route}' did not commit: the partition starts again at ${m.at}`,
      );
      return;
    }
    if (m.type === 'restarted') {
      this.metrics.producerRestarts.inc({ route: m.route });
      this.log.warn(
        { route: m.route, shard: m.shard, partitions: m.partitions },
        `route '${m.route}': ${m.partitions} partitions run again in a new forwarder after a fatal producer error`,
      );
      return;
    }
    for (const [route, progress] of Object.entries(m.routes)) this.progress.apply(m.shard, route, progress);
    if (m.type === 'stopped') {
      this.stoppedShards.add(m.shard);
      if (this.stoppedShards.size >= this.ports.length) this.onStopped?.();
    }
    this.onProgress?.();
  }

  /** A draining partition's final state arrived: commit it, then forget it (unless it was assigned again since). */
  private forgetDrained(rt: PartitionRuntime): void {
    void this.commit().then(() => {
      const cur = this.partitions.get(routePartitionKey(rt));
      if (cur === rt) {
        this.partitions.delete(routePartitionKey(rt));
        this.health.clearError(rt, 'unassigned');
      }
    });
  }

  /** what this worker replicated so far, and its partitions' state in sums */
  get totals(): PipelineTotals {
    return this.progress.totals;
  }

  /** the most recent offset gaps, newest last */
  get gaps(): GapProblem[] {
    return this.health.gaps;
  }

  /** the client-level errors of each route's source consumer and target producer, by code, seen in the last 5 minutes */
  get recentClientErrors(): ReturnType<PartitionHealth['recentClientErrors']> {
    return this.health.recentClientErrors();
  }

  /** every partition of this worker that makes no progress */
  errored(): ErroredPartition[] {
    const out = this.health.errored(this.partitions.values());
    out.push(...this.unstarted.values());
    out.push(...this.committer.errored());
    return out;
  }

  /** Commits what every route has ready (worker/committer.ts); resolves once each route due committed or failed. */
  commit(): Promise<void> {
    return this.committer.commit();
  }

  /**
   * exactly-once: a partition's commit failed and could not be aborted (a commit still under way when it timed out, a
   * fatal error), so it may have committed, or may yet: the coordinator completes a commit whose EndTxn it took when
   * the next producer of the id initialises. Restarting from the forwarder's last known commit would then send every
   * record of that transaction again. So, as for a partition that moves here: its transactional id is fenced (which
   * settles the transaction in doubt), the target's offset map read, and the pool thread told where the last
   * committed run ends; it holds the partition (errored) until then. Retried with a growing delay while the target
   * cannot be reached; dropped once the partition no longer runs here, or the store shows it under a newer epoch (it
   * moved: fencing it here would fence its new owner).
   */
  private async resumeFromTarget(key: string): Promise<void> {
    if (this.resuming.has(key)) return;
    this.resuming.add(key);
    try {
      for (let attempt = 1; !this.stopping; attempt++) {
        const rt = this.partitions.get(key);
        const routeCfg = rt ? this.route(rt.route) : undefined;
        if (!rt || rt.draining || routeCfg?.delivery !== 'exactly-once') return;
        try {
          const stored = (await this.store.readOffsets(rt.route)).get(partitionKey(rt.topic, rt.partition));
          if ((stored?.epoch ?? 0) > rt.epoch) {
            this.log.warn({ route: rt.route, topic: rt.topic, partition: rt.partition }, 'not resuming this partition: a newer epoch owns it');
            return;
          }
          const props = routeClientProps(this.config, routeCfg, this.workerId).producer;
          await fenceTransactionalIds(routeCfg.target, props, [transactionalId(transactionSettings(routeCfg), rt.topic, rt.partition)], OFFSET_MAP_READ_MS);
          const last = (await this.readOffsetMap(routeCfg.target)).get(rt.route, rt.topic, rt.partition)?.lastSource;
          if (this.partitions.get(key) !== rt || rt.draining) return;
          this.send(rt.shard, {
            type: 'resume',
            route: rt.route,
            topic: rt.topic,
            partition: rt.partition,
            ...(last !== undefined ? { lastCommitted: last } : {}),
          });
          this.log.info(
            { route: rt.route, topic: rt.topic, partition: rt.partition, lastCommitted: last ?? null, attempts: attempt },
            'exactly-once: a partition whose commit is in doubt was fenced and looked up in the target offset map',
          );
          return;
        } catch (e) {
          const delay = Math.min(RESUME_RETRY_MAX_MS, RESUME_RETRY_MS * 2 ** (attempt - 1));
          this.log.error(
            { route: rt.route, topic: rt.topic, partition: rt.partition, code: 'STRAIT_ASSIGN_FAILED', err: (e as Error).message, retryInMs: delay },
            `exactly-once: the partition whose commit is in doubt cannot be fenced, or the offset map on '${routeCfg.target}' cannot be read; it stays stopped and is tried again`,
          );
          this.metrics.errors.inc({ route: rt.route, topic: rt.topic, code: 'STRAIT_ASSIGN_FAILED' });
          await new Promise((r) => setTimeout(r, delay).unref());
        }
      }
    } finally {
      this.resuming.delete(key);
    }
  }

  /** Flushes in-flight records (up to `flushTimeoutMs`), commits what landed, and stops the pool. */
  async stop(flushTimeoutMs = 10_000): Promise<void> {
    this.stopping = true;
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
    const committed = await Promise.race([
      this.commit().then(() => true),
      new Promise<false>((r) => (commitBound = setTimeout(() => r(false), flushTimeoutMs))),
    ]);
    clearTimeout(commitBound);
    if (!committed)
      this.log.error(
        { routes: this.committer.busyRoutes(), waitedMs: flushTimeoutMs },
        'stopping without the final commit of these routes: it did not finish in time; their partitions resume from the last committed offsets',
      );
    await Promise.allSettled(this.tasks);
    for (const p of this.ports) p.close();
    await this.pool?.destroy();
    await this.committer.close();
    for (const view of this.offsetMaps.values()) await view.close();
    this.clusterIds.close();
  }
}
