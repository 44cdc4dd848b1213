/** A cluster's health as its metadata tells it: registered brokers, under-replicated and offline partitions. */
import { setTimeout as sleep } from 'node:timers/promises';
import Kafka from 'node-rdkafka';
import { StraitError } from '../../shared/errors';
import type { ClusterState } from './cluster-state';

export interface PartitionHealth {
  topic: string;
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

export interface ClusterHealth {
  /** registered, unfenced brokers */
  brokers: number[];
  partitions: PartitionHealth[];
  /** partitions whose ISR is smaller than their replica set (Kafka's UnderReplicatedPartitions, cluster-wide) */
  underReplicated: PartitionHealth[];
  /** partitions without a leader */
  offline: PartitionHealth[];
}

/** One metadata request (every topic, internal ones included) answered by any broker of `bootstrap`. */
export async function clusterHealth(bootstrap: string, timeoutMs = 10_000): Promise<ClusterHealth> {
  const producer = new Kafka.Producer({ 'metadata.broker.list': bootstrap, 'socket.connection.setup.timeout.ms': 2000, log_level: 0 });
  let timer: NodeJS.Timeout | undefined;
  try {
    // node-rdkafka's connect callback has been seen never to fire while brokers restart: bound it ourselves
    const md = await Promise.race([
      new Promise<Kafka.Metadata>((res, rej) =>
        producer.connect({ timeout: timeoutMs, allTopics: true } as never, (err, data) => (err ? rej(err) : res(data))),
      ),
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no metadata from ${bootstrap} within ${timeoutMs} ms`)), timeoutMs + 2000))),
    ]);
    const partitions = md.topics.flatMap((t) =>
      t.partitions.map((p) => ({ topic: t.name, partition: p.id, leader: p.leader, replicas: p.replicas, isr: p.isrs })),
    );
    return {
      brokers: md.brokers.map((x) => x.id).sort((x, y) => x - y),
      partitions,
      underReplicated: partitions.filter((p) => p.isr.length < p.replicas.length),
      offline: partitions.filter((p) => p.leader < 0),
    };
  } finally {
    clearTimeout(timer);
    if (producer.isConnected()) await new Promise<void>((res) => producer.disconnect(() => res()));
  }
}

/**
 * Waits until every broker of the cluster is registered and every partition's ISR is its full replica set again
 * (under-replicated = 0, nothing offline), twice in a row: one broker's metadata cache may trail the controller's.
 */
export async function waitForFullIsr(c: ClusterState, timeoutMs = 180_000): Promise<ClusterHealth> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no metadata yet';
  let healthyOnce = false;
  while (Date.now() < deadline) {
    try {
      const h = await clusterHealth(c.bootstrap);
      const missing = c.brokers.map((b) => b.id).filter((id) => !h.brokers.includes(id));
      if (missing.length === 0 && h.underReplicated.length === 0 && h.offline.length === 0) {
        if (healthyOnce) return h;
        healthyOnce = true;
      } else {
        healthyOnce = false;
        last = [
          missing.length > 0 ? `brokers not registered: ${missing.join(', ')}` : '',
          h.underReplicated.length > 0
            ? `${h.underReplicated.length} partitions under-replicated (e.g. ${h.underReplicated
                .slice(0, 3)
                .map((p) => `${p.topic}-${p.partition} isr [${p.isr.join(',')}] of [${p.replicas.join(',')}]`)
                .join('; ')})`
            : '',
          h.offline.length > 0 ? `${h.offline.length} partitions offline` : '',
        ]
          .filter(Boolean)
          .join(', ');
      }
    } catch (e) {
      healthyOnce = false;
      last = (e as Error).message;
    }
    await sleep(500);
  }
  throw new StraitError('STRAIT_DEV_START_FAILED', `cluster ${c.bootstrap}: ISR not full within ${timeoutMs} ms (${last})`);
}
