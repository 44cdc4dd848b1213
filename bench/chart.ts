/**
 * Charts of one bench run: records/s per system for every throughput scenario, p50/p99/p99.9 per system for every
 * latency scenario, stacked in one SVG rendered server-side by Vega; plus a self-contained HTML report (the SVG inline
 * and the numbers as tables, no scripts, nothing fetched).
 */
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite' with { 'resolution-mode': 'import' };
import type { ScenarioResult, SystemResult } from './results';

export interface ChartMeta {
  title: string;
  machine: string;
  command: string;
}

type Spec = VegaLite.TopLevelSpec;
type ViewSpec = Extract<Spec, { vconcat: unknown }>['vconcat'][number];

// vega and vega-lite are ESM-only with top-level await; tsc (CommonJS) would turn import() into require(), so hide it.
const esmImport = new Function('s', 'return import(s)') as <T>(s: string) => Promise<T>;

let libs: Promise<{ vega: typeof Vega; vl: typeof VegaLite }> | undefined;
function load(): Promise<{ vega: typeof Vega; vl: typeof VegaLite }> {
  libs ??= Promise.all([esmImport<typeof Vega>('vega'), esmImport<typeof VegaLite>('vega-lite')]).then(([vega, vl]) => ({ vega, vl }));
  return libs;
}

const KINDS = ['strait', 'MirrorMaker 2', 'JS baseline', 'ceiling', 'other'] as const;
type Kind = (typeof KINDS)[number];
const KIND_COLOURS: Record<Kind, string> = { strait: '#2563eb', 'MirrorMaker 2': '#ea580c', 'JS baseline': '#16a34a', ceiling: '#a3a3a3', other: '#7c3aed' };
const PERCENTILES = [
  { name: 'p50', colour: '#93c5fd', value: (r: SystemResult) => r.p50Ms },
  { name: 'p99', colour: '#3b82f6', value: (r: SystemResult) => r.p99Ms },
  { name: 'p99.9', colour: '#1e3a8a', value: (r: SystemResult) => r.p999Ms },
];
const FAILED_COLOUR = '#b91c1c';
const WIDTH = 440;

function kindOf(system: string): Kind {
  if (system.startsWith('ceiling')) return 'ceiling';
  if (system.startsWith('strait')) return 'strait';
  if (system.startsWith('mm2')) return 'MirrorMaker 2';
  if (system.startsWith('js')) return 'JS baseline';
  return 'other';
}

const isLatency = (s: ScenarioResult) => s.scenario.startsWith('latency');

/** bench.ts records a system that threw as zero rate with the error in `note`. */
function failed(s: ScenarioResult, r: SystemResult): boolean {
  return r.recordsPerSec <= 0 || (isLatency(s) && r.p50Ms == null);
}

const integer = (n: number) => Math.round(n).toLocaleString('en-US');
const millis = (n: number | undefined) => (n == null ? undefined : integer(n));

function heading(s: ScenarioResult): string {
  return isLatency(s)
    ? `${s.scenario}: ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec}`
    : `${s.scenario}: ${integer(s.records)} records x ${s.recordSize} B, ${s.partitions} partitions, codec ${s.codec}`;
}

