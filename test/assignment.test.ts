import t from 'tap';
import fc from 'fast-check';
import { assign, type Owned } from '../controller/assignment';

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
      const unchanged = [...assignment.entries()].filter(([k]) => !moved.includes(k)).every(([k, o]) => first.get(k)!.epoch === o.epoch && first.get(k)!.worker === o.worker);
      return moved.length <= Math.ceil(p / (w + 1)) + 1 && Math.max(...l) - Math.min(...l) <= 1 && unchanged && moved.every((k) => assignment.get(k)!.epoch === first.get(k)!.epoch + 1);
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
