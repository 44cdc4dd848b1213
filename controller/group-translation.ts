/**
 * Consumer-group offset translation against live clusters: reads a group's committed offsets on a route's source,
 * the replicator's own progress (the route's mirror group on the source), and the offset map on the target, and
 * turns every committed source offset into the exact target offset (shared/offset-map/runs.ts).
 *
 * Used by the checkpointer (every `checkpointIntervalMs`) and by `strait failover` / `strait failback`.
 */
import { loadNative, type GroupOffset, type NativeAdmin } from '../native';
import type { RouteConfig, StraitConfig } from '../shared/config';
import { StraitError } from '../shared/errors';
import { kafkaCodeOf, kafkaError } from '../shared/kafka/errors';
import type { OffsetMapView } from '../shared/offset-map/readers';
import type { OffsetIndex, PartitionRuns, Translation } from '../shared/offset-map/runs';
import { clusterProps, sourceGroupId } from '../shared/kafka/client-settings';
import { fullMatch, selectTopic, targetTopicName } from '../shared/replication-policy';

export interface PartitionTranslation {
  route: string;
  group: string;
  sourceTopic: string;
  partition: number;
  targetTopic: string;
  sourceOffset: number;
  /** undefined when nothing of the partition is mapped yet */
  targetOffset: number | undefined;
  kind: Translation['kind'];
  /** upper bound of records a consumer resuming at targetOffset reads a second time */
  maxDuplicates: number;
  /** forward: through a route from the group's cluster; inverse: back through a route into it */
  direction: 'forward' | 'inverse';
}

/** Whether a route checkpoints `group`: its group patterns select it, and it is not one of strait's own. */
export function routeCoversGroup(route: RouteConfig, group: string): boolean {
  if (group.startsWith('strait.') || group.startsWith('strait-')) return false;
  return fullMatch(route.groups.include, group) && !fullMatch(route.groups.exclude, group, true);
}

/** Native admin clients per cluster alias, created on first use. */
export class Admins {
  private readonly clients = new Map<string, NativeAdmin>();

  constructor(private readonly config: StraitConfig) {}

  get(alias: string): NativeAdmin {
    let a = this.clients.get(alias);
    if (!a) {
      a = new (loadNative().Admin)({ ...clusterProps(this.config, alias), 'client.id': `strait-admin-${alias}` });
      this.clients.set(alias, a);
    }
    return a;
  }

  close(): void {
    for (const a of this.clients.values()) a.close();
    this.clients.clear();
  }
}

/** Committed offsets of `group` on cluster `alias` by `topic/partition` (offsets < 0 = none). */
export async function groupOffsets(admins: Admins, alias: string, group: string, timeoutMs: number): Promise<Map<string, number>> {
  let list: GroupOffset[] = [];
  // a group coordinator that is moving or still loading answers NOT_COORDINATOR / COORDINATOR_*: ask again shortly
  for (let attempt = 0; ; attempt++) {
    let coordinator: string | undefined;
    try {
      list = await admins.get(alias).listConsumerGroupOffsets(group, null, timeoutMs);
      coordinator = list.find((o) => kafkaError(o.errorCode).coordinator)?.error;
    } catch (e) {
      if (!kafkaError(kafkaCodeOf(e)).coordinator || attempt >= 5) {
        throw new StraitError('STRAIT_CLUSTER_UNREACHABLE', `reading the offsets of group '${group}' on cluster '${alias}': ${(e as Error).message}`, {
          retriable: true,
          cause: e,
        });
      }
      coordinator = (e as Error).message;
    }
    if (coordinator === undefined) break;
    if (attempt >= 5)
      throw new StraitError('STRAIT_KAFKA', `reading the offsets of group '${group}' on cluster '${alias}': ${coordinator}`, { retriable: true });
    await new Promise((r) => setTimeout(r, 500));
  }
  const failed = list.find((o) => o.error !== undefined);
  if (failed)
    throw new StraitError(
      'STRAIT_KAFKA',
      `reading the offsets of group '${group}' on cluster '${alias}': ${failed.topic}[${failed.partition}]: ${failed.error}`,
      { retriable: true },
    );
  const out = new Map<string, number>();
  for (const o of list) if (o.offset >= 0) out.set(`${o.topic}/${o.partition}`, o.offset);
  return out;
}

/**
 * Translates the committed source offsets of each group for one route. Reads in the order that keeps the result
 * safe: the groups' offsets, then the replicator's own progress, then the map (runs are written before progress is
 * committed, so the map read last covers everything the progress says is handled).
 */
