import t from 'tap';
import fc from 'fast-check';
import { PartitionRuns, targetEndBefore, type Run } from '../shared/offset-map/runs';

/** Builds runs exactly the way the forwarder does: extend while the next source offset keeps the delta, else open a new run. */
function runsOf(pairs: [number, number][]): Run[] {
  const runs: Run[] = [];
  for (const [src, dst] of pairs) {
    const last = runs[runs.length - 1];
    if (last && last.delta === dst - src && src === last.srcEnd + 1) last.srcEnd = src;
    else runs.push({ srcStart: src, srcEnd: src, delta: dst - src });
  }
  return runs;
}

function index(runs: Run[]): PartitionRuns {
  const p = new PartitionRuns();
  for (const r of runs) p.add(r);
  return p;
}

t.test('one contiguous run: inside, at the end, beyond the end', async (t) => {
  const p = index([{ srcStart: 0, srcEnd: 99, delta: 0 }]);
  t.same(p.translate(50), { kind: 'exact', offset: 50 });
  t.same(p.translate(100, 100), { kind: 'exact', offset: 100 }, 'all handled: the next record lands at 100');
  t.same(p.translate(120, 100), { kind: 'pending', offset: 100, maxDuplicates: 20 }, 'source 100..119 not replicated yet');
  t.same(p.translate(120), { kind: 'pending', offset: 100, maxDuplicates: 20 }, 'unknown progress: bounded by the map');
  t.same(new PartitionRuns().translate(5), { kind: 'unmapped' });
});

t.test('gaps: compacted-away offsets, transaction markers and aborted records', async (t) => {
  // source 0..4 present, 5..6 compacted away, 7..9 present -> target 0..4, 5..7
  const compacted = index(
    runsOf([
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [7, 5],
      [8, 6],
      [9, 7],
    ]),
  );
  t.equal(compacted.size, 2);
  t.same(compacted.translate(5), { kind: 'exact', offset: 5 }, 'a committed offset in the gap resumes at the next replicated record');
  t.same(compacted.translate(6), { kind: 'exact', offset: 5 });
  t.same(compacted.translate(8), { kind: 'exact', offset: 6 });
  // transactional: 0..9 committed, 10 commit marker, 11..15 aborted, 16 abort marker, 17..20 committed
  const txn = index(runsOf([...Array.from({ length: 10 }, (_, i) => [i, i] as [number, number]), [17, 10], [18, 11], [19, 12], [20, 13]]));
  t.same(txn.translate(11), { kind: 'exact', offset: 10 }, 'a consumer positioned after the marker resumes at the first committed record after it');
  t.same(txn.translate(17), { kind: 'exact', offset: 10 });
  t.same(txn.translate(21, 21), { kind: 'exact', offset: 14 });
  t.same(txn.inverse(10), { kind: 'exact', offset: 17 });
  t.same(txn.inverse(14), { kind: 'exact', offset: 21 });
});

t.test('targetCount: replicas inside a target offset range', async (t) => {
  // replicas at target 0..4 and 7..9 (5 and 6 written on the target itself)
  const p = index(
    runsOf([
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 7],
      [6, 8],
      [7, 9],
    ]),
  );
  t.equal(p.targetCount(0, 10), 8);
  t.equal(p.targetCount(3, 8), 3, '3, 4 and 7');
  t.equal(p.targetCount(5, 7), 0, 'only local records there');
  t.equal(p.targetCount(9, 20), 1);
});

t.test('a committed offset older than the map is a miss at the oldest mapped record', async (t) => {
  const p = index([{ srcStart: 100, srcEnd: 199, delta: -100 }]);
  t.same(p.translate(50), { kind: 'miss', offset: 0 });
  t.same(p.inverse(0), { kind: 'exact', offset: 100 });
});

t.test('the open run is rewritten with a growing end under the same start', async (t) => {
  const p = new PartitionRuns();
  p.add({ srcStart: 0, srcEnd: 10, delta: 5 });
  p.add({ srcStart: 0, srcEnd: 20, delta: 5 });
  p.add({ srcStart: 0, srcEnd: 15, delta: 5 }); // an older version replayed from the compacted topic changes nothing
  t.equal(p.size, 1);
  t.equal(p.lastSource, 20);
  t.same(p.translate(18, 21), { kind: 'exact', offset: 23 });
});

/**
 * Model: a source partition whose offsets are each present or not (compaction, markers, aborted or loop-guarded
 * records), replicated in order into a target partition that may also hold records written there directly.
 */
const model = fc.array(fc.record({ present: fc.boolean(), localBefore: fc.integer({ min: 0, max: 2 }) }), { minLength: 1, maxLength: 120 }).map((slots) => {
  const pairs: [number, number][] = [];
  let target = 0;
  slots.forEach((s, src) => {
    target += s.localBefore; // records produced on the target itself
    if (s.present) pairs.push([src, target++]);
  });
  return { pairs, sourceEnd: slots.length, targetEnd: target };
});

t.test('property: translate(C) is the target offset of the first replicated record at or after C', async (t) => {
  fc.assert(
    fc.property(model, ({ pairs, sourceEnd }) => {
      const p = index(runsOf(pairs));
      if (pairs.length === 0) return p.translate(0).kind === 'unmapped';
      for (let c = pairs[0]![0]; c <= sourceEnd; c++) {
        const next = pairs.find(([s]) => s >= c);
        const got = p.translate(c, sourceEnd);
        const want = next ? next[1] : pairs[pairs.length - 1]![1] + 1;
        if (got.kind !== 'exact' || got.offset !== want) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass('held for 500 generated partitions');
});

t.test('property: inverse(T) is the source offset of the first replicated record at or after T on the target', async (t) => {
  fc.assert(
    fc.property(model, ({ pairs, targetEnd }) => {
      if (pairs.length === 0) return true;
      const p = index(runsOf(pairs));
      for (let tOff = pairs[0]![1]; tOff <= targetEnd; tOff++) {
        const next = pairs.find(([, d]) => d >= tOff);
        const got = p.inverse(tOff);
        const want = next ? next[0] : pairs[pairs.length - 1]![0] + 1;
        if (got.kind !== 'exact' || got.offset !== want) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass('held for 500 generated partitions');
});

t.test('targetEndBefore: where the records below a committed offset end on the target', async (t) => {
  // source 0..9 at +0; offsets 10..11 not forwarded (markers); 12..19 at -2; 20.. at -1 (one local record between)
  const runs: [number, number, number][] = [
    [12, 19, -2],
    [0, 9, 0],
    [20, 30, -1],
  ];
  t.equal(targetEndBefore(runs, 5), 5, 'inside the first run: the next record lands at C + delta');
  t.equal(targetEndBefore(runs, 10), 10, 'just past the first run');
  t.equal(targetEndBefore(runs, 12), 10, 'after records that were not forwarded: past the last one that was');
  t.equal(targetEndBefore(runs, 15), 13, 'inside the second run');
  t.equal(targetEndBefore(runs, 25), 24, 'inside the third run');
  t.equal(targetEndBefore(runs, 40), 30, 'past every run: past the last forwarded record');
  t.equal(targetEndBefore(runs, 0), undefined, 'nothing below offset 0');
  t.equal(targetEndBefore([], 7), undefined, 'no runs: not known');
});
