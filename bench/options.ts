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
  /** latency scenario: records/s to produce (default: half of strait's throughput result, else 5000) */
  rate?: number;
  /** latency scenario: seconds of steady production */
  durationSec?: number;
  /** latency scenario: seconds of production at the rate before measuring starts (default 5) */
  warmupSec?: number;
  /** failover scenario: records produced per system (default 200000) */
  failoverRecords?: number;
  /** where the local clusters' state goes (default .strait/bench) */
  clusterDir?: string;
  /** wan scenario: added round-trip time, ms (default 50) */
  rttMs?: number;
  log: (line: string) => void;
  /** called while loading and replicating: a label, work done and work to do (records) */
  progress?: (label: string, done: number, total: number) => void;
}
