/**
 * A lock between processes on one machine: a directory (mkdir is atomic) holding the owner's pid; a lock whose owner is
 * gone is taken over. Used where tap's parallel test files share something: a test cluster, a build into the cache.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` holding the lock `dir`; `timedOut(owner)` makes the error thrown after `timeoutMs` of waiting. */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, timeoutMs: number, timedOut: (owner: number) => Error): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = NaN;
      try {
        owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        // the owner is between mkdir and writing its pid
      }
      if (Number.isInteger(owner) && !alive(owner)) rmSync(dir, { recursive: true, force: true });
      else if (Date.now() > deadline) throw timedOut(owner);
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
