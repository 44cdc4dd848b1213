/**
 * What every strait process (`run`, `controller`, `worker`) shares around its work: the metrics HTTP endpoint with
 * /v1/health and a role's own /v1/status, and waiting for SIGINT/SIGTERM.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { Pipeline } from '../worker/pipeline';
import { serveMetrics, type StraitMetrics } from '../shared/metrics';
import { StraitError } from '../shared/errors';

/** One reason /v1/health answers `degraded`. */
export interface HealthReason {
  code: string;
  message: string;
  route?: string;
  topic?: string;
  partition?: number;
}

export function json(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body, null, 2));
  return true;
}

/**
 * Serves /metrics, /v1/health and whatever `handler` answers (return false for 404), unless metrics are disabled.
 * /v1/health answers `degraded` with the reasons `degraded()` returns, with HTTP `health.degradedStatus` (200 or 503).
 */
export async function serveHttp(
  config: StraitConfig,
  metrics: StraitMetrics,
  log: Logger,
  handler: (req: IncomingMessage, res: ServerResponse) => boolean,
  degraded: () => HealthReason[] = () => [],
): Promise<Server | undefined> {
  if (!config.metrics.enabled) return undefined;
  const server = await serveMetrics(metrics, config.metrics.host, config.metrics.port, (req, res) => {
    if (req.method !== 'GET') return false;
    if (req.url === '/v1/health') {
      const reasons = degraded();
      return reasons.length === 0 ? json(res, 200, { status: 'ok' }) : json(res, config.health.degradedStatus, { status: 'degraded', reasons });
    }
    return handler(req, res);
  }).catch((e: Error) => {
    throw new StraitError(
      'STRAIT_USAGE',
      `metrics: cannot listen on ${config.metrics.host}:${config.metrics.port} (${e.message}); choose another metrics.port (0 picks a free one) or set metrics.enabled: false`,
      { field: 'metrics.port', cause: e },
    );
  });
  const addr = server.address();
  log.info({ metrics: typeof addr === 'object' && addr ? `http://${addr.address}:${addr.port}/metrics` : '' }, 'metrics endpoint up');
  return server;
}

/** The reasons a worker is degraded: its errored partitions. */
export function workerHealth(pipeline: Pipeline): HealthReason[] {
  return pipeline.errored().map((p) => ({
    code: p.code,
    route: p.route,
    topic: p.topic,
    partition: p.partition,
    message: `${p.topic}[${p.partition}] of route '${p.route}' makes no progress since ${p.since}: ${p.code} (${p.kafkaCode ?? 'no Kafka code'}): ${p.cause}`,
  }));
}

/** What a worker's /v1/status shows. */
export function workerStatus(worker: { id: string; pipeline: Pipeline }): Record<string, unknown> {
  return {
    id: worker.id,
    totals: worker.pipeline.totals,
    errored: worker.pipeline.errored(),
    gaps: worker.pipeline.gaps,
    starts: worker.pipeline.starts,
    clientErrors: worker.pipeline.recentClientErrors,
  };
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

/**
 * Called once everything is stopped and committed. A client something forgot to close (a librdkafka handle keeps the
 * event loop alive without showing in it) would keep the process running for ever after 'stopped': the timer is
 * unref'd, so it fires only then — it says so at error level, naming what still runs, and exits. A clean stop exits
 * before it fires.
 */
export function exitIfStuck(log: Logger, graceMs = 5000): void {
  setTimeout(() => {
    log.error(
      { code: 'STRAIT_STOP_STUCK', resources: process.getActiveResourcesInfo() },
      `still running ${graceMs} ms after stopping: a client was left open; exiting`,
    );
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  }, graceMs).unref();
}
