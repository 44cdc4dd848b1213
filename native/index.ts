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
}

export interface AssignEntry {
  topic: string;
  partition: number;
  targetTopic: string;
  /** >= 0: exact offset; -2: earliest; -1: latest */
  offset: number;
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
  records: number;
  bytes: number;
  dropped: number;
  inflight: number;
  inflightBytes: number;
  lastTimestamp: number;
  assigned: boolean;
  paused: boolean;
  highWatermark?: number;
  error?: string;
  errorCode?: string;
  runs: OffsetRunTuple[];
}

export interface ForwarderProgress {
  partitions: PartitionProgress[];
  latency: { counts: number[]; sumMs: number };
  inflightBytes: number;
  pending: number;
  overBudget: boolean;
  consumerError?: string;
  fatal?: string;
  log?: string;
}

export interface NativeForwarder {
  assign(entries: AssignEntry[]): void;
  unassign(entries: { topic: string; partition: number }[]): void;
  pump(maxWaitMs: number): number;
  progress(): ForwarderProgress;
  commit(offsets: { topic: string; partition: number; offset: number }[]): void;
  close(flushTimeoutMs?: number): void;
}

export interface TopicConfigEntry {
  value: string | null;
  isDefault: boolean;
  isReadOnly: boolean;
  isSensitive: boolean;
  /** librdkafka's ConfigSource name, e.g. DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG */
  source: string;
}

export interface NativeAdmin {
  /** per topic: config name -> entry; a topic that failed has `$error` */
  describeTopicConfigs(topics: string[], timeoutMs: number): Promise<Record<string, Record<string, TopicConfigEntry>>>;
  alterTopicConfigs(topic: string, set: Record<string, string>, remove: string[], timeoutMs: number): Promise<void>;
  close(): void;
}

export interface NativeAddon {
  version(): string;
  features(): string;
  Forwarder: new (options: ForwarderOptions) => NativeForwarder;
  Admin: new (props: Record<string, string | number | boolean>) => NativeAdmin;
}

/** Upper bounds (ms) of the latency histogram buckets the addon fills; keep in step with forwarder.cc. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000];

let cached: NativeAddon | undefined;

export function loadNative(): NativeAddon {
  if (cached) return cached;
  const file = join(__dirname, '..', '..', 'build', 'Release', 'strait_native.node');
  const alt = join(__dirname, '..', 'build', 'Release', 'strait_native.node');
  const path = existsSync(file) ? file : alt;
  try {
    cached = require(path) as NativeAddon;
  } catch (e) {
    throw new StraitError('STRAIT_NATIVE_UNAVAILABLE', `strait's native addon is not built (${(e as Error).message}); run 'npm install' or 'npm run build:native'`, { cause: e });
  }
  return cached;
}
