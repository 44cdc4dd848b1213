/**
 * The only module loaded in piscina pool threads. Each thread runs one long-lived task that hosts one native
 * forwarder per route for its shard of the worker's partitions, pumps them, and posts batched progress to the main
 * thread. Records never enter JavaScript: `pump()` moves a whole batch inside C++.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { loadNative, type ForwarderProgress, type NativeForwarder } from '../native';
import type { FromPump, PumpTask, RouteClients, ToPump } from '../shared/wire';

export default async function pump(task: PumpTask): Promise<void> {
  const native = loadNative();
  const clients = new Map<string, RouteClients>(task.routes.map((r) => [r.route, r]));
  const forwarders = new Map<string, NativeForwarder>();
  const inbox: ToPump[] = [];
  let stopping: { flushTimeoutMs: number } | undefined;
  const post = (m: FromPump) => task.port.postMessage(m);

  task.port.on('message', (m: ToPump) => inbox.push(m));

  const forwarderFor = (route: string): NativeForwarder | undefined => {
    let fw = forwarders.get(route);
    if (fw) return fw;
    const c = clients.get(route);
    if (!c) {
      post({ type: 'error', shard: task.shard, route, message: `no client settings for route '${route}'` });
      return undefined;
    }
    try {
      fw = new native.Forwarder(c.options);
    } catch (e) {
      post({ type: 'error', shard: task.shard, route, message: (e as Error).message });
      return undefined;
    }
    forwarders.set(route, fw);
    return fw;
  };

  const handle = (m: ToPump) => {
    try {
      switch (m.type) {
        case 'assign':
          forwarderFor(m.route)?.assign(m.entries);
          break;
        case 'route': {
          clients.set(m.clients.route, m.clients);
          // the main thread sends changed settings only once none of the route's partitions runs here
          const old = forwarders.get(m.clients.route);
          if (old) {
            old.close(0);
            forwarders.delete(m.clients.route);
          }
          break;
        }
        case 'unassign':
          forwarders.get(m.route)?.unassign(m.entries);
          break;
        case 'commit':
          forwarders.get(m.route)?.commit(m.offsets);
          break;
        case 'stop':
          stopping = { flushTimeoutMs: m.flushTimeoutMs };
          break;
      }
    } catch (e) {
      post({ type: 'error', shard: task.shard, route: 'route' in m ? m.route : '', message: (e as Error).message });
    }
  };

  const collect = (): Record<string, ForwarderProgress> => {
    const out: Record<string, ForwarderProgress> = {};
    for (const [route, fw] of forwarders) out[route] = fw.progress();
    return out;
  };

  let lastReport = Date.now();
  while (!stopping) {
    while (inbox.length > 0) handle(inbox.shift()!);
    if (stopping) break;
    // One forwarder may wait for records; several share the wait so none starves.
    const wait = forwarders.size === 0 ? 0 : Math.max(1, Math.floor(20 / forwarders.size));
    for (const fw of forwarders.values()) fw.pump(wait);
    const now = Date.now();
    if (now - lastReport >= task.progressIntervalMs) {
      lastReport = now;
      post({ type: 'progress', shard: task.shard, routes: collect() });
    }
    // Let port messages in. When idle with no forwarders, sleep instead of spinning.
    if (forwarders.size === 0) await new Promise((r) => setTimeout(r, 20));
    else await yieldToLoop();
  }
  const final: Record<string, ForwarderProgress> = {};
  for (const [route, fw] of forwarders) {
    fw.close(stopping.flushTimeoutMs);
    final[route] = fw.progress();
  }
  post({ type: 'stopped', shard: task.shard, routes: final });
  task.port.close();
}
