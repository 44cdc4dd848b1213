/**
 * `many-partitions`: one worker with a fixed number of threads (`--many-threads`, default 4) replicates a steady
 * stream (`--many-mb` MB/s, default 20) spread evenly over a topic of `--many-partitions` partitions (default 2000),
 * as a fleet carrying many small topics does. What it reports beside p50/p99: the worst record's latency and the most
 * records any one partition fell behind (no partition may starve), the partitions that delivered, the replicator's CPU
 * and its open file descriptors at peak, which grow with the partitions a process holds. Records have the run's largest
 * `--record-size`; the systems are strait and the MirrorMaker 2 systems listed (not the transactional ones), and the
 * latency scenario's floor row (no replicator).
 */
import { aggregate, failedRow, range, rotate } from '../repetitions';
import { runsCell, type SystemResult } from '../results';
import { TRANSACTIONAL_SYSTEMS, type SystemName } from '../systems';
import { LATENCY_FLOOR, latencyRun } from './latency';
import type { OnceScenario } from './scenario';

export const MANY_PARTITIONS_DEFAULTS = { partitions: 2000, mbPerSec: 20, threads: 4 } as const;

/** The steady rate, records/s, that carries `mbPerSec` MB/s of `recordSize`-byte records. */
export function manyPartitionsRate(mbPerSec: number, recordSize: number): number {
  return Math.max(1, Math.round((mbPerSec * 1e6) / recordSize));
}

export const manyPartitions: OnceScenario = {
  name: 'many-partitions',
  systems: (given) => [...new Set<SystemName>(['strait', ...given.filter((s) => s.startsWith('mm2') && !TRANSACTIONAL_SYSTEMS.includes(s))])],
  runs: 'once',
  async run(ctx, systems) {
    const { opts, c, work, running } = ctx;
    const partitions = opts.manyPartitions ?? MANY_PARTITIONS_DEFAULTS.partitions;
    const mbPerSec = opts.manyMbPerSec ?? MANY_PARTITIONS_DEFAULTS.mbPerSec;
    const threads = opts.manyThreads ?? MANY_PARTITIONS_DEFAULTS.threads;
    const recordSize = Math.max(...opts.recordSizes);
    const codec = opts.codecs[0] ?? 'none';
    const rate = manyPartitionsRate(mbPerSec, recordSize);
    const durationSec = opts.durationSec ?? 20;
    const warmupSec = opts.warmupSec ?? 5;
    const repeat = opts.repeat ?? 1;
    // the floor takes its turn too: the same producer and reader on the source topic, no replicator — what these
    // clusters and the measuring clients do with this many partitions before any replicator
    const rows: (SystemName | typeof LATENCY_FLOOR)[] = [...systems, LATENCY_FLOOR];
    const runs = new Map<string, SystemResult[]>(rows.map((s) => [s, []]));
    let measurement = 0;
    for (let rep = 0; rep < repeat; rep++) {
      for (const system of rotate(rows, rep)) {
        ctx.checkAborted();
        opts.log(
          `  many-partitions ${system}${repeat > 1 ? ` (repetition ${rep + 1} of ${repeat})` : ''}: ${rate} records/s of ${recordSize} B over ${partitions} partitions ...`,
        );
        try {
          const r = await latencyRun(system, c, work, {
            rate,
            durationSec,
            warmupSec,
            partitions,
            recordSize,
            codec,
            tag: `many${++measurement}`,
            spread: true,
            threads,
            log: opts.log,
            track: (ch) => running.add(ch),
            ...(opts.progress ? { progress: opts.progress } : {}),
          });
          runs.get(system)!.push(r);
          opts.log(
            `  many-partitions ${system}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms, most behind ${r.maxLagRecords} records, ` +
              `${r.partitionsRead} partitions delivered, ${r.cpuCores} CPU, ${r.peakRssMB} MB, ${r.peakFds} fds`,
          );
        } catch (e) {
          ctx.checkAborted();
          runs.get(system)!.push(failedRow(system, (e as Error).message));
          opts.log(`  many-partitions ${system}: FAILED ${(e as Error).message}`);
        }
      }
    }
    const results = rows.map((s) => aggregate(s, runs.get(s)!));
    return {
      scenario: `many-partitions: ${mbPerSec} MB/s (${rate} records/s) spread over ${partitions} partitions, strait with ${threads} threads, for ${durationSec} s (after ${warmupSec} s warm-up)`,
      recordSize,
      codec,
      partitions,
      records: Math.max(0, ...results.map((r) => r.records)),
      results,
    };
  },
  table: {
    holds: (s) => s.scenario.startsWith('many-partitions'),
    charted: false,
    markdown: (s) => [
      `### ${s.scenario}: ${s.recordSize} B, codec ${s.codec} (source CreateTime -> read on the target)`,
      '',
      '| system | kept records/s | p50 ms | p99 ms (median) | p99 min–max | max ms | most records behind (one partition) | partitions delivered | CPU cores | CPU s/GB | peak RSS MB | peak open fds | runs | note |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...s.results.map(
        (r) =>
          `| ${r.system} | ${r.achievedRate ?? '-'} | ${r.p50Ms ?? '-'} | ${r.p99Ms ?? '-'} | ${range(r.p99MsRange, r.runs)} | ${r.maxMs ?? '-'} | ` +
          `${r.maxLagRecords ?? '-'} | ${r.partitionsRead ?? '-'}/${s.partitions} | ${r.cpuCores ?? '-'} | ${r.cpuSecondsPerGB || '-'} | ${r.peakRssMB || '-'} | ` +
          `${r.peakFds ?? '-'} | ${runsCell(r)} | ${r.note ?? ''} |`,
      ),
      '',
    ],
  },
};
