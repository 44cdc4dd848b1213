/**
 * Compression: the target's record batches carry the codec the route asks for (`compression: none|gzip|snappy|lz4|
 * zstd`) or, with `compression: source`, the source topic's compression.type — read from the target's log segments
 * with Kafka's own kafka.tools.DumpLogSegments.
 */
import t from 'tap';
import { join } from 'node:path';
import { runKafkaClass, toolClass } from '../../bench/harness/kafka-runtime';
import { runtimeOf } from '../../bench/harness/local-cluster';
import { bootstrap, createTopic, endOffsets, produce, testClusters, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

t.teardown(stopAll);

function batchCodecs(targetTopic: string): string[] {
  const state = testClusters();
  const file = join(state.clusters.b!.dir, 'data', `${targetTopic}-0`, '00000000000000000000.log');
  const r = runKafkaClass(runtimeOf(state), toolClass(runtimeOf(state), 'DumpLogSegments'), ['--files', file]);
  return [...r.stdout.matchAll(/compresscodec: (\w+)/g)].map((m) => m[1]!.toLowerCase());
}

t.test('target batches carry the configured codec', async (t) => {
  const a = bootstrap('a');
  const b = bootstrap('b');
  const base = uniqueName('codec');
  const records = Array.from({ length: 500 }, (_, i) => ({ partition: 0, key: Buffer.from(`k${i}`), value: Buffer.alloc(200, i % 7) }));
  for (const c of CODECS) {
    await createTopic(a, `${base}.${c}`, 1); // compression.type=producer (Kafka's default)
    await produce(a, `${base}.${c}`, records);
  }
  await createTopic(a, `${base}.src-zstd`, 1, { 'compression.type': 'zstd' });
  await produce(a, `${base}.src-zstd`, records);
  const routes = CODECS.map((c) => ({ name: `codec-${c}`, source: 'a', target: 'b', compression: c, topics: { include: [`${base}\\.${c}`] } }));
  routes.push({ name: 'codec-source', source: 'a', target: 'b', compression: 'source' as never, topics: { include: [`${base}\\.src-zstd`] } });
  const strait = new StraitProcess(writeConfig({ clusters: { a: { bootstrap: a }, b: { bootstrap: b } }, routes, worker: { threads: 2 } }));
  const targets = [...CODECS.map((c) => `a.${base}.${c}`), `a.${base}.src-zstd`];
  await waitFor(
    'all codec topics replicated',
    async () => {
      for (const topic of targets) {
        try {
          if ((await endOffsets(b, topic, 1))[0]! < records.length) return false;
        } catch {
          return false;
        }
      }
      return true;
    },
    90_000,
    500,
  );
  for (const c of CODECS) {
    const codecs = batchCodecs(`a.${base}.${c}`);
    t.ok(codecs.length > 0, `${c}: batches found`);
    t.same([...new Set(codecs)], [c], `${c}: every target batch is ${c}`);
  }
  t.same([...new Set(batchCodecs(`a.${base}.src-zstd`))], ['zstd'], 'compression: source follows the source topic (zstd)');
  await strait.stop();
});
