/**
 * The only module loaded in piscina pool threads. Each thread runs one long-lived task that hosts one native
 * forwarder per route for its shard of the worker's partitions, pumps them, and posts batched progress to the main
 * thread. Records never enter JavaScript: `pump()` moves a whole batch inside C++.
 *
 * A partition the main thread assigned here either fetches in its route's forwarder or is *held*: its assign failed,
 * or its forwarder's producer failed fatally and the forwarder was closed. A held partition is reported errored (kind
 * `assign` or `producer`) in every progress post and started again with a growing delay until it runs.
 *
 * A route with `delivery: exactly-once` gives each source partition a forwarder of its own, whose producer is
 * transactional with an id of that partition's (`RouteTransactions`). Every `intervalMs` (or `maxBytes`) the thread
 * stops pumping it, flushes, writes the transaction's offset-map runs in the same transaction and commits it. A
 * failed transaction closes the forwarder and the partition starts again from its last committed transaction; a
 * fenced one (a newer owner's producer took its transactional id) stays stopped until the main thread assigns it again;
 * one whose commit failed without being aborted (it may have committed) waits until the main thread has fenced its
 * transactional id and read the target's offset map (`resume`), and starts after the last run committed there.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { loadNative, type AssignEntry, type ForwarderProgress, type NativeForwarder, type PartitionProgress } from '../native';
import { partitionShare, transactionalId } from '../shared/kafka/client-settings';
import { OFFSET_MAP_TOPIC, encodeOffsetMapRecord } from '../shared/offset-map/records';
import type { FromPump, PumpTask, RouteClients, ToPump } from '../shared/wire';

/** delay before the first retry of a held partition, doubled per attempt up to RETRY_MAX_MS */
export const RETRY_MIN_MS = 500;
export const RETRY_MAX_MS = 30_000;
/** how long a forwarder whose producer failed fatally waits for the answers to requests already sent */
const TEARDOWN_FLUSH_MS = 2000;
/** a producer that fails fatally again within this time after a restart waits longer before the next one */
const FATAL_STREAK_MS = 60_000;
/** how long a transaction's flush, and then its commit, may take before the transaction is given up (aborted) */
export const TRANSACTION_TIMEOUT_MS = 10_000;
/** exactly-once: a first start whose init_transactions takes longer than this is reported errored meanwhile */
export const INIT_QUIET_MS = 5000;
/** librdkafka's names of the errors a producer gets once a newer one took its transactional id (KIP-98, KIP-588) */
const FENCED_CODES = new Set(['_FENCED', 'PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH']);

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
  /** its transactional producer was fenced: not retried here; only an assign from the main thread starts it again */
  fenced?: boolean;
  /**
   * its last transaction's commit failed and could not be aborted, so it may have committed: not retried here until
   * the main thread sends where the target's offset map says it committed last (`resume`), or assigns it again
   */
  outcomeUnknown?: boolean;
  /** with outcomeUnknown: one past the last source offset the target acknowledged (the transaction in doubt's end) */
  deliveredNext?: number;
}

/** A native forwarder: a route's, or for an exactly-once route one source partition's (`part`). */
interface Slot {
  route: string;
  fw: NativeForwarder;
  part?: { topic: string; partition: number };
  /** exactly-once: when the forwarder was made (its init_transactions began) */
  createdAt: number;
  /** exactly-once: why its partition was held before this forwarder started it again */
  heldBefore?: Pick<Held, 'kind' | 'code' | 'cause'>;
}

const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * Where a partition starts again after its forwarder closed: at `offset`, the first record the target did not
 * acknowledge (or commit). The leader epoch of the assignment belongs to the assignment's offset: passed with a later
 * one, the leader would answer with the end of that older epoch and librdkafka would report a truncation that never
 * happened and read again from there (every record since sent twice; under exactly-once, committed twice). The epoch
 * goes with the restart only when the forwarder knows it for `offset`.
 */
function restartEntry(entry: AssignEntry, offset: number, leaderEpoch: number | undefined): AssignEntry {
  const { leaderEpoch: _assigned, ...rest } = entry;
  return { ...rest, offset, ...(leaderEpoch !== undefined && leaderEpoch >= 0 ? { leaderEpoch } : {}) };
}

export function retryDelay(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.max(0, attempts - 1));
}

function emptyProgress(): ForwarderProgress {
  return { partitions: [], latency: { counts: [], sumMs: 0 }, inflightBytes: 0, pending: 0, overBudget: false };
}

