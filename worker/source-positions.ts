/**
 * What a worker asks a source cluster before a partition's first fetch: the topic's id (KIP-516), to tell a topic
 * deleted and created again from the one the committed offset belongs to, and concrete offsets for a partition that
 * would otherwise start at a logical position (earliest, latest), so that position can be committed at once. One
 * native admin client per source cluster, shared with the cluster-id checks.
 */
import type { ListedOffset, NativeAdmin } from '../native';
import { partitionKey } from '../shared/wire';

const LOOKUP_TIMEOUT_MS = 10_000;

export class SourcePositions {
  /** `admin`: the worker's admin client of a cluster (shared/cluster-identity.ts ClusterIds, which also closes it) */
  constructor(private readonly admin: (alias: string) => NativeAdmin) {}

  /** topic -> id; a topic that could not be described is missing (`errors` says why). Rejects when the cluster does not answer. */
  async topicIds(alias: string, topics: string[]): Promise<{ ids: Map<string, string>; errors: Map<string, string> }> {
    const ids = new Map<string, string>();
    const errors = new Map<string, string>();
    if (topics.length === 0) return { ids, errors };
    const described = await this.admin(alias).describeTopics(topics, LOOKUP_TIMEOUT_MS);
    for (const t of topics) {
      const d = described[t];
      if (d?.topicId !== undefined) ids.set(t, kafkaTopicId(d.topicId));
      else errors.set(t, d?.error ?? 'not in the answer');
    }
    return { ids, errors };
  }

  /** `topic/partition` -> the listed offset (with `error` when that partition could not be listed) */
  async offsets(alias: string, partitions: { topic: string; partition: number }[], spec: 'earliest' | 'latest'): Promise<Map<string, ListedOffset>> {
    if (partitions.length === 0) return new Map();
    const listed = await this.admin(alias).listOffsets(partitions, spec, LOOKUP_TIMEOUT_MS);
    return new Map(listed.map((l) => [partitionKey(l.topic, l.partition), l]));
  }
}

/**
 * A topic id as Kafka's own tools print it (`kafka-topics --describe`: URL-safe base64 without padding); librdkafka's
 * rd_kafka_Uuid_base64str gives standard base64.
 */
export function kafkaTopicId(base64: string): string {
  return base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
