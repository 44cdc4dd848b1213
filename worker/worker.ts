/**
 * The worker process's control plane (main thread): registers in the store, watches its own assignment, and starts
 * or stops only the partitions that changed — no other partition pauses.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { CoordinationStore } from '../shared/store';
import { partitionKey, type Assignment, type PartitionAssignment } from '../shared/wire';
import { Pipeline } from './pipeline';

const pkg = require('../../package.json') as { version: string };

function key(p: { route: string; topic: string; partition: number }): string {
  return `${p.route}|${partitionKey(p.topic, p.partition)}`;
}

export class Worker {
  readonly id: string;
  readonly pipeline: Pipeline;
  private owned = new Map<string, PartitionAssignment>();
  private unwatch: (() => void) | undefined;
  private applying: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: StraitConfig,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    metrics: StraitMetrics,
  ) {
    this.id = config.worker.id ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
    this.pipeline = new Pipeline(config, this.id, store, log, metrics);
  }

  async start(): Promise<void> {
    this.pipeline.start();
    this.unwatch = this.store.watchAssignment(this.id, (a) => this.enqueue(a));
    await this.store.registerWorker({
      id: this.id,
      host: hostname(),
      pid: process.pid,
      threads: this.config.worker.threads,
      version: pkg.version,
      startedAt: new Date().toISOString(),
    });
    this.enqueue(await this.store.readAssignment(this.id));
  }

  private enqueue(a: Assignment | undefined): void {
    this.applying = this.applying.then(() => this.apply(a)).catch((e: Error) => this.log.error({ err: e.message }, 'applying assignment failed'));
  }

  private async apply(a: Assignment | undefined): Promise<void> {
    const next = new Map<string, PartitionAssignment>();
    for (const p of a?.partitions ?? []) next.set(key(p), p);
    const removed = [...this.owned.entries()].filter(([k]) => !next.has(k)).map(([, p]) => p);
    const added = [...next.entries()].filter(([k]) => !this.owned.has(k)).map(([, p]) => p);
    // Same partition, new epoch (the controller restarted): keep replicating, commit under the new epoch.
    for (const [k, p] of next) {
      const rt = this.pipeline.partitions.get(k);
      if (rt && this.owned.has(k)) rt.epoch = p.epoch;
    }
    if (removed.length > 0) this.pipeline.unassign(removed);
    if (added.length > 0) await this.pipeline.assign(added);
    this.owned = next;
  }

  async stop(flushTimeoutMs = 10_000): Promise<void> {
    this.unwatch?.();
    await this.applying;
    await this.pipeline.stop(flushTimeoutMs);
  }
}
