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
  t.same(selectTopic(ab, 'c.orders', all), { selected: true }, 'from a third cluster: goes on as b\'s a.c.orders');
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
