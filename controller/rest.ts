/**
 * The controller's REST API (fastify). Every controller answers reads; only the leader changes anything (pause,
 * resume, rebalance, routes) — a standby answers 409 with the leader's id. Routes from the config file are read-only;
 * routes created with `PUT /v1/routes/{name}` live in the coordination store (validated exactly like a config-file
 * route, and checked for loops together with every other route) and can be updated and deleted.
 *
 * Every answer that is not a success — ours, fastify's (bad JSON, body too large, bad URL) and Node's HTTP parser's —
 * is JSON `{ code, message, field? }`, 4xx for bad input, never a crash. Before any route runs, in this order: a
 * loopback-bound API answers only loopback `Host` names (DNS rebinding); with `controller.rest.token` every request
 * needs `Authorization: Bearer <token>` (compared in constant time); a request that changes state needs
 * `Content-Type: application/json` (which a web page cannot send to another origin without a CORS preflight, and this
 * API answers no preflight). `controller.rest.tls` serves HTTPS, with `clientCa` requiring client certificates.
 * Secrets are never returned.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { ServerOptions } from 'node:https';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { closest } from 'fastest-levenshtein';
import { redactProperties, validateRoute, type RestTls, type RouteConfig, type StraitConfig } from '../shared/config';
import { ConfigError, StraitError, type FieldProblem, type HttpErrorBody } from '../shared/errors';
import { hostHeaderAllowed, isLoopbackHost } from '../shared/http-guard';
import { addedRouteProblems } from '../shared/replication-policy';
import type { CoordinationStore, StoredRoute } from '../shared/store/store';
import { routePartitionKey } from '../shared/wire';
import type { Controller } from './controller';

export interface RestContext {
  id: string;
  config: StraitConfig;
  store: CoordinationStore;
  /** the running controller while this process leads */
  leader: () => Controller | undefined;
}

interface ApiError extends HttpErrorBody {
  /** every problem of an invalid body (the first one is `field`) */
  problems?: FieldProblem[];
}

const BODY_LIMIT = 1024 * 1024;

/** methods that read; every other method is treated as a change and needs a JSON content type */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

function fail(reply: FastifyReply, status: number, body: ApiError): FastifyReply {
  return reply.code(status).send(body);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** a request value quoted in an error, cut short: headers and URLs can be kilobytes long */
function quote(v: string | undefined): string {
  if (v === undefined) return '(none)';
  return JSON.stringify(v.length > 100 ? `${v.slice(0, 97)}...` : v);
}

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/json[ \t]*(;|$)/i.test(contentType);
}

/** `controller.rest.tls` read for the HTTPS server; errors name the config path (never a key's content). */
export function restTlsOptions(tls: RestTls): ServerOptions {
  const read = (field: keyof RestTls, file: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new StraitError('STRAIT_CONFIG_UNREADABLE', `controller.rest.tls.${field}: cannot read ${file}: ${(e as Error).message}`, {
        field: `controller.rest.tls.${field}`,
        cause: e,
      });
    }
  };
  const out: ServerOptions = { cert: read('cert', tls.cert), key: read('key', tls.key), minVersion: 'TLSv1.2' };
  if (tls.clientCa !== undefined) Object.assign(out, { ca: read('clientCa', tls.clientCa), requestCert: true, rejectUnauthorized: true });
  return out;
}

