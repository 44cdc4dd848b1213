/**
 * `strait status | routes | workers | partitions | rebalance`: calls a controller's REST API and prints for people (or `--json`
 * for scripts). A standby's 409 names the leader; every API error is printed with its code and field.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StraitError } from '../shared/errors';

export interface ClientOptions {
  url: string;
  token?: string;
  json: boolean;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** Calls the API; a non-2xx answer throws with its code and message, and `status` on the error for callers. */
export async function callApi(o: ClientOptions, method: Method, path: string, payload?: unknown): Promise<unknown> {
  let res: Response;
  const headers: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
  if (payload !== undefined) headers['content-type'] = 'application/json';
  try {
    res = await fetch(`${o.url.replace(/\/$/, '')}${path}`, { method, headers, ...(payload !== undefined ? { body: JSON.stringify(payload) } : {}) });
  } catch (e) {
    throw new StraitError('STRAIT_USAGE', `cannot reach the controller at ${o.url} (${(e as Error).message}); pass --url http://host:port (controller.rest)`, { field: 'url' });
  }
  const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string; field?: string };
  if (!res.ok) throw Object.assign(new StraitError('STRAIT_USAGE', `${res.status} ${body.code ?? ''}: ${body.message ?? res.statusText}`, body.field ? { field: body.field } : {}), { status: res.status });
  return body;
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
  if (typeof name !== 'string' || name === '') throw new StraitError('STRAIT_USAGE', `--file ${file}: the route has no name (name: is required)`, { field: 'name' });
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
  if (mode === 'create' && exists) throw new StraitError('STRAIT_USAGE', `route '${name}' already exists; use 'strait routes update --file ${file}'`, { field: 'name' });
  if (mode === 'update' && !exists) throw new StraitError('STRAIT_USAGE', `no route '${name}'; use 'strait routes create --file ${file}'`, { field: 'name' });
  return callApi(o, 'PUT', path, body);
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '-' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

export function render(what: string, body: unknown, json: boolean): string {
  if (json) return JSON.stringify(body, null, 2);
  if (what === 'status') {
    const s = body as { id: string; leader: string | null; isLeader: boolean; workers: number; partitions: { desired: number; assigned: number; unassigned: number; errored?: number; heldTopics: number } | null; lag?: number | null; problems: { route: string; topic: string; code: string; message: string }[] | null };
    const lines = [`controller ${s.id} (${s.isLeader ? 'leader' : `standby; leader ${s.leader ?? 'none'}`})`, `workers: ${s.workers}`];
    if (s.partitions) lines.push(`partitions: ${s.partitions.assigned} assigned of ${s.partitions.desired}, ${s.partitions.unassigned} unassigned, ${s.partitions.errored ?? 0} errored, ${s.partitions.heldTopics} held topics`);
    if (typeof s.lag === 'number') lines.push(`lag: ${s.lag} records (as last reported by the workers)`);
    for (const p of s.problems ?? []) lines.push(`problem [${p.code}] route ${p.route} topic ${p.topic}: ${p.message}`);
    return lines.join('\n');
  }
  if (Array.isArray(body)) {
    const columns =
      what === 'routes' ? ['name', 'source', 'target', 'profile', 'paused', 'partitions']
      : what === 'partitions' ? ['route', 'topic', 'partition', 'worker', 'epoch', 'bytesPerSec', 'recordsPerSec', 'lag']
      : ['id', 'host', 'pid', 'threads', 'partitions', 'drained', 'version'];
    if (what === 'partitions') {
      const rows = (body as Record<string, unknown>[]).map((r) => ({ ...r, bytesPerSec: typeof r.bytesPerSec === 'number' ? Math.round(r.bytesPerSec) : r.bytesPerSec, recordsPerSec: typeof r.recordsPerSec === 'number' ? Math.round(r.recordsPerSec) : r.recordsPerSec }));
      return table(rows, columns);
    }
    return table(body as Record<string, unknown>[], columns);
  }
  return Object.entries(body as Record<string, unknown>).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n');
}
