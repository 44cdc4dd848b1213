/**
 * How every record of the ZooKeeper store is turned into bytes and back. Every record is msgpack
 * `{ v: <format>, ...fields }`. Readers take the fields they know and ignore the rest, so a newer writer may add fields
 * without breaking an older reader. An empty node is one the sealing protocol (sealing.ts) is still making: it holds
 * no record yet.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import { isGapReason } from '../../../native';
import type { RouteConfig } from '../../config';
import { StraitError } from '../../errors';
import { PARTITION_ERROR_CODES } from '../../partition-errors';
import type { RouteClusters, StoredRoute } from '../store';
import type { Assignment, CommittedOffset, LoadReport, PartitionAssignment, ReportedGap, WorkerInfo } from '../../wire';

/** the format version written into every record */
const FORMAT = 1;
/**
 * ZooKeeper refuses a request larger than jute.maxbuffer (1 MiB by default) by dropping the connection, which a
 * client would retry forever; refuse it here instead, with the path and the size.
 */
const MAX_NODE_BYTES = 1_000_000;

const packr = new Packr({ useRecords: false });

function encode(fields: Record<string, unknown>): Buffer {
  return packr.pack({ v: FORMAT, ...fields });
}

function badRecord(path: string, why: string, cause?: unknown): StraitError {
  return new StraitError('STRAIT_STORE', `the ZooKeeper record ${path} is unreadable: ${why}`, { cause });
}

/** Unpacks a record; any format version >= 1 is accepted (newer writers only add fields). */
function decode(data: Buffer | null, path: string): Record<string, unknown> {
  if (!data || data.length === 0) throw badRecord(path, 'it is empty');
  let r: unknown;
  try {
    r = packr.unpack(data);
  } catch (e) {
    throw badRecord(path, 'it is not msgpack', e);
  }
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw badRecord(path, 'it is not a msgpack map');
  const v = (r as Record<string, unknown>).v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw badRecord(path, "it has no format version field 'v'");
  return r as Record<string, unknown>;
}

function num(r: Record<string, unknown>, key: string, path: string): number {
  const x = r[key];
  if (typeof x !== 'number' || !Number.isFinite(x)) throw badRecord(path, `field '${key}' is not a number`);
  return x;
}

function str(r: Record<string, unknown>, key: string, path: string): string {
  const x = r[key];
  if (typeof x !== 'string') throw badRecord(path, `field '${key}' is not a string`);
  return x;
}

/** Whether a node's data is a record: an empty node (being made by the sealing protocol) reads as absent. */
export function hasRecord(data: Buffer | null): data is Buffer {
  return !!data && data.length > 0;
}

export function checkSize(path: string, data: Buffer): void {
  if (data.length > MAX_NODE_BYTES) {
    throw new StraitError('STRAIT_STORE', `the record for ${path} is ${data.length} bytes, over the ${MAX_NODE_BYTES} bytes a ZooKeeper node can hold`);
  }
}

// ---- workers

export function encodeWorker(info: WorkerInfo): Buffer {
  const { session: _session, ...fields } = info;
  return encode(fields);
}

export function decodeWorker(data: Buffer | null, path: string, session: string): WorkerInfo {
  const r = decode(data, path);
  return {
    session,
    id: str(r, 'id', path),
    host: str(r, 'host', path),
    pid: num(r, 'pid', path),
    threads: num(r, 'threads', path),
    version: str(r, 'version', path),
    startedAt: str(r, 'startedAt', path),
  };
}

// ---- assignments

/** The most an assignment's compressed body may inflate to (a tampered node must not exhaust memory). */
const MAX_INFLATED_BYTES = 256 * 1024 * 1024;

/**
 * An assignment record. Over ZooKeeper's node limit (about 9,000 partitions of one worker), its partitions and routes
 * go deflated in `z` (topic and route names repeat, so it shrinks ~10x); below it the record stays plain, so a
 * worker of an older version reads every assignment it could read before.
 */
function packAssignment(a: Assignment): Buffer {
  const plain = encode({ ...a });
  if (plain.length <= MAX_NODE_BYTES) return plain;
  const { partitions, routes, ...rest } = a;
  return encode({ ...rest, z: deflateRawSync(packr.pack({ partitions, ...(routes ? { routes } : {}) })) });
}

/** The record of an assignment, refused (naming the worker and what to do) if even compressed it is too large. */
export function encodeAssignment(a: Assignment, path: string): Buffer {
  const data = packAssignment(a);
  if (data.length > MAX_NODE_BYTES) {
    throw new StraitError(
      'STRAIT_STORE',
      `the assignment of worker '${a.worker}' (${a.partitions.length} partitions) is ${data.length} bytes compressed at ${path}, over the ${MAX_NODE_BYTES} bytes a ZooKeeper node can hold: run more workers, so each holds fewer partitions`,
    );
  }
  return data;
}

