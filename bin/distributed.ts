/**
 * The distributed deployment: `strait controller` (two or more for HA; the elected leader alone assigns) and
 * `strait worker` (as many as needed), coordinated through ZooKeeper (shared/store/zookeeper/). Wiring only.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Leadership } from '../controller/leader';
import { buildRestApi } from '../controller/rest';
import { loadConfig, redactConfig, type StraitConfig } from '../shared/config';
import { StraitError } from '../shared/errors';
import { checkLoadedFeatures } from '../shared/kafka/features';
import { createLogger, type Logger } from '../shared/logger';
import { StraitMetrics } from '../shared/metrics';
import { ZooKeeperStore } from '../shared/store/zookeeper/api';
import { Worker } from '../worker/worker';
import { closeHttp, exitIfStuck, json, serveHttp, untilSignal, workerHealth, workerStatus } from './serve';

async function setUp(configFile: string, role: string): Promise<{ config: StraitConfig; log: Logger; metrics: StraitMetrics; store: ZooKeeperStore }> {
  const config = loadConfig(configFile);
  if (config.store.type !== 'zookeeper' || config.store.connect === undefined) {
    throw new StraitError(
      'STRAIT_USAGE',
      `store.type is '${config.store.type}': 'strait ${role}' needs store.type: zookeeper and store.connect (host:port[,host:port...]); use 'strait run' for the embedded store`,
      { field: 'store.type' },
    );
  }
  checkLoadedFeatures(config);
  const log = createLogger(`strait-${role}`, config.log.level);
  log.info({ config: redactConfig(config) }, `starting strait ${role}`);
  const metrics = new StraitMetrics();
  const { connect, root, sessionTimeoutMs, auth } = config.store;
  if (!auth)
    log.warn(
      { field: 'store.allowUnauthenticated' },
      'ZooKeeper store without auth: every znode of this deployment is readable and writable by anyone who reaches ZooKeeper',
    );
  // the controller (one per deployment at a time, standbys too) closes ACLs left open by an older tree; workers only create
  const store = await ZooKeeperStore.connect({
    connect,
    deployment: config.deployment,
    root,
    sessionTimeoutMs,
    log,
    ...(auth ? { auth } : {}),
    reconcileAcls: role === 'controller',
  });
  return { config, log, metrics, store };
}

/** A rejection handler that closes the store, then rethrows: for a start-up step that fails after the store opened. */
function closing(store: ZooKeeperStore): (e: unknown) => Promise<never> {
  return async (e) => {
    await store.close().catch(() => undefined);
    throw e;
  };
}

/** `strait controller`: campaigns for leadership; the leader discovers topics and assigns partitions. */
export async function runController(configFile: string): Promise<void> {
  const { config, log, metrics, store } = await setUp(configFile, 'controller');
  const id = config.controller.id ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const leadership = new Leadership(id, config, store, log, metrics);
  metrics.controllerProcess = { id, leading: () => leadership.current && { workers: leadership.current.registeredWorkers() } };
  // a process that cannot start closes its store session: an open session would keep it alive after the error
  const server = await serveHttp(
    config,
    metrics,
    log,
    (req, res) => {
      if (req.url !== '/v1/status') return false;
      void store.readLeader().then(
        (leader) =>
          json(res, 200, { id, leader: leader ?? null, isLeader: leadership.current !== undefined, controller: leadership.current?.status() ?? null }),
        (e: Error) => json(res, 503, { code: 'STRAIT_STORE', message: e.message }),
      );
      return true;
    },
    () =>
      (leadership.current?.status().erroredPartitions ?? []).map((p) => ({
        code: p.code,
        route: p.route,
        topic: p.topic,
        partition: p.partition,
        message: `${p.topic}[${p.partition}] of route '${p.route}' on worker '${p.worker}' makes no progress: ${p.code}`,
      })),
  ).catch(closing(store));
  let rest: ReturnType<typeof buildRestApi>;
  try {
    rest = buildRestApi({ id, config, store, leader: () => leadership.current });
  } catch (e) {
    await store.close();
    await closeHttp(server);
    throw e;
  }
  let restUrl: string;
  try {
    restUrl = await rest.listen({ host: config.controller.rest.host, port: config.controller.rest.port });
  } catch (e) {
    await store.close();
    await closeHttp(server);
    throw new StraitError(
      'STRAIT_USAGE',
      `controller.rest: cannot listen on ${config.controller.rest.host}:${config.controller.rest.port} (${(e as Error).message}); choose another controller.rest.port (0 picks a free one)`,
      { field: 'controller.rest.port' },
    );
  }
  log.info({ rest: restUrl }, 'REST API up');
  const resign = await leadership.campaign();
  await untilSignal(log, 'stopping');
  await resign();
  await leadership.stop();
  await rest.close();
  await store.close();
  await closeHttp(server);
  log.info('stopped');
  exitIfStuck(log);
}

/** `strait worker`: registers, replicates what the leader assigns it, stops everything when its session is lost. */
export async function runWorker(configFile: string): Promise<void> {
  const { config, log, metrics, store } = await setUp(configFile, 'worker');
  const worker = new Worker(config, store, log, metrics);
  store.onSessionLost(() => worker.suspend());
  store.onSessionRestored(() => log.info({ worker: worker.id }, 'coordination session restored: waiting for a new assignment'));
  const server = await serveHttp(
    config,
    metrics,
    log,
    (req, res) => req.url === '/v1/status' && json(res, 200, { worker: { ...workerStatus(worker), unverifiedRoutes: [...worker.unverifiedRoutes.keys()] } }),
    // a route refused for not matching its stored definition runs none of its partitions: that is degraded too
    () => [
      ...workerHealth(worker.pipeline),
      ...[...worker.unverifiedRoutes.keys()].map((route) => ({
        code: 'STRAIT_ROUTE_UNVERIFIED',
        route,
        message: `route '${route}' carried by the assignment matches neither the stored route nor this worker's config file: its partitions do not run`,
      })),
    ],
  ).catch(closing(store));
  await worker.start();
  await untilSignal(log, 'stopping');
  await worker.stop();
  await store.close();
  await closeHttp(server);
  log.info('stopped');
  exitIfStuck(log);
}
