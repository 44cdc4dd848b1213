/**
 * strait's records on each target cluster, and the one place they are turned into bytes and back.
 *
 * The offset map: runs of source offsets s..e that landed on the target at s + delta, persisted by workers to the
 * compacted topic `__strait-offset-map` on each target cluster (one record per run, keyed so compaction keeps the
 * newest version of every run).
 */
import { pack, unpack } from 'msgpackr';

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

export function encodeOffsetMapRecord(r: OffsetMapRecord): { key: Buffer; value: Buffer } {
  return { key: offsetMapKey(r), value: pack(r) };
}

export function encodeCheckpoint(r: CheckpointRecord): { key: Buffer; value: Buffer } {
  return { key: checkpointKey(r), value: pack(r) };
}

/** An offset-map run, or undefined for a value that is not one of version 1 (a newer writer's, or not ours). */
export function decodeOffsetMapRecord(value: Buffer): OffsetMapRecord | undefined {
  const r = unpackObject(value);
  if (r?.v !== 1) return undefined;
  const ok =
    isString(r.route) && isString(r.sourceTopic) && isString(r.targetTopic) && isInt(r.partition) && isInt(r.srcStart) && isInt(r.srcEnd) && isInt(r.delta);
  return ok ? (r as unknown as OffsetMapRecord) : undefined;
}

/** A checkpoint, or undefined for a value that is not one of version 1. */
export function decodeCheckpoint(value: Buffer): CheckpointRecord | undefined {
  const r = unpackObject(value);
  if (r?.v !== 1) return undefined;
  const ok =
    isString(r.route) &&
    isString(r.group) &&
    isString(r.sourceTopic) &&
    isString(r.targetTopic) &&
    isInt(r.partition) &&
    isInt(r.sourceOffset) &&
    isInt(r.targetOffset) &&
    isInt(r.maxDuplicates) &&
    isInt(r.ts) &&
    (r.kind === 'exact' || r.kind === 'pending' || r.kind === 'miss') &&
    (r.direction === undefined || r.direction === 'forward' || r.direction === 'inverse');
  return ok ? (r as unknown as CheckpointRecord) : undefined;
}

function unpackObject(value: Buffer): Record<string, unknown> | undefined {
  try {
    const r: unknown = unpack(value);
    return typeof r === 'object' && r !== null && !Array.isArray(r) ? (r as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const isString = (x: unknown): x is string => typeof x === 'string';
const isInt = (x: unknown): x is number => Number.isSafeInteger(x);
