/**
 * Cluster identity of a route's offsets. Committed offsets are kept per route name; they mean something only on the
 * clusters they were read from and written to. The store keeps the Kafka cluster ids (KIP-78) of a route's source
 * and target with its offsets, recorded by the first controller or worker that checks; a route whose cluster now
 * answers with another id (an alias pointed at a rebuilt cluster, a route deleted and created again with another
 * target) is refused — `STRAIT_CLUSTER_CHANGED`, naming both ids — until an operator resets its offsets
 * (`strait offsets reset`), never resumed at offsets that belong to another cluster.
 */
import type { RouteConfig, StraitConfig } from './config';
import { adminClientProps } from './kafka/client-settings';
import type { CoordinationStore, RouteClusters } from './store/store';
import { loadNative, type NativeAdmin } from '../native';

export interface ClusterChange {
  code: 'STRAIT_CLUSTER_CHANGED';
  message: string;
  stored: RouteClusters;
  current: { source: string; target: string };
}

/** How to ask a cluster for its id (the controller's and the worker's own admin clients). */
export type ClusterIdOf = (alias: string) => Promise<string>;

/** The message and fields of a route whose clusters are not those of its offsets; the same for every reporter. */
export function clusterChange(
  config: StraitConfig,
  route: RouteConfig,
  stored: RouteClusters,
  current: { source: string; target: string },
): ClusterChange | undefined {
  const changed = (['source', 'target'] as const).filter((side) => stored[side] !== current[side]);
  if (changed.length === 0) return undefined;
  const what = changed
    .map((side) => {
      const alias = route[side];
      return `${side} cluster '${alias}' (${config.clusters[alias]?.bootstrap ?? '?'}) now has cluster id ${current[side]}, its offsets were committed with ${stored[side]}`;
    })
    .join('; ');
  return {
    code: 'STRAIT_CLUSTER_CHANGED',
    stored,
    current,
    message:
      `route '${route.name}': ${what} (recorded ${stored.at}). Resuming at those offsets would skip records the other cluster never had, so the route is held. ` +
      `If this is intended, reset the route's offsets (it starts again at its start position, '${route.start}'): stop its partitions (pause the route, or stop 'strait run') and run 'strait offsets reset ${route.name} --config <file>'`,
  };
}

/**
 * Checks routes against the ids recorded with their offsets, recording them the first time. A route whose ids
 * matched is not read from the store again while they stay the same (a reset is noticed by the next process).
 */
export class ClusterIdentity {
  private readonly verified = new Set<string>();

  constructor(
    private readonly config: StraitConfig,
    private readonly store: CoordinationStore,
    private readonly clusterId: ClusterIdOf,
  ) {}

  /** undefined when the route may resume at its offsets; rejects when a cluster id cannot be read */
  async check(route: RouteConfig): Promise<ClusterChange | undefined> {
    const [source, target] = await Promise.all([this.clusterId(route.source), this.clusterId(route.target)]);
    const key = `${route.name}\n${source}\n${target}`;
    if (this.verified.has(key)) return undefined;
    const stored =
      (await this.store.readRouteClusters(route.name)) ?? (await this.store.claimRouteClusters(route.name, { source, target, at: new Date().toISOString() }));
    const change = clusterChange(this.config, route, stored, { source, target });
    if (!change) this.verified.add(key);
    return change;
  }
}

/**
 * Cluster ids read through admin handles of this process's own, one per cluster, made when first needed (and lent
 * to whatever else asks a cluster: worker/source-positions.ts). An id is
 * asked again at most every `ttlMs`: librdkafka answers from its metadata cache, which follows the cluster.
 */
export class ClusterIds {
  private readonly admins = new Map<string, NativeAdmin>();
  private readonly known = new Map<string, { id: string; at: number }>();
  private closed = false;

  constructor(
    private readonly config: StraitConfig,
    private readonly clientId: string,
    private readonly ttlMs = 30_000,
    private readonly timeoutMs = 5000,
  ) {}

  readonly of: ClusterIdOf = async (alias) => {
    const k = this.known.get(alias);
    if (k && Date.now() - k.at < this.ttlMs) return k.id;
    const id = await this.admin(alias).clusterId(this.timeoutMs);
    this.known.set(alias, { id, at: Date.now() });
    return id;
  };

  /** this process's admin client of a cluster, made on first use (closed by close()) */
  admin(alias: string): NativeAdmin {
    // after close(), a late caller must not leave a new client behind (it would keep the process alive)
    if (this.closed) throw new Error('the admin clients are closed');
    let admin = this.admins.get(alias);
    if (!admin) {
      admin = new (loadNative().Admin)({ ...adminClientProps(this.config, alias), 'client.id': `${this.clientId}-${alias}` });
      this.admins.set(alias, admin);
    }
    return admin;
  }

  close(): void {
    this.closed = true;
    for (const a of this.admins.values()) a.close();
    this.admins.clear();
  }
}
