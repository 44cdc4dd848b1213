/**
 * The embedded store's lock: one process per store.path. A second opener is refused naming the holder; a lock left
 * by a process that is gone (kill -9, a machine restart) is taken over; close() releases it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EmbeddedStore } from '../shared/embedded-store';

t.test('one process per embedded store: a live holder is refused, a gone one taken over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = new EmbeddedStore(dir);
  const lock = JSON.parse(readFileSync(join(dir, 'store.lock'), 'utf8')) as { pid: number; host: string };
  t.same({ pid: lock.pid, host: lock.host }, { pid: process.pid, host: hostname() }, 'the lock names its holder');
  t.throws(() => new EmbeddedStore(dir), { code: 'STRAIT_STORE', field: 'store.path', message: new RegExp(`in use by another strait process \\(pid ${process.pid}, since .*\\): stop it, or give this one another store.path`) }, 'a second opener is refused, naming the holder and the field');
  await first.close();
  t.notOk(existsSync(join(dir, 'store.lock')), 'close() releases the lock');

  // a holder that is gone: the pid of a process that has exited
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(join(dir, 'store.lock'), JSON.stringify({ pid: Number(gone.stdout), host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
  const second = new EmbeddedStore(dir);
  t.equal((JSON.parse(readFileSync(join(dir, 'store.lock'), 'utf8')) as { pid: number }).pid, process.pid, 'a lock left by a process that is gone is taken over');
  await second.close();

  // a half-written lock file (a crash while writing it) is taken over too
  writeFileSync(join(dir, 'store.lock'), '{"pid": 12');
  const third = new EmbeddedStore(dir);
  t.ok(existsSync(join(dir, 'store.lock')), 'a broken lock file is replaced');
  await third.close();
});
