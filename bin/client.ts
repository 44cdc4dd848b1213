/**
 * `strait status | routes | workers | partitions | rebalance`: calls a controller's REST API and prints for people (or `--json`
 * for scripts). A standby's 409 names the leader; every API error is printed with its code and field.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StraitError } from '../shared/errors';

export interface ClientOptions {
  url: string;
  token?: string;
  json: boolean;
  /** PEM file of the CA that signed the controller's certificate (controller.rest.tls) */
  ca?: string;
  /** PEM client certificate and key files, for a controller with controller.rest.tls.clientCa (mTLS) */
  cert?: string;
  key?: string;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

function pem(option: 'ca' | 'cert' | 'key', file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new StraitError('STRAIT_USAGE', `--${option} ${file}: cannot read it (${(e as Error).message})`, { field: option });
  }
}

/**
 * Calls the API; a non-2xx answer throws with its code and message, and `status` on the error for callers. Every
 * change (POST, PUT, DELETE) is sent as JSON, with an empty body when there is nothing to send: the API refuses
 * changes without `Content-Type: application/json`.
 */
export async function callApi(o: ClientOptions, method: Method, path: string, payload?: unknown): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(`${o.url.replace(/\/$/, '')}${path}`);
  } catch {
    throw new StraitError('STRAIT_USAGE', `--url ${o.url} is not a URL; pass --url http://host:port or https://host:port (controller.rest)`, { field: 'url' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new StraitError('STRAIT_USAGE', `--url ${o.url}: only http:// and https:// are allowed`, { field: 'url' });
  if (url.protocol === 'http:' && (o.ca ?? o.cert ?? o.key) !== undefined) {
    throw new StraitError('STRAIT_USAGE', `--ca, --cert and --key need an https:// --url (got ${o.url})`, { field: 'url' });
  }
  if ((o.cert === undefined) !== (o.key === undefined))
    throw new StraitError('STRAIT_USAGE', '--cert and --key go together (the client certificate and its private key)', {
      field: o.cert === undefined ? 'cert' : 'key',
    });
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const body = payload !== undefined ? JSON.stringify(payload) : '';
  if (method !== 'GET') headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['content-length'] = String(Buffer.byteLength(body));
  const opts: RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer } = { method, headers };
  if (o.ca !== undefined) opts.ca = pem('ca', o.ca);
  if (o.cert !== undefined && o.key !== undefined) Object.assign(opts, { cert: pem('cert', o.cert), key: pem('key', o.key) });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  let res: IncomingMessage;
  let text: string;
  try {
    ({ res, text } = await new Promise<{ res: IncomingMessage; text: string }>((resolve, reject) => {
      const req = send(url, opts, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ res: r, text: Buffer.concat(chunks).toString('utf8') }));
        r.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
      req.end(body);
    }));
  } catch (e) {
    throw new StraitError(
      'STRAIT_USAGE',
      `cannot reach the controller at ${o.url} (${(e as Error).message}); pass --url http(s)://host:port (controller.rest), and --ca/--cert/--key for TLS`,
      { field: 'url' },
    );
  }
  let parsed: { code?: string; message?: string; field?: string } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // a non-JSON answer is reported by its status line below
  }
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300)
    throw Object.assign(
      new StraitError(
        'STRAIT_USAGE',
        `${status} ${parsed.code ?? ''}: ${parsed.message ?? res.statusMessage ?? ''}`,
        parsed.field ? { field: parsed.field } : {},
      ),
      { status },
    );
  return parsed;
}

/** A route definition from a YAML or JSON file (one route, as under `routes:` in the config file). */
export function routeFromFile(file: string): { name: string; body: Record<string, unknown> } {
  let parsed: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    parsed = extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new StraitError('STRAIT_USAGE', `--file ${file}: cannot read a route from it: ${(e as Error).message}`, { field: 'file' });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new StraitError('STRAIT_USAGE', `--file ${file}: must hold one route (a mapping with name, source, target, topics, ...)`, { field: 'file' });
  }
  const name = (parsed as Record<string, unknown>).name;
  if (typeof name !== 'string' || name === '')
    throw new StraitError('STRAIT_USAGE', `--file ${file}: the route has no name (name: is required)`, { field: 'name' });
  return { name, body: parsed as Record<string, unknown> };
}

/** `strait routes create|update`: create refuses an existing route, update a missing one; both PUT the file. */
export async function putRouteFile(o: ClientOptions, file: string, mode: 'create' | 'update'): Promise<unknown> {
  const { name, body } = routeFromFile(file);
  const path = `/v1/routes/${encodeURIComponent(name)}`;
  const exists = await callApi(o, 'GET', path).then(
    () => true,
    (e: Error & { status?: number }) => {
      if (e.status === 404) return false;
      throw e;
    },
  );
  if (mode === 'create' && exists)
    throw new StraitError('STRAIT_USAGE', `route '${name}' already exists; use 'strait routes update --file ${file}'`, { field: 'name' });
  if (mode === 'update' && !exists) throw new StraitError('STRAIT_USAGE', `no route '${name}'; use 'strait routes create --file ${file}'`, { field: 'name' });
  return callApi(o, 'PUT', path, body);
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '-' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

export function render(what: string, body: unknown, json: boolean): string {
  if (json) return JSON.stringify(body, null, 2);
  if (what === 'status') {
    const s = body as {
      id: string;
      leader: string | null;
      isLeader: boolean;
      workers: number;
      partitions: { desired: number; assigned: number; unassigned: number; errored?: number; heldTopics: number } | null;
      lag?: number | null;
      problems: { route: string; topic: string; code: string; message: string }[] | null;
    };
    const lines = [`controller ${s.id} (${s.isLeader ? 'leader' : `standby; leader ${s.leader ?? 'none'}`})`, `workers: ${s.workers}`];
    if (s.partitions)
      lines.push(
        `partitions: ${s.partitions.assigned} assigned of ${s.partitions.desired}, ${s.partitions.unassigned} unassigned, ${s.partitions.errored ?? 0} errored, ${s.partitions.heldTopics} held topics`,
      );
    if (typeof s.lag === 'number') lines.push(`lag: ${s.lag} records (as last reported by the workers)`);
    for (const p of s.problems ?? []) lines.push(`problem [${p.code}] route ${p.route} topic ${p.topic}: ${p.message}`);
    return lines.join('\n');
  }
  if (Array.isArray(body)) {
    const columns =
      what === 'routes'
        ? ['name', 'source', 'target', 'profile', 'paused', 'partitions']
        : what === 'partitions'
          ? ['route', 'topic', 'partition', 'worker', 'epoch', 'bytesPerSec', 'recordsPerSec', 'lag']
          : ['id', 'host', 'pid', 'threads', 'partitions', 'drained', 'version'];
    if (what === 'partitions') {
      const rows = (body as Record<string, unknown>[]).map((r) => ({
        ...r,
        bytesPerSec: typeof r.bytesPerSec === 'number' ? Math.round(r.bytesPerSec) : r.bytesPerSec,
        recordsPerSec: typeof r.recordsPerSec === 'number' ? Math.round(r.recordsPerSec) : r.recordsPerSec,
      }));
      return table(rows, columns);
    }
    return table(body as Record<string, unknown>[], columns);
  }
  return Object.entries(body as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('\n');
}
