/**
 * `strait run`: the standalone deployment — controller and worker in one process, connected through the embedded
 * store (the same interface ZooKeeper implements for distributed deployments). Wiring only.
 */
import type { Server } from 'node:http';
import { Controller } from '../controller/controller';
import { loadConfig, redactConfig } from '../shared/config';
import { EmbeddedStore } from '../shared/embedded-store';
import { StraitError } from '../shared/errors';
import { createLogger } from '../shared/logger';
import { StraitMetrics, serveMetrics } from '../shared/metrics';
import { Worker } from '../worker/worker';

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
    throw new StraitError('STRAIT_USAGE', "store.type is 'zookeeper': run 'strait controller' and 'strait worker' for a distributed deployment, or set store.type: embedded for 'strait run'", { field: 'store.type' });
  }
  const log = createLogger('strait', config.log.level);
  log.info({ config: redactConfig(config) }, 'starting strait run');
  const metrics = new StraitMetrics();
  const store = new EmbeddedStore(config.store.path);
  const worker = new Worker(config, store, log, metrics);
  const controller = new Controller(config, store, log, metrics);
  let server: Server | undefined;
  if (config.metrics.enabled) {
    server = await serveMetrics(metrics, config.metrics.host, config.metrics.port, (req, res) => {
      if (req.method !== 'GET') return false;
      if (req.url === '/v1/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'ok' }));
        return true;
      }
      if (req.url === '/v1/status') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ controller: controller.status(), worker: { id: worker.id, totals: worker.pipeline.totals } }, null, 2));
        return true;
      }
      return false;
    });
    const addr = server.address();
    log.info({ metrics: typeof addr === 'object' && addr ? `http://${addr.address}:${addr.port}/metrics` : '' }, 'metrics endpoint up');
  }
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
      log.info({ recordsPerSec: Math.round(rps), bytesPerSec: Math.round(bps), lag: t.lag, partitions: t.partitions, paused: t.paused, errored: t.errored, records: t.records }, 'progress');
    }
  }, 1000);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: flushing in-flight records and committing');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  clearInterval(report);
  if (tty) process.stdout.write('\n');
  await controller.stop();
  await worker.stop();
  await store.close();
  await new Promise<void>((res) => (server ? server.close(() => res()) : res()));
  log.info('stopped');
}
