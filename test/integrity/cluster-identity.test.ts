/**
 * Offsets belong to the clusters they were committed on. A route replicates a→b; then its target alias is pointed
 * at another cluster (c) while strait is stopped. On restart strait must not resume at b's offsets into c (c would
 * never get the history): the route is held with STRAIT_CLUSTER_CHANGED naming both cluster ids, nothing is written
 * to c, and `strait offsets reset` is the explicit way on — after which c receives every record from the start.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import { bootstrap, createTopic, endOffsets, produce, readAll, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';
import { loadNative } from '../../native';

t.teardown(stopAll);

const records = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ partition: i % 2, key: Buffer.from(`k${from + i}`), value: Buffer.from(`v${from + i}`) }));

async function end(alias: string, topic: string): Promise<number> {
  try {
    return (await endOffsets(bootstrap(alias), topic, 2)).reduce((a, b) => a + b, 0);
  } catch {
    return -1; // no such topic (yet)
  }
}

async function clusterId(alias: string): Promise<string> {
  const admin = new (loadNative().Admin)({ 'bootstrap.servers': bootstrap(alias) });
  try {
    return await admin.clusterId(10_000);
  } finally {
    admin.close();
  }
}

const cli = (...args: string[]) => spawnSync(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), ...args], { encoding: 'utf8' });

t.test('a target alias pointed at another cluster: held with STRAIT_CLUSTER_CHANGED until `strait offsets reset`, then the history is copied', async (t) => {
  const topic = uniqueName('ident');
  await createTopic(bootstrap('a'), topic, 2);
  await produce(bootstrap('a'), topic, records(0, 200));
  const route = { name: 'ident', source: 'a', target: 'b', topics: { include: [topic] } };
  const first = writeConfig({
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('b') } },
    routes: [route],
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  const store = { type: 'embedded', path: join(dirname(first), 'store') };
  const run1 = new StraitProcess(first);
  await waitFor('200 records on b', async () => (await end('b', `a.${topic}`)) === 200, 90_000, 500);
  t.equal(await run1.stop(), 0, 'first run stopped cleanly');
  await produce(bootstrap('a'), topic, records(200, 100));

  // the same deployment and store, with alias 'b' now pointing at cluster c
  const moved = writeConfig({
    clusters: { a: { bootstrap: bootstrap('a') }, b: { bootstrap: bootstrap('c') } },
    routes: [route],
    store,
    controller: { refreshTopicsIntervalMs: 1000 },
  });
  const [idB, idC] = await Promise.all([clusterId('b'), clusterId('c')]);
  t.not(idB, idC, 'the test clusters have distinct ids');
  const run2 = new StraitProcess(moved);
  type Status = { controller: { problems: { route: string; code: string; message: string }[] } };
  let problem: Status['controller']['problems'][number] | undefined;
  await waitFor(
    'the route held with STRAIT_CLUSTER_CHANGED',
    async () => {
      problem = (await run2.json<Status>('/v1/status')).controller.problems.find((p) => p.code === 'STRAIT_CLUSTER_CHANGED');
      return problem !== undefined;
    },
    60_000,
    500,
  );
  t.match(problem, { route: 'ident', code: 'STRAIT_CLUSTER_CHANGED' });
  t.match(problem!.message, idB, 'the message names the id the offsets were committed with');
  t.match(problem!.message, idC, 'and the id the target has now');
  t.match(problem!.message, /strait offsets reset ident --config/, 'and the explicit way on');
  const errorLines = run2.output.split('\n').filter((l) => l.includes('"level":50') && l.includes('STRAIT_CLUSTER_CHANGED'));
  t.ok(errorLines.length >= 1, 'logged at error level');
  t.match(await run2.metrics(), /strait_topic_error\{route="ident",topic="\*",code="STRAIT_CLUSTER_CHANGED"\} 1\n/, 'strait_topic_error carries the code');
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(await end('c', `a.${topic}`), -1, 'nothing was written to c: not even its target topic was created');
  t.equal(await end('b', `a.${topic}`), 200, 'and nothing more to b');

  // the reset refuses while strait run holds the store
  const busy = cli('offsets', 'reset', 'ident', '--config', moved);
  t.not(busy.status, 0, 'reset refused while strait run holds the embedded store');
  t.match(busy.stderr, new RegExp(`in use by another strait process \\(pid ${run2.child.pid}`));
  t.equal(await run2.stop(), 0, 'the held run stopped cleanly');

  const typo = cli('offsets', 'reset', 'idnet', '--config', moved);
  t.not(typo.status, 0);
  t.match(typo.stderr, /no route 'idnet' and no offsets stored for one \(did you mean 'ident'\?\)/);
  const reset = cli('offsets', 'reset', 'ident', '--config', moved);
  t.equal(reset.status, 0, reset.stderr);
  t.match(reset.stdout, new RegExp(`forgot the committed offsets of 2 partitions and its cluster ids \\(source [^,]+, target ${idB}\\)`));

  const run3 = new StraitProcess(moved);
  await waitFor('all 300 records on c', async () => (await end('c', `a.${topic}`)) === 300, 90_000, 500);
  const values = new Set((await readAll(bootstrap('c'), `a.${topic}`, 2, 300)).map((r) => r.value!.toString()));
  t.equal(values.size, 300, 'c holds every record from the first one on, once');
  t.same((await run3.json<Status>('/v1/status')).controller.problems, [], 'no problem after the reset');
  t.equal(await run3.stop(), 0);
});