function throughputChart(s: ScenarioResult, kinds: Kind[], legend: boolean): ViewSpec {
  const rows = s.results.map((r) => ({
    system: r.system,
    kind: kindOf(r.system),
    rate: failed(s, r) ? 0 : r.recordsPerSec,
    failed: failed(s, r),
    label: failed(s, r) ? 'failed' : `${integer(r.recordsPerSec)} rec/s · ${r.mbPerSec} MB/s`,
  }));
  const max = Math.max(1, ...rows.map((r) => r.rate));
  return {
    title: { text: heading(s), subtitle: 'records/s per system (label: records/s · MB/s)' },
    width: WIDTH,
    height: { step: 22 },
    data: { values: rows },
    encoding: { y: { field: 'system', type: 'nominal', title: null, scale: { domain: rows.map((r) => r.system) } } },
    layer: [
      {
        mark: { type: 'bar', height: { band: 0.75 } },
        encoding: {
          // room on the right for the label of the longest bar
          x: {
            field: 'rate',
            type: 'quantitative',
            title: 'records/s',
            axis: { format: ',d', tickCount: 5, tickMinStep: 1 },
            scale: { domain: [0, max * 1.6] },
          },
          color: {
            field: 'kind',
            type: 'nominal',
            title: null,
            scale: { domain: kinds, range: kinds.map((k) => KIND_COLOURS[k]) },
            legend: legend ? { orient: 'right' } : null,
          },
        },
      },
      {
        mark: { type: 'text', align: 'left', baseline: 'middle', dx: 4, fontSize: 10 },
        encoding: {
          x: { field: 'rate', type: 'quantitative' },
          text: { field: 'label', type: 'nominal' },
          color: { condition: { test: 'datum.failed', value: FAILED_COLOUR }, value: '#262626' },
        },
      },
    ],
  };
}

function latencyChart(s: ScenarioResult): ViewSpec {
  const bars = s.results.flatMap((r) =>
    failed(s, r)
      ? []
      : PERCENTILES.flatMap((p) => {
          const ms = p.value(r);
          return ms == null ? [] : [{ system: r.system, percentile: p.name, ms: Math.max(ms, 1), label: `${integer(ms)} ms`, failed: false }];
        }),
  );
  // HDR histograms in bench.ts have 1 ms resolution: the axis starts there; room on the right for the longest label
  const lo = 1;
  const hi = Math.max(10, ...bars.map((b) => b.ms)) * 5;
  // a failed system is a zero-length bar in the middle band with its label at the axis; layers over one data set with
  // the same encodings keep vega-lite from warning about conflicting yOffset ranges and sorts
  const failures = s.results
    .filter((r) => failed(s, r))
    .map((r) => ({ system: r.system, percentile: PERCENTILES[1]!.name, ms: lo, label: 'failed', failed: true }));
  const percentiles = PERCENTILES.map((p) => p.name);
  const decades = Array.from({ length: Math.floor(Math.log10(hi / lo)) + 1 }, (_, i) => lo * 10 ** i);
  return {
    title: { text: heading(s), subtitle: 'ms from source CreateTime to read on the target (log scale)' },
    width: WIDTH,
    height: { step: 12, for: 'offset' },
    data: { values: [...bars, ...failures] },
    encoding: {
      y: { field: 'system', type: 'nominal', title: null, scale: { domain: s.results.map((r) => r.system) } },
      x: {
        field: 'ms',
        type: 'quantitative',
        stack: null,
        title: 'ms (log scale)',
        scale: { type: 'log', domain: [lo, hi], nice: false },
        axis: { values: decades, format: ',' },
      },
      yOffset: { field: 'percentile', type: 'nominal', scale: { domain: percentiles } },
    },
    layer: [
      {
        mark: 'bar',
        encoding: { color: { field: 'percentile', type: 'nominal', title: null, scale: { domain: percentiles, range: PERCENTILES.map((p) => p.colour) } } },
      },
      {
        mark: { type: 'text', align: 'left', baseline: 'middle', dx: 3, fontSize: 9 },
        encoding: {
          text: { field: 'label', type: 'nominal' },
          color: { condition: { test: 'datum.failed', value: FAILED_COLOUR }, value: '#262626' },
          size: { condition: { test: 'datum.failed', value: 10 }, value: 9 },
        },
      },
    ],
  };
}

