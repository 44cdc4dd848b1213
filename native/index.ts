/**
 * Typed loader for strait's N-API addon (native/*.cc, built by `npm install` through binding.gyp). The addon is
 * context-aware: this module may be required from the main thread and from any number of piscina pool threads.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { StraitError } from '../shared/errors';

export interface ForwarderOptions {
  consumer: Record<string, string | number | boolean>;
  producer: Record<string, string | number | boolean>;
  /** bytes consumed but not yet acknowledged by the target before this forwarder pauses its partitions */
  inflightBytes?: number;
  batchSize?: number;
  /** librdkafka compression.codec for target topics without their own: none|gzip|snappy|lz4|zstd */
  compression?: string;
  provenance?: { header?: string; localOrigin: string; dropOrigin: string; maxHops?: number };
  /** offset out of range: go on from the log start and report the gap (default), or stop the partition */
  onGap?: 'continue' | 'stop';
  /** delivery: exactly-once: the producer's transactional.id (one per source partition, see worker/pump.ts); '' none */
  transactionalId?: string;
}

/** What the addon receives: every option present (it validates nothing and repeats no default). */
export interface CompleteForwarderOptions extends Required<Omit<ForwarderOptions, 'provenance'>> {
  provenance?: Required<NonNullable<ForwarderOptions['provenance']>>;
  /** upper bounds (ms) of the latency histogram buckets the addon fills (16; the last counter is +Inf) */
  latencyBucketsMs: number[];
}

/** The one place the forwarder's defaults live. */
export const FORWARDER_DEFAULTS = {
  inflightBytes: 64 * 1024 * 1024,
  batchSize: 2000,
  compression: 'none',
  onGap: 'continue',
  transactionalId: '',
  provenanceHeader: 'strait.origin',
  maxHops: 8,
} as const;

/** `options` with every default filled, as the addon's constructor requires them. */
export function forwarderOptions(options: ForwarderOptions): CompleteForwarderOptions {
  const { provenance, ...rest } = options;
  return {
    ...rest,
    inflightBytes: options.inflightBytes ?? FORWARDER_DEFAULTS.inflightBytes,
    batchSize: options.batchSize ?? FORWARDER_DEFAULTS.batchSize,
    compression: options.compression ?? FORWARDER_DEFAULTS.compression,
    onGap: options.onGap ?? FORWARDER_DEFAULTS.onGap,
    transactionalId: options.transactionalId ?? FORWARDER_DEFAULTS.transactionalId,
    latencyBucketsMs: LATENCY_BUCKETS_MS,
    ...(provenance
      ? {
          provenance: {
            header: provenance.header ?? FORWARDER_DEFAULTS.provenanceHeader,
            localOrigin: provenance.localOrigin,
            dropOrigin: provenance.dropOrigin,
            maxHops: provenance.maxHops ?? FORWARDER_DEFAULTS.maxHops,
          },
        }
      : {}),
  };
}

export interface AssignEntry {
  topic: string;
  partition: number;
  targetTopic: string;
  /** >= 0: exact offset; -2: earliest; -1: latest */
  offset: number;
  /**
   * The leader epoch that came with `offset` (the committed one, KIP-320): before the first fetch the leader checks
   * that its log still reaches `offset` in that epoch; a log truncated below it is reported as a `truncation` gap.
   */
  leaderEpoch?: number;
  compression?: string;
}

/** [sourceStart, sourceEnd, delta]: source offsets sourceStart..sourceEnd landed at source + delta. */
export type OffsetRunTuple = [number, number, number];

