import t from 'tap';
import { pack } from 'msgpackr';
import {
  checkpointKey,
  decodeCheckpoint,
  decodeOffsetMapRecord,
  encodeCheckpoint,
  encodeOffsetMapRecord,
  offsetMapKey,
  type CheckpointRecord,
  type OffsetMapRecord,
} from '../shared/offset-map/records';

const run: OffsetMapRecord = { v: 1, route: 'a-to-b', sourceTopic: 'orders', partition: 3, targetTopic: 'a.orders', srcStart: 100, srcEnd: 2 ** 40, delta: -7 };
const checkpoint: CheckpointRecord = {
  v: 1,
  route: 'a-to-b',
  group: 'billing',
  sourceTopic: 'orders',
  partition: 3,
  targetTopic: 'a.orders',
  sourceOffset: 120,
  targetOffset: 113,
  kind: 'pending',
  maxDuplicates: 4,
  direction: 'inverse',
  ts: 1_764_000_000_000,
};

t.test('offset-map runs and checkpoints round-trip, keyed so compaction keeps the newest version', async (t) => {
  const r = encodeOffsetMapRecord(run);
  t.same(r.key, offsetMapKey(run));
  t.same(decodeOffsetMapRecord(r.value), run);
  t.same(encodeOffsetMapRecord({ ...run, srcEnd: run.srcEnd + 1 }).key, r.key, 'a widened run keeps its key');
  const c = encodeCheckpoint(checkpoint);
  t.same(c.key, checkpointKey(checkpoint));
  t.same(decodeCheckpoint(c.value), checkpoint);
  const { direction: _d, ...forward } = checkpoint;
  t.same(decodeCheckpoint(encodeCheckpoint(forward).value), forward, 'direction may be absent (forward)');
});

t.test('a value that is not a version-1 record is refused, not cast', async (t) => {
  t.equal(decodeOffsetMapRecord(pack({ ...run, v: 2 })), undefined, 'a newer version');
  t.equal(decodeOffsetMapRecord(Buffer.from('not msgpack \xc1')), undefined, 'not msgpack');
  t.equal(decodeOffsetMapRecord(pack([1, 2, 3])), undefined, 'not an object');
  t.equal(decodeOffsetMapRecord(pack({ ...run, srcStart: '100' })), undefined, 'a string where an offset belongs');
  t.equal(decodeOffsetMapRecord(pack({ ...run, delta: 1.5 })), undefined, 'a fraction');
  const { targetTopic: _t, ...noTarget } = run;
  t.equal(decodeOffsetMapRecord(pack(noTarget)), undefined, 'a field missing');
  t.equal(decodeCheckpoint(pack({ ...checkpoint, kind: 'guess' })), undefined, 'an unknown kind');
  t.equal(decodeCheckpoint(pack({ ...checkpoint, direction: 'sideways' })), undefined, 'an unknown direction');
  t.equal(decodeCheckpoint(pack(run)), undefined, 'an offset-map run is not a checkpoint');
});
