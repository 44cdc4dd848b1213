/**
 * Where each assigned partition starts, worked out before it is handed to a pool thread: its committed offset (with
 * its leader epoch), or — with no committed offset, or one of a topic deleted and created again — a logical position
 * resolved to a concrete offset and committed under the partition's epoch before the first fetch.
 */
import type { GapReport, ListedOffset } from '../native';
import type { RouteConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { OffsetIndex } from '../shared/offset-map/runs';
import type { CoordinationStore, OffsetCommit } from '../shared/store/store';
import { partitionKey, type CommittedOffset, type PartitionAssignment } from '../shared/wire';
import { runtimeKey } from './partitions';
import type { SourcePositions } from './source-positions';

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
   *  belongs to a topic of the same name that was deleted (another topic id); target: exactly-once, resumed after the
   *  last run the target's offset map committed (ahead of the store, which follows it) */
  from: 'committed' | 'earliest' | 'latest' | 'recreated' | 'target';
  at: string;
  /** records the target already held past the committed offset's records, sent again from it (duplicates) */
  resent?: number;
}

/** A start worked out before the partition is handed to a pool thread. */
export interface PlannedStart extends Omit<PartitionStart, 'route' | 'topic' | 'partition' | 'epoch' | 'at'> {
  /** the recreated topic's gap, reported once the partition runs */
  gap?: GapReport;
  /** a resolved logical start, to commit before the first fetch */
  commit: boolean;
  /** that commit was written (under the partition's epoch) before the first fetch */
  committedNow?: boolean;
}

