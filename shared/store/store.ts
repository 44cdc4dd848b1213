/**
 * The coordination store: where the controller writes assignments, workers register and watch theirs, and source
 * offsets are committed with epoch fencing. Two implementations: embedded (a local file, for `strait run`) and
 * ZooKeeper (distributed deployments).
 */
import type { RouteConfig } from '../config';
import type { Assignment, CommittedOffset, LoadReport, PartitionAssignment, WorkerInfo } from '../wire';

export interface OffsetCommit extends CommittedOffset {
  topic: string;
  partition: number;
}

export interface CommitResult {
  /** partitions whose commit was refused because a newer epoch owns them */
  fenced: { topic: string; partition: number; epoch: number }[];
}

/** The clusters a route's committed offsets were read from and written to, by Kafka cluster id. */
export interface RouteClusters {
  source: string;
  target: string;
  /** when recorded, ISO 8601 */
  at: string;
}

/** A route created over REST, as the store keeps it (config-file routes are never stored). */
export interface StoredRoute {
  /** validated, defaults filled */
  route: RouteConfig;
  /** 1 when created, +1 on every update */
  revision: number;
  updatedAt: string;
}

/** What a campaigner hears from a leader election (`CoordinationStore.campaign`). */
export interface LeaderCallbacks {
  /** this campaigner now leads; act as the controller */
  elected(): void;
  /** this campaigner no longer leads (its session was lost, or its leader record vanished); stop acting at once */
  lost(): void;
}

export interface CoordinationStore {
  registerWorker(info: WorkerInfo): Promise<void>;
  listWorkers(): Promise<WorkerInfo[]>;
  /** called whenever the set of registered workers changes */
  watchWorkers(cb: (workers: WorkerInfo[]) => void): () => void;

  /** `routes`: definitions of the REST-managed routes these partitions belong to (Assignment.routes) */
  writeAssignment(worker: string, partitions: PartitionAssignment[], routes?: RouteConfig[]): Promise<Assignment>;
  readAssignment(worker: string): Promise<Assignment | undefined>;
  watchAssignment(worker: string, cb: (a: Assignment | undefined) => void): () => void;
  /** removes a worker's assignment (e.g. after the worker left for good); watchers of it see `undefined` */
  deleteAssignment(worker: string): Promise<void>;

  /** operator state that outlives a leader change: drained workers and paused routes */
  readControl(): Promise<{ drained: Set<string>; paused: Set<string> }>;
  setDrained(worker: string, drained: boolean): Promise<void>;
  setPaused(route: string, paused: boolean): Promise<void>;

  /** committed source offsets of a route, keyed by `topic/partition` */
  readOffsets(route: string): Promise<Map<string, CommittedOffset>>;
  /** writes offsets; a partition whose stored epoch is newer than the commit's is refused (fenced), never moved */
  commitOffsets(route: string, commits: OffsetCommit[]): Promise<CommitResult>;
  /** raises the stored epoch of partitions handed to a new owner, so the previous owner's commits are refused */
  fence(route: string, partitions: { topic: string; partition: number; epoch: number }[]): Promise<void>;

  /** the ids of the clusters a route's committed offsets belong to (shared/cluster-identity.ts); undefined until recorded */
  readRouteClusters(route: string): Promise<RouteClusters | undefined>;
  /** records `ids` for the route unless a record exists; returns the record that holds afterwards (the first one wins) */
  claimRouteClusters(route: string, ids: RouteClusters): Promise<RouteClusters>;
  /**
   * Forgets a route's committed offsets and cluster ids (`strait offsets reset`): its partitions start again at the
   * route's `start`. Returns how many partitions had an offset.
   */
  resetRoute(route: string): Promise<number>;

  /** target topics a route created (and so may expand) */
  readManagedTopics(route: string): Promise<Set<string>>;
  addManagedTopic(route: string, topic: string): Promise<void>;

  /**
   * Runs for leadership under `id` until the returned `resign` is called: `cb.elected()` when this campaigner
   * becomes the leader, `cb.lost()` when it stops being one. Resolves once the first attempt is made (elected or
   * standing by). `resign()` gives leadership up without calling `cb.lost()`.
   */
  campaign(id: string, cb: LeaderCallbacks): Promise<() => Promise<void>>;
  /** the id of the current leader, if any */
  readLeader(): Promise<string | undefined>;

  /**
   * Called at once when this process's store session is gone (its ephemeral registrations may already belong to
   * nobody, and another worker may be handed its partitions): stop owning anything. Returns an unsubscribe.
   */
  onSessionLost(cb: () => void): () => void;
  /** Called when a new session has replaced a lost one and this process's registrations and watches are back. */
  onSessionRestored(cb: () => void): () => void;

  close(): Promise<void>;

  // load reports: what each worker last measured of its partitions (throughput, lag). One record per worker, gone
  // when the worker's registration goes (ZooKeeper: an ephemeral node of its session).
  /** replaces this worker's report */
  writeReport(report: LoadReport): Promise<void>;
  /** every worker's last report */
  readReports(): Promise<LoadReport[]>;
  /** delivers every worker's last report once the watch is armed, then after each report written or gone */
  watchReports(cb: (reports: LoadReport[]) => void): () => void;

  // routes managed over REST
  /** every stored route, by name */
  readRoutes(): Promise<Map<string, StoredRoute>>;
  /** creates or replaces a route (its revision grows by one) */
  writeRoute(route: RouteConfig): Promise<StoredRoute>;
  /** removes a route; false when there was none of that name */
  deleteRoute(name: string): Promise<boolean>;
  /** delivers every stored route once the watch is armed, then after every create, update or delete */
  watchRoutes(cb: (routes: Map<string, StoredRoute>) => void): () => void;
}
