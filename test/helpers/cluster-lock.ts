/**
 * tap runs two test files at once, and all of them share the test clusters. A test that stops a cluster and a test
 * that needs that cluster up from start to end hold this lock, so they never overlap (bench/dir-lock.ts).
 */
import { join } from 'node:path';
import { withDirLock } from '../../bench/harness/dir-lock';
import { TEST_DEV_DIR } from './dir';

export function withClusterLock<T>(alias: string, fn: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  return withDirLock(
    join(TEST_DEV_DIR, `lock-${alias}`),
    fn,
    timeoutMs,
    (owner) => new Error(`cluster ${alias} still locked by pid ${owner} after ${timeoutMs} ms`),
  );
}
