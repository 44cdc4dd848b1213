/**
 * The worker's table of partitions: one runtime record per route partition it replicates (or drains), keyed by
 * `routePartitionKey` (shared/wire.ts). The pipeline keeps the table; the committer reads and advances it.
 */
import type { PartitionErrorCode } from '../shared/partition-errors';
import { routePartitionKey } from '../shared/wire';

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
  /** offset-map runs not written yet, by srcStart */
  runs: Map<number, [number, number, number]>;
  /** the latest runs (written or not), by srcStart: where the committed offset's records landed (`targetEnd`) */
  recentRuns: Map<number, [number, number, number]>;
  /** `records` and `bytes` at the last load report, and when it was measured (ms) */
  reported: { records: number; bytes: number; at: number };
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

/** The table's key for a route partition (`route|topic/partition`). */
export function runtimeKey(route: string, topic: string, partition: number): string {
  return routePartitionKey({ route, topic, partition });
}