export interface PartitionProgress {
  topic: string;
  partition: number;
  targetTopic: string;
  /** next source offset to read; every record below it is acknowledged by the target. -1: nothing yet */
  committable: number;
  /** the leader epoch of the record before `committable`, when known (committed with it) */
  committableLeaderEpoch?: number;
  /**
   * `committable` went back since the previous progress(): a `truncation` gap goes on where the source's log diverged,
   * below the offset strait had reached (that offset is not in the source's log any more)
   */
  rewound?: boolean;
  /** one past the highest source offset the target acknowledged, once one was */
  deliveredNext?: number;
  /** records the target had acknowledged past a restart point, read and sent again since the last progress:
   *  duplicates on the target (a retry after a refused record; pump.ts adds those of a fatal-error restart) */
  resent?: number;
  records: number;
  bytes: number;
  dropped: number;
  inflight: number;
  inflightBytes: number;
  lastTimestamp: number;
  assigned: boolean;
  paused: boolean;
  highWatermark?: number;
  /** why the partition makes no progress; absent once the cause is gone */
  error?: string;
  /** librdkafka's name of the error (rd_kafka_err2name), e.g. TOPIC_AUTHORIZATION_FAILED */
  errorCode?: string;
  /**
   * source: a consumer error for this partition (it keeps fetching and clears with the next record or end of
   * partition); target: a record the target refused (stopped at it until retryTarget() or an assign); gap: offset out of range under
   * onGap=stop, or not resolvable (stopped until assigned again); producer: the target producer failed fatally (the
   * pool thread starts the partition again in a new forwarder); assign: the partition could not be started here (the
   * pool thread retries). The last two are reported by worker/pump.ts, which owns the retry.
   */
  errorKind?: 'source' | 'target' | 'gap' | 'producer' | 'assign';
  /** offset-out-of-range resets resolved since the previous progress() */
  gaps?: GapReport[];
  runs: OffsetRunTuple[];
}

/**
 * retention: the offset was below the log start; truncation: the source's log was truncated below it (above the log
 * end, or past where the leader's log diverged: KIP-320's epoch check), and the partition goes on where the log
 * diverged from what strait read; recreated: the source topic was deleted and created again (another topic id)
 * since the offset was committed, and the partition starts over at the new topic's log start.
 */
export const GAP_REASONS = ['retention', 'truncation', 'recreated'] as const;

export function isGapReason(s: string): s is GapReport['reason'] {
  return (GAP_REASONS as readonly string[]).includes(s);
}

export interface GapReport {
  reason: (typeof GAP_REASONS)[number];
  /** the offset the fetch wanted */
  from: number;
  /** where the partition went on (or would have, when stopped); for truncation, where the source's log diverged */
  to: number;
  /**
   * offsets never read: `to - from` for retention; for truncation 0 (what the source holds past where its log
   * diverged is read), or `to - from` when the new leader's log starts past `from`; for recreated, the old topic's
   * offsets from the committed one up to its end as far as strait knows it (0: the end of a deleted topic cannot be
   * read any more)
   */
  skipped: number;
  stopped: boolean;
}

/** An error a client reports for itself, not for a partition: librdkafka's name (shared/kafka/errors.ts) and reason. */
export interface ClientError {
  code: string;
  message: string;
}

export interface ForwarderProgress {
  partitions: PartitionProgress[];
  latency: { counts: number[]; sumMs: number };
  inflightBytes: number;
  pending: number;
  overBudget: boolean;
  /** the source consumer's newest error without a partition since the last progress (`code`: librdkafka's name) */
  consumerError?: ClientError;
  /** the target producer's newest client-level error (a broker down, ...) since the last progress */
  producerError?: ClientError;
  /** the producer's fatal error ("<reason>"); it can produce nothing more: see NativeForwarder.pump */
  fatal?: string;
  /** librdkafka's name of the fatal error, e.g. OUT_OF_ORDER_SEQUENCE_NUMBER */
  fatalCode?: string;
  /**
   * exactly-once: the failed call was commit_transaction and the transaction could not be aborted, so it may have
   * committed (or may yet, when the next producer of its transactional id initialises): the partition must resume from
   * the target's offset map, not from `committable`
   */
  txnOutcomeUnknown?: boolean;
  log?: string;
}

/** An assign entry that did not start (the others did). */
export interface AssignFailure {
  topic: string;
  partition: number;
  /** librdkafka's error name, or _IN_PROGRESS (still draining here, try again later), _INVALID_ARG (compression) */
  errorCode: string;
  error: string;
}

/** A transaction call's answer; on failure the forwarder reports it as `fatal` and must be closed. */
export interface TransactionResult {
  ok: boolean;
  /** librdkafka's error name (e.g. PRODUCER_FENCED), or _TRANSACTION for a flush that did not finish */
  errorCode?: string;
  error?: string;
}

