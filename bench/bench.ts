/**
 * `strait bench`: strait side by side with MirrorMaker 2 (default and tuned), a plain node-rdkafka JavaScript loop,
 * and Kafka's own ProducerPerformance/ConsumerPerformance ceiling — same clusters, same preloaded data, same run.
 * Writes results.json and results.md to --out; every process it starts is stopped by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import Kafka from 'node-rdkafka';
import * as hdr from 'hdr-histogram-js';
import { stringify } from 'yaml';
import { StraitError } from '../shared/errors';
import { ensureKafka, projectRoot, runKafkaClass, spawnKafkaClass, type KafkaRuntime } from './harness/kafka-runtime';
import * as dev from './harness/local-cluster';
import { renderCharts } from './chart';
import { ProcSampler } from './proc-stats';
import { produceNumbered, readAsGroup, recordNumber } from './numbered-records';
import { loadNative } from '../native';
import { loadConfig } from '../shared/config';
import { failover } from '../controller/failover';
import { startTcpProxy } from './harness/tcp-proxy';

export const SYSTEMS = ['strait', 'strait-lan', 'strait-wan', 'js-baseline', 'mm2-default', 'mm2-tuned'] as const;
export const SCENARIOS = ['throughput', 'ceiling', 'latency', 'wan', 'rest', 'failover'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface BenchOptions {
  scenarios: string[];
  source?: string;
  target?: string;
  records: number;
  recordSizes: number[];
  partitions: number;
  codecs: string[];
  out: string;
  systems: SystemName[];
  /** latency scenario: records/s to produce (default: half of strait's throughput result, else 5000) */
  rate?: number;
  /** latency scenario: seconds of steady production */
  durationSec?: number;
  /** latency scenario: seconds of production at the rate before measuring starts (default 5) */
  warmupSec?: number;
  /** failover scenario: records produced per system (default 200000) */
  failoverRecords?: number;
  /** where the local clusters' state goes (default .strait/bench) */
  clusterDir?: string;
  /** wan scenario: added round-trip time, ms (default 50) */
  rttMs?: number;
  log: (line: string) => void;
  /** called while loading and replicating: a label, work done and work to do (records) */
  progress?: (label: string, done: number, total: number) => void;
}

export interface SystemResult {
  system: string;
  /** rest scenario: requests/s answered with 2xx, and errors (non-2xx or failed) */
  requestsPerSec?: number;
  errors?: number;
  /** failover scenario: records the group read on the source before the switch and on the target after it */
  readBeforeSwitch?: number;
  readAfterSwitch?: number;
  /** failover scenario: records read on the target that the group had read on the source already */
  duplicates?: number;
  /** failover scenario: records the group read on neither cluster */
  missing?: number;
  /** failover scenario: from the switch (the group stopped on the source) until its offsets on the target were ready */
  offsetsReadySec?: number;
  /** latency scenario: source CreateTime -> readable on the target, ms */
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  records: number;
  seconds: number;
  recordsPerSec: number;
  mbPerSec: number;
  cpuSecondsPerGB: number;
  peakRssMB: number;
  note?: string;
}

export interface ScenarioResult {
  scenario: string;
  recordSize: number;
  codec: string;
  partitions: number;
  records: number;
  results: SystemResult[];
}

interface Clusters {
  source: string;
  target: string;
  /** local clusters started with ZooKeeper (rest scenario) */
  zookeeper?: string;
  /** store.auth for the harness ZooKeeper */
  zookeeperAuth?: { scheme: 'digest'; credentials: string };
  /** the source's listener advertised through the delay proxy's port (local clusters only) */
  sourceWan?: { bootstrap: string; upstream: string; port: number };
  runtime: KafkaRuntime;
  stop: () => Promise<void>;
}

const MM2_TASKS = 2; // one per core on the 2-core bench machine

async function clusters(opts: BenchOptions): Promise<Clusters> {
  const runtime = ensureKafka(undefined, opts.log);
  if (opts.source && opts.target) {
    if (opts.scenarios.includes('wan')) {
      throw new StraitError('STRAIT_USAGE', "the wan scenario runs on local clusters only: its delay proxy must be the source broker's advertised listener; drop --source/--target or the wan scenario", { field: 'scenario' });
    }
    if (opts.scenarios.includes('rest')) {
      throw new StraitError('STRAIT_USAGE', 'the rest scenario runs on local clusters only (it starts its own ZooKeeper, controller and worker); drop --source/--target or the rest scenario', { field: 'scenario' });
    }
    return { source: opts.source, target: opts.target, runtime, stop: async () => {} };
  }
  if (opts.source || opts.target) throw new StraitError('STRAIT_USAGE', '--source and --target go together (or neither, for local clusters)', { field: opts.source ? 'target' : 'source' });
  const dir = resolve(opts.clusterDir ?? join('.strait', 'bench'));
  await dev.down({ dir });
  const state = await dev.up({ clusters: 2, dir, log: opts.log, heap: '1g', wanListener: opts.scenarios.includes('wan'), zookeeper: opts.scenarios.includes('rest') });
  const a = state.clusters.a!;
  return {
    source: a.bootstrap,
    target: state.clusters.b!.bootstrap,
    ...(state.zookeeper ? { zookeeper: state.zookeeper.connect, zookeeperAuth: state.zookeeper.auth } : {}),
    ...(a.wan ? { sourceWan: { bootstrap: a.wan.bootstrap, upstream: `127.0.0.1:${a.wan.port}`, port: a.wan.proxyPort } } : {}),
    runtime,
    stop: async () => void (await dev.down({ dir })),
  };
}

