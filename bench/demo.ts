/**
 * `strait demo` (npm run demo): two local clusters from the harness, a small producer writing to a few topics on
 * cluster a, and `strait run` mirroring them to cluster b, with the live counts of both sides every few seconds.
 * `--distributed`: the same through a fleet instead — one ZooKeeper, two `strait controller`s, three `strait worker`s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Kafka from 'node-rdkafka';
import { stringify } from 'yaml';
import { disconnectClient } from '../shared/kafka/bounded-call';
import { projectRoot } from './harness/kafka-runtime';
import * as dev from './harness/local-cluster';

/** topics (after the `demo.` or, for the fleet, `fleet.` prefix) and their partitions */
const TOPICS: Record<string, number> = { orders: 4, payments: 2, clicks: 3 };

async function connect<T extends Kafka.Producer>(client: T): Promise<T> {
  await new Promise<void>((res, rej) => client.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  return client;
}

async function counts(client: Kafka.Producer, topics: string[]): Promise<number> {
  let n = 0;
  for (const t of topics) {
    for (let p = 0; p < (TOPICS[t.slice(t.lastIndexOf('.') + 1)] ?? 0); p++) {
      n += await new Promise<number>((res) => client.queryWatermarkOffsets(t, p, 2000, (e, o) => res(e ? 0 : o.highOffset)));
    }
  }
  return n;
}

interface Fleet {
  /** every process started, stopped by pid at the end */
  children: ChildProcess[];
  /** the controllers' REST API base URLs */
  rest: string[];
  zookeeper?: dev.ZooKeeperState;
}

/** Reads the REST URL a controller logs (`"rest":"http://..."`) from its log file. */
async function restUrlOf(logFile: string, child: ChildProcess): Promise<string> {
  for (const until = Date.now() + 60_000; Date.now() < until && child.exitCode === null;) {
    const m = /"rest":"(http:\/\/[^"]+)"/.exec(readFileSync(logFile, 'utf8'));
    if (m) return m[1]!;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`controller did not come up; see ${logFile}`);
}

/** One ZooKeeper (the harness's, or one of the demo's own), two controllers and three workers. */
async function startFleet(state: dev.DevState, dir: string, base: Record<string, unknown>, say: (l: string) => void): Promise<Fleet> {
  const fleet: Fleet = { children: [], rest: [] };
  let zk = state.zookeeper && dev.runningProcesses(state).some((p) => p.startsWith('zookeeper')) ? state.zookeeper : undefined;
  if (!zk) {
    zk = fleet.zookeeper = await dev.startOwnZooKeeper(dev.runtimeOf(state), join(dir, 'zookeeper'));
    say(`ZooKeeper started for the demo: ${zk.connect} (pid ${zk.pid})`);
  }
  const roles: { role: 'controller' | 'worker'; id: string }[] = [
    { role: 'controller', id: 'controller-1' },
    { role: 'controller', id: 'controller-2' },
    { role: 'worker', id: 'worker-1' },
    { role: 'worker', id: 'worker-2' },
    { role: 'worker', id: 'worker-3' },
  ];
  const logs: string[] = [];
  for (const { role, id } of roles) {
    const file = join(dir, `${id}.yaml`);
    writeFileSync(
      file,
      stringify({
        ...base,
        // the harness's digest credentials: the fleet's znodes are readable and writable by that identity only
        store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: 6000, auth: zk.auth },
        controller: { id: role === 'controller' ? id : undefined, refreshTopicsIntervalMs: 2000, rest: { port: 0 } },
        worker: { id: role === 'worker' ? id : undefined, threads: 1 },
        log: { level: 'info' },
      }),
      { mode: 0o600 },
    );
    const log = join(dir, `${id}.log`);
    logs.push(log);
    const fd = openSync(log, 'w');
    const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), role, '--config', file], { stdio: ['ignore', fd, fd] });
    closeSync(fd); // the child has its own copy
    fleet.children.push(child);
    say(`started strait ${role} ${id} (pid ${child.pid}, config ${file}, log ${log})`);
  }
  try {
    for (let i = 0; i < 2; i++) fleet.rest.push(await restUrlOf(logs[i]!, fleet.children[i]!));
  } catch (e) {
    await stopFleet(fleet); // nothing the demo started outlives it
    throw e;
  }
  say(`REST APIs: ${fleet.rest.join(' and ')}  (try: node dist/bin/strait.js status --url ${fleet.rest[0]})`);
  return fleet;
}

async function stopFleet(fleet: Fleet): Promise<void> {
  // workers first (they flush and commit), then the controllers, each by the pid it was started with
  for (const c of [...fleet.children.slice(2), ...fleet.children.slice(0, 2)]) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await new Promise<void>((res) => c.once('exit', () => res()));
    }
  }
  if (fleet.zookeeper) await dev.stopOwnZooKeeper(fleet.zookeeper);
}

/** `leader controller-1, 3 workers, 9/9 partitions assigned` from whichever controller leads. */
async function fleetLine(fleet: Fleet): Promise<string> {
  for (const url of fleet.rest) {
    try {
      const s = (await (await fetch(`${url}/v1/status`)).json()) as {
        isLeader: boolean;
        leader: string | null;
        workers: number;
        partitions: { desired: number; assigned: number } | null;
      };
      if (s.isLeader && s.partitions) return `leader ${s.leader}, ${s.workers} workers, ${s.partitions.assigned}/${s.partitions.desired} partitions assigned`;
    } catch {
      // a controller that is not up (yet): ask the other
    }
  }
  return 'no leader yet';
}

