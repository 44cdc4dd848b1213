/**
 * Security of the controller's REST API, each closure proven by trying the attack against a real controller (real
 * ZooKeeper, real Kafka): a non-loopback bind without a token is refused at config check; TLS and mTLS (certificates
 * made here with openssl) refuse plain HTTP, clients without a certificate and clients with a certificate from another
 * CA, and the CLI talks TLS with --ca/--cert/--key; changes without a JSON content type and requests with a foreign
 * Host are refused; every error on every door has one JSON shape; REST routes meet the same loop checks as config-file
 * routes; patterns run on RE2 (catastrophic patterns are quick and lookaround/backreferences are refused with the
 * field named); and a fast-check fuzz of methods, paths, headers, bodies and sizes never gets a 5xx, a crash, or a
 * change without the token.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { stringify } from 'yaml';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import { validateConfig, type RouteConfig } from '../../shared/config';
import { addedRouteProblems, fullMatch, selectTopic } from '../../shared/replication-policy';
import { bootstrap, createTopic, testClusters, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';
import { configProblems } from '../helpers/config';

t.teardown(stopAll);

const TOKEN = 'security-rest-token-0123456789abcdef';
const STRAIT = join(projectRoot(), 'dist', 'bin', 'strait.js');

// ---------------------------------------------------------------- helpers

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface Call {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** false: send no Host header at all */
  setHost?: boolean;
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  /** send the token (default true) */
  token?: boolean;
}

/** One request with node:http(s), which (unlike fetch) lets a test send any Host, method and content type. */
function send(base: string, c: Call): Promise<Answer> {
  const url = new URL(base);
  const headers: Record<string, string> = { ...(c.token === false ? {} : { authorization: `Bearer ${TOKEN}` }), ...c.headers };
  if (c.body !== undefined) headers['content-length'] = String(Buffer.byteLength(c.body));
  const opts: RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer } = {
    host: url.hostname,
    port: url.port,
    method: c.method ?? 'GET',
    path: c.path,
    headers,
    agent: false,
    setHost: c.setHost !== false && !Object.keys(headers).some((h) => h.toLowerCase() === 'host'),
    // the certificate is checked against the server name, which Node would otherwise take from the Host header
    ...(c.tls ? { ...c.tls, servername: 'localhost' } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to ${c.method ?? 'GET'} ${c.path} within 20 s`)));
    req.end(c.body);
  });
}

type ApiBody = { code?: unknown; message?: unknown; field?: unknown } & Record<string, unknown>;

function parse(a: Answer): ApiBody {
  try {
    return JSON.parse(a.text) as ApiBody;
  } catch {
    return {};
  }
}

/** The one error shape: `{code: 'STRAIT_*', message, field?}` as JSON. */
function isApiError(a: Answer): boolean {
  if (!/^application\/json/.test(String(a.headers['content-type']))) return false;
  const b = parse(a);
  return (
    typeof b.code === 'string' && /^STRAIT_[A-Z_]+$/.test(b.code) && typeof b.message === 'string' && (b.field === undefined || typeof b.field === 'string')
  );
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate for 127.0.0.1/localhost/::1, a client certificate, and a client of another CA. */
function makeCertificates(): Record<'dir' | 'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'rogueCert' | 'rogueKey', string> {
  const dir = mkdtempSync(join(tmpdir(), 'strait-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'rogue-ca'])
    openssl(dir, 'req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=strait test ${ca}`);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:::1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  const issue = (name: string, ca: string, ext: string) => {
    openssl(dir, 'req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      ext,
    );
  };
  issue('server', 'ca', 'server.ext');
  issue('client', 'ca', 'client.ext');
  issue('rogue', 'rogue-ca', 'client.ext');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.pem'),
    rogueKey: p('rogue.key'),
  };
}

// ---------------------------------------------------------------- config check

