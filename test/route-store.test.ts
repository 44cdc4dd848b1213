/**
 * The "routes managed over REST" part of the coordination store, the same checks against both implementations:
 * write (revisions grow), read, watch (create, update, delete each delivered), delete, and that the routes outlive
 * the store object (the embedded file reopened; a second ZooKeeper session).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

type Test = Pick<typeof t, 'equal' | 'match' | 'same'>;
import { validateConfig, type RouteConfig } from '../shared/config';
import { EmbeddedStore } from '../shared/store/embedded';
import type { CoordinationStore, StoredRoute } from '../shared/store/store';
import { ZooKeeperStore } from '../shared/store/zookeeper/api';
import { testClusters, uniqueName } from './helpers/kafka';
import { testStoreAuth } from './helpers/zookeeper';

function route(name: string, exclude: string[] = []): RouteConfig {
  return validateConfig({
    clusters: { a: { bootstrap: 'h:1' }, b: { bootstrap: 'h:2' } },
    routes: [{ name, source: 'a', target: 'b', topics: { include: ['orders.*'], exclude } }],
  }).routes[0]!;
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function exercise(t: Test, open: () => Promise<CoordinationStore>): Promise<void> {
  const store = await open();
  const seen: Map<string, StoredRoute>[] = [];
  const unwatch = store.watchRoutes((r) => seen.push(r));
  await until('the watch to deliver the empty set', () => seen.length > 0);
  t.equal(seen[0]!.size, 0, 'armed on an empty deployment, the watch delivers no routes');

  const first = await store.writeRoute(route('r1'));
  t.match(first, { revision: 1, route: { name: 'r1', topics: { include: ['orders.*'], exclude: [] } } });
  await until('the create to be delivered', () => seen.at(-1)?.has('r1') === true);
  const second = await store.writeRoute(route('r1', ['orders-test']));
  t.equal(second.revision, 2, 'an update raises the revision');
  await until('the update to be delivered', () => seen.at(-1)?.get('r1')?.revision === 2);
  t.same(seen.at(-1)!.get('r1')!.route.topics.exclude, ['orders-test'], 'the watch delivers the new definition');
  await store.writeRoute(route('r2'));
  await until('the second route to be delivered', () => seen.at(-1)?.size === 2);
  const read = await store.readRoutes();
  t.same([...read.keys()].sort(), ['r1', 'r2']);
  t.same(read.get('r1')!.route, route('r1', ['orders-test']), 'every field of the route reads back');

  t.equal(await store.deleteRoute('r2'), true, 'delete says it removed the route');
  t.equal(await store.deleteRoute('r2'), false, 'deleting it again says there was none');
  await until('the delete to be delivered', () => seen.at(-1)?.size === 1);
  unwatch();
  await store.close();

  const again = await open();
  const kept = await again.readRoutes();
  t.same([...kept.keys()], ['r1'], 'the routes outlive the store object');
  t.equal(kept.get('r1')!.revision, 2);
  await again.close();
}

t.test('embedded store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-routes-'));
  await exercise(t, async () => new EmbeddedStore(dir));
});

t.test('ZooKeeper store', async (t) => {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  const deployment = uniqueName('routes');
  await exercise(t, () => ZooKeeperStore.connect({ connect: zk.connect, deployment, sessionTimeoutMs: 4000, auth: testStoreAuth() }));
});
