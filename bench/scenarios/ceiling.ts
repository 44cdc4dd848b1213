/**
 * `ceiling`: Kafka's ProducerPerformance into the target *while* ConsumerPerformance reads the backlog from the source,
 * same record size, codec and partitions: what these clusters allow a replicator on this machine, which must do both
 * at once. Repeated and windowed like the throughput scenario; its rows stand in the throughput table, where each
 * system is shown as a fraction of the lower concurrent rate.
 */
import { measuredOverWindow, type Backlog } from '../backlog';
import { spawnKafkaClass } from '../harness/kafka-runtime';
import { aggregate, failedRow } from '../repetitions';
import type { SystemResult } from '../results';
import { log4jQuiet } from '../systems';
import { createTopic, deleteTopic } from '../topics';
import type { BacklogScenario, RunContext } from './scenario';

function parseProducerPerf(out: string): number | undefined {
  const lines = out
    .trim()
    .split('\n')
    .filter((l) => /records sent/.test(l));
  const m = /([\d.]+) records\/sec/.exec(lines.at(-1) ?? '');
  return m ? Math.round(Number(m[1])) : undefined;
}

function parseConsumerPerf(out: string): number | undefined {
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const line = out
    .trim()
    .split('\n')
    .filter((l) => /^\d{4}-\d\d-\d\d/.test(l))
    .at(-1);
  const f = line?.split(',').map((s) => s.trim());
  return f && f.length >= 10 ? Math.round(Number(f[9])) : undefined;
}

/** The rows of the ceiling: each perf tool while the other runs, and the lower of the two, which bounds a replicator. */
export const CEILING_PRODUCER = 'ceiling: ProducerPerformance -> target (concurrent)';
/** ProducerPerformance processes the ceiling runs at once (--ceiling-producers) */
export const DEFAULT_CEILING_PRODUCERS = 4;
export const CEILING_CONSUMER = 'ceiling: ConsumerPerformance <- source (concurrent)';
export const CEILING = 'ceiling: both at once (the lower)';

/** Runs a Kafka tool to its end, collecting its output; it is stopped with the bench on Ctrl-C. */
async function runTool(ctx: RunContext, mainClass: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const started = performance.now();
  const child = spawnKafkaClass(ctx.c.runtime, mainClass, args, { heap: '1g', log4j: log4jQuiet(ctx.work), stdio: ['ignore', 'pipe', 'pipe'] });
  ctx.running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  try {
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    return { code, stdout, stderr, seconds: (performance.now() - started) / 1000 };
  } finally {
    ctx.running.delete(child);
  }
}

/** A rate row of a perf tool: `records` at `rps`, no CPU or memory charged (the tools are not replicators). */
function toolRow(system: string, records: number, rps: number, recordSize: number, note: string): SystemResult {
  return {
    system,
    records,
    seconds: Number((records / rps).toFixed(2)),
    recordsPerSec: rps,
    mbPerSec: Number(((rps * recordSize) / 1e6).toFixed(1)),
    cpuSecondsPerGB: 0,
    peakRssMB: 0,
    note,
  };
}

/**
 * ProducerPerformance writes as many records as the backlog holds into a fresh target topic (same size, partitions
 * and codec, acks=all) while ConsumerPerformance reads the backlog from the source: both at once, as a replicator
 * must. Returns the two rows and the lower rate as a third, whose window is the shorter of the two (so a window
 * grown for it holds for both).
 */
