/**
 * The bench's method without clusters: rotated order, medians and spreads of repetitions, the backlog that fills a
 * window, the latency scenario's rates, and how the tables and the run's provenance render.
 */
import t from 'tap';
import { aggregate, backlogFor, BACKLOG_HEADROOM, failedRow, median, rateAt, rotate } from '../bench/repetitions';
import { markdown } from '../bench/report';
import type { ScenarioResult, SystemResult } from '../bench/results';
import { gitCommit } from '../bench/run-info';
import { CEILING, CEILING_CONSUMER, CEILING_PRODUCER } from '../bench/scenarios/ceiling';
import { latency, loadHeading, loadRate } from '../bench/scenarios/latency';
import { throughputTable } from '../bench/scenarios/throughput';

const row = (system: string, recordsPerSec: number, extra: Partial<SystemResult> = {}): SystemResult => ({
  system,
  records: 1_000_000,
  seconds: Number((1_000_000 / recordsPerSec).toFixed(2)),
  recordsPerSec,
  mbPerSec: Number(((recordsPerSec * 1024) / 1e6).toFixed(1)),
  cpuSecondsPerGB: 3,
  peakRssMB: 300,
  ...extra,
});

t.test('rotate: every system leads once in n repetitions, the order otherwise kept', async (t) => {
  const systems = ['strait', 'strait-lan', 'js-baseline', 'mm2-default', 'mm2-tuned'];
  t.same(rotate(systems, 0), systems);
  t.same(rotate(systems, 1), ['strait-lan', 'js-baseline', 'mm2-default', 'mm2-tuned', 'strait']);
  t.same(rotate(systems, 5), systems, 'wraps around');
  const leaders = [0, 1, 2, 3, 4].map((rep) => rotate(systems, rep)[0]);
  t.same([...leaders].sort(), [...systems].sort(), 'each system first once');
  const lasts = [0, 1, 2, 3, 4].map((rep) => rotate(systems, rep).at(-1));
  t.same([...lasts].sort(), [...systems].sort(), 'each system last once');
  t.same(rotate([], 3), []);
  t.same(rotate(['a'], 7), ['a']);
});

t.test('median: odd, even, unsorted, none', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([7]), 7);
  t.equal(median([]), undefined);
  t.equal(median([100, 1, 50]), 50, 'not the mean');
});

t.test('aggregate: medians of the successful repetitions, spread, counts, the runs kept', async (t) => {
  const runs = [
    row('strait', 120_000, { cpuSecondsPerGB: 3.4, peakRssMB: 310 }),
    row('strait', 90_000, { cpuSecondsPerGB: 3.9, peakRssMB: 330 }),
    row('strait', 150_000, { cpuSecondsPerGB: 3.1, peakRssMB: 300 }),
  ];
  const a = aggregate('strait', runs);
  t.equal(a.recordsPerSec, 120_000, 'median records/s');
  t.same(a.recordsPerSecRange, [90_000, 150_000]);
  t.equal(a.cpuSecondsPerGB, 3.4, 'median CPU, not from the same run by accident');
  t.equal(a.peakRssMB, 310);
  t.equal(a.seconds, 8.33, 'median window');
  t.equal(a.runs, 3);
  t.equal(a.failedRuns, 0);
  t.equal(a.note, undefined);
  t.equal(a.repetitions?.length, 3, 'each repetition kept, in order');
  t.equal(a.repetitions?.[1]?.recordsPerSec, 90_000);

  const withFailure = aggregate('mm2-default', [row('mm2-default', 30_000), failedRow('mm2-default', 'exited early'), row('mm2-default', 34_000)]);
  t.equal(withFailure.recordsPerSec, 32_000, 'median of the two that ran');
  t.equal(withFailure.runs, 2);
  t.equal(withFailure.failedRuns, 1);
  t.match(withFailure.note, /1 of 3 repetitions failed; exited early/);

  const allFailed = aggregate('js-baseline', [failedRow('js-baseline', 'a'), failedRow('js-baseline', 'b')]);
  t.equal(allFailed.recordsPerSec, 0);
  t.equal(allFailed.runs, 0);
  t.equal(allFailed.failedRuns, 2);
  t.equal(allFailed.note, 'a', 'the first failure says why');

  const lat = aggregate('strait', [
    row('strait', 5000, { p50Ms: 10, p99Ms: 40, p999Ms: 90 }),
    row('strait', 5000, { p50Ms: 12, p99Ms: 20, p999Ms: 60 }),
    row('strait', 5000, { p50Ms: 11, p99Ms: 30, p999Ms: 70 }),
  ]);
  t.equal(lat.p99Ms, 30);
  t.same(lat.p99MsRange, [20, 40]);
  t.equal(lat.p50Ms, 11);
});

