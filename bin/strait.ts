#!/usr/bin/env node
/**
 * The `strait` command: parses arguments and hands over to controller, worker, bench. Nothing else lives here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { StraitError } from '../shared/errors';
import { loadConfig, redactConfig } from '../shared/config';
import * as dev from '../bench/harness/local-cluster';
import { DEFAULT_KAFKA_VERSION, ensureKafka, spawnKafkaClass } from '../bench/harness/kafka-runtime';

/** The harness state without the ZooKeeper password (it stays in state.json, for the harness's own fleets). */
function printableState(state: dev.DevState): dev.DevState {
  const zk = state.zookeeper;
  if (!zk) return state;
  const user = zk.auth.credentials.slice(0, zk.auth.credentials.indexOf(':'));
  return { ...state, zookeeper: { ...zk, auth: { ...zk.auth, credentials: `${user}:<redacted>` } } };
}

const pkg = require('../../package.json') as { version: string };

function int(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}, got '${value}'`);
    return n;
  };
}

/** A comma list of whole numbers, each checked like `int`; repeats dropped, order kept. */
function ints(name: string, min: number, max: number) {
  const one = int(name, min, max);
  return (value: string): number[] => {
    const items = value.split(',').map((x) => x.trim());
    if (items.some((x) => x === '')) throw new InvalidArgumentError(`${name} must be whole numbers from ${min} to ${max}, separated by commas, got '${value}'`);
    return [...new Set(items.map(one))];
  };
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Progress bars on a TTY (one per loading/replicating step, cli-progress); plain log lines otherwise. */
async function progressBars(): Promise<{ log: (l: string) => void; progress?: (label: string, done: number, total: number) => void; stop: () => void }> {
  if (!process.stderr.isTTY) return { log: (l) => process.stderr.write(`${l}\n`), stop: () => {} };
  const { MultiBar, Presets } = await import('cli-progress');
  const multi = new MultiBar(
    { format: ' {bar} {percentage}% | {value}/{total} records | {label}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    Presets.shades_classic,
  );
  const bars = new Map<string, import('cli-progress').SingleBar>();
  return {
    log: (l) => multi.log(`${l}\n`),
    progress: (label, done, total) => {
      let bar = bars.get(label);
      if (!bar) bars.set(label, (bar = multi.create(total, 0, { label })));
      bar.update(Math.min(done, total), { label });
    },
    stop: () => multi.stop(),
  };
}

export function buildProgram(): Command {
  const program = new Command('strait')
    .description('strait — Apache Kafka cross-cluster replication (active-passive, active-active, exact offset translation)')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const devCmd = program.command('dev').description('run real Apache Kafka clusters and ZooKeeper on 127.0.0.1 for the demo, tests and bench');
  devCmd
    .command('up')
    .description('fetch the pinned Kafka jars (Maven Central) and start N KRaft clusters, optionally ZooKeeper')
    .option('--clusters <n>', 'number of clusters (aliases a, b, c, ...)', int('--clusters', 1, 26), 2)
    .option(
      '--brokers <n>',
      'KRaft nodes per cluster (broker and controller each); 3 or more: replication factor 3, min.insync.replicas 2',
      int('--brokers', 1, dev.MAX_BROKERS),
      1,
    )
    .option('--zookeeper', 'also start a ZooKeeper server', false)
    .option('--sasl', 'also open a SASL_PLAINTEXT (PLAIN) listener with ACLs enforced (users admin, strait, limited; password <user>-secret)', false)
    .option(
      '--tls',
      'also open SSL (client certificate required), SASL_SSL (SCRAM-SHA-512) and SASL_PLAINTEXT (SCRAM-SHA-256) listeners, with a CA and certificates made on the spot (SCRAM users as for --sasl)',
      false,
    )
    .option('--kafka-version <v>', 'Apache Kafka version to fetch and run', DEFAULT_KAFKA_VERSION)
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .option('--json', 'print the state as JSON', false)
    .action(
      async (o: { clusters: number; brokers: number; zookeeper: boolean; sasl: boolean; tls: boolean; kafkaVersion: string; dir: string; json: boolean }) => {
        const started = Date.now();
        const state = await dev.up({
          clusters: o.clusters,
          brokers: o.brokers,
          zookeeper: o.zookeeper,
          sasl: o.sasl,
          tls: o.tls,
          kafkaVersion: o.kafkaVersion,
          dir: o.dir,
          log: (l) => process.stderr.write(`${l}\n`),
        });
        if (o.json) return print(JSON.stringify(printableState(state), null, 2));
        for (const [alias, c] of Object.entries(state.clusters)) {
          if (c.brokers.length === 1)
            print(`kafka ${alias}: ${c.bootstrap}${c.saslBootstrap ? `, SASL ${c.saslBootstrap}` : ''} (pid ${c.pid}, logs ${c.logDir})`);
          else {
            print(`kafka ${alias}: ${c.bootstrap}${c.saslBootstrap ? `, SASL ${c.saslBootstrap}` : ''}`);
            for (const b of c.brokers) print(`  broker ${b.id}: 127.0.0.1:${b.port} (pid ${b.pid}, logs ${b.logDir})`);
          }
          if (c.tls) print(`  SSL (mTLS) ${c.tls.ssl}, SASL_SSL (SCRAM-SHA-512) ${c.tls.saslSsl}, SASL_PLAINTEXT (SCRAM-SHA-256) ${c.tls.saslPlaintextScram}`);
        }
        if (state.tls) print(`tls: CA ${state.tls.caLocation}, client certificate ${state.tls.certificateLocation}, key ${state.tls.keyLocation}`);
        if (state.zookeeper) print(`zookeeper: ${state.zookeeper.connect} (pid ${state.zookeeper.pid})`);
        print(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s; state in ${dev.statePath(o.dir)}; stop with 'strait dev down'`);
      },
    );
  devCmd
    .command('down')
    .description('stop exactly the processes `strait dev up` started (by recorded pid) and remove their data')
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .action(async (o: { dir: string }) => {
      const stopped = await dev.down({ dir: o.dir });
      print(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing was running');
    });
  devCmd
    .command('status')
    .description('show the local clusters and whether each process runs')
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .option('--json', 'print the state as JSON', false)
    .action((o: { dir: string; json: boolean }) => {
      const state = dev.readState(o.dir);
      if (!state) {
        print(`no local clusters (no ${dev.statePath(o.dir)})`);
        process.exitCode = 3;
        return;
      }
      if (o.json) return print(JSON.stringify({ ...printableState(state), running: dev.runningProcesses(state) }, null, 2));
      const running = dev.runningProcesses(state).join(' ');
      for (const [alias, c] of Object.entries(state.clusters)) {
        if (c.brokers.length === 1) print(`kafka ${alias}: ${c.bootstrap} pid ${c.pid} ${dev.brokerRunning(c.brokers[0]!) ? 'running' : 'STOPPED'}`);
        else
          for (const b of c.brokers) print(`kafka ${alias} broker ${b.id}: 127.0.0.1:${b.port} pid ${b.pid} ${dev.brokerRunning(b) ? 'running' : 'STOPPED'}`);
        if (c.tls) print(`  SSL (mTLS) ${c.tls.ssl}, SASL_SSL (SCRAM-SHA-512) ${c.tls.saslSsl}, SASL_PLAINTEXT (SCRAM-SHA-256) ${c.tls.saslPlaintextScram}`);
      }
      if (state.zookeeper) print(`zookeeper: ${state.zookeeper.connect} pid ${state.zookeeper.pid} ${running.includes('zookeeper') ? 'running' : 'STOPPED'}`);
      print(`kafka ${state.kafkaVersion} from ${state.kafkaHome}`);
    });
  const brokerId = int('broker-id', 1, dev.MAX_BROKERS);
  devCmd
    .command('stop')
    .argument('<alias>', 'cluster alias')
    .argument('[broker-id]', 'only this broker', brokerId)
    .description("stop a local cluster's brokers, or only the one given, with a controlled shutdown (SIGTERM), keeping their data (outage drills)")
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .action(async (alias: string, id: number | undefined, o: { dir: string }) => {
      if (id === undefined) {
        await dev.stopCluster(alias, { dir: o.dir });
        print(`kafka ${alias} stopped`);
      } else {
        const b = await dev.stopBroker(alias, id, { dir: o.dir });
        print(`kafka ${alias} broker ${b.id} stopped (pid ${b.pid})`);
      }
    });
  devCmd
    .command('start')
    .argument('<alias>', 'cluster alias')
    .argument('[broker-id]', 'only this broker', brokerId)
    .description("start a local cluster's stopped brokers again, or only the one given (same ports, same data)")
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .action(async (alias: string, id: number | undefined, o: { dir: string }) => {
      if (id === undefined) {
        await dev.startStoppedCluster(alias, { dir: o.dir });
        print(`kafka ${alias} started`);
      } else {
        const b = await dev.startBroker(alias, id, { dir: o.dir });
        print(`kafka ${alias} broker ${b.id} started (pid ${b.pid})`);
      }
    });
  devCmd
    .command('kill')
    .argument('<alias>', 'cluster alias')
    .argument('<broker-id>', 'the broker (node.id) to kill', brokerId)
    .description('kill -9 one broker of a local cluster by its recorded pid (crash drills; start it again with `strait dev start`)')
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .action(async (alias: string, id: number, o: { dir: string }) => {
      const b = await dev.killBroker(alias, id, { dir: o.dir });
      print(`kafka ${alias} broker ${b.id} killed (pid ${b.pid})`);
    });
  devCmd
    .command('roll <alias>')
    .description("rolling restart: each broker in turn gets a controlled shutdown and a start, the next only once every partition's ISR is full again")
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .action(async (alias: string, o: { dir: string }) => {
      const started = Date.now();
      const steps = await dev.rollCluster(alias, { dir: o.dir, log: (l) => process.stderr.write(`${l}\n`) });
      print(`kafka ${alias}: rolled ${steps.length} broker${steps.length === 1 ? '' : 's'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  devCmd
    .command('classpath')
    .description('print the Java classpath of the fetched Kafka jars (broker, MirrorMaker 2, perf tools)')
    .option('--kafka-version <v>', 'Apache Kafka version', DEFAULT_KAFKA_VERSION)
    .action((o: { kafkaVersion: string }) => print(ensureKafka(o.kafkaVersion).classpath));
  devCmd
    .command('run-class <mainClass> [args...]')
    .description('run a class from the fetched Kafka jars, e.g. org.apache.kafka.tools.ProducerPerformance or org.apache.kafka.connect.mirror.MirrorMaker')
    .option('--kafka-version <v>', 'Apache Kafka version', DEFAULT_KAFKA_VERSION)
    .allowUnknownOption(true)
    .action(async (mainClass: string, args: string[], o: { kafkaVersion: string }) => {
      const child = spawnKafkaClass(ensureKafka(o.kafkaVersion), mainClass, args, { stdio: 'inherit', heap: '512m' });
      const forward = (sig: NodeJS.Signals) => child.kill(sig);
      process.on('SIGINT', forward).on('SIGTERM', forward);
      process.exitCode = await new Promise<number>((res) => child.on('exit', (code) => res(code ?? 1)));
    });

  const configCmd = program.command('config').description('configuration file tools');
  configCmd
    .command('check <file>')
    .description('validate a config file (YAML or JSON) and print it with defaults filled, secrets redacted and secret references shown as written')
    .option('--quiet', 'print nothing when valid', false)
    .action((file: string, o: { quiet: boolean }) => {
      const config = loadConfig(file);
      if (!o.quiet) print(JSON.stringify(redactConfig(config), null, 2));
      process.stderr.write(`${file}: valid (${Object.keys(config.clusters).length} clusters, ${config.routes.length} routes)\n`);
    });

  program
    .command('run')
    .description('replicate: controller and worker in one process, embedded store (resumes from committed offsets)')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .option('--no-status-line', 'never print the live status line (JSON logs only)')
    .action(async (o: { config: string; statusLine: boolean }) => {
      const { run } = await import('./run');
      await run({ config: o.config, ...(o.statusLine ? {} : { statusLine: false }) });
    });

  program
    .command('controller')
    .description('distributed: campaign for leadership in ZooKeeper; the leader discovers topics and assigns partitions to workers')
    .requiredOption('-c, --config <file>', 'config file (store.type: zookeeper)')
    .action(async (o: { config: string }) => {
      const { runController } = await import('./distributed');
      await runController(o.config);
    });

  program
    .command('worker')
    .description('distributed: register in ZooKeeper and replicate the partitions the leading controller assigns')
    .requiredOption('-c, --config <file>', 'config file (store.type: zookeeper)')
    .action(async (o: { config: string }) => {
      const { runWorker } = await import('./distributed');
      await runWorker(o.config);
    });

  const offsetsCmd = program.command('offsets').description("a route's committed offsets in the store");
  offsetsCmd
    .command('reset <route>')
    .description(
      "forget a route's committed offsets and recorded cluster ids (after STRAIT_CLUSTER_CHANGED): it starts again at its start position; run it while the route's partitions are stopped",
    )
    .requiredOption('-c, --config <file>', 'config file naming the store')
    .action(async (route: string, o: { config: string }) => {
      const { resetOffsets } = await import('./offsets');
      print(await resetOffsets(o.config, route));
    });

  // ---- consumer-group failover / failback (talks to the clusters directly; no controller needed)
  for (const verb of ['failover', 'failback'] as const) {
    program
      .command(verb)
      .description(
        verb === 'failover'
          ? "move a consumer group from a route's source to its target at exactly the next record (reads the newest checkpoints when the source is down)"
          : "move a consumer group back: what it read on --from (replicas and --from's own writes) becomes offsets on --to",
      )
      .requiredOption('-c, --config <file>', 'config file with the clusters and routes')
      .requiredOption('--group <id>', 'consumer group id')
      .requiredOption('--from <alias>', 'cluster alias the group leaves')
      .requiredOption('--to <alias>', 'cluster alias the group moves to')
      .option('--dry-run', 'print the translated offsets, write nothing', false)
      .option('--timeout <seconds>', 'wait at most this long for records still in flight', int('--timeout', 0, 3600), 30)
      .option('--json', 'print the report as JSON', false)
      .action(async (o: { config: string; group: string; from: string; to: string; dryRun: boolean; timeout: number; json: boolean }) => {
        const { failover, failback, formatMove } = await import('../controller/failover');
        const config = loadConfig(o.config);
        const opts = {
          group: o.group,
          from: o.from,
          to: o.to,
          dryRun: o.dryRun,
          timeoutMs: o.timeout * 1000,
          log: (l: string) => process.stderr.write(`${l}\n`),
        };
        const report = verb === 'failover' ? await failover(config, opts) : await failback(config, opts);
        print(o.json ? JSON.stringify(report, null, 2) : formatMove(report, verb));
      });
  }

  // ---- REST clients of a controller
  const api = (cmd: Command) =>
    cmd
      .option('--url <url>', "a controller's REST API (controller.rest)", process.env.STRAIT_URL ?? 'http://127.0.0.1:8470')
      .option('--token <token>', 'bearer token (controller.rest.token; or STRAIT_TOKEN)', process.env.STRAIT_TOKEN)
      .option('--ca <file>', "PEM CA that signed the controller's certificate, for an https:// --url (or STRAIT_CA)", process.env.STRAIT_CA)
      .option(
        '--cert <file>',
        'PEM client certificate, for a controller that requires one (controller.rest.tls.clientCa; or STRAIT_CERT)',
        process.env.STRAIT_CERT,
      )
      .option('--key <file>', 'PEM private key of --cert (or STRAIT_KEY)', process.env.STRAIT_KEY)
      .option('--json', "print the API's JSON", false);
  type ApiOpts = { url: string; token?: string; ca?: string; cert?: string; key?: string; json: boolean };
  const show = async (what: string, o: ApiOpts, method: 'GET' | 'POST' | 'DELETE', path: string) => {
    const { callApi, render } = await import('./client');
    print(render(what, await callApi(o, method, path), o.json));
  };
  api(program.command('status').description("a controller's view: leader, workers, partitions, problems")).action((o: ApiOpts) =>
    show('status', o, 'GET', '/v1/status'),
  );
  api(program.command('rebalance').description('ask the leader to recompute the assignment now')).action((o: ApiOpts) =>
    show('rebalance', o, 'POST', '/v1/rebalance'),
  );
  api(program.command('partitions').description('every assigned partition: worker, epoch, bytes/s, records/s, lag (as the workers last reported)'))
    .option('--lagging', 'only partitions with lag > 0, most lagging first', false)
    .action((o: ApiOpts & { lagging: boolean }) => show('partitions', o, 'GET', `/v1/partitions${o.lagging ? '?lagging=true' : ''}`));
  const routesCmd = program
    .command('routes')
    .description('list routes, show one, its topics, pause or resume it; create, update or delete routes managed over REST');
  api(routesCmd.command('list')).action((o: ApiOpts) => show('routes', o, 'GET', '/v1/routes'));
  for (const [sub, method, suffix] of [
    ['get', 'GET', ''],
    ['topics', 'GET', '/topics'],
    ['pause', 'POST', '/pause'],
    ['resume', 'POST', '/resume'],
  ] as const) {
    api(routesCmd.command(`${sub} <name>`)).action((name: string, o: ApiOpts) => show('route', o, method, `/v1/routes/${encodeURIComponent(name)}${suffix}`));
  }
  for (const mode of ['create', 'update'] as const) {
    api(
      routesCmd
        .command(mode)
        .description(`${mode} a route managed over REST from a YAML or JSON file holding one route`)
        .requiredOption('-f, --file <file>', 'the route (name, source, target, topics, ...)'),
    ).action(async (o: ApiOpts & { file: string }) => {
      const { putRouteFile, render } = await import('./client');
      print(render('route', await putRouteFile(o, o.file, mode), o.json));
    });
  }
  api(routesCmd.command('delete <name>').description('stop replicating a route created over REST (its committed offsets are kept)')).action(
    (name: string, o: ApiOpts) => show('route', o, 'DELETE', `/v1/routes/${encodeURIComponent(name)}`),
  );
  const workersCmd = program.command('workers').description('list workers, drain or undrain one');
  api(workersCmd.command('list')).action((o: ApiOpts) => show('workers', o, 'GET', '/v1/workers'));
  for (const sub of ['drain', 'undrain'] as const) {
    api(workersCmd.command(`${sub} <id>`)).action((id: string, o: ApiOpts) => show('worker', o, 'POST', `/v1/workers/${encodeURIComponent(id)}/${sub}`));
  }

  program
    .command('bench [scenarios...]')
    .description(
      "compare strait with MirrorMaker 2, a node-rdkafka JS loop and Kafka's perf-tool ceiling (scenarios: throughput, ceiling, latency, wan, many-partitions, rest, failover)",
    )
    .option('--source <bootstrap>', 'source cluster (default: local clusters started by the harness)')
    .option('--target <bootstrap>', 'target cluster')
    .option(
      '--records <n>',
      'records to preload first (grown when a system replicates them in less than --min-window)',
      int('--records', 1, 1_000_000_000),
      1_000_000,
    )
    .option('--record-size <bytes,...>', 'record sizes', '1024,100')
    .option('--partitions <n>', 'partitions of the bench topic', int('--partitions', 1, 10_000), 16)
    .option('--codec <codec,...>', 'none|gzip|snappy|lz4|zstd', 'none')
    .option(
      '--systems <names>',
      'which systems to run (the wan scenario always runs strait and strait-wan, plus the mm2 systems listed)',
      'strait,strait-lan,js-baseline,mm2-default,mm2-tuned',
    )
    .option('--out <dir>', 'where results.json and results.md go', 'bench-results')
    .option('--repeat <n>', 'repetitions of every measurement, systems in rotated order; rows are medians with min–max', int('--repeat', 1, 100), 3)
    .option(
      '--min-window <seconds>',
      'throughput, wan, ceiling: shortest measurement window; a shorter one grows the backlog from the measured rate and measures again',
      int('--min-window', 0, 3600),
      20,
    )
    .option(
      '--ceiling-producers <n>',
      'ceiling: ProducerPerformance processes writing into the target at once, the records shared among them (one is bounded by its single sender)',
      int('--ceiling-producers', 1, 64),
      4,
    )
    .option(
      '--rate <records/s>',
      "latency: the fixed steady production rate (default 5000); it also runs at 50% and 90% of each system's measured throughput",
      int('--rate', 1, 10_000_000),
    )
    .option('--duration <seconds>', 'latency: seconds of steady production', int('--duration', 1, 3600), 20)
    .option('--warmup <seconds>', 'latency: seconds of production at the rate before measuring', int('--warmup', 0, 3600), 5)
    .option(
      '--broker-warmup <seconds>',
      'local clusters: seconds of scratch traffic on each fresh cluster before any measurement, so no system pays the cold brokers (0: none)',
      int('--broker-warmup', 0, 3600),
      20,
    )
    .addOption(
      new Option('--rtt <ms,...>', 'wan: round-trip times the delay proxy adds in front of the source, one table each (e.g. 50,150)')
        .argParser(ints('--rtt', 0, 10_000))
        .default([50], '50'),
    )
    .option(
      '--transaction-interval <ms>',
      "strait-eos: the route's transactionIntervalMs (default: strait's own, 500)",
      int('--transaction-interval', 10, 600_000),
    )
    .option(
      '--many-partitions <n>',
      'many-partitions: partitions of its topic, the stream spread evenly over them (default 2000)',
      int('--many-partitions', 1, 100_000),
    )
    .option('--many-mb <MB/s>', 'many-partitions: the steady stream, MB/s of the largest --record-size (default 20)', int('--many-mb', 1, 10_000))
    .option('--many-threads <n>', "many-partitions: strait's worker.threads (default 4)", int('--many-threads', 1, 256))
    .option(
      '--failover-records <n>',
      'failover: numbered records produced per system (strait and the mm2 systems listed; smallest --record-size, first --codec)',
      int('--failover-records', 10, 100_000_000),
      200_000,
    )
    .action(
      async (
        scenarios: string[],
        o: {
          source?: string;
          target?: string;
          records: number;
          recordSize: string;
          partitions: number;
          codec: string;
          systems: string;
          out: string;
          repeat: number;
          minWindow: number;
          ceilingProducers: number;
          rate?: number;
          duration: number;
          warmup: number;
          brokerWarmup: number;
          rtt: number[];
          transactionInterval?: number;
          failoverRecords: number;
          manyPartitions?: number;
          manyMb?: number;
          manyThreads?: number;
        },
      ) => {
        const { runBench } = await import('../bench/bench');
        const { SCENARIOS } = await import('../bench/scenarios/scenario');
        const { SYSTEMS } = await import('../bench/systems');
        const list = (field: string, v: string, allowed: readonly string[]) => {
          const items = v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean);
          for (const i of items)
            if (!allowed.includes(i)) throw new StraitError('STRAIT_USAGE', `--${field}: '${i}' is not allowed; allowed: ${allowed.join(', ')}`, { field });
          return items;
        };
        const sc = scenarios.length > 0 ? list('scenario', scenarios.join(','), SCENARIOS) : [...SCENARIOS];
        const sizes = o.recordSize.split(',').map((x) => {
          const n = Number(x);
          if (!Number.isInteger(n) || n < 1 || n > 10_000_000)
            throw new StraitError('STRAIT_USAGE', `--record-size: '${x}' is not a size in bytes from 1 to 10000000`, { field: 'record-size' });
          return n;
        });
        const opts: Omit<import('../bench/options').BenchOptions, 'log'> = {
          scenarios: sc,
          records: o.records,
          recordSizes: sizes,
          partitions: o.partitions,
          out: o.out,
          codecs: list('codec', o.codec, ['none', 'gzip', 'snappy', 'lz4', 'zstd']),
          systems: list('systems', o.systems, SYSTEMS) as never,
          repeat: o.repeat,
          minWindowSec: o.minWindow,
          ceilingProducers: o.ceilingProducers,
          durationSec: o.duration,
          warmupSec: o.warmup,
          brokerWarmupSec: o.brokerWarmup,
          rttMs: o.rtt,
          failoverRecords: o.failoverRecords,
          ...(o.rate !== undefined ? { rate: o.rate } : {}),
          ...(o.manyPartitions !== undefined ? { manyPartitions: o.manyPartitions } : {}),
          ...(o.manyMb !== undefined ? { manyMbPerSec: o.manyMb } : {}),
          ...(o.manyThreads !== undefined ? { manyThreads: o.manyThreads } : {}),
          ...(o.transactionInterval !== undefined ? { transactionIntervalMs: o.transactionInterval } : {}),
          ...(o.source ? { source: o.source } : {}),
          ...(o.target ? { target: o.target } : {}),
        };
        const bars = await progressBars();
        await runBench({ ...opts, log: bars.log, ...(bars.progress ? { progress: bars.progress } : {}) }).finally(() => bars.stop());
        print(readFileSync(join(o.out, 'results.md'), 'utf8'));
        print(`results: ${o.out}/results.json, results.md, chart.svg, report.html`);
      },
    );

  program
    .command('demo')
    .description('start two local clusters and show strait replicating between them')
    .option('--dir <dir>', 'state folder', dev.DEFAULT_DEV_DIR)
    .option('--duration <seconds>', 'stop after this many seconds (default: until Ctrl-C)', int('--duration', 1, 86400))
    .option('--rate <records/s>', 'demo producer rate', int('--rate', 1, 1_000_000), 2000)
    .option('--distributed', 'replicate through a fleet: one ZooKeeper, two strait controllers, three strait workers', false)
    .action(async (o: { dir: string; duration?: number; rate: number; distributed: boolean }) => {
      const { runDemo } = await import('../bench/demo');
      await runDemo({ dir: o.dir, rate: o.rate, distributed: o.distributed, ...(o.duration !== undefined ? { durationSec: o.duration } : {}) });
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof StraitError) {
      process.stderr.write(`strait: ${e.message}\n`);
      return e.code === 'STRAIT_USAGE' ? 2 : 1;
    }
    process.stderr.write(`strait: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  // No process.exit(): a command that leaves a handle open would then hang, which tests catch as a leak.
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
