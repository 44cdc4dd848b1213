/**
 * `strait offsets reset`: forgets a route's committed offsets and the cluster ids recorded with them, the explicit
 * way to start a route again after its source or target cluster changed (STRAIT_CLUSTER_CHANGED, see
 * shared/cluster-identity.ts). Works on the store the config names: the embedded store only while `strait run` is
 * stopped (its lock says so), ZooKeeper while the route's partitions are stopped (held or paused).
 */
import { closest } from 'fastest-levenshtein';
import { loadConfig } from '../shared/config';
import { EmbeddedStore } from '../shared/store/embedded';
import { StraitError } from '../shared/errors';
import { createLogger } from '../shared/logger';
import type { CoordinationStore } from '../shared/store/store';
import { ZooKeeperStore } from '../shared/store/zookeeper/api';

export async function resetOffsets(configFile: string, route: string): Promise<string> {
  const config = loadConfig(configFile);
  let store: CoordinationStore;
  if (config.store.type === 'embedded') {
    store = new EmbeddedStore(config.store.path);
  } else {
    const { connect, root, sessionTimeoutMs, auth } = config.store;
    if (connect === undefined) throw new StraitError('STRAIT_USAGE', 'store.connect is not set', { field: 'store.connect' });
    const log = createLogger('strait-offsets', config.log.level);
    store = await ZooKeeperStore.connect({
      connect,
      deployment: config.deployment,
      root,
      sessionTimeoutMs,
      log,
      ...(auth ? { auth } : {}),
      reconcileAcls: false,
    });
  }
  try {
    const known = [...new Set([...config.routes.map((r) => r.name), ...(await store.readRoutes()).keys()])];
    const hasState = (await store.readOffsets(route)).size > 0 || (await store.readRouteClusters(route)) !== undefined;
    if (!known.includes(route) && !hasState) {
      const near = known.length > 0 ? closest(route, known) : undefined;
      throw new StraitError(
        'STRAIT_UNKNOWN_ROUTE',
        `no route '${route}' and no offsets stored for one${near !== undefined ? ` (did you mean '${near}'?)` : ''}; routes: ${known.join(', ') || '(none)'}`,
        { field: 'route' },
      );
    }
    const clusters = await store.readRouteClusters(route);
    const had = await store.resetRoute(route);
    const start = config.routes.find((r) => r.name === route)?.start ?? (await store.readRoutes()).get(route)?.route.start ?? 'its start position';
    return `route '${route}': forgot the committed offsets of ${had} partition${had === 1 ? '' : 's'}${clusters ? ` and its cluster ids (source ${clusters.source}, target ${clusters.target})` : ''}; its partitions start again at '${start}' when they next start`;
  } finally {
    await store.close();
  }
}