t.test('backlogFor: a window shorter than the minimum grows the backlog from the measured rate, with headroom', async (t) => {
  t.equal(backlogFor(200_000, 100_000, 20), Math.ceil(100_000 * 20 * BACKLOG_HEADROOM * 2), '2 s at 100k/s -> 20 s worth, double headroom');
  t.equal(backlogFor(1_500_000, 100_000, 20), Math.ceil(100_000 * 20 * BACKLOG_HEADROOM), '15 s at 100k/s -> 20 s worth and headroom');
  t.equal(backlogFor(3_000_000, 100_000, 20), 3_000_000, 'already 30 s: unchanged');
  t.equal(backlogFor(2_000_000, 100_000, 20), 2_000_000, 'exactly the window: unchanged');
  t.equal(backlogFor(200_000, 0, 20), 200_000, 'no rate (a failure): unchanged');
  t.equal(backlogFor(200_000, 100_000, 0), 200_000, 'no minimum: unchanged');
  t.ok(backlogFor(5000, 1_600_000, 20) / 1_600_000 >= 20, 'a sub-second backlog of fast small records is grown past the window');
  t.equal(backlogFor(1_000_000, 55_000, 20), 1_500_000, 'at least half as much again: 18.2 s at 55k/s, 20 s with headroom would be 1.375M');
  t.equal(backlogFor(5000, 20_000, 1), 25_000, '0.25 s of 1 s, a quarter: single headroom');
  t.equal(backlogFor(4000, 20_000, 1), Math.ceil(20_000 * BACKLOG_HEADROOM * 2), '0.2 s of 1 s: under a quarter, double headroom');
  t.equal(backlogFor(1_000_000, 131_000, 20), Math.ceil(131_000 * 20 * BACKLOG_HEADROOM), '7.6 s of 20 s: the measured rate holds, single headroom');
});

t.test('latency rates: fixed for everyone, else a share of each system’s own throughput', async (t) => {
  t.equal(rateAt(0.5, 117_409), 58_705);
  t.equal(rateAt(0.9, 110_840), 99_756);
  t.equal(rateAt(0.5, 1), 1, 'never zero');
  const tp: ScenarioResult = {
    scenario: 'throughput',
    recordSize: 1024,
    codec: 'none',
    partitions: 16,
    records: 1e6,
    results: [row('strait', 100_000), row('mm2-tuned', 60_000), failedRow('js-baseline', 'exited')],
  };
  t.equal(loadRate({ fixed: 5000 }, 'mm2-tuned', tp), 5000);
  t.equal(loadRate({ share: 0.9 }, 'strait', tp), 90_000);
  t.equal(loadRate({ share: 0.5 }, 'mm2-tuned', tp), 30_000);
  t.match(loadRate({ share: 0.5 }, 'js-baseline', tp), /no throughput result for js-baseline/, 'a failed system gets no rate');
  t.match(loadRate({ share: 0.9 }, 'strait', undefined), /no throughput result/);
  t.equal(loadHeading({ share: 0.9 }, 20, 5), "latency at 90% of each system's throughput for 20 s (after 5 s warm-up)");
  t.equal(loadHeading({ fixed: 5000 }, 20, 5), 'latency at 5000 records/s for 20 s (after 5 s warm-up)');
});

