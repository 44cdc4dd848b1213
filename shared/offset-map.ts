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
