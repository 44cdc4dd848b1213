/**
 * The only module loaded in piscina pool threads. Each thread runs one long-lived task that hosts one native
 * forwarder per route for its shard of the worker's partitions, pumps them, and posts batched progress to the main
 * thread. Records never enter JavaScript: `pump()` moves a whole batch inside C++.
 *
 * A partition the main thread assigned here either fetches in its route's forwarder or is *held*: its assign failed,
 * or its forwarder's producer failed fatally and the forwarder was closed. A held partition is reported errored (kind
 * `assign` or `producer`) in every progress post and started again with a growing delay until it runs.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { loadNative, type AssignEntry, type ForwarderProgress, type NativeForwarder, type PartitionProgress } from '../native';
import type { FromPump, PumpTask, RouteClients, ToPump } from '../shared/wire';

/** delay before the first retry of a held partition, doubled per attempt up to RETRY_MAX_MS */
export const RETRY_MIN_MS = 500;
export const RETRY_MAX_MS = 30_000;
/** how long a forwarder whose producer failed fatally waits for the answers to requests already sent */
const TEARDOWN_FLUSH_MS = 2000;
/** a producer that fails fatally again within this time after a restart waits longer before the next one */
const FATAL_STREAK_MS = 60_000;

interface Held {
  /** `offset`: where the partition starts again */
  entry: AssignEntry;
  kind: 'assign' | 'producer';
  /** librdkafka's error name, when there is one */
  code?: string;
  cause: string;
  attempts: number;
  nextTryAt: number;
  /** held because its producer failed fatally: starting it again counts as a producer restart */
  restart: boolean;
}

const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export function retryDelay(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.max(0, attempts - 1));
}

function emptyProgress(): ForwarderProgress {
  return { partitions: [], latency: { counts: [], sumMs: 0 }, inflightBytes: 0, pending: 0, overBudget: false };
}

