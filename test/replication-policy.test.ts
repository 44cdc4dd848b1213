import t from 'tap';
import { validateConfig, type RouteConfig } from '../shared/config';
import { prefixOrigins, selectTopic, targetTopicName } from '../shared/replication-policy';

function route(source: string, target: string, naming: Record<string, string> = {}): RouteConfig {
  const aliases = ['a', 'b', 'c', 'dc-a', 'dc-b', 'dc-c'];
  const clusters = Object.fromEntries(aliases.map((x, i) => [x, { bootstrap: `h:${i + 1}` }]));
  return validateConfig({ clusters, routes: [{ name: 'r', source, target, naming }] }).routes[0]!;
}

t.test('prefix names and the chain of origins read back from them', async (t) => {
  t.equal(targetTopicName(route('a', 'b'), 'orders'), 'a.orders');
  t.equal(targetTopicName(route('dc-a', 'dc-b', { separator: '--' }), 'orders'), 'dc-a--orders');
  t.equal(targetTopicName(route('a', 'b', { policy: 'identity' }), 'orders'), 'orders');
  t.same(prefixOrigins('c.b.orders', '.', ['a', 'b', 'c']), ['c', 'b']);
  t.same(prefixOrigins('dc-b--dc-a--orders', '--', ['dc-a', 'dc-b']), ['dc-b', 'dc-a']);
  t.same(prefixOrigins('dc-a-orders', '--', ['dc-a', 'dc-b']), [], 'a single dash is part of the topic name');
  t.same(prefixOrigins('b.', '.', ['b']), [], 'an alias and separator alone are a topic name, not an origin');
});

t.test('a topic that came from the target, at any depth, is never sent back', async (t) => {
  const all = ['a', 'b', 'c'];
  const ab = route('a', 'b');
  t.same(selectTopic(ab, 'orders', all), { selected: true });
  t.same(selectTopic(ab, 'c.orders', all), { selected: true }, "from a third cluster: goes on as b's a.c.orders");
  t.same(selectTopic(ab, 'b.orders', all), { selected: false, reason: 'from-target' });
  t.same(selectTopic(ab, 'c.b.orders', all), { selected: false, reason: 'from-target' });
  t.same(selectTopic(ab, 'b_orders', all), { selected: true }, 'another separator is not a prefix');
  const dashed = route('dc-c', 'dc-a', { separator: '--' });
  t.same(selectTopic(dashed, 'dc-b--dc-a--orders', ['dc-a', 'dc-b', 'dc-c']), { selected: false, reason: 'from-target' });
  t.same(selectTopic(dashed, 'dc-b--orders', ['dc-a', 'dc-b', 'dc-c']), { selected: true });
  t.same(selectTopic(ab, '__consumer_offsets', all), { selected: false, reason: 'internal' });
  // identity leaves loops to the provenance header: names are not read
  t.same(selectTopic(route('a', 'b', { policy: 'identity' }), 'b.orders', all), { selected: true });
});

/**
 * Topic propagation as the controller does it, refresh after refresh, until nothing new appears (or `rounds` pass):
 * which topic names each cluster ends with. Config validation is bypassed so rejected setups can be shown looping.
 */
function propagate(routes: RouteConfig[], clusters: string[], rounds = 20): { names: Record<string, string[]>; settled: boolean } {
  const names: Record<string, Set<string>> = Object.fromEntries(clusters.map((c) => [c, new Set(['orders'])]));
  for (let i = 0; i < rounds; i++) {
    let changed = false;
    for (const r of routes) {
      for (const topic of [...names[r.source]!]) {
        if (!selectTopic(r, topic, clusters).selected) continue;
        const target = targetTopicName(r, topic);
        if (!names[r.target]!.has(target)) {
          names[r.target]!.add(target);
          changed = true;
        }
      }
    }
    if (!changed) return { names: Object.fromEntries(clusters.map((c) => [c, [...names[c]!].sort()])), settled: true };
  }
  return { names: {}, settled: false };
}

const raw = (source: string, target: string, separator = '.'): RouteConfig => ({ ...route('a', 'b'), source, target, naming: { policy: 'prefix', separator } });

t.test('prefix topologies settle: pair, ring, full mesh; mixed separators on a cycle would not (why the config check refuses them)', async (t) => {
  const pair = propagate([raw('a', 'b'), raw('b', 'a')], ['a', 'b']);
  t.same(pair, { settled: true, names: { a: ['b.orders', 'orders'], b: ['a.orders', 'orders'] } });
  const ring = propagate([raw('a', 'b'), raw('b', 'c'), raw('c', 'a')], ['a', 'b', 'c']);
  t.same(ring.names.a, ['c.b.orders', 'c.orders', 'orders']);
  // a full mesh is loop-free too, but a cluster gets another's records once per path: 'a.orders' and 'b.a.orders' on c
  const mesh = propagate(
    ['ab', 'ba', 'bc', 'cb', 'ac', 'ca'].map((x) => raw(x[0]!, x[1]!)),
    ['a', 'b', 'c'],
  );
  t.ok(mesh.settled);
  t.same(mesh.names.c, ['a.b.orders', 'a.orders', 'b.a.orders', 'b.orders', 'orders']);
  t.same(propagate([raw('a', 'b', '_'), raw('b', 'c'), raw('c', 'a', '_')], ['a', 'b', 'c']).settled, false);
  const identity: RouteConfig = { ...raw('b', 'a'), naming: { policy: 'identity', separator: '.' } };
  t.same(propagate([raw('a', 'b'), identity], ['a', 'b']).settled, false, 'prefix one way, identity back: a.orders, a.a.orders, ...');
});
