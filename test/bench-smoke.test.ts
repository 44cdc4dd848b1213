/**
 * A short run of the bench against the test clusters: every system and the ceiling report positive numbers and every
 * system replicated exactly the preloaded records (values are not judged: speed is proven by `strait bench`, not here).
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench, type ScenarioResult } from '../bench/bench';
import { bootstrap } from './helpers/kafka';

t.test('bench throughput + ceiling smoke run', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'strait-bench-'));
  const results: ScenarioResult[] = await runBench({
    scenarios: ['throughput', 'ceiling'],
    source: bootstrap('a'),
    target: bootstrap('b'),
    records: 5000,
    recordSizes: [200],
    partitions: 4,
    codecs: ['lz4'],
    out,
    systems: ['strait', 'js-baseline', 'mm2-default'],
    log: (l) => t.comment(l),
  });
  t.equal(results.length, 1);
  const r = results[0]!;
  for (const name of ['strait', 'js-baseline', 'mm2-default']) {
    const s = r.results.find((x) => x.system === name);
    t.ok(s, `${name} ran`);
    t.equal(s?.note, undefined, `${name}: no failure note`);
    t.equal(s?.records, 5000, `${name}: replicated exactly the preloaded records`);
    t.ok((s?.recordsPerSec ?? 0) > 0 && (s?.mbPerSec ?? 0) > 0, `${name}: positive rate`);
    t.ok((s?.peakRssMB ?? 0) > 0 && (s?.cpuSecondsPerGB ?? -1) >= 0, `${name}: memory and CPU measured`);
  }
  t.ok(r.results.some((x) => x.system.startsWith('ceiling: Producer') && x.recordsPerSec > 0), 'producer ceiling measured');
  t.ok(r.results.some((x) => x.system.startsWith('ceiling: Consumer') && x.recordsPerSec > 0), 'consumer ceiling measured');
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  t.match(md, /\| strait \| \d+ \|/);
  t.match(md, /strait \/ MirrorMaker 2 default: [\d.]+x/);
  t.ok(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).results.length === 1, 'results.json written');
});
