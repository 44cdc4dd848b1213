/**
 * Integrity: 1,000,000 records over 8 partitions — random keys and null keys, several headers (duplicate keys,
 * binary values), tombstones, empty values, old timestamps — arrive on the target in the same partition, in the same
 * order, byte-identical; and the offset-map runs strait persisted match where every record landed.
 */
import t from 'tap';
import { unpack } from 'msgpackr';
import { OFFSET_MAP_TOPIC, type OffsetMapRecord } from '../../shared/offset-map/records';
import { bootstrap, createTopic, endOffsets, prng, produce, readAll, sameRecord, uniqueName, type TestRecord } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

const RECORDS = Number(process.env.STRAIT_FIDELITY_RECORDS ?? 1_000_000);
const PARTITIONS = 8;

// node-rdkafka turns a zero-length Buffer with no backing memory into a null value; a zero-length view of real
// memory stays an empty (non-null) value.
const EMPTY = Buffer.alloc(8).subarray(4, 4);

function generate(n: number): TestRecord[] {
  const rnd = prng(42);
  const old = Date.UTC(2001, 0, 1);
  const now = Date.now() - 3_600_000;
  const out: TestRecord[] = [];
  for (let i = 0; i < n; i++) {
    const key = i % 13 === 0 ? null : Buffer.from(`k${Math.floor(rnd() * 1e9)}`);
    const value = i % 17 === 0 ? null : i % 19 === 0 ? EMPTY : Buffer.from(Array.from({ length: Math.floor(rnd() * 120) }, () => Math.floor(rnd() * 256)));
    const headers =
      i % 5 === 0
        ? undefined
        : [
            { key: 'trace', value: Buffer.from(`t${i}`) },
            { key: 'dup', value: Buffer.from('first') },
            { key: 'bin', value: Buffer.from([0, 255, i & 255, 0]) },
            { key: 'dup', value: Buffer.from('second') },
          ];
    out.push({ partition: i % PARTITIONS, key, value, ...(headers ? { headers } : {}), timestamp: i % 11 === 0 ? old + i : now + i });
  }
  return out;
}

async function readOffsetMap(brokers: string, route: string, topic: string): Promise<OffsetMapRecord[]> {
  const [end] = await endOffsets(brokers, OFFSET_MAP_TOPIC, 1);
  const recs = await readAll(brokers, OFFSET_MAP_TOPIC, 1, end!, 30_000);
  return recs.map((r) => unpack(r.value!) as OffsetMapRecord).filter((r) => r.route === route && r.sourceTopic === topic);
}

t.teardown(stopAll);

t.test(`${RECORDS} records replicate byte-identical, in order, in the same partition`, async (t) => {
  const a = bootstrap('a');
  const b = bootstrap('b');
  const topic = uniqueName('fidelity');
  await createTopic(a, topic, PARTITIONS);
  const records = generate(RECORDS);
  await produce(a, topic, records);
  const source = await readAll(a, topic, PARTITIONS, RECORDS, 240_000);
  t.equal(source.length, RECORDS, 'source holds every record');
  t.ok(
    source.some((r) => r.value !== null && r.value.length === 0),
    'source has empty values',
  );
  t.ok(
    source.some((r) => r.value === null),
    'source has tombstones',
  );
  t.ok(
    source.some((r) => r.key === null),
    'source has null keys',
  );

  const route = 'fidelity';
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
      routes: [{ name: route, source: 'a', target: 'b', topics: { include: [topic] } }],
      worker: { threads: 2, commitIntervalMs: 500 },
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  const targetTopic = `a.${topic}`;
  await waitFor(
    'every record on the target',
    async () => {
      try {
        return (await endOffsets(b, targetTopic, PARTITIONS)).reduce((x, y) => x + y, 0) >= RECORDS;
      } catch {
        return false;
      }
    },
    240_000,
    1000,
  );
  const target = await readAll(b, targetTopic, PARTITIONS, RECORDS, 240_000);
  t.equal(target.length, RECORDS, 'target holds exactly as many records');
  for (let p = 0; p < PARTITIONS; p++) {
    const src = source.filter((r) => r.partition === p).sort((x, y) => x.offset - y.offset);
    const dst = target.filter((r) => r.partition === p).sort((x, y) => x.offset - y.offset);
    let firstBad = -1;
    for (let i = 0; i < src.length; i++) {
      if (!dst[i] || !sameRecord(src[i]!, dst[i]!)) {
        firstBad = i;
        break;
      }
    }
    t.equal(dst.length, src.length, `partition ${p}: same count`);
    t.equal(firstBad, -1, `partition ${p}: same order, byte-identical key, value, headers, timestamp`);
  }
  // strait commits after the last acknowledgement; then its runs must describe where each record landed
  await waitFor(
    'offset map covers the topic',
    async () => {
      const runs = await readOffsetMap(b, route, topic);
      return runs.reduce((n, r) => n + (r.srcEnd - r.srcStart + 1), 0) >= RECORDS;
    },
    60_000,
    1000,
  );
  const runs = await readOffsetMap(b, route, topic);
  const latest = new Map<string, OffsetMapRecord>();
  for (const r of runs) latest.set(`${r.partition}/${r.srcStart}`, r);
  const landed = new Map(target.map((r) => [`${r.partition}/${r.offset}`, r]));
  let checked = 0;
  let wrong = 0;
  for (const s of source) {
    const run = [...latest.values()].find((r) => r.partition === s.partition && r.srcStart <= s.offset && s.offset <= r.srcEnd);
    const at = run ? landed.get(`${s.partition}/${s.offset + run.delta}`) : undefined;
    if (!at || !sameRecord(at, s)) wrong++;
    checked++;
    if (checked >= 20_000) break; // a sample of the first records of every partition is enough to prove the mapping
  }
  t.equal(wrong, 0, `offset-map runs give the exact target offset of ${checked} sampled records`);
  const metrics = await strait.metrics();
  const replicated = [...metrics.matchAll(/^strait_records_total\{[^}]*route="fidelity"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  t.equal(replicated, RECORDS, 'strait_records_total counts every record');
  t.match(metrics, /strait_replication_latency_seconds_bucket\{route="fidelity",le="\+Inf"\} \d+/, 'latency histogram exported');
  t.match(metrics, /strait_lag_records\{route="fidelity",topic="[^"]+",partition="0"\} 0/, 'lag is 0 once caught up');
  // exit code 0 and no hang: every handle (pool threads, forwarders, clients, HTTP server) was closed
  t.equal(await strait.stop(), 0, 'strait stops cleanly on SIGTERM and exits by itself');
});
