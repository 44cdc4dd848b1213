/**
 * A forwarder that breaks starts again, and a partition that cannot start is a state, never a silent hole — against
 * the real test clusters, through the worker's pipeline (pool threads, native forwarders, commits to a store):
 *
 * - a fatal idempotent-producer error (librdkafka's rd_kafka_test_fatal_error: no real broker raises one on demand)
 *   injected while records flow errors the partitions with STRAIT_PRODUCER_FATAL, closes the forwarder, starts the
 *   partitions again in a new one, counts strait_producer_restarts_total, and every produced key lands;
 * - a partition re-assigned while it still drains on the same pool thread is re-activated in place and replicates;
 * - an assign that fails (a compression the producer refuses; a route the worker has no definition of) errors that
 *   partition with STRAIT_ASSIGN_FAILED, is retried, and holds no other partition back.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { validateConfig } from '../../shared/config';
import { EmbeddedStore } from '../../shared/store/embedded';
import type { CoordinationStore } from '../../shared/store/store';
import { createLogger } from '../../shared/logger';
import { StraitMetrics } from '../../shared/metrics';
import { OFFSET_MAP_TOPIC } from '../../shared/offset-map/records';
import type { PartitionAssignment } from '../../shared/wire';
import { Pipeline } from '../../worker/pipeline';
import { bootstrap, createTopic, endOffsets, produce, readAll, uniqueName } from '../helpers/kafka';
import { waitFor } from '../helpers/strait-process';

// the pool threads copy the environment when they start: fault injection is allowed in this process only
process.env.STRAIT_TEST_FAULTS = '1';

async function ensureOffsetMapTopic(): Promise<void> {
  try {
    await createTopic(bootstrap('b'), OFFSET_MAP_TOPIC, 1, { 'cleanup.policy': 'compact' });
  } catch (e) {
    if (!/already exists/i.test((e as Error).message)) throw e;
  }
}

/** A fresh source topic on `a` and its target topic on `b` (the controller would create it), both with `partitions`. */
async function topicPair(prefix: string, partitions: number): Promise<string> {
  const topic = uniqueName(prefix);
  await createTopic(bootstrap('a'), topic, partitions);
  await createTopic(bootstrap('b'), `a.${topic}`, partitions);
  return topic;
}

interface Harness {
  pipeline: Pipeline;
  metrics: StraitMetrics;
  logs: Record<string, unknown>[];
  /** every partition error code the pipeline showed after a progress batch, with the partitions */
  seen: { code: string; topic: string; partition: number; cause: string }[];
}

