/**
 * The controller's REST API (fastify). Every controller answers reads; only the leader changes anything (pause,
 * resume, rebalance, routes) — a standby answers 409 with the leader's id. Routes from the config file are read-only;
 * routes created with `PUT /v1/routes/{name}` live in the coordination store (validated exactly like a config-file
 * route) and can be updated and deleted. Errors are JSON `{ code, message, field? }`: 4xx
 * for bad input, never a crash. With `controller.rest.token` set, every request needs `Authorization: Bearer <token>`
 * (compared in constant time); secrets are never returned.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { closest } from 'fastest-levenshtein';
import { redactProperties, validateRoute, type RouteConfig, type StraitConfig } from '../shared/config';
import { ConfigError, type FieldProblem } from '../shared/errors';
import type { CoordinationStore, StoredRoute } from '../shared/store';
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
  /** every problem of an invalid body (the first one is `field`) */
  problems?: FieldProblem[];
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

  const fromFile = (name: string) => ctx.config.routes.some((r) => r.name === name);
  /** the config file's routes, then those created over REST (a stored route shadowed by a file route is not listed) */
  const allRoutes = async (): Promise<{ route: RouteConfig; stored?: StoredRoute }[]> => {
    const stored = [...(await ctx.store.readRoutes()).values()].filter((s) => !fromFile(s.route.name)).sort((a, b) => a.route.name.localeCompare(b.route.name));
    return [...ctx.config.routes.map((route) => ({ route })), ...stored.map((s) => ({ route: s.route, stored: s }))];
  };
  const unknownRoute = (name: string, names: string[], reply: FastifyReply) => {
    const near = names.length > 0 ? closest(name, names) : undefined;
    return fail(reply, 404, { code: 'STRAIT_UNKNOWN_ROUTE', message: `no route '${name}'${near ? ` (did you mean '${near}'?)` : ''}; routes: ${names.join(', ') || '(none)'}`, field: 'name' });
  };
  const findRoute = async (name: string, reply: FastifyReply) => {
    const all = await allRoutes();
    const found = all.find((r) => r.route.name === name);
    if (!found) unknownRoute(name, all.map((r) => r.route.name), reply);
    return found;
  };
  const readOnly = (name: string, reply: FastifyReply) =>
    fail(reply, 409, {
      code: 'STRAIT_ROUTE_READ_ONLY',
      message: `route '${name}' is defined in the config file, which the controller only reads: change it there and restart the controllers; routes created over REST (PUT /v1/routes/{name} with a new name) are the ones the API can change`,
      field: 'name',
    });
  const leaderOnly = async (reply: FastifyReply): Promise<Controller | undefined> => {
    const c = ctx.leader();
    if (!c) fail(reply, 409, { code: 'STRAIT_NOT_LEADER', message: `this controller (${ctx.id}) is a standby; send it to the leader '${(await ctx.store.readLeader()) ?? 'none elected'}'` });
    return c;
  };

  // Degraded while the leader sees errored partitions (its owners' load reports); a standby has nothing to judge.
  app.get('/v1/health', async (_req, reply) => {
    const errored = ctx.leader()?.status().erroredPartitions ?? [];
    const base = { id: ctx.id, isLeader: ctx.leader() !== undefined };
    if (errored.length === 0) return { status: 'ok', ...base };
    const reasons = errored.map((p) => ({ code: p.code, route: p.route, topic: p.topic, partition: p.partition, worker: p.worker, message: `${p.topic}[${p.partition}] of route '${p.route}' on worker '${p.worker}' makes no progress: ${p.code}` }));
    return reply.code(ctx.config.health.degradedStatus).send({ status: 'degraded', ...base, reasons });
  });

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

  /**
   * a route as the API shows it: config with secrets redacted, where it is defined (`config` file: read-only, or
   * `rest`: in the store, with its revision), and the leader's view of it (null on a standby)
   */
  const routeView = ({ route: r, stored }: { route: RouteConfig; stored?: StoredRoute }) => {
    const live = ctx.leader()?.status().routes[r.name];
    return {
      ...r,
      consumer: redactProperties(r.consumer),
      producer: redactProperties(r.producer),
      paused: live?.paused ?? r.paused,
      partitions: live?.partitions ?? null,
      definedIn: stored ? 'rest' : 'config',
      ...(stored ? { revision: stored.revision, updatedAt: stored.updatedAt } : {}),
    };
  };

  app.get('/v1/routes', async () => (await allRoutes()).map(routeView));

  app.get<{ Params: { name: string } }>('/v1/routes/:name', async (req, reply) => {
    const r = await findRoute(req.params.name, reply);
    return r ? routeView(r) : reply;
  });

  app.put<{ Params: { name: string }; Body: unknown }>('/v1/routes/:name', async (req, reply) => {
    const name = req.params.name;
    if (fromFile(name)) return readOnly(name, reply);
    const c = await leaderOnly(reply);
    if (!c) return reply;
    const body = req.body;
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
      const given = (body as Record<string, unknown>).name;
      if (given !== undefined && given !== name) {
        return fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: `the body names route ${JSON.stringify(given)} but the path names '${name}'; they must agree (or leave name out of the body)`, field: 'body.name' });
      }
    }
    let route: RouteConfig;
    try {
      route = validateRoute(body !== null && typeof body === 'object' && !Array.isArray(body) ? { ...body, name } : body, ctx.config, 'body');
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      const problems = e.problems.map((p) => (p.path === 'body.name' ? { ...p, path: 'name', message: `the route name in the path ${p.message}` } : p));
      return fail(reply, 400, { code: 'STRAIT_INVALID_ROUTE', message: problems.map((p) => `${p.path}: ${p.message}`).join('; '), field: problems[0]!.path, problems });
    }
    const before = c.storedRoute(name);
    if (before) {
      for (const side of ['source', 'target'] as const) {
        if (before.route[side] !== route[side]) {
          return fail(reply, 400, {
            code: 'STRAIT_INVALID_ROUTE',
            message: `body.${side}: a route's ${side} cluster cannot change ('${before.route[side]}' -> '${route[side]}'): its committed offsets belong to the clusters it has; delete it and create a route under another name`,
            field: `body.${side}`,
          });
        }
      }
    }
    const stored = await c.putRoute(route);
    return reply.code(before ? 200 : 201).send({ ...routeView({ route: stored.route, stored }), created: !before });
  });

  app.delete<{ Params: { name: string } }>('/v1/routes/:name', async (req, reply) => {
    const name = req.params.name;
    if (fromFile(name)) return readOnly(name, reply);
    const c = await leaderOnly(reply);
    if (!c) return reply;
    if (!c.storedRoute(name)) return unknownRoute(name, (await allRoutes()).map((r) => r.route.name), reply);
    await c.deleteRoute(name);
    return { route: name, deleted: true, offsets: 'kept' };
  });

  app.get<{ Params: { name: string } }>('/v1/routes/:name/topics', async (req, reply) => {
    const found = await findRoute(req.params.name, reply);
    if (!found) return reply;
    const r = found.route;
    const c = await leaderOnly(reply);
    if (!c) return reply;
    const s = c.status();
    return { route: r.name, topics: s.routes[r.name]?.topics ?? {}, problems: s.problems.filter((p) => p.route === r.name) };
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: { name: string } }>(`/v1/routes/:name/${action}`, async (req, reply) => {
      const found = await findRoute(req.params.name, reply);
      if (!found) return reply;
      const r = found.route;
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
    const rows = c.partitions().map((p) => ({ route: p.route, topic: p.topic, partition: p.partition, worker: p.worker, epoch: p.epoch, bytesPerSec: p.bytesPerSec, recordsPerSec: p.recordsPerSec, lag: p.lag, errored: p.errored, errorCode: p.errorCode, reportedAt: p.reportedAt }));
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