async function ceilingOnce(ctx: RunContext, backlog: Backlog): Promise<[SystemResult, SystemResult, SystemResult]> {
  const { c, opts } = ctx;
  const records = backlog.records;
  const perfTopic = `${backlog.topic}-ceiling-${Date.now().toString(36)}`;
  await createTopic(c.target, perfTopic, opts.partitions); // the harness brokers do not auto-create topics
  // One ProducerPerformance is bounded by its one sender thread (a replicator measured 1.35x of it): several, each
  // with its share of the records into the same topic, started together; their rates add up.
  const producers = Math.max(1, Math.min(opts.ceilingProducers ?? DEFAULT_CEILING_PRODUCERS, records));
  const shares = Array.from({ length: producers }, (_, i) => Math.floor(records / producers) + (i < records % producers ? 1 : 0));
  opts.log(`  ceiling: ${producers} ProducerPerformance (${records} records -> target) and ConsumerPerformance (<- source), at once ...`);
  try {
    const [cp, ...pps] = await Promise.all([
      runTool(ctx, 'org.apache.kafka.tools.ConsumerPerformance', [
        '--bootstrap-server',
        c.source,
        '--topic',
        backlog.topic,
        '--messages',
        String(records),
        // a group of its own each time: a repetition reads the whole backlog again
        '--group',
        `${perfTopic}-group`,
        '--timeout',
        '60000',
      ]),
      ...shares.map((n) =>
        runTool(ctx, 'org.apache.kafka.tools.ProducerPerformance', [
          '--topic',
          perfTopic,
          '--num-records',
          String(n),
          '--record-size',
          String(backlog.recordSize),
          '--throughput',
          '-1',
          '--producer-props',
          `bootstrap.servers=${c.target}`,
          'acks=all',
          'linger.ms=10',
          'batch.size=1048576',
          `compression.type=${backlog.codec}`,
        ]),
      ),
    ]);
    ctx.checkAborted();
    const tail = (r: { code: number | null; stderr: string }) => `exit ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`;
    const rates = pps.map((pp) => {
      const rate = parseProducerPerf(pp.stdout);
      if (!rate) throw new Error(`ProducerPerformance gave no rate (${tail(pp)})`);
      return rate;
    });
    const prod = rates.reduce((x, y) => x + y, 0);
    const cons = parseConsumerPerf(cp.stdout);
    if (!cons) throw new Error(`ConsumerPerformance gave no rate (${tail(cp)})`);
    const longest = Math.max(...pps.map((pp) => pp.seconds));
    const p = toolRow(
      CEILING_PRODUCER,
      records,
      prod,
      backlog.recordSize,
      `Kafka perf tool, acks=all; ${producers} at once (${rates.join(' + ')} records/s); longest process ${longest.toFixed(1)} s`,
    );
    const q = toolRow(CEILING_CONSUMER, records, cons, backlog.recordSize, `Kafka perf tool, fetch rate; process ${cp.seconds.toFixed(1)} s`);
    const lower = toolRow(CEILING, records, Math.min(prod, cons), backlog.recordSize, `the lower of the two concurrent rates`);
    lower.seconds = Math.min(p.seconds, q.seconds);
    opts.log(`  ceiling: producer ${prod} records/s over ${p.seconds} s, consumer ${cons} records/s over ${q.seconds} s, at once`);
    return [p, q, lower];
  } finally {
    await deleteTopic(c.target, perfTopic);
  }
}

export const ceiling: BacklogScenario = {
  name: 'ceiling',
  systems: () => [], // Kafka's perf tools, not replicators
  runs: 'on-backlog',
  // no table of its own: its rows stand in the throughput table (same heading)
  async run(ctx, _systems, { recordSize, codec, backlog }) {
    const repeat = ctx.opts.repeat ?? 1;
    const rows: SystemResult[][] = [[], [], []];
    for (let rep = 0; rep < repeat; rep++) {
      ctx.checkAborted();
      let last: [SystemResult, SystemResult, SystemResult] | undefined;
      const once = async () => {
        try {
          last = await ceilingOnce(ctx, backlog);
          return last[2];
        } catch (e) {
          ctx.checkAborted();
          last = undefined;
          ctx.opts.log(`  ceiling: FAILED ${(e as Error).message}`);
          return failedRow(CEILING, (e as Error).message);
        }
      };
      const lower = await measuredOverWindow(ctx, backlog, 'ceiling', once);
      if (last) {
        rows[0]!.push(last[0]);
        rows[1]!.push(last[1]);
        rows[2]!.push(lower);
      } else rows[2]!.push(lower);
    }
    return [
      {
        scenario: 'throughput',
        recordSize,
        codec,
        partitions: ctx.opts.partitions,
        records: backlog.records,
        results: [CEILING_PRODUCER, CEILING_CONSUMER, CEILING].map((name, i) => aggregate(name, rows[i]!)).filter((r) => r.runs || r.system === CEILING),
      },
    ];
  },
};
