/**
 * What every strait process (`run`, `controller`, `worker`) shares around its work: the metrics HTTP endpoint with
 * /v1/health and a role's own /v1/status, and waiting for SIGINT/SIGTERM.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import { serveMetrics, type StraitMetrics } from '../shared/metrics';

export function json(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body, null, 2));
  return true;
}

/** Serves /metrics, /v1/health and whatever `handler` answers (return false for 404), unless metrics are disabled. */
export async function serveHttp(config: StraitConfig, metrics: StraitMetrics, log: Logger, handler: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<Server | undefined> {
  if (!config.metrics.enabled) return undefined;
  const server = await serveMetrics(metrics, config.metrics.host, config.metrics.port, (req, res) => {
    if (req.method !== 'GET') return false;
    if (req.url === '/v1/health') return json(res, 200, { status: 'ok' });
    return handler(req, res);
  });
  const addr = server.address();
  log.info({ metrics: typeof addr === 'object' && addr ? `http://${addr.address}:${addr.port}/metrics` : '' }, 'metrics endpoint up');
  return server;
}

export function closeHttp(server: Server | undefined): Promise<void> {
  return new Promise<void>((res) => (server ? server.close(() => res()) : res()));
}

/** Resolves on the first SIGINT or SIGTERM, after logging `message`. */
export function untilSignal(log: Logger, message: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, message);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
