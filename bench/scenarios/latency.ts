/**
 * `latency`: for each record size and codec, each system replicates steady production at a fixed rate; the time from
 * a record's source CreateTime until it is read on the target, as p50/p99/p99.9.
 */
import type { ChildProcess } from 'node:child_process';
import Kafka from 'node-rdkafka';
import * as hdr from 'hdr-histogram-js';
import type { Clusters } from '../clusters';
import type { BenchOptions } from '../options';
import { ProcSampler } from '../proc-stats';
import type { ScenarioResult, SystemResult } from '../results';
import { startSystem, stopChild, type SystemName } from '../systems';
import { createTopic, deleteTopic, Watermarks } from '../topics';
import type { SizeScenario } from './scenario';

/**
 * Steady production at `rate` for `durationSec` into a fresh source topic while `system` replicates it; a consumer
 * on the target records, for every record, the time from its source CreateTime until it was read (HDR histogram).
 */
async function latencyRun(
  system: SystemName,
  c: Clusters,
  work: string,
  o: {
    rate: number;
    durationSec: number;
    warmupSec: number;
    partitions: number;
    recordSize: number;
    codec: string;
    log: (l: string) => void;
    progress?: BenchOptions['progress'];
    track: (ch: ChildProcess) => void;
  },
): Promise<SystemResult> {
  const topic = `lat-${system}-${Date.now().toString(36)}`;
  await createTopic(c.source, topic, o.partitions);
  const READY = 200; // records that prove the replicator is up before the clock starts
  const warm = o.rate * o.warmupSec; // then production at the rate, not measured, so start-up effects wash out
  const total = READY + warm + o.rate * o.durationSec;
  const { child, targetTopic } = await startSystem(system, c, work, topic, o.partitions, o.codec, total, 50);
  o.track(child);
  const rss = new ProcSampler(child.pid!);
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
  const produceOne = (key: string) => {
    for (;;) {
      try {
        producer.produce(topic, null, value, Buffer.from(key), Date.now());
        return;
      } catch {
        producer.poll(); // local queue full: serve delivery reports and retry
      }
    }
  };
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 });
  const wm = new Watermarks(c.target);
  let consumer: Kafka.KafkaConsumer | undefined;
  try {
    for (let i = 0; i < READY; i++) produceOne(`r${i}`);
    const readyDeadline = Date.now() + 180_000;
    while ((await wm.total(targetTopic, o.partitions)) < READY) {
      if (Date.now() > readyDeadline) throw new Error(`${system}: the first ${READY} records did not arrive within 180 s`);
      if (child.exitCode !== null) throw new Error(`${system} exited while starting`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const cons = new Kafka.KafkaConsumer(
      {
        'bootstrap.servers': c.target,
        'group.id': `lat-${Date.now()}`,
        'enable.auto.commit': false,
        'fetch.wait.max.ms': 5,
        'socket.nagle.disable': true,
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
    const ticker = setInterval(() => {
      const due = Math.min(warm + target, Math.floor(((Date.now() - started) / 1000) * o.rate));
      for (; sent < due; sent++) produceOne(sent < warm ? `w${sent}` : `m${sent}`);
    }, 5);
    const deadline = started + (o.warmupSec + o.durationSec + 60) * 1000;
    while (measured < target && Date.now() < deadline) {
      // small batches: node-rdkafka's consume(n) keeps collecting until n records or one consume times out, so a
      // large n at a steady trickle would hold records for seconds and measure the measuring client
      const batch = await new Promise<Kafka.Message[]>((res, rej) => cons.consume(50, (e, m) => (e ? rej(e) : res(m))));
      const now = Date.now();
      for (const m of batch) {
        if (m.key?.[0] !== 0x6d /* 'm' */) continue;
        hist.recordValue(Math.max(1, now - (m.timestamp ?? now)));
        measured++;
      }
      if (batch.length > 0) o.progress?.(`latency ${system}`, measured, target);
    }
    clearInterval(ticker);
    if (measured < target) throw new Error(`${system}: ${measured} of ${target} records arrived within ${o.warmupSec + o.durationSec + 60} s`);
    return {
      system,
      records: measured,
      seconds: o.durationSec,
      recordsPerSec: o.rate,
      mbPerSec: Number(((o.rate * o.recordSize) / 1e6).toFixed(1)),
      cpuSecondsPerGB: 0,
      peakRssMB: Math.round(rss.stop() / 1e6),
      p50Ms: hist.getValueAtPercentile(50),
      p99Ms: hist.getValueAtPercentile(99),
      p999Ms: hist.getValueAtPercentile(99.9),
    };
  } finally {
    rss.stop();
    if (consumer) await new Promise<void>((res) => consumer!.disconnect(() => res()));
    await new Promise<void>((res) => producer.disconnect(() => res()));
    await wm.close();
    await stopChild(child);
    await deleteTopic(c.target, targetTopic);
    await deleteTopic(c.source, topic);
  }
}

export const latency: SizeScenario = {
  name: 'latency',
  systems: (given) => [...given],
  runs: 'per-size-and-codec',
  async run(ctx, systems, { recordSize, codec, earlier }) {
    const { opts, c, work, running } = ctx;
    const straitMax = earlier
      .find((r) => r.scenario === 'throughput' && r.recordSize === recordSize && r.codec === codec)
      ?.results.find((r) => r.system === 'strait')?.recordsPerSec;
    const rate = opts.rate ?? Math.min(100_000, straitMax ? Math.round(straitMax / 2) : 5000);
    const durationSec = opts.durationSec ?? 20;
    const warmupSec = opts.warmupSec ?? 5;
    const lat: ScenarioResult = {
      scenario: `latency at ${rate} records/s for ${durationSec} s (after ${warmupSec} s warm-up)`,
      recordSize,
      codec,
      partitions: opts.partitions,
      records: rate * durationSec,
      results: [],
    };
    for (const system of systems) {
      ctx.checkAborted();
      opts.log(`  latency ${system}: ${rate} records/s, ${warmupSec} s warm-up + ${durationSec} s measured ...`);
      try {
        const r = await latencyRun(system, c, work, {
          rate,
          durationSec,
          warmupSec,
          partitions: opts.partitions,
          recordSize,
          codec,
          log: opts.log,
          track: (ch) => running.add(ch),
          ...(opts.progress ? { progress: opts.progress } : {}),
        });
        lat.results.push(r);
        opts.log(`  latency ${system}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, p99.9 ${r.p999Ms} ms`);
      } catch (e) {
        ctx.checkAborted();
        lat.results.push({ system, records: 0, seconds: 0, recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0, peakRssMB: 0, note: (e as Error).message });
        opts.log(`  latency ${system}: FAILED ${(e as Error).message}`);
      }
    }
    return lat;
  },
  table: {
    holds: (s) => s.scenario.startsWith('latency'),
    charted: true,
    markdown: (s) => [
      `### ${s.scenario}: ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec} (source CreateTime -> read on the target)`,
      '',
      '| system | p50 ms | p99 ms | p99.9 ms | peak RSS MB | note |',
      '|---|---:|---:|---:|---:|---|',
      ...s.results.map((r) => `| ${r.system} | ${r.p50Ms ?? '-'} | ${r.p99Ms ?? '-'} | ${r.p999Ms ?? '-'} | ${r.peakRssMB || '-'} | ${r.note ?? ''} |`),
      '',
    ],
  },
};