/** Node's HTTP parser refused the request (bad request line or headers): answered in the API's error shape, then closed. */
function clientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'the request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'the request did not arrive in time']
        : [400, 'the request is not valid HTTP/1.1'];
  const body = JSON.stringify({ code: 'STRAIT_BAD_REQUEST', message } satisfies ApiError);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export function buildRestApi(ctx: RestContext): FastifyInstance {
  const rest = ctx.config.controller.rest;
  const common = {
    logger: false,
    bodyLimit: BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    clientErrorHandler: clientError,
    frameworkErrors: (err: { code: string; message: string }, _req: unknown, reply: FastifyReply) => {
      void fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: `the request URL cannot be used: ${err.message}`, field: 'url' });
    },
  } as const;
  // requireHostHeader off: a request without Host is answered by the Host check below, in the API's error shape
  let app: FastifyInstance;
  try {
    app = (rest.tls
      ? Fastify({ ...common, https: { ...restTlsOptions(rest.tls), requireHostHeader: false } })
      : Fastify({ ...common, http: { requireHostHeader: false } })) as unknown as FastifyInstance;
  } catch (e) {
    if (e instanceof StraitError) throw e;
    throw new StraitError(
      'STRAIT_CONFIG_INVALID',
      `controller.rest.tls: cannot serve HTTPS with the given files (${(e as Error).message}); cert and key must be a matching PEM certificate and private key`,
      { field: 'controller.rest.tls', cause: e },
    );
  }
  // Node answers an `Expect` other than 100-continue itself (417, no body) unless someone listens
  app.server.on('checkExpectation', (_req: unknown, res: { writeHead(s: number, h: Record<string, string>): unknown; end(b: string): unknown }) => {
    res.writeHead(417, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify({ code: 'STRAIT_BAD_REQUEST', message: 'only Expect: 100-continue is supported', field: 'expect' } satisfies ApiError));
  });
  const token = rest.token;
  const wanted = token !== undefined ? digest(`Bearer ${token}`) : undefined;
  const loopback = isLoopbackHost(rest.host);

  app.addHook('onRequest', async (req, reply) => {
    if (loopback && !hostHeaderAllowed(req.headers.host, rest.host)) {
      return fail(reply, 403, {
        code: 'STRAIT_FORBIDDEN_HOST',
        message: `Host ${quote(req.headers.host)} is refused: this API is bound to a loopback address (controller.rest.host ${rest.host}) and answers only the Host names 127.0.0.1, localhost, [::1] and ${rest.host} (any port), so that a web page cannot reach it by pointing its own name at 127.0.0.1`,
        field: 'host',
      });
    }
    if (wanted) {
      const got = req.headers.authorization;
      // hash both sides: equal lengths for timingSafeEqual, and nothing about the token's length leaks
      if (typeof got !== 'string' || !timingSafeEqual(digest(got), wanted)) {
        return fail(reply, 401, {
          code: 'STRAIT_UNAUTHORIZED',
          message: 'missing or wrong bearer token (Authorization: Bearer <controller.rest.token>)',
          field: 'authorization',
        });
      }
    }
    if (!READS.has(req.method) && !isJson(req.headers['content-type'])) {
      return fail(reply, 415, {
        code: 'STRAIT_UNSUPPORTED_MEDIA_TYPE',
        message: `${req.method} changes state and needs the header Content-Type: application/json (got ${quote(req.headers['content-type'])}); the body may be empty`,
        field: 'content-type',
      });
    }
  });
  // the default parser refuses an empty body; POSTs without parameters (pause, drain, rebalance) send none
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.length === 0) return done(null, undefined);
    parseJson(req, text, done);
  });
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    switch (err.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: 'the request body is not valid JSON', field: 'body' });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return fail(reply, 413, { code: 'STRAIT_BODY_TOO_LARGE', message: `the request body is larger than ${BODY_LIMIT} bytes`, field: 'body' });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return fail(reply, 415, {
          code: 'STRAIT_UNSUPPORTED_MEDIA_TYPE',
          message: 'the request body must be JSON (Content-Type: application/json)',
          field: 'content-type',
        });
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: 'Content-Length does not match the body', field: 'content-length' });
    }
    // a JSON body with __proto__ or constructor.prototype keys (secure-json-parse) is a SyntaxError with status 400
    if (err instanceof SyntaxError)
      return fail(reply, 400, {
        code: 'STRAIT_BAD_REQUEST',
        message: 'the request body is not acceptable JSON (no __proto__ or constructor.prototype keys)',
        field: 'body',
      });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return fail(reply, status, { code: status === 500 ? 'STRAIT_INTERNAL' : 'STRAIT_BAD_REQUEST', message: err.message });
  });
  app.setNotFoundHandler((req, reply) =>
    fail(reply, 404, { code: 'STRAIT_NOT_FOUND', message: `no endpoint ${req.method} ${quote(req.url.split('?')[0])}; see the README's REST API table` }),
  );

  const fromFile = (name: string) => ctx.config.routes.some((r) => r.name === name);
  /** the config file's routes, then those created over REST (a stored route shadowed by a file route is not listed) */
  const allRoutes = async (): Promise<{ route: RouteConfig; stored?: StoredRoute }[]> => {
    const stored = [...(await ctx.store.readRoutes()).values()].filter((s) => !fromFile(s.route.name)).sort((a, b) => a.route.name.localeCompare(b.route.name));
    return [...ctx.config.routes.map((route) => ({ route })), ...stored.map((s) => ({ route: s.route, stored: s }))];
  };
  const unknownRoute = (name: string, names: string[], reply: FastifyReply) => {
    const near = names.length > 0 ? closest(name, names) : undefined;
    return fail(reply, 404, {
      code: 'STRAIT_UNKNOWN_ROUTE',
      message: `no route '${name}'${near ? ` (did you mean '${near}'?)` : ''}; routes: ${names.join(', ') || '(none)'}`,
      field: 'name',
    });
  };
  const findRoute = async (name: string, reply: FastifyReply) => {
    const all = await allRoutes();
    const found = all.find((r) => r.route.name === name);
    if (!found)
      unknownRoute(
        name,
        all.map((r) => r.route.name),
        reply,
      );
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
    if (!c)
      fail(reply, 409, {
        code: 'STRAIT_NOT_LEADER',
        message: `this controller (${ctx.id}) is a standby; send it to the leader '${(await ctx.store.readLeader()) ?? 'none elected'}'`,
      });
    return c;
  };

  // Degraded while the leader sees errored partitions (its owners' load reports); a standby has nothing to judge.
  app.get('/v1/health', async (_req, reply) => {
    const errored = ctx.leader()?.status().erroredPartitions ?? [];
    const base = { id: ctx.id, isLeader: ctx.leader() !== undefined };
    if (errored.length === 0) return { status: 'ok', ...base };
    const reasons = errored.map((p) => ({
      code: p.code,
      route: p.route,
      topic: p.topic,
      partition: p.partition,
      worker: p.worker,
      message: `${p.topic}[${p.partition}] of route '${p.route}' on worker '${p.worker}' makes no progress: ${p.code}`,
    }));
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
      partitions: s
        ? { desired: c!.desiredCount(), assigned: s.assigned, unassigned: c!.desiredCount() - s.assigned, errored: s.errored, heldTopics: s.problems.length }
        : null,
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

  // Route changes run one at a time, so each is checked for loops against the routes every earlier change left (two
  // concurrent PUTs could each pass alone and close a cycle together). Only the leader changes routes, and there is
  // one leader, so a queue in this process is enough.
  let changing: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = changing.then(fn, fn);
    changing = run.catch(() => undefined);
    return run;
  };

  app.put<{ Params: { name: string }; Body: unknown }>('/v1/routes/:name', (req, reply) =>
    oneAtATime(async () => {
      const name = req.params.name;
      if (fromFile(name)) return readOnly(name, reply);
      const c = await leaderOnly(reply);
      if (!c) return reply;
      const body = req.body;
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
        const given = (body as Record<string, unknown>).name;
        if (given !== undefined && given !== name) {
          return fail(reply, 400, {
            code: 'STRAIT_BAD_REQUEST',
            message: `the body names route ${JSON.stringify(given)} but the path names '${name}'; they must agree (or leave name out of the body)`,
            field: 'body.name',
          });
        }
      }
      let route: RouteConfig;
      try {
        route = validateRoute(body !== null && typeof body === 'object' && !Array.isArray(body) ? { ...body, name } : body, ctx.config, 'body');
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        const problems = e.problems.map((p) => (p.path === 'body.name' ? { ...p, path: 'name', message: `the route name in the path ${p.message}` } : p));
        return fail(reply, 400, {
          code: 'STRAIT_INVALID_ROUTE',
          message: problems.map((p) => `${p.path}: ${p.message}`).join('; '),
          field: problems[0]!.path,
          problems,
        });
      }
      // the same separator and loop checks as the config file's routes, over the whole set this route would join
      const others = (await allRoutes())
        .filter((r) => r.route.name !== name)
        .map((r) => ({ route: r.route, definedIn: r.stored ? 'created over REST' : 'config file' }));
      const loops = addedRouteProblems(route, others, Object.keys(ctx.config.clusters), 'body');
      if (loops.length > 0) {
        return fail(reply, 400, {
          code: 'STRAIT_INVALID_ROUTE',
          message: loops.map((p) => `${p.path}: ${p.message}`).join('; '),
          field: loops[0]!.path,
          problems: loops,
        });
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
    }),
  );

  app.delete<{ Params: { name: string } }>('/v1/routes/:name', (req, reply) =>
    oneAtATime(async () => {
      const name = req.params.name;
      if (fromFile(name)) return readOnly(name, reply);
      const c = await leaderOnly(reply);
      if (!c) return reply;
      if (!c.storedRoute(name))
        return unknownRoute(
          name,
          (await allRoutes()).map((r) => r.route.name),
          reply,
        );
      await c.deleteRoute(name);
      return { route: name, deleted: true, offsets: 'kept' };
    }),
  );

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
        return fail(reply, 404, {
          code: 'STRAIT_UNKNOWN_WORKER',
          message: `no registered worker '${req.params.id}'; workers: ${ids.join(', ') || '(none)'}`,
          field: 'id',
        });
      }
      const had = await c.setDrained(req.params.id, action === 'drain');
      return {
        worker: req.params.id,
        drained: action === 'drain',
        partitionsBefore: had,
        partitions: c.assignments().filter((a) => a.worker === req.params.id).length,
      };
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
        return fail(reply, 400, {
          code: 'STRAIT_BAD_REQUEST',
          message: `unknown query parameter '${name}' (did you mean '${closest(name, allowed)}'?); allowed: ${allowed.join(', ')}`,
          field: name,
        });
      }
    }
    const lagging = req.query.lagging;
    if (lagging !== undefined && lagging !== 'true' && lagging !== 'false') {
      return fail(reply, 400, { code: 'STRAIT_BAD_REQUEST', message: `lagging must be true or false, got '${String(lagging)}'`, field: 'lagging' });
    }
    const c = await leaderOnly(reply);
    if (!c) return reply;
    const rows = c.partitions().map((p) => ({
      route: p.route,
      topic: p.topic,
      partition: p.partition,
      worker: p.worker,
      epoch: p.epoch,
      bytesPerSec: p.bytesPerSec,
      recordsPerSec: p.recordsPerSec,
      lag: p.lag,
      errored: p.errored,
      errorCode: p.errorCode,
      reportedAt: p.reportedAt,
    }));
    if (lagging !== 'true') return rows;
    return rows.filter((p) => p.lag !== null && p.lag > 0).sort((a, b) => b.lag! - a.lag!);
  });

  app.post('/v1/rebalance', async (_req, reply) => {
    const c = await leaderOnly(reply);
    if (!c) return reply;
    const before = new Map(c.assignments().map((a) => [routePartitionKey(a), a.worker]));
    await c.tick();
    const moved = c.assignments().filter((a) => before.get(routePartitionKey(a)) !== a.worker).length;
    return { moved, assigned: c.status().assigned };
  });

  return app;
}
