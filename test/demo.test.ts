import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../bench/kafka-runtime';
import { TEST_DEV_DIR } from './helpers/dir';

t.test('the demo replicates live between the local clusters and exits by itself', async (t) => {
  const r = spawnSync(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), 'demo', '--dir', TEST_DEV_DIR, '--duration', '6', '--rate', '1000'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  t.equal(r.status, 0, r.stderr);
  const m = /final: source a (\d+) records, target b (\d+) records/.exec(r.stdout);
  t.ok(m, 'final counts printed');
  t.ok(Number(m?.[1]) > 0, 'the demo produced records');
  t.equal(m?.[2], m?.[1], 'every produced record reached the target');
  t.match(r.stdout, /\[\d+s\] source a: \d+ records .* -> {2}target b: \d+ records/, 'live progress lines');
});
