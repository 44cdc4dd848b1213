/**
 * Partitions an assignment gave this worker that it could not hand to a pool thread (no definition of their route,
 * their offsets unreadable, their clusters changed): each is errored — one error log per cause, the partition-errored
 * metric — until a later assign starts it or the assignment drops it. The worker reports them, so the controller knows
 * this worker holds them rather than taking them for lost.
 */
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { PartitionAssignment } from '../shared/wire';
import { runtimeKey, type ErroredPartition } from './partitions';

export type UnstartedCode = 'STRAIT_ASSIGN_FAILED' | 'STRAIT_CLUSTER_CHANGED';

export class UnstartedPartitions {
  /** by runtime key */
  private readonly table = new Map<string, ErroredPartition>();

  constructor(
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {}

  /** `list` of `route` cannot start here, because of `cause`: errored (logged once per partition and code). */
  add(route: string, list: PartitionAssignment[], cause: string, code: UnstartedCode = 'STRAIT_ASSIGN_FAILED'): void {
    const fresh: PartitionAssignment[] = [];
    for (const p of list) {
      const key = runtimeKey(route, p.topic, p.partition);
      const cur = this.table.get(key);
      if (cur?.code === code) {
        cur.cause = cause;
        continue;
      }
      if (cur) this.metrics.partitionErrored.remove({ route, topic: p.topic, partition: String(p.partition), code: cur.code });
      fresh.push(p);
      this.table.set(key, { route, topic: p.topic, partition: p.partition, code, kafkaCode: null, cause, since: new Date().toISOString() });
      this.metrics.partitionErrored.set({ route, topic: p.topic, partition: String(p.partition), code }, 1);
      this.metrics.errors.inc({ route, topic: p.topic, code });
    }
    if (fresh.length > 0) {
      this.log.error(
        { route, code, partitions: fresh.map((p) => `${p.topic}[${p.partition}]`), cause },
        `${fresh.length} assigned partitions of route '${route}' cannot start on this worker: ${cause}; retried`,
      );
    }
  }

  /** The partition `key` started after all: no longer errored. */
  started(key: string): void {
    const u = this.table.get(key);
    if (!u) return;
    this.table.delete(key);
    this.metrics.partitionErrored.remove({ route: u.route, topic: u.topic, partition: String(u.partition), code: u.code });
    this.log.warn(
      { route: u.route, topic: u.topic, partition: u.partition, code: u.code },
      `partition ${u.topic}[${u.partition}] of route '${u.route}' started (was ${u.code})`,
    );
  }

  /** Forgets the partitions no longer assigned here (keys not in `assigned`). */
  retain(assigned: Set<string>): void {
    for (const [key, u] of this.table) {
      if (assigned.has(key)) continue;
      this.table.delete(key);
      this.metrics.partitionErrored.remove({ route: u.route, topic: u.topic, partition: String(u.partition), code: u.code });
    }
  }

  entries(): IterableIterator<[string, ErroredPartition]> {
    return this.table.entries();
  }

  values(): IterableIterator<ErroredPartition> {
    return this.table.values();
  }
}
