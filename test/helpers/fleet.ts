/**
 * Helpers for tests of a distributed deployment: a producer that keeps writing numbered keys, what a worker's log
 * says about the partitions it started and stopped, and the leader's view over REST.
 */
import type Kafka from 'node-rdkafka';
import { connectProducer, readAll } from './kafka';
import type { StraitProcess } from './strait-process';

/**
 * Writes `k0, k1, ...` round-robin over the partitions at `perSecond` until stopped. The rate is kept over time, not
 * per tick: a test process whose event loop stalls (its own Kafka clients) catches up on the next tick.
 */
export class SteadyProducer {
  produced = 0;
  /** produce() calls refused (queue full); the key is produced again on the next tick */
  refused = 0;
  ticks = 0;
  lastRefusal: string | undefined;
  private producer: Kafka.Producer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  private pending = 0;
  private stopped = false;

  constructor(
    private readonly brokers: string,
    private readonly topic: string,
    private readonly partitions: number,
    private readonly perSecond = 500,
  ) {}

  async start(): Promise<void> {
    const p = await connectProducer(this.brokers);
    this.producer = p;
    p.on('delivery-report', (err) => {
      this.pending--;
      if (err && !this.failure) this.failure = new Error(`delivery failed: ${err.message}`);
    });
    const startedAt = Date.now();
    this.timer = setInterval(() => {
      this.ticks++;
      const due = Math.min(5000, Math.floor(((Date.now() - startedAt) * this.perSecond) / 1000) - this.produced);
      for (let i = 0; i < due; i++) {
        const n = this.produced;
        try {
          p.produce(this.topic, n % this.partitions, Buffer.from(`v${n}`), Buffer.from(`k${n}`), Date.now());
        } catch (e) {
          this.refused++;
          this.lastRefusal = (e as Error).message;
          return; // queue full: the next tick goes on from the same key
        }
        this.produced++;
        this.pending++;
      }
    }, 100);
  }

  /** Stops producing and waits for every delivery report; returns how many records were written. */
  async stop(): Promise<number> {
    clearInterval(this.timer);
    if (this.stopped) return this.produced;
    this.stopped = true;
    const deadline = Date.now() + 60_000;
    while (this.pending > 0 && Date.now() < deadline && !this.failure) await new Promise((r) => setTimeout(r, 50));
    await new Promise<void>((res) => (this.producer ? this.producer.disconnect(() => res()) : res()));
    if (this.failure) throw this.failure;
    if (this.pending > 0) throw new Error(`${this.pending} records not acknowledged within 60 s`);
    return this.produced;
  }
}

export interface PartitionEvent {
  what: 'started' | 'stopped';
  route: string;
  topic: string;
  partition: number;
  epoch: number;
  /** ms since epoch, from the log line */
  at: number;
}

/** The `partition started` / `partition stopped` lines a worker logged (worker/worker.ts). */
export function partitionEvents(p: StraitProcess): PartitionEvent[] {
  const out: PartitionEvent[] = [];
  for (const line of p.output.split('\n')) {
    if (!line.includes('"partition st')) continue;
    let r: { msg?: string; route?: string; topic?: string; partition?: number; epoch?: number; time?: string };
    try {
      r = JSON.parse(line) as typeof r;
    } catch {
      continue;
    }
    if (r.msg !== 'partition started' && r.msg !== 'partition stopped') continue;
    out.push({
      what: r.msg === 'partition started' ? 'started' : 'stopped',
      route: r.route!,
      topic: r.topic!,
      partition: r.partition!,
      epoch: r.epoch!,
      at: Date.parse(r.time!),
    });
  }
  return out;
}

/** `topic/partition` of what a worker runs now, by its log: started and not stopped since. */
export function runningPartitions(p: StraitProcess): Set<string> {
  const running = new Set<string>();
  for (const e of partitionEvents(p)) {
    if (e.what === 'started') running.add(`${e.topic}/${e.partition}`);
    else running.delete(`${e.topic}/${e.partition}`);
  }
  return running;
}

/** The worker id a `strait worker` process registered under (its /v1/status). */
export async function workerId(p: StraitProcess, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const s = await p.json<{ worker: { id: string } }>('/v1/status');
      return s.worker.id;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error('the worker never said its id');
}

export interface AssignmentRow {
  route: string;
  topic: string;
  partition: number;
  worker: string;
  epoch: number;
}

/** `topic/partition` (or what `key` makes of an assignment, e.g. with its route) -> worker, from the leader's REST API */
export async function assignmentMap(
  restUrl: string,
  token?: string,
  key: (a: Pick<AssignmentRow, 'route' | 'topic' | 'partition'>) => string = (a) => `${a.topic}/${a.partition}`,
): Promise<Map<string, string>> {
  const res = await fetch(`${restUrl}/v1/assignments`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`GET /v1/assignments: ${res.status} ${await res.text()}`);
  const rows = (await res.json()) as AssignmentRow[];
  return new Map(rows.map((a) => [key(a), a.worker]));
}

/** Keys `k0 .. k{n-1}` that are not on the target topic. */
export async function missingKeys(brokers: string, topic: string, partitions: number, n: number, present: number): Promise<number[]> {
  const rows = await readAll(brokers, topic, partitions, present);
  const keys = new Set(rows.map((r) => r.key?.toString()));
  const missing: number[] = [];
  for (let i = 0; i < n; i++) if (!keys.has(`k${i}`)) missing.push(i);
  return missing;
}

/**
 * When a fleet test's exactly-once copy stops short: where each partition stands — read_committed records per target
 * partition, the leading controller's view (owner, epoch, error, last report), and each process's warnings, errors and
 * partition starts and stops (the last `lines` of each).
 */
export async function fleetDiagnosis(
  targetBrokers: string,
  targetTopic: string,
  partitions: number,
  controller: StraitProcess | undefined,
  processes: StraitProcess[],
  lines = 30,
): Promise<string> {
  const perPartition = Array.from({ length: partitions }, () => 0);
  for (const r of await readAll(targetBrokers, targetTopic, partitions, Number.MAX_SAFE_INTEGER, 20_000, 'read_committed').catch(() => []))
    perPartition[r.partition]!++;
  const view = controller ? await controller.json<unknown[]>('/v1/partitions').catch((e: Error) => `(${e.message})`) : '(no controller)';
  const said = processes.map((p, i) => {
    const out = p.output.split('\n').filter((l) => /"level":(40|50|60)/.test(l) || l.includes('"partition st') || l.includes('"from"'));
    return `${p.role} ${i} (pid ${p.child.pid}${p.child.exitCode !== null ? `, exited ${p.child.exitCode}` : ''}, running ${[...runningPartitions(p)].join(' ')}):\n${out.slice(-lines).join('\n')}`;
  });
  return [`read_committed per partition of ${targetTopic}: ${perPartition.join(', ')}`, `controller: ${JSON.stringify(view)}`, ...said].join('\n');
}
