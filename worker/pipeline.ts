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
import { forwarderSettings } from '../shared/kafka/client-settings';
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
  type RouteClients,
  type ToPump,
} from '../shared/wire';
import type { ForwarderProgress, PartitionProgress } from '../native';
import { AtLeastOnceCommitter, type Committer } from './committer';
import { PartitionHealth } from './partition-health';
import { runtimeKey, type ErroredPartition, type PartitionRuntime } from './partitions';
import { SourcePositions } from './source-positions';
import { StartPlanner, type PartitionStart } from './start-planner';

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

/** An offset gap this worker met (the same record travels in its load reports). */
export type GapProblem = ReportedGap;

/** how many recent partition starts the status endpoint keeps */
const START_HISTORY = 100;

export class Pipeline {
  private pool: Piscina | undefined;
  private readonly ports: MessagePort[] = [];
  private readonly shardLoad: number[] = [];
  private readonly tasks: Promise<unknown>[] = [];
  readonly partitions = new Map<string, PartitionRuntime>();
  private readonly committer: Committer;
  private commitTimer: NodeJS.Timeout | undefined;
  private stoppedShards = new Set<number>();
  /** routes created over REST, as the last assignment carried them */
  private readonly carried = new Map<string, RouteConfig>();
  /** route -> the client settings the pool threads have (JSON), to tell a changed route from an unchanged one */
  private readonly sentClients = new Map<string, string>();
  private onStopped: (() => void) | undefined;
  /** the most recent partition starts, newest last */
  readonly starts: PartitionStart[] = [];
  private readonly positions: SourcePositions;
  private readonly startPlanner: StartPlanner;
  /** assigned partitions that could not be handed to a pool thread (see `assign`), by runtime key */
  private readonly unstarted = new Map<string, ErroredPartition>();
  private readonly clusterIds: ClusterIds;
  private readonly health: PartitionHealth;
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
    this.startPlanner = new StartPlanner(this.positions, store, log, metrics);
    this.health = new PartitionHealth(log, metrics, config.worker.stallTimeoutMs, (name) => this.route(name));
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
    return { route: r.name, options: forwarderSettings(this.config, r, this.workerId) };
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
        this.log.error(
          { route: def.name, clusters: missing },
          `route '${def.name}' uses cluster aliases this worker's config file does not define (${missing.join(', ')}); its partitions cannot run here`,
        );
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
        for (const rt of list) if (!rt.draining && rt.topicId !== now) out.push(routePartitionKey(rt));
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
      const planned = await this.startPlanner.plan(routeCfg, fresh, offsets);
      const fenced = await this.startPlanner.commit(route, fresh, planned);
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
        });
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
      this.log.info({ route, partitions: list.length }, 'partitions assigned');
    }
    this.updateAssignedGauge();
    return started;
  }

  private noteStart(s: PartitionStart): void {
    this.starts.push(s);
    if (this.starts.length > START_HISTORY) this.starts.splice(0, this.starts.length - START_HISTORY);
  }

  /** Partitions an assignment gave this worker that it could not hand to a pool thread: errored until started. */
  private notStarted(
    route: string,
    list: PartitionAssignment[],
    cause: string,
    code: 'STRAIT_ASSIGN_FAILED' | 'STRAIT_CLUSTER_CHANGED' = 'STRAIT_ASSIGN_FAILED',
  ): void {
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
      this.log.error(
        { route, code, partitions: fresh.map((p) => `${p.topic}[${p.partition}]`), cause },
        `${fresh.length} assigned partitions of route '${route}' cannot start on this worker: ${cause}; retried`,
      );
    }
  }

  private startedNow(key: string): void {
    const u = this.unstarted.get(key);
    if (!u) return;
    this.unstarted.delete(key);
    this.metrics.partitionErrored.remove({ route: u.route, topic: u.topic, partition: String(u.partition), code: u.code });
    this.log.warn(
      { route: u.route, topic: u.topic, partition: u.partition, code: u.code },
      `partition ${u.topic}[${u.partition}] of route '${u.route}' started (was ${u.code})`,
    );
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
        {
          route: m.route,
          shard: m.shard,
          code: 'STRAIT_PRODUCER_FATAL',
          kafkaCode: m.code ?? null,
          cause: m.cause,
          partitions: m.partitions,
          retryInMs: m.retryInMs,
          streak: m.streak,
        },
        `the target producer of route '${m.route}' failed fatally (${m.code ?? 'no Kafka code'}: ${m.cause}); its forwarder is closed and its ${m.partitions} partitions start again from their last acknowledged offsets in ${m.retryInMs} ms`,
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
    if (progress.consumerError) this.health.applyClientError(route, 'consumer', progress.consumerError);
    if (progress.producerError) this.health.applyClientError(route, 'producer', progress.producerError);
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
    // A `truncation` gap goes on where the source's log diverged, below the offset strait had reached: that offset is
    // not in the source's log any more, so the partition's position goes back with the forwarder's, and the stored one
    // no longer counts (as for a re-created topic): the next commit writes the new position, and a restart resumes
    // there rather than meeting the truncation again.
    const rewound = pp.rewound === true && pp.committable >= 0;
    const advanced = rewound || pp.committable > rt.committable;
    if (advanced) {
      rt.committable = pp.committable;
      rt.leaderEpoch = pp.committableLeaderEpoch;
      if (rewound) rt.committed = -1;
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
    this.health.applyError(rt, pp);
    this.health.checkStall(rt, pp, advanced);
    for (const gap of pp.gaps ?? []) this.health.applyGap(rt, gap);
    for (const run of pp.runs) rt.runs.set(run[0], run);
    if (!pp.assigned && pp.inflight === 0 && rt.draining) {
      // final state reported: commit it, then forget the partition
      void this.commit().then(() => {
        const cur = this.partitions.get(routePartitionKey(rt));
        if (cur === rt) {
          this.partitions.delete(routePartitionKey(rt));
          this.health.clearError(rt, 'unassigned');
        }
      });
    }
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
    this.clusterIds.close();
  }
}
