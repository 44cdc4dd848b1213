/**
 * Active-active without loops: clusters mirroring each other (a pair under both naming policies, a ring of three
 * under identity and under prefix with a custom separator), producers writing on every cluster at once. Every record
 * must end up exactly once on every cluster, in per-key order, with the provenance header only on replicated records
 * (identity) or with its headers untouched (prefix); nothing may come back (no echo, no ever-longer topic names).
 * Also: the hop limit stops a ring whose loop guard cannot see the origin, and the config check rejects ambiguity.
 */
import t from 'tap';
import Kafka from 'node-rdkafka';
import { bootstrap, createTopic, produce, readAll, totalRecords, uniqueName, type ReadRecord, type TestRecord } from '../helpers/kafka';
import { withClusterLock } from '../helpers/cluster-lock';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';
import { configProblems } from '../helpers/config';

t.teardown(stopAll);

const PARTITIONS = 2;
const KEYS = 20;
const PER_KEY = 50; // 1,000 records per producing cluster
const SLICES = 5;
const HEADER = 'strait.origin';

/** Keys `<origin>-k<j>` on partition j % PARTITIONS; values `<origin>-k<j>-<seq>`; every 4th key carries a user header. */
function slice(origin: string, s: number): TestRecord[] {
  const out: TestRecord[] = [];
  const per = PER_KEY / SLICES;
  for (let seq = s * per; seq < (s + 1) * per; seq++) {
    for (let j = 0; j < KEYS; j++) {
      const value = `${origin}-k${j}-${seq}`;
      out.push({
        partition: j % PARTITIONS,
        key: Buffer.from(`${origin}-k${j}`),
        value: Buffer.from(value),
        ...(j % 4 === 0 ? { headers: [{ key: 'trace', value: Buffer.from(`t-${value}`) }] } : {}),
      });
    }
  }
  return out;
}

/** Every cluster's producer writes its records in slices, all clusters at the same time, while strait runs. */
async function produceEverywhere(clusters: Record<string, string>, topic: string): Promise<void> {
  await Promise.all(
    Object.entries(clusters).map(async ([origin, brokers]) => {
      for (let s = 0; s < SLICES; s++) {
        await produce(brokers, topic, slice(origin, s));
        await new Promise((r) => setTimeout(r, 100));
      }
    }),
  );
}

