/**
 * Across Kafka versions: the shared test clusters run the harness's default Kafka (4.x); this file starts one cluster
 * of the other supported line (3.9.x, or 4.x when the shared clusters run 3.x; STRAIT_CROSS_KAFKA_VERSION overrides)
 * and proves strait between the two: an active-active prefix pair replicating both ways byte for byte, and a consumer
 * group moved from one version's cluster to the other's with `strait failover`, exactly (no record lost or re-read).
 */
import t from 'tap';
import { join } from 'node:path';
import * as dev from '../../bench/harness/local-cluster';
import { majorOf, projectRoot } from '../../bench/harness/kafka-runtime';
import { checkExactlyRest, cli, consumeAndCommit } from '../helpers/groups';
import { bootstrap, createTopic, produce, readAll, sameRecord, testClusters, totalRecords, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

const P = 3;
const N = 2000;
const shared = testClusters().kafkaVersion;
const other = process.env.STRAIT_CROSS_KAFKA_VERSION ?? (majorOf(shared) >= 4 ? '3.9.1' : '4.3.1');
const dir = join(projectRoot(), '.strait', 'test-cross');
const a = bootstrap('a');
let x = '';

t.before(async () => {
  await dev.down({ dir });
  const state = await dev.up({ clusters: 1, kafkaVersion: other, dir, heap: '384m' });
  x = state.clusters.a!.bootstrap;
});
t.teardown(async () => {
  await stopAll();
  await dev.down({ dir });
});

function records(topic: string, n: number) {
  return Array.from({ length: n }, (_, k) => ({
    partition: k % P,
    key: k % 7 === 0 ? null : Buffer.from(`k${k % 97}`),
    value: Buffer.from(`${topic}#${k}`),
    headers: [{ key: 'h', value: Buffer.from(`v${k}`) }],
  }));
}

t.test(`active-active prefix pair between Kafka ${shared} ('a') and Kafka ${other} ('x'): both directions, byte for byte`, async (t) => {
  t.not(shared, other, 'the two clusters run different Kafka versions');
  const onA = uniqueName('xv-a');
  const onX = uniqueName('xv-x');
  await createTopic(a, onA, P);
  await createTopic(x, onX, P);
  const cfg = writeConfig({
    clusters: { a: { bootstrap: a }, x: { bootstrap: x } },
    routes: [
      { name: 'a-to-x', source: 'a', target: 'x', topics: { include: [onA] } },
      { name: 'x-to-a', source: 'x', target: 'a', topics: { include: [onX] } },
    ],
    worker: { threads: 1, commitIntervalMs: 200 },
    controller: { refreshTopicsIntervalMs: 500 },
  });
  const strait = new StraitProcess(cfg);
  await produce(a, onA, records(onA, N));
  await produce(x, onX, records(onX, N));
  await waitFor(`${N} records in a.${onA} on Kafka ${other}`, async () => (await totalRecords(x, `a.${onA}`, P)) >= N, 120_000, 500);
  await waitFor(`${N} records in x.${onX} on Kafka ${shared}`, async () => (await totalRecords(a, `x.${onX}`, P)) >= N, 120_000, 500);
  for (const [from, topic, to, copy] of [
    [a, onA, x, `a.${onA}`],
    [x, onX, a, `x.${onX}`],
  ] as const) {
    const src = await readAll(from, topic, P, N);
    const dst = await readAll(to, copy, P, N);
    t.equal(dst.length, N, `${copy}: ${N} records, none lost or doubled`);
    // one partition each side, same order: the copy's n-th record of a partition is the source's n-th
    const perPartition = (rs: typeof src) => Array.from({ length: P }, (_, p) => rs.filter((r) => r.partition === p).sort((l, r) => l.offset - r.offset));
    const s = perPartition(src);
    const d = perPartition(dst);
    let same = 0;
    for (let p = 0; p < P; p++) d[p]!.forEach((r, i) => (s[p]![i] && sameRecord(s[p]![i]!, r) ? same++ : undefined));
    t.equal(same, N, `${copy}: every record identical (key, value, headers, timestamp) and in source order`);
  }
  t.equal(await strait.stop(), 0, 'strait run stopped cleanly');
});

t.test(`failover of a consumer group from Kafka ${shared} to Kafka ${other}: exact`, async (t) => {
  const topic = uniqueName('xv-fo');
  const group = uniqueName('xv-g');
  await createTopic(a, topic, P);
  const all = records(topic, N);
  await produce(a, topic, all);
  const cfg = writeConfig({
    clusters: { a: { bootstrap: a }, x: { bootstrap: x } },
    routes: [{ name: 'fo', source: 'a', target: 'x', topics: { include: [topic] }, checkpointIntervalMs: 500 }],
    worker: { threads: 1, commitIntervalMs: 200 },
    controller: { refreshTopicsIntervalMs: 500 },
  });
  const strait = new StraitProcess(cfg);
  const first = await consumeAndCommit(a, group, [topic], 777);
  t.equal(first.length, 777);
  await waitFor(`${N} records in a.${topic}`, async () => (await totalRecords(x, `a.${topic}`, P)) >= N, 120_000, 500);
  const run = await cli(cfg, 'failover', group, 'a', 'x');
  t.equal(run.code, 0, run.stderr);
  t.ok(
    run.report?.rows.every((r) => r.kind === 'exact'),
    'every partition translated exactly',
  );
  const second = await consumeAndCommit(x, group, [`a.${topic}`], N - first.length);
  checkExactlyRest(
    t,
    all.map((r) => r.value.toString()),
    first,
    second,
    `Kafka ${shared} -> ${other}`,
  );
  await strait.stop();
});
