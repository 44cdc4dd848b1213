/**
 * The backlog the throughput-like scenarios replicate: preloaded once per record size and codec with Kafka's
 * ProducerPerformance, then replicated by each system in turn and timed from the first record landing to the last;
 * grown whenever a measurement's window comes out shorter than `--min-window`.
 */
import type { ChildProcess } from 'node:child_process';
import { StraitError } from '../shared/errors';
import { spawnKafkaClass } from './harness/kafka-runtime';
import type { BenchOptions } from './options';
import { ProcSampler } from './proc-stats';
import { aggregate, backlogFor, failed, failedRow, rotate } from './repetitions';
import type { ScenarioResult, SystemResult } from './results';
import type { RunContext } from './scenarios/scenario';
import { log4jQuiet, startSystem, stopChild, TRANSACTIONAL_SYSTEMS, type StartedSystem, type SystemName } from './systems';
import { appendEndRecords, CommittedEnd, deleteTopic, Watermarks } from './topics';

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
  committedEnd?: CommittedEnd,
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
    // a transactional system is done once every partition's end record committed (its markers inflate `landed`)
    let done = false;
    while (!done) {
      if (Date.now() > deadline) throw new Error(`${name}: only ${landed} of ${records} records landed within ${timeoutMs / 1000} s`);
      const exited = exitedEarly; // read before the watermarks: a system that finished and exited is fine
      const ends = await wm.perPartition(targetTopic, partitions).catch(() => new Array<number>(partitions).fill(0));
      landed = ends.reduce((x, y) => x + y, 0);
      done = landed >= records && (!committedEnd || (await committedEnd.reached(ends)));
      progress?.(name, Math.min(landed, records), records);
      if (exited && landed < records) throw new Error(`${name} exited before replicating everything (${landed} of ${records})`);
      if (landed === 0) lastZeroAt = performance.now();
      if (landed > 0 && firstAt === 0) {
        firstAt = performance.now();
        firstCount = landed;
        rss.sample();
        cpuAtFirst = rss.cpu;
      }
      if (!done) await new Promise((r) => setTimeout(r, 50));
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

/** The shortest measurement window of a run (--min-window), seconds. */
export function minWindowOf(opts: BenchOptions): number {
  return opts.minWindowSec ?? DEFAULT_MIN_WINDOW_SEC;
}
export const DEFAULT_MIN_WINDOW_SEC = 20;
/** A measurement shorter than the window grows the backlog and runs again, at most this often. */
const GROW_ATTEMPTS = 5;

/**
 * Measures `once` and, while its window (`seconds`) is shorter than the run's minimum, grows the backlog from the
 * rate it measured and measures again (the throughput scenarios and the ceiling). A window still short after that is
 * kept with a note saying so.
 */
export async function measuredOverWindow(ctx: RunContext, backlog: Backlog, label: string, once: () => Promise<SystemResult>): Promise<SystemResult> {
  const window = minWindowOf(ctx.opts);
  let r = await once();
  for (let attempt = 1; !failed(r) && r.seconds < window; attempt++) {
    // the whole backlog over the window: at least the measured rate (which leaves out what landed before the first
    // poll that saw anything), so the grown backlog is not undersized when most of it landed between two polls
    const want = backlogFor(backlog.records, Math.max(r.recordsPerSec, r.records / Math.max(r.seconds, 0.001)), window);
    if (attempt > GROW_ATTEMPTS || want <= backlog.records) {
      r.note = [r.note, `window ${r.seconds} s, shorter than --min-window ${window} s`].filter(Boolean).join('; ');
      break;
    }
    ctx.opts.log(
      `  ${label}: ${r.seconds} s at ${r.recordsPerSec} records/s is shorter than ${window} s: growing the backlog to ${want} records and measuring again`,
    );
    await backlog.fill(want);
    r = await once();
  }
  return r;
}

/**
 * Called each time a system was started to replicate the backlog, before it is measured: the wan scenario sets the
 * delay proxy's window from the receive buffer the system's consumer asks for.
 */
export type OnStarted = (system: SystemName, started: StartedSystem) => void;

/**
 * Replicates the backlog of `topic` with each system (throughput and wan scenarios), `--repeat` times in rotated
 * order; each row is the median of a system's repetitions, each measured over at least `--min-window` seconds.
 */
export async function replicateBacklog(
  ctx: RunContext,
  scenario: ScenarioResult,
  systems: SystemName[],
  backlog: Backlog,
  source: string,
  tag: string,
  onStarted?: OnStarted,
): Promise<void> {
  const { opts } = ctx;
  const repeat = opts.repeat ?? 1;
  const runs = new Map<SystemName, SystemResult[]>(systems.map((s) => [s, []]));
  // every measurement gets its own alias (config, store, MirrorMaker 2's offsets, target topic): a second one of the
  // same system must replicate the whole backlog again, not resume where the first one committed
  let measurement = 0;
  for (let rep = 0; rep < repeat; rep++) {
    const order = rotate(systems, rep);
    if (repeat > 1) opts.log(`  ${scenario.scenario}: repetition ${rep + 1} of ${repeat}: ${order.join(', ')}`);
    for (const system of order) {
      ctx.checkAborted();
      const r = await measuredOverWindow(ctx, backlog, `${scenario.scenario} ${system}`, () =>
        replicateOnce(ctx, scenario, system, backlog, source, `${tag}m${++measurement}`, onStarted),
      );
      runs.get(system)!.push(r);
    }
  }
  scenario.records = backlog.records;
  scenario.results.push(...systems.map((s) => aggregate(s, runs.get(s)!)));
}

/** One system replicates the whole backlog into a fresh target topic, which is deleted afterwards. */
async function replicateOnce(
  ctx: RunContext,
  scenario: ScenarioResult,
  system: SystemName,
  backlog: Backlog,
  source: string,
  tag: string,
  onStarted?: OnStarted,
): Promise<SystemResult> {
  const { opts, c, work } = ctx;
  // a transactional system's clock stops at the end records appended now (CommittedEnd)
  const endKey = TRANSACTIONAL_SYSTEMS.includes(system) ? `bench-end-${tag}` : undefined;
  if (endKey) await backlog.appendEnd(endKey);
  const records = backlog.records;
  const timeoutMs = Math.max(180_000, (records / 2000) * 1000);
  const started = await startSystem(
    system,
    c,
    work,
    backlog.topic,
    opts.partitions,
    scenario.codec,
    records,
    1000,
    source,
    tag,
    undefined,
    opts.transactionIntervalMs,
  );
  const { child, targetTopic } = started;
  ctx.running.add(child);
  onStarted?.(system, started);
  // a fresh client per system: librdkafka caches metadata of topics that did not exist yet
  const wm = new Watermarks(c.target);
  const committedEnd = endKey ? new CommittedEnd(c.target, targetTopic, opts.partitions, endKey) : undefined;
  opts.log(`  ${scenario.scenario} ${system}: replicating ${records} records into ${targetTopic} ...`);
  try {
    const r = await measure(
      system,
      child,
      wm,
      targetTopic,
      opts.partitions,
      records,
      scenario.recordSize,
      timeoutMs,
      opts.progress && ((l, d, t) => opts.progress!(`${scenario.scenario} ${l}`, d, t)),
      committedEnd,
    );
    opts.log(
      `  ${scenario.scenario} ${system}: ${r.recordsPerSec} rec/s over ${r.seconds} s, ${r.mbPerSec} MB/s, ${r.cpuSecondsPerGB} CPU s/GB, peak RSS ${r.peakRssMB} MB`,
    );
    return r;
  } catch (e) {
    ctx.checkAborted();
    opts.log(`  ${scenario.scenario} ${system}: FAILED ${(e as Error).message}`);
    return failedRow(system, (e as Error).message);
  } finally {
    await wm.close();
    await committedEnd?.close();
    await stopChild(child);
    ctx.running.delete(child);
    await deleteTopic(c.target, targetTopic);
  }
}

/**
 * The source topic the throughput-like scenarios replicate, filled with Kafka's ProducerPerformance; it only grows
 * (`fill`), and `records` is what its high watermarks say it holds.
 */
export class Backlog {
  records = 0;
  constructor(
    private readonly ctx: RunContext,
    readonly topic: string,
    readonly recordSize: number,
    readonly codec: string,
  ) {}

  /** Appends records until the topic holds at least `records`. */
  async fill(records: number): Promise<void> {
    if (records <= this.records) return;
    await produceRecords(this.ctx, this.topic, this.recordSize, this.codec, records - this.records, this.records);
    const wm = new Watermarks(this.ctx.c.source);
    try {
      this.records = await wm.total(this.topic, this.ctx.opts.partitions);
    } finally {
      await wm.close();
    }
    if (this.records < records)
      throw new StraitError('STRAIT_KAFKA', `the backlog ${this.topic} holds ${this.records} records after loading ${records}: the preload lost some`);
  }

  /** Appends one record keyed `key` to every partition: a transactional system's clock stops at them (CommittedEnd). */
  async appendEnd(key: string): Promise<void> {
    const partitions = this.ctx.opts.partitions;
    await appendEndRecords(this.ctx.c.source, this.topic, partitions, key, this.recordSize);
    this.records += partitions;
  }
}

/** Appends `count` records to `topic` (holding `before`) through Kafka's ProducerPerformance (acks=1), with progress. */
async function produceRecords(ctx: RunContext, topic: string, recordSize: number, codec: string, count: number, before: number): Promise<void> {
  const { opts, c, work } = ctx;
  opts.log(`preloading ${count} records of ${recordSize} B (${codec}) into ${topic} (${opts.partitions} partitions, ${before} there already) ...`);
  let stderr = '';
  const child = spawnKafkaClass(
    c.runtime,
    'org.apache.kafka.tools.ProducerPerformance',
    [
      '--topic',
      topic,
      '--num-records',
      String(count),
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
      opts.progress?.('preload', (await wm.total(topic, opts.partitions)) - before, count);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 500))]);
    }
    ctx.checkAborted();
    const code = await exited;
    if (code !== 0) throw new StraitError('STRAIT_KAFKA', `preload failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    opts.progress?.('preload', count, count);
  } finally {
    ctx.running.delete(child);
    await wm.close();
  }
}