async function admin<T>(brokers: string, fn: (a: Kafka.IAdminClient) => Promise<T>): Promise<T> {
  const a = Kafka.AdminClient.create({ 'bootstrap.servers': brokers, log_level: 0 });
  try {
    return await fn(a);
  } finally {
    a.disconnect();
  }
}

async function createTopic(brokers: string, topic: string, partitions: number, config: Record<string, string> = {}): Promise<void> {
  await admin(brokers, (a) => new Promise<void>((res, rej) => a.createTopic({ topic, num_partitions: partitions, replication_factor: -1 as never, config }, 30_000, (e) => (e && e.code !== 36 ? rej(e) : res()))));
}

async function deleteTopic(brokers: string, topic: string): Promise<void> {
  await admin(brokers, (a) => new Promise<void>((res) => a.deleteTopic(topic, 30_000, () => res())));
}

class Watermarks {
  private client: Kafka.Producer | undefined;
  constructor(private readonly brokers: string) {}
  async total(topic: string, partitions: number): Promise<number> {
    return (await this.perPartition(topic, partitions)).reduce((a, b) => a + b, 0);
  }
  /** high watermark of every partition (all 0 while the topic is unknown) */
  async perPartition(topic: string, partitions: number): Promise<number[]> {
    if (!this.client) {
      const c = new Kafka.Producer({ 'bootstrap.servers': this.brokers, log_level: 0 });
      await new Promise<void>((res, rej) => c.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
      this.client = c;
    }
    const c = this.client;
    try {
      return await Promise.all(
        Array.from({ length: partitions }, (_, p) => new Promise<number>((res, rej) => c.queryWatermarkOffsets(topic, p, 2000, (e, o) => (e ? rej(e) : res(o.highOffset))))),
      );
    } catch {
      // librdkafka keeps answering "unknown topic" for a topic that did not exist when first asked: start afresh
      this.client = undefined;
      await new Promise<void>((res) => c.disconnect(() => res()));
      return new Array<number>(partitions).fill(0);
    }
  }
  async close(): Promise<void> {
    if (this.client) await new Promise<void>((res) => this.client!.disconnect(() => res()));
  }
}

function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      res();
    });
    child.kill('SIGTERM');
  });
}

