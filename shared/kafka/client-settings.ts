/**
 * Every librdkafka client's settings, built here and nowhere else: strait's own connections to a cluster
 * (`clusterProps`: metadata, the offset-map readers, group calls; `adminClientProps`: topic management, topic ids),
 * a route's consumer and producer (`routeClientProps`, with the tuning profiles `routes[].profile`), and a
 * forwarder's complete options (`forwarderSettings`).
 * Precedence for a route, lowest first: strait's base, the profile, the cluster's properties, the route's overrides.
 */
import type { ForwarderOptions } from '../../native';
import type { RouteTransactions } from '../wire';
import type { ClientProps, RouteConfig, StraitConfig } from '../config';
import { StraitError } from '../errors';

/** librdkafka properties for a connection of strait's own to a cluster (its properties and bootstrap servers). */
export function clusterProps(config: StraitConfig, alias: string): ClientProps {
  const c = config.clusters[alias];
  if (!c) throw new StraitError('STRAIT_USAGE', `unknown cluster alias '${alias}' (defined: ${Object.keys(config.clusters).join(', ')})`);
  return { ...c.properties, 'bootstrap.servers': c.bootstrap };
}

/**
 * How often strait's admin connections ask for the broker list again (librdkafka's default: 5 minutes). librdkafka
 * sends CreateTopics, CreatePartitions, DescribeConfigs, AlterConfigs and DescribeTopics to the broker its last
 * metadata answer named controller (rdkafka_admin.c, RD_KAFKA_ADMIN_TARGET_CONTROLLER) and, while that broker is down,
 * waits for it to come back without asking again (rdkafka_broker.c, rd_kafka_broker_controller_async); a KRaft broker
 * names a random live broker there. So one broker of a healthy cluster down made every such call time out ("Timed
 * out waiting for controller") until it was back or the next refresh: the controller's route refresh failed through
 * a rolling restart (66 s in test/integrity/chaos-distributed.ts), and a worker taking over partitions started
 * them without the re-created-topic check. A handle without topics refreshes the broker list, and with it the
 * controller, at this interval but at most every 10 s (rdkafka.c, rd_kafka_metadata_refresh_cb).
 */
export const ADMIN_METADATA_REFRESH_MS = 5000;

/** librdkafka properties for an admin connection of strait's own (topic management, topic ids); the cluster's win. */
export function adminClientProps(config: StraitConfig, alias: string): ClientProps {
  return { 'topic.metadata.refresh.interval.ms': ADMIN_METADATA_REFRESH_MS, ...clusterProps(config, alias) };
}

export const PROFILES: Record<RouteConfig['profile'], { consumer: ClientProps; producer: ClientProps }> = {
  default: { consumer: {}, producer: {} },
  // One data center: small waits, moderate batches.
  lan: {
    consumer: { 'fetch.wait.max.ms': 50, 'fetch.min.bytes': 1, 'queued.min.messages': 100000 },
    producer: { 'linger.ms': 2, 'batch.size': 1048576, 'batch.num.messages': 10000 },
  },
  // Long round trips: large fetches so each round trip carries more; bigger batches and a longer linger; the
  // idempotent producer's maximum of 5 requests in flight per connection. The socket buffers are left to the kernel:
  // on Linux an explicit SO_RCVBUF/SO_SNDBUF turns its autotuning off and is capped at net.core.rmem_max/wmem_max
  // (4 MiB on the bench machine), where autotuning grows a window up to tcp_rmem's third field (32 MiB there) — the
  // window bounds a long link at one window per round trip (bench 'wan', BENCHMARKS.md).
  wan: {
    consumer: {
      'fetch.max.bytes': 104857600,
      'max.partition.fetch.bytes': 16777216,
      'fetch.wait.max.ms': 200,
      'fetch.min.bytes': 65536,
      'queued.max.messages.kbytes': 262144,
    },
    producer: {
      'linger.ms': 25,
      // a batch is one record batch on the broker, so it must fit the target's max.message.bytes (Kafka's default
      // 1048588): a bigger batch.size gets whole batches rejected as too large
      'batch.size': 1048576,
      'batch.num.messages': 50000,
      'max.in.flight.requests.per.connection': 5,
    },
  },
};

export interface RouteClientProps {
  consumer: ClientProps;
  producer: ClientProps;
}

