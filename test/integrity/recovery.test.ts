/**
 * Failures: kill -9 of strait mid-stream, then restart (nothing lost; duplicates exactly the records the target had
 * beyond the committed offsets — the in-flight window — and strait counts exactly those), and the target broker stopped
 * for 30 s mid-stream.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { unpack } from 'msgpackr';
import { startStoppedCluster, stopCluster } from '../../bench/harness/local-cluster';
import { withClusterLock } from '../helpers/cluster-lock';
import { TEST_DEV_DIR } from '../helpers/dir';
import { bootstrap, createTopic, endOffsets, produce, readAll, totalRecords, uniqueName, type ReadRecord } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

const PARTITIONS = 4;

function records(from: number, n: number) {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { partition: i % PARTITIONS, key: Buffer.from(`k${i}`), value: Buffer.from(`value-${i}-${'x'.repeat(i % 50)}`) };
  });
}

/** Produces `total` records in slices so replication runs while data keeps arriving. */
async function produceSlowly(brokers: string, topic: string, total: number, slice: number, pauseMs: number): Promise<void> {
  for (let i = 0; i < total; i += slice) {
    await produce(brokers, topic, records(i, Math.min(slice, total - i)));
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

const byPartition = (rs: ReadRecord[], p: number) =>
  rs
    .filter((r) => r.partition === p)
    .sort((x, y) => x.offset - y.offset)
    .map((r) => r.value!.toString());

const sum = (brokers: string, topic: string) => totalRecords(brokers, topic, PARTITIONS);

t.test('kill -9 mid-stream, restart: nothing lost, duplicates = what landed beyond the committed offsets', async (t) => {
  const a = bootstrap('a');
  const b = bootstrap('b');
  const topic = uniqueName('crash');
  const TOTAL = 200_000;
  await createTopic(a, topic, PARTITIONS);
  const config = writeConfig({
    clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
    routes: [{ name: 'crash', source: 'a', target: 'b', topics: { include: [topic] } }],
    worker: { threads: 2, commitIntervalMs: 1000 },
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  const producing = produceSlowly(a, topic, TOTAL, 10_000, 150);
  const first = new StraitProcess(config);
  const storeFile = join(dirname(config), 'store', 'store.msgpack');
  const readCommitted = (): Record<string, { offset: number }> => {
    try {
      return (unpack(readFileSync(storeFile)) as { offsets: Record<string, Record<string, { offset: number }>> }).offsets.crash ?? {};
    } catch {
      return {};
    }
  };
  // a partition may not have made its first regular commit yet: it resumes at the start its first run committed, and
  // counts its replay from there (the next test makes that case certain)
  await waitFor(
    'replication under way with offsets committed',
    async () => {
      const c = Object.values(readCommitted()).reduce((n, o) => n + o.offset, 0);
      return c >= 20_000 && (await sum(b, `a.${topic}`)) < TOTAL;
    },
    90_000,
    50,
  );
  await first.kill9();
  await new Promise((r) => setTimeout(r, 1500)); // requests already on the wire may still land
  const landed = await endOffsets(b, `a.${topic}`, PARTITIONS);
  const store = { offsets: { crash: readCommitted() } };
  const committed = Array.from({ length: PARTITIONS }, (_, p) => store.offsets.crash?.[`${topic}/${p}`]?.offset ?? 0);
  for (let p = 0; p < PARTITIONS; p++)
    t.ok(committed[p]! <= landed[p]!, `partition ${p}: committed ${committed[p]} never passes what the target acknowledged (${landed[p]})`);
  const duplicates = landed.reduce((n, e, p) => n + (e - committed[p]!), 0);
  t.comment(`killed with ${landed.reduce((x, y) => x + y, 0)} records on the target, ${duplicates} beyond the committed offsets`);
  await producing;
  const second = new StraitProcess(config);
  await waitFor('everything replicated after restart', async () => (await sum(b, `a.${topic}`)) >= TOTAL + duplicates, 120_000, 250);
  // strait's own count of what it sent again: the target's end past each committed offset's records, read at the start
  const resent = [...(await second.metrics()).matchAll(/^strait_records_resent_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  t.equal(resent, duplicates, `strait_records_resent_total counts the ${duplicates} duplicates of the restart exactly`);
  const starts = (await second.json<{ worker: { starts: { topic: string; partition: number; from: string; resent?: number }[] } }>('/v1/status')).worker.starts;
  for (let p = 0; p < PARTITIONS; p++) {
    const s = starts.find((x) => x.topic === topic && x.partition === p);
    t.equal(s?.from, 'committed', `partition ${p} resumed at its committed offset`);
    t.equal(s?.resent ?? 0, landed[p]! - committed[p]!, `partition ${p}: its start says it sends ${landed[p]! - committed[p]!} records again`);
  }
  await new Promise((r) => setTimeout(r, 1500));
  const source = await readAll(a, topic, PARTITIONS, TOTAL, 120_000);
  const target = await readAll(b, `a.${topic}`, PARTITIONS, TOTAL + duplicates, 120_000);
  t.equal(target.length, TOTAL + duplicates, `target = source + ${duplicates} duplicates, no more`);
  for (let p = 0; p < PARTITIONS; p++) {
    const src = byPartition(source, p);
    const expected = [...src.slice(0, landed[p]), ...src.slice(committed[p])];
    t.same(byPartition(target, p), expected, `partition ${p}: everything before the crash, then a replay from the committed offset`);
  }
  t.equal(await second.stop(), 0);
});

t.test('kill -9 before the first regular commit, restart: the duplicates of the replay are counted too', async (t) => {
  // A partition's first start commits its resolved start (the route's `start`) with the target's end at that moment;
  // a worker killed before its first regular commit resumes there, and sends again all it had sent. The commit
  // interval is far longer than the test, so the kill lands before any regular commit on every partition.
  const a = bootstrap('a');
  const b = bootstrap('b');
  const topic = uniqueName('early');
  const TOTAL = 20_000;
  await createTopic(a, topic, PARTITIONS);
  await produce(a, topic, records(0, TOTAL));
  const config = writeConfig({
    clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
    routes: [{ name: 'early', source: 'a', target: 'b', start: 'earliest', topics: { include: [topic] } }],
    worker: { threads: 2, commitIntervalMs: 600_000 },
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  const first = new StraitProcess(config);
  await waitFor('every record on the target', async () => (await sum(b, `a.${topic}`)) >= TOTAL, 90_000, 200);
  const before = (await first.json<{ worker: { starts: { topic: string; partition: number; from: string }[] } }>('/v1/status')).worker.starts;
  t.same(
    before.filter((s) => s.topic === topic).map((s) => s.from),
    Array<string>(PARTITIONS).fill('earliest'),
    'every partition started at the route start',
  );
  await first.kill9();
  const landed = await endOffsets(b, `a.${topic}`, PARTITIONS);
  const second = new StraitProcess(config);
  await waitFor('the replay on the target', async () => (await sum(b, `a.${topic}`)) >= 2 * TOTAL, 90_000, 200);
  const resent = [...(await second.metrics()).matchAll(/^strait_records_resent_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  t.equal(resent, TOTAL, `strait_records_resent_total counts the ${TOTAL} records sent again`);
  const starts = (await second.json<{ worker: { starts: { topic: string; partition: number; from: string; resent?: number }[] } }>('/v1/status')).worker.starts;
  for (let p = 0; p < PARTITIONS; p++) {
    const s = starts.find((x) => x.topic === topic && x.partition === p);
    t.equal(s?.from, 'committed', `partition ${p} resumed at the start its first run committed`);
    t.equal(s?.resent ?? 0, landed[p], `partition ${p}: its start says it sends ${landed[p]} records again`);
  }
  const target = await readAll(b, `a.${topic}`, PARTITIONS, 2 * TOTAL, 60_000);
  const source = await readAll(a, topic, PARTITIONS, TOTAL, 60_000);
  for (let p = 0; p < PARTITIONS; p++) {
    const src = byPartition(source, p);
    t.same(byPartition(target, p), [...src, ...src], `partition ${p}: the whole partition, then the whole replay, in order`);
  }
  t.equal(await second.stop(), 0);
});

t.test('target broker stopped for 30 s mid-stream: no crash, no loss, resumes by itself', (t) =>
  withClusterLock('c', async () => {
    const a = bootstrap('a');
    const c = bootstrap('c'); // besides this test only the active-active rings use cluster c, under the same lock
    const topic = uniqueName('outage');
    const TOTAL = 60_000;
    await createTopic(a, topic, PARTITIONS);
    const strait = new StraitProcess(
      writeConfig({
        clusters: { a: { bootstrap: a }, c: { bootstrap: c } },
        routes: [{ name: 'outage', source: 'a', target: 'c', topics: { include: [topic] } }],
        worker: { threads: 2, commitIntervalMs: 500, inflightBytes: 4 * 1024 * 1024 },
        controller: { refreshTopicsIntervalMs: 1000 },
      }),
    );
    await produce(a, topic, records(0, 20_000));
    await waitFor('first records on the target', async () => (await sum(c, `a.${topic}`)) >= 20_000, 60_000, 200);
    await stopCluster('c', { dir: TEST_DEV_DIR });
    const down = Date.now();
    await produce(a, topic, records(20_000, TOTAL - 20_000));
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - down))));
    t.equal(strait.child.exitCode, null, 'strait is still running after 30 s without its target');
    const metrics = await strait.metrics();
    const inflight = Number(/^strait_inflight_bytes (\d+)/m.exec(metrics)?.[1] ?? 'NaN');
    t.ok(inflight <= 4 * 1024 * 1024 + 1024 * 1024, `in-flight bytes stay within the budget (${inflight})`);
    await startStoppedCluster('c', { dir: TEST_DEV_DIR });
    await waitFor('replication resumed', async () => (await sum(c, `a.${topic}`)) >= TOTAL, 120_000, 500);
    const source = await readAll(a, topic, PARTITIONS, TOTAL, 60_000);
    const target = await readAll(c, `a.${topic}`, PARTITIONS, TOTAL, 60_000);
    for (let p = 0; p < PARTITIONS; p++) {
      const src = byPartition(source, p);
      const dst = byPartition(target, p);
      const missing = src.filter((v) => !dst.includes(v)).length;
      t.equal(missing, 0, `partition ${p}: nothing lost`);
      t.same([...new Set(dst)], src, `partition ${p}: order kept`);
      if (dst.length > src.length) t.comment(`partition ${p}: ${dst.length - src.length} duplicates`);
    }
    t.equal(await strait.stop(), 0);
  }),
);
