/**
 * Discovery of source topics and partitions, and keeping target topics in shape: create missing ones with the
 * source's partition count, add partitions when the source grows, copy topic configs, never delete. A topic that
 * cannot be mirrored (target exists with fewer partitions and strait did not create it, or another route already
 * writes it) is held with a clear error while every other topic keeps replicating.
 */
import Kafka from 'node-rdkafka';
import { loadNative, type NativeAdmin, type TopicConfigEntry } from '../native';
import { shownValue, type ClientProps, type RouteConfig, type StraitConfig } from '../shared/config';
import { ClusterIdentity } from '../shared/cluster-identity';
import { StraitError, fieldPath } from '../shared/errors';
import { diagnoseTls } from '../shared/kafka/tls-diagnosis';
import type { Logger } from '../shared/logger';
import { adminClientProps, targetCodec } from '../shared/kafka/client-settings';
import { selectTopic, targetTopicName } from '../shared/replication-policy';
import type { CoordinationStore } from '../shared/store/store';
import { CHECKPOINT_TOPIC, OFFSET_MAP_TOPIC } from '../shared/offset-map/records';

/**
 * Topic configs never copied (after MirrorMaker 2's DefaultConfigPropertyFilter): replication throttles and ISR
 * minimums belong to the target cluster's operators; timestamp settings would change how the target stamps records;
 * leader election settings are about the target's own availability.
 */
const NEVER_COPY = new Set([
  'follower.replication.throttled.replicas',
  'leader.replication.throttled.replicas',
  'min.insync.replicas',
  'message.timestamp.type',
  'message.timestamp.difference.max.ms',
  'message.timestamp.before.max.ms',
  'message.timestamp.after.max.ms',
  'unclean.leader.election.enable',
  'message.downconversion.enable',
]);

export interface DesiredPartition {
  route: string;
  topic: string;
  partition: number;
  targetTopic: string;
  compression: string;
}

export interface TopicProblem {
  route: string;
  topic: string;
  targetTopic: string;
  code:
    | 'STRAIT_TOPIC_CONFLICT'
    | 'STRAIT_KAFKA'
    | 'STRAIT_CLUSTER_UNREACHABLE'
    | 'STRAIT_CLUSTER_AUTH'
    | 'STRAIT_CLUSTER_TLS'
    | 'STRAIT_NOT_AUTHORIZED'
    | 'STRAIT_CLUSTER_CHANGED';
  message: string;
  /** for a failed cluster: when it is asked again (backoff) */
  retryInMs?: number;
}

export interface RefreshResult {
  partitions: DesiredPartition[];
  problems: TopicProblem[];
  /** source topic -> partition count, per route */
  topics: Record<string, Record<string, number>>;
}

type TopicMeta = Map<string, number>;

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

// librdkafka error codes (rdkafka.h)
const ERR_TOPIC_AUTHORIZATION_FAILED = 29;
const ERR_CLUSTER_AUTHORIZATION_FAILED = 31;

interface ClusterClients {
  metadata: Kafka.Producer;
  admin: Kafka.IAdminClient;
  configs: NativeAdmin;
}

export class TopicManager {
  private readonly clients = new Map<string, Promise<ClusterClients>>();
  private readonly backoff = new Map<string, { until: number; delayMs: number; error: Error }>();
  private readonly native = loadNative();
  /** target clusters whose offset-map topic is known to exist */
  private readonly internalDone = new Set<string>();
  /** routes whose clusters are not those of their committed offsets are held (shared/cluster-identity.ts) */
  private readonly identity: ClusterIdentity;

  /** `routes`: the routes to replicate now (the config file's and those created over REST) */
  constructor(
    private readonly config: StraitConfig,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly routes: () => RouteConfig[] = () => config.routes,
  ) {
    this.identity = new ClusterIdentity(config, store, async (alias) => (await this.cluster(alias)).configs.clusterId(5000));
  }

  private props(alias: string): ClientProps {
    return { ...adminClientProps(this.config, alias), 'client.id': `strait-controller-${alias}` };
  }

