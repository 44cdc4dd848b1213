/**
 * The one table of librdkafka and Kafka error names (rd_kafka_err2name: `_TIMED_OUT` for librdkafka's own,
 * `NOT_COORDINATOR` for a broker's) and what strait makes of them. The addon reports names, never text to parse:
 * a partition's `errorCode`, a group offset's `errorCode`, a rejected admin call's `kafkaCode`.
 */

export interface KafkaErrorFlags {
  /** the same request may succeed if sent again (shortly, or once the cluster settles) */
  retriable: boolean;
  /** the client cannot go on: it must be made again */
  fatal: boolean;
  /** an ACL is missing: nothing changes until an operator grants it */
  auth: boolean;
  /** the client's picture of the cluster is stale (leaders moved): refresh metadata and retry */
  staleMetadata: boolean;
  /** a group's coordinator is moving or loading: ask again shortly */
  coordinator: boolean;
  /** the source returns bytes this consumer cannot decode: fetching again returns the same */
  unreadable: boolean;
}

const NONE: KafkaErrorFlags = { retriable: false, fatal: false, auth: false, staleMetadata: false, coordinator: false, unreadable: false };

const flag = (names: string[], flags: Partial<KafkaErrorFlags>): [string, Partial<KafkaErrorFlags>][] => names.map((n) => [n, flags]);

const TABLE = new Map<string, KafkaErrorFlags>(
  [
    ...flag(['TOPIC_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'], {
      auth: true,
    }),
    ...flag(['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS'], { coordinator: true, retriable: true }),
    ...flag(
      [
        'NOT_LEADER_OR_FOLLOWER',
        'LEADER_NOT_AVAILABLE',
        'FENCED_LEADER_EPOCH',
        'UNKNOWN_LEADER_EPOCH',
        'UNKNOWN_TOPIC_OR_PART',
        'NOT_ENOUGH_REPLICAS',
        'REPLICA_NOT_AVAILABLE',
      ],
      { staleMetadata: true, retriable: true },
    ),
    ...flag(
      [
        '_TIMED_OUT',
        'REQUEST_TIMED_OUT',
        '_TRANSPORT',
        '_ALL_BROKERS_DOWN',
        'NETWORK_EXCEPTION',
        'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
        'KAFKA_STORAGE_ERROR',
        'THROTTLING_QUOTA_EXCEEDED',
      ],
      { retriable: true },
    ),
    ...flag(['_FATAL', 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'UNKNOWN_PRODUCER_ID'], { fatal: true }),
    ...flag(
      [
        '_NOT_IMPLEMENTED',
        '_BAD_COMPRESSION',
        '_BAD_MSG',
        'INVALID_MSG',
        'UNSUPPORTED_VERSION',
        '_UNSUPPORTED_FEATURE',
        'UNSUPPORTED_COMPRESSION_TYPE',
        'UNSUPPORTED_FOR_MESSAGE_FORMAT',
      ],
      { unreadable: true },
    ),
  ].map(([name, f]) => [name, { ...NONE, ...f }]),
);

/** What strait makes of a librdkafka/Kafka error name; an unknown or absent name has no flag. */
export function kafkaError(name: string | undefined): KafkaErrorFlags {
  return (name !== undefined && TABLE.get(name)) || NONE;
}

/** The librdkafka error name a rejected native admin call carries (`kafkaCode`), if any. */
export function kafkaCodeOf(e: unknown): string | undefined {
  const code = (e as { kafkaCode?: unknown } | null)?.kafkaCode;
  return typeof code === 'string' ? code : undefined;
}