export function routeClientProps(config: StraitConfig, route: RouteConfig, workerId: string): RouteClientProps {
  const source = config.clusters[route.source]!;
  const target = config.clusters[route.target]!;
  const profile = PROFILES[route.profile];
  return {
    consumer: {
      'client.id': `strait-${workerId}-${route.name}`,
      'group.id': sourceGroupId(config, route),
      ...profile.consumer,
      ...source.properties,
      ...route.consumer,
      'bootstrap.servers': source.bootstrap,
    },
    producer: {
      'client.id': `strait-${workerId}-${route.name}`,
      ...profile.producer,
      ...target.properties,
      ...route.producer,
      'bootstrap.servers': target.bootstrap,
    },
  };
}

/** the least in-flight budget, and prefetch, a forwarder gets */
export const MIN_FORWARDER_BUDGET = 1 << 20;

/** What a route's forwarder in one of `config.worker.threads` pool threads is built with. */
export function forwarderSettings(config: StraitConfig, route: RouteConfig, workerId: string): ForwarderOptions {
  const threads = config.worker.threads;
  const props = routeClientProps(config, route, workerId);
  return {
    // the prefetch queue is bounded like the in-flight budget: memory stays within twice the budget
    consumer: {
      'queued.max.messages.kbytes': Math.max(MIN_FORWARDER_BUDGET / 1024, Math.floor(config.worker.inflightBytes / threads / 1024)),
      ...props.consumer,
    },
    producer: props.producer,
    inflightBytes: Math.max(MIN_FORWARDER_BUDGET, Math.floor(config.worker.inflightBytes / threads)),
    // for target topics without a codec of their own (the addon's default would be none)
    compression: 'lz4',
    onGap: route.onGap,
    ...(route.naming.policy === 'identity' ? { provenance: { localOrigin: route.source, dropOrigin: route.target } } : {}),
  };
}

/**
 * delivery: exactly-once gives each source partition a forwarder of its own, with a consumer of its own. The route's
 * share of the worker's budget on a pool thread (`options`, from forwarderSettings) is split among its
 * `partitionsHere` partitions on that thread, at least MIN_FORWARDER_BUDGET each: the in-flight budget, and the
 * consumer's prefetch (`queued.max.messages.kbytes`, librdkafka's bound per partition queue) at most that too — a
 * profile's or the route's larger prefetch is capped, a smaller one kept. Without the split, every partition's
 * forwarder held the whole thread's share twice over (897 MB RSS against 353 MB at-least-once, 16 partitions, in the
 * delivery bench of BENCHMARKS.md).
 */
export function partitionShare(options: ForwarderOptions, partitionsHere: number): { inflightBytes: number; consumer: ForwarderOptions['consumer'] } {
  const share = Math.max(MIN_FORWARDER_BUDGET, Math.floor((options.inflightBytes ?? MIN_FORWARDER_BUDGET) / Math.max(1, partitionsHere)));
  const kbytes = Math.floor(share / 1024);
  const asked = Number(options.consumer['queued.max.messages.kbytes'] ?? kbytes);
  return { inflightBytes: share, consumer: { ...options.consumer, 'queued.max.messages.kbytes': Math.min(Number.isFinite(asked) ? asked : kbytes, kbytes) } };
}

/**
 * delivery: exactly-once. The transactional.id of a source partition is derived from the target cluster, the route
 * and the partition, so it is the same on whichever worker owns it: the new owner's init_transactions bumps its epoch,
 * which fences the previous owner for that partition only. `|` cannot occur in cluster aliases, route or topic names.
 */
export function transactionSettings(route: RouteConfig): RouteTransactions {
  return { idPrefix: `strait|${route.target}|${route.name}|`, intervalMs: route.transactionIntervalMs, maxBytes: route.transactionMaxBytes };
}

/** The transactional.id of one source partition of an exactly-once route. */
export function transactionalId(tx: RouteTransactions, topic: string, partition: number): string {
  return `${tx.idPrefix}${topic}|${partition}`;
}

/** The consumer group on the source cluster that mirrors a route's committed offsets (standard lag tooling). */
export function sourceGroupId(config: StraitConfig, route: RouteConfig): string {
  return `strait.${config.deployment}.${route.name}`;
}

/** The codec for a target topic: the route's, or for `source` the source topic's compression.type. */
export function targetCodec(route: RouteConfig, sourceCompressionType: string | undefined): string {
  if (route.compression !== 'source') return route.compression;
  switch (sourceCompressionType) {
    case 'gzip':
    case 'snappy':
    case 'lz4':
    case 'zstd':
      return sourceCompressionType;
    case 'uncompressed':
      return 'none';
    default:
      // `producer` (Kafka's default): each producer chose, and a consumer cannot see which codec a batch used.
      return 'lz4';
  }
}