export class StartPlanner {
  constructor(
    private readonly positions: SourcePositions,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {}

  /**
   * Where each partition starts. A committed offset is resumed with its leader epoch, unless the source topic now has
   * another id than the one committed with it (deleted and created again): then, like a partition without a committed
   * offset, it starts at a logical position (the new topic's log start, or the route's `start`), which is resolved to
   * a concrete offset here so it can be committed before the first fetch: a restart or a move resumes there instead
   * of resolving `latest` again and skipping what arrived in between. A source that cannot be asked leaves the checks
   * out (logged) rather than holding the partitions back; the forwarder then resolves the logical position itself.
   */
  async plan(routeCfg: RouteConfig, list: PartitionAssignment[], offsets: Map<string, CommittedOffset>): Promise<Map<string, PlannedStart>> {
    const route = routeCfg.name;
    const out = new Map<string, PlannedStart>();
    if (list.length === 0) return out;
    let ids = new Map<string, string>();
    try {
      const found = await this.positions.topicIds(routeCfg.source, [...new Set(list.map((p) => p.topic))]);
      ids = found.ids;
      if (found.errors.size > 0)
        this.log.warn(
          { route, topics: Object.fromEntries(found.errors) },
          `the ids of these source topics of route '${route}' cannot be read; their partitions start without the check for a re-created topic`,
        );
    } catch (e) {
      this.log.warn(
        { route, err: (e as Error).message },
        `the source topic ids of route '${route}' cannot be read; ${list.length} partitions start without the check for a re-created topic`,
      );
    }
    const resolve: Record<'earliest' | 'latest', PartitionAssignment[]> = { earliest: [], latest: [] };
    for (const p of list) {
      const key = runtimeKey(route, p.topic, p.partition);
      const committed = offsets.get(partitionKey(p.topic, p.partition));
      const topicId = ids.get(p.topic);
      if (committed && !(committed.topicId !== undefined && topicId !== undefined && committed.topicId !== topicId)) {
        const known = topicId ?? committed.topicId;
        out.set(key, {
          offset: committed.offset,
          from: 'committed',
          commit: false,
          ...(committed.leaderEpoch !== undefined ? { leaderEpoch: committed.leaderEpoch } : {}),
          ...(known !== undefined ? { topicId: known } : {}),
        });
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
        listed = await this.positions.offsets(
          routeCfg.source,
          resolve[spec].map((p) => ({ topic: p.topic, partition: p.partition })),
          spec,
        );
      } catch (e) {
        this.log.warn(
          { route, spec, err: (e as Error).message },
          `the ${spec} offsets of ${resolve[spec].length} partitions of route '${route}' cannot be read; they start at '${spec}' unresolved, and commit it only once a record arrives`,
        );
        continue;
      }
      for (const p of resolve[spec]) {
        const plan = out.get(runtimeKey(route, p.topic, p.partition))!;
        const l = listed.get(partitionKey(p.topic, p.partition));
        if (l?.offset === undefined || l.offset < 0) {
          this.log.warn(
            { route, topic: p.topic, partition: p.partition, spec, err: l?.error ?? 'not in the answer' },
            `the ${spec} offset of ${p.topic}[${p.partition}] of route '${route}' cannot be read; it starts at '${spec}' unresolved`,
          );
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
   * delivery: exactly-once. The truth about progress is on the target: the offset map's runs commit in the same
   * transactions as the records they cover, so a partition resumes right after its last committed run (`index`, read
   * read_committed) whenever that is past the planned start; the store, which follows the target, is then brought up
   * to it before the first fetch. A re-created source topic keeps its plan (the map's runs are the old topic's).
   */
  resumeFromTarget(routeCfg: RouteConfig, list: PartitionAssignment[], planned: Map<string, PlannedStart>, index: OffsetIndex): void {
    for (const p of list) {
      const plan = planned.get(runtimeKey(routeCfg.name, p.topic, p.partition));
      const last = index.get(routeCfg.name, p.topic, p.partition)?.lastSource;
      if (!plan || plan.from === 'recreated' || last === undefined || (plan.offset >= 0 && last + 1 <= plan.offset)) continue;
      plan.offset = last + 1;
      plan.from = 'target';
      plan.commit = true;
      delete plan.leaderEpoch;
    }
  }

  /**
   * Commits the resolved starts under the partitions' epochs before they fetch. Returns the runtime keys a newer
   * epoch owns (fenced: not started here). A commit that fails is logged; the regular commits write it later.
   * A resolved logical start carries the target partition's end as it is now (`targetEnd`): nothing has been sent from
   * this start yet, so if this worker stops before its first regular commit, the next start counts what the target
   * holds past it as sent twice — as it does for any committed offset (see `resent`).
   */
  async commit(routeCfg: RouteConfig, list: PartitionAssignment[], planned: Map<string, PlannedStart>): Promise<Set<string>> {
    const route = routeCfg.name;
    const fenced = new Set<string>();
    const commits: OffsetCommit[] = [];
    const planOf = (p: PartitionAssignment) => planned.get(runtimeKey(route, p.topic, p.partition))!;
    const starting = list.filter((p) => planOf(p).commit);
    if (starting.length === 0) return fenced;
    // exactly-once resumes from the target's offset map, where aborted records are no duplicates: no targetEnd there,
    // and no need to ask the target for it
    const counted = starting.filter((p) => planOf(p).from !== 'target');
    const ends =
      counted.length > 0
        ? await this.targetEnds(routeCfg, counted, 'the records a restart before their first commit sends again are not counted')
        : new Map<string, number>();
    for (const p of starting) {
      const plan = planOf(p);
      const targetEnd = plan.from === 'target' ? undefined : ends.get(partitionKey(p.targetTopic, p.partition));
      commits.push({
        topic: p.topic,
        partition: p.partition,
        offset: plan.offset,
        epoch: p.epoch,
        ...(plan.topicId !== undefined ? { topicId: plan.topicId } : {}),
        ...(plan.leaderEpoch !== undefined ? { leaderEpoch: plan.leaderEpoch } : {}),
        ...(targetEnd !== undefined ? { targetEnd } : {}),
      });
    }
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
      this.log.warn(
        { route, partitions: commits.length, err: (e as Error).message },
        `the resolved start offsets of route '${route}' could not be committed before the first fetch; the next commit writes them`,
      );
    }
    return fenced;
  }

  /**
   * Per partition resuming at its committed offset: how many records the target already holds past where that offset's
   * records end (`targetEnd`, written with the commit) — records sent before the stop but after the last commit, which
   * the start sends once more: its duplicates. Read before the partition is handed to a pool thread; a partition whose
   * commit predates `targetEnd`, or whose target cannot be asked, is left out (logged). Exact while strait is the only
   * writer of the target partition, as it is for a mirrored topic.
   */
  async resent(
    routeCfg: RouteConfig,
    list: PartitionAssignment[],
    offsets: Map<string, CommittedOffset>,
    planned: Map<string, PlannedStart>,
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    // exactly-once: what the target holds past the start is aborted transactions, which read_committed readers never see
    if (routeCfg.delivery === 'exactly-once') return out;
    const asked = list.filter(
      (p) =>
        planned.get(runtimeKey(routeCfg.name, p.topic, p.partition))?.from === 'committed' &&
        offsets.get(partitionKey(p.topic, p.partition))?.targetEnd !== undefined,
    );
    if (asked.length === 0) return out;
    const ends = await this.targetEnds(routeCfg, asked, 'the records they send again after this start are not counted');
    for (const p of asked) {
      const end = ends.get(partitionKey(p.targetTopic, p.partition));
      const targetEnd = offsets.get(partitionKey(p.topic, p.partition))!.targetEnd!;
      if (end !== undefined && end > targetEnd) out.set(runtimeKey(routeCfg.name, p.topic, p.partition), end - targetEnd);
    }
    return out;
  }

  /** The target partitions' end offsets by target partition key; none when the target cannot be asked (logged). */
  private async targetEnds(routeCfg: RouteConfig, list: PartitionAssignment[], consequence: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    let listed: Map<string, ListedOffset>;
    try {
      listed = await this.positions.offsets(
        routeCfg.target,
        list.map((p) => ({ topic: p.targetTopic, partition: p.partition })),
        'latest',
      );
    } catch (e) {
      this.log.warn(
        { route: routeCfg.name, err: (e as Error).message },
        `the target end offsets of ${list.length} partitions of route '${routeCfg.name}' cannot be read; ${consequence}`,
      );
      return out;
    }
    for (const [key, l] of listed) if (l.offset !== undefined && l.offset >= 0) out.set(key, l.offset);
    return out;
  }
}
