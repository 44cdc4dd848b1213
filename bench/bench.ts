/**
 * `strait bench`: strait side by side with MirrorMaker 2 (default and tuned), a plain node-rdkafka JavaScript loop,
 * and Kafka's own ProducerPerformance/ConsumerPerformance ceiling — same clusters, same preloaded data, same run.
 * Writes results.json and results.md to --out; every process it starts is stopped by its pid.
 *
 * The runner knows no scenario (scenarios/): for each record size and codec it preloads one backlog for the
 * scenarios that replicate it (they grow it when a measurement window comes out short), then runs the ones with
 * topics of their own; last, the ones that run once. Repetitions (--repeat) happen inside each scenario, so systems
 * take turns; the run's commit, machine, Kafka version and load average go with the results.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StraitError } from '../shared/errors';
import { Backlog, minWindowOf } from './backlog';
import { clusters } from './clusters';
import type { BenchOptions } from './options';
import { writeResults } from './report';
import type { ScenarioResult } from './results';
import { loadAverage, runInfo } from './run-info';
import { SCENARIO_LIST } from './scenarios';
import type { BacklogScenario, RunContext } from './scenarios/scenario';
import { stopChild } from './systems';
import { createTopic, deleteTopic } from './topics';

export async function runBench(opts: BenchOptions): Promise<ScenarioResult[]> {
  const out = resolve(opts.out);
  // scratch of this run only: a store left by an earlier run holds offsets of clusters that are gone (strait would
  // hold its routes with STRAIT_CLUSTER_CHANGED and the run would count 0 records)
  const work = join(out, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const chosen = SCENARIO_LIST.filter((s) => opts.scenarios.includes(s.name));
  const onBacklog = chosen.filter((s): s is BacklogScenario => s.runs === 'on-backlog');
  const c = await clusters(opts, chosen);
  const info = runInfo(c.runtime.version, opts.repeat ?? 1, minWindowOf(opts));
  if (c.warmup) info.brokerWarmup = { seconds: c.warmup.seconds, recordsPerCluster: Object.values(c.warmup.records).map((r) => r.written) };
  opts.log(`commit ${info.commit}, Kafka ${info.kafkaVersion}, load average ${info.loadBefore.join(' / ')}`);
  const results: ScenarioResult[] = [];
  let aborted = false;
  const running = new Set<ChildProcess>();
  const ctx: RunContext = {
    opts,
    c,
    work,
    running,
    checkAborted: () => {
      if (aborted) throw new StraitError('STRAIT_INTERRUPTED', 'bench interrupted; every process it started was stopped');
    },
  };
  // Ctrl-C / SIGTERM: stop what runs now (the loops then see `aborted`), then the finally below stops the clusters
  const interrupt = (signal: string) => {
    if (aborted) return;
    aborted = true;
    opts.log(`${signal}: stopping the bench ...`);
    for (const ch of running) ch.kill('SIGKILL');
  };
  const onInt = () => interrupt('SIGINT');
  const onTerm = () => interrupt('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    for (const recordSize of opts.recordSizes) {
      for (const codec of opts.codecs) {
        const topic = `bench-${recordSize}b-${codec}-${Date.now().toString(36)}`;
        await createTopic(c.source, topic, opts.partitions);
        try {
          const backlog = new Backlog(ctx, topic, recordSize, codec);
          if (onBacklog.length > 0) await backlog.fill(opts.records);
          // results of one record size and codec under the same heading are one table (the ceiling's rows stand in
          // the throughput table)
          const tables: ScenarioResult[] = [];
          for (const s of onBacklog) {
            ctx.checkAborted();
            for (const r of await s.run(ctx, s.systems(opts.systems), { recordSize, codec, backlog })) {
              const same = tables.find((t) => t.scenario === r.scenario);
              if (same) same.results.push(...r.results);
              else tables.push(r);
            }
          }
          results.push(...tables);
        } finally {
          await deleteTopic(c.source, topic);
        }
        for (const s of chosen) {
          if (s.runs !== 'per-size-and-codec') continue;
          ctx.checkAborted();
          results.push(...(await s.run(ctx, s.systems(opts.systems), { recordSize, codec, earlier: results })));
        }
      }
    }
    for (const s of chosen) {
      if (s.runs !== 'once') continue;
      ctx.checkAborted();
      results.push(await s.run(ctx, s.systems(opts.systems)));
    }
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
    for (const ch of running) await stopChild(ch, 5000);
    await c.stop();
  }
  info.loadAfter = loadAverage();
  await writeResults(out, opts, results, info, opts.source ? 'the given clusters' : 'local single-node KRaft clusters started by the harness');
  return results;
}
