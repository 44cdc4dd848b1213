/**
 * `strait run`: the standalone deployment — controller and worker in one process, connected through the embedded
 * store (the same interface ZooKeeper implements for distributed deployments). Wiring only.
 */
import { Controller } from '../controller/controller';
import { loadConfig, redactConfig } from '../shared/config';
import { EmbeddedStore } from '../shared/store/embedded';
import { StraitError } from '../shared/errors';
import { checkLoadedFeatures } from '../shared/kafka/features';
import { createLogger } from '../shared/logger';
import { StraitMetrics } from '../shared/metrics';
import { Worker } from '../worker/worker';
import { closeHttp, exitIfStuck, json, serveHttp, untilSignal, workerHealth, workerStatus } from './serve';

export interface RunOptions {
  config: string;
  /** print a live status line (default: when stdout is a TTY) */
  statusLine?: boolean;
}

function human(n: number, unit = ''): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G${unit}`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M${unit}`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k${unit}`;
  return `${Math.round(n)}${unit}`;
}

export async function run(opts: RunOptions): Promise<void> {
  const config = loadConfig(opts.config);
  if (config.store.type !== 'embedded') {
    throw new StraitError(
      'STRAIT_USAGE',
      "store.type is 'zookeeper': run 'strait controller' and 'strait worker' for a distributed deployment, or set store.type: embedded for 'strait run'",
      { field: 'store.type' },
    );
  }
  checkLoadedFeatures(config);
  const log = createLogger('strait', config.log.level);
  log.info({ config: redactConfig(config) }, 'starting strait run');
  const metrics = new StraitMetrics();
  const store = new EmbeddedStore(config.store.path);
  const worker = new Worker(config, store, log, metrics);
  const controller = new Controller(config, store, log, metrics);
  // the only controller of a standalone deployment: it always leads
  metrics.controllerProcess = { id: config.controller.id ?? 'standalone', leading: () => ({ workers: controller.registeredWorkers() }) };
  // The worker's own view of its errored partitions is current within one progress interval; the controller's
  // comes with the next load report. Health uses the worker's.
  const server = await serveHttp(
    config,
    metrics,
    log,
    (req, res) => req.url === '/v1/status' && json(res, 200, { controller: controller.status(), worker: workerStatus(worker) }),
    () => workerHealth(worker.pipeline),
  );
  await worker.start();
  await controller.start();

  const tty = opts.statusLine ?? process.stdout.isTTY === true;
  let prev = { t: Date.now(), records: 0, bytes: 0 };
  let ticks = 0;
  const report = setInterval(() => {
    const t = worker.pipeline.totals;
    const now = Date.now();
    const secs = Math.max(0.001, (now - prev.t) / 1000);
    const rps = (t.records - prev.records) / secs;
    const bps = (t.bytes - prev.bytes) / secs;
    prev = { t: now, records: t.records, bytes: t.bytes };
    const problems = controller.status().problems.length;
    if (tty) {
      process.stdout.write(
        `\r\x1b[K${human(rps)} rec/s  ${human(bps, 'B')}/s  lag ${human(t.lag)}  partitions ${t.partitions}` +
          `${t.paused ? `  paused ${t.paused}` : ''}${t.errored ? `  errored ${t.errored}` : ''}${problems ? `  topic problems ${problems}` : ''}  total ${human(t.records)}`,
      );
    } else if (++ticks % 10 === 0) {
      log.info(
        {
          recordsPerSec: Math.round(rps),
          bytesPerSec: Math.round(bps),
          lag: t.lag,
          partitions: t.partitions,
          paused: t.paused,
          errored: t.errored,
          records: t.records,
        },
        'progress',
      );
    }
  }, 1000);

  await untilSignal(log, 'stopping: flushing in-flight records and committing');
  clearInterval(report);
  if (tty) process.stdout.write('\n');
  await controller.stop();
  await worker.stop();
  await store.close();
  await closeHttp(server);
  log.info('stopped');
  exitIfStuck(log);
}
