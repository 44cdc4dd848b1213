/**
 * What a bench run produces: one result per scenario (and record size and codec), one row per system; results.json
 * holds them as they are. Also the table lines the throughput-like scenarios share in results.md.
 */

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
}

export interface ScenarioResult {
  scenario: string;
  recordSize: number;
  codec: string;
  partitions: number;
  records: number;
  results: SystemResult[];
}

export function ratio(a: number | undefined, b: number | undefined): string {
  return a && b ? `${(a / b).toFixed(2)}x` : 'n/a';
}

/** The heading and the rate table of a throughput-like result (throughput, wan), one row per system. */
export function rateTable(s: ScenarioResult): string[] {
  return [
    `### ${s.scenario}: ${s.records} records x ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec}`,
    '',
    '| system | records/s | MB/s | CPU s/GB | peak RSS MB | note |',
    '|---|---:|---:|---:|---:|---|',
    ...s.results.map((r) => `| ${r.system} | ${r.recordsPerSec} | ${r.mbPerSec} | ${r.cpuSecondsPerGB || '-'} | ${r.peakRssMB || '-'} | ${r.note ?? ''} |`),
  ];
}