export async function translateGroups(
  config: StraitConfig,
  route: RouteConfig,
  groups: string[],
  admins: Admins,
  map: OffsetMapView,
  timeoutMs: number,
): Promise<Map<string, PartitionTranslation[]>> {
  const aliases = Object.keys(config.clusters);
  const committed = new Map<string, Map<string, number>>();
  for (const g of groups) committed.set(g, await groupOffsets(admins, route.source, g, timeoutMs));
  const handled = await groupOffsets(admins, route.source, sourceGroupId(config, route), timeoutMs);
  const index = await map.catchUp(timeoutMs);
  const out = new Map<string, PartitionTranslation[]>();
  for (const [group, offsets] of committed) {
    const rows: PartitionTranslation[] = [];
    for (const [tp, sourceOffset] of offsets) {
      const slash = tp.lastIndexOf('/');
      const sourceTopic = tp.slice(0, slash);
      const partition = Number(tp.slice(slash + 1));
      if (!selectTopic(route, sourceTopic, aliases).selected) continue;
      const runs = index.get(route.name, sourceTopic, partition);
      const t: Translation = runs ? runs.translate(sourceOffset, handled.get(tp)) : { kind: 'unmapped' };
      rows.push({
        route: route.name,
        group,
        sourceTopic,
        partition,
        targetTopic: targetTopicName(route, sourceTopic),
        sourceOffset,
        targetOffset: t.kind === 'unmapped' ? undefined : t.offset,
        kind: t.kind,
        maxDuplicates: t.kind === 'pending' ? t.maxDuplicates : 0,
        direction: 'forward',
      });
    }
    rows.sort((a, b) => a.sourceTopic.localeCompare(b.sourceTopic) || a.partition - b.partition);
    out.set(group, rows);
  }
  return out;
}

/**
 * The other direction: a group's committed offsets on `route`'s target (`offsets`, by `topic/partition`, read by the
 * caller) become offsets on the route's source, through the route's offset map on the target (`index`). Rows name
 * the target-side topic as `sourceTopic` (where the group is now) and the source-side topic as `targetTopic` (where it
 * goes), like forward rows do.
 */
export function inverseTranslate(
  config: StraitConfig,
  route: RouteConfig,
  group: string,
  offsets: Map<string, number>,
  index: OffsetIndex,
): PartitionTranslation[] {
  const aliases = Object.keys(config.clusters);
  const rows: PartitionTranslation[] = [];
  for (const [tp, offset] of offsets) {
    const slash = tp.lastIndexOf('/');
    const topic = tp.slice(0, slash);
    const partition = Number(tp.slice(slash + 1));
    const origin = index.sourceTopicOf(route.name, topic);
    if (origin === undefined || targetTopicName(route, origin) !== topic || !selectTopic(route, origin, aliases).selected) continue;
    const t = index.get(route.name, origin, partition)?.inverse(offset) ?? { kind: 'unmapped' as const };
    rows.push({
      route: route.name,
      group,
      sourceTopic: topic,
      partition,
      targetTopic: origin,
      sourceOffset: offset,
      targetOffset: t.kind === 'unmapped' ? undefined : t.offset,
      kind: t.kind,
      maxDuplicates: 0,
      direction: 'inverse',
    });
  }
  return rows;
}

/**
 * Several translations for one destination partition (identity naming with writes on both sides: the forward one for
 * records that came from the group's cluster, the inverse one for the destination's own records): the lowest offset
 * loses nothing. What it re-reads is counted from the forward route's runs on the destination (`forwardRuns`): with
 * the inverse offset lower, the replicas between the two (the group saw them); with the forward offset lower, the
 * destination's own records between the two (the group saw those as replicas). Rows without an offset only count
 * when nothing else speaks for the partition.
 */
export function lowestPerPartition(
  rows: PartitionTranslation[],
  forwardRuns?: (row: PartitionTranslation) => PartitionRuns | undefined,
): PartitionTranslation[] {
  const byPartition = new Map<string, PartitionTranslation[]>();
  for (const r of rows) {
    const k = `${r.targetTopic}/${r.partition}`;
    byPartition.set(k, [...(byPartition.get(k) ?? []), r]);
  }
  const out: PartitionTranslation[] = [];
  for (const list of byPartition.values()) {
    const mapped = list.filter((r) => r.targetOffset !== undefined);
    if (mapped.length === 0) {
      out.push(list[0]!);
      continue;
    }
    const best = { ...mapped.reduce((x, y) => (y.targetOffset! < x.targetOffset! ? y : x)) };
    const fwd = mapped.filter((r) => r.direction === 'forward').sort((x, y) => x.targetOffset! - y.targetOffset!)[0];
    const inv = mapped.filter((r) => r.direction === 'inverse').sort((x, y) => x.targetOffset! - y.targetOffset!)[0];
    const runs = fwd && inv ? forwardRuns?.(fwd) : undefined;
    if (fwd && inv && runs) {
      const [tf, ti] = [fwd.targetOffset!, inv.targetOffset!];
      best.maxDuplicates += ti < tf ? runs.targetCount(ti, tf) : ti - tf - runs.targetCount(tf, ti);
    }
    out.push(best);
  }
  return out.sort((a, b) => a.targetTopic.localeCompare(b.targetTopic) || a.partition - b.partition);
}
