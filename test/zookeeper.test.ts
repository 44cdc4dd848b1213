import t from 'tap';
import ZooKeeper from 'zookeeper';
import { testClusters, uniqueName } from './helpers/kafka';

async function connect(connect: string): Promise<ZooKeeper> {
  const zk = new ZooKeeper({ connect, timeout: 4000, debug_level: ZooKeeper.constants.ZOO_LOG_LEVEL_ERROR, host_order_deterministic: false });
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no ZooKeeper session with ${connect} in 10 s`)), 10_000);
    zk.once('connect', () => {
      clearTimeout(timer);
      res();
    });
    zk.init({});
  });
  return zk;
}

t.test('a real ZooKeeper session owns an ephemeral node that disappears when the session closes', async (t) => {
  const zkState = testClusters().zookeeper;
  if (!zkState) throw new Error('test clusters have no ZooKeeper');
  const path = `/${uniqueName('eph')}`;
  const owner = await connect(zkState.connect);
  const observer = await connect(zkState.connect);
  try {
    await owner.create(path, Buffer.from('worker-1'), ZooKeeper.constants.ZOO_EPHEMERAL);
    const stat = await observer.exists(path, false);
    t.ok(stat, 'the other session sees the node');
    t.equal(String((await observer.get(path, false))[1]), 'worker-1');
    let fired: (type: number) => void = () => {};
    const gone = new Promise<number>((res) => (fired = res));
    await observer.w_exists(path, (type: number) => fired(type));
    owner.close();
    t.equal(await gone, ZooKeeper.constants.ZOO_DELETED_EVENT, 'watch fires with a delete event');
    // the client rejects exists() on a missing node with ZNONODE (-101)
    await t.rejects(observer.exists(path, false), /-101/, 'the node is gone once its session closed');
  } finally {
    observer.close();
  }
});