export default async function pump(task: PumpTask): Promise<void> {
  const native = loadNative();
  const clients = new Map<string, RouteClients>(task.routes.map((r) => [r.route, r]));
  const forwarders = new Map<string, NativeForwarder>();
  /** route -> partitions assigned here (running or held), as the main thread sent them */
  const entries = new Map<string, Map<string, AssignEntry>>();
  const held = new Map<string, Map<string, Held>>();
  const fatalStreak = new Map<string, { count: number; at: number }>();
  /** partition reports to send with the next progress post (from closed forwarders, unassigned held partitions) */
  const extra = new Map<string, PartitionProgress[]>();
  const inbox: ToPump[] = [];
  let stopping: { flushTimeoutMs: number } | undefined;
  const post = (m: FromPump) => task.port.postMessage(m);

  task.port.on('message', (m: ToPump) => inbox.push(m));

  const mapOf = <V>(m: Map<string, Map<string, V>>, route: string): Map<string, V> => {
    let inner = m.get(route);
    if (!inner) m.set(route, (inner = new Map()));
    return inner;
  };
  const addExtra = (route: string, list: PartitionProgress[]) => {
    if (list.length > 0) extra.set(route, [...(extra.get(route) ?? []), ...list]);
  };

  const forwarderFor = (route: string): NativeForwarder => {
    const existing = forwarders.get(route);
    if (existing) return existing;
    const c = clients.get(route);
    if (!c) throw new Error(`no client settings for route '${route}'`);
    const fw = new native.Forwarder(c.options);
    forwarders.set(route, fw);
    return fw;
  };

  const hold = (route: string, h: Omit<Held, 'attempts' | 'nextTryAt'>, attempts: number, delayMs = retryDelay(attempts)) => {
    mapOf(held, route).set(keyOf(h.entry.topic, h.entry.partition), { ...h, attempts, nextTryAt: Date.now() + delayMs });
  };

  /** Starts `list` in the route's forwarder; what does not start is held. Returns the entries that started. */
  const start = (route: string, list: AssignEntry[], previous?: Map<string, Held>): AssignEntry[] => {
    if (list.length === 0) return [];
    const attemptsOf = (e: AssignEntry) => (previous?.get(keyOf(e.topic, e.partition))?.attempts ?? 0) + 1;
    const restartOf = (e: AssignEntry) => previous?.get(keyOf(e.topic, e.partition))?.restart ?? false;
    let failures: { topic: string; partition: number; errorCode?: string; error: string }[];
    try {
      failures = forwarderFor(route).assign(list);
    } catch (e) {
      const cause = `cannot start in a forwarder of route '${route}': ${(e as Error).message}`;
      failures = list.map((en) => ({ topic: en.topic, partition: en.partition, error: cause }));
    }
    const failed = new Set<string>();
    for (const f of failures) {
      const entry = list.find((en) => en.topic === f.topic && en.partition === f.partition)!;
      failed.add(keyOf(f.topic, f.partition));
      hold(
        route,
        { entry, kind: 'assign', ...(f.errorCode !== undefined ? { code: f.errorCode } : {}), cause: f.error, restart: restartOf(entry) },
        attemptsOf(entry),
      );
    }
    return list.filter((en) => !failed.has(keyOf(en.topic, en.partition)));
  };

  /**
   * The route's producer failed fatally: close the forwarder (its in-flight records are not acknowledged, so each
   * partition's committable offset stays before them) and hold its partitions to start again from those offsets.
   */
  const teardown = (route: string, fw: NativeForwarder, before?: ForwarderProgress) => {
    const first = before ?? fw.progress();
    // librdkafka has purged what was queued; requests already sent still get their real answer (rdkafka.c,
    // rd_kafka_set_fatal_error0): waiting for those keeps them from being sent twice
    fw.close(TEARDOWN_FLUSH_MS);
    const last = fw.progress();
    forwarders.delete(route);
    const now = Date.now();
    const prev = fatalStreak.get(route);
    const streak = prev && now - prev.at < FATAL_STREAK_MS ? prev.count + 1 : 1;
    fatalStreak.set(route, { count: streak, at: now });
    const code = first.fatalCode ?? last.fatalCode;
    const cause = first.fatal ?? last.fatal ?? 'fatal producer error';
    const delay = retryDelay(streak);
    const mine = mapOf(entries, route);
    const committable = new Map<string, number>();
    const delivered = new Map<string, number>();
    for (const pp of [...first.partitions, ...last.partitions]) {
      const k = keyOf(pp.topic, pp.partition);
      committable.set(k, Math.max(committable.get(k) ?? -1, pp.committable));
      if (pp.deliveredNext !== undefined) delivered.set(k, Math.max(delivered.get(k) ?? -1, pp.deliveredNext));
    }
    // what the target acknowledged past the restart point is read and sent again by the next forwarder
    const resentByKey = new Map<string, number>();
    let restarting = 0;
    for (const [k, entry] of mine) {
      if (mapOf(held, route).has(k)) continue;
      const at = committable.get(k) ?? -1;
      const restartAt: AssignEntry = { ...entry, offset: at >= 0 ? at : entry.offset };
      const d = delivered.get(k) ?? -1;
      if (at >= 0 && d > at) resentByKey.set(k, d - at);
      mine.set(k, restartAt);
      hold(
        route,
        { entry: restartAt, kind: 'producer', ...(code !== undefined ? { code } : {}), cause: `the target producer failed fatally: ${cause}`, restart: true },
        streak,
        delay,
      );
      restarting++;
    }
    // counters and offset-map runs of the closed forwarder still count; a held partition reports as held
    const heldHere = mapOf(held, route);
    for (const pp of [...first.partitions, ...last.partitions]) {
      const h = heldHere.get(keyOf(pp.topic, pp.partition));
      if (h) Object.assign(pp, heldReport(h, pp));
      else if (pp.errorKind === 'producer') {
        // draining: what was not acknowledged is read again by the partition's next owner
        delete pp.error;
        delete pp.errorCode;
        delete pp.errorKind;
      }
    }
    const reports = [...first.partitions, ...last.partitions];
    for (const pp of reports) {
      const r = resentByKey.get(keyOf(pp.topic, pp.partition));
      if (r === undefined) continue;
      pp.resent = (pp.resent ?? 0) + r;
      resentByKey.delete(keyOf(pp.topic, pp.partition));
    }
    addExtra(route, reports);
    post({ type: 'fatal', shard: task.shard, route, ...(code !== undefined ? { code } : {}), cause, partitions: restarting, retryInMs: delay, streak });
  };

  const heldReport = (h: Held, base?: PartitionProgress): PartitionProgress => ({
    topic: h.entry.topic,
    partition: h.entry.partition,
    targetTopic: h.entry.targetTopic,
    committable: h.entry.offset >= 0 ? h.entry.offset : -1,
    records: 0,
    bytes: 0,
    dropped: 0,
    runs: [],
    lastTimestamp: -1,
    ...base,
    inflight: 0,
    inflightBytes: 0,
    assigned: true,
    paused: true,
    error: `${h.cause}; starting again in ${Math.max(0, h.nextTryAt - Date.now())} ms (attempt ${h.attempts})`,
    ...(h.code !== undefined ? { errorCode: h.code } : {}),
    errorKind: h.kind,
  });

  const retryHeld = () => {
    const now = Date.now();
    for (const [route, hs] of held) {
      const due = [...hs.values()].filter((h) => h.nextTryAt <= now);
      if (due.length === 0) continue;
      const previous = new Map(due.map((h) => [keyOf(h.entry.topic, h.entry.partition), h]));
      for (const k of previous.keys()) hs.delete(k);
      const started = start(
        route,
        due.map((h) => h.entry),
        previous,
      );
      const restarted = started.filter((en) => previous.get(keyOf(en.topic, en.partition))!.restart);
      if (restarted.length > 0) post({ type: 'restarted', shard: task.shard, route, partitions: restarted.length });
      if (hs.size === 0) held.delete(route);
    }
  };

  const handle = (m: ToPump) => {
    try {
      switch (m.type) {
        case 'assign': {
          const mine = mapOf(entries, m.route);
          const hs = held.get(m.route);
          const fresh = m.entries.filter((en) => !hs?.has(keyOf(en.topic, en.partition)));
          for (const en of m.entries) mine.set(keyOf(en.topic, en.partition), en);
          start(m.route, fresh);
          break;
        }
        case 'route': {
          clients.set(m.clients.route, m.clients);
          // the main thread sends changed settings only once none of the route's partitions runs here
          const old = forwarders.get(m.clients.route);
          if (old) {
            old.close(0);
            forwarders.delete(m.clients.route);
          }
          break;
        }
        case 'unassign': {
          const mine = entries.get(m.route);
          const hs = held.get(m.route);
          const running: { topic: string; partition: number }[] = [];
          for (const en of m.entries) {
            const k = keyOf(en.topic, en.partition);
            mine?.delete(k);
            const h = hs?.get(k);
            if (!h) {
              running.push(en);
              continue;
            }
            // never ran here: its final report is its held state, unassigned and with nothing in flight
            hs!.delete(k);
            const { error: _e, errorCode: _c, errorKind: _k, ...rest } = heldReport(h);
            addExtra(m.route, [{ ...rest, assigned: false, paused: false }]);
          }
          if (running.length > 0) forwarders.get(m.route)?.unassign(running);
          break;
        }
        case 'commit':
          forwarders.get(m.route)?.commit(m.offsets);
          break;
        case 'test-fatal':
          forwarders.get(m.route)?.testFatalError(m.reason);
          break;
        case 'stop':
          stopping = { flushTimeoutMs: m.flushTimeoutMs };
          break;
      }
    } catch (e) {
      post({ type: 'error', shard: task.shard, route: 'route' in m ? m.route : '', message: (e as Error).message });
    }
  };

  /**
   * Partitions stopped because the target refused a record: read it again after task.targetRetryMs, doubling up to
   * 20 times that, until the target takes it (the cause — an ACL, the topic's max.message.bytes — may be fixed
   * without anyone re-assigning the partition). `route` -> partition -> schedule.
   */
  const targetRetries = new Map<string, Map<string, { attempts: number; nextTryAt: number }>>();
  const retryRefused = (route: string, fw: NativeForwarder, progress: ForwarderProgress) => {
    const mine = mapOf(targetRetries, route);
    const refused = new Set<string>();
    const now = Date.now();
    for (const pp of progress.partitions) {
      if (pp.error === undefined || pp.errorKind !== 'target' || !pp.assigned) continue;
      const k = keyOf(pp.topic, pp.partition);
      refused.add(k);
      let r = mine.get(k);
      if (!r) mine.set(k, (r = { attempts: 0, nextTryAt: now + task.targetRetryMs }));
      if (now < r.nextTryAt) continue;
      const result = fw.retryTarget(pp.topic, pp.partition);
      if (result === 'retried') {
        r.attempts++;
        r.nextTryAt = now + Math.min(task.targetRetryMs * 20, task.targetRetryMs * 2 ** r.attempts);
      }
    }
    for (const k of mine.keys()) if (!refused.has(k)) mine.delete(k);
  };

  const collect = (): Record<string, ForwarderProgress> => {
    const out: Record<string, ForwarderProgress> = {};
    for (const [route, fw] of forwarders) {
      const progress = fw.progress();
      if (progress.fatal !== undefined) {
        teardown(route, fw, progress);
        continue;
      }
      out[route] = progress;
      retryRefused(route, fw, progress);
    }
    for (const [route, hs] of held) for (const h of hs.values()) addExtra(route, [heldReport(h)]);
    for (const [route, list] of extra) (out[route] ??= emptyProgress()).partitions.push(...list);
    extra.clear();
    return out;
  };

  let lastReport = Date.now();
  while (!stopping) {
    while (inbox.length > 0) handle(inbox.shift()!);
    if (stopping) break;
    retryHeld();
    // One forwarder may wait for records; several share the wait so none starves.
    const wait = forwarders.size === 0 ? 0 : Math.max(1, Math.floor(20 / forwarders.size));
    for (const [route, fw] of [...forwarders]) if (fw.pump(wait) < 0) teardown(route, fw);
    const now = Date.now();
    if (now - lastReport >= task.progressIntervalMs) {
      lastReport = now;
      post({ type: 'progress', shard: task.shard, routes: collect() });
    }
    // Let port messages in. When idle with no forwarders, sleep instead of spinning.
    if (forwarders.size === 0) await new Promise((r) => setTimeout(r, 20));
    else await yieldToLoop();
  }
  const final: Record<string, ForwarderProgress> = {};
  for (const [route, fw] of forwarders) {
    fw.close(stopping.flushTimeoutMs);
    final[route] = fw.progress();
  }
  for (const [route, list] of extra) (final[route] ??= emptyProgress()).partitions.push(...list);
  post({ type: 'stopped', shard: task.shard, routes: final });
  task.port.close();
}
