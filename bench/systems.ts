/**
 * The systems the bench compares and how each replicator is started for a topic: strait (`strait run` with a profile),
 * the JavaScript loop (js-loop.ts) and MirrorMaker 2 in dedicated mode (default and tuned), each with its own config
 * in the work folder; and how each is stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../shared/config';
import { forwarderSettings } from '../shared/kafka/client-settings';
import type { Clusters } from './clusters';
import { projectRoot, spawnKafkaClass } from './harness/kafka-runtime';
import { freePort } from './harness/ports';
import { createTopic } from './topics';

export const SYSTEMS = ['strait', 'strait-lan', 'strait-wan', 'strait-eos', 'js-baseline', 'mm2-default', 'mm2-tuned', 'mm2-wan', 'mm2-eos'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/**
 * Systems that write the target in transactions (strait `delivery: exactly-once`; MirrorMaker 2 tuned with
 * `exactly.once.source.support = enabled`, KIP-618). Their commit markers take target offsets, so the end offsets the
 * throughput scenario watches overcount their records: they run in the latency scenario only, read read_committed.
 */
export const TRANSACTIONAL_SYSTEMS: readonly SystemName[] = ['strait-eos', 'mm2-eos'];

export const MM2_TASKS = 2; // one per core on the 2-core bench machine

export function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
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

function straitConfig(
  dir: string,
  alias: string,
  c: Clusters,
  source: string,
  topic: string,
  profile: string,
  codec: string,
  delivery: 'at-least-once' | 'exactly-once',
  transactionIntervalMs?: number,
  threads?: number,
): string {
  const file = join(dir, `${alias}.yaml`);
  writeFileSync(
    file,
    stringify({
      deployment: `bench-${alias}`,
      clusters: { [alias]: { bootstrap: source }, target: { bootstrap: c.target } },
      routes: [
        {
          name: alias,
          source: alias,
          target: 'target',
          topics: { include: [topic] },
          profile,
          compression: codec === 'none' ? 'none' : codec,
          syncTopicConfigs: false,
          delivery,
          ...(delivery === 'exactly-once' && transactionIntervalMs !== undefined ? { transactionIntervalMs } : {}),
        },
      ],
      store: { type: 'embedded', path: join(dir, `${alias}-store`) },
      ...(threads !== undefined ? { worker: { threads } } : {}),
      metrics: { enabled: false },
      log: { level: 'warn' },
    }),
  );
  return file;
}

/** MirrorMaker 2 checkpoint settings of the failover scenario: stated in the results next to the numbers */
export const MM2_CHECKPOINT_INTERVAL_SEC = 1;
export const MM2_FAILOVER_SETTINGS = `emit.checkpoints.enabled=true, sync.group.offsets.enabled=true, emit.checkpoints.interval.seconds=${MM2_CHECKPOINT_INTERVAL_SEC}, sync.group.offsets.interval.seconds=${MM2_CHECKPOINT_INTERVAL_SEC}, refresh.groups.interval.seconds=${MM2_CHECKPOINT_INTERVAL_SEC}, groups=<the bench group>, offset.lag.max=100 (default)`;

function mm2Config(
  dir: string,
  alias: string,
  c: Clusters,
  source: string,
  topic: string,
  tuned: boolean,
  codec: string,
  group?: string,
  eosRestPort?: number,
  /** mm2-wan: the tuned config, and the source consumer's socket buffer left to the OS (its autotuning) */
  wan = false,
): { file: string; consumer: Record<string, string | number> } {
  const file = join(dir, `${alias}.properties`);
  // the consumer of the source cluster (`<alias>.consumer.*`); MirrorMaker 2 adds only enable.auto.commit=false
  const consumer: Record<string, string | number> = { 'auto.offset.reset': 'earliest' };
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
    // Kafka's own advice (KIP-898): find the connectors through their ServiceLoader manifests, not by scanning every jar
    // on the classpath — it starts MirrorMaker 2 in seconds instead of a minute or more on a loaded machine (on 4.3.1
    // the scan alone outlasted the bench's 180 s wait once). Start-up is not timed; the replication rate is unchanged.
    'plugin.discovery = service_load',
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
    );
    Object.assign(consumer, {
      'max.poll.records': 5000,
      'fetch.max.bytes': 104857600,
      'max.partition.fetch.bytes': 10485760,
      'fetch.min.bytes': 65536,
    });
  }
  // what a platform engineer sets for a long link: the receive buffer (64 KiB by default, which bounds a connection to
  // 64 KiB per round trip) left to the kernel, which autotunes it (-1: the OS default)
  if (wan) consumer['receive.buffer.bytes'] = -1;
  if (eosRestPort !== undefined) {
    // exactly-once in a dedicated MirrorMaker 2 (Kafka 3.5+, KIP-618): enabled for the cluster written to, which needs
    // the internal REST server of KIP-710 (a port of its own on the loopback)
    lines.push('target.exactly.once.source.support = enabled', 'dedicated.mode.enable.internal.rest = true', `listeners = http://127.0.0.1:${eosRestPort}`);
    consumer['isolation.level'] = 'read_committed';
  }
  lines.push(...Object.entries(consumer).map(([k, v]) => `${alias}.consumer.${k} = ${v}`));
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { file, consumer };
}

