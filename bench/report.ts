/** What a run leaves in --out: results.json, results.md, and the chart (chart.svg, report.html). */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { renderCharts } from './chart';
import type { BenchOptions } from './options';
import { minWindowOf } from './backlog';
import type { RunInfo, ScenarioResult } from './results';
import { runInfoLines } from './run-info';
import { DEFAULT_LATENCY_RATE } from './scenarios/latency';
import { DEFAULT_RTT_MS } from './scenarios/wan';
import { SCENARIO_LIST } from './scenarios';
import type { ResultTable } from './scenarios/scenario';
import { throughputTable } from './scenarios/throughput';
import { MM2_TASKS } from './systems';

/** The table a result goes in, found by its heading (a heading no scenario claims reads as a throughput table). */
function tableOf(s: ScenarioResult): ResultTable {
  return SCENARIO_LIST.map((x) => x.table).find((t) => t?.holds(s)) ?? throughputTable;
}

export function markdown(opts: BenchOptions, results: ScenarioResult[], info?: RunInfo, brokers = 'local single-node KRaft clusters'): string {
  const lines = [
    ...(info ? runInfoLines(info, brokers) : [`Machine: ${machineLine()}.`]),
    `MirrorMaker 2 tasks.max=${MM2_TASKS} (default) / ${MM2_TASKS * 2} (tuned).`,
    `Command: \`${commandLine(opts)}\``,
    '',
  ];
  for (const s of results) lines.push(...tableOf(s).markdown(s));
  return lines.join('\n');
}

function machineLine(): string {
  return `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM`;
}

function commandLine(opts: BenchOptions): string {
  const failover = opts.scenarios.includes('failover') ? ` --failover-records ${opts.failoverRecords ?? 200_000}` : '';
  const latency = opts.scenarios.includes('latency')
    ? ` --rate ${opts.rate ?? DEFAULT_LATENCY_RATE} --duration ${opts.durationSec ?? 20} --warmup ${opts.warmupSec ?? 5}`
    : '';
  const interval = opts.transactionIntervalMs !== undefined ? ` --transaction-interval ${opts.transactionIntervalMs}` : '';
  const warm = opts.source ? '' : ` --broker-warmup ${opts.brokerWarmupSec ?? 0}`;
  const rtt = opts.scenarios.includes('wan') ? ` --rtt ${(opts.rttMs ?? [DEFAULT_RTT_MS]).join(',')}` : '';
  return (
    `strait bench ${opts.scenarios.join(' ')} --records ${opts.records} --record-size ${opts.recordSizes.join(',')} --partitions ${opts.partitions} ` +
    `--codec ${opts.codecs.join(',')} --systems ${opts.systems.join(',')} --repeat ${opts.repeat ?? 1} --min-window ${minWindowOf(opts)}${latency}${failover}${interval}${warm}${rtt}`
  );
}

export async function writeResults(out: string, opts: BenchOptions, results: ScenarioResult[], info: RunInfo, brokers: string): Promise<void> {
  writeFileSync(
    join(out, 'results.json'),
    JSON.stringify(
      {
        ...info,
        options: { ...opts, log: undefined, progress: undefined },
        command: commandLine(opts),
        results,
      },
      null,
      2,
    ),
  );
  writeFileSync(join(out, 'results.md'), markdown(opts, results, info, brokers));
  const { svg, html } = await renderCharts(
    results.filter((r) => tableOf(r).charted),
    { title: 'strait bench', machine: machineLine(), command: commandLine(opts) },
  );
  writeFileSync(join(out, 'chart.svg'), svg);
  writeFileSync(join(out, 'report.html'), html);
}
