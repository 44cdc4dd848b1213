/**
 * `latency`: for each record size and codec, each system replicates steady production at a fixed rate (`--rate`,
 * default 5000 records/s), then at 50% and 90% of its own throughput measured by the throughput scenario of the same
 * run; the time from a record's source CreateTime until it is read on the target, as p50/p99/p99.9 (medians of the
 * repetitions, systems in rotated order).
 */
import type { ChildProcess } from 'node:child_process';
import Kafka from 'node-rdkafka';
import * as hdr from 'hdr-histogram-js';
import { disconnectClient } from '../../shared/kafka/bounded-call';
import type { Clusters } from '../clusters';
import type { BenchOptions } from '../options';
import { cpuSeconds, ProcSampler } from '../proc-stats';
import { aggregate, failedRow, LOAD_SHARES, range, rateAt, rotate } from '../repetitions';
import { runsCell, type ScenarioResult, type SystemResult } from '../results';
import { startSystem, stopChild, TRANSACTIONAL_SYSTEMS, type SystemName } from '../systems';
import { createTopic, deleteTopic, Watermarks } from '../topics';
import type { SizeScenario } from './scenario';

/**
 * Steady production at `rate` for `durationSec` into a fresh source topic while `system` replicates it; a consumer
 * on the target records, for every record, the time from its source CreateTime until it was read (HDR histogram).
 */
/** The fixed rate of the latency scenario without --rate: the issue's reference load for 1 KiB records. */
export const DEFAULT_LATENCY_RATE = 5000;

/**
 * The floor row of the fixed rate: no replicator, the same measuring producer and reader on the source topic itself.
 * A replicated record makes this hop and one more, so no system's percentiles can be below the floor's on these
 * clusters; it shows how much of a row is the bench and the brokers rather than the replicator.
 */
export const LATENCY_FLOOR = 'floor: one hop, no replicator';