/** The Java consumer's `receive.buffer.bytes` when not set (Kafka's ConsumerConfig) */
export const JAVA_RECEIVE_BUFFER_DEFAULT = 65536;

/**
 * The socket receive buffer a system's consumer of the source asks for, which bounds its TCP window on a long link:
 * the property, its value (what the system's config gives it, else its client's default) and whether that is the
 * default. 0 (librdkafka) or -1 (Java): the OS chooses, i.e. the kernel's autotuning.
 */
export interface ReceiveBuffer {
  property: string;
  bytes: number;
  byDefault: boolean;
}

function receiveBuffer(property: string, given: string | number | boolean | undefined, clientDefault: number): ReceiveBuffer {
  return given === undefined ? { property, bytes: clientDefault, byDefault: true } : { property, bytes: Number(given), byDefault: false };
}

export function log4jQuiet(dir: string): string {
  const file = join(dir, 'log4j-quiet.properties');
  writeFileSync(
    file,
    'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n',
  );
  return file;
}

/** A replicator started for a topic: its process, the topic it writes, its config and alias, its receive buffer. */
export interface StartedSystem {
  child: ChildProcess;
  targetTopic: string;
  /** strait: its YAML; MirrorMaker 2: its properties; js-baseline: none ('') */
  config: string;
  alias: string;
  sourceReceiveBuffer: ReceiveBuffer;
}

/** Starts one replicator for `topic`; returns the child and the topic it writes on the target. */
export async function startSystem(
  system: SystemName,
  c: Clusters,
  work: string,
  topic: string,
  partitions: number,
  codec: string,
  records: number,
  jsBatch = 1000,
  source = c.source,
  tag = '',
  group?: string,
  /** strait-eos only: the route's transactionIntervalMs (strait's default when absent) */
  transactionIntervalMs?: number,
  /** strait systems: worker.threads (strait's default, one per core, when absent) */
  straitThreads?: number,
): Promise<StartedSystem> {
  // the alias names the config, the store, strait's deployment and MirrorMaker 2's source cluster, hence where each
  // keeps its committed offsets: every scenario gets its own, so one scenario never resumes from another's offsets
  const alias = `${tag}${system.replace(/[^a-z0-9]/g, '')}`;
  if (system.startsWith('strait')) {
    const profile = system === 'strait' || system === 'strait-eos' ? 'default' : system.slice('strait-'.length);
    const cfg = straitConfig(
      work,
      alias,
      c,
      source,
      topic,
      profile,
      codec,
      system === 'strait-eos' ? 'exactly-once' : 'at-least-once',
      transactionIntervalMs,
      straitThreads,
    );
    // what its forwarders' consumers get: the profile, then the config's cluster and route properties (strait's own code)
    const config = loadConfig(cfg);
    const consumer = forwarderSettings(config, config.routes[0]!, 'bench').consumer;
    const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), 'run', '-c', cfg, '--no-status-line'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return {
      child,
      targetTopic: `${alias}.${topic}`,
      config: cfg,
      alias,
      sourceReceiveBuffer: receiveBuffer('socket.receive.buffer.bytes', consumer['socket.receive.buffer.bytes'], 0),
    };
  }
  if (system === 'js-baseline') {
    const targetTopic = `${tag}js.${topic}`; // the tag keeps each measurement's topic apart
    await createTopic(c.target, targetTopic, partitions, { 'compression.type': codec === 'none' ? 'producer' : codec });
    const child = spawn(
      process.execPath,
      [join(projectRoot(), 'dist', 'bench', 'js-loop.js'), source, c.target, topic, targetTopic, String(partitions), String(records), String(jsBatch)],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    // js-loop.ts gives its consumer no socket setting: librdkafka's default
    return { child, targetTopic, config: '', alias, sourceReceiveBuffer: receiveBuffer('socket.receive.buffer.bytes', undefined, 0) };
  }
  const eos = system === 'mm2-eos';
  const { file: cfg, consumer } = mm2Config(
    work,
    alias,
    c,
    source,
    topic,
    system !== 'mm2-default',
    codec,
    group,
    eos ? await freePort() : undefined,
    system === 'mm2-wan',
  );
  const logFd = openSync(join(work, `${alias}.log`), 'w');
  const child = spawnKafkaClass(c.runtime, 'org.apache.kafka.connect.mirror.MirrorMaker', [cfg], {
    // tuned: 4 tasks with 128 MiB producer buffers and 100 MiB fetches outgrow 1 GiB on a backlog of 1.6 M x 1 KiB
    // (OutOfMemoryError seen); a user who tunes those sizes gives the heap room for them. mm2-wan: the same sizes
    // through an autotuned window outgrew 2 GiB at +150 ms (OutOfMemoryError after 1.7 M of 2.9 M records)
    heap: system === 'mm2-default' ? '1g' : system === 'mm2-wan' ? '4g' : '2g',
    log4j: log4jQuiet(work),
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  return {
    child,
    targetTopic: `${alias}.${topic}`,
    config: cfg,
    alias,
    sourceReceiveBuffer: receiveBuffer('receive.buffer.bytes', consumer['receive.buffer.bytes'], JAVA_RECEIVE_BUFFER_DEFAULT),
  };
}
