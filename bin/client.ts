/**
 * `strait status | routes | workers | partitions | rebalance`: calls a controller's REST API and prints for people (or `--json`
 * for scripts). A standby's 409 names the leader; every API error is printed with its code and field.
 */
import { StraitError } from '../shared/errors';

export interface ClientOptions {
  url: string;
  token?: string;
  json: boolean;
}

export async function callApi(o: ClientOptions, method: 'GET' | 'POST', path: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${o.url.replace(/\/$/, '')}${path}`, { method, headers: o.token ? { authorization: `Bearer ${o.token}` } : {} });
  } catch (e) {
    throw new StraitError('STRAIT_USAGE', `cannot reach the controller at ${o.url} (${(e as Error).message}); pass --url http://host:port (controller.rest)`, { field: 'url' });
  }
  const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string; field?: string };
  if (!res.ok) throw new StraitError('STRAIT_USAGE', `${res.status} ${body.code ?? ''}: ${body.message ?? res.statusText}`, body.field ? { field: body.field } : {});
  return body;
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