export function decodeAssignment(data: Buffer | null, path: string): Assignment {
  let r = decode(data, path);
  if (r.z !== undefined) {
    if (!Buffer.isBuffer(r.z) && !(r.z instanceof Uint8Array)) throw badRecord(path, "field 'z' is not bytes");
    let body: unknown;
    try {
      body = packr.unpack(inflateRawSync(r.z, { maxOutputLength: MAX_INFLATED_BYTES }));
    } catch (e) {
      throw badRecord(path, "field 'z' does not inflate to a msgpack map", e);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRecord(path, "field 'z' is not a msgpack map");
    r = { ...r, ...(body as Record<string, unknown>) };
  }
  const parts = r.partitions;
  if (!Array.isArray(parts)) throw badRecord(path, "field 'partitions' is not a list");
  const partitions: PartitionAssignment[] = parts.map((p: unknown, i) => {
    if (typeof p !== 'object' || p === null) throw badRecord(path, `partitions[${i}] is not a map`);
    const q = p as Record<string, unknown>;
    const at = `${path} partitions[${i}]`;
    return {
      route: str(q, 'route', at),
      topic: str(q, 'topic', at),
      partition: num(q, 'partition', at),
      targetTopic: str(q, 'targetTopic', at),
      compression: str(q, 'compression', at),
      epoch: num(q, 'epoch', at),
    };
  });
  const routes = r.routes === undefined ? undefined : decodeRouteList(r.routes, `${path} routes`);
  return { worker: str(r, 'worker', path), version: num(r, 'version', path), partitions, ...(routes ? { routes } : {}) };
}

// ---- routes managed over REST

/** A route definition as the controller validated it; only the fields every reader relies on are checked. */
function decodeRouteConfig(x: unknown, at: string): RouteConfig {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw badRecord(at, 'the route is not a map');
  const q = x as Record<string, unknown>;
  for (const k of ['name', 'source', 'target']) str(q, k, at);
  return q as unknown as RouteConfig;
}

function decodeRouteList(x: unknown, at: string): RouteConfig[] {
  if (!Array.isArray(x)) throw badRecord(at, 'it is not a list');
  return x.map((r, i) => decodeRouteConfig(r, `${at}[${i}]`));
}

export function encodeStoredRoute(stored: StoredRoute): Buffer {
  return encode({ ...stored });
}

export function decodeStoredRoute(data: Buffer | null, path: string): StoredRoute {
  const r = decode(data, path);
  return { route: decodeRouteConfig(r.route, `${path} route`), revision: num(r, 'revision', path), updatedAt: str(r, 'updatedAt', path) };
}

// ---- load reports

/**
 * numbers per partition in a report record: partition, bytes/s, records/s, lag, errored (0: no; 1: yes, code not
 * known; 2 + i: yes, with the i-th of REPORTED_CODES)
 */
const REPORT_FIELDS = 5;

/**
 * A load report is one znode per worker (1 MB at most), so it is packed: `routes: {route: {topic: [partition,
 * bytesPerSec, recordsPerSec, lag, errored, partition, ...]}}`, rates rounded to whole numbers — about 15 bytes a
 * partition, room for some 60,000 partitions on one worker.
 */
const REPORTED_CODES = Object.keys(PARTITION_ERROR_CODES);

function encodeErrored(p: LoadReport['partitions'][number]): number {
  if (!p.errored) return 0;
  const i = p.errorCode === undefined ? -1 : REPORTED_CODES.indexOf(p.errorCode);
  return i < 0 ? 1 : 2 + i;
}

export function encodeReport(r: LoadReport): Buffer {
  const routes: Record<string, Record<string, number[]>> = {};
  for (const p of r.partitions) {
    const topics = (routes[p.route] ??= {});
    (topics[p.topic] ??= []).push(p.partition, Math.round(p.bytesPerSec), Math.round(p.recordsPerSec), Math.round(p.lag), encodeErrored(p));
  }
  return encode({ worker: r.worker, at: r.at, windowMs: r.windowMs, routes, ...(r.gaps && r.gaps.length > 0 ? { gaps: r.gaps } : {}) });
}

/** A report's gaps: each kept only if it has the fields a reader shows (a newer writer may add more). */
function decodeGaps(x: unknown, path: string): ReportedGap[] {
  if (x === undefined) return [];
  if (!Array.isArray(x)) throw badRecord(path, "field 'gaps' is not a list");
  return x.flatMap((g: unknown, i) => {
    if (typeof g !== 'object' || g === null) throw badRecord(path, `gaps[${i}] is not a map`);
    const q = g as Record<string, unknown>;
    const at = `${path} gaps[${i}]`;
    const reason = str(q, 'reason', at);
    if (!isGapReason(reason)) return [];
    return [
      {
        route: str(q, 'route', at),
        topic: str(q, 'topic', at),
        partition: num(q, 'partition', at),
        reason,
        from: num(q, 'from', at),
        to: num(q, 'to', at),
        skipped: num(q, 'skipped', at),
        stopped: q.stopped === true,
        at: str(q, 'at', at),
      },
    ];
  });
}

export function decodeReport(data: Buffer | null, path: string): LoadReport {
  const r = decode(data, path);
  const routes = r.routes;
  if (typeof routes !== 'object' || routes === null) throw badRecord(path, "field 'routes' is not a map");
  const partitions: LoadReport['partitions'] = [];
  for (const [route, topics] of Object.entries(routes as Record<string, unknown>)) {
    if (typeof topics !== 'object' || topics === null) throw badRecord(path, `routes.${route} is not a map`);
    for (const [topic, rows] of Object.entries(topics as Record<string, unknown>)) {
      if (!Array.isArray(rows) || rows.length % REPORT_FIELDS !== 0 || !rows.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw badRecord(path, `routes.${route}.${topic} is not a list of ${REPORT_FIELDS} numbers per partition`);
      }
      for (let i = 0; i < rows.length; i += REPORT_FIELDS) {
        const [partition, bytesPerSec, recordsPerSec, lag, errored] = rows.slice(i, i + REPORT_FIELDS) as number[];
        const code = errored! >= 2 ? REPORTED_CODES[errored! - 2] : undefined;
        partitions.push({
          route,
          topic,
          partition: partition!,
          bytesPerSec: bytesPerSec!,
          recordsPerSec: recordsPerSec!,
          lag: lag!,
          errored: errored! >= 1,
          ...(code !== undefined ? { errorCode: code } : {}),
        });
      }
    }
  }
  const gaps = decodeGaps(r.gaps, path);
  return { worker: str(r, 'worker', path), at: num(r, 'at', path), windowMs: num(r, 'windowMs', path), partitions, ...(gaps.length > 0 ? { gaps } : {}) };
}

// ---- offsets

/** A committed offset as stored; a record may carry only an epoch (see decodeOffset). */
export type OffsetRecord = Omit<CommittedOffset, 'offset'> & { offset: number | undefined };

export function encodeOffset(rec: OffsetRecord): Buffer {
  return encode({ ...rec });
}

/**
 * `offset` is optional so that a record that only carries an epoch (a newer writer's fence) still reads; `topicId`,
 * `leaderEpoch` and `targetEnd` are absent from records older workers wrote.
 */
export function decodeOffset(data: Buffer | null, path: string): OffsetRecord {
  const r = decode(data, path);
  return {
    offset: r.offset === undefined ? undefined : num(r, 'offset', path),
    epoch: num(r, 'epoch', path),
    ...(r.topicId !== undefined ? { topicId: str(r, 'topicId', path) } : {}),
    ...(r.leaderEpoch !== undefined ? { leaderEpoch: num(r, 'leaderEpoch', path) } : {}),
    ...(r.targetEnd !== undefined ? { targetEnd: num(r, 'targetEnd', path) } : {}),
  };
}

// ---- cluster ids of a route's offsets

export function encodeRouteClusters(ids: RouteClusters): Buffer {
  return encode({ source: ids.source, target: ids.target, at: ids.at });
}

export function decodeRouteClusters(data: Buffer | null, path: string): RouteClusters {
  const r = decode(data, path);
  return { source: str(r, 'source', path), target: str(r, 'target', path), at: str(r, 'at', path) };
}

// ---- markers: operator flags and managed topics (presence is the state; the record says since when)

export function encodeFlag(): Buffer {
  return encode({ at: new Date().toISOString() });
}

export function encodeManagedTopic(): Buffer {
  return encode({ addedAt: new Date().toISOString() });
}

// ---- leader

/** `token` tells one campaign's record from another campaign of the same session */
export function encodeLeader(id: string, token: string): Buffer {
  return encode({ id, token, since: new Date().toISOString() });
}

export function decodeLeaderId(data: Buffer | null, path: string): string {
  return str(decode(data, path), 'id', path);
}

/** the campaign token of a leader record, unchecked: a record without one matches no campaign */
export function decodeLeaderToken(data: Buffer | null, path: string): unknown {
  return decode(data, path).token;
}
