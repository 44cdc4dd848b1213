/**
 * The controller's REST API (fastify). Every controller answers reads; only the leader changes anything (pause,
 * resume, rebalance) — a standby answers 409 with the leader's id. Errors are JSON `{ code, message, field? }`: 4xx
 * for bad input, never a crash. With `controller.rest.token` set, every request needs `Authorization: Bearer <token>`
 * (compared in constant time); secrets are never returned.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { closest } from 'fastest-levenshtein';
import { redactProperties, type RouteConfig, type StraitConfig } from '../shared/config';
import type { CoordinationStore } from '../shared/store';
import type { Controller } from './controller';

export interface RestContext {
  id: string;
  config: StraitConfig;
  store: CoordinationStore;
  /** the running controller while this process leads */
  leader: () => Controller | undefined;
}

interface ApiError {
  code: string;
  message: string;
  field?: string;
}

function fail(reply: FastifyReply, status: number, body: ApiError): FastifyReply {
  return reply.code(status).send(body);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function buildRestApi(ctx: RestContext): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  const token = ctx.config.controller.rest.token;
  const wanted = token !== undefined ? digest(`Bearer ${token}`) : undefined;

  app.addHook('onRequest', async (req, reply) => {
    if (!wanted) return;
    const got = req.headers.authorization;
    // hash both sides: equal lengths for timingSafeEqual, and nothing about the token's length leaks
    if (typeof got !== 'string' || !timingSafeEqual(digest(got), wanted)) {
      return fail(reply, 401, { code: 'STRAIT_UNAUTHORIZED', message: 'missing or wrong bearer token (Authorization: Bearer <controller.rest.token>)', field: 'authorization' });
    }
  });
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || /JSON/.test(err.message)) {
      return fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: `the request body is not valid JSON: ${err.message}`, field: 'body' });
    }
    return fail(reply, status, { code: status === 500 ? 'STRAIT_INTERNAL' : 'STRAIT_BAD_REQUEST', message: err.message });
  });
  app.setNotFoundHandler((req, reply) =>
    fail(reply, 404, { code: 'STRAIT_NOT_FOUND', message: `no endpoint ${req.method} ${req.url.split('?')[0]}; see the README's REST API table` }),
  );

  const routeNames = () => ctx.config.routes.map((r) => r.name);
  const findRoute = (name: string, reply: FastifyReply) => {
    const route = ctx.config.routes.find((r) => r.name === name);
    if (!route) {
      const near = routeNames().length > 0 ? closest(name, routeNames()) : undefined;
      fail(reply, 404, { code: 'STRAIT_UNKNOWN_ROUTE', message: `no route '${name}'${near ? ` (did you mean '${near}'?)` : ''}; routes: ${routeNames().join(', ') || '(none)'}`, field: 'name' });
    }
    return route;
  };
  const leaderOnly = async (reply: FastifyReply): Promise<Controller | undefined> => {
    const c = ctx.leader();
    if (!c) fail(reply, 409, { code: 'STRAIT_NOT_LEADER', message: `this controller (${ctx.id}) is a standby; send it to the leader '${(await ctx.store.readLeader()) ?? 'none elected'}'` });
    return c;
  };

  app.get('/v1/health', async () => ({ status: 'ok', id: ctx.id, isLeader: ctx.leader() !== undefined }));

  app.get('/v1/status', async () => {
    const c = ctx.leader();
    const s = c?.status();
    return {
      id: ctx.id,
      leader: (await ctx.store.readLeader()) ?? null,
      isLeader: c !== undefined,
      workers: s ? s.workers.length : (await ctx.store.listWorkers()).length,
      partitions: s ? { desired: c!.desiredCount(), assigned: s.assigned, unassigned: c!.desiredCount() - s.assigned, errored: s.errored, heldTopics: s.problems.length } : null,
      lag: s ? s.lag : null,
      routes: s?.routes ?? null,
      problems: s?.problems ?? null,
      lastRefresh: s?.lastRefresh ?? null,
    };
  });

  /** a route as the API shows it: config with secrets redacted, and the leader's view of it (null on a standby) */
  const routeView = (r: RouteConfig) => {
    const live = ctx.leader()?.status().routes[r.name];
    return { ...r, consumer: redactProperties(r.consumer), producer: redactProperties(r.producer), paused: live?.paused ?? r.paused, partitions: live?.partitions ?? null };
  };

  app.get('/v1/routes', async () => ctx.config.routes.map(routeView));

  app.get<{ Params: { name: string } }>('/v1/routes/:name', async (req, reply) => {
    const r = findRoute(req.params.name, reply);
    return r ? routeView(r) : reply;
  });

  app.get<{ Params: { name: string } }>('/v1/routes/:name/topics', async (req, reply) => {
    const r = findRoute(req.params.name, reply);
    if (!r) return reply;
    const c = await leaderOnly(reply);
    if (!c) return reply;
    const s = c.status();
    return { route: r.name, topics: s.routes[r.name]?.topics ?? {}, problems: s.problems.filter((p) => p.route === r.name) };
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: { name: string } }>(`/v1/routes/:name/${action}`, async (req, reply) => {
      const r = findRoute(req.params.name, reply);
      if (!r) return reply;
      const c = await leaderOnly(reply);
      if (!c) return reply;
      await c.setPaused(r.name, action === 'pause');
      return { route: r.name, paused: c.status().routes[r.name]?.paused ?? false };
    });
  }

  app.get('/v1/workers', async () => {
    const c = ctx.leader();
    const perWorker = new Map<string, number>();
    for (const a of c?.assignments() ?? []) perWorker.set(a.worker, (perWorker.get(a.worker) ?? 0) + 1);
    return (await ctx.store.listWorkers()).map((w) => ({ ...w, partitions: c ? (perWorker.get(w.id) ?? 0) : null, drained: c ? c.drained.has(w.id) : null }));
  });

  for (const action of ['drain', 'undrain'] as const) {
    app.post<{ Params: { id: string } }>(`/v1/workers/:id/${action}`, async (req, reply) => {
      const c = await leaderOnly(reply);
      if (!c) return reply;
      const ids = (await ctx.store.listWorkers()).map((w) => w.id);
      if (!ids.includes(req.params.id) && !c.drained.has(req.params.id)) {
        return fail(reply, 404, { code: 'STRAIT_UNKNOWN_WORKER', message: `no registered worker '${req.params.id}'; workers: ${ids.join(', ') || '(none)'}`, field: 'id' });
      }
      const had = await c.setDrained(req.params.id, action === 'drain');
      return { worker: req.params.id, drained: action === 'drain', partitionsBefore: had, partitions: c.assignments().filter((a) => a.worker === req.params.id).length };
    });
  }

  app.get('/v1/assignments', async (_req, reply) => {
    const c = await leaderOnly(reply);
    if (!c) return reply;
    return c.assignments();
  });

  /**
   * Every assigned partition with its owner's last load report. `?lagging=true`: only those with lag > 0, most
   * lagging first. Unknown query parameters and values other than true/false are refused (400, naming the field).
   */
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>('/v1/partitions', async (req, reply) => {
    const allowed = ['lagging'];
    for (const name of Object.keys(req.query)) {
      if (!allowed.includes(name)) {
        return fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: `unknown query parameter '${name}' (did you mean '${closest(name, allowed)}'?); allowed: ${allowed.join(', ')}`, field: name });
      }
    }
    const lagging = req.query.lagging;
    if (lagging !== undefined && lagging !== 'true' && lagging !== 'false') {
      return fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: `lagging must be true or false, got '${String(lagging)}'`, field: 'lagging' });
    }
    const c = await leaderOnly(reply);
    if (!c) return reply;
    const rows = c.partitions().map((p) => ({ route: p.route, topic: p.topic, partition: p.partition, worker: p.worker, epoch: p.epoch, bytesPerSec: p.bytesPerSec, recordsPerSec: p.recordsPerSec, lag: p.lag, errored: p.errored, reportedAt: p.reportedAt }));
    if (lagging !== 'true') return rows;
    return rows.filter((p) => p.lag !== null && p.lag > 0).sort((a, b) => b.lag! - a.lag!);
  });

  app.post('/v1/rebalance', async (_req, reply) => {
    const c = await leaderOnly(reply);
    if (!c) return reply;
    const before = new Map(c.assignments().map((a) => [`${a.route}|${a.topic}/${a.partition}`, a.worker]));
    await c.tick();
    const moved = c.assignments().filter((a) => before.get(`${a.route}|${a.topic}/${a.partition}`) !== a.worker).length;
    return { moved, assigned: c.status().assigned };
  });

  return app;
}
