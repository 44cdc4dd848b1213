/** The clusters a bench run replicates between: the user's own (--source/--target) or two local ones from the harness. */
import { join, resolve } from 'node:path';
import { StraitError } from '../shared/errors';
import { ensureKafka, type KafkaRuntime } from './harness/kafka-runtime';
import * as dev from './harness/local-cluster';
import type { BenchOptions } from './options';
import type { Scenario } from './scenarios/scenario';
import { warmBrokers, type WarmupResult } from './warmup';

export interface Clusters {
  source: string;
  target: string;
  /** local clusters started with ZooKeeper (rest scenario) */
  zookeeper?: string;
  /** store.auth for the harness ZooKeeper */
  zookeeperAuth?: { scheme: 'digest'; credentials: string };
  /** the source's listener advertised through the delay proxy's port (local clusters only) */
  sourceWan?: { bootstrap: string; upstream: string; port: number };
  runtime: KafkaRuntime;
  /** local clusters: the broker warm-up they got (--broker-warmup) */
  warmup?: WarmupResult;
  stop: () => Promise<void>;
}

/** Local clusters get what the scenarios of the run need (a WAN listener, ZooKeeper); the user's may not be asked for it. */
export async function clusters(opts: BenchOptions, scenarios: readonly Scenario[]): Promise<Clusters> {
  const runtime = ensureKafka(undefined, opts.log);
  if (opts.source && opts.target) {
    for (const s of scenarios) {
      if (s.localOnly) throw new StraitError('STRAIT_USAGE', s.localOnly.refusal, { field: 'scenario' });
    }
    return { source: opts.source, target: opts.target, runtime, stop: async () => {} };
  }
  if (opts.source || opts.target)
    throw new StraitError('STRAIT_USAGE', '--source and --target go together (or neither, for local clusters)', { field: opts.source ? 'target' : 'source' });
  const dir = resolve(opts.clusterDir ?? join('.strait', 'bench'));
  await dev.down({ dir });
  const wanListener = scenarios.some((s) => s.localOnly?.wanListener === true);
  const zookeeper = scenarios.some((s) => s.localOnly?.zookeeper === true);
  const state = await dev.up({ clusters: 2, dir, log: opts.log, heap: '1g', wanListener, zookeeper });
  const a = state.clusters.a!;
  const stop = async () => void (await dev.down({ dir }));
  let warmup: WarmupResult | undefined;
  if ((opts.brokerWarmupSec ?? 0) > 0) {
    try {
      warmup = await warmBrokers([a.bootstrap, state.clusters.b!.bootstrap], opts.brokerWarmupSec!, opts.partitions, opts.codecs, opts.log);
    } catch (e) {
      await stop();
      throw e;
    }
  }
  return {
    source: a.bootstrap,
    target: state.clusters.b!.bootstrap,
    ...(state.zookeeper ? { zookeeper: state.zookeeper.connect, zookeeperAuth: state.zookeeper.auth } : {}),
    ...(a.wan ? { sourceWan: { bootstrap: a.wan.bootstrap, upstream: `127.0.0.1:${a.wan.port}`, port: a.wan.proxyPort } } : {}),
    runtime,
    ...(warmup ? { warmup } : {}),
    stop,
  };
}