function spec(results: ScenarioResult[], meta: ChartMeta): Spec {
  // the same colours in every throughput chart, so one legend serves them all
  const present = new Set(results.filter((s) => !isLatency(s)).flatMap((s) => s.results.map((r) => kindOf(r.system))));
  const kinds = KINDS.filter((k) => present.has(k));
  let legend = true;
  const charts = results.map((s) => {
    if (isLatency(s)) return latencyChart(s);
    const c = throughputChart(s, kinds, legend);
    legend = false;
    return c;
  });
  if (charts.length === 0)
    charts.push({
      width: WIDTH,
      height: 20,
      data: { values: [{}] },
      mark: { type: 'text', align: 'left' },
      encoding: { text: { value: 'no results' }, x: { value: 0 } },
    });
  return {
    title: { text: meta.title, subtitle: meta.machine, anchor: 'start', fontSize: 15, offset: 16 },
    background: 'white',
    padding: 8,
    spacing: 28,
    vconcat: charts,
    resolve: { scale: { color: 'independent', x: 'independent', y: 'independent', yOffset: 'independent' } },
    config: {
      view: { stroke: null },
      title: { anchor: 'start', fontSize: 13 },
      axis: { labelFontSize: 11, titleFontSize: 11, labelLimit: 0 },
      legend: { labelFontSize: 11 },
    },
  };
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (s: string | number) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
const cell = (v: string | number | undefined, cls = '') => `<td${cls ? ` class="${cls}"` : ''}>${escape(v ?? '-')}</td>`;

function table(s: ScenarioResult): string {
  const latency = isLatency(s);
  const head = latency ? ['system', 'p50 ms', 'p99 ms', 'p99.9 ms', 'peak RSS MB', 'note'] : ['system', 'records/s', 'MB/s', 'CPU s/GB', 'peak RSS MB', 'note'];
  const rows = s.results.map((r) => {
    const bad = failed(s, r);
    const nums = latency
      ? [bad ? 'failed' : millis(r.p50Ms), millis(r.p99Ms), millis(r.p999Ms)]
      : [bad ? 'failed' : integer(r.recordsPerSec), bad ? undefined : r.mbPerSec, r.cpuSecondsPerGB || undefined];
    return `<tr${bad ? ' class="failed"' : ''}>${cell(r.system)}${nums.map((n) => cell(n, 'n')).join('')}${cell(r.peakRssMB || undefined, 'n')}${cell(r.note ?? '')}</tr>`;
  });
  return [
    `<h2>${escape(heading(s))}</h2>`,
    '<table>',
    `<thead><tr>${head.map((h, i) => `<th${i > 0 && i < 5 ? ' class="n"' : ''}>${escape(h)}</th>`).join('')}</tr></thead>`,
    `<tbody>\n${rows.join('\n')}\n</tbody>`,
    '</table>',
  ].join('\n');
}

const CSS = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#171717}
code{background:#f5f5f5;padding:.1rem .3rem}figure{margin:1.5rem 0}svg{max-width:100%;height:auto}
table{border-collapse:collapse;margin-bottom:1.5rem;font-size:.9rem}th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .6rem;text-align:left}
.n{text-align:right;font-variant-numeric:tabular-nums}tr.failed td{color:${FAILED_COLOUR}}h2{font-size:1.05rem;margin-top:1.5rem}`;

function html(results: ScenarioResult[], meta: ChartMeta, svg: string): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escape(meta.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<h1>${escape(meta.title)}</h1>`,
    `<p>Machine: ${escape(meta.machine)}</p>`,
    `<p>Command: <code>${escape(meta.command)}</code></p>`,
    `<figure>${svg}</figure>`,
    ...results.map(table),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

export async function renderCharts(results: ScenarioResult[], meta: ChartMeta): Promise<{ svg: string; html: string }> {
  const { vega, vl } = await load();
  const compiled = vl.compile(spec(results, meta)).spec as Vega.Spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    // no image marks, so the xlink namespace Vega always declares is unused: drop it and the page names no URL but SVG's own
    let svg = await view.toSVG();
    if (!svg.includes('xlink:href')) svg = svg.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', '');
    return { svg, html: html(results, meta, svg) };
  } finally {
    view.finalize();
  }
}
