/**
 * Checkpoints (run by the leading controller): every route's `checkpointIntervalMs`, the committed offsets of the
 * source consumer groups its group patterns select are translated (group-translation.ts) and written to
 * `__strait-checkpoints` on the target. With `syncGroupOffsets`, they are also written into the target cluster's
 * group of the same name — only while that group has no members, and never backwards.
 */
import type { RouteConfig, StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import { CHECKPOINT_TOPIC, checkpointKey, encodeCheckpoint, type CheckpointRecord } from '../shared/offset-map/records';
import { OffsetMapView } from '../shared/offset-map/readers';
import { OffsetMapWriter } from '../shared/offset-map/writer';
import { routeClientProps } from '../shared/kafka/client-settings';
import { Admins, groupOffsets, inverseTranslate, lowestPerPartition, routeCoversGroup, translateGroups, type PartitionTranslation } from './group-translation';

const TIMEOUT_MS = 10_000;
/** group states in which Kafka accepts offsets from outside the group, and no consumer is reading */
const IDLE_STATES = new Set(['Empty', 'Dead']);

export class Checkpointer {
  private readonly admins: Admins;
  private readonly maps = new Map<string, OffsetMapView>();
  private readonly writers = new Map<string, OffsetMapWriter>();
  private readonly lastRun = new Map<string, number>();
  /** route/group/topic/partition -> the last checkpoint written, so unchanged ones are not rewritten */
  private readonly written = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly config: StraitConfig,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
    /** the routes to checkpoint now (live and not paused) */
    private readonly routes: () => RouteConfig[],
  ) {
    this.admins = new Admins(config);
  }

  start(): void {
    const tickMs = Math.max(100, Math.min(1000, ...this.config.routes.map((r) => r.checkpointIntervalMs)));
    this.timer = setInterval(() => void this.tick(), tickMs);
  }

  /** One pass over the routes that are due; never overlaps itself. */
  tick(force = false): Promise<void> {
    if (this.running) return this.running;
    this.running = this.runDue(force).finally(() => (this.running = undefined));
    return this.running;
  }

  private async runDue(force: boolean): Promise<void> {
    const now = Date.now();
    const live = new Set(this.routes().map((r) => r.name));
    // a route removed or paused is not checkpointed: the age of its groups is not exported
    for (const [k, t] of this.metrics.checkpointTimes) if (!live.has(t.route)) this.metrics.checkpointTimes.delete(k);
    const due = this.routes().filter((r) => force || now - (this.lastRun.get(r.name) ?? 0) >= r.checkpointIntervalMs);
    // one route after the other: they share the admin clients and the offset-map readers of their clusters
    for (const r of due) {
      if (this.stopping) return;
      this.lastRun.set(r.name, now);
      try {
        await this.checkpointRoute(r);
      } catch (e) {
        this.log.warn({ route: r.name, err: (e as Error).message }, 'checkpoint pass failed; retrying next interval');
      }
    }
  }

  private map(alias: string): OffsetMapView {
    let m = this.maps.get(alias);
    if (!m) this.maps.set(alias, (m = new OffsetMapView(this.config, alias)));
    return m;
  }

  private writer(route: RouteConfig): OffsetMapWriter {
    let w = this.writers.get(route.target);
    if (!w) {
      const props = routeClientProps(this.config, route, 'controller').producer;
      // bounded delivery: a target that is down fails this pass (retried next interval) instead of holding every route
      this.writers.set(route.target, (w = new OffsetMapWriter(route.target, { ...props, 'client.id': 'strait-checkpointer' }, TIMEOUT_MS * 3)));
    }
    return w;
  }

  private async checkpointRoute(route: RouteConfig): Promise<void> {
    const listed = await this.admins.get(route.source).listConsumerGroups(TIMEOUT_MS);
    const groups = listed
      .map((g) => g.groupId)
      .filter((g) => routeCoversGroup(route, g))
      .sort();
    const translated = await translateGroups(this.config, route, groups, this.admins, this.map(route.target), TIMEOUT_MS);
    // Routes back from the target: a group here that also reads replicas of the target's topics (prefix: `b.orders`;
    // identity: the same topic, interleaved with local records) resumes there through their maps (inverse). Both
    // directions go into this route's checkpoints, so a failover with this cluster gone has them.
    const back = this.routes().filter((r) => r.source === route.target && r.target === route.source);
    if (back.length > 0) {
      const index = await this.map(route.source).catchUp(TIMEOUT_MS);
      for (const group of groups) {
        const offsets = await groupOffsets(this.admins, route.source, group, TIMEOUT_MS);
        const rows = translated.get(group) ?? [];
        for (const r of back) rows.push(...inverseTranslate(this.config, r, group, offsets, index));
        translated.set(group, rows);
      }
    }
    const records: CheckpointRecord[] = [];
    let misses = 0;
    const now = Date.now();
    for (const rows of translated.values()) {
      for (const row of rows) {
        if (row.kind === 'miss') misses++;
        if (row.targetOffset === undefined) continue;
        const rec: CheckpointRecord = {
          v: 1,
          route: row.route,
          group: row.group,
          sourceTopic: row.sourceTopic,
          partition: row.partition,
          targetTopic: row.targetTopic,
          sourceOffset: row.sourceOffset,
          targetOffset: row.targetOffset,
          kind: row.kind as CheckpointRecord['kind'],
          maxDuplicates: row.maxDuplicates,
          direction: row.direction,
          ts: now,
        };
        const k = checkpointKey(rec).toString();
        const sig = `${rec.sourceOffset}/${rec.targetOffset}/${rec.kind}`;
        if (this.written.get(k) === sig) continue;
        records.push(rec);
        this.written.set(k, sig);
      }
    }
    try {
      await this.writer(route).writeTo(CHECKPOINT_TOPIC, records.map(encodeCheckpoint));
    } catch (e) {
      for (const r of records) this.written.delete(checkpointKey(r).toString());
      throw e;
    }
    this.metrics.checkpointsWritten.inc({ route: route.name }, records.length);
    this.metrics.groupsTranslated.set({ route: route.name }, [...translated.values()].filter((rows) => rows.length > 0).length);
    this.metrics.translationMisses.set({ route: route.name }, misses);
    // a group no longer checkpointed (gone from the source, or without offsets on this route's topics) has no age
    const checkpointed = new Set([...translated].filter(([, rows]) => rows.length > 0).map(([group]) => group));
    for (const [k, t] of this.metrics.checkpointTimes) if (t.route === route.name && !checkpointed.has(t.group)) this.metrics.checkpointTimes.delete(k);
    for (const [group, rows] of translated) {
      if (rows.length === 0) continue;
      this.metrics.checkpointTimes.set(`${route.name}\u0000${group}`, { route: route.name, group, at: now });
      if (route.syncGroupOffsets) await this.syncGroup(route, group, lowestPerPartition(rows));
    }
  }

  /** Writes translated offsets into the target cluster's group: only an idle group, only forwards. */
  private async syncGroup(route: RouteConfig, group: string, rows: PartitionTranslation[]): Promise<void> {
    const admin = this.admins.get(route.target);
    const [desc] = await admin.describeConsumerGroups([group], TIMEOUT_MS);
    if (desc === undefined || desc.error !== undefined || desc.members > 0 || !IDLE_STATES.has(desc.state)) {
      this.log.debug({ route: route.name, group, state: desc?.state, members: desc?.members }, 'group has members on the target: offsets not synced');
      return;
    }
    const current = await groupOffsets(this.admins, route.target, group, TIMEOUT_MS);
    const writes = rows
      .filter((r) => r.targetOffset !== undefined && (current.get(`${r.targetTopic}/${r.partition}`) ?? -1) < r.targetOffset)
      .map((r) => ({ topic: r.targetTopic, partition: r.partition, offset: r.targetOffset! }));
    if (writes.length === 0) return;
    let result;
    try {
      result = await admin.alterConsumerGroupOffsets(group, writes, TIMEOUT_MS);
    } catch (e) {
      this.log.info({ route: route.name, group, err: (e as Error).message }, 'target group refused synced offsets (it has members now?)');
      return;
    }
    const failed = result.filter((r) => r.error !== undefined);
    this.metrics.groupOffsetsSynced.inc({ route: route.name }, writes.length - failed.length);
    if (failed.length > 0) this.log.info({ route: route.name, group, failed: failed.slice(0, 5) }, 'target group refused synced offsets (it has members now?)');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // a pass in flight ends within its request timeouts; never let it hold a shutdown longer than that
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 2 * TIMEOUT_MS).unref())]);
    // checkpoints are the leader's: a controller that stops leading stops exporting their age
    this.metrics.checkpointTimes.clear();
    for (const m of this.maps.values()) await m.close();
    for (const w of this.writers.values()) await w.close();
    this.maps.clear();
    this.writers.clear();
    this.admins.close();
  }
}
