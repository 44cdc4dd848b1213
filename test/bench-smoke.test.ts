/**
 * A short run of the bench against the test clusters: every system and the ceiling report positive numbers, every
 * system replicated the whole backlog over at least the (small, for speed) minimum window, which grew the backlog
 * past the records preloaded first (values are not judged: speed is proven by `strait bench`, not here).
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench } from '../bench/bench';
import type { ScenarioResult } from '../bench/results';
import { CEILING, CEILING_CONSUMER, CEILING_PRODUCER } from '../bench/scenarios/ceiling';
import { LATENCY_FLOOR } from '../bench/scenarios/latency';
import { bootstrap } from './helpers/kafka';

t.test('bench throughput + ceiling smoke run', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'strait-bench-'));
  const results: ScenarioResult[] = await runBench({
    scenarios: ['throughput', 'ceiling'],
    source: bootstrap('a'),
    target: bootstrap('b'),
    records: 20000,
    recordSizes: [200],
    partitions: 4,
    codecs: ['lz4'],
    out,
    systems: ['strait', 'strait-eos', 'js-baseline', 'mm2-default'],
    minWindowSec: 1,
    ceilingProducers: 2,
    log: (l) => t.comment(l),
  });
  t.equal(results.length, 1);
  const r = results[0]!;
  t.ok(r.records > 20000, `the backlog grew past the 20000 records preloaded first (${r.records}) to fill the window`);
  // strait-eos: delivery exactly-once, timed until its end records committed (read_committed)
  for (const name of ['strait', 'strait-eos', 'js-baseline', 'mm2-default']) {
    const s = r.results.find((x) => x.system === name);
    t.ok(s, `${name} ran`);
    t.equal(s?.note, undefined, `${name}: no failure or short-window note`);
    t.ok((s?.records ?? 0) >= 20000 && (s?.records ?? 0) <= r.records, `${name}: replicated a whole backlog (${s?.records})`);
    t.ok((s?.seconds ?? 0) >= 1, `${name}: measured over ${s?.seconds} s, at least the minimum window`);
    t.ok((s?.recordsPerSec ?? 0) > 0 && (s?.mbPerSec ?? 0) > 0, `${name}: positive rate`);
    t.ok((s?.peakRssMB ?? 0) > 0 && (s?.cpuSecondsPerGB ?? -1) >= 0, `${name}: memory and CPU measured`);
  }
  for (const name of [CEILING_PRODUCER, CEILING_CONSUMER, CEILING]) {
    const s = r.results.find((x) => x.system === name);
    t.ok((s?.recordsPerSec ?? 0) > 0, `${name}: measured (${s?.recordsPerSec} records/s)`);
  }
  const producers = r.results.find((x) => x.system === CEILING_PRODUCER)!;
  const shares = /2 at once \((\d+) \+ (\d+) records\/s\)/.exec(producers.note ?? '');
  t.ok(shares, `two ProducerPerformance processes wrote at once (${producers.note})`);
  t.equal(producers.recordsPerSec, Number(shares?.[1]) + Number(shares?.[2]), 'the producer row is the sum of their rates');
  const lower = r.results.find((x) => x.system === CEILING)!;
  t.equal(
    lower.recordsPerSec,
    Math.min(...[CEILING_PRODUCER, CEILING_CONSUMER].map((n) => r.results.find((x) => x.system === n)!.recordsPerSec)),
    'the ceiling is the lower concurrent rate',
  );
  t.ok(lower.seconds >= 1, `ceiling window ${lower.seconds} s`);
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  t.match(md, /\| strait \| \d+ \|/);
  t.match(md, /strait \/ MirrorMaker 2 default: [\d.]+x/);
  t.match(md, /strait \/ concurrent ceiling: [\d.]+x/);
  t.match(md, /^Commit: [0-9a-f]{12}/m);
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  t.equal(json.results.length, 1, 'results.json written');
  t.ok(
    json.commit && json.kafkaVersion && json.loadBefore.length === 3 && json.loadAfter.length === 3 && json.machine.cores > 0,
    'results.json says the commit, Kafka, load and machine',
  );
});

t.test('bench latency smoke run: percentiles present and ordered, every record measured', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'strait-bench-'));
  const results = await runBench({
    scenarios: ['latency'],
    source: bootstrap('a'),
    target: bootstrap('b'),
    records: 1,
    recordSizes: [100],
    partitions: 2,
    codecs: ['none'],
    out,
    systems: ['strait', 'strait-eos'],
    rate: 200,
    durationSec: 2,
    warmupSec: 1,
    log: (l) => t.comment(l),
  });
  const r = results[0]?.results.find((x) => x.system === 'strait');
  t.equal(r?.note, undefined, 'no failure note');
  t.equal(r?.records, 400, 'every one of the 400 measured records arrived');
  t.ok((r?.p50Ms ?? 0) >= 1 && r!.p50Ms! <= r!.p99Ms! && r!.p99Ms! <= r!.p999Ms!, `p50 ${r?.p50Ms} <= p99 ${r?.p99Ms} <= p99.9 ${r?.p999Ms}`);
  // delivery: exactly-once, read read_committed: measured once its transaction committed, and shown to be transactional
  const eos = results[0]?.results.find((x) => x.system === 'strait-eos');
  t.equal(eos?.records, 400, `strait-eos: every one of the 400 measured records arrived read_committed (${eos?.note})`);
  t.match(eos?.note ?? '', /^\d+ transaction markers on the target$/, 'strait-eos: its transactions left commit markers on the target');
  // the floor: the same producer and reader on the source itself, no replicator; a replicated record makes that hop too
  const floor = results[0]?.results.find((x) => x.system === LATENCY_FLOOR);
  t.equal(floor?.records, 400, 'the floor row measured its 400 records, read from the source');
  t.ok((floor?.p50Ms ?? 0) >= 1 && floor!.p50Ms! <= floor!.p99Ms!, `floor p50 ${floor?.p50Ms} <= p99 ${floor?.p99Ms}`);
  t.match(readFileSync(join(out, 'report.html'), 'utf8'), /<svg/, 'report.html holds the chart');
});

t.test('bench many-partitions smoke run: the stream spread over every partition, each delivered, fds and CPU measured', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'strait-bench-'));
  const results = await runBench({
    scenarios: ['many-partitions'],
    source: bootstrap('a'),
    target: bootstrap('b'),
    records: 1,
    recordSizes: [100, 1000],
    partitions: 2,
    codecs: ['none'],
    out,
    systems: ['strait'],
    manyPartitions: 40,
    manyMbPerSec: 1,
    manyThreads: 2,
    durationSec: 2,
    warmupSec: 1,
    log: (l) => t.comment(l),
  });
  t.equal(results.length, 1, 'one table');
  const table = results[0]!;
  t.equal(table.partitions, 40, 'its topic has --many-partitions partitions, not --partitions');
  t.equal(table.recordSize, 1000, 'records of the largest --record-size');
  const r = table.results.find((x) => x.system === 'strait');
  t.equal(r?.note, undefined, `no failure note (${r?.note})`);
  // 1 MB/s of 1000 B records: 1000 records/s for 2 s
  t.equal(r?.records, 2000, 'every one of the 2000 measured records arrived');
  t.equal(r?.partitionsRead, 40, 'each of the 40 partitions delivered measured records');
  t.ok(r!.p99Ms! <= r!.maxMs!, `p99 ${r?.p99Ms} <= max ${r?.maxMs}`);
  t.ok((r?.maxLagRecords ?? -1) >= 0, `the partition furthest behind was sampled (${r?.maxLagRecords} records)`);
  // a worker holds a consumer and a producer with sockets to the brokers, and node's own descriptors besides
  t.ok((r?.peakFds ?? 0) > 10, `strait's open file descriptors counted (${r?.peakFds})`);
  t.ok((r?.cpuCores ?? 0) > 0 && (r?.cpuSecondsPerGB ?? 0) > 0, `strait's CPU over the window measured (${r?.cpuCores} cores, ${r?.cpuSecondsPerGB} s/GB)`);
  t.match(readFileSync(join(out, 'results.md'), 'utf8'), /\| strait \| \d+ \| \d+ \| \d+ \| .* \| 40\/40 \|/, 'results.md has the row, 40/40 delivered');
});

t.test('bench wan smoke run: the delay proxy is in the path, each system gets its window, every system replicates the backlog', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'strait-bench-'));
  // its own local clusters: the source's WAN listener must be advertised through the proxy port
  const results = await runBench({
    scenarios: ['throughput', 'wan'],
    records: 3000,
    recordSizes: [200],
    partitions: 2,
    codecs: ['none'],
    out,
    clusterDir: join(out, 'clusters'),
    systems: ['strait', 'mm2-default'],
    minWindowSec: 0,
    rttMs: [100],
    brokerWarmupSec: 2,
    log: (l) => t.comment(l),
  });
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { brokerWarmup?: { seconds: number; recordsPerCluster: number[] } };
  const warm = json.brokerWarmup;
  t.equal(warm?.seconds, 2, 'the fresh clusters were warmed up for the 2 s asked');
  t.equal(warm?.recordsPerCluster.length, 2, 'both clusters were warmed up');
  t.ok(
    warm?.recordsPerCluster.every((n) => n > 0),
    `scratch records were written to each (${warm?.recordsPerCluster.join(', ')})`,
  );
  t.match(readFileSync(join(out, 'results.md'), 'utf8'), /brokers warmed up 2 s first/, 'results.md says the brokers were warmed up');
  const wan = results.find((s) => s.scenario.startsWith('wan'));
  t.ok(wan, 'wan scenario ran');
  for (const name of ['strait', 'strait-wan', 'mm2-default']) {
    const s = wan?.results.find((x) => x.system === name);
    t.equal(s?.note, undefined, `${name}: no failure note`);
    t.equal(s?.records, 3000, `${name}: replicated exactly the preloaded records`);
    t.ok((s?.recordsPerSec ?? 0) > 0, `${name}: positive rate`);
  }
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  t.match(md, /### wan \(\+100 ms round trip to the source\)/);
  // each system's connections through the proxy had the TCP window its consumer of the source asks for
  const windowOf = (name: string) => wan?.results.find((x) => x.system === name)?.windowBytes;
  t.equal(windowOf('mm2-default'), 65536, "mm2-default: a 64 KiB window, the Java consumer's default receive.buffer.bytes");
  // the wan profile leaves the socket buffers to the kernel's autotuning, like the default profile
  t.ok((windowOf('strait') ?? 0) > 0, `strait: the kernel's autotuning cap (${windowOf('strait')} B), librdkafka asks for no buffer`);
  t.equal(windowOf('strait-wan'), windowOf('strait'), 'strait-wan: the same autotuned window (the wan profile sets no socket buffer)');
  t.ok((windowOf('strait') ?? 0) > (windowOf('mm2-default') ?? Infinity), "strait's window is larger than mm2-default's");
  t.match(md, /^\| mm2-default \|.*\| 64 \| +\|$/m, 'the wan table shows the window in KiB');
});

t.test('bench rest smoke run: autocannon against a real controller answers every endpoint without errors', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'strait-bench-'));
  const results = await runBench({
    scenarios: ['rest'],
    records: 1,
    recordSizes: [100],
    partitions: 1,
    codecs: ['none'],
    out,
    clusterDir: join(out, 'clusters'),
    systems: ['strait'],
    durationSec: 2,
    log: (l) => t.comment(l),
  });
  const rest = results.find((s) => s.scenario === 'rest');
  t.equal(rest?.results.length, 3, 'three endpoints measured');
  for (const r of rest?.results ?? []) {
    t.ok((r.requestsPerSec ?? 0) > 0, `${r.system}: ${r.requestsPerSec} req/s`);
    t.equal(r.errors, 0, `${r.system}: no errors`);
    t.ok((r.p99Ms ?? -1) >= (r.p50Ms ?? 0), `${r.system}: p99 >= p50`);
  }
  t.match(readFileSync(join(out, 'results.md'), 'utf8'), /\| strait controller GET \/v1\/status \| \d+ \|/);
});

t.test('bench failover smoke run: strait switches a group with no duplicates; neither system loses a record', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'strait-bench-'));
  const started = Date.now();
  const results = await runBench({
    scenarios: ['failover'],
    source: bootstrap('a'),
    target: bootstrap('b'),
    records: 1,
    failoverRecords: 4000,
    recordSizes: [100],
    partitions: 4,
    codecs: ['none'],
    out,
    systems: ['strait', 'mm2-default'],
    log: (l) => t.comment(l),
  });
  t.comment(`failover smoke run: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const fo = results.find((s) => s.scenario === 'failover');
  t.equal(fo?.results.length, 2, 'strait and mm2-default ran');
  for (const name of ['strait', 'mm2-default']) {
    const r = fo?.results.find((x) => x.system === name);
    t.equal(r?.note, undefined, `${name}: no failure note`);
    t.equal(r?.records, 4000);
    // 40% of each partition's 1000 records
    t.equal(r?.readBeforeSwitch, 1600, `${name}: the group read 40% on the source`);
    t.equal(r?.missing, 0, `${name}: no record missing`);
    t.equal((r?.readBeforeSwitch ?? 0) + (r?.readAfterSwitch ?? 0) - (r?.duplicates ?? 0), 4000, `${name}: every record read, duplicates aside`);
    t.ok((r?.offsetsReadySec ?? -1) >= 0, `${name}: offsets ready after ${r?.offsetsReadySec} s`);
  }
  const strait = fo?.results.find((x) => x.system === 'strait');
  t.equal(strait?.duplicates, 0, 'strait: no record read twice');
  t.equal(strait?.readAfterSwitch, 2400, 'strait: the group read exactly the other 60% on the target');
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  t.match(md, /\| strait \| 4000 \| 1600 \| 2400 \| 0 \| 0\.00% \| 0 \|/);
  t.match(md, /\| mm2-default \| 4000 \| 1600 \| \d+ \| \d+ \| [\d.]+% \| 0 \|/);
  t.match(md, /sync\.group\.offsets\.enabled=true/);
});