/** Runs one replicator until `records` have landed in `targetTopic`; rate from first to last landing. */
async function measure(name: string, child: ChildProcess, wm: Watermarks, targetTopic: string, partitions: number, records: number, bytesPerRecord: number, timeoutMs: number, progress?: BenchOptions['progress']): Promise<SystemResult> {
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

function straitConfig(dir: string, alias: string, c: Clusters, source: string, topic: string, profile: string, codec: string): string {
  const file = join(dir, `${alias}.yaml`);
  writeFileSync(
    file,
    stringify({
      deployment: `bench-${alias}`,
      clusters: { [alias]: { bootstrap: source }, target: { bootstrap: c.target } },
      routes: [{ name: alias, source: alias, target: 'target', topics: { include: [topic] }, profile, compression: codec === 'none' ? 'none' : codec, syncTopicConfigs: false }],
      store: { type: 'embedded', path: join(dir, `${alias}-store`) },
      metrics: { enabled: false },
      log: { level: 'warn' },
    }),
  );
  return file;
}

/** MirrorMaker 2 checkpoint settings of the failover scenario: stated in the results next to the numbers */
export const MM2_CHECKPOINT_INTERVAL_SEC = 1;
export const MM2_FAILOVER_SETTINGS = `emit.checkpoints.enabled=true, sync.group.offsets.enabled=true, emit.checkpoints.interval.seconds=${MM2_CHECKPOINT_INTERVAL_SEC}, sync.group.offsets.interval.seconds=${MM2_CHECKPOINT_INTERVAL_SEC}, refresh.groups.interval.seconds=${MM2_CHECKPOINT_INTERVAL_SEC}, groups=<the bench group>, offset.lag.max=100 (default)`;

function mm2Config(dir: string, alias: string, c: Clusters, source: string, topic: string, tuned: boolean, codec: string, group?: string): string {
  const file = join(dir, `${alias}.properties`);
  const lines = [
    `clusters = ${alias}, target`,
    `${alias}.bootstrap.servers = ${source}`,
    `target.bootstrap.servers = ${c.target}`,
    `${alias}->target.enabled = true`,
    `${alias}->target.topics = ${topic}`,
    `target->${alias}.enabled = false`,
    `tasks.max = ${tuned ? MM2_TASKS * 2 : MM2_TASKS}`,
    'replication.factor = 1',
    'offset-syncs.topic.replication.factor = 1',
    'checkpoints.topic.replication.factor = 1',
    'heartbeats.topic.replication.factor = 1',
    'config.storage.replication.factor = 1',
    'offset.storage.replication.factor = 1',
    'status.storage.replication.factor = 1',
    'sync.topic.acls.enabled = false',
    'sync.topic.configs.enabled = false',
    'refresh.topics.interval.seconds = 5',
    `${alias}.consumer.auto.offset.reset = earliest`,
    `target.producer.compression.type = ${codec}`,
  ];
  if (group === undefined) {
    lines.push('emit.checkpoints.enabled = false');
  } else {
    // failover scenario: checkpoints of the one bench group, synced into the group on the target, as often as MM2
    // allows (whole seconds). offset.lag.max stays at its default (100): MM2 writes an offset sync about every 100
    // records per partition, and a checkpoint translates to the newest sync at or before the group's offset.
    const every = MM2_CHECKPOINT_INTERVAL_SEC;
    lines.push(
      'emit.checkpoints.enabled = true',
      `emit.checkpoints.interval.seconds = ${every}`,
      'sync.group.offsets.enabled = true',
      `sync.group.offsets.interval.seconds = ${every}`,
      `refresh.groups.interval.seconds = ${every}`,
      `groups = ${group}`, // a regex; the bench's group names hold only [a-z0-9-]
    );
  }
  if (tuned) {
    // The tuning MirrorMaker 2 users apply for throughput: big batches, a linger, more requests in flight
    // (idempotent, so ordering holds), bigger fetches and polls.
    lines.push(
      'target.producer.batch.size = 1048576',
      'target.producer.linger.ms = 10',
      'target.producer.max.in.flight.requests.per.connection = 5',
      'target.producer.enable.idempotence = true',
      'target.producer.acks = all',
      'target.producer.buffer.memory = 134217728',
      `${alias}.consumer.max.poll.records = 5000`,
      `${alias}.consumer.fetch.max.bytes = 104857600`,
      `${alias}.consumer.max.partition.fetch.bytes = 10485760`,
      `${alias}.consumer.fetch.min.bytes = 65536`,
    );
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function log4jQuiet(dir: string): string {
  const file = join(dir, 'log4j-quiet.properties');
  writeFileSync(file, 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n');
  return file;
}

function parseProducerPerf(out: string): number | undefined {
  const lines = out.trim().split('\n').filter((l) => /records sent/.test(l));
  const m = /([\d.]+) records\/sec/.exec(lines.at(-1) ?? '');
  return m ? Math.round(Number(m[1])) : undefined;
}

function parseConsumerPerf(out: string): number | undefined {
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const line = out.trim().split('\n').filter((l) => /^\d{4}-\d\d-\d\d/.test(l)).at(-1);
  const f = line?.split(',').map((s) => s.trim());
  return f && f.length >= 10 ? Math.round(Number(f[9])) : undefined;
}

async function ceilingResults(c: Clusters, dir: string, topic: string, o: { records: number; recordSize: number; partitions: number; codec: string }): Promise<SystemResult[]> {
  const log4j = log4jQuiet(dir);
  const mb = (rps: number) => Number(((rps * o.recordSize) / 1e6).toFixed(1));
  const out: SystemResult[] = [];
  const perfTopic = `${topic}-ceiling`;
  await createTopic(c.target, perfTopic, o.partitions); // the harness brokers do not auto-create topics
  const pp = runKafkaClass(c.runtime, 'org.apache.kafka.tools.ProducerPerformance', [
    '--topic', perfTopic, '--num-records', String(o.records), '--record-size', String(o.recordSize), '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${c.target}`, 'acks=all', 'linger.ms=10', 'batch.size=1048576', `compression.type=${o.codec}`,
  ], { heap: '1g', log4j });
  const prod = parseProducerPerf(pp.stdout);
  if (prod) out.push({ system: 'ceiling: ProducerPerformance -> target', records: o.records, seconds: Number((o.records / prod).toFixed(2)), recordsPerSec: prod, mbPerSec: mb(prod), cpuSecondsPerGB: 0, peakRssMB: 0, note: 'Kafka perf tool, acks=all' });
  const cp = runKafkaClass(c.runtime, 'org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server', c.source, '--topic', topic, '--messages', String(o.records), '--timeout', '60000',
  ], { heap: '1g', log4j });
  const cons = parseConsumerPerf(cp.stdout);
  await deleteTopic(c.target, perfTopic);
  if (cons) out.push({ system: 'ceiling: ConsumerPerformance <- source', records: o.records, seconds: Number((o.records / cons).toFixed(2)), recordsPerSec: cons, mbPerSec: mb(cons), cpuSecondsPerGB: 0, peakRssMB: 0, note: 'Kafka perf tool, fetch rate' });
  return out;
}


/** Starts one replicator for `topic`; returns the child and the topic it writes on the target. */
async function startSystem(system: SystemName, c: Clusters, work: string, topic: string, partitions: number, codec: string, records: number, jsBatch = 1000, source = c.source, tag = '', group?: string): Promise<{ child: ChildProcess; targetTopic: string; config: string; alias: string }> {
  // the alias names the config, the store, strait's deployment and MirrorMaker 2's source cluster, hence where each
  // keeps its committed offsets: every scenario gets its own, so one scenario never resumes from another's offsets
  const alias = `${tag}${system.replace(/[^a-z0-9]/g, '')}`;
  if (system.startsWith('strait')) {
    const cfg = straitConfig(work, alias, c, source, topic, system === 'strait' ? 'default' : system.slice('strait-'.length), codec);
    const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), 'run', '-c', cfg, '--no-status-line'], { stdio: ['ignore', 'ignore', 'inherit'] });
    return { child, targetTopic: `${alias}.${topic}`, config: cfg, alias };
  }
  if (system === 'js-baseline') {
    const targetTopic = `js.${topic}`;
    await createTopic(c.target, targetTopic, partitions, { 'compression.type': codec === 'none' ? 'producer' : codec });
    const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'bench', 'js-loop.js'), source, c.target, topic, targetTopic, String(partitions), String(records), String(jsBatch)], { stdio: ['ignore', 'ignore', 'inherit'] });
    return { child, targetTopic, config: '', alias };
  }
  const cfg = mm2Config(work, alias, c, source, topic, system === 'mm2-tuned', codec, group);
  const logFd = openSync(join(work, `${alias}.log`), 'w');
  const child = spawnKafkaClass(c.runtime, 'org.apache.kafka.connect.mirror.MirrorMaker', [cfg], { heap: '1g', log4j: log4jQuiet(work), stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  return { child, targetTopic: `${alias}.${topic}`, config: cfg, alias };
}

const FAILOVER_READ_FRACTION = 0.4;
const FAILOVER_SYSTEMS: readonly SystemName[] = ['strait', 'mm2-default', 'mm2-tuned'];

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function until(ctx: RunContext, what: string, check: () => Promise<boolean>, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    ctx.checkAborted();
    if (child && exited(child)) throw new Error(`exited while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * `failover`: one consumer group switches from the source to the target. For each system, with its own topic and
 * group: N numbered records on the source; the group exists (offset 0 everywhere) before the system starts; the
 * system replicates; the group reads 40% of every partition on the source, commits and stops (the switch); strait
 * runs `strait failover` (live translation into the group on the target), MirrorMaker 2 syncs the group's offsets
 * from its checkpoints (sync.group.offsets); once everything is replicated, the same group reads the target topic
 * from its offsets there to the end. Every record is numbered, so re-reads and gaps are counted, not estimated.
 */
async function failoverScenario(ctx: RunContext): Promise<ScenarioResult> {
  const { opts } = ctx;
  const records = opts.failoverRecords ?? 200_000;
  const recordSize = Math.min(...opts.recordSizes);
  const codec = opts.codecs[0] ?? 'none';
  const scenario: ScenarioResult = { scenario: 'failover', recordSize, codec, partitions: opts.partitions, records, results: [] };
  for (const system of opts.systems.filter((s) => FAILOVER_SYSTEMS.includes(s))) {
    ctx.checkAborted();
    try {
      const r = await failoverRun(ctx, system, records, recordSize, codec);
      scenario.results.push(r);
      opts.log(`  failover ${system}: read ${r.readBeforeSwitch} before the switch, ${r.readAfterSwitch} after; ${r.duplicates} duplicates, ${r.missing} missing; offsets ready after ${r.offsetsReadySec} s${r.note ? ` (${r.note})` : ''}`);
    } catch (e) {
      ctx.checkAborted();
      scenario.results.push({ system, records: 0, seconds: 0, recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0, peakRssMB: 0, note: (e as Error).message });
      opts.log(`  failover ${system}: FAILED ${(e as Error).message}`);
    }
  }
  return scenario;
}

async function failoverRun(ctx: RunContext, system: SystemName, n: number, recordSize: number, codec: string): Promise<SystemResult> {
  const { opts, c, work } = ctx;
  const P = opts.partitions;
  const id = Date.now().toString(36);
  const topic = `fo-${system}-${id}`;
  const group = `fobench-${system}-${id}`;
  const mm2 = system.startsWith('mm2');
  await createTopic(c.source, topic, P);
  const onSource = new Watermarks(c.source);
  const onTarget = new Watermarks(c.target);
  const Admin = loadNative().Admin;
  const sourceAdmin = new Admin({ 'bootstrap.servers': c.source });
  const targetAdmin = new Admin({ 'bootstrap.servers': c.target });
  let child: ChildProcess | undefined;
  let targetTopic: string | undefined;
  const targetOffsets = async (): Promise<Map<number, number>> => {
    const list = await targetAdmin.listConsumerGroupOffsets(group, null, 5000).catch(() => []);
    return new Map(list.filter((o) => o.topic === targetTopic && o.offset >= 0 && o.error === undefined).map((o) => [o.partition, o.offset]));
  };
  try {
    opts.log(`  failover ${system}: producing ${n} numbered records of ${recordSize} B into ${topic} (${P} partitions) ...`);
    await produceNumbered(c.source, topic, P, n, recordSize);
    const highs = await onSource.perPartition(topic, P);
    if (highs.reduce((a, b) => a + b, 0) !== n) throw new Error(`the source topic holds ${highs.reduce((a, b) => a + b, 0)} records, not ${n}`);
    // the group exists before the system starts, as a deployment's groups do long before a switch
    await sourceAdmin.alterConsumerGroupOffsets(group, highs.map((_, partition) => ({ topic, partition, offset: 0 })), 10_000);
    const started = await startSystem(system, c, work, topic, P, codec, n, 1000, c.source, 'fo', group);
    child = started.child;
    ctx.running.add(child);
    targetTopic = started.targetTopic;
    const tt = targetTopic;
    await until(ctx, `${system}: first records on the target`, async () => (await onTarget.total(tt, P)) > 0, 180_000, child);
    // MirrorMaker 2: its checkpoint pipeline runs (offset 0 of the group is synced for some partition) before the
    // switch, so the switch measures checkpointing, not MirrorMaker 2 starting up. Not every partition: MirrorMaker 2
    // keeps at most 10 offset syncs in flight and replaces the waiting ones, so on a backlog many partitions get
    // their first sync well after offset 0, and offset 0 there cannot be translated (too old for the sync store).
    if (mm2) await until(ctx, `${system}: the group's first offsets synced to the target`, async () => (await targetOffsets()).size > 0, 180_000, child);
    if (mm2) opts.log(`  failover ${system}: checkpoints flow (${(await targetOffsets()).size} of ${P} partitions of the group synced at offset 0)`);
    const readOnSource = new Uint8Array(n);
    const readBeforeSwitch = await readAsGroup(c.source, group, topic, P, {
      limit: (p) => Math.floor(highs[p]! * FAILOVER_READ_FRACTION),
      end: (p) => highs[p]!,
      idleMs: 30_000,
      onRecord: (m) => {
        const i = recordNumber(m);
        if (i >= 0 && i < n) readOnSource[i] = 1;
      },
    });
    const switchAt = performance.now();
    opts.log(`  failover ${system}: the group read ${readBeforeSwitch} records on the source and stopped; switching ...`);
    let offsetsReadySec: number;
    const notes: string[] = [];
    if (!mm2) {
      const report = await failover(loadConfig(started.config), { group, from: started.alias, to: 'target', dryRun: false, timeoutMs: 120_000 });
      offsetsReadySec = (performance.now() - switchAt) / 1000;
      const inexact = report.rows.filter((r) => r.kind !== 'exact').length;
      if (inexact > 0) notes.push(`${inexact} partition(s) not exact (${report.rows.map((r) => r.kind).join(',')})`);
    } else {
      // ready: every partition's offset moved past 0, everything is replicated, and the offsets stayed the same for
      // five sync intervals; the time is that of the last change
      const stableMs = 5 * MM2_CHECKPOINT_INTERVAL_SEC * 1000;
      const timeoutMs = Math.max(180_000, (n / 2000) * 1000);
      let last = '';
      let lastChange = performance.now();
      for (;;) {
        const got = await targetOffsets();
        const key = [...got.entries()].sort((a, b) => a[0] - b[0]).join(';');
        const now = performance.now();
        if (key !== last) {
          last = key;
          lastChange = now;
        }
        const moved = highs.every((h, p) => Math.floor(h * FAILOVER_READ_FRACTION) === 0 || (got.get(p) ?? 0) > 0);
        if (moved && now - lastChange >= stableMs && (await onTarget.total(tt, P)) >= n) break;
        if (now - switchAt > timeoutMs) {
          notes.push(`offsets not settled within ${Math.round(timeoutMs / 1000)} s (${got.size} of ${P} partitions synced)`);
          break;
        }
        ctx.checkAborted();
        if (exited(child)) throw new Error('exited while syncing offsets');
        await new Promise((r) => setTimeout(r, 200));
      }
      offsetsReadySec = (lastChange - switchAt) / 1000;
    }
    await until(ctx, `${system}: all ${n} records replicated`, async () => (await onTarget.total(tt, P)) >= n, Math.max(180_000, (n / 2000) * 1000), child);
    await stopChild(child);
    ctx.running.delete(child);
    const targetHighs = await onTarget.perPartition(tt, P);
    const readOnTarget = new Uint8Array(n);
    let duplicates = 0;
    const readAfterSwitch = await readAsGroup(c.target, group, tt, P, {
      limit: () => Infinity,
      end: (p) => targetHighs[p]!,
      idleMs: 15_000,
      onRecord: (m) => {
        const i = recordNumber(m);
        if (i < 0 || i >= n) return;
        if (readOnSource[i] || readOnTarget[i]) duplicates++;
        readOnTarget[i] = 1;
      },
    });
    let missing = 0;
    for (let i = 0; i < n; i++) if (!readOnSource[i] && !readOnTarget[i]) missing++;
    return {
      system, records: n, seconds: Number(offsetsReadySec.toFixed(2)), recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0, peakRssMB: 0,
      readBeforeSwitch, readAfterSwitch, duplicates, missing, offsetsReadySec: Number(offsetsReadySec.toFixed(2)),
      ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    };
  } finally {
    if (child) {
      await stopChild(child);
      ctx.running.delete(child);
    }
    sourceAdmin.close();
    targetAdmin.close();
    await onSource.close();
    await onTarget.close();
    if (targetTopic) await deleteTopic(c.target, targetTopic);
    await deleteTopic(c.source, topic);
  }
}


/**
 * Steady production at `rate` for `durationSec` into a fresh source topic while `system` replicates it; a consumer
 * on the target records, for every record, the time from its source CreateTime until it was read (HDR histogram).
 */
async function latencyRun(system: SystemName, c: Clusters, work: string, o: { rate: number; durationSec: number; warmupSec: number; partitions: number; recordSize: number; codec: string; log: (l: string) => void; progress?: BenchOptions['progress']; track: (ch: ChildProcess) => void }): Promise<SystemResult> {
  const topic = `lat-${system}-${Date.now().toString(36)}`;
  await createTopic(c.source, topic, o.partitions);
  const READY = 200; // records that prove the replicator is up before the clock starts
  const warm = o.rate * o.warmupSec; // then production at the rate, not measured, so start-up effects wash out
  const total = READY + warm + o.rate * o.durationSec;
  const { child, targetTopic } = await startSystem(system, c, work, topic, o.partitions, o.codec, total, 50);
  o.track(child);
  const rss = new ProcSampler(child.pid!);
  // the measuring clients must not add latency of their own: no linger to speak of, no Nagle
  const producer = new Kafka.Producer({ 'bootstrap.servers': c.source, 'linger.ms': 1, 'socket.nagle.disable': true, 'queue.buffering.max.messages': 1000000, log_level: 0 } as Kafka.ProducerGlobalConfig);
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
    const cons = new Kafka.KafkaConsumer({ 'bootstrap.servers': c.target, 'group.id': `lat-${Date.now()}`, 'enable.auto.commit': false, 'fetch.wait.max.ms': 5, 'socket.nagle.disable': true, log_level: 0 }, {});
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

/**
 * `rest`: a real deployment (ZooKeeper, one `strait controller`, one `strait worker`, a 16-partition route) and
 * autocannon against the controller's REST API: requests/s and latency percentiles per endpoint.
 */
async function restScenario(ctx: RunContext): Promise<ScenarioResult> {
  const { opts, c, work } = ctx;
  const topic = `rest-${Date.now().toString(36)}`;
  await createTopic(c.source, topic, 16);
  const cfg = join(work, 'rest.yaml');
  writeFileSync(cfg, stringify({
    deployment: `bench-rest-${Date.now().toString(36)}`,
    clusters: { a: { bootstrap: c.source }, b: { bootstrap: c.target } },
    routes: [{ name: 'bench', source: 'a', target: 'b', topics: { include: [topic] } }],
    store: { type: 'zookeeper', connect: c.zookeeper!, sessionTimeoutMs: 6000, auth: c.zookeeperAuth },
    controller: { refreshTopicsIntervalMs: 2000, rest: { port: 0 } },
    metrics: { port: 0 },
    worker: { threads: 1 },
    log: { level: 'info' },
  }));
  const start = (role: string) => {
    const ch = spawn(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), role, '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    ctx.running.add(ch);
    return ch;
  };
  const controller = start('controller');
  const worker = start('worker');
  const scenario: ScenarioResult = { scenario: 'rest', recordSize: 0, codec: 'none', partitions: 16, records: 0, results: [] };
  try {
    const url = await new Promise<string>((res, rej) => {
      let out = '';
      const timer = setTimeout(() => rej(new Error(`the controller did not log its REST address within 60 s: ${out.slice(-500)}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /"rest":"(http:\/\/[^"]+)"/.exec(out);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      };
      controller.stdout!.on('data', onData);
      controller.stderr!.on('data', onData);
    });
    for (const ch of [controller, worker]) {
      ch.stdout!.resume();
      ch.stderr!.resume();
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = (await (await fetch(`${url}/v1/status`)).json()) as { partitions?: { assigned: number } | null };
      if (s.partitions?.assigned === 16) break;
      if (Date.now() > deadline) throw new Error('the controller did not assign the 16 partitions within 60 s');
      await new Promise((r) => setTimeout(r, 300));
    }
    const autocannon = require('autocannon') as (o: Record<string, unknown>) => Promise<{ requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number; timeouts: number; duration: number }>;
    for (const path of ['/v1/health', '/v1/status', '/v1/assignments']) {
      ctx.checkAborted();
      const rss = new ProcSampler(controller.pid!);
      const r = await autocannon({ url: `${url}${path}`, connections: 10, duration: opts.durationSec ?? 10 });
      const rps = Math.round(r.requests.average);
      scenario.results.push({
        system: `strait controller GET ${path}`,
        records: 0, seconds: r.duration, recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0,
        peakRssMB: Math.round(rss.stop() / 1e6),
        requestsPerSec: rps, p50Ms: r.latency.p50, p99Ms: r.latency.p99, errors: r.non2xx + r.errors + r.timeouts,
      });
      opts.log(`  rest GET ${path}: ${rps} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`);
    }
  } finally {
    for (const ch of [worker, controller]) {
      await stopChild(ch);
      ctx.running.delete(ch);
    }
    await deleteTopic(c.source, topic);
  }
  return scenario;
}

/** Replicates the preloaded backlog of `topic` with each system in turn (throughput and wan scenarios). */
async function replicateBacklog(ctx: RunContext, scenario: ScenarioResult, systems: SystemName[], topic: string, source: string, tag: string): Promise<void> {
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
      const r = await measure(system, child, wm, targetTopic, opts.partitions, opts.records, scenario.recordSize, timeoutMs, opts.progress && ((l, d, t) => opts.progress!(`${scenario.scenario} ${l}`, d, t)));
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

interface RunContext {
  opts: BenchOptions;
  c: Clusters;
  work: string;
  running: Set<ChildProcess>;
  checkAborted: () => void;
}

/** Fills `topic` with N records through Kafka's ProducerPerformance (acks=1), reporting progress from the watermarks. */
async function preload(ctx: RunContext, topic: string, recordSize: number, codec: string): Promise<void> {
  const { opts, c, work } = ctx;
  opts.log(`preloading ${opts.records} records of ${recordSize} B (${codec}) into ${topic} (${opts.partitions} partitions) ...`);
  let stderr = '';
  const child = spawnKafkaClass(c.runtime, 'org.apache.kafka.tools.ProducerPerformance', [
    '--topic', topic, '--num-records', String(opts.records), '--record-size', String(recordSize), '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${c.source}`, 'acks=1', 'linger.ms=10', 'batch.size=1048576', `compression.type=${codec}`,
  ], { heap: '1g', log4j: log4jQuiet(work), stdio: ['ignore', 'ignore', 'pipe'] });
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

export async function runBench(opts: BenchOptions): Promise<ScenarioResult[]> {
  const out = resolve(opts.out);
  const work = join(out, 'work');
  mkdirSync(work, { recursive: true });
  const c = await clusters(opts);
  const results: ScenarioResult[] = [];
  let aborted = false;
  const running = new Set<ChildProcess>();
  const ctx: RunContext = {
    opts, c, work, running,
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
  const wants = (s: string) => opts.scenarios.includes(s);
  try {
    for (const recordSize of opts.recordSizes) {
      for (const codec of opts.codecs) {
        const topic = `bench-${recordSize}b-${codec}-${Date.now().toString(36)}`;
        const backlog = wants('throughput') || wants('ceiling') || wants('wan');
        await createTopic(c.source, topic, opts.partitions);
        try {
          if (backlog) await preload(ctx, topic, recordSize, codec);
          const scenario: ScenarioResult = { scenario: 'throughput', recordSize, codec, partitions: opts.partitions, records: opts.records, results: [] };
          if (wants('throughput')) await replicateBacklog(ctx, scenario, opts.systems.filter((s) => s !== 'strait-wan'), topic, c.source, '');
          ctx.checkAborted();
          if (wants('ceiling')) scenario.results.push(...(await ceilingResults(c, work, topic, { records: opts.records, recordSize, partitions: opts.partitions, codec })));
          if (wants('throughput') || wants('ceiling')) results.push(scenario);
          if (wants('wan')) {
            const rtt = opts.rttMs ?? 50;
            const wan: ScenarioResult = { scenario: `wan (+${rtt} ms round trip to the source)`, recordSize, codec, partitions: opts.partitions, records: opts.records, results: [] };
            // the delay proxy stands where the source broker's WAN listener is advertised; its queue bound (8 MiB
            // per direction and connection) plays the part of the TCP window a real long link has
            const proxy = await startTcpProxy(c.sourceWan!.upstream, { port: c.sourceWan!.port, delayMs: rtt / 2, maxQueuedBytes: 8 * 1024 * 1024 });
            try {
              const systems = [...new Set<SystemName>(['strait', 'strait-wan', ...opts.systems.filter((s) => s.startsWith('mm2'))])];
              await replicateBacklog(ctx, wan, systems, topic, c.sourceWan!.bootstrap, 'wan');
            } finally {
              await proxy.close();
            }
            results.push(wan);
          }
        } finally {
          await deleteTopic(c.source, topic);
        }
        if (wants('latency')) {
          const straitMax = results.find((r) => r.scenario === 'throughput' && r.recordSize === recordSize && r.codec === codec)?.results.find((r) => r.system === 'strait')?.recordsPerSec;
          const rate = opts.rate ?? Math.min(100_000, straitMax ? Math.round(straitMax / 2) : 5000);
          const durationSec = opts.durationSec ?? 20;
          const warmupSec = opts.warmupSec ?? 5;
          const lat: ScenarioResult = { scenario: `latency at ${rate} records/s for ${durationSec} s (after ${warmupSec} s warm-up)`, recordSize, codec, partitions: opts.partitions, records: rate * durationSec, results: [] };
          for (const system of opts.systems) {
            ctx.checkAborted();
            opts.log(`  latency ${system}: ${rate} records/s, ${warmupSec} s warm-up + ${durationSec} s measured ...`);
            try {
              const r = await latencyRun(system, c, work, { rate, durationSec, warmupSec, partitions: opts.partitions, recordSize, codec, log: opts.log, track: (ch) => running.add(ch), ...(opts.progress ? { progress: opts.progress } : {}) });
              lat.results.push(r);
              opts.log(`  latency ${system}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, p99.9 ${r.p999Ms} ms`);
            } catch (e) {
              ctx.checkAborted();
              lat.results.push({ system, records: 0, seconds: 0, recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0, peakRssMB: 0, note: (e as Error).message });
              opts.log(`  latency ${system}: FAILED ${(e as Error).message}`);
            }
          }
          results.push(lat);
        }
      }
    }
    if (wants('failover')) {
      ctx.checkAborted();
      results.push(await failoverScenario(ctx));
    }
    if (wants('rest')) {
      ctx.checkAborted();
      results.push(await restScenario(ctx));
    }
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
    for (const ch of running) await stopChild(ch, 5000);
    await c.stop();
  }
  await writeResults(out, opts, results);
  return results;
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a && b ? `${(a / b).toFixed(2)}x` : 'n/a';
}

export function markdown(opts: BenchOptions, results: ScenarioResult[]): string {
  const lines = [
    `Machine: ${machineLine()}; brokers: local single-node KRaft Kafka (harness), MirrorMaker 2 tasks.max=${MM2_TASKS} (default) / ${MM2_TASKS * 2} (tuned).`,
    `Command: \`${commandLine(opts)}\``,
    '',
  ];
  for (const s of results) {
    if (s.scenario === 'failover') {
      lines.push(`### failover: ${s.records} records x ${s.recordSize} B per system, ${s.partitions} partitions; one consumer group reads ${FAILOVER_READ_FRACTION * 100}% of every partition on the source, then switches to the target`, '');
      lines.push('| system | records | read before switch | read after switch | duplicates | duplicates % of read before | missing | offsets ready s | note |', '|---|---:|---:|---:|---:|---:|---:|---:|---|');
      for (const r of s.results) {
        const pct = r.readBeforeSwitch ? `${((100 * (r.duplicates ?? 0)) / r.readBeforeSwitch).toFixed(2)}%` : '-';
        lines.push(`| ${r.system} | ${r.records} | ${r.readBeforeSwitch ?? '-'} | ${r.readAfterSwitch ?? '-'} | ${r.duplicates ?? '-'} | ${pct} | ${r.missing ?? '-'} | ${r.offsetsReadySec ?? '-'} | ${r.note ?? ''} |`);
      }
      lines.push(
        '',
        'strait: `strait failover` (live translation from the offset map) run at the switch; offsets ready = when it returned.',
        `MirrorMaker 2: ${MM2_FAILOVER_SETTINGS}; offsets ready = the last change of the group's offsets on the target (synced from checkpoints), once every partition moved and they stayed put for ${5 * MM2_CHECKPOINT_INTERVAL_SEC} s.`,
        '',
      );
      continue;
    }
    if (s.scenario === 'rest') {
      lines.push('### rest: autocannon, 10 connections, against the leading controller (one worker, 16 partitions)', '');
      lines.push('| endpoint | requests/s | p50 ms | p99 ms | errors | controller peak RSS MB |', '|---|---:|---:|---:|---:|---:|');
      for (const r of s.results) lines.push(`| ${r.system} | ${r.requestsPerSec ?? 0} | ${r.p50Ms ?? '-'} | ${r.p99Ms ?? '-'} | ${r.errors ?? 0} | ${r.peakRssMB || '-'} |`);
      lines.push('');
      continue;
    }
    if (s.scenario.startsWith('latency')) {
      lines.push(`### ${s.scenario}: ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec} (source CreateTime -> read on the target)`, '');
      lines.push('| system | p50 ms | p99 ms | p99.9 ms | peak RSS MB | note |', '|---|---:|---:|---:|---:|---|');
      for (const r of s.results) lines.push(`| ${r.system} | ${r.p50Ms ?? '-'} | ${r.p99Ms ?? '-'} | ${r.p999Ms ?? '-'} | ${r.peakRssMB || '-'} | ${r.note ?? ''} |`);
      lines.push('');
      continue;
    }
    lines.push(`### ${s.scenario}: ${s.records} records x ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec}`, '');
    lines.push('| system | records/s | MB/s | CPU s/GB | peak RSS MB | note |', '|---|---:|---:|---:|---:|---|');
    for (const r of s.results) lines.push(`| ${r.system} | ${r.recordsPerSec} | ${r.mbPerSec} | ${r.cpuSecondsPerGB || '-'} | ${r.peakRssMB || '-'} | ${r.note ?? ''} |`);
    const get = (n: string) => s.results.find((r) => r.system === n)?.recordsPerSec;
    if (s.scenario.startsWith('wan')) {
      lines.push('', `strait-wan / MirrorMaker 2 default: ${ratio(get('strait-wan'), get('mm2-default'))}; strait-wan / MirrorMaker 2 tuned: ${ratio(get('strait-wan'), get('mm2-tuned'))}; strait-wan / strait (default profile): ${ratio(get('strait-wan'), get('strait'))}`, '');
      continue;
    }
    const ceiling = Math.min(...s.results.filter((r) => r.system.startsWith('ceiling')).map((r) => r.recordsPerSec).filter((x) => x > 0));
    lines.push(
      '',
      `strait / MirrorMaker 2 default: ${ratio(get('strait'), get('mm2-default'))}; strait / MirrorMaker 2 tuned: ${ratio(get('strait'), get('mm2-tuned'))}; ` +
        `strait / JS loop: ${ratio(get('strait'), get('js-baseline'))}; strait / ceiling: ${ratio(get('strait'), Number.isFinite(ceiling) ? ceiling : undefined)}`,
      '',
    );
  }
  return lines.join('\n');
}

function machineLine(): string {
  return `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM`;
}

function commandLine(opts: BenchOptions): string {
  const failover = opts.scenarios.includes('failover') ? ` --failover-records ${opts.failoverRecords ?? 200_000}` : '';
  return `strait bench ${opts.scenarios.join(' ')} --records ${opts.records} --record-size ${opts.recordSizes.join(',')} --partitions ${opts.partitions} --codec ${opts.codecs.join(',')} --systems ${opts.systems.join(',')}${failover}`;
}

async function writeResults(out: string, opts: BenchOptions, results: ScenarioResult[]): Promise<void> {
  writeFileSync(join(out, 'results.json'), JSON.stringify({ at: new Date().toISOString(), machine: { cores: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30) }, options: { ...opts, log: undefined, progress: undefined }, results }, null, 2));
  writeFileSync(join(out, 'results.md'), markdown(opts, results));
  const { svg, html } = await renderCharts(results.filter((r) => r.scenario !== 'rest' && r.scenario !== 'failover'), { title: 'strait bench', machine: machineLine(), command: commandLine(opts) });
  writeFileSync(join(out, 'chart.svg'), svg);
  writeFileSync(join(out, 'report.html'), html);
}
