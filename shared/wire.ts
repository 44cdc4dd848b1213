/**
 * Every message that crosses a boundary: main thread <-> piscina pool thread (worker/pump.ts), and the records the
 * coordination store keeps. One file, named interfaces only (house style, after piscina's src/types.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import type { AssignEntry, ForwarderOptions, ForwarderProgress, GapReport } from '../native';
import type { RouteConfig } from './config';

/** Client settings for one route's forwarder, computed on the main thread. */
export interface RouteClients {
  route: string;
  options: ForwarderOptions;
  /** delivery: exactly-once — each source partition gets a forwarder of its own with a transactional producer */
  transaction?: RouteTransactions;
}

export interface RouteTransactions {
  /** + `<topic>|<partition>`: the partition's transactional.id, the same on every owner (a new one fences the old) */
  idPrefix: string;
  intervalMs: number;
  maxBytes: number;
}

/** The long-lived task each pool thread runs. */
export interface PumpTask {
  shard: number;
  port: MessagePort;
  routes: RouteClients[];
  /** how often the thread posts progress, ms */
  progressIntervalMs: number;
  /** first delay before a partition the target refused a record of reads it again; doubles up to 20 times it */
  targetRetryMs: number;
}

export type ToPump =
  | { type: 'assign'; route: string; entries: AssignEntry[] }
  /** a route's client settings, new or changed; a forwarder of the old settings (idle by then) is closed */
  | { type: 'route'; clients: RouteClients }
  | { type: 'unassign'; route: string; entries: { topic: string; partition: number }[] }
  | { type: 'commit'; route: string; offsets: { topic: string; partition: number; offset: number }[] }
  /** exactly-once: a partition held because its last commit's outcome is unknown (FromPump 'fatal', unknownCommit)
   *  starts again after `lastCommitted`, the last source offset the target's offset map committed for it (none: no
   *  run there), read after its transactional id was fenced */
  | { type: 'resume'; route: string; topic: string; partition: number; lastCommitted?: number }
  /** FOR TESTS ONLY (Pipeline.injectFatalErrorForTest): the route's forwarder raises a fatal producer error; refused
   *  unless the process runs with STRAIT_TEST_FAULTS=1 */
  | { type: 'test-fatal'; route: string; reason: string }
  | { type: 'stop'; flushTimeoutMs: number };

export type FromPump =
  | { type: 'progress'; shard: number; routes: Record<string, ForwarderProgress> }
  | { type: 'error'; shard: number; route: string; message: string }
  /** the route's producer failed fatally: its forwarder is closed, `partitions` start again in `retryInMs` (the
   *  `streak`-th fatal error within a minute of the previous one) — unless `fenced`: a partition's transactional
   *  producer was fenced, and it stays stopped here until the main thread assigns it again: the worker does that when it
   *  still owns `fencedPartition` (worker/worker.ts, restartFenced); or `unknownCommit`: the partition's commit failed
   *  and could not be aborted, and it waits for a `resume` (worker/pipeline.ts, resumeFromTarget) */
  | {
      type: 'fatal';
      shard: number;
      route: string;
      code?: string;
      cause: string;
      partitions: number;
      retryInMs: number;
      streak: number;
      fenced: boolean;
      fencedPartition?: { topic: string; partition: number };
      unknownCommit?: { topic: string; partition: number };
    }
  /** exactly-once: a partition whose commit was in doubt starts again at `at` (`lastKnown`: its last commit this
   *  worker saw succeed; `at` past it means the transaction in doubt had committed) */
  | { type: 'resumed'; shard: number; route: string; topic: string; partition: number; lastKnown: number; at: number }
  /** partitions held after a fatal producer error run again in a new forwarder */
  | { type: 'restarted'; shard: number; route: string; partitions: number }
  | { type: 'stopped'; shard: number; routes: Record<string, ForwarderProgress> };