t.test('config check: a non-loopback REST bind needs a token (or allowUnauthenticated); patterns must run on RE2', async (t) => {
  const clusters = { a: { bootstrap: '127.0.0.1:9092' }, b: { bootstrap: '127.0.0.1:9093' } };
  const withRest = (rest: Record<string, unknown>) => configProblems({ clusters, controller: { rest } });
  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'replicator.example.com', '128.0.0.1']) {
    const ps = withRest({ host });
    t.equal(ps.length, 1, `${host}: refused without a token`);
    t.match(ps[0], { path: 'controller.rest.host', message: /not a loopback address.*controller\.rest\.token.*controller\.rest\.allowUnauthenticated: true/ });
    t.same(withRest({ host, token: TOKEN }), [], `${host} with a token`);
    t.same(withRest({ host, allowUnauthenticated: true }), [], `${host} with allowUnauthenticated: true`);
  }
  for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]']) t.same(withRest({ host }), [], `${host}: loopback needs no token`);
  t.match(withRest({ tls: { cert: '/x.pem' } }), [{ path: 'controller.rest.tls.key', message: /required/ }], 'tls needs cert and key');

  const routeWith = (include: string[], groupsExclude: string[] = []) =>
    configProblems({ clusters, routes: [{ name: 'r', source: 'a', target: 'b', topics: { include }, groups: { exclude: groupsExclude } }] });
  const refused: [string, RegExp][] = [
    ['orders(?=-v2)', /lookahead \(\?=\.\.\.\) is not supported \(patterns run on RE2, linear time\)/],
    ['orders(?!-test)', /lookahead \(\?!\.\.\.\) is not supported/],
    ['(?<=x)orders', /lookbehind \(\?<=\.\.\.\) is not supported/],
    ['(?<!x)orders', /lookbehind \(\?<!\.\.\.\) is not supported/],
    ['(a)\\1', /backreferences \(\\1\) are not supported \(patterns run on RE2, linear time\)/],
    ['(?<n>a)\\k<n>', /named backreferences/],
  ];
  for (const [pattern, why] of refused) {
    const ps = routeWith(['ok', pattern]);
    t.equal(ps.length, 1, `${pattern}: one problem`);
    t.match(ps[0], { path: 'routes[0].topics.include[1]', message: why }, `${pattern}: refused, the field named`);
  }
  t.match(routeWith(['.*'], ['(?<!x)y']), [{ path: 'routes[0].groups.exclude[0]', message: /lookbehind/ }], 'group patterns too');
  for (const fine of ['(a*)*b', '(a|a)*b', '[(?=]x', '\\(?=x', 'orders\\.[0-9]+', '(?:eu|us)-.*', '(?i)orders']) {
    t.same(routeWith([fine]), [], `${fine}: accepted (no construct RE2 lacks)`);
  }

  // the CLI's config check says the same, naming the field, and exits non-zero
  const dir = mkdtempSync(join(tmpdir(), 'strait-check-'));
  const file = join(dir, 'strait.yaml');
  writeFileSync(file, stringify({ clusters, routes: [{ name: 'r', source: 'a', target: 'b', topics: { include: ['ok', '(?<=x)orders'] } }] }));
  const check = spawnSync(process.execPath, [STRAIT, 'config', 'check', file], { encoding: 'utf8' });
  t.not(check.status, 0, 'config check fails');
  t.match(check.stderr, /routes\[0\]\.topics\.include\[1\]: '\(\?<=x\)orders' is not a valid regular expression: lookbehind/);
  writeFileSync(file, stringify({ clusters, controller: { rest: { host: '0.0.0.0' } } }));
  const open = spawnSync(process.execPath, [STRAIT, 'config', 'check', file], { encoding: 'utf8' });
  t.not(open.status, 0, 'config check fails');
  t.match(open.stderr, /controller\.rest\.host: '0\.0\.0\.0' is not a loopback address/);
});

t.test('patterns that are exponential on a backtracking engine match in linear time', async (t) => {
  // on JavaScript's RegExp each of these takes time exponential in the run of a's: 100,000 would never finish
  for (const [pattern, name] of [
    ['(a*)*b', `${'a'.repeat(100_000)}c`],
    ['(a|a)*b', `${'a'.repeat(100_000)}c`],
    ['(a+)+$x', `${'a'.repeat(100_000)}`],
    ['(.*a){20}', `${'a'.repeat(10_000)}`],
  ] as const) {
    const started = process.hrtime.bigint();
    const matched = fullMatch([pattern], name);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.ok(ms < 2000, `${pattern} against ${name.length} characters: ${ms.toFixed(1)} ms`);
    t.equal(matched, pattern === '(.*a){20}', `${pattern}: the right answer`);
  }
  t.ok(fullMatch(['(a*)*b'], 'aaab') && !fullMatch(['(a*)*b'], 'aaabx'), 'whole names only');
  // a pattern RE2 refuses that still reaches matching (a route stored before patterns ran on RE2) never widens a route
  const legacy = validateConfig({
    clusters: { a: { bootstrap: '127.0.0.1:9092' }, b: { bootstrap: '127.0.0.1:9093' } },
    routes: [{ name: 'r', source: 'a', target: 'b' }],
  }).routes[0]!;
  t.same(
    selectTopic({ ...legacy, topics: { include: ['orders(?=x)'], exclude: [] } }, 'orders', ['a', 'b']),
    { selected: false, reason: 'not-included' },
    'in an include list it matches nothing',
  );
  t.same(
    selectTopic({ ...legacy, topics: { include: ['.*'], exclude: ['(a)\\1'] } }, 'orders', ['a', 'b']),
    { selected: false, reason: 'excluded' },
    'in an exclude list it matches everything',
  );
  t.same(
    selectTopic({ ...legacy, topics: { include: ['.*'], exclude: [] } }, 'orders', ['a', 'b']),
    { selected: true },
    'the same route without it selects the topic',
  );
});

