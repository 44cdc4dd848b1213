/** Where and when a bench run was measured: the commit, the machine, the Kafka version and the load around it. */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { projectRoot } from './harness/kafka-runtime';
import type { RunInfo } from './results';

/** The checked-out commit (short), `-dirty` when tracked files differ from it; `unknown` outside a git work tree. */
export function gitCommit(dir = projectRoot()): string {
  const head = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: dir, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: dir, encoding: 'utf8' });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '-dirty' : ''}`;
}

export function loadAverage(): number[] {
  return loadavg().map((x) => Number(x.toFixed(2)));
}

export function runInfo(kafkaVersion: string, repeat: number, minWindowSec: number): RunInfo {
  return {
    at: new Date().toISOString(),
    commit: gitCommit(),
    machine: { cpu: cpus()[0]?.model.trim() ?? 'unknown CPU', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30) },
    kafkaVersion,
    loadBefore: loadAverage(),
    repeat,
    minWindowSec,
  };
}

/** The lines results.md opens with. */
export function runInfoLines(info: RunInfo, brokers: string): string[] {
  const load = (l: number[] | undefined) => (l ? l.join(' / ') : 'n/a');
  return [
    `Commit: ${info.commit}; at ${info.at}; Kafka ${info.kafkaVersion} (${brokers}).`,
    `Machine: ${info.machine.cores} cores (${info.machine.cpu}), ${info.machine.memGiB} GiB RAM; load average (1/5/15 min) ${load(info.loadBefore)} before, ${load(info.loadAfter)} after.`,
    `Method: ${info.repeat} repetition${info.repeat === 1 ? '' : 's'}, systems in rotated order; rows are medians with the min–max of records/s (p99 for latency); throughput windows of at least ${info.minWindowSec} s${warmupText(info)}.`,
  ];
}

function warmupText(info: RunInfo): string {
  const w = info.brokerWarmup;
  return w ? `; brokers warmed up ${w.seconds} s first (${w.recordsPerCluster.map((n) => n.toLocaleString('en-US')).join(' and ')} scratch records)` : '';
}
