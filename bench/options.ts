/** What a `strait bench` run is asked to do. */
import type { SystemName } from './systems';

export interface BenchOptions {
  scenarios: string[];
  source?: string;
  target?: string;
  records: number;
  recordSizes: number[];
  partitions: number;
  codecs: string[];
  out: string;
  systems: SystemName[];
  /** repetitions of every measurement, systems in rotated order (default 1; `strait bench` defaults to 3) */
  repeat?: number;
  /**
   * throughput-like scenarios and the ceiling: the shortest measurement window, seconds (default 20); a shorter one
   * grows the backlog and measures again
   */
  minWindowSec?: number;
  /** ceiling: ProducerPerformance processes writing at once, the records shared among them (default 4) */
  ceilingProducers?: number;
  /** latency scenario: the fixed records/s to produce (default 5000); it also runs at 50% and 90% of each system's throughput */
  rate?: number;
  /** latency scenario: seconds of steady production */
  durationSec?: number;
  /** latency scenario: seconds of production at the rate before measuring starts (default 5) */
  warmupSec?: number;
  /** many-partitions scenario: the topic's partitions (default 2000) */
  manyPartitions?: number;
  /** many-partitions scenario: the steady MB/s spread over them (default 20) */
  manyMbPerSec?: number;
  /** many-partitions scenario: strait's worker.threads (default 4) */
  manyThreads?: number;
  /** failover scenario: records produced per system (default 200000) */
  failoverRecords?: number;
  /**
   * local clusters only: seconds of scratch traffic on each fresh cluster before any measurement (default 0; `strait
   * bench` defaults to 20), so no system pays the cold brokers' first minute
   */
  brokerWarmupSec?: number;
  /** where the local clusters' state goes (default .strait/bench) */
  clusterDir?: string;
  /** wan scenario: the round-trip times the delay proxy adds, ms, one table each (default [50]) */
  rttMs?: number[];
  /** strait-eos: the route's `transactionIntervalMs` (default: strait's own, 500 ms) */
  transactionIntervalMs?: number;
  log: (line: string) => void;
  /** called while loading and replicating: a label, work done and work to do (records) */
  progress?: (label: string, done: number, total: number) => void;
}
