/**
 * A bench scenario: a name, the systems it compares, when and how it runs, and the table its results make in
 * results.md. The runner (bench.ts) goes through the scenarios a run names without knowing any of them.
 */
import type { ChildProcess } from 'node:child_process';
import type { Backlog } from '../backlog';
import type { Clusters } from '../clusters';
import type { BenchOptions } from '../options';
import type { ScenarioResult } from '../results';
import type { SystemName } from '../systems';

/** The names `strait bench` accepts, in the order its help and a run that names none list them. */
export const SCENARIOS = ['throughput', 'ceiling', 'latency', 'wan', 'many-partitions', 'rest', 'failover'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** What every scenario runs with: the options, the clusters, the work folder and the processes to stop on Ctrl-C. */
export interface RunContext {
  opts: BenchOptions;
  c: Clusters;
  work: string;
  running: Set<ChildProcess>;
  checkAborted: () => void;
}

/** How a scenario's results read in results.md, and whether the chart shows them. */
export interface ResultTable {
  /** whether a result is this table's, by its heading (`ScenarioResult.scenario`) */
  holds(s: ScenarioResult): boolean;
  /** the result's lines in results.md */
  markdown(s: ScenarioResult): string[];
  /** whether chart.svg and report.html show it */
  charted: boolean;
}

interface ScenarioBase {
  name: ScenarioName;
  /** the systems it compares, out of those the run was given (--systems) */
  systems(given: readonly SystemName[]): SystemName[];
  /** runs on local clusters only: what they must start with, and the usage error when the run brings its own */
  localOnly?: { wanListener?: boolean; zookeeper?: boolean; refusal: string };
  /** none when its rows stand in another scenario's table (a result with the same heading) */
  table?: ResultTable;
}

/**
 * Runs on the backlog preloaded for each record size and codec (at least `opts.records` records in `backlog.topic` on
 * the source), which it may grow to fill its measurement window. May make more than one table (the wan scenario: one
 * per `--rtt`).
 */
export interface BacklogScenario extends ScenarioBase {
  runs: 'on-backlog';
  run(ctx: RunContext, systems: SystemName[], at: { recordSize: number; codec: string; backlog: Backlog }): Promise<ScenarioResult[]>;
}

/**
 * Runs once for each record size and codec on topics of its own, after the backlog is gone; `earlier`: the results so
 * far. May make more than one table (the latency scenario: one per load).
 */
export interface SizeScenario extends ScenarioBase {
  runs: 'per-size-and-codec';
  run(ctx: RunContext, systems: SystemName[], at: { recordSize: number; codec: string; earlier: readonly ScenarioResult[] }): Promise<ScenarioResult[]>;
}

/** Runs once, after every record size and codec. */
export interface OnceScenario extends ScenarioBase {
  runs: 'once';
  run(ctx: RunContext, systems: SystemName[]): Promise<ScenarioResult>;
}

export type Scenario = BacklogScenario | SizeScenario | OnceScenario;
