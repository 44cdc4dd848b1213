/**
 * Where the librdkafka error names a forwarder reports for a partition (rd_kafka_err2name) become strait partition
 * codes, by the flags of shared/kafka/errors.ts. Nothing here parses error text.
 */
import type { StraitErrorCode } from './errors';
import { kafkaError } from './kafka/errors';

export type PartitionErrorCode = Extract<
  StraitErrorCode,
  | 'STRAIT_SOURCE_NOT_AUTHORIZED'
  | 'STRAIT_SOURCE_UNREADABLE'
  | 'STRAIT_SOURCE_FETCH_FAILED'
  | 'STRAIT_OFFSET_GAP'
  | 'STRAIT_TARGET_NOT_AUTHORIZED'
  | 'STRAIT_TARGET_REJECTED'
  | 'STRAIT_COMMIT_FAILING'
  | 'STRAIT_PRODUCER_FATAL'
  | 'STRAIT_ASSIGN_FAILED'
  | 'STRAIT_CLUSTER_CHANGED'
  | 'STRAIT_PARTITION_STALLED'
>;

/** Every code a partition can be errored with, and what it means (the README lists the same). */
export const PARTITION_ERROR_CODES: Record<PartitionErrorCode, string> = {
  STRAIT_SOURCE_NOT_AUTHORIZED: 'the source consumer may not read the topic (Kafka TOPIC_AUTHORIZATION_FAILED); clears once READ is granted',
  STRAIT_SOURCE_UNREADABLE:
    'the source returns batches this build cannot decode (codec not built in, corrupt batch, unsupported message format); clears once a record is read',
  STRAIT_SOURCE_FETCH_FAILED: 'another fetch error repeated 3 times without a record in between; clears with the next record or end of partition',
  STRAIT_OFFSET_GAP: 'the next offset is no longer in the source log and the route says onGap: stop (or the out-of-range offset could not be resolved)',
  STRAIT_TARGET_NOT_AUTHORIZED:
    'the target refused a record for lack of an ACL; the partition stops at it and reads it again after worker.targetRetryMs (doubling); clears once the target takes it',
  STRAIT_TARGET_REJECTED:
    'the target refused a record (e.g. too large, invalid); the partition stops at it and reads it again after worker.targetRetryMs (doubling); clears once the target takes it',
  STRAIT_COMMIT_FAILING:
    "the route's offsets have not been committed for 10 commit intervals (offset map or store write failing or hanging); clears with the next successful commit",
  // appended, never inserted: load reports carry a code as its index in this list
  STRAIT_PRODUCER_FATAL:
    "the target producer failed fatally (librdkafka's idempotent producer, e.g. OUT_OF_ORDER_SEQUENCE_NUMBER); its forwarder is closed and the partition starts again from its last acknowledged offset after a delay growing from 0.5 s to 30 s; clears once it runs",
  STRAIT_ASSIGN_FAILED:
    'the partition could not be started on this worker (still draining there after an error, no definition of its route, offsets unreadable, ...); retried with a growing delay; clears once it runs',
  STRAIT_CLUSTER_CHANGED:
    "the route's source or target cluster has another cluster id than the one its offsets were committed with; not started (the controller holds the route) until `strait offsets reset`",
  STRAIT_PARTITION_STALLED:
    'the partition has work (records in flight, or the source is ahead) but its committable offset has not moved for worker.stallTimeoutMs (a cluster down or unreachable, a producer that gets no acknowledgement, ...); clears when it moves again',
};

export function partitionErrorCode(kind: 'source' | 'target' | 'gap' | 'producer' | 'assign' | undefined, kafkaCode: string | undefined): PartitionErrorCode {
  const k = kafkaError(kafkaCode);
  if (kind === 'gap') return 'STRAIT_OFFSET_GAP';
  if (kind === 'producer') return 'STRAIT_PRODUCER_FATAL';
  if (kind === 'assign') return 'STRAIT_ASSIGN_FAILED';
  if (kind === 'source') {
    if (k.auth) return 'STRAIT_SOURCE_NOT_AUTHORIZED';
    if (k.unreadable) return 'STRAIT_SOURCE_UNREADABLE';
    return 'STRAIT_SOURCE_FETCH_FAILED';
  }
  return k.auth ? 'STRAIT_TARGET_NOT_AUTHORIZED' : 'STRAIT_TARGET_REJECTED';
}
