/**
 * The offset map: runs of source offsets s..e that landed on the target at s + delta, persisted by workers to the
 * compacted topic `__strait-offset-map` on each target cluster (one record per run, keyed so compaction keeps the
 * newest version of every run).
 */
export const OFFSET_MAP_TOPIC = '__strait-offset-map';

export interface OffsetMapRecord {
  v: 1;
  route: string;
  sourceTopic: string;
  partition: number;
  targetTopic: string;
  srcStart: number;
  srcEnd: number;
  delta: number;
}

export function offsetMapKey(r: Pick<OffsetMapRecord, 'route' | 'sourceTopic' | 'partition' | 'srcStart'>): Buffer {
  return Buffer.from(`${r.route}\u0000${r.sourceTopic}\u0000${r.partition}\u0000${r.srcStart}`);
}

/**
 * Checkpoints: a source consumer group's committed offsets translated to the target, written every
 * `checkpointIntervalMs` to the compacted topic `__strait-checkpoints` on the target cluster (one record per
 * route / group / partition, the newest kept). `strait failover` reads them when the source cluster is gone.
 */
export const CHECKPOINT_TOPIC = '__strait-checkpoints';

export interface CheckpointRecord {
  v: 1;
  route: string;
  group: string;
  sourceTopic: string;
  partition: number;
  targetTopic: string;
  /** the group's committed offset on the source */
  sourceOffset: number;
  /** where the group resumes on the target */
  targetOffset: number;
  /** exact; pending (records still in flight: at most maxDuplicates re-read); miss (older than the map) */
  kind: 'exact' | 'pending' | 'miss';
  maxDuplicates: number;
  /** forward: through this route; inverse: back through a route from the target (failover merges both). Absent = forward */
  direction?: 'forward' | 'inverse';
  /** when the source offset was read (ms since the epoch) */
  ts: number;
}

export function checkpointKey(r: Pick<CheckpointRecord, 'route' | 'group' | 'sourceTopic' | 'partition'>): Buffer {
  return Buffer.from(`${r.route}\u0000${r.group}\u0000${r.sourceTopic}\u0000${r.partition}`);
}
