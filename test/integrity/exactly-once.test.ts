/**
 * delivery: exactly-once — kill -9 of `strait run` mid-stream, then restart: an independent read_committed reader of
 * the target sees every source record exactly once, in source order per partition, while a read_uncommitted reader
 * sees the copies of the transaction the kill left open (aborted at the restart), which proves the check can tell.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { unpack } from 'msgpackr';
import { OFFSET_MAP_TOPIC, decodeOffsetMapRecord } from '../../shared/offset-map/records';
import Kafka from 'node-rdkafka';
import { bootstrap, createTopic, disconnect, produce, readAll, uniqueName, type ReadRecord } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

const PARTITIONS = 3;

function records(from: number, n: number) {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { partition: i % PARTITIONS, key: Buffer.from(`k${i}`), value: Buffer.from(`value-${i}-${'x'.repeat(i % 40)}`) };
  });
}

const byPartition = (rs: ReadRecord[], p: number) =>
  rs
    .filter((r) => r.partition === p)
    .sort((x, y) => x.offset - y.offset)
    .map((r) => r.value!.toString());

/**
 * The target's end offsets as a read_uncommitted and a read_committed client see them (ListOffsets answers the last
 * stable offset to read_committed, KIP-98): a partition whose end is above its stable offset has an open transaction
 * with records in it.
 */
class TransactionWatch {
  private constructor(
    private readonly clients: Kafka.KafkaConsumer[],
    private readonly topic: string,
  ) {}

  static async open(brokers: string, topic: string): Promise<TransactionWatch> {
    const clients = await Promise.all(
      (['read_uncommitted', 'read_committed'] as const).map(async (isolation) => {
        const c = new Kafka.KafkaConsumer(
          { 'bootstrap.servers': brokers, 'group.id': uniqueName('eos-watch'), 'isolation.level': isolation, log_level: 0 },
          {},
        );
        await new Promise<void>((res, rej) => c.connect({ timeout: 15_000 }, (e) => (e ? rej(e) : res())));
        return c;
      }),
    );
    return new TransactionWatch(clients, topic);
  }

  private ends(c: Kafka.KafkaConsumer): Promise<number[]> {
    return Promise.all(
      Array.from(
        { length: PARTITIONS },
        (_, p) => new Promise<number>((res, rej) => c.queryWatermarkOffsets(this.topic, p, 5000, (e, o) => (e ? rej(e) : res(o.highOffset)))),
      ),
    );
  }

  async open(): Promise<boolean> {
    const [end, stable] = await Promise.all(this.clients.map((c) => this.ends(c)));
    return end!.some((e, p) => e > stable![p]!);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => disconnect(c)));
  }
}

