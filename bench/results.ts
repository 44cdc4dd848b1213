/**
 * What a bench run produces: one result per scenario (and record size and codec), one row per system; results.json
 * holds them as they are. Also the table lines the throughput-like scenarios share in results.md.
 */
import { range } from './repetitions';

export interface SystemResult {
  system: string;
  /** rest scenario: requests/s answered with 2xx, and errors (non-2xx or failed) */
  requestsPerSec?: number;
  errors?: number;
  /** failover scenario: records the group read on the source before the switch and on the target after it */
  readBeforeSwitch?: number;
  readAfterSwitch?: number;
  /** failover scenario: records read on the target that the group had read on the source already */
  duplicates?: number;
  /** failover scenario: records the group read on neither cluster */
  missing?: number;
  /** failover scenario: from the switch (the group stopped on the source) until its offsets on the target were ready */
  offsetsReadySec?: number;
  /** latency scenario: source CreateTime -> readable on the target, ms */
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  records: number;
  seconds: number;
  recordsPerSec: number;
  mbPerSec: number;
  cpuSecondsPerGB: number;
  peakRssMB: number;
  note?: string;
  /**
   * wan scenario: the TCP window the delay proxy gave each of the system's connections to the source, bytes, and where
   * it came from (the receive buffer its consumer asks for, or the kernel's autotuning cap)
   */
  windowBytes?: number;
  windowFrom?: string;
  /** latency scenario: the rate the bench's producer kept up (records/s over the measured window) */
  achievedRate?: number;
  /** many-partitions scenario: the worst record's latency, ms */
  maxMs?: number;
  /** many-partitions scenario: the most records one partition had been given and not yet delivered, sampled each second */
  maxLagRecords?: number;
  /** many-partitions scenario: partitions whose measured records all arrived (every one of them, or the run fails) */
  partitionsRead?: number;
  /** many-partitions scenario: the replicator's CPU seconds per second over the measured window */
  cpuCores?: number;
  /** many-partitions scenario: the most open file descriptors of the replicator's processes */
  peakFds?: number;
  /** repeated runs (--repeat): the fields above are medians of the successful repetitions; these are their spread */
  recordsPerSecRange?: [number, number];
  p99MsRange?: [number, number];
  /** repetitions that succeeded and failed */
  runs?: number;
  failedRuns?: number;
  /** each repetition as it was measured, in the order they ran */
  repetitions?: SystemResult[];
}

export interface ScenarioResult {
  scenario: string;
  recordSize: number;
  codec: string;
  partitions: number;
  records: number;
  results: SystemResult[];
}

/** Where and when a run was measured: results.json and the head of results.md carry it. */
export interface RunInfo {
  at: string;
  /** `git describe`-like: the commit, with `-dirty` when the work tree had changes */
  commit: string;
  machine: { cpu: string; cores: number; memGiB: number };
  kafkaVersion: string;
  /** 1-, 5- and 15-minute load averages when the run started and when it ended */
  loadBefore: number[];
  loadAfter?: number[];
  repeat: number;
  minWindowSec: number;
  /** local clusters: seconds of scratch traffic before measuring, and the records written per cluster */
  brokerWarmup?: { seconds: number; recordsPerCluster: number[] };
}

export function ratio(a: number | undefined, b: number | undefined): string {
  return a && b ? `${(a / b).toFixed(2)}x` : 'n/a';
}

/**
 * The heading and the rate table of a throughput-like result (throughput, wan), one row per system: medians of the
 * repetitions, their min–max, the measured window; with `ceiling` (records/s), each row as a fraction of it; when
 * rows carry a TCP window (wan), a column with it in KiB.
 */
export function rateTable(s: ScenarioResult, ceiling?: number): string[] {
  const share = (r: SystemResult) => (ceiling && r.recordsPerSec > 0 && !r.system.startsWith('ceiling') ? `${(r.recordsPerSec / ceiling).toFixed(2)}` : '-');
  const windowed = s.results.some((r) => r.windowBytes !== undefined);
  const tcpWindow = (r: SystemResult) => (r.windowBytes === undefined ? '-' : String(Number((r.windowBytes / 1024).toFixed(1))));
  return [
    `### ${s.scenario}: ${s.records} records x ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec}`,
    '',
    `| system | records/s (median) | min–max | window s | records | MB/s | CPU s/GB | peak RSS MB | runs |${ceiling ? ' of ceiling |' : ''}${windowed ? ' TCP window KiB |' : ''} note |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|${ceiling ? '---:|' : ''}${windowed ? '---:|' : ''}---|`,
    ...s.results.map(
      (r) =>
        `| ${r.system} | ${r.recordsPerSec} | ${range(r.recordsPerSecRange, r.runs)} | ${r.seconds || '-'} | ${r.records || '-'} | ${r.mbPerSec} | ${r.cpuSecondsPerGB || '-'} | ` +
        `${r.peakRssMB || '-'} | ${runsCell(r)} |${ceiling ? ` ${share(r)} |` : ''}${windowed ? ` ${tcpWindow(r)} |` : ''} ${r.note ?? ''} |`,
    ),
  ];
}

/** `2/3` when a repetition failed, else the count of repetitions. */
export function runsCell(r: SystemResult): string {
  const ok = r.runs ?? (r.recordsPerSec > 0 ? 1 : 0);
  return r.failedRuns ? `${ok}/${ok + r.failedRuns}` : String(ok);
}
