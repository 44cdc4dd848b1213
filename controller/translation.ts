/**
 * Consumer-group offset translation against live clusters: reads a group's committed offsets on a route's source,
 * the replicator's own progress (the route's mirror group on the source), and the offset map on the target, and
 * turns every committed source offset into the exact target offset (shared/offset-translation.ts).
 *
 * Used by the checkpointer (every `checkpointIntervalMs`) and by `strait failover` / `strait failback`.
 */
import { unpack } from 'msgpackr';
import { loadNative, type GroupOffset, type NativeAdmin } from '../native';
import type { ClientProps, RouteConfig, StraitConfig } from '../shared/config';
import { StraitError } from '../shared/errors';
import { CHECKPOINT_TOPIC, OFFSET_MAP_TOPIC, type CheckpointRecord, type OffsetMapRecord } from '../shared/offset-map';
import { OffsetIndex, type Translation } from '../shared/offset-translation';
import { sourceGroupId } from '../shared/profiles';
import { selectTopic, targetTopicName } from '../shared/replication-policy';
import { TopicTail } from './topic-tail';

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
  /** upper bound of records a consumer resuming at targetOffset reads a second time (pending only) */
  maxDuplicates: number;
}

export function clusterProps(config: StraitConfig, alias: string): ClientProps {
  const c = config.clusters[alias];
  if (!c) throw new StraitError('STRAIT_USAGE', `unknown cluster alias '${alias}' (defined: ${Object.keys(config.clusters).join(', ')})`);
  return { ...c.properties, 'bootstrap.servers': c.bootstrap };
}

function fullMatch(patterns: string[], name: string): boolean {
  return patterns.some((p) => new RegExp(`^(?:${p})$`).test(name));
}

/** Whether a route checkpoints `group`: its group patterns select it, and it is not one of strait's own. */
export function routeCoversGroup(route: RouteConfig, group: string): boolean {
  if (group.startsWith('strait.') || group.startsWith('strait-')) return false;
  return fullMatch(route.groups.include, group) && !fullMatch(route.groups.exclude, group);
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
  let list: GroupOffset[];
  try {
    list = await admins.get(alias).listConsumerGroupOffsets(group, null, timeoutMs);
  } catch (e) {
    throw new StraitError('STRAIT_CLUSTER_UNREACHABLE', `reading the offsets of group '${group}' on cluster '${alias}': ${(e as Error).message}`, { retriable: true, cause: e });
  }
  const out = new Map<string, number>();
  for (const o of list) if (o.error === undefined && o.offset >= 0) out.set(`${o.topic}/${o.partition}`, o.offset);
  return out;
}

/** The offset map of one target cluster, kept up to date incrementally. */
export class OffsetMapView {
  readonly index = new OffsetIndex();
  private readonly tail: TopicTail;

  constructor(config: StraitConfig, readonly alias: string) {
    this.tail = new TopicTail(alias, clusterProps(config, alias), OFFSET_MAP_TOPIC, (_key, value) => {
      if (value === null) return;
      const r = unpack(value) as OffsetMapRecord;
      if (r.v !== 1) return;
      this.index.add(r.route, r.sourceTopic, r.targetTopic, r.partition, { srcStart: r.srcStart, srcEnd: r.srcEnd, delta: r.delta });
    });
  }

  /** Reads what was appended since the last call. */
  async catchUp(timeoutMs: number): Promise<OffsetIndex> {
    await this.tail.catchUp(timeoutMs);
    return this.index;
  }

  close(): Promise<void> {
    return this.tail.close();
  }
}

/** The newest checkpoint of every route / group / partition on a target cluster. */
export async function readCheckpoints(config: StraitConfig, alias: string, timeoutMs: number): Promise<CheckpointRecord[]> {
  const latest = new Map<string, CheckpointRecord>();
  const tail = new TopicTail(alias, clusterProps(config, alias), CHECKPOINT_TOPIC, (key, value) => {
    if (key === null) return;
    if (value === null) latest.delete(key.toString());
    else latest.set(key.toString(), unpack(value) as CheckpointRecord);
  });
  try {
    await tail.catchUp(timeoutMs);
  } finally {
    await tail.close();
  }
  return [...latest.values()].filter((r) => r.v === 1);
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
      });
    }
    rows.sort((a, b) => a.sourceTopic.localeCompare(b.sourceTopic) || a.partition - b.partition);
    out.set(group, rows);
  }
  return out;
}
