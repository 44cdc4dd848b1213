/**
 * The backlog the throughput-like scenarios replicate: preloaded once per record size and codec with Kafka's
 * ProducerPerformance, then replicated by each system in turn and timed from the first record landing to the last.
 */
import type { ChildProcess } from 'node:child_process';
import { StraitError } from '../shared/errors';
import { spawnKafkaClass } from './harness/kafka-runtime';
import type { BenchOptions } from './options';
import { ProcSampler } from './proc-stats';
import type { ScenarioResult, SystemResult } from './results';
import type { RunContext } from './scenarios/scenario';
import { log4jQuiet, startSystem, stopChild, type SystemName } from './systems';
import { deleteTopic, Watermarks } from './topics';

/** Runs one replicator until `records` have landed in `targetTopic`; rate from first to last landing. */
async function measure(
  name: string,
  child: ChildProcess,
  wm: Watermarks,
  targetTopic: string,
  partitions: number,
  records: number,
  bytesPerRecord: number,
  timeoutMs: number,
  progress?: BenchOptions['progress'],
): Promise<SystemResult> {
  const pid = child.pid!;
  const rss = new ProcSampler(pid);
  let firstAt = 0;
  let firstCount = 0;
  let lastZeroAt = performance.now();
  let cpuAtFirst = 0;
  let landed = 0;
  const deadline = Date.now() + timeoutMs;
  let exitedEarly = false;
  child.once('exit', () => (exitedEarly = true));
  try {
    while (landed < records) {
      if (Date.now() > deadline) throw new Error(`${name}: only ${landed} of ${records} records landed within ${timeoutMs / 1000} s`);
      const exited = exitedEarly; // read before the watermarks: a system that finished and exited is fine
      landed = await wm.total(targetTopic, partitions).catch(() => 0);
      progress?.(name, landed, records);
      if (exited && landed < records) throw new Error(`${name} exited before replicating everything (${landed} of ${records})`);
      if (landed === 0) lastZeroAt = performance.now();
      if (landed > 0 && firstAt === 0) {
        firstAt = performance.now();
        firstCount = landed;
        rss.sample();
        cpuAtFirst = rss.cpu;
      }
      if (landed < records) await new Promise((r) => setTimeout(r, 50));
    }
    const lastAt = performance.now();
    rss.sample();
    const cpu = Math.max(0, rss.cpu - cpuAtFirst);
    // a backlog that landed between two polls is timed from the last poll that saw nothing
    const whole = firstCount >= records;
    const counted = whole ? records : records - firstCount;
    const seconds = Math.max(0.001, (lastAt - (whole ? lastZeroAt : firstAt)) / 1000);
    const gb = (counted * bytesPerRecord) / 1e9;
    return {
      system: name,
      records,
      seconds: Number(seconds.toFixed(2)),
      recordsPerSec: Math.round(counted / seconds),
      mbPerSec: Number(((counted * bytesPerRecord) / 1e6 / seconds).toFixed(1)),
      cpuSecondsPerGB: Number((cpu / Math.max(gb, 1e-9)).toFixed(1)),
      peakRssMB: Math.round(rss.stop() / 1e6),
    };
  } finally {
    rss.stop();
  }
}

/** Replicates the preloaded backlog of `topic` with each system in turn (throughput and wan scenarios). */
export async function replicateBacklog(
  ctx: RunContext,
  scenario: ScenarioResult,
  systems: SystemName[],
  topic: string,
  source: string,
  tag: string,
): Promise<void> {
  const { opts, c, work } = ctx;
  const timeoutMs = Math.max(180_000, (opts.records / 2000) * 1000);
  for (const system of systems) {
    ctx.checkAborted();
    const { child, targetTopic } = await startSystem(system, c, work, topic, opts.partitions, scenario.codec, opts.records, 1000, source, tag);
    ctx.running.add(child);
    // a fresh client per system: librdkafka caches metadata of topics that did not exist yet
    const wm = new Watermarks(c.target);
    opts.log(`  ${scenario.scenario} ${system}: replicating into ${targetTopic} ...`);
    try {
      const r = await measure(
        system,
        child,
        wm,
        targetTopic,
        opts.partitions,
        opts.records,
        scenario.recordSize,
        timeoutMs,
        opts.progress && ((l, d, t) => opts.progress!(`${scenario.scenario} ${l}`, d, t)),
      );
      scenario.results.push(r);
      opts.log(`  ${scenario.scenario} ${system}: ${r.recordsPerSec} rec/s, ${r.mbPerSec} MB/s, ${r.cpuSecondsPerGB} CPU s/GB, peak RSS ${r.peakRssMB} MB`);
    } catch (e) {
      ctx.checkAborted();
      scenario.results.push({ system, records: 0, seconds: 0, recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0, peakRssMB: 0, note: (e as Error).message });
      opts.log(`  ${scenario.scenario} ${system}: FAILED ${(e as Error).message}`);
    } finally {
      await wm.close();
      await stopChild(child);
      ctx.running.delete(child);
      await deleteTopic(c.target, targetTopic);
    }
  }
}

/** Fills `topic` with N records through Kafka's ProducerPerformance (acks=1), reporting progress from the watermarks. */
export async function preload(ctx: RunContext, topic: string, recordSize: number, codec: string): Promise<void> {
  const { opts, c, work } = ctx;
  opts.log(`preloading ${opts.records} records of ${recordSize} B (${codec}) into ${topic} (${opts.partitions} partitions) ...`);
  let stderr = '';
  const child = spawnKafkaClass(
    c.runtime,
    'org.apache.kafka.tools.ProducerPerformance',
    [
      '--topic',
      topic,
      '--num-records',
      String(opts.records),
      '--record-size',
      String(recordSize),
      '--throughput',
      '-1',
      '--producer-props',
      `bootstrap.servers=${c.source}`,
      'acks=1',
      'linger.ms=10',
      'batch.size=1048576',
      `compression.type=${codec}`,
    ],
    { heap: '1g', log4j: log4jQuiet(work), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  ctx.running.add(child);
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const wm = new Watermarks(c.source);
  try {
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      opts.progress?.('preload', await wm.total(topic, opts.partitions), opts.records);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 500))]);
    }
    ctx.checkAborted();
    const code = await exited;
    if (code !== 0) throw new StraitError('STRAIT_KAFKA', `preload failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    opts.progress?.('preload', opts.records, opts.records);
  } finally {
    ctx.running.delete(child);
    await wm.close();
  }
}
