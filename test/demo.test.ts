import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../bench/harness/kafka-runtime';
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

t.test('the distributed demo: one ZooKeeper, two controllers, three workers replicate everything and stop', async (t) => {
  const r = spawnSync(
    process.execPath,
    [join(projectRoot(), 'dist', 'bin', 'strait.js'), 'demo', '--distributed', '--dir', TEST_DEV_DIR, '--duration', '12', '--rate', '1000'],
    {
      encoding: 'utf8',
      timeout: 180_000,
    },
  );
  t.equal(r.status, 0, r.stderr);
  t.equal((r.stdout.match(/started strait controller/g) ?? []).length, 2, 'two controllers started');
  t.equal((r.stdout.match(/started strait worker/g) ?? []).length, 3, 'three workers started');
  t.match(r.stdout, /\| leader controller-[12], 3 workers, 9\/9 partitions assigned/, 'the leader assigned all 9 partitions over 3 workers');
  const m = /final: source a (\d+) records, target b (\d+) records/.exec(r.stdout);
  t.ok(Number(m?.[1]) > 0, 'the demo produced records');
  // the leader may move partitions as load reports arrive: a moved partition re-reads its in-flight window
  t.ok(Number(m?.[2]) >= Number(m?.[1]), `every produced record reached the target (${m?.[1]} produced, ${m?.[2]} on b)`);
  if (Number(m?.[2]) > Number(m?.[1])) t.comment(`${Number(m?.[2]) - Number(m?.[1])} in-flight duplicates from partitions that moved`);
  const pids = [...r.stdout.matchAll(/\(pid (\d+), config/g)].map((x) => Number(x[1]));
  t.equal(pids.length, 5);
  t.ok(
    pids.every((pid) => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }),
    'every process the demo started is gone',
  );
});
