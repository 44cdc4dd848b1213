/**
 * The bench report renders from results alone (no clusters): every system is on the chart with its numbers, a failed
 * system is labelled rather than missing, and the HTML page is escaped and fetches nothing.
 */
import t from 'tap';
import { renderCharts } from '../bench/chart';
import type { ScenarioResult, SystemResult } from '../bench/results';

const ok = (system: string, recordsPerSec: number, recordSize: number, extra: Partial<SystemResult> = {}): SystemResult => ({
  system,
  records: 1_000_000,
  seconds: Number((1_000_000 / recordsPerSec).toFixed(2)),
  recordsPerSec,
  mbPerSec: Number(((recordsPerSec * recordSize) / 1e6).toFixed(1)),
  cpuSecondsPerGB: 12.5,
  peakRssMB: 180,
  ...extra,
});
const failedRun = (system: string, note: string): SystemResult => ({
  system,
  records: 0,
  seconds: 0,
  recordsPerSec: 0,
  mbPerSec: 0,
  cpuSecondsPerGB: 0,
  peakRssMB: 0,
  note,
});

const throughput = (recordSize: number, codec: string, scale: number): ScenarioResult => ({
  scenario: 'throughput',
  recordSize,
  codec,
  partitions: 8,
  records: 1_000_000,
  results: [
    ok('strait', Math.round(412_345 * scale), recordSize),
    ok('js-baseline', Math.round(98_765 * scale), recordSize),
    failedRun('mm2-default', 'mm2-default: only 12 of 1000000 records landed within 180 s'),
    ok('mm2-tuned <x>', Math.round(201_234 * scale), recordSize),
    ok('ceiling: ProducerPerformance -> target', Math.round(901_234 * scale), recordSize, {
      cpuSecondsPerGB: 0,
      peakRssMB: 0,
      note: 'Kafka perf tool, acks=all',
    }),
  ],
});

const latency: ScenarioResult = {
  scenario: 'latency at 20000 records/s for 20 s',
  recordSize: 200,
  codec: 'lz4',
  partitions: 8,
  records: 400_000,
  results: [
    ok('strait', 20_000, 200, { p50Ms: 4, p99Ms: 18, p999Ms: 45 }),
    ok('js-baseline', 20_000, 200, { p50Ms: 12, p99Ms: 80, p999Ms: 210 }),
    failedRun('mm2-default', 'mm2-default exited during warm-up'),
    ok('mm2-tuned <x>', 20_000, 200, { p50Ms: 150, p99Ms: 1400, p999Ms: 2600 }),
  ],
};

const results = [throughput(200, 'lz4', 1), throughput(1000, 'none', 0.3), latency];
const meta = {
  title: 'strait bench <run> & co',
  machine: '2 cores (Test CPU), 8 GiB RAM',
  command: 'strait bench throughput ceiling latency --records 1000000',
};

/** The contents of the SVG's <text> elements, unescaped. */
function texts(svg: string): string[] {
  const unescape = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&');
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => unescape(m[1]!));
}

t.test('chart SVG: every system, its numbers, the failed one labelled', async (t) => {
  const { svg } = await renderCharts(results, meta);
  t.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, 'starts as an SVG document');
  t.ok(svg.trimEnd().endsWith('</svg>'), 'ends as an SVG document');
  t.equal((svg.match(/<svg\b/g) ?? []).length, (svg.match(/<\/svg>/g) ?? []).length, 'balanced <svg> tags');
  const words = texts(svg);
  for (const s of results) for (const r of s.results) t.ok(words.includes(r.system), `${r.system} is on the chart`);
  t.ok(words.includes('412,345 rec/s · 82.5 MB/s'), 'records/s and MB/s of strait, 200 B');
  t.ok(words.includes('123,704 rec/s · 123.7 MB/s'), 'records/s and MB/s of strait, 1000 B');
  t.ok(words.includes('901,234 rec/s · 180.2 MB/s'), 'the ceiling row is charted');
  for (const label of ['4 ms', '18 ms', '45 ms', '1,400 ms', '2,600 ms']) t.ok(words.includes(label), `latency label ${label}`);
  t.equal(words.filter((w) => w === 'failed').length, 3, 'the failed system is labelled in both throughput charts and the latency chart');
  for (const kind of ['strait', 'MirrorMaker 2', 'JS baseline', 'ceiling', 'p50', 'p99', 'p99.9']) t.ok(words.includes(kind), `legend entry ${kind}`);
  t.ok(
    words.some((w) => w.startsWith('throughput: 1,000,000 records x 1000 B')),
    'one chart per throughput scenario',
  );
  t.notMatch(svg, /<x>|<run>/, 'text is escaped inside the SVG');
});

t.test('HTML report: self-contained, escaped, with the numbers as tables', async (t) => {
  const { html, svg } = await renderCharts(results, meta);
  t.match(html, /^<!doctype html>/);
  t.ok(html.includes(svg), 'the SVG is inline');
  t.match(html, '<title>strait bench &lt;run&gt; &amp; co</title>');
  t.match(html, '2 cores (Test CPU), 8 GiB RAM');
  t.match(html, '<code>strait bench throughput ceiling latency --records 1000000</code>');
  t.equal((html.match(/<table>/g) ?? []).length, 3, 'a table per scenario');
  t.match(html, '<tr><td>strait</td><td class="n">412,345</td><td class="n">82.5</td><td class="n">12.5</td><td class="n">180</td><td></td></tr>');
  t.match(html, '<tr><td>ceiling: ProducerPerformance -&gt; target</td><td class="n">901,234</td>');
  t.match(html, '<tr><td>mm2-tuned &lt;x&gt;</td><td class="n">150</td><td class="n">1,400</td><td class="n">2,600</td>');
  t.match(html, '<tr class="failed"><td>mm2-default</td><td class="n">failed</td>');
  t.match(html, 'mm2-default exited during warm-up');
  t.notMatch(html, '<x>', 'a system name with < is escaped everywhere');
  t.notMatch(html, /<script/i, 'no scripts');
  const urls = html.match(/https?:\/\/[^\s"'<>)]+/g) ?? [];
  t.same([...new Set(urls)], ['http://www.w3.org/2000/svg'], 'no URL but the SVG namespace');
  t.notMatch(html, /\b(src|href)\s*=/i, 'nothing to fetch');
});

t.test('no results, and a scenario where everything failed, still render', async (t) => {
  const empty = await renderCharts([], meta);
  t.match(empty.svg, /^<svg[\s\S]*<\/svg>$/);
  t.ok(texts(empty.svg).includes('no results'));
  const all = await renderCharts(
    [
      { ...latency, results: [failedRun('a "q" & b', 'x')] },
      { ...throughput(100, 'zstd', 1), results: [failedRun('a "q" & b', 'y')] },
    ],
    meta,
  );
  t.equal(texts(all.svg).filter((w) => w === 'failed').length, 2);
  t.ok(texts(all.svg).includes('a "q" & b'));
  t.match(all.html, '<td>a &quot;q&quot; &amp; b</td>');
});
