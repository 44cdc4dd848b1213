/**
 * `strait demo` (npm run demo): two local clusters from the harness, a small producer writing to a few topics on
 * cluster a, and `strait run` mirroring them to cluster b, with the live counts of both sides every few seconds.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Kafka from 'node-rdkafka';
import { stringify } from 'yaml';
import { projectRoot } from './kafka-runtime';
import * as dev from './local-cluster';

const TOPICS: Record<string, number> = { 'demo.orders': 4, 'demo.payments': 2, 'demo.clicks': 3 };

async function connect<T extends Kafka.Producer>(client: T): Promise<T> {
  await new Promise<void>((res, rej) => client.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  return client;
}

async function counts(client: Kafka.Producer, topics: string[]): Promise<number> {
  let n = 0;
  for (const t of topics) {
    for (let p = 0; p < (TOPICS[t.replace(/^a\./, '')] ?? 0); p++) {
      n += await new Promise<number>((res) => client.queryWatermarkOffsets(t, p, 2000, (e, o) => res(e ? 0 : o.highOffset)));
    }
  }
  return n;
}

export async function runDemo(opts: { dir: string; durationSec?: number; rate?: number }): Promise<void> {
  const say = (l: string) => process.stdout.write(`${l}\n`);
  const existing = dev.readState(opts.dir);
  const state = existing && dev.runningProcesses(existing).length >= 2 ? existing : await dev.up({ clusters: 2, dir: opts.dir, log: say });
  const a = state.clusters.a!.bootstrap;
  const b = state.clusters.b!.bootstrap;
  say(`source cluster a: ${a}\ntarget cluster b: ${b}`);

  const admin = Kafka.AdminClient.create({ 'bootstrap.servers': a, log_level: 0 });
  for (const [topic, partitions] of Object.entries(TOPICS)) {
    await new Promise<void>((res, rej) =>
      admin.createTopic({ topic, num_partitions: partitions, replication_factor: 1 }, 10_000, (e) => (e && e.code !== 36 ? rej(e) : res())),
    );
  }
  admin.disconnect();

  const dir = resolve(opts.dir, 'demo');
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'strait.yaml');
  writeFileSync(
    configFile,
    stringify({
      deployment: 'demo',
      clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
      routes: [{ name: 'a-to-b', source: 'a', target: 'b', topics: { include: ['demo\\..*'] }, naming: { policy: 'prefix' } }],
      // one store per source cluster instance: offsets committed against an earlier cluster mean nothing here
      store: { type: 'embedded', path: join(dir, `store-${state.clusters.a!.clusterId}`) },
      controller: { refreshTopicsIntervalMs: 2000 },
      metrics: { port: 0 },
      log: { level: 'warn' },
    }),
  );
  say(`config: ${configFile}\nstarting: strait run --config ${configFile}   (Ctrl-C stops the demo; clusters keep running until 'strait dev down')`);

  const producer = await connect(new Kafka.Producer({ 'bootstrap.servers': a, 'linger.ms': 20, log_level: 0 }));
  producer.setPollInterval(50);
  const rate = opts.rate ?? 2000;
  let produced = 0;
  const names = Object.keys(TOPICS);
  const produceTimer = setInterval(() => {
    for (let i = 0; i < rate / 10; i++) {
      const topic = names[produced % names.length]!;
      try {
        producer.produce(topic, null, Buffer.from(JSON.stringify({ n: produced, at: Date.now() })), Buffer.from(`key-${produced % 100}`));
        produced++;
      } catch {
        break; // local queue full: the next tick tries again
      }
    }
  }, 100);

  const strait = spawn(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), 'run', '--config', configFile, '--no-status-line'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const watcher = await connect(new Kafka.Producer({ 'bootstrap.servers': b, log_level: 0 }));
  const source = await connect(new Kafka.Producer({ 'bootstrap.servers': a, log_level: 0 }));
  const started = Date.now();
  const show = setInterval(() => {
    void (async () => {
      const [src, dst] = await Promise.all([counts(source, names), counts(watcher, names.map((n) => `a.${n}`))]);
      say(`[${Math.round((Date.now() - started) / 1000)}s] source a: ${src} records in ${names.join(', ')}  ->  target b: ${dst} records in a.demo.*  (behind by ${Math.max(0, src - dst)})`);
    })();
  }, 2000);

  await new Promise<void>((res) => {
    const stop = () => res();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    strait.once('exit', stop);
    if (opts.durationSec !== undefined) setTimeout(stop, opts.durationSec * 1000);
  });
  clearInterval(produceTimer);
  await new Promise<void>((res) => producer.flush(10_000, () => res()));
  clearInterval(show);
  // let the last records cross (bounded: a stuck demo still ends)
  let [src, dst] = [0, -1];
  for (const until = Date.now() + 30_000; Date.now() < until && strait.exitCode === null; ) {
    [src, dst] = await Promise.all([counts(source, names), counts(watcher, names.map((n) => `a.${n}`))]);
    if (dst >= src) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  say(`final: source a ${src} records, target b ${dst} records`);
  if (strait.exitCode === null) strait.kill('SIGTERM');
  await new Promise<void>((res) => (strait.exitCode !== null ? res() : strait.once('exit', () => res())));
  for (const c of [producer, watcher, source]) await new Promise<void>((res) => c.disconnect(() => res()));
  say("demo stopped; the clusters still run: 'node dist/bin/strait.js dev down' stops them");
}