  private cluster(alias: string): Promise<ClusterClients> {
    let p = this.clients.get(alias);
    if (!p) {
      p = (async () => {
        const props = this.props(alias);
        // librdkafka says why a connection failed (SASL or TLS handshake) only in its error-level logs; connect()
        // itself reports "broker transport failure"
        let metadata: Kafka.Producer;
        try {
          metadata = new Kafka.Producer({ ...props, log_level: 3, event_cb: true } as Kafka.ProducerGlobalConfig);
        } catch (e) {
          // librdkafka refuses to make the client (an unreadable ssl.ca.location, a key it cannot load, ...)
          throw await this.connectError(alias, e as Error, undefined);
        }
        let authError: { message: string } | undefined;
        metadata.on('event.log', (e: { message: string }) => {
          const m = /(SASL authentication error|SSL handshake failed|Authentication failed)[^]*$/.exec(e.message);
          if (m) authError = { message: m[0] };
        });
        try {
          await new Promise<void>((res, rej) => metadata.connect({ timeout: 10_000 }, (err) => (err ? rej(err) : res())));
        } catch (e) {
          throw await this.connectError(alias, e as Error, authError);
        }
        const admin = Kafka.AdminClient.create({ ...props, log_level: 0 } as Kafka.GlobalConfig);
        const configs = new this.native.Admin(props);
        return { metadata, admin, configs };
      })();
      this.clients.set(alias, p);
      p.catch(() => this.clients.delete(alias));
    }
    return p;
  }

  /**
   * The error for a cluster strait cannot connect to: a TLS problem (found by diagnoseTls, which looks for itself
   * because librdkafka's words mislead), a SASL refusal, or a cluster that does not answer.
   */
  private async connectError(alias: string, err: { message: string }, authError: { message: string } | undefined): Promise<StraitError> {
    const c = this.config.clusters[alias]!;
    const tls = await diagnoseTls(alias, c.bootstrap, c.properties);
    if (tls) {
      return new StraitError('STRAIT_CLUSTER_TLS', `cluster '${alias}' (${c.bootstrap}): TLS connection failed: ${tls.cause}; check ${tls.field}`, {
        retriable: true,
        field: tls.field,
      });
    }
    if (authError) {
      const user = c.properties['sasl.username'];
      const mechanism = String(c.properties['sasl.mechanisms'] ?? c.properties['sasl.mechanism'] ?? 'GSSAPI');
      const shownUser = user !== undefined ? shownValue(this.config, ['clusters', alias, 'properties', 'sasl.username'], user) : undefined;
      const how = `${String(c.properties['security.protocol'] ?? 'plaintext')}/${mechanism}${shownUser !== undefined ? ` as '${shownUser}'` : ''}`;
      const field = fieldPath(['clusters', alias, 'properties', 'sasl.password']);
      const plain =
        shownUser !== undefined
          ? `the broker refused the user name or password (a wrong sasl.password, or no ${mechanism} credential for '${shownUser}' on this cluster)`
          : 'the broker refused the credentials';
      return new StraitError(
        'STRAIT_CLUSTER_AUTH',
        `cluster '${alias}' (${c.bootstrap}): authentication failed (${how}): ${plain}; the broker said: ${authError.message}; check ${field}`,
        { retriable: true, field },
      );
    }
    return new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${alias}' (${c.bootstrap}) is unreachable: ${err.message}`, { retriable: true });
  }

  /** "not authorized" errors name the principal, the operation it lacks and where (Kafka's own words say neither). */
  private authzError(alias: string, what: string, operation: string, err: Kafka.LibrdKafkaError): StraitError {
    const c = this.config.clusters[alias]!;
    const user = c.properties['sasl.username'];
    const principal = user !== undefined ? `User:${shownValue(this.config, ['clusters', alias, 'properties', 'sasl.username'], user)}` : 'the client principal';
    if (err.code === ERR_TOPIC_AUTHORIZATION_FAILED || err.code === ERR_CLUSTER_AUTHORIZATION_FAILED) {
      return new StraitError(
        'STRAIT_NOT_AUTHORIZED',
        `${what} on cluster '${alias}' (${c.bootstrap}) was refused: ${principal} needs the ${operation} ACL (${err.message})`,
      );
    }
    return new StraitError('STRAIT_KAFKA', `${what} on '${alias}' failed: ${err.message}`);
  }

  /**
   * A cluster that failed is not asked again until its backoff ends (1 s doubling to 60 s, reset by a success); in
   * between, its last error is reported again, so status stays accurate without hammering a cluster that is down.
   */
  private async topicsWithBackoff(alias: string): Promise<TopicMeta> {
    const b = this.backoff.get(alias);
    if (b && Date.now() < b.until) throw b.error;
    try {
      const m = await this.topics(alias);
      this.backoff.delete(alias);
      return m;
    } catch (e) {
      const delayMs = Math.min(MAX_BACKOFF_MS, b ? b.delayMs * 2 : MIN_BACKOFF_MS);
      this.backoff.set(alias, { until: Date.now() + delayMs, delayMs, error: e as Error });
      this.log.debug({ cluster: alias, retryInMs: delayMs }, 'cluster failed; backing off');
      throw e;
    }
  }

  /** Milliseconds until a failed cluster is asked again (0 when it is healthy); for status and tests. */
  backoffMs(alias: string): number {
    const b = this.backoff.get(alias);
    return b ? Math.max(0, b.until - Date.now()) : 0;
  }