t.test('exactly-once: kill -9 of strait run mid-stream, restart: 0 duplicates and 0 missing for read_committed readers', async (t) => {
  const a = bootstrap('a');
  const b = bootstrap('b');
  const topic = uniqueName('eos');
  const target = `a.${topic}`;
  const TOTAL = 60_000;
  await createTopic(a, topic, PARTITIONS);
  const config = writeConfig({
    clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
    routes: [{ name: 'eos', source: 'a', target: 'b', topics: { include: [topic] }, delivery: 'exactly-once', transactionIntervalMs: 300 }],
    // the store follows the target's transactions only every 4 s: at the kill it lags them, and a restart from the
    // store alone would send again what committed since — the start must read the offset map on the target
    worker: { threads: 2, commitIntervalMs: 4000 },
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  const storeFile = join(dirname(config), 'store', 'store.msgpack');
  const stored = (): number[] => {
    try {
      const offsets = (unpack(readFileSync(storeFile)) as { offsets: Record<string, Record<string, { offset: number }>> }).offsets.eos ?? {};
      return Array.from({ length: PARTITIONS }, (_, p) => offsets[`${topic}/${p}`]?.offset ?? 0);
    } catch {
      return Array.from({ length: PARTITIONS }, () => 0);
    }
  };
  // a steady producer: 1000 records every 200 ms (12 s at least), so the stream still flows at the kill
  let producedSoFar = 0;
  const producing = (async () => {
    for (let i = 0; i < TOTAL; i += 1000) {
      await produce(a, topic, records(i, 1000));
      producedSoFar = i + 1000;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const first = new StraitProcess(config);
  await waitFor(
    'replication under way with transactions committed',
    async () => stored().reduce((x, y) => x + y, 0) >= 10_000 && producedSoFar < TOTAL - 25_000,
    90_000,
    50,
  );
  await new Promise((r) => setTimeout(r, 2500)); // transactions commit on; the store is not told until the next commit
  // kill while a transaction holds records on the target (its end above the last stable offset): they must be aborted
  const watch = await TransactionWatch.open(b, target);
  try {
    await waitFor('a transaction open on the target with records in it', () => watch.open(), 30_000, 0);
  } finally {
    await watch.close();
  }
  t.ok(producedSoFar < TOTAL, `the stream still flowed at the kill (${producedSoFar} of ${TOTAL} produced)`);
  await first.kill9();
  const atKill = stored();
  t.comment(`killed with ${atKill.reduce((x, y) => x + y, 0)} records committed (store), ${producedSoFar} produced`);
  await producing;
  const second = new StraitProcess(config);
  await waitFor('every record committed after the restart', async () => stored().reduce((x, y) => x + y, 0) >= TOTAL, 120_000, 250);

  const starts = (await second.json<{ worker: { starts: { topic: string; partition: number; from: string; offset: number }[] } }>('/v1/status')).worker.starts;
  for (let p = 0; p < PARTITIONS; p++) {
    const s = starts.find((x) => x.topic === topic && x.partition === p);
    t.ok(s !== undefined && s.offset >= atKill[p]!, `partition ${p} restarted at ${s?.offset} (${s?.from}), never before what the store had (${atKill[p]})`);
  }
  const ahead = starts.filter((s) => s.topic === topic && s.from === 'target' && s.offset > atKill[s.partition]!);
  t.ok(ahead.length > 0, `${ahead.length} partitions resumed after their last committed run on the target, past the store's offset`);

  const source = await readAll(a, topic, PARTITIONS, TOTAL, 60_000);
  t.equal(source.length, TOTAL, 'the source holds every record');
  // one record more than the source holds: a duplicate would be read, not cut off at the count
  const committed = await readAll(b, target, PARTITIONS, TOTAL + 1, 20_000, 'read_committed');
  t.equal(committed.length, TOTAL, `read_committed: ${committed.length} records on the target for ${TOTAL} on the source`);
  for (let p = 0; p < PARTITIONS; p++) {
    const src = byPartition(source, p);
    const dst = byPartition(committed, p);
    const seen = new Set(dst);
    t.equal(dst.length - seen.size, 0, `partition ${p}: 0 duplicates`);
    t.equal(src.filter((v) => !seen.has(v)).length, 0, `partition ${p}: 0 missing`);
    t.same(dst, src, `partition ${p}: the target holds the source's records in source order`);
  }
  const uncommitted = await readAll(b, target, PARTITIONS, TOTAL * 2, 20_000, 'read_uncommitted');
  t.ok(uncommitted.length > TOTAL, `read_uncommitted sees the aborted copies of the killed transaction (${uncommitted.length - TOTAL} more records)`);

  // the offset map (read_committed) covers every committed record once, in runs that treat markers as gaps
  const runs = (await readAll(b, OFFSET_MAP_TOPIC, 1, Number.MAX_SAFE_INTEGER, 10_000))
    .map((r) => (r.value ? decodeOffsetMapRecord(r.value) : undefined))
    .filter((r) => r?.route === 'eos' && r.sourceTopic === topic);
  for (let p = 0; p < PARTITIONS; p++) {
    const mine = runs.filter((r) => r!.partition === p).sort((x, y) => x!.srcStart - y!.srcStart);
    const covered = mine.reduce((n, r) => n + (r!.srcEnd - r!.srcStart + 1), 0);
    t.equal(covered, byPartition(source, p).length, `partition ${p}: the offset map's committed runs cover each source offset once`);
    const atTarget = new Map(committed.filter((r) => r.partition === p).map((r) => [r.offset, r.value!.toString()]));
    const src = byPartition(source, p);
    const exact = mine.every((r) => {
      for (let s = r!.srcStart; s <= r!.srcEnd; s++) if (atTarget.get(s + r!.delta) !== src[s]) return false;
      return true;
    });
    t.ok(exact, `partition ${p}: every run translates source offsets to the target records that hold them`);
  }
  t.equal(await second.stop(), 0);
});
