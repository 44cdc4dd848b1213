/**
 * What the exactly-once tests share: numbered records spread round robin over a topic's partitions, a partition's
 * values in offset order, a route's committed offsets as `strait run`'s embedded store holds them (it follows the
 * target's committed transactions), and the verdict of an independent read_committed reader: 0 duplicates, 0 missing,
 * source order per partition.
 */
import { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { unpack } from 'msgpackr';
import { produce, type ReadRecord } from './kafka';

/** Records `from`..`from+n-1` over `partitions` partitions, round robin; values differ in length. */
export function numberedRecords(partitions: number, from: number, n: number) {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { partition: i % partitions, key: Buffer.from(`k${i}`), value: Buffer.from(`value-${i}-${'x'.repeat(i % 40)}`) };
  });
}

/**
 * A steady producer of numberedRecords: `batch` records every `everyMs` until `total`. `produced()` tells how many so
 * far; `done` resolves after the last batch.
 */
export function steadyProducer(brokers: string, topic: string, partitions: number, total: number, batch: number, everyMs: number) {
  let produced = 0;
  const done = (async () => {
    for (let i = 0; i < total; i += batch) {
      await produce(brokers, topic, numberedRecords(partitions, i, Math.min(batch, total - i)));
      produced = Math.min(total, i + batch);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return { done, produced: () => produced };
}

/** The values of partition `p` in offset order. */
export const byPartition = (rs: ReadRecord[], p: number) =>
  rs
    .filter((r) => r.partition === p)
    .sort((x, y) => x.offset - y.offset)
    .map((r) => r.value!.toString());

/** The committed offset of each partition of `topic` in route `route`, read from the store of `strait run -c config` (0s until there is one). */
export function storedOffsets(config: string, route: string, topic: string, partitions: number): number[] {
  try {
    const store = unpack(readFileSync(join(dirname(config), 'store', 'store.msgpack'))) as { offsets: Record<string, Record<string, { offset: number }>> };
    const offsets = store.offsets[route] ?? {};
    return Array.from({ length: partitions }, (_, p) => offsets[`${topic}/${p}`]?.offset ?? 0);
  } catch {
    return Array.from({ length: partitions }, () => 0);
  }
}

/** Per partition: the read_committed target holds every source record once, in source order. */
export function exactlyOnce(t: Test, source: ReadRecord[], committed: ReadRecord[], partitions: number): void {
  for (let p = 0; p < partitions; p++) {
    const src = byPartition(source, p);
    const dst = byPartition(committed, p);
    const seen = new Set(dst);
    t.equal(dst.length - seen.size, 0, `partition ${p}: 0 duplicates`);
    t.equal(src.filter((v) => !seen.has(v)).length, 0, `partition ${p}: 0 missing`);
    t.same(dst, src, `partition ${p}: the target holds the source's records in source order`);
  }
}
