/**
 * The embedded store's lock: one process per store.path. A second opener is refused naming the holder; a lock left
 * by a process that is gone (kill -9, a machine restart) is taken over; close() releases it. Committed offsets keep
 * the fields added later (topic id, leader epoch), and files written before them still load.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import t from 'tap';
import { EmbeddedStore } from '../shared/store/embedded';

t.test('one process per embedded store: a live holder is refused, a gone one taken over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = new EmbeddedStore(dir);
  const lock = JSON.parse(readFileSync(join(dir, 'store.lock'), 'utf8')) as { pid: number; host: string };
  t.same({ pid: lock.pid, host: lock.host }, { pid: process.pid, host: hostname() }, 'the lock names its holder');
  t.throws(
    () => new EmbeddedStore(dir),
    {
      code: 'STRAIT_STORE',
      field: 'store.path',
      message: new RegExp(`in use by another strait process \\(pid ${process.pid}, since .*\\): stop it, or give this one another store.path`),
    },
    'a second opener is refused, naming the holder and the field',
  );
  await first.close();
  t.notOk(existsSync(join(dir, 'store.lock')), 'close() releases the lock');

  // a holder that is gone: the pid of a process that has exited
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(join(dir, 'store.lock'), JSON.stringify({ pid: Number(gone.stdout), host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
  const second = new EmbeddedStore(dir);
  t.equal(
    (JSON.parse(readFileSync(join(dir, 'store.lock'), 'utf8')) as { pid: number }).pid,
    process.pid,
    'a lock left by a process that is gone is taken over',
  );
  await second.close();

  // a half-written lock file (a crash while writing it) is taken over too
  writeFileSync(join(dir, 'store.lock'), '{"pid": 12');
  const third = new EmbeddedStore(dir);
  t.ok(existsSync(join(dir, 'store.lock')), 'a broken lock file is replaced');
  await third.close();
});

t.test('committed offsets keep the topic id and leader epoch; a file written before them still loads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-offsets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // a store file as an older strait wrote it: offsets without topicId or leaderEpoch
  writeFileSync(join(dir, 'store.msgpack'), pack({ format: 1, offsets: { r: { 't/0': { offset: 10, epoch: 1 } } }, managedTopics: {} }));
  const store = new EmbeddedStore(dir);
  t.same((await store.readOffsets('r')).get('t/0'), { offset: 10, epoch: 1 }, 'an old record loads');
  await store.commitOffsets('r', [{ topic: 't', partition: 0, offset: 12, epoch: 1, topicId: 'AAAAAAAAAAAAAAAAAAAAAA', leaderEpoch: 4, targetEnd: 40 }]);
  await store.fence('r', [{ topic: 't', partition: 0, epoch: 2 }]);
  await store.close();
  const again = new EmbeddedStore(dir);
  t.same(
    (await again.readOffsets('r')).get('t/0'),
    { offset: 12, epoch: 2, topicId: 'AAAAAAAAAAAAAAAAAAAAAA', leaderEpoch: 4, targetEnd: 40 },
    'the new fields are kept through a fence and a restart',
  );
  await again.close();
});