t.test("a REST route is checked for loops together with the config file's and the other stored routes", async (t) => {
  const c = validateConfig({
    clusters: { a: { bootstrap: '127.0.0.1:9092' }, b: { bootstrap: '127.0.0.1:9093' }, c: { bootstrap: '127.0.0.1:9094' } },
    routes: [
      { name: 'ab', source: 'a', target: 'b' },
      { name: 'cb', source: 'c', target: 'b', naming: { policy: 'identity' } },
    ],
  });
  const others = c.routes.map((route) => ({ route, definedIn: 'config file' }));
  const aliases = Object.keys(c.clusters);
  const route = (r: Partial<RouteConfig> & { source: string; target: string }): RouteConfig => ({
    ...c.routes[0]!,
    name: 'new',
    ...r,
    naming: { policy: 'prefix', separator: '.', ...r.naming },
  });
  t.same(addedRouteProblems(route({ source: 'b', target: 'a' }), others, aliases, 'body'), [], 'b->a with the same policy and separator closes a sound pair');
  t.match(addedRouteProblems(route({ source: 'b', target: 'a', naming: { policy: 'prefix', separator: '-' } }), others, aliases, 'body'), [
    { path: 'body.naming.separator', message: /differs from route 'ab' \(config file\)\.naming\.separator/ },
  ]);
  t.match(addedRouteProblems(route({ source: 'b', target: 'a', naming: { policy: 'identity', separator: '.' } }), others, aliases, 'body'), [
    { path: 'body.naming.policy', message: /route 'ab' \(config file\)/ },
  ]);
  t.match(
    addedRouteProblems(route({ source: 'b', target: 'c', naming: { policy: 'prefix', separator: '.' } }), others, aliases, 'body'),
    [{ path: 'body.naming.policy', message: /route 'cb' \(config file\)/ }],
    'a cycle closed with the other route of the pair is found too',
  );
  t.same(addedRouteProblems(route({ source: 'a', target: 'c' }), others, aliases, 'body'), [], 'a route on no cycle');
});

// ---------------------------------------------------------------- TLS, mTLS, Host, content type, topology, patterns