/** A worker as it registers in the store. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  threads: number;
  version: string;
  startedAt: string;
  /**
   * Filled in by the store when it lists workers: the store session this registration belongs to. A worker that lost
   * its session and registered again has a new one, which tells the controller to send it a fresh assignment.
   */
  session?: string;
}

/** One partition a worker owns; `epoch` grows each time ownership of the partition changes. */
export interface PartitionAssignment {
  route: string;
  topic: string;
  partition: number;
  targetTopic: string;
  compression: string;
  epoch: number;
}

export interface Assignment {
  worker: string;
  /** grows with every write of this worker's assignment */
  version: number;
  partitions: PartitionAssignment[];
  /**
   * Definitions of the routes created over REST that `partitions` belong to: a worker learns them with the partitions
   * that use them (config-file routes come from its own config file).
   */
  routes?: RouteConfig[];
}

/** One partition's measured load, as its worker reports it (`LoadReport`). */
export interface PartitionLoad {
  route: string;
  topic: string;
  partition: number;
  /** replicated bytes/s (key + value + headers) over the report window */
  bytesPerSec: number;
  recordsPerSec: number;
  /** source high watermark minus committed offset; -1 while not known yet */
  lag: number;
  /** the partition makes no progress because of an error */
  errored: boolean;
  /** its STRAIT_* partition code (shared/partition-errors.ts) while errored */
  errorCode?: string;
}

/** What a worker reports every `worker.reportIntervalMs`: the load of every partition it replicates. */
export interface LoadReport {
  worker: string;
  /** when it was measured, ms since the Unix epoch */
  at: number;
  /** the window the rates were measured over, ms */
  windowMs: number;
  partitions: PartitionLoad[];
  /** the worker's most recent offset gaps (records skipped or a partition stopped), newest last; absent from older workers */
  gaps?: ReportedGap[];
}

/** An offset gap a worker met (shared/partition-errors.ts: STRAIT_OFFSET_GAP), as its load report carries it. */
export interface ReportedGap extends GapReport {
  route: string;
  topic: string;
  partition: number;
  /** when the worker met it, ISO 8601 */
  at: string;
}

export interface CommittedOffset {
  offset: number;
  epoch: number;
  /**
   * The source topic's id (KIP-516, base64) when the offset was committed: a topic of the same name with another id
   * was deleted and created again, and the offset means nothing in it. Absent from records of older workers.
   */
  topicId?: string;
  /** The leader epoch of the record before `offset` (KIP-320), passed back on assign so the broker checks the log. */
  leaderEpoch?: number;
  /**
   * The target offset just past the last record replicated from below `offset` (offset-map runs). Whatever the target
   * partition holds from there on when a partition starts again was sent past the commit and is sent once more: the
   * duplicates of that start, counted (strait_records_resent_total). Absent when not known (older records).
   */
  targetEnd?: number;
}

/** The fields a store keeps of a commit, without the absent optional ones (records stay as small as before). */
export function committedRecord(c: CommittedOffset): CommittedOffset {
  return {
    offset: c.offset,
    epoch: c.epoch,
    ...(c.topicId !== undefined ? { topicId: c.topicId } : {}),
    ...(c.leaderEpoch !== undefined ? { leaderEpoch: c.leaderEpoch } : {}),
    ...(c.targetEnd !== undefined ? { targetEnd: c.targetEnd } : {}),
  };
}

/** The stored record already says what the commit would write. */
export function sameCommitted(a: CommittedOffset, b: CommittedOffset): boolean {
  return a.offset === b.offset && a.epoch === b.epoch && a.topicId === b.topicId && a.leaderEpoch === b.leaderEpoch && a.targetEnd === b.targetEnd;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

/** One route's partition, `route|topic/partition`: the key of every table of partitions, in worker and controller. */
export function routePartitionKey(p: { route: string; topic: string; partition: number }): string {
  return `${p.route}|${partitionKey(p.topic, p.partition)}`;
}