async function topicNames(brokers: string, containing: string): Promise<string[]> {
  const p = new Kafka.Producer({ 'bootstrap.servers': brokers, log_level: 0 });
  await new Promise<void>((res, rej) => p.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  const md = await new Promise<Kafka.Metadata>((res, rej) => p.getMetadata({ timeout: 10_000 }, (e, m) => (e ? rej(e) : res(m))));
  await new Promise<void>((res) => p.disconnect(() => res()));
  return md.topics
    .map((x) => x.name)
    .filter((n) => n.includes(containing))
    .sort();
}

async function dropped(strait: StraitProcess): Promise<number> {
  const text = await strait.metrics();
  return [...text.matchAll(/^strait_records_dropped_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/**
 * Checks what one cluster holds: `topics` maps each topic to read to the origins whose records it should hold;
 * `header(origin)` is the provenance header value a record of that origin must carry there (undefined: none).
 */
async function verifyCluster(
  t: tap.Test,
  name: string,
  brokers: string,
  topics: Record<string, string[]>,
  header: (origin: string) => string | undefined,
): Promise<void> {
  for (const [topic, origins] of Object.entries(topics)) {
    const expected = origins.length * KEYS * PER_KEY;
    const got: ReadRecord[] = await readAll(brokers, topic, PARTITIONS, expected, 30_000);
    t.equal(got.length, expected, `${name}/${topic}: ${expected} records (${origins.join(', ')}), no echo`);
    const seen = new Set(got.map((r) => r.value!.toString()));
    t.equal(seen.size, got.length, `${name}/${topic}: every record exactly once`);
    // per key, in offset order within its partition: seq 0, 1, 2, ... (nothing lost, nothing doubled, order kept)
    const seqs = new Map<string, number[]>();
    let wrongPartition = 0;
    let badHeaders: string | undefined;
    for (const r of [...got].sort((x, y) => x.partition - y.partition || x.offset - y.offset)) {
      const value = r.value!.toString();
      const m = /^(.+)-k(\d+)-(\d+)$/.exec(value)!;
      const [origin, j, seq] = [m[1]!, Number(m[2]), Number(m[3])];
      if (r.partition !== j % PARTITIONS) wrongPartition++;
      const key = `${origin}-k${j}`;
      seqs.set(key, [...(seqs.get(key) ?? []), seq]);
      const want = [...(j % 4 === 0 ? [`trace=t-${value}`] : []), ...(header(origin) !== undefined ? [`${HEADER}=${header(origin)!}`] : [])];
      const have = r.headers.map((h) => `${h.key}=${h.value.toString()}`);
      if (badHeaders === undefined && have.join('|') !== want.join('|')) badHeaders = `${value}: [${have.join(', ')}], expected [${want.join(', ')}]`;
    }
    t.equal(wrongPartition, 0, `${name}/${topic}: every record in its source partition`);
    const inOrder = [...seqs.values()].every((s) => s.length === PER_KEY && s.every((v, i) => v === i));
    t.ok(inOrder && seqs.size === origins.length * KEYS, `${name}/${topic}: per-key sequence 0..${PER_KEY - 1} in order for ${origins.length * KEYS} keys`);
    t.equal(badHeaders, undefined, `${name}/${topic}: user headers kept; provenance header ${origins.map((o) => `${o}: ${header(o) ?? 'none'}`).join(', ')}`);
  }
}

/** Waits until the topic totals reach `want`, then a while longer, and checks that nothing more arrived (no echo). */
async function settle(t: tap.Test, totals: () => Promise<number[]>, want: number[], what: string): Promise<void> {
  await waitFor(what, async () => (await totals()).every((n, i) => n >= want[i]!), 120_000, 250);
  await new Promise((r) => setTimeout(r, 3000)); // a few topic refreshes and pump rounds for any echo to show
  t.same(await totals(), want, `${what}; still so 3 s later (nothing came back)`);
}

t.test('identity, two clusters mirroring each other: each record once per cluster, header only on copies', async (t) => {
  const clusters = { a: bootstrap('a'), b: bootstrap('b') };
  const topic = uniqueName('aa-identity');
  for (const brokers of Object.values(clusters)) await createTopic(brokers, topic, PARTITIONS);
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: clusters.a }, b: { bootstrap: clusters.b } },
      routes: [
        { name: 'a-to-b', source: 'a', target: 'b', topics: { include: [topic] }, naming: { policy: 'identity' } },
        { name: 'b-to-a', source: 'b', target: 'a', topics: { include: [topic] }, naming: { policy: 'identity' } },
      ],
      worker: { threads: 2, commitIntervalMs: 500 },
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  const started = Date.now();
  await produceEverywhere(clusters, topic);
  const all = 2 * KEYS * PER_KEY;
  await settle(
    t,
    async () => [await totalRecords(clusters.a, topic, PARTITIONS), await totalRecords(clusters.b, topic, PARTITIONS)],
    [all, all],
    `${all} records on each cluster`,
  );
  t.comment(`replicated both ways in ${Date.now() - started} ms`);
  await verifyCluster(t, 'a', clusters.a, { [topic]: ['a', 'b'] }, (o) => (o === 'a' ? undefined : 'b:1'));
  await verifyCluster(t, 'b', clusters.b, { [topic]: ['a', 'b'] }, (o) => (o === 'b' ? undefined : 'a:1'));
  await waitFor('dropped counter reported', async () => (await dropped(strait)) >= all, 15_000, 250);
  t.equal(await dropped(strait), all, 'each route dropped exactly the records that came from its target');
  t.equal(await strait.stop(), 0);
});

t.test('prefix, two clusters mirroring each other: a.T on b, b.T on a, never a.b.T or b.a.T', async (t) => {
  const clusters = { a: bootstrap('a'), b: bootstrap('b') };
  const topic = uniqueName('aa-prefix');
  for (const brokers of Object.values(clusters)) await createTopic(brokers, topic, PARTITIONS);
  // include patterns that also match the prefixed names: the policy, not the filter, must stop the echo
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: clusters.a }, b: { bootstrap: clusters.b } },
      routes: [
        { name: 'a-to-b', source: 'a', target: 'b', topics: { include: [`.*${topic}`] } },
        { name: 'b-to-a', source: 'b', target: 'a', topics: { include: [`.*${topic}`] } },
      ],
      worker: { threads: 2, commitIntervalMs: 500 },
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  await produceEverywhere(clusters, topic);
  const one = KEYS * PER_KEY;
  const sum = (brokers: string, name: string) => totalRecords(brokers, name, PARTITIONS);
  await settle(
    t,
    async () => [await sum(clusters.a, topic), await sum(clusters.a, `b.${topic}`), await sum(clusters.b, topic), await sum(clusters.b, `a.${topic}`)],
    [one, one, one, one],
    `${one} records in each of the four topics`,
  );
  t.same(await topicNames(clusters.a, topic), [`b.${topic}`, topic].sort(), `a holds ${topic} and b.${topic} only`);
  t.same(await topicNames(clusters.b, topic), [`a.${topic}`, topic].sort(), `b holds ${topic} and a.${topic} only`);
  // prefix copies are byte-faithful: no provenance header, the name says where a record came from
  await verifyCluster(t, 'a', clusters.a, { [topic]: ['a'], [`b.${topic}`]: ['b'] }, () => undefined);
  await verifyCluster(t, 'b', clusters.b, { [topic]: ['b'], [`a.${topic}`]: ['a'] }, () => undefined);
  t.equal(await dropped(strait), 0, 'nothing dropped: the prefix policy never reads a topic that came from the target');
  t.equal(await strait.stop(), 0);
});