t.test('TLS + mTLS + token controller: every door refuses what it must, the CLI gets through', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const certs = makeCertificates();
  const prefix = uniqueName('sec');
  const slow = `${prefix}-${'a'.repeat(120)}c`;
  const match = `${prefix}-${'a'.repeat(120)}b`;
  await createTopic(bootstrap('a'), slow, 1);
  await createTopic(bootstrap('a'), match, 1);
  const config = writeConfig({
    deployment: uniqueName('sec'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') }, c: { bootstrap: bootstrap('c') } },
    routes: [{ name: 'evil', source: 'a', target: 'b', topics: { include: [`${prefix}-(a*)*b`, `${prefix}-(a|a)*b`] } }],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: 4000, auth: zk.auth },
    controller: { refreshTopicsIntervalMs: 500, rest: { port: 0, token: TOKEN, tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca } } },
  });
  const controller = new StraitProcess(config, 'controller');
  const base = await controller.restUrl;
  t.match(base, /^https:\/\/127\.0\.0\.1:[0-9]+$/, 'served over https');
  const { readFileSync } = await import('node:fs');
  const tls = { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) };
  const call = (c: Call) => send(base, { tls, ...c });
  await waitFor('the controller leads', async () => parse(await call({ path: '/v1/health' })).isLeader === true, 30_000, 200);

  // TLS doors
  await t.rejects(send(base.replace('https:', 'http:'), { path: '/v1/health' }), 'plain HTTP to the TLS port gets no answer');
  await t.rejects(send(base, { path: '/v1/health', tls: { ca: tls.ca } }), 'no client certificate: refused');
  await t.rejects(
    send(base, { path: '/v1/health', tls: { ca: tls.ca, cert: readFileSync(certs.rogueCert), key: readFileSync(certs.rogueKey) } }),
    'a client certificate from another CA: refused',
  );
  await t.rejects(
    send(base, { path: '/v1/health', tls: { ca: readFileSync(join(certs.dir, 'rogue-ca.pem')), cert: tls.cert, key: tls.key } }),
    'the server certificate does not verify against another CA',
  );
  const noToken = await call({ path: '/v1/status', token: false });
  t.equal(noToken.status, 401, 'a client certificate is not a token');
  t.ok(isApiError(noToken));
  t.equal((await call({ path: '/v1/health' })).status, 200, 'certificate + token: answered');

  // Host (DNS rebinding)
  for (const host of ['evil.example', `evil.example:${new URL(base).port}`, '127.0.0.1.evil.example', 'localhost.evil.example:80', '']) {
    const a = await call({ path: '/v1/health', headers: { host } });
    t.equal(a.status, 403, `Host ${JSON.stringify(host)}: refused`);
    t.match(parse(a), { code: 'STRAIT_FORBIDDEN_HOST', field: 'host' });
  }
  const noHost = await call({ path: '/v1/health', setHost: false });
  t.equal(noHost.status, 403, 'no Host header: refused');
  t.match(parse(noHost), { code: 'STRAIT_FORBIDDEN_HOST', field: 'host' });
  for (const host of ['localhost', 'localhost:8470', '127.0.0.1:1', '[::1]:9', 'LOCALHOST'])
    t.equal((await call({ path: '/v1/health', headers: { host } })).status, 200, `Host ${host}: answered`);
  const rebound = await call({ method: 'POST', path: '/v1/rebalance', headers: { host: 'evil.example', 'content-type': 'application/json' } });
  t.equal(rebound.status, 403, 'a change with a foreign Host: refused');

  // content type of changes
  for (const [ct, body] of [
    [undefined, undefined],
    ['text/plain', '{}'],
    ['application/x-www-form-urlencoded', 'a=1'],
    ['multipart/form-data; boundary=x', '--x--'],
    ['application/jsonp', '{}'],
  ] as const) {
    const a = await call({ method: 'POST', path: '/v1/rebalance', headers: ct ? { 'content-type': ct } : {}, ...(body !== undefined ? { body } : {}) });
    t.equal(a.status, 415, `POST with content type ${ct ?? '(none)'}: 415`);
    t.match(parse(a), { code: 'STRAIT_UNSUPPORTED_MEDIA_TYPE', field: 'content-type', message: /Content-Type: application\/json/ });
  }
  t.equal(
    (await call({ method: 'POST', path: '/v1/rebalance', headers: { 'content-type': 'application/json' } })).status,
    200,
    'JSON content type, empty body: answered',
  );
  t.equal(
    (await call({ method: 'POST', path: '/v1/rebalance', headers: { 'content-type': 'Application/JSON; charset=utf-8' }, body: '{}' })).status,
    200,
    'with a charset: answered',
  );
  const form = await call({
    method: 'PUT',
    path: '/v1/routes/formed',
    headers: { 'content-type': 'text/plain' },
    body: JSON.stringify({ source: 'a', target: 'c', topics: { include: [`${prefix}-x`] } }),
  });
  t.equal(form.status, 415, 'a route PUT as text/plain: 415');
  t.equal((await call({ method: 'DELETE', path: '/v1/routes/evil' })).status, 415, 'DELETE without a content type: 415');
  t.equal((await call({ path: '/v1/routes/formed' })).status, 404, 'and nothing was created');

  // one error shape on every door
  const doors: [string, Call, number, string][] = [
    ['unknown path', { path: '/v1/nowhere' }, 404, 'STRAIT_NOT_FOUND'],
    ['unknown method', { method: 'PATCH', path: '/v1/routes/evil', headers: { 'content-type': 'application/json' }, body: '{}' }, 404, 'STRAIT_NOT_FOUND'],
    ['bad JSON', { method: 'PUT', path: '/v1/routes/x', headers: { 'content-type': 'application/json' }, body: '{"source": ' }, 400, 'STRAIT_BAD_REQUEST'],
    [
      'prototype poisoning',
      {
        method: 'PUT',
        path: '/v1/routes/x',
        headers: { 'content-type': 'application/json' },
        body: '{"__proto__": {"polluted": true}, "source": "a", "target": "c"}',
      },
      400,
      'STRAIT_BAD_REQUEST',
    ],
    [
      'body too large',
      {
        method: 'PUT',
        path: '/v1/routes/x',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: 'a', target: 'c', pad: 'x'.repeat(1_200_000) }),
      },
      413,
      'STRAIT_BODY_TOO_LARGE',
    ],
    ['bad URL encoding', { path: '/v1/routes/%E0%A4%A' }, 400, 'STRAIT_BAD_REQUEST'],
    ['no token', { path: '/v1/routes', token: false }, 401, 'STRAIT_UNAUTHORIZED'],
    ['unknown route', { path: '/v1/routes/evl' }, 404, 'STRAIT_UNKNOWN_ROUTE'],
    ['read-only route', { method: 'DELETE', path: '/v1/routes/evil', headers: { 'content-type': 'application/json' } }, 409, 'STRAIT_ROUTE_READ_ONLY'],
  ];
  for (const [what, c, status, code] of doors) {
    const a = await call(c);
    t.equal(a.status, status, `${what}: ${status}`);
    t.ok(isApiError(a), `${what}: JSON {code, message, field?} (${a.text.slice(0, 120)})`);
    t.equal(parse(a).code, code, `${what}: ${code}`);
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted');

  // loops: a REST route meets the config file's routes and the stored ones
  const put = (name: string, body: unknown) =>
    call({ method: 'PUT', path: `/v1/routes/${name}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const sep = await put('back', { source: 'b', target: 'a', naming: { separator: '-' }, topics: { include: [`${prefix}-.*`] } });
  t.equal(sep.status, 400);
  t.match(parse(sep), { code: 'STRAIT_INVALID_ROUTE', field: 'body.naming.separator', message: /route 'evil' \(config file\)/ });
  const pol = await put('back', { source: 'b', target: 'a', naming: { policy: 'identity' }, topics: { include: [`${prefix}-.*`] } });
  t.match(parse(pol), { code: 'STRAIT_INVALID_ROUTE', field: 'body.naming.policy' });
  const cb = await put('cb', { source: 'c', target: 'b', naming: { policy: 'identity' }, topics: { include: [`${prefix}-.*`] } });
  t.equal(cb.status, 201, cb.text);
  const bc = await put('bc', { source: 'b', target: 'c', topics: { include: [`${prefix}-.*`] } });
  t.equal(bc.status, 400, 'a cycle closed with another REST route is found');
  t.match(parse(bc), { field: 'body.naming.policy', message: /route 'cb' \(created over REST\)/ });
  t.equal((await call({ path: '/v1/routes/bc' })).status, 404, 'not created');
  // each of these is sound alone; together they make a cycle a <-> c with two policies
  const q = { include: [`${prefix}-q.*`] };
  const [q1, q2] = await Promise.all([
    put('q1', { source: 'a', target: 'c', naming: { policy: 'identity' }, topics: q }),
    put('q2', { source: 'c', target: 'a', topics: q }),
  ]);
  t.same([q1.status, q2.status].sort(), [201, 400], 'two concurrent PUTs that close a cycle together: one is refused');
  const winner = q1.status === 201 ? 'q1' : 'q2';
  t.equal((await call({ method: 'DELETE', path: `/v1/routes/${winner}`, headers: { 'content-type': 'application/json' } })).status, 200);

  // patterns over REST: refused constructs name the field; catastrophic ones are accepted and harmless
  const look = await put('look', { source: 'a', target: 'c', topics: { include: ['ok', 'x(?=y)'] } });
  t.equal(look.status, 400);
  t.match(parse(look), { code: 'STRAIT_INVALID_ROUTE', field: 'body.topics.include[1]', message: /lookahead.*RE2/ });
  const bref = await put('look', { source: 'a', target: 'c', groups: { exclude: ['(a)\\1'] } });
  t.match(parse(bref), { field: 'body.groups.exclude[0]', message: /backreferences/ });
  const evil2 = await put('evil2', { source: 'a', target: 'c', topics: { include: [`${prefix}-(a|a)*b`, `${prefix}-(a*)*b`] } });
  t.equal(evil2.status, 201, evil2.text);

  // the config route's catastrophic patterns: refreshes keep completing, the right topic is selected, answers are quick
  await waitFor(
    'the catastrophic route selected its topic',
    async () => {
      const a = parse(await call({ path: '/v1/routes/evil/topics' }));
      return Object.keys((a.topics ?? {}) as object).length > 0;
    },
    30_000,
    250,
  );
  t.same(
    Object.keys(parse(await call({ path: '/v1/routes/evil/topics' })).topics as object),
    [match],
    `only ${match.slice(0, 30)}... matches; the 'c' name is refused quickly`,
  );
  await waitFor(
    'evil2 selected its topic',
    async () => Object.keys((parse(await call({ path: '/v1/routes/evil2/topics' })).topics ?? {}) as object).length === 1,
    30_000,
    250,
  );
  const first = parse(await call({ path: '/v1/status' })).lastRefresh;
  let slowest = 0;
  for (let i = 0; i < 15; i++) {
    const started = Date.now();
    t.equal((await call({ path: '/v1/health' })).status, 200);
    slowest = Math.max(slowest, Date.now() - started);
    await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(slowest < 2000, `the controller keeps answering (slowest of 15: ${slowest} ms)`);
  t.not(parse(await call({ path: '/v1/status' })).lastRefresh, first, 'topic refreshes keep completing');

  // the CLI over TLS: --ca/--cert/--key, or STRAIT_CA/STRAIT_CERT/STRAIT_KEY
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [STRAIT, ...args, '--url', base], { encoding: 'utf8', env: { ...process.env, STRAIT_TOKEN: TOKEN, ...env } });
  const files = ['--ca', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey];
  const st = cli(['status', '--json', ...files]);
  t.equal(st.status, 0, st.stderr);
  t.match(JSON.parse(st.stdout || '{}'), { isLeader: true });
  const viaEnv = cli(['status', '--json'], { STRAIT_CA: certs.ca, STRAIT_CERT: certs.clientCert, STRAIT_KEY: certs.clientKey });
  t.equal(viaEnv.status, 0, viaEnv.stderr);
  const noCert = cli(['status', '--ca', certs.ca]);
  t.not(noCert.status, 0, 'the CLI without a client certificate is refused');
  t.match(noCert.stderr, /cannot reach the controller/);
  const noCa = cli(['status', '--cert', certs.clientCert, '--key', certs.clientKey]);
  t.not(noCa.status, 0, 'the CLI does not trust an unknown server CA');
  const routeFile = join(certs.dir, 'route.yaml');
  writeFileSync(routeFile, stringify({ name: 'made', source: 'a', target: 'c', topics: { include: [`${prefix}-made`] } }));
  const created = cli(['routes', 'create', '--file', routeFile, '--json', ...files]);
  t.equal(created.status, 0, created.stderr);
  t.match(JSON.parse(created.stdout || '{}'), { name: 'made', created: true });
  const paused = cli(['routes', 'pause', 'made', '--json', ...files]);
  t.equal(paused.status, 0, paused.stderr);
  t.match(JSON.parse(paused.stdout || '{}'), { route: 'made', paused: true }, 'a POST from the CLI carries the JSON content type');
  const deleted = cli(['routes', 'delete', 'made', '--json', ...files]);
  t.equal(deleted.status, 0, deleted.stderr);
  t.equal(cli(['rebalance', ...files]).status, 0, 'rebalance');

  // the metrics endpoint: read-only, loopback Host names only
  const metrics = await controller.metricsUrl;
  t.equal((await send(metrics, { path: '/metrics', token: false })).status, 200);
  const foreign = await send(metrics, { path: '/v1/status', token: false, headers: { host: 'evil.example' } });
  t.equal(foreign.status, 403, 'metrics endpoint: a foreign Host is refused');
  t.ok(isApiError(foreign));
  const post = await send(metrics, { method: 'POST', path: '/metrics', token: false, headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(post.status, 404, 'metrics endpoint: nothing but GET');
  t.ok(isApiError(post));

  for (const route of ['cb', 'evil2'])
    t.equal((await call({ method: 'DELETE', path: `/v1/routes/${route}`, headers: { 'content-type': 'application/json' } })).status, 200);
  t.equal(controller.child.exitCode, null, 'the controller still runs after all of it');
  t.equal(await controller.stop(), 0, 'stopped cleanly');
});

t.test('a TLS config whose files are unreadable or do not match is refused naming the field', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const certs = makeCertificates();
  for (const [tls, field] of [
    [{ cert: join(certs.dir, 'missing.pem'), key: certs.serverKey }, /controller\.rest\.tls\.cert: cannot read/],
    [{ cert: certs.serverCert, key: certs.clientKey }, /controller\.rest\.tls: cannot serve HTTPS/],
  ] as const) {
    const config = writeConfig({
      deployment: uniqueName('sec-bad'),
      clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
      store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: 4000, auth: zk.auth },
      controller: { rest: { port: 0, tls } },
    });
    const p = new StraitProcess(config, 'controller');
    const code = await p.exited;
    t.not(code, 0, 'the controller does not start');
    t.match(p.output, field);
    t.notMatch(p.output, /BEGIN [A-Z ]*PRIVATE KEY/, 'no key material in the output');
  }
});

// ---------------------------------------------------------------- fuzz

t.test('fuzz: random methods, paths, headers, bodies and sizes: never a 5xx, a crash, or a change without the token', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const prefix = uniqueName('fz');
  const config = writeConfig({
    deployment: uniqueName('fz'),
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: 'fz', source: 'a', target: 'b', topics: { include: [`${prefix}-x`] } }],
    store: { type: 'zookeeper', connect: zk.connect, sessionTimeoutMs: 4000, auth: zk.auth },
    controller: { refreshTopicsIntervalMs: 1000, rest: { port: 0, token: TOKEN } },
  });
  const controller = new StraitProcess(config, 'controller');
  const base = await controller.restUrl;
  const port = new URL(base).port;
  await waitFor('the controller leads', async () => parse(await send(base, { path: '/v1/health' })).isLeader === true, 30_000, 200);
  // a route created with the token, so the unauthenticated phase has a REST route it could try to change or delete
  const seed = await send(base, {
    method: 'PUT',
    path: '/v1/routes/seeded',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ source: 'a', target: 'b', topics: { include: [`${prefix}-seeded`] } }),
  });
  t.equal(seed.status, 201, 'a route created with the token');
  const snapshot = async () => {
    const routes = JSON.parse((await send(base, { path: '/v1/routes' })).text) as { name: string; paused: boolean; revision?: number; topics: unknown }[];
    const workers = (await send(base, { path: '/v1/workers' })).text;
    return JSON.stringify({ routes: routes.map((r) => [r.name, r.paused, r.revision ?? null, r.topics]), workers });
  };
  const before = await snapshot();

  const safeChars = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCZ0123456789-._~%/?&=#;:@!$\'()*+,[]{}|\\^`"<>'.split(''));
  const pathArb = fc.oneof(
    fc.constantFrom(
      '/v1/health',
      '/v1/status',
      '/v1/routes',
      '/v1/routes/fz',
      '/v1/routes/seeded',
      '/v1/routes/seeded/pause',
      '/v1/routes/fz/resume',
      '/v1/routes/fz/topics',
      '/v1/workers',
      '/v1/workers/w1/drain',
      '/v1/assignments',
      '/v1/partitions?lagging=true',
      '/v1/rebalance',
      '/',
      '/metrics',
    ),
    fc
      .tuple(fc.constantFrom('/v1/routes/', '/v1/workers/', '/v1/', '/', '//', '/v1/routes/seeded/'), fc.string({ unit: safeChars, maxLength: 300 }))
      .map(([a, b]) => a + b),
    fc.constantFrom(
      '/v1/routes/%00',
      '/v1/routes/..%2f..%2fetc',
      '/v1/routes/%E0%A4%A',
      '/v1/partitions?lagging=1&lagging=2',
      '/v1/routes/a%20b',
      `/v1/routes/${'n'.repeat(5000)}`,
    ),
  );
  const wrongAuth = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      TOKEN,
      `bearer ${TOKEN.toUpperCase()}`,
      'Bearer ',
      'Basic dXNlcjpwYXNz',
      `Bearer  ${TOKEN}`,
    ),
    fc.string({ unit: safeChars, maxLength: 200 }),
  );
  const routeLike = fc.record(
    {
      name: fc.oneof(fc.constantFrom('seeded', 'fz', 'other'), fc.string({ maxLength: 20 })),
      source: fc.constantFrom('a', 'b', 'nowhere', ''),
      target: fc.constantFrom('a', 'b', 'nowhere'),
      // valid changes touch only this test's (absent) topics: nothing is created on the shared clusters
      topics: fc.record({
        include: fc.array(fc.oneof(fc.constant(`${prefix}-.*`), fc.constantFrom('(?=x)', '(a)\\1', '(', '(a*)*b', '[')), { minLength: 1, maxLength: 3 }),
      }),
      naming: fc.record(
        { policy: fc.constantFrom('prefix', 'identity', 'bogus'), separator: fc.constantFrom('.', '-', '', '..........') },
        { requiredKeys: [] },
      ),
      paused: fc.oneof(fc.boolean(), fc.string()),
      producer: fc.dictionary(fc.string({ maxLength: 30 }), fc.oneof(fc.string(), fc.integer(), fc.boolean())),
      replicationFactor: fc.integer({ min: -5, max: 40_000 }),
    },
    { requiredKeys: ['topics'] },
  );
  const bodyArb = fc.oneof(
    fc.constant(undefined),
    fc.constant(''),
    routeLike.map((r) => JSON.stringify(r)),
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 500 }),
    fc.constantFrom('{"__proto__": {"x": 1}}', '{"constructor": {"prototype": {"x": 1}}}', '{', 'null', '[]', '"x"', '1e999999'),
    fc.integer({ min: 1, max: 1_300_000 }).map((n) => `{"pad": "${'x'.repeat(n)}"}`),
  );
  const contentType = fc.oneof(
    { arbitrary: fc.constant('application/json'), weight: 4 },
    fc.constant(undefined),
    fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=z',
      'application/json-patch+json',
      'APPLICATION/JSON',
    ),
    fc.string({ unit: safeChars, maxLength: 50 }),
  );
  // undefined: the client's own Host (127.0.0.1:port); null: no Host header at all
  const hostArb = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 6 },
    fc.constant(null),
    fc.constantFrom(`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'evil.example', '', 'localhost.evil.example', '127.0.0.1:99999'),
    fc.string({ unit: safeChars, maxLength: 60 }),
  );
  const extraHeaders = fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.string({ unit: safeChars, maxLength: 100 }), { maxKeys: 4 });
  const request = (auth: fc.Arbitrary<string | undefined>) =>
    fc.record({
      method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      path: pathArb,
      auth,
      contentType,
      host: hostArb,
      body: bodyArb,
      extra: extraHeaders,
    });
  type Req = {
    method: string;
    path: string;
    auth: string | undefined;
    contentType: string | undefined;
    host: string | null | undefined;
    body: string | undefined;
    extra: Record<string, string>;
  };
  const fire = (r: Req) => {
    const headers: Record<string, string> = { ...r.extra };
    delete headers.authorization;
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    delete headers.host;
    delete headers['content-type'];
    if (r.auth !== undefined) headers.authorization = r.auth;
    if (r.contentType !== undefined) headers['content-type'] = r.contentType;
    if (typeof r.host === 'string') headers.host = r.host;
    const body = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD' ? r.body : undefined;
    return send(base, { method: r.method, path: r.path, headers, token: false, setHost: r.host !== null, ...(body !== undefined ? { body } : {}) }).catch(
      (e: NodeJS.ErrnoException) => {
        // A body over the API's 1 MiB limit is refused with 413 and `Connection: close` before it is read; the client,
        // still writing it, may see the socket closed (EPIPE / ECONNRESET) before it reads the 413. That is the server
        // refusing, not failing: counted as status 0. Anything else, or for a body within the limit, is a failure.
        if ((e.code === 'EPIPE' || e.code === 'ECONNRESET') && body !== undefined && Buffer.byteLength(body) > 1024 * 1024)
          return { status: 0, headers: {}, text: '' } satisfies Answer;
        throw e;
      },
    );
  };
  const statuses = new Map<number, number>();
  const check = (r: Req, a: Answer) => {
    statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    if (a.status === 0) return; // an oversized body, refused by closing the connection (see fire)
    if (a.status >= 500) throw new Error(`${a.status} for ${r.method} ${r.path.slice(0, 80)}: ${a.text.slice(0, 300)}`);
    if (a.status >= 400 && r.method !== 'HEAD' && !isApiError(a))
      throw new Error(`not the API's error shape for ${r.method} ${r.path.slice(0, 80)}: ${a.status} ${a.text.slice(0, 300)}`);
  };

  // without the token: never a success, never a change
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(request(wrongAuth), async (r) => {
      const a = await fire(r);
      check(r, a);
      if (a.status !== 0 && a.status < 400) throw new Error(`${a.status} without the token for ${r.method} ${r.path.slice(0, 80)}`);
    }),
    { numRuns: 300, endOnFailure: true },
  );
  t.pass(`300 requests without the token: statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.equal(await snapshot(), before, 'nothing changed without the token (routes, revisions, paused flags, drained workers)');
  t.equal(controller.child.exitCode, null, 'the controller runs');

  // with the token mixed in: never a 5xx, always the error shape
  statuses.clear();
  await fc.assert(
    fc.asyncProperty(request(fc.oneof({ arbitrary: fc.constant(`Bearer ${TOKEN}`), weight: 3 }, wrongAuth)), async (r) => check(r, await fire(r))),
    { numRuns: 300, endOnFailure: true },
  );
  t.pass(`300 requests, most with the token: statuses ${JSON.stringify(Object.fromEntries(statuses))}`);

  // bytes that are not HTTP at all: Node's parser refuses them, answered in the API's error shape
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string({ maxLength: 400 }).map((s) => `${s}\r\n\r\n`),
        fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('latin1')),
        fc.constantFrom(
          'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n',
          'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
          `GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX: ${'y'.repeat(20_000)}\r\n\r\n`,
          'GET /v1/health HTTP/9.9\r\n\r\n',
        ),
      ),
      async (raw) => {
        const reply = await new Promise<string>((resolve) => {
          const s = netConnect(Number(port), '127.0.0.1');
          let got = '';
          const done = () => {
            s.destroy();
            resolve(got);
          };
          s.on('data', (d: Buffer) => (got += d.toString('latin1')));
          s.on('end', done);
          s.on('error', done);
          s.setTimeout(1500, done);
          s.end(Buffer.from(raw, 'latin1'));
        });
        const m = /^HTTP\/1\.1 ([0-9]{3})/.exec(reply);
        if (!m) return;
        answered++;
        if (Number(m[1]) >= 500) throw new Error(`${m[1]} for raw bytes ${JSON.stringify(raw.slice(0, 100))}`);
      },
    ),
    { numRuns: 100, endOnFailure: true },
  );
  t.pass(`100 raw byte strings, ${answered} answered, none with a 5xx`);
  t.ok(Date.now() - started < 120_000, `the fuzz took ${Math.round((Date.now() - started) / 1000)} s`);

  t.equal(controller.child.exitCode, null, 'the controller never crashed');
  t.equal((await send(base, { path: '/v1/health' })).status, 200, 'and still answers');
  t.equal(await controller.stop(), 0, 'stopped cleanly');
});