export interface TransactionFlush extends TransactionResult {
  partitions: { topic: string; partition: number; targetTopic: string; runs: OffsetRunTuple[] }[];
}

export interface NativeForwarder {
  /**
   * Starts the entries' fetches; returns those that did not start. Each entry is checked before anything changes,
   * so one refused entry holds no other back. A partition still draining here is re-activated in place.
   */
  assign(entries: AssignEntry[]): AssignFailure[];
  unassign(entries: { topic: string; partition: number }[]): void;
  /**
   * records handed to the producer; -1 once the producer has failed fatally (close this forwarder). A transactional
   * forwarder reads nothing until its init_transactions (started by the constructor, in librdkafka's background)
   * completed; it fails (-1, progress().fatal naming init_transactions) if that takes more than 15 s.
   */
  pump(maxWaitMs: number): number;
  progress(): ForwarderProgress;
  commit(offsets: { topic: string; partition: number; offset: number }[]): void;
  close(flushTimeoutMs?: number): void;
  /**
   * FOR TESTS ONLY: raises a fatal idempotent-producer error (OUT_OF_ORDER_SEQUENCE_NUMBER) through librdkafka's
   * rd_kafka_test_fatal_error(). Throws unless the process runs with STRAIT_TEST_FAULTS=1.
   */
  testFatalError(reason: string): string;
  /**
   * transactional forwarders: whether init_transactions completed (`ready`, always true for other forwarders), and
   * the open transaction's age and the key+value bytes produced in it
   */
  transaction(): { ready: boolean; open: boolean; ageMs: number; bytes: number };
  /**
   * Waits until the target acknowledged every record of the open transaction; returns its runs per partition (to be
   * written to the offset map with commitTransaction). `ok: false`: the transaction failed and this forwarder with it.
   */
  flushTransaction(timeoutMs: number): TransactionFlush;
  /** produces `records` (the offset map's runs) to `topic` in the open transaction and commits it */
  commitTransaction(topic: string, records: { key: Buffer; value: Buffer }[], timeoutMs: number): TransactionResult;
  /**
   * A partition stopped because the target refused a record reads again from that record once nothing of it is in
   * flight ("busy" until then; "idle": nothing to retry). It stays reported errored until a record is delivered.
   */
  retryTarget(topic: string, partition: number): 'retried' | 'busy' | 'idle';
  /** the in-flight budget from now on, bytes (an exactly-once partition's share changes with the partitions beside it) */
  setBudget(bytes: number): void;
}

export interface TopicConfigEntry {
  value: string | null;
  isDefault: boolean;
  isReadOnly: boolean;
  isSensitive: boolean;
  /** librdkafka's ConfigSource name, e.g. DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG */
  source: string;
}

export interface GroupListing {
  groupId: string;
  state: string;
  isSimple: boolean;
}
/** `error`: "<librdkafka error name>: <message>" for this partition (then no offset) */
export interface ListedOffset {
  topic: string;
  partition: number;
  offset?: number;
  leaderEpoch?: number;
  error?: string;
  errorCode?: string;
}
/** `state`: librdkafka's consumer group state name (Unknown, PreparingRebalance, CompletingRebalance, Stable, Dead, Empty) */
export interface GroupDescription {
  groupId: string;
  state: string;
  members: number;
  error?: string;
}
/** `error`: "<librdkafka error name>: <message>" for this partition. Offset lists come sorted by topic, partition. */
/** `error`: librdkafka's name and message for this partition; `errorCode`: the name alone (shared/kafka/errors.ts) */
export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
  metadata?: string;
  error?: string;
  errorCode?: string;
}

/**
 * Every method rejects with a TypeError naming the field for bad arguments (empty lists included), and with
 * "<method>: <librdkafka error name>: <message>" when the request as a whole fails (unreachable cluster, timeout,
 * group-level broker error), the name also as the error's `kafkaCode` (shared/kafka/errors.ts `kafkaCodeOf`); an item
 * that failed alone carries its own `error` text and `errorCode` name. `timeoutMs` defaults to 10 s.
 */
