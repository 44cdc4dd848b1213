/**
 * The coordination store: where the controller writes assignments, workers register and watch theirs, and source
 * offsets are committed with epoch fencing. Two implementations: embedded (a local file, for `strait run`) and
 * ZooKeeper (distributed deployments).
 */
import type { Assignment, CommittedOffset, PartitionAssignment, WorkerInfo } from './wire';

export interface OffsetCommit {
  topic: string;
  partition: number;
  offset: number;
  epoch: number;
}

export interface CommitResult {
  /** partitions whose commit was refused because a newer epoch owns them */
  fenced: { topic: string; partition: number; epoch: number }[];
}

export interface CoordinationStore {
  registerWorker(info: WorkerInfo): Promise<void>;
  listWorkers(): Promise<WorkerInfo[]>;
  /** called whenever the set of registered workers changes */
  watchWorkers(cb: (workers: WorkerInfo[]) => void): () => void;

  writeAssignment(worker: string, partitions: PartitionAssignment[]): Promise<Assignment>;
  readAssignment(worker: string): Promise<Assignment | undefined>;
  watchAssignment(worker: string, cb: (a: Assignment | undefined) => void): () => void;

  /** committed source offsets of a route, keyed by `topic/partition` */
  readOffsets(route: string): Promise<Map<string, CommittedOffset>>;
  /** writes offsets; a partition whose stored epoch is newer than the commit's is refused (fenced), never moved */
  commitOffsets(route: string, commits: OffsetCommit[]): Promise<CommitResult>;
  /** raises the stored epoch of partitions handed to a new owner, so the previous owner's commits are refused */
  fence(route: string, partitions: { topic: string; partition: number; epoch: number }[]): Promise<void>;

  /** target topics a route created (and so may expand) */
  readManagedTopics(route: string): Promise<Set<string>>;
  addManagedTopic(route: string, topic: string): Promise<void>;

  close(): Promise<void>;
}