/** One route's progress from several forwarders (an exactly-once route has one per partition). */
export function mergeProgress(a: ForwarderProgress, b: ForwarderProgress): ForwarderProgress {
  const n = Math.max(a.latency.counts.length, b.latency.counts.length);
  return {
    ...b,
    ...a,
    partitions: [...a.partitions, ...b.partitions],
    latency: { counts: Array.from({ length: n }, (_, i) => (a.latency.counts[i] ?? 0) + (b.latency.counts[i] ?? 0)), sumMs: a.latency.sumMs + b.latency.sumMs },
    inflightBytes: a.inflightBytes + b.inflightBytes,
    pending: a.pending + b.pending,
    overBudget: a.overBudget || b.overBudget,
  };
}

export default async function pump(task: PumpTask): Promise<void> {
  const native = loadNative();
  const clients = new Map<string, RouteClients>(task.routes.map((r) => [r.route, r]));
  /** slot key (the route, or route + partition for exactly-once) -> its forwarder */
  const slots = new Map<string, Slot>();
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

  const slotKey = (route: string, part?: { topic: string; partition: number }) => (part ? `${route}\u0000${keyOf(part.topic, part.partition)}` : route);
  const slotsOf = (route: string) => [...slots].filter(([, s]) => s.route === route);

  const forwarderFor = (route: string, part?: { topic: string; partition: number }): NativeForwarder => {
    const c = clients.get(route);
    if (!c) throw new Error(`no client settings for route '${route}'`);
    const own = c.transaction !== undefined && part !== undefined ? { topic: part.topic, partition: part.partition } : undefined;
    const key = slotKey(route, own);
    const existing = slots.get(key);
    if (existing) return existing.fw;
    const fw = new native.Forwarder(
      own
        ? {
            ...c.options,
            ...partitionShare(c.options, entries.get(route)?.size ?? 1),
            transactionalId: transactionalId(c.transaction!, own.topic, own.partition),
          }
        : c.options,
    );
    slots.set(key, { route, fw, createdAt: Date.now(), ...(own ? { part: own } : {}) });
    return fw;
  };

  /**
   * exactly-once: the route's partition forwarders here share its budget on this thread (partitionShare), so each
   * one's budget follows the number of partitions assigned here. A consumer's prefetch is set when it starts.
   */
  const shareBudget = (route: string) => {
    const c = clients.get(route);
    if (!c?.transaction) return;
    const { inflightBytes } = partitionShare(c.options, entries.get(route)?.size ?? 1);
    for (const [, s] of slotsOf(route)) if (s.part) s.fw.setBudget(inflightBytes);
  };

  const hold = (route: string, h: Omit<Held, 'attempts' | 'nextTryAt'>, attempts: number, delayMs = retryDelay(attempts)) => {
    mapOf(held, route).set(keyOf(h.entry.topic, h.entry.partition), { ...h, attempts, nextTryAt: Date.now() + delayMs });
  };

  /** Starts `list` in the route's forwarder; what does not start is held. Returns the entries that started. */
  const start = (route: string, list: AssignEntry[], previous?: Map<string, Held>): AssignEntry[] => {
    if (list.length === 0) return [];
    const attemptsOf = (e: AssignEntry) => (previous?.get(keyOf(e.topic, e.partition))?.attempts ?? 0) + 1;
    const restartOf = (e: AssignEntry) => previous?.get(keyOf(e.topic, e.partition))?.restart ?? false;
    const failures: { topic: string; partition: number; errorCode?: string; error: string }[] = [];
    // exactly-once: a forwarder per partition, so each is started (and may fail) on its own
    const transactional = clients.get(route)?.transaction !== undefined;
    for (const group of transactional ? list.map((en) => [en]) : [list]) {
      try {
        failures.push(...forwarderFor(route, group[0]).assign(group));
        const before = transactional ? previous?.get(keyOf(group[0]!.topic, group[0]!.partition)) : undefined;
        const slot = before ? slots.get(slotKey(route, group[0])) : undefined;
        if (slot) slot.heldBefore = before;
      } catch (e) {
        const cause = `cannot start in a forwarder of route '${route}': ${(e as Error).message}`;
        failures.push(...group.map((en) => ({ topic: en.topic, partition: en.partition, error: cause })));
      }
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
   * The slot's producer failed fatally (or its transaction failed): close the forwarder (its in-flight records are not
   * acknowledged, or their transaction is aborted, so each partition's committable offset stays before them) and hold
   * its partitions to start again from those offsets.
   */
  const teardown = (key: string, before?: ForwarderProgress) => {
    const { route, fw, part } = slots.get(key)!;
    const first = before ?? fw.progress();
    // librdkafka has purged what was queued; requests already sent still get their real answer (rdkafka.c,
    // rd_kafka_set_fatal_error0): waiting for those keeps them from being sent twice
    fw.close(TEARDOWN_FLUSH_MS);
    const last = fw.progress();
    slots.delete(key);
    const now = Date.now();
    const prev = fatalStreak.get(key);
    const streak = prev && now - prev.at < FATAL_STREAK_MS ? prev.count + 1 : 1;
    fatalStreak.set(key, { count: streak, at: now });
    const code = first.fatalCode ?? last.fatalCode;
    const cause = first.fatal ?? last.fatal ?? 'fatal producer error';
    // a fenced transactional producer: a newer owner has the partition, and starting it here would fence that one
    const fenced = part !== undefined && code !== undefined && FENCED_CODES.has(code);
    // a commit that may have landed: its records are on the target for good, or not; only the offset map can tell
    const outcomeUnknown = part !== undefined && !fenced && (first.txnOutcomeUnknown === true || last.txnOutcomeUnknown === true);
    const waitsForMain = fenced || outcomeUnknown;
    const delay = retryDelay(streak);
    const mine = mapOf(entries, route);
    // each partition's restart point, with the leader epoch of the record before it (KIP-320)
    const committable = new Map<string, { offset: number; leaderEpoch: number | undefined }>();
    const delivered = new Map<string, number>();
    for (const pp of [...first.partitions, ...last.partitions]) {
      const k = keyOf(pp.topic, pp.partition);
      const known = committable.get(k);
      if (!known || pp.committable > known.offset || (pp.committable === known.offset && known.leaderEpoch === undefined))
        committable.set(k, { offset: pp.committable, leaderEpoch: pp.committableLeaderEpoch });
      if (pp.deliveredNext !== undefined) delivered.set(k, Math.max(delivered.get(k) ?? -1, pp.deliveredNext));
    }
    // what the target acknowledged past the restart point is read and sent again by the next forwarder
    const resentByKey = new Map<string, number>();
    let restarting = 0;
    for (const [k, entry] of mine) {
      if (mapOf(held, route).has(k) || (part && k !== keyOf(part.topic, part.partition))) continue;
      const c = committable.get(k);
      const at = c?.offset ?? -1;
      const restartAt = at >= 0 && at !== entry.offset ? restartEntry(entry, at, c?.leaderEpoch) : entry;
      const d = delivered.get(k) ?? -1;
      // exactly-once: what the aborted transaction held is invisible to read_committed consumers, not a duplicate
      if (!part && at >= 0 && d > at) resentByKey.set(k, d - at);
      mine.set(k, restartAt);
      hold(
        route,
        {
          entry: restartAt,
          kind: 'producer',
          ...(code !== undefined ? { code } : {}),
          cause: fenced
            ? `the partition's transactional producer was fenced by a newer owner (${cause}); stopped here until assigned again`
            : outcomeUnknown
              ? `its transaction's commit failed and could not be aborted, so it may have committed (${cause}); it starts again after the last run the target's offset map committed, read once its transactional id is fenced`
              : `the target producer failed fatally: ${cause}`,
          restart: true,
          ...(fenced ? { fenced: true } : {}),
          ...(outcomeUnknown ? { outcomeUnknown: true, ...(d >= 0 ? { deliveredNext: d } : {}) } : {}),
        },
        streak,
        waitsForMain ? Number.POSITIVE_INFINITY : delay,
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
    post({
      type: 'fatal',
      shard: task.shard,
      route,
      ...(code !== undefined ? { code } : {}),
      cause,
      partitions: restarting,
      retryInMs: delay,
      streak,
      fenced,
      ...(fenced && part && restarting > 0 ? { fencedPartition: { topic: part.topic, partition: part.partition } } : {}),
      ...(outcomeUnknown && part && restarting > 0 ? { unknownCommit: { topic: part.topic, partition: part.partition } } : {}),
    });
  };

  /**
   * Ends the slot's open transaction: flushes it, writes its offset-map runs in it and commits. False: it failed
   * (aborted), and the forwarder reports that as fatal (teardown() restarts the partition from its last commit).
   */
  const commitTransaction = (slot: Slot): boolean => {
    const flushed = slot.fw.flushTransaction(TRANSACTION_TIMEOUT_MS);
    if (!flushed.ok) return false;
    const records = flushed.partitions.flatMap((p) =>
      p.runs.map(([srcStart, srcEnd, delta]) =>
        encodeOffsetMapRecord({ v: 1, route: slot.route, sourceTopic: p.topic, partition: p.partition, targetTopic: p.targetTopic, srcStart, srcEnd, delta }),
      ),
    );
    return slot.fw.commitTransaction(OFFSET_MAP_TOPIC, records, TRANSACTION_TIMEOUT_MS).ok;
  };

  /** exactly-once: commits the slot's transaction once it is `intervalMs` old or holds `maxBytes` */
  const commitIfDue = (key: string, slot: Slot) => {
    const tx = clients.get(slot.route)?.transaction;
    if (!tx) return;
    const t = slot.fw.transaction();
    if (!t.open || (t.ageMs < tx.intervalMs && t.bytes < tx.maxBytes)) return;
    if (!commitTransaction(slot)) teardown(key);
  };

  /** exactly-once: a partition leaves this thread: its last transaction commits (or aborts), then its forwarder closes */
  const closeTransactional = (key: string, slot: Slot) => {
    commitTransaction(slot);
    slot.fw.close(0);
    slots.delete(key);
    addExtra(slot.route, slot.fw.progress().partitions);
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
    error: h.fenced || h.outcomeUnknown ? h.cause : `${h.cause}; starting again in ${Math.max(0, h.nextTryAt - Date.now())} ms (attempt ${h.attempts})`,
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

  /** the final report of a partition unassigned before it ran here: its held state, unassigned, nothing in flight */
  const addNeverRan = (route: string, h: Held) => {
    const { error: _e, errorCode: _c, errorKind: _k, ...rest } = heldReport(h);
    addExtra(route, [{ ...rest, assigned: false, paused: false }]);
  };

  /** the partitions of `route` whose last message still waiting in the inbox unassigns them */
  const unassignedLater = (route: string): Set<string> => {
    const last = new Map<string, boolean>();
    for (const q of inbox)
      if ((q.type === 'assign' || q.type === 'unassign') && q.route === route)
        for (const en of q.entries) last.set(keyOf(en.topic, en.partition), q.type === 'unassign');
    return new Set([...last].filter(([, unassigned]) => unassigned).map(([k]) => k));
  };

  const handle = (m: ToPump) => {
    try {
      switch (m.type) {
        case 'assign': {
          const mine = mapOf(entries, m.route);
          const hs = held.get(m.route);
          // a fenced partition (or one whose last commit may have landed) is started again only by the main thread,
          // which planned it from the target
          for (const en of m.entries) {
            const h = hs?.get(keyOf(en.topic, en.partition));
            if (h?.fenced || h?.outcomeUnknown) hs!.delete(keyOf(en.topic, en.partition));
          }
          // exactly-once: a partition unassigned again by a message already waiting here is not started. Starting it
          // would init its transactional id (KIP-98) after its new owner on another worker did, and fence that one.
          const gone = clients.get(m.route)?.transaction ? unassignedLater(m.route) : new Set<string>();
          // its final report (a held one gets its report from the unassign)
          for (const en of m.entries.filter((e) => gone.has(keyOf(e.topic, e.partition)) && !hs?.has(keyOf(e.topic, e.partition)))) {
            addNeverRan(m.route, { entry: en, kind: 'assign', cause: '', attempts: 0, nextTryAt: 0, restart: false });
          }
          const kept = m.entries.filter((en) => !gone.has(keyOf(en.topic, en.partition)));
          const fresh = kept.filter((en) => !hs?.has(keyOf(en.topic, en.partition)));
          for (const en of kept) mine.set(keyOf(en.topic, en.partition), en);
          start(m.route, fresh);
          shareBudget(m.route);
          break;
        }
        case 'route': {
          clients.set(m.clients.route, m.clients);
          // the main thread sends changed settings only once none of the route's partitions runs here
          for (const [key, old] of slotsOf(m.clients.route)) {
            old.fw.close(0);
            slots.delete(key);
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
            // never ran here
            hs!.delete(k);
            addNeverRan(m.route, h);
          }
          for (const en of running) {
            const key = slotKey(m.route, en);
            const own = slots.get(key);
            if (!own?.part) continue;
            own.fw.unassign([en]);
            closeTransactional(key, own);
          }
          if (running.length > 0) slots.get(m.route)?.fw.unassign(running);
          shareBudget(m.route);
          break;
        }
        case 'resume': {
          // the main thread fenced the partition's transactional id (which settled the commit in doubt) and read the
          // target's offset map: the partition starts after the last run committed there. The transaction in doubt
          // committed exactly when that run ends where it did (every record of it was acknowledged, and nothing was
          // sent after it); a run ending anywhere else past the last known commit belongs to something else (a topic of
          // the same name that was deleted), and starting after it could skip records: then the last known commit.
          const k = keyOf(m.topic, m.partition);
          const h = held.get(m.route)?.get(k);
          if (!h?.outcomeUnknown) break;
          const after = m.lastCommitted !== undefined ? m.lastCommitted + 1 : -1;
          const takes = after > h.entry.offset && after === h.deliveredNext;
          if (!takes && after > h.entry.offset) {
            post({
              type: 'error',
              shard: task.shard,
              route: m.route,
              message: `${m.topic}[${m.partition}]: the target's offset map ends at source offset ${m.lastCommitted}, not where its transaction in doubt ended (${h.deliveredNext ?? 'nothing acknowledged'}); it starts again at ${h.entry.offset} (its last known commit), and what that transaction held may be committed twice`,
            });
          }
          post({
            type: 'resumed',
            shard: task.shard,
            route: m.route,
            topic: m.topic,
            partition: m.partition,
            lastKnown: h.entry.offset,
            at: takes ? after : h.entry.offset,
          });
          if (takes) {
            h.entry = restartEntry(h.entry, after, undefined);
            mapOf(entries, m.route).set(k, h.entry);
          }
          delete h.outcomeUnknown;
          h.nextTryAt = Date.now();
          break;
        }
        case 'commit':
          for (const [, s] of slotsOf(m.route))
            s.fw.commit(s.part ? m.offsets.filter((o) => o.topic === s.part!.topic && o.partition === s.part!.partition) : m.offsets);
          break;
        case 'test-fatal':
          for (const [, s] of slotsOf(m.route)) s.fw.testFatalError(m.reason);
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
   * without anyone re-assigning the partition). slot key -> partition -> schedule.
   */
  const targetRetries = new Map<string, Map<string, { attempts: number; nextTryAt: number }>>();
  const retryRefused = (key: string, fw: NativeForwarder, progress: ForwarderProgress) => {
    const mine = mapOf(targetRetries, key);
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

  /**
   * exactly-once: a partition whose producer has not completed init_transactions replicates nothing. Started again
   * after its producer failed, it stays errored as it was until then; a first start is errored once that takes longer
   * than INIT_QUIET_MS (the target's transaction coordinator does not answer). The forwarder fails after 15 s.
   */
  const reportInit = (slot: Slot, progress: ForwarderProgress, now: number) => {
    if (slot.fw.transaction().ready) {
      delete slot.heldBefore;
      return;
    }
    const held = slot.heldBefore;
    const waited = now - slot.createdAt;
    if (!held && waited < INIT_QUIET_MS) return;
    const waiting = `its transactional producer has not completed init_transactions after ${waited} ms`;
    for (const pp of progress.partitions) {
      if (pp.error !== undefined || !pp.assigned) continue;
      pp.error = held ? `${held.cause}; started again, ${waiting}` : `${waiting} (the target's transaction coordinator does not answer)`;
      pp.errorKind = held?.kind ?? 'producer';
      if (held?.code !== undefined) pp.errorCode = held.code;
      pp.paused = true;
    }
  };

  const collect = (): Record<string, ForwarderProgress> => {
    const out: Record<string, ForwarderProgress> = {};
    const now = Date.now();
    for (const [key, slot] of [...slots]) {
      const progress = slot.fw.progress();
      if (progress.fatal !== undefined) {
        teardown(key, progress);
        continue;
      }
      if (slot.part) reportInit(slot, progress, now);
      const before = out[slot.route];
      out[slot.route] = before ? mergeProgress(before, progress) : progress;
      retryRefused(key, slot.fw, progress);
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
    const wait = slots.size === 0 ? 0 : Math.max(1, Math.floor(20 / slots.size));
    for (const [key, slot] of [...slots]) {
      if (slot.fw.pump(wait) < 0) teardown(key);
      else if (slot.part) commitIfDue(key, slot);
    }
    const now = Date.now();
    if (now - lastReport >= task.progressIntervalMs) {
      lastReport = now;
      post({ type: 'progress', shard: task.shard, routes: collect() });
    }
    // Let port messages in. When idle with no forwarders, sleep instead of spinning.
    if (slots.size === 0) await new Promise((r) => setTimeout(r, 20));
    else await yieldToLoop();
  }
  const final: Record<string, ForwarderProgress> = {};
  for (const [, slot] of slots) {
    // exactly-once: what was produced commits now, rather than being aborted and sent again by the next start
    if (slot.part) commitTransaction(slot);
    slot.fw.close(stopping.flushTimeoutMs);
    const progress = slot.fw.progress();
    const before = final[slot.route];
    final[slot.route] = before ? mergeProgress(before, progress) : progress;
  }
  for (const [route, list] of extra) (final[route] ??= emptyProgress()).partitions.push(...list);
  post({ type: 'stopped', shard: task.shard, routes: final });
  task.port.close();
}