t.test('tables: medians with min–max, windows, each system as a fraction of the concurrent ceiling', async (t) => {
  const tp: ScenarioResult = {
    scenario: 'throughput',
    recordSize: 1024,
    codec: 'none',
    partitions: 16,
    records: 3_000_000,
    results: [
      aggregate('strait', [row('strait', 100_000), row('strait', 110_000), row('strait', 90_000)]),
      aggregate('mm2-tuned', [row('mm2-tuned', 50_000), failedRow('mm2-tuned', 'boom'), row('mm2-tuned', 70_000)]),
      aggregate(CEILING_PRODUCER, [row(CEILING_PRODUCER, 210_000)]),
      aggregate(CEILING_CONSUMER, [row(CEILING_CONSUMER, 200_000)]),
      aggregate(CEILING, [row(CEILING, 200_000)]),
    ],
  };
  const md = throughputTable.markdown(tp).join('\n');
  t.match(md, /\| system \| records\/s \(median\) \| min–max \| window s \| records \|.*\| runs \| of ceiling \| note \|/);
  t.match(md, /\| strait \| 100000 \| 90000–110000 \| 10 \| 1000000 \| 102\.4 \| 3 \| 300 \| 3 \| 0\.50 \| {2}\|/);
  t.match(md, /\| mm2-tuned \| 60000 \| 50000–70000 \| [\d.]+ \|.*\| 2\/3 \| 0\.30 \| 1 of 3 repetitions failed; boom \|/);
  t.match(md, /\| ceiling: both at once \(the lower\) \| 200000 \| - \|.*\| 1 \| - \|/, 'no fraction for the ceiling itself, no spread for one run');
  t.match(md, /strait \/ MirrorMaker 2 tuned: 1\.67x; .*strait \/ concurrent ceiling: 0\.50x/);

  const lat: ScenarioResult = {
    scenario: loadHeading({ share: 0.9 }, 20, 5),
    recordSize: 1024,
    codec: 'none',
    partitions: 16,
    records: 1_800_000,
    results: [
      aggregate('strait', [
        row('strait', 90_000, { p50Ms: 9, p99Ms: 25, p999Ms: 60, achievedRate: 89_500 }),
        row('strait', 90_000, { p50Ms: 8, p99Ms: 35, p999Ms: 70, achievedRate: 89_900 }),
      ]),
      aggregate('js-baseline', [failedRow('js-baseline', 'no throughput result for js-baseline in this run to take 90% of')]),
    ],
  };
  const lmd = latency.table!.markdown(lat).join('\n');
  t.match(lmd, /### latency at 90% of each system's throughput for 20 s/);
  t.match(lmd, /\| strait \| 90000 \| 89700 \| 9 \| 30 \| 25–35 \| 65 \| 2 \| 300 \| {2}\|/);
  t.match(lmd, /\| js-baseline \| - \| - \| - \| - \| - \| - \| 0\/1 \| - \| no throughput result/);
});

t.test('results.md opens with the commit, machine, Kafka version, load and method', async (t) => {
  const md = markdown(
    {
      scenarios: ['throughput', 'ceiling', 'latency'],
      records: 200_000,
      recordSizes: [1024],
      partitions: 16,
      codecs: ['none'],
      out: 'x',
      systems: ['strait', 'mm2-tuned'],
      repeat: 3,
      minWindowSec: 20,
      log: () => {},
    },
    [],
    {
      at: '2026-12-01T03:00:00.000Z',
      commit: 'abc123def456',
      machine: { cpu: 'AMD EPYC Test', cores: 2, memGiB: 24 },
      kafkaVersion: '4.3.1',
      loadBefore: [3.1, 4, 5.5],
      loadAfter: [6, 5, 5.2],
      repeat: 3,
      minWindowSec: 20,
    },
    'local clusters',
  );
  t.match(md, /Commit: abc123def456; at 2026-12-01T03:00:00\.000Z; Kafka 4\.3\.1 \(local clusters\)/);
  t.match(md, /2 cores \(AMD EPYC Test\), 24 GiB RAM; load average \(1\/5\/15 min\) 3\.1 \/ 4 \/ 5\.5 before, 6 \/ 5 \/ 5\.2 after/);
  t.match(md, /3 repetitions, systems in rotated order/);
  t.match(md, /--repeat 3 --min-window 20 --rate 5000 --duration 20 --warmup 5/);
});

t.test('gitCommit names this checkout', async (t) => {
  t.match(gitCommit(), /^([0-9a-f]{12}(-dirty)?|unknown)$/);
});
