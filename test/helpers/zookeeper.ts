/**
 * The shared test ZooKeeper and the digest credentials strait authenticates with there (the harness made them up
 * when it started ZooKeeper; bench/local-cluster.ts). Every strait tree under the default root is sealed to them,
 * so every store and raw client of the tests authenticates with them too.
 */
import ZooKeeper from 'zookeeper';
import type { ZooKeeperAuth } from '../../shared/store/zookeeper/options';
import { testClusters } from './kafka';

export function testZooKeeper(): { connect: string; auth: ZooKeeperAuth } {
  const zk = testClusters().zookeeper;
  if (!zk) throw new Error('test clusters have no ZooKeeper');
  return { connect: zk.connect, auth: zk.auth };
}

/** `store.auth` for a config file of the test fleets */
export function testStoreAuth(): { scheme: 'digest'; credentials: string } {
  return testZooKeeper().auth;
}

/**
 * A plain client of the binding with a session; `credentials` ('user:password') are added with add_auth before it
 * is handed out (none: an unauthenticated client, world:anyone).
 */
export async function rawZooKeeper(connect: string, credentials?: string, extra: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<ZooKeeper> {
  const zk = new ZooKeeper({ connect, timeout: 4000, debug_level: 0, host_order_deterministic: false, ...extra });
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no raw ZooKeeper session with ${connect} in ${timeoutMs} ms`)), timeoutMs);
    zk.once('connect', () => {
      if (credentials === undefined) {
        clearTimeout(timer);
        res();
        return;
      }
      zk.add_auth('digest', credentials, (rc: number) => {
        clearTimeout(timer);
        if (rc === ZooKeeper.constants.ZOK) res();
        else rej(new Error(`add_auth failed: ${rc}`));
      });
    });
    zk.init({});
  });
  return zk;
}