t.test('identity, ring a -> b -> c -> a: every record once on every cluster, hop counts 1 and 2', (t) =>
  withClusterLock('c', async () => {
    const clusters = { a: bootstrap('a'), b: bootstrap('b'), c: bootstrap('c') };
    const topic = uniqueName('ring-identity');
    for (const brokers of Object.values(clusters)) await createTopic(brokers, topic, PARTITIONS);
    const route = (source: string, target: string) => ({
      name: `${source}-to-${target}`,
      source,
      target,
      topics: { include: [topic] },
      naming: { policy: 'identity' },
    });
    const strait = new StraitProcess(
      writeConfig({
        clusters: { a: { bootstrap: clusters.a }, b: { bootstrap: clusters.b }, c: { bootstrap: clusters.c } },
        routes: [route('a', 'b'), route('b', 'c'), route('c', 'a')],
        worker: { threads: 2, commitIntervalMs: 500 },
        controller: { refreshTopicsIntervalMs: 1000 },
      }),
    );
    await produceEverywhere(clusters, topic);
    const all = 3 * KEYS * PER_KEY;
    const totals = () => Promise.all(Object.values(clusters).map((b) => totalRecords(b, topic, PARTITIONS)));
    await settle(t, totals, [all, all, all], `${all} records on each of the three clusters`);
    // one hop from the previous cluster of the ring, two from the one before it
    const hops: Record<string, Record<string, string | undefined>> = {
      a: { a: undefined, c: 'c:1', b: 'b:2' },
      b: { b: undefined, a: 'a:1', c: 'c:2' },
      c: { c: undefined, b: 'b:1', a: 'a:2' },
    };
    for (const [name, brokers] of Object.entries(clusters)) await verifyCluster(t, name, brokers, { [topic]: ['a', 'b', 'c'] }, (o) => hops[name]![o]);
    await waitFor('dropped counter reported', async () => (await dropped(strait)) >= 3 * KEYS * PER_KEY, 15_000, 250);
    t.equal(await dropped(strait), 3 * KEYS * PER_KEY, 'each record was dropped once, by the route into its origin');
    t.equal(await strait.stop(), 0);
  }),
);

t.test('prefix with separator "--" and aliases containing "-", ring of three: every origin on every cluster, no deeper names', (t) =>
  withClusterLock('c', async () => {
    const clusters = { 'dc-a': bootstrap('a'), 'dc-b': bootstrap('b'), 'dc-c': bootstrap('c') };
    const topic = uniqueName('ring-prefix');
    for (const brokers of Object.values(clusters)) await createTopic(brokers, topic, PARTITIONS);
    const route = (source: string, target: string) => ({
      name: `${source}-to-${target}`,
      source,
      target,
      topics: { include: [`.*${topic}`] },
      naming: { separator: '--' },
    });
    const strait = new StraitProcess(
      writeConfig({
        clusters: Object.fromEntries(Object.entries(clusters).map(([alias, b]) => [alias, { bootstrap: b }])),
        routes: [route('dc-a', 'dc-b'), route('dc-b', 'dc-c'), route('dc-c', 'dc-a')],
        worker: { threads: 2, commitIntervalMs: 500 },
        controller: { refreshTopicsIntervalMs: 1000 },
      }),
    );
    await produceEverywhere(clusters, topic);
    // on X: its own topic, the previous cluster's one hop away, and the one before that two hops away
    const ring = ['dc-a', 'dc-b', 'dc-c'];
    const layout = Object.fromEntries(
      ring.map((x, i) => {
        const prev = ring[(i + 2) % 3]!;
        const prev2 = ring[(i + 1) % 3]!;
        return [x, { [topic]: [x], [`${prev}--${topic}`]: [prev], [`${prev}--${prev2}--${topic}`]: [prev2] }];
      }),
    ) as Record<string, Record<string, string[]>>;
    const one = KEYS * PER_KEY;
    const totals = async () => {
      const out: number[] = [];
      for (const x of ring) for (const name of Object.keys(layout[x]!)) out.push(await totalRecords(clusters[x as keyof typeof clusters], name, PARTITIONS));
      return out;
    };
    await settle(t, totals, Array<number>(9).fill(one), `${one} records in each of the nine topics`);
    for (const x of ring) {
      const brokers = clusters[x as keyof typeof clusters];
      t.same(await topicNames(brokers, topic), Object.keys(layout[x]!).sort(), `${x} holds exactly ${Object.keys(layout[x]!).join(', ')}`);
      await verifyCluster(t, x, brokers, layout[x]!, () => undefined);
    }
    t.equal(await strait.stop(), 0);
  }),
);

