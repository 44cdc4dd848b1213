import t from 'tap';
import fc from 'fast-check';
import { assign, changedWorkers, effectiveWeights, MIN_SHARE, type Owned } from '../controller/assignment';

const parts = (n: number, prefix = 'r|t') => Array.from({ length: n }, (_, i) => `${prefix}/${i}`);
const workers = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`);

function loads(a: Map<string, Owned>, ws: string[]): number[] {
  return ws.map((w) => [...a.values()].filter((o) => o.worker === w).length);
}

t.test('balanced within one partition, every partition placed, epochs start at 1', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 20 }), (p, w) => {
      const { assignment, moved } = assign({ current: new Map(), workers: workers(w), partitions: parts(p) });
      const l = loads(assignment, workers(w));
      return assignment.size === p && moved.length === p && Math.max(...l) - Math.min(...l) <= 1 && [...assignment.values()].every((o) => o.epoch === 1);
    }),
  );
  t.pass('the property held for every generated fleet');
});

t.test('adding a worker moves at most ceil(P/W)+1 partitions; only moved ones change epoch', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 20 }), (p, w) => {
      const first = assign({ current: new Map(), workers: workers(w), partitions: parts(p) }).assignment;
      const { assignment, moved } = assign({ current: first, workers: workers(w + 1), partitions: parts(p) });
      const l = loads(assignment, workers(w + 1));
      const unchanged = [...assignment.entries()]
        .filter(([k]) => !moved.includes(k))
        .every(([k, o]) => first.get(k)!.epoch === o.epoch && first.get(k)!.worker === o.worker);
      return (
        moved.length <= Math.ceil(p / (w + 1)) + 1 &&
        Math.max(...l) - Math.min(...l) <= 1 &&
        unchanged &&
        moved.every((k) => assignment.get(k)!.epoch === first.get(k)!.epoch + 1)
      );
    }),
  );
  t.pass('the property held for every generated fleet');
});

t.test("removing a worker moves only that worker's partitions", async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 2, max: 20 }), fc.nat(), (p, w, pick) => {
      const first = assign({ current: new Map(), workers: workers(w), partitions: parts(p) }).assignment;
      const gone = `w${pick % w}`;
      const rest = workers(w).filter((x) => x !== gone);
      const { assignment, moved } = assign({ current: first, workers: rest, partitions: parts(p) });
      const l = loads(assignment, rest);
      return moved.every((k) => first.get(k)!.worker === gone) && Math.max(...l) - Math.min(...l) <= 1;
    }),
  );
  t.pass('the property held for every generated fleet');
});

t.test('adding a topic moves only the new partitions (when balance allows)', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 50 }), (p, w, q) => {
      const first = assign({ current: new Map(), workers: workers(w), partitions: parts(p) }).assignment;
      const all = [...parts(p), ...parts(q, 'r|new')];
      const { moved } = assign({ current: first, workers: workers(w), partitions: all });
      const oldMoved = moved.filter((k) => !k.startsWith('r|new'));
      // an old partition moves only when the new ones cannot restore balance alone
      return moved.filter((k) => k.startsWith('r|new')).length === q && oldMoved.length <= w;
    }),
  );
  t.pass('the property held for every generated fleet');
});

t.test('epochs never go backwards across an ownership gap', async (t) => {
  const epochs = new Map([['r|t/0', 7]]);
  const { assignment } = assign({ current: new Map(), workers: ['w0'], partitions: ['r|t/0'], epochs });
  t.equal(assignment.get('r|t/0')!.epoch, 8);
  t.same(assign({ current: new Map(), workers: [], partitions: ['x'] }).assignment.size, 0, 'no workers: nothing assigned');
});

// ---- weighted balance

const TOL = 0.1;

/** A fleet with heavy-tailed measured weights (1 to ~400 bytes/s), some partitions idle (0) and some unknown. */
const fleet = fc.record({
  w: fc.integer({ min: 1, max: 25 }),
  p: fc.integer({ min: 1, max: 400 }),
  seed: fc.array(fc.tuple(fc.double({ min: 0, max: 6, noNaN: true }), fc.integer({ min: 0, max: 9 })), { minLength: 1, maxLength: 400 }),
});

function weightsFor(ps: string[], seed: [number, number][]): Map<string, number> {
  const m = new Map<string, number>();
  ps.forEach((k, i) => {
    const [x, kind] = seed[i % seed.length]!;
    if (kind === 0) return; // unknown
    m.set(k, kind === 1 ? 0 : Math.exp(x));
  });
  return m;
}

/** the effective weights as a map, for checking results */
function weightMap(ps: string[], measured: Map<string, number>): Map<string, number> {
  const { weights } = effectiveWeights(ps, measured);
  return new Map(ps.map((k, i) => [k, weights[i]!]));
}

function loadsBy(a: Map<string, Owned>, ws: string[], weight: Map<string, number>): number[] {
  const m = new Map(ws.map((w) => [w, 0]));
  for (const [k, o] of a) if (m.has(o.worker)) m.set(o.worker, m.get(o.worker)! + weight.get(k)!);
  return ws.map((w) => m.get(w)!);
}

/** largest distance of a load from the mean, as a fraction of the mean */
function spread(loads: number[]): number {
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
  return mean === 0 ? 0 : Math.max(...loads.map((l) => Math.abs(l - mean))) / mean;
}

/** no partition on the heaviest worker is lighter than the gap to the lightest: no single move evens them further */
function stuck(a: Map<string, Owned>, ws: string[], weight: Map<string, number>): boolean {
  const l = loadsBy(a, ws, weight);
  const h = ws[l.indexOf(Math.max(...l))]!;
  const gap = Math.max(...l) - Math.min(...l);
  const mean = l.reduce((x, y) => x + y, 0) / l.length;
  // the same float allowance as the assignment (a billionth of the mean load)
  return [...a].filter(([, o]) => o.worker === h).every(([k]) => weight.get(k)! >= gap - mean * 1e-9);
}

t.test('unknown partitions weigh the mean of the measured ones; idle ones a floor; equal weights balance by count', async (t) => {
  const measured = new Map([
    ['a', 1],
    ['b', 1],
    ['c', 1],
    ['d', 997],
  ]);
  const { weights, uniform } = effectiveWeights(['a', 'b', 'c', 'd', 'x'], measured);
  t.equal(weights[4], 250, 'unknown = mean (250), not the median (1)');
  t.equal(uniform, false);
  const idle = effectiveWeights(
    ['a', 'b'],
    new Map([
      ['a', 0],
      ['b', 100],
    ]),
  ).weights;
  t.equal(idle[0], 50 * MIN_SHARE, 'an idle partition still costs MIN_SHARE of the mean');
  t.same(
    [
      ...effectiveWeights(
        ['a', 'b'],
        new Map([
          ['a', 7],
          ['b', 7],
        ]),
      ).weights.values(),
    ],
    [1, 1],
    'all equal: counted as 1 each',
  );
  t.same(
    [
      ...effectiveWeights(
        ['a', 'b', 'new'],
        new Map([
          ['a', 0],
          ['b', 0],
        ]),
      ).weights,
    ],
    [1, 1, 1],
    'all measured idle: a new partition weighs the same, not 50 times more',
  );
  t.equal(
    effectiveWeights(
      ['a', 'b'],
      new Map([
        ['a', 0],
        ['b', 0],
      ]),
    ).uniform,
    true,
  );
  // two workers, one holds 4 measured partitions of 100 B/s; 4 new ones (unknown) go to the other
  const current = new Map(['p0', 'p1', 'p2', 'p3'].map((k) => [k, { worker: 'w0', epoch: 1 }]));
  const w = new Map(['p0', 'p1', 'p2', 'p3'].map((k) => [k, 100]));
  w.set('p0', 101); // not uniform
  const { assignment, moved } = assign({ current, workers: ['w0', 'w1'], partitions: ['p0', 'p1', 'p2', 'p3', 'n0', 'n1', 'n2', 'n3'], weights: w });
  t.same(moved.sort(), ['n0', 'n1', 'n2', 'n3'], 'only the new partitions move');
  t.ok(
    ['n0', 'n1', 'n2', 'n3'].every((k) => assignment.get(k)!.worker === 'w1'),
    'all to the empty worker',
  );
});

t.test('weighted: every partition placed, within the tolerance (or no single move helps), and a second run moves nothing', async (t) => {
  fc.assert(
    fc.property(fleet, ({ w, p, seed }) => {
      const ws = workers(w);
      const ps = parts(p);
      const measured = weightsFor(ps, seed);
      const first = assign({ current: new Map(), workers: ws, partitions: ps, weights: measured, tolerance: TOL });
      const wm = weightMap(ps, measured);
      const l = loadsBy(first.assignment, ws, wm);
      const balanced = spread(l) <= TOL / 2 + 1e-9 || stuck(first.assignment, ws, wm);
      const again = assign({ current: first.assignment, workers: ws, partitions: ps, weights: measured, tolerance: TOL });
      return first.assignment.size === p && balanced && again.moved.length === 0;
    }),
    { numRuns: 300 },
  );
  t.pass('the property held for every generated fleet');
});

t.test('hysteresis: weights that drift by less than a quarter of the tolerance move nothing', async (t) => {
  fc.assert(
    fc.property(fleet, fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 50 }), ({ w, p, seed }, noise) => {
      const ws = workers(w);
      const ps = parts(p);
      const measured = weightsFor(ps, seed);
      const first = assign({ current: new Map(), workers: ws, partitions: ps, weights: measured, tolerance: TOL });
      if (spread(loadsBy(first.assignment, ws, weightMap(ps, measured))) > TOL / 2 + 1e-9) return true; // granular fleet: stuck, see above
      const drifted = new Map([...measured].map(([k, v], i) => [k, v * (1 + (noise[i % noise.length]! * TOL) / 8)]));
      return assign({ current: first.assignment, workers: ws, partitions: ps, weights: drifted, tolerance: TOL }).moved.length === 0;
    }),
    { numRuns: 300 },
  );
  t.pass('the property held for every generated fleet');
});

t.test('weighted: adding a worker moves at most about two mean loads (a reshuffle would move nearly all), and ends balanced', async (t) => {
  fc.assert(
    fc.property(fleet, ({ w, p, seed }) => {
      const ws = workers(w);
      const ps = parts(p);
      const measured = weightsFor(ps, seed);
      const first = assign({ current: new Map(), workers: ws, partitions: ps, weights: measured, tolerance: TOL }).assignment;
      const grown = workers(w + 1);
      const { assignment, moved } = assign({ current: first, workers: grown, partitions: ps, weights: measured, tolerance: TOL });
      const weights = weightMap(ps, measured);
      const total = [...weights.values()].reduce((a, b) => a + b, 0);
      const newMean = total / (w + 1);
      const movedWeight = moved.reduce((a, k) => a + weights.get(k)!, 0);
      const maxW = Math.max(...weights.values());
      const l = loadsBy(assignment, grown, weights);
      // granular fleets cascade a little (measured: at most 1.5 mean loads + the heaviest partition)
      return movedWeight <= 2 * newMean + maxW + 1e-9 && (spread(l) <= TOL / 2 + 1e-9 || stuck(assignment, grown, weights));
    }),
    { numRuns: 300 },
  );
  t.pass('the property held for every generated fleet');
});

t.test('weighted: removing a worker moves its partitions, others only when placing them alone leaves the fleet outside the tolerance', async (t) => {
  fc.assert(
    fc.property(
      fleet.filter((f) => f.w >= 2),
      fc.nat(),
      ({ w, p, seed }, pick) => {
        const ws = workers(w);
        const ps = parts(p);
        const measured = weightsFor(ps, seed);
        const first = assign({ current: new Map(), workers: ws, partitions: ps, weights: measured, tolerance: TOL }).assignment;
        const gone = `w${pick % w}`;
        const rest = ws.filter((x) => x !== gone);
        const { assignment, moved } = assign({ current: first, workers: rest, partitions: ps, weights: measured, tolerance: TOL });
        const weights = weightMap(ps, measured);
        const orphans = [...first].filter(([, o]) => o.worker === gone).map(([k]) => k);
        if (!orphans.every((k) => moved.includes(k) && assignment.get(k)!.worker !== gone)) return false;
        // the same placement with no rebalancing round (infinite tolerance)
        const placedOnly = assign({ current: first, workers: rest, partitions: ps, weights: measured, tolerance: Infinity });
        const before = spread(loadsBy(placedOnly.assignment, rest, weights));
        const extra = moved.filter((k) => first.get(k)!.worker !== gone);
        if (before <= TOL + 1e-9) return extra.length === 0 && placedOnly.moved.length === moved.length;
        return spread(loadsBy(assignment, rest, weights)) <= before + 1e-9;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('the property held for every generated fleet');
});

t.test('holding workers (grace period) keep their partitions and epochs, get nothing new, and do not count', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 2, max: 20 }), fc.nat(), fc.integer({ min: 0, max: 40 }), (p, w, pick, q) => {
      const first = assign({ current: new Map(), workers: workers(w), partitions: parts(p) }).assignment;
      const gone = `w${pick % w}`;
      const rest = workers(w).filter((x) => x !== gone);
      const all = [...parts(p), ...parts(q, 'r|new')];
      const { assignment, moved } = assign({ current: first, workers: rest, partitions: all, holding: [gone] });
      const held = [...first].filter(([, o]) => o.worker === gone);
      const keeps = held.every(([k, o]) => assignment.get(k)!.worker === gone && assignment.get(k)!.epoch === o.epoch);
      const noneNew = [...assignment].filter(([, o]) => o.worker === gone).length === held.length;
      const l = loads(new Map([...assignment].filter(([, o]) => o.worker !== gone)), rest);
      return keeps && noneNew && moved.every((k) => k.startsWith('r|new')) && Math.max(...l) - Math.min(...l) <= 1;
    }),
  );
  t.pass('the property held for every generated fleet');
});

t.test('only workers whose partitions changed are written', async (t) => {
  const prev = new Map<string, Owned>([
    ['a', { worker: 'w0', epoch: 1 }],
    ['b', { worker: 'w1', epoch: 1 }],
    ['c', { worker: 'w2', epoch: 1 }],
    ['d', { worker: 'w3', epoch: 1 }],
  ]);
  const next = new Map<string, Owned>([
    ['a', { worker: 'w4', epoch: 2 }],
    ['b', { worker: 'w1', epoch: 1 }],
    ['c', { worker: 'w2', epoch: 1 }],
  ]);
  t.same([...changedWorkers(prev, next, ['a'])].sort(), ['w0', 'w3', 'w4'], 'old and new owner of a moved partition, owner of a dropped one');
  t.same([...changedWorkers(prev, prev, [])], [], 'nothing moved: nothing written');
});