export interface NativeAdmin {
  /** per topic: config name -> entry; a topic that failed has `$error` (text) and `$errorCode` (librdkafka's name) */
  describeTopicConfigs(topics: string[], timeoutMs: number): Promise<Record<string, Record<string, TopicConfigEntry>>>;
  alterTopicConfigs(topic: string, set: Record<string, string>, remove: string[], timeoutMs: number): Promise<void>;
  /** topic ids (KIP-516, base64); a topic that could not be described has `error` ("<name>: ...") and `errorCode` */
  describeTopics(topics: string[], timeoutMs?: number): Promise<Record<string, { topicId?: string; error?: string; errorCode?: string }>>;
  /**
   * the log start (`earliest`) or the last stable offset (`latest`, read_committed, where the forwarder's consumer
   * would begin) of each partition, with the leader epoch the broker gives for it
   */
  listOffsets(partitions: { topic: string; partition: number }[], spec: 'earliest' | 'latest', timeoutMs?: number): Promise<ListedOffset[]>;
  /** every group of the cluster; rejects if any broker could not answer (an incomplete list would hide groups) */
  listConsumerGroups(timeoutMs?: number): Promise<GroupListing[]>;
  /** a group whose coordinator did not answer has `error`; rejects when that is so for every group asked */
  describeConsumerGroups(groups: string[], timeoutMs?: number): Promise<GroupDescription[]>;
  /** committed offsets of `group`; `partitions` null = all partitions the group has offsets for. offset -1 = none */
  listConsumerGroupOffsets(group: string, partitions: { topic: string; partition: number }[] | null, timeoutMs?: number): Promise<GroupOffset[]>;
  /** commits offsets for a group with no active members (Kafka refuses otherwise; that refusal must come back as a
   *  per-partition `error` string or a rejected promise whose message names the broker error, e.g. UNKNOWN_MEMBER_ID /
   *  GROUP_SUBSCRIBED_TO_TOPIC / non-empty group) */
  alterConsumerGroupOffsets(
    group: string,
    offsets: { topic: string; partition: number; offset: number; metadata?: string }[],
    timeoutMs?: number,
  ): Promise<GroupOffset[]>;
  /** librdkafka handles given up since creation: a group request that got no answer in time (its coordinator was
   *  unreachable) retires the handle it ran on, and the next request gets a new one (native/admin.h says why) */
  retiredHandles(): number;
  /** the cluster's id (Kafka's cluster.id) from the handle's metadata; rejects `_TIMED_OUT: ...` without an answer */
  clusterId(timeoutMs?: number): Promise<string>;
  close(): void;
}

export interface NativeAddon {
  version(): string;
  features(): string;
  Forwarder: new (options: ForwarderOptions) => NativeForwarder;
  Admin: new (props: Record<string, string | number | boolean>) => NativeAdmin;
}

/** Upper bounds (ms) of the latency histogram buckets: handed to the addon, and the buckets of the metric. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000];

let cached: NativeAddon | undefined;

export function loadNative(): NativeAddon {
  if (cached) return cached;
  const file = join(__dirname, '..', '..', 'build', 'Release', 'strait_native.node');
  const alt = join(__dirname, '..', 'build', 'Release', 'strait_native.node');
  const path = existsSync(file) ? file : alt;
  let raw: Omit<NativeAddon, 'Forwarder'> & { Forwarder: new (options: CompleteForwarderOptions) => NativeForwarder };
  try {
    raw = require(path) as typeof raw;
  } catch (e) {
    throw new StraitError(
      'STRAIT_NATIVE_UNAVAILABLE',
      `strait's native addon is not built (${(e as Error).message}); run 'npm install' or 'npm run build:native'`,
      { cause: e },
    );
  }
  // the addon's constructor takes complete options only: every default is filled here, in one place
  const Forwarder = function (options: ForwarderOptions) {
    return new raw.Forwarder(forwarderOptions(options));
  } as unknown as NativeAddon['Forwarder'];
  cached = { version: raw.version, features: raw.features, Admin: raw.Admin, Forwarder };
  return cached;
}