t.test('hop limit: a ring whose loop guard cannot see the origin (one cluster under two aliases) stops after 8 hops', (t) =>
  withClusterLock('c', async () => {
    const a = bootstrap('a');
    const b = bootstrap('b');
    const c = bootstrap('c');
    const topic = uniqueName('hops');
    for (const brokers of [a, b, c]) await createTopic(brokers, topic, 1);
    // cluster a is also 'a2': records from 'a' reach it as 'a2', so the origin check never fires and only the hop
    // count (limit 8) ends the circle: a -> b (1) -> c (2) -> a (3) -> b (4) -> c (5) -> a (6) -> b (7) -> c (8), dropped
    const route = (source: string, target: string) => ({
      name: `${source}-to-${target}`,
      source,
      target,
      topics: { include: [topic] },
      naming: { policy: 'identity' },
    });
    const strait = new StraitProcess(
      writeConfig({
        clusters: { a: { bootstrap: a }, a2: { bootstrap: a }, b: { bootstrap: b }, c: { bootstrap: c } },
        routes: [route('a', 'b'), route('b', 'c'), route('c', 'a2')],
        worker: { threads: 1, commitIntervalMs: 500 },
        controller: { refreshTopicsIntervalMs: 1000 },
      }),
    );
    const N = 100;
    await produce(
      a,
      topic,
      Array.from({ length: N }, (_, i) => ({ partition: 0, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) })),
    );
    const totals = () => Promise.all([a, b, c].map((x) => totalRecords(x, topic, 1)));
    await settle(t, totals, [3 * N, 3 * N, 3 * N], 'a: the original and hops 3, 6; b: hops 1, 4, 7; c: hops 2, 5, 8');
    const hopsOn = async (brokers: string) => {
      const rs = await readAll(brokers, topic, 1, 3 * N, 30_000);
      return [...new Set(rs.map((r) => r.headers.find((h) => h.key === HEADER)?.value.toString() ?? 'none'))].sort();
    };
    t.same(await hopsOn(a), ['a:3', 'a:6', 'none']);
    t.same(await hopsOn(b), ['a:1', 'a:4', 'a:7']);
    t.same(await hopsOn(c), ['a:2', 'a:5', 'a:8']);
    await waitFor('dropped counter reported', async () => (await dropped(strait)) >= N, 15_000, 250);
    t.equal(await dropped(strait), N, 'every record dropped once, at hop 8');
    t.equal(await strait.stop(), 0);
  }),
);

t.test('config check: ambiguous alias/separator setups and looping route setups are rejected, naming the field', async (t) => {
  const check = configProblems;
  const clusters = { 'dc-a': { bootstrap: '127.0.0.1:1' }, 'dc-b': { bootstrap: '127.0.0.1:2' }, 'dc-c': { bootstrap: '127.0.0.1:3' } };
  const ps = check({ clusters, routes: [{ name: 'ab', source: 'dc-a', target: 'dc-b', naming: { separator: '-' } }] });
  // 'dc-c' is in neither end of the route, but any alias may appear inside a prefixed name
  t.same(
    ps.map((p) => p.path),
    ['routes[0].naming.separator', 'routes[0].naming.separator', 'routes[0].naming.separator'],
  );
  t.match(ps[2]!.message, /'-' occurs in the cluster alias 'dc-c' \(clusters\.dc-c\)/);
  const mixed = check({
    clusters,
    routes: [
      { name: 'ab', source: 'dc-a', target: 'dc-b', naming: { separator: '--' } },
      { name: 'ba', source: 'dc-b', target: 'dc-a', naming: { separator: '_' } },
    ],
  });
  t.match(mixed.find((p) => p.path === 'routes[1].naming.separator')?.message, /'_' differs from routes\[0\]\.naming\.separator \('--'\)/);
});