async function startPipeline(
  t: Test,
  route: string,
  topic: string,
  threads: number,
  wrap: (s: EmbeddedStore) => CoordinationStore = (s) => s,
): Promise<Harness> {
  await ensureOffsetMapTopic();
  const config = validateConfig({
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [{ name: route, source: 'a', target: 'b', topics: { include: [topic] } }],
    worker: { threads, commitIntervalMs: 300 },
  });
  const store = new EmbeddedStore(mkdtempSync(join(tmpdir(), 'strait-recovery-')));
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('test', 'info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = new StraitMetrics(false);
  const pipeline = new Pipeline(config, 'w1', wrap(store), logger, metrics);
  const seen: Harness['seen'] = [];
  pipeline.onProgress = () => {
    for (const e of pipeline.errored()) seen.push({ code: e.code, topic: e.topic, partition: e.partition, cause: e.cause });
  };
  pipeline.start();
  t.teardown(async () => {
    await pipeline.stop(2000);
    store.close();
  });
  return { pipeline, metrics, logs, seen };
}

const assignment = (route: string, topic: string, partition: number, compression = 'lz4'): PartitionAssignment => ({
  route,
  topic,
  partition,
  targetTopic: `a.${topic}`,
  compression,
  epoch: 1,
});

function records(prefix: string, n: number, partitions: number) {
  return Array.from({ length: n }, (_, i) => ({
    partition: i % partitions,
    key: Buffer.from(`${prefix}-${i}`),
    value: Buffer.from(`value ${prefix} ${i} `.padEnd(200, '.')),
  }));
}

/**
 * Waits until every key in `keys` is on the target (a count alone is not enough: the duplicates of a restart can bring
 * the target's total past the number produced while the last records are still on their way), then checks it.
 */
async function assertAllLanded(t: Test, topic: string, partitions: number, keys: Set<string>): Promise<void> {
  const deadline = Date.now() + 120_000;
  let landed: Awaited<ReturnType<typeof readAll>> = [];
  let distinct = 0;
  let missing: string[] = [...keys];
  while (missing.length > 0 && Date.now() < deadline) {
    try {
      const total = (await endOffsets(bootstrap('b'), `a.${topic}`, partitions)).reduce((a, b) => a + b, 0);
      if (total >= keys.size) {
        landed = await readAll(bootstrap('b'), `a.${topic}`, partitions, total);
        const got = new Set(landed.map((r) => r.key!.toString()));
        distinct = got.size;
        missing = [...keys].filter((k) => !got.has(k));
      }
    } catch {
      // the target answers again on the next pass
    }
    if (missing.length > 0) await new Promise((r) => setTimeout(r, 2000));
  }
  t.equal(missing.length, 0, `every produced key is on the target (missing ${missing.length}: ${missing.slice(0, 5).join(', ')})`);
  t.ok(landed.length >= keys.size, `the target holds ${landed.length} records for ${keys.size} produced`);
  t.comment(`duplicates (records in flight at the time, read again): ${landed.length - distinct}`);
}

const counter = async (m: { get(): Promise<{ values: { labels: Record<string, string | number>; value: number }[] }> }, labels: Record<string, string>) =>
  (await m.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);

t.test('a fatal idempotent-producer error closes the forwarder and starts its partitions again; nothing is lost', async (t) => {
  const route = 'fatal';
  const topic = await topicPair(route, 2);
  const h = await startPipeline(t, route, topic, 2);
  const keys = new Set<string>();
  const batch = async (i: number) => {
    // a backlog first, so that records are queued in the producer when the fatal error comes (librdkafka purges them)
    const list = records(`b${i}`, i === 0 ? 20_000 : 2000, 2);
    await produce(bootstrap('a'), topic, list);
    for (const r of list) keys.add(r.key.toString());
  };
  await batch(0);
  t.same(
    [...(await h.pipeline.assign([assignment(route, topic, 0), assignment(route, topic, 1)]))].sort(),
    [`${route}|${topic}/0`, `${route}|${topic}/1`],
    'both partitions started',
  );
  await waitFor('records flowing', () => h.pipeline.totals.records > 0, 60_000, 20);
  // more records keep arriving while the fatal error is raised
  const flowing = (async () => {
    for (let i = 1; i <= 8; i++) await batch(i);
  })();
  h.pipeline.injectFatalErrorForTest(route, 'fatal error injected by forwarder-recovery.test');

  await waitFor(
    'both partitions errored with STRAIT_PRODUCER_FATAL',
    () => new Set(h.seen.filter((s) => s.code === 'STRAIT_PRODUCER_FATAL').map((s) => s.partition)).size === 2,
    30_000,
    20,
  );
  const fatalSeen = h.seen.find((s) => s.code === 'STRAIT_PRODUCER_FATAL')!;
  t.match(
    fatalSeen.cause,
    /the target producer failed fatally: .*fatal error injected by forwarder-recovery\.test.*; starting again in \d+ ms \(attempt 1\)/,
    'the cause names the fatal error and the retry',
  );
  const fatalLines = h.logs.filter(
    (l) =>
      l.level === 50 &&
      l.code === 'STRAIT_PRODUCER_FATAL' &&
      typeof l.msg === 'string' &&
      l.msg.startsWith(`the target producer of route '${route}' failed fatally`),
  );
  t.match(
    fatalLines[0],
    { route, kafkaCode: 'OUT_OF_ORDER_SEQUENCE_NUMBER', cause: /fatal error injected by forwarder-recovery\.test/ },
    'an error-level log line names the fatal cause',
  );
  t.equal(fatalLines.length, 2, 'one such line per forwarder (one per pool thread), not one per progress interval');
  t.equal(
    h.logs.filter((l) => l.level === 50 && l.code === 'STRAIT_PRODUCER_FATAL' && l.partition !== undefined).length,
    2,
    'and one per partition entering the errored state',
  );
  t.ok((await counter(h.metrics.errors, { route, code: 'STRAIT_PRODUCER_FATAL' })) >= 2, 'strait_errors_total counts STRAIT_PRODUCER_FATAL');

  await waitFor('the producer restarts counted', async () => (await counter(h.metrics.producerRestarts, { route })) === 2, 30_000, 100);
  t.pass('strait_producer_restarts_total{route} = 2 (one forwarder per pool thread)');
  await waitFor('the errored state cleared', () => h.pipeline.errored().length === 0, 30_000, 100);
  t.notMatch(await h.metrics.registry.metrics(), /strait_partition_errored\{/, 'no strait_partition_errored series left');
  t.ok(
    h.logs.some((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.includes('makes progress again (was STRAIT_PRODUCER_FATAL)')),
    'a warning when it clears',
  );
  await flowing;
  await assertAllLanded(t, topic, 2, keys);
  await waitFor('offsets committed to the end', () => [...h.pipeline.partitions.values()].every((p) => p.committed === 18_000), 60_000, 200);
  t.pass('committed offsets reached the end of both partitions');
});

t.test('a partition re-assigned while it still drains on its pool thread is re-activated in place and replicates', async (t) => {
  const route = 'redrain';
  const topic = await topicPair(route, 3);
  const h = await startPipeline(t, route, topic, 2);
  const keys = new Set<string>();
  const perPartition = [0, 0, 0];
  const produceBatch = async (list: ReturnType<typeof records>) => {
    await produce(bootstrap('a'), topic, list);
    for (const r of list) {
      keys.add(r.key.toString());
      perPartition[r.partition]!++;
    }
  };
  await produceBatch(records('r0', 60_000, 3));
  const all = [0, 1, 2].map((p) => assignment(route, topic, p));
  await h.pipeline.assign(all);
  await waitFor('records flowing', () => h.pipeline.totals.records > 0, 60_000, 10);
  const more = (async () => {
    for (let i = 1; i <= 4; i++) await produceBatch(records(`r${i}`, 5000, 3));
  })();
  // stop and start each partition again at once, several times, while its records are in flight
  let cycles = 0;
  while (cycles < 15) {
    const p = all[cycles % 3]!;
    h.pipeline.unassign([p]);
    t.equal(h.pipeline.partitions.get(`${route}|${topic}/${p.partition}`)?.draining, true, `cycle ${cycles}: partition ${p.partition} drains`);
    const started = await h.pipeline.assign([p]);
    t.ok(started.has(`${route}|${topic}/${p.partition}`), `cycle ${cycles}: partition ${p.partition} started again`);
    cycles++;
    await new Promise((r) => setTimeout(r, 30));
  }
  t.comment(`15 unassign/assign cycles; ${h.pipeline.totals.records} of 80,000 records replicated by the last one`);
  await more;
  await assertAllLanded(t, topic, 3, keys);
  t.same(h.pipeline.errored(), [], 'no partition errored');
  t.notOk(
    h.seen.some((s) => s.code === 'STRAIT_ASSIGN_FAILED'),
    'no assign failed on the way',
  );
  await waitFor(
    'offsets committed to the end',
    () => [...h.pipeline.partitions.values()].every((p) => !p.draining && p.committed === perPartition[p.partition]),
    60_000,
    200,
  );
  t.pass('committed offsets reached the end of every partition');
});

t.test('a fenced commit that answers after the partition came back with a newer epoch leaves the new runtime running', async (t) => {
  const route = 'comeback';
  const topic = await topicPair(route, 1);
  // the store's commits can be held at a gate: the commit then in flight was sent under the old epoch
  let gate: { hit: () => void; release: Promise<void> } | undefined;
  let store: EmbeddedStore | undefined;
  const h = await startPipeline(t, route, topic, 1, (s) => {
    store = s;
    return new Proxy(s, {
      get(target, name, receiver) {
        if (name !== 'commitOffsets') return Reflect.get(target, name, receiver) as unknown;
        return async (...args: Parameters<EmbeddedStore['commitOffsets']>) => {
          const g = gate;
          if (g) {
            gate = undefined;
            g.hit();
            await g.release;
          }
          return target.commitOffsets(...args);
        };
      },
    });
  });
  const keys = new Set<string>();
  const send = async (prefix: string, n: number) => {
    const list = records(prefix, n, 1);
    await produce(bootstrap('a'), topic, list);
    for (const r of list) keys.add(r.key.toString());
  };
  await send('first', 500);
  await h.pipeline.assign([assignment(route, topic, 0)]);
  await waitFor('a first commit', async () => ((await store!.readOffsets(route)).get(`${topic}/0`)?.offset ?? 0) > 0, 60_000, 50);

  let release: () => void = () => {};
  const hit = new Promise<void>((res) => (gate = { hit: res, release: new Promise<void>((r) => (release = r)) }));
  await send('second', 500);
  await hit;
  // meanwhile the partition moved to another worker (epoch 2) and back here (epoch 3): the controller fences, the
  // worker stops it and starts it again
  await store!.fence(route, [{ topic, partition: 0, epoch: 3 }]);
  h.pipeline.unassign([{ route, topic, partition: 0 }]);
  await h.pipeline.assign([{ ...assignment(route, topic, 0), epoch: 3 }]);
  release();

  await waitFor('the refused commit answered', async () => (await counter(h.metrics.fenced, { route })) >= 1, 30_000, 50);
  t.ok(
    h.logs.some((l) => l.msg === 'commits refused: a newer epoch owns these partitions; stopping them here unless they came back with it' && l.stopping === 0),
    'the epoch-1 commit was refused, and nothing was stopped for it',
  );
  const rt = h.pipeline.partitions.get(`${route}|${topic}/0`);
  t.equal(rt?.draining, false, 'the epoch-3 runtime still runs');
  t.equal(rt?.epoch, 3, 'under the new epoch');
  await send('third', 500);
  await assertAllLanded(t, topic, 1, keys);
  await waitFor('commits go on under the new epoch', async () => (await store!.readOffsets(route)).get(`${topic}/0`)?.offset === 1500, 60_000, 100);
  t.equal((await store!.readOffsets(route)).get(`${topic}/0`)?.epoch, 3, 'the stored epoch is the new one');
});

t.test('a failing assign errors only that partition with STRAIT_ASSIGN_FAILED, is retried, and clears once it starts', async (t) => {
  const route = 'assignfail';
  const topic = await topicPair(route, 2);
  const list = records('f', 1000, 2);
  await produce(bootstrap('a'), topic, list);
  const h = await startPipeline(t, route, topic, 1);
  // one pool thread: both entries reach the same forwarder in one assign call; the first one is refused
  const started = await h.pipeline.assign([assignment(route, topic, 0, 'no-such-codec'), assignment(route, topic, 1)]);
  t.equal(started.size, 2, 'both handed to the pool thread (it owns the retry)');
  await waitFor('partition 0 errored', () => h.pipeline.errored().some((e) => e.partition === 0), 30_000, 20);
  const e0 = h.pipeline.errored().find((e) => e.partition === 0)!;
  t.match(
    e0,
    {
      route,
      topic,
      partition: 0,
      code: 'STRAIT_ASSIGN_FAILED',
      kafkaCode: '_INVALID_ARG',
      cause: /^assign .*\[0\]: compression: .*no-such-codec.*; starting again in \d+ ms \(attempt \d+\)$/,
    },
    'code, librdkafka code and cause',
  );
  t.match(
    await h.metrics.registry.metrics(),
    new RegExp(`strait_partition_errored\\{route="${route}",topic="${topic}",partition="0",code="STRAIT_ASSIGN_FAILED"\\} 1`),
  );
  t.ok(
    h.logs.some((l) => l.level === 50 && l.code === 'STRAIT_ASSIGN_FAILED' && l.partition === 0),
    'an error-level log line',
  );
  await waitFor(
    'partition 1 replicated all its records',
    async () => (await endOffsets(bootstrap('b'), `a.${topic}`, 2).catch(() => [0, 0]))[1] === 500,
    60_000,
    200,
  );
  t.pass('the refused entry held the other one back in nothing');
  await waitFor('retried', () => /attempt [3-9]/.test(h.pipeline.errored().find((e) => e.partition === 0)?.cause ?? ''), 30_000, 50);
  t.pass('the refused partition is tried again with a growing delay');
  t.equal((await endOffsets(bootstrap('b'), `a.${topic}`, 2))[0], 0, 'partition 0 replicated nothing');

  // the assignment changes (the route's compression fixed): the partition starts and the state clears
  h.pipeline.unassign([assignment(route, topic, 0)]);
  await waitFor('the held partition drained', () => !h.pipeline.partitions.has(`${route}|${topic}/0`), 30_000, 50);
  t.same(h.pipeline.errored(), [], 'unassigned: no longer errored');
  await h.pipeline.assign([assignment(route, topic, 0)]);
  await waitFor('partition 0 replicated', async () => (await endOffsets(bootstrap('b'), `a.${topic}`, 2).catch(() => [0, 0]))[0] === 500, 60_000, 200);
  t.same(h.pipeline.errored(), [], 'nothing errored');
  t.notMatch(await h.metrics.registry.metrics(), /strait_partition_errored\{/, 'the series is gone');

  // a route this worker has no definition of: not started, errored, and started once the definition is there
  const unknown = await h.pipeline.assign([{ ...assignment('elsewhere', topic, 0) }]);
  t.equal(unknown.size, 0, 'a partition of an unknown route is not reported as started');
  t.match(
    h.pipeline.errored(),
    [{ route: 'elsewhere', topic, partition: 0, code: 'STRAIT_ASSIGN_FAILED', cause: /no definition of the route/ }],
    'and is errored',
  );
  h.pipeline.retainUnstarted(new Set());
  t.same(h.pipeline.errored(), [], 'forgotten once no longer assigned');
});