export async function runDemo(opts: { dir: string; durationSec?: number; rate?: number; distributed?: boolean }): Promise<void> {
  const say = (l: string) => process.stdout.write(`${l}\n`);
  const existing = dev.readState(opts.dir);
  const state =
    existing && dev.runningProcesses(existing).length >= 2
      ? existing
      : await dev.up({ clusters: 2, zookeeper: opts.distributed === true, dir: opts.dir, log: say });
  const a = state.clusters.a!.bootstrap;
  const b = state.clusters.b!.bootstrap;
  say(`source cluster a: ${a}\ntarget cluster b: ${b}`);

  const admin = Kafka.AdminClient.create({ 'bootstrap.servers': a, log_level: 0 });
  // the fleet replicates its own topics, so both demos can run against the same clusters
  const prefix = opts.distributed ? 'fleet' : 'demo';
  for (const [name, partitions] of Object.entries(TOPICS)) {
    const topic = `${prefix}.${name}`;
    await new Promise<void>((res, rej) =>
      admin.createTopic({ topic, num_partitions: partitions, replication_factor: 1 }, 10_000, (e) => (e && e.code !== 36 ? rej(e) : res())),
    );
  }
  admin.disconnect();

  const dir = resolve(opts.dir, opts.distributed ? 'demo-fleet' : 'demo');
  mkdirSync(dir, { recursive: true });
  const base = {
    // one deployment (store) per source cluster instance: offsets committed against an earlier cluster mean nothing here
    deployment: `demo-${state.clusters.a!.clusterId}`,
    clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
    routes: [{ name: 'a-to-b', source: 'a', target: 'b', topics: { include: [`${prefix}\\..*`] }, naming: { policy: 'prefix' } }],
    metrics: { port: 0 },
  };
  const configFile = join(dir, 'strait.yaml');
  let fleet: Fleet | undefined;
  if (!opts.distributed) {
    writeFileSync(
      configFile,
      stringify({
        ...base,
        store: { type: 'embedded', path: join(dir, `store-${state.clusters.a!.clusterId}`) },
        controller: { refreshTopicsIntervalMs: 2000 },
        log: { level: 'warn' },
      }),
    );
    say(`config: ${configFile}\nstarting: strait run --config ${configFile}   (Ctrl-C stops the demo; clusters keep running until 'strait dev down')`);
  } else {
    fleet = await startFleet(state, dir, base, say);
    // produce once every worker holds its share: partitions moved while workers are still registering would be
    // re-read from their committed offsets (the in-flight window), and the demo's counts would not match
    const settled = new RegExp(`, 3 workers, ([1-9]\\d*)/\\1 partitions assigned`);
    for (const until = Date.now() + 60_000; Date.now() < until && !settled.test(await fleetLine(fleet));) await new Promise((r) => setTimeout(r, 500));
    say(`fleet ready: ${await fleetLine(fleet)}`);
  }

  const producer = await connect(new Kafka.Producer({ 'bootstrap.servers': a, 'linger.ms': 20, log_level: 0 }));
  producer.setPollInterval(50);
  const rate = opts.rate ?? 2000;
  let produced = 0;
  const names = Object.keys(TOPICS).map((n) => `${prefix}.${n}`);
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

  const strait =
    fleet?.children[2] ??
    spawn(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), 'run', '--config', configFile, '--no-status-line'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  // the target topics appear only once strait has created them: librdkafka caches a topic it did not find until the
  // next metadata refresh (5 min by default), so the watcher refreshes every second or it would count them as empty
  const watcher = await connect(new Kafka.Producer({ 'bootstrap.servers': b, log_level: 0, 'topic.metadata.refresh.interval.ms': 1000 }));
  const source = await connect(new Kafka.Producer({ 'bootstrap.servers': a, log_level: 0 }));
  const started = Date.now();
  const show = setInterval(() => {
    void (async () => {
      const [src, dst] = await Promise.all([
        counts(source, names),
        counts(
          watcher,
          names.map((n) => `a.${n}`),
        ),
      ]);
      say(
        `[${Math.round((Date.now() - started) / 1000)}s] source a: ${src} records in ${names.join(', ')}  ->  target b: ${dst} records in a.${prefix}.*  (behind by ${Math.max(0, src - dst)})${fleet ? `  | ${await fleetLine(fleet)}` : ''}`,
      );
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
  for (const until = Date.now() + 30_000; Date.now() < until && strait.exitCode === null;) {
    [src, dst] = await Promise.all([
      counts(source, names),
      counts(
        watcher,
        names.map((n) => `a.${n}`),
      ),
    ]);
    if (dst >= src) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  say(`final: source a ${src} records, target b ${dst} records`);
  if (fleet) {
    await stopFleet(fleet);
  } else {
    if (strait.exitCode === null) strait.kill('SIGTERM');
    await new Promise<void>((res) => (strait.exitCode !== null ? res() : strait.once('exit', () => res())));
  }
  for (const c of [producer, watcher, source]) await disconnectClient(c, 30_000);
  say("demo stopped; the clusters still run: 'node dist/bin/strait.js dev down' stops them");
}