export async function latencyRun(
  system: SystemName | typeof LATENCY_FLOOR,
  c: Clusters,
  work: string,
  o: {
    rate: number;
    durationSec: number;
    warmupSec: number;
    partitions: number;
    recordSize: number;
    codec: string;
    /** names this measurement's config, store and offsets apart from the others of the run */
    tag: string;
    /** strait-eos: the route's transactionIntervalMs */
    transactionIntervalMs?: number;
    /**
     * the many-partitions scenario: records go to the partitions in turn (not by key hash) and the run also reports
     * the worst record's latency, the most records any partition lagged, how many partitions delivered, the
     * replicator's CPU over the measured window and its peak open file descriptors
     */
    spread?: boolean;
    /** strait systems: worker.threads */
    threads?: number;
    log: (l: string) => void;
    progress?: BenchOptions['progress'];
    track: (ch: ChildProcess) => void;
  },
): Promise<SystemResult> {
  const topic = `lat-${system === LATENCY_FLOOR ? 'floor' : system}-${Date.now().toString(36)}`;
  await createTopic(c.source, topic, o.partitions);
  // records that prove the replicator is up before the clock starts; spread over many partitions, one for each of
  // them at least, so that every partition has been started and carries records end to end (a replicator that starts
  // 2,000 partitions, and creates their target topic, takes tens of seconds to have them all flowing: measured from
  // the first 200 records, the whole window of the many-partitions scenario fell into that start-up)
  const READY = o.spread ? Math.max(200, o.partitions) : 200;
  const warm = o.rate * o.warmupSec; // then production at the rate, not measured, so start-up effects wash out
  const total = READY + warm + o.rate * o.durationSec;
  const floor = system === LATENCY_FLOOR;
  const { child, targetTopic } = floor
    ? { child: undefined, targetTopic: topic }
    : await startSystem(system, c, work, topic, o.partitions, o.codec, total, 50, c.source, o.tag, undefined, o.transactionIntervalMs, o.threads);
  // the floor reads where it writes
  const readFrom = floor ? c.source : c.target;
  if (child) o.track(child);
  const rss = child ? new ProcSampler(child.pid!, 100, o.spread) : undefined;
  // the measuring clients must not add latency of their own: no linger to speak of, no Nagle
  const producer = new Kafka.Producer({
    'bootstrap.servers': c.source,
    'linger.ms': 1,
    'socket.nagle.disable': true,
    'queue.buffering.max.messages': 1000000,
    log_level: 0,
  } as Kafka.ProducerGlobalConfig);
  await new Promise<void>((res, rej) => producer.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  producer.setPollInterval(10);
  const value = Buffer.alloc(o.recordSize, 'x');
  // spread: what each partition was given and what was read of it, for the lag of the partition furthest behind
  const produced = new Float64Array(o.partitions);
  const read = new Float64Array(o.partitions);
  const measuredRead = new Float64Array(o.partitions);
  let nextPartition = 0;
  const produceOne = (key: string) => {
    const partition = o.spread ? nextPartition : null;
    for (;;) {
      try {
        producer.produce(topic, partition, value, Buffer.from(key), Date.now());
        if (partition !== null) {
          produced[partition]!++;
          nextPartition = (partition + 1) % o.partitions;
        }
        return;
      } catch {
        producer.poll(); // local queue full: serve delivery reports and retry
      }
    }
  };
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 });
  const wm = new Watermarks(readFrom);
  let consumer: Kafka.KafkaConsumer | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let lagTicker: NodeJS.Timeout | undefined;
  try {
    for (let i = 0; i < READY; i++) produceOne(`r${i}`);
    const readyDeadline = Date.now() + 180_000;
    while ((await wm.total(targetTopic, o.partitions)) < READY) {
      if (Date.now() > readyDeadline) throw new Error(`${system}: the first ${READY} records did not arrive within 180 s`);
      if (child && child.exitCode !== null) throw new Error(`${system} exited while starting`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const cons = new Kafka.KafkaConsumer(
      {
        'bootstrap.servers': readFrom,
        'group.id': `lat-${Date.now()}`,
        'enable.auto.commit': false,
        'fetch.wait.max.ms': 5,
        'socket.nagle.disable': true,
        // node-rdkafka's consume(n) keeps collecting until n records, or until one wait of the consume timeout gets
        // nothing: records trickling in at the rate would wait in the batch (at 200 records/s over 2 partitions the
        // smoke run's floor measured p50 126 ms). With partition EOF events on, it returns what it holds once a
        // partition reaches its end (node-rdkafka then waits 1 ms more, not the timeout); the events come apart.
        'enable.partition.eof': true,
        // a record counts once a read_committed consumer can read it: for a transactional system, once its
        // transaction committed (the same for the others: their records are committed as they land)
        'isolation.level': 'read_committed',
        log_level: 0,
      },
      {},
    );
    consumer = cons;
    await new Promise<void>((res, rej) => cons.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
    cons.setDefaultConsumeTimeout(20);
    cons.assign(Array.from({ length: o.partitions }, (_, p) => ({ topic: targetTopic, partition: p, offset: 0 })));
    let measured = 0;
    let sent = 0;
    const started = Date.now();
    const target = o.rate * o.durationSec;
    // when the first measured record and the last one were produced: the rate the producer actually kept
    let measuredFrom = warm === 0 ? started : 0;
    let measuredTo = 0;
    // spread: the replicator's CPU seconds when the measured window opened
    const cpuOf = o.spread && child ? child.pid! : undefined;
    let cpuFrom = warm === 0 && cpuOf !== undefined ? cpuSeconds(cpuOf) : 0;
    ticker = setInterval(() => {
      const due = Math.min(warm + target, Math.floor(((Date.now() - started) / 1000) * o.rate));
      for (; sent < due; sent++) produceOne(sent < warm ? `w${sent}` : `m${sent}`);
      if (measuredFrom === 0 && sent >= warm) {
        measuredFrom = Date.now();
        if (cpuOf !== undefined) cpuFrom = cpuSeconds(cpuOf);
      }
      if (measuredTo === 0 && sent >= warm + target) measuredTo = Date.now();
    }, 5);
    // spread: once a second, the most records any partition had been given and not yet delivered, over the window
    let maxLag = 0;
    if (o.spread)
      lagTicker = setInterval(() => {
        if (measuredFrom === 0) return;
        for (let p = 0; p < o.partitions; p++) maxLag = Math.max(maxLag, produced[p]! - read[p]!);
      }, 1000);
    // node-rdkafka's consume(n) returns at n records or its timeout: about 5 ms of records at the rate
    const consumeBatch = Math.max(50, Math.round(o.rate / 200));
    const deadline = started + (o.warmupSec + o.durationSec + 60) * 1000;
    while (measured < target && Date.now() < deadline) {
      // small batches: node-rdkafka's consume(n) keeps collecting until n records or one consume times out, so a
      // large n at a steady trickle would hold records for seconds and measure the measuring client
      const batch = await new Promise<Kafka.Message[]>((res, rej) => cons.consume(consumeBatch, (e, m) => (e ? rej(e) : res(m))));
      const now = Date.now();
      for (const m of batch) {
        read[m.partition]!++;
        if (m.key?.[0] !== 0x6d /* 'm' */) continue;
        hist.recordValue(Math.max(1, now - (m.timestamp ?? now)));
        measuredRead[m.partition]!++;
        measured++;
      }
      if (batch.length > 0) o.progress?.(`latency ${system}`, measured, target);
    }
    clearInterval(ticker);
    clearInterval(lagTicker);
    const cpu = cpuOf !== undefined ? cpuSeconds(cpuOf) - cpuFrom : 0;
    const cpuWindowSec = Math.max(0.001, (Date.now() - measuredFrom) / 1000);
    if (measured < target) throw new Error(`${system}: ${measured} of ${target} records arrived within ${o.warmupSec + o.durationSec + 60} s`);
    const achievedRate = Math.round(target / Math.max(0.001, ((measuredTo || Date.now()) - measuredFrom) / 1000));
    const notes = achievedRate < o.rate * 0.95 ? [`the bench's producer kept ${achievedRate} of ${o.rate} records/s`] : [];
    if (!floor && TRANSACTIONAL_SYSTEMS.includes(system)) {
      // proof it ran in transactions: every record produced is on the target (the last measured one was read, and
      // each partition keeps order), so what the end offsets hold beyond them are commit markers
      const markers = (await wm.total(targetTopic, o.partitions)) - total;
      if (markers <= 0)
        throw new Error(`${system}: no transaction markers on the target (end offsets ${markers} beyond the ${total} records): not transactional`);
      notes.push(`${markers} transaction markers on the target`);
    }
    return {
      achievedRate,
      ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
      system,
      records: measured,
      seconds: o.durationSec,
      recordsPerSec: o.rate,
      mbPerSec: Number(((o.rate * o.recordSize) / 1e6).toFixed(1)),
      cpuSecondsPerGB: 0,
      peakRssMB: rss ? Math.round(rss.stop() / 1e6) : 0,
      p50Ms: hist.getValueAtPercentile(50),
      p99Ms: hist.getValueAtPercentile(99),
      p999Ms: hist.getValueAtPercentile(99.9),
      ...(o.spread
        ? {
            maxMs: hist.maxValue,
            maxLagRecords: maxLag,
            partitionsRead: measuredRead.filter((n) => n > 0).length,
            // from the first measured record produced until the last one was read: the replicator's share of the CPU
            cpuCores: Number((cpu / cpuWindowSec).toFixed(2)),
            cpuSecondsPerGB: Number((cpu / ((measured * o.recordSize) / 1e9)).toFixed(1)),
            peakFds: rss?.peakFds ?? 0,
          }
        : {}),
    };
  } finally {
    rss?.stop();
    clearInterval(ticker);
    clearInterval(lagTicker);
    if (consumer) await new Promise<void>((res) => consumer!.disconnect(() => res()));
    await disconnectClient(producer, 30_000);
    await wm.close();
    if (child) await stopChild(child);
    if (!floor) await deleteTopic(c.target, targetTopic);
    await deleteTopic(c.source, topic);
  }
}

/** A load of the latency scenario: a fixed rate for every system, or a share of each system's own throughput. */
type Load = { fixed: number } | { share: number };

/** The rate of `system` under `load`, or why there is none: the share needs the system's throughput of the same run. */
export function loadRate(load: Load, system: string, throughput: ScenarioResult | undefined): number | string {
  if ('fixed' in load) return load.fixed;
  const r = throughput?.results.find((x) => x.system === system);
  if (!r || r.recordsPerSec <= 0) return `no throughput result for ${system} in this run to take ${Math.round(load.share * 100)}% of`;
  return rateAt(load.share, r.recordsPerSec);
}

export function loadHeading(load: Load, durationSec: number, warmupSec: number): string {
  const at = 'fixed' in load ? `${load.fixed} records/s` : `${Math.round(load.share * 100)}% of each system's throughput`;
  return `latency at ${at} for ${durationSec} s (after ${warmupSec} s warm-up)`;
}

export const latency: SizeScenario = {
  name: 'latency',
  systems: (given) => [...given],
  runs: 'per-size-and-codec',
  async run(ctx, systems, { recordSize, codec, earlier }) {
    const { opts, c, work, running } = ctx;
    const throughput = earlier.find((r) => r.scenario === 'throughput' && r.recordSize === recordSize && r.codec === codec);
    const durationSec = opts.durationSec ?? 20;
    const warmupSec = opts.warmupSec ?? 5;
    const repeat = opts.repeat ?? 1;
    const loads: Load[] = [{ fixed: opts.rate ?? DEFAULT_LATENCY_RATE }];
    // the shares need the throughput scenario of the same run (same size and codec)
    if (throughput) loads.push(...LOAD_SHARES.map((share) => ({ share })));
    else opts.log(`  latency: no throughput scenario in this run for ${recordSize} B ${codec}: only the fixed rate`);
    const out: ScenarioResult[] = [];
    let measurement = 0;
    for (const load of loads) {
      const heading = loadHeading(load, durationSec, warmupSec);
      // the floor takes its turn with the systems at the fixed rate (a share of throughput it has none of)
      const rows: (SystemName | typeof LATENCY_FLOOR)[] = 'fixed' in load ? [...systems, LATENCY_FLOOR] : [...systems];
      const runs = new Map<string, SystemResult[]>(rows.map((s) => [s, []]));
      for (let rep = 0; rep < repeat; rep++) {
        for (const system of rotate(rows, rep)) {
          ctx.checkAborted();
          const rate = loadRate(load, system, throughput);
          if (typeof rate === 'string') {
            runs.get(system)!.push(failedRow(system, rate));
            continue;
          }
          opts.log(`  ${heading} ${system}${repeat > 1 ? ` (repetition ${rep + 1} of ${repeat})` : ''}: ${rate} records/s ...`);
          try {
            const r = await latencyRun(system, c, work, {
              rate,
              durationSec,
              warmupSec,
              partitions: opts.partitions,
              recordSize,
              codec,
              tag: `lat${++measurement}`,
              log: opts.log,
              ...(opts.transactionIntervalMs !== undefined ? { transactionIntervalMs: opts.transactionIntervalMs } : {}),
              track: (ch) => running.add(ch),
              ...(opts.progress ? { progress: opts.progress } : {}),
            });
            runs.get(system)!.push(r);
            opts.log(`  latency ${system} at ${rate} records/s: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, p99.9 ${r.p999Ms} ms`);
          } catch (e) {
            ctx.checkAborted();
            runs.get(system)!.push(failedRow(system, (e as Error).message));
            opts.log(`  latency ${system}: FAILED ${(e as Error).message}`);
          }
        }
      }
      const results = rows.map((s) => aggregate(s, runs.get(s)!));
      out.push({ scenario: heading, recordSize, codec, partitions: opts.partitions, records: Math.max(0, ...results.map((r) => r.records)), results });
    }
    return out;
  },
  table: {
    holds: (s) => s.scenario.startsWith('latency'),
    charted: true,
    markdown: (s) => [
      `### ${s.scenario}: ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec} (source CreateTime -> read on the target)`,
      '',
      '| system | rate records/s | kept records/s | p50 ms | p99 ms (median) | p99 min–max | p99.9 ms | runs | peak RSS MB | note |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...s.results.map(
        (r) =>
          `| ${r.system} | ${r.recordsPerSec || '-'} | ${r.achievedRate ?? '-'} | ${r.p50Ms ?? '-'} | ${r.p99Ms ?? '-'} | ${range(r.p99MsRange, r.runs)} | ` +
          `${r.p999Ms ?? '-'} | ${runsCell(r)} | ${r.peakRssMB || '-'} | ${r.note ?? ''} |`,
      ),
      '',
    ],
  },
};