  private async topics(alias: string): Promise<TopicMeta> {
    const { metadata } = await this.cluster(alias);
    const md = await new Promise<Kafka.Metadata>((res, rej) =>
      metadata.getMetadata({ timeout: 10_000 }, (err, data) =>
        err
          ? rej(new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${alias}': metadata request failed: ${err.message}`, { retriable: true }))
          : res(data),
      ),
    );
    return new Map(md.topics.filter((t) => t.partitions.length > 0).map((t) => [t.name, t.partitions.length]));
  }

  private async describe(alias: string, topics: string[]): Promise<Record<string, Record<string, TopicConfigEntry>>> {
    if (topics.length === 0) return {};
    const { configs } = await this.cluster(alias);
    return configs.describeTopicConfigs(topics, 10_000);
  }

  private async createTopic(alias: string, topic: string, partitions: number, replicationFactor: number, config: Record<string, string>): Promise<void> {
    const { admin } = await this.cluster(alias);
    await new Promise<void>((res, rej) =>
      admin.createTopic({ topic, num_partitions: partitions, replication_factor: replicationFactor, config }, 15_000, (err) =>
        // TOPIC_ALREADY_EXISTS (36): another controller or an earlier attempt made it; the next refresh checks it
        err && err.code !== 36 ? rej(this.authzError(alias, `creating topic '${topic}'`, `CREATE (on the topic or the cluster)`, err)) : res(),
      ),
    );
  }

  private async addPartitions(alias: string, topic: string, total: number): Promise<void> {
    const { admin } = await this.cluster(alias);
    await new Promise<void>((res, rej) =>
      admin.createPartitions(topic, total, 15_000, (err) =>
        err ? rej(this.authzError(alias, `adding partitions to '${topic}'`, 'ALTER on the topic', err)) : res(),
      ),
    );
  }

  /** Copyable configs explicitly set on a source topic. */
  private copyable(cfg: Record<string, TopicConfigEntry> | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, e] of Object.entries(cfg ?? {})) {
      if (name.startsWith('$') || NEVER_COPY.has(name) || e.isSensitive || e.value === null) continue;
      if (e.source !== 'DYNAMIC_TOPIC_CONFIG') continue;
      out[name] = e.value;
    }
    return out;
  }

  /** Makes sure strait's own compacted topics (offset map, checkpoints) exist on every target cluster (each checked once). */
  async ensureInternalTopics(): Promise<void> {
    const routes = this.routes();
    const targets = [...new Set(routes.map((r) => r.target))].filter((alias) => !this.internalDone.has(alias));
    // every target at once and each on its own: a target that cannot be reached (it waits out its backoff) must not
    // keep the internal topics of the targets after it from being made
    const results = await Promise.allSettled(targets.map((alias) => this.ensureInternalTopicsOn(alias, routes)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async ensureInternalTopicsOn(alias: string, routes: RouteConfig[]): Promise<void> {
    const existing = await this.topicsWithBackoff(alias);
    for (const topic of [OFFSET_MAP_TOPIC, CHECKPOINT_TOPIC]) {
      if (existing.has(topic)) continue;
      const rf = Math.max(...routes.filter((r) => r.target === alias).map((r) => r.replicationFactor));
      await this.createTopic(alias, topic, 1, rf, { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000' });
      this.log.info({ cluster: alias, topic }, 'created internal topic');
    }
    this.internalDone.add(alias);
  }

  /** One discovery pass over every route that is not paused. */
  async refresh(paused: Set<string> = new Set()): Promise<RefreshResult> {
    const result: RefreshResult = { partitions: [], problems: [], topics: {} };
    const aliases = Object.keys(this.config.clusters);
    const writers = new Map<string, string>(); // `${target}|${targetTopic}` -> route name
    // every cluster a live route uses is asked at once, so one slow or failing cluster costs one timeout, not one per route
    const metaCache = new Map<string, Promise<TopicMeta>>();
    const meta = (alias: string) => {
      let m = metaCache.get(alias);
      if (!m) {
        metaCache.set(alias, (m = this.topicsWithBackoff(alias)));
        m.catch(() => {}); // awaited (and reported) by the routes that use it
      }
      return m;
    };
    const routes = this.routes();
    for (const route of routes) {
      if (route.paused || paused.has(route.name)) continue;
      meta(route.source);
      meta(route.target);
    }
    for (const route of routes) {
      if (route.paused || paused.has(route.name)) continue;
      try {
        await this.refreshRoute(route, aliases, meta, writers, result);
      } catch (e) {
        const err = e as StraitError;
        const code =
          err.code === 'STRAIT_CLUSTER_UNREACHABLE' || err.code === 'STRAIT_CLUSTER_AUTH' || err.code === 'STRAIT_CLUSTER_TLS' ? err.code : 'STRAIT_KAFKA';
        const retryInMs = Math.max(this.backoffMs(route.source), this.backoffMs(route.target));
        result.problems.push({ route: route.name, topic: '*', targetTopic: '*', code, message: err.message, ...(retryInMs > 0 ? { retryInMs } : {}) });
        this.log.warn({ route: route.name, err: err.message }, 'route refresh failed; retrying next interval');
      }
    }
    return result;
  }

  private async refreshRoute(
    route: RouteConfig,
    aliases: string[],
    meta: (alias: string) => Promise<TopicMeta>,
    writers: Map<string, string>,
    result: RefreshResult,
  ): Promise<void> {
    const source = await meta(route.source);
    const target = await meta(route.target);
    const changed = await this.identity.check(route);
    if (changed) {
      // no partitions: a worker that runs them stops, none starts them at offsets of another cluster
      result.problems.push({ route: route.name, topic: '*', targetTopic: '*', code: changed.code, message: changed.message });
      return;
    }
    const selected = [...source.keys()].filter((t) => selectTopic(route, t, aliases).selected).sort();
    result.topics[route.name] = Object.fromEntries(selected.map((t) => [t, source.get(t)!]));
    if (selected.length === 0) return;
    const managed = await this.store.readManagedTopics(route.name);
    const sourceCfg = await this.describe(route.source, selected);
    const targetNames = selected.map((t) => targetTopicName(route, t));
    const existingTargets = targetNames.filter((t) => target.has(t));
    const targetCfg = route.syncTopicConfigs ? await this.describe(route.target, existingTargets) : {};
    for (const topic of selected) {
      const targetTopic = targetTopicName(route, topic);
      const problem = (code: TopicProblem['code'], message: string) => {
        result.problems.push({ route: route.name, topic, targetTopic, code, message });
      };
      const owner = writers.get(`${route.target}|${targetTopic}`);
      if (owner !== undefined && owner !== route.name) {
        problem('STRAIT_TOPIC_CONFLICT', `target topic '${targetTopic}' on '${route.target}' is already written by route '${owner}'; topic held`);
        continue;
      }
      writers.set(`${route.target}|${targetTopic}`, route.name);
      const srcPartitions = source.get(topic)!;
      const config = this.copyable(sourceCfg[topic]);
      try {
        const have = target.get(targetTopic);
        if (have === undefined) {
          await this.createTopic(route.target, targetTopic, srcPartitions, route.replicationFactor, route.syncTopicConfigs ? config : {});
          await this.store.addManagedTopic(route.name, targetTopic);
          target.set(targetTopic, srcPartitions);
          this.log.info({ route: route.name, topic, targetTopic, partitions: srcPartitions }, 'created target topic');
        } else if (have < srcPartitions) {
          if (!managed.has(targetTopic)) {
            problem(
              'STRAIT_TOPIC_CONFLICT',
              `target topic '${targetTopic}' on '${route.target}' has ${have} partitions but source '${topic}' has ${srcPartitions}; strait did not create it, so it does not change it — add partitions to it or exclude the topic; topic held`,
            );
            continue;
          }
          await this.addPartitions(route.target, targetTopic, srcPartitions);
          target.set(targetTopic, srcPartitions);
          this.log.info({ route: route.name, targetTopic, partitions: srcPartitions }, 'added target partitions');
        } else if (route.syncTopicConfigs) {
          const current = targetCfg[targetTopic] ?? {};
          const changed = Object.fromEntries(Object.entries(config).filter(([k, v]) => current[k]?.value !== v));
          if (Object.keys(changed).length > 0) {
            const { configs } = await this.cluster(route.target);
            await configs.alterTopicConfigs(targetTopic, changed, [], 10_000);
            this.log.info({ route: route.name, targetTopic, configs: Object.keys(changed) }, 'synced topic configs');
          }
        }
      } catch (e) {
        problem((e as StraitError).code === 'STRAIT_NOT_AUTHORIZED' ? 'STRAIT_NOT_AUTHORIZED' : 'STRAIT_KAFKA', `${(e as Error).message}; topic held`);
        continue;
      }
      const codec = targetCodec(route, sourceCfg[topic]?.['compression.type']?.value ?? undefined);
      for (let p = 0; p < srcPartitions; p++) result.partitions.push({ route: route.name, topic, partition: p, targetTopic, compression: codec });
    }
  }

  async close(): Promise<void> {
    for (const p of this.clients.values()) {
      try {
        const c = await p;
        c.configs.close();
        c.admin.disconnect();
        await new Promise<void>((res) => c.metadata.disconnect(() => res()));
      } catch {
        // never connected
      }
    }
    this.clients.clear();
  }
}
