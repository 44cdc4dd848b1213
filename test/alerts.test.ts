/**
 * The shipped alert rules (docs/alerts/strait.rules.yml): promtool accepts them, their unit tests pass, every metric
 * they read is one strait exports, and a rule changed or broken makes promtool fail (so the passing runs mean
 * something). promtool is built once into the cache by bench/prometheus-runtime.ts.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { projectRoot } from '../bench/harness/kafka-runtime';
import { ensurePrometheus, type PrometheusRuntime } from '../bench/harness/prometheus-runtime';
import { StraitMetrics } from '../shared/metrics';

const dir = join(projectRoot(), 'docs', 'alerts');
const rulesFile = join(dir, 'strait.rules.yml');
const testFile = join(dir, 'strait.rules.test.yml');

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function rules(): Rule[] {
  return (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
}

function promtool(runtime: PrometheusRuntime, args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(runtime.promtool, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** the rules file with `edit` applied (which must change it) and the unit tests beside it, in a scratch folder */
function edited(t: Test, edit: (text: string) => string): string {
  const original = readFileSync(rulesFile, 'utf8');
  const text = edit(original);
  t.not(text, original, 'the edit changed the rules');
  const scratch = mkdtempSync(join(tmpdir(), 'strait-rules-'));
  writeFileSync(join(scratch, 'strait.rules.yml'), text);
  copyFileSync(testFile, join(scratch, 'strait.rules.test.yml'));
  return scratch;
}

t.test('alert rules', async (t) => {
  const started = Date.now();
  const runtime = await ensurePrometheus((l) => t.comment(l));
  t.comment(`promtool ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  t.test('every rule has a for, a severity, a summary and a description, and reads only metrics strait exports', async (t) => {
    const exported = new Set(new StraitMetrics(false).registry.getMetricsAsArray().map((m) => m.name));
    const all = rules();
    t.ok(all.length >= 10, `${all.length} rules`);
    for (const r of all) {
      t.match(r.for, /^[0-9]+[smh]$/, `${r.alert}: for`);
      t.ok(['critical', 'warning'].includes(r.labels.severity ?? ''), `${r.alert}: severity ${r.labels.severity}`);
      t.ok(r.annotations.summary && r.annotations.description, `${r.alert}: summary and description`);
      for (const name of new Set(r.expr.match(/\bstrait_[a-z_]+/g))) t.ok(exported.has(name), `${r.alert}: ${name} is exported`);
    }
  });

  t.test('promtool check rules', async (t) => {
    const r = promtool(runtime, ['check', 'rules', rulesFile], dir);
    t.equal(r.status, 0, r.out);
    t.match(r.out, new RegExp(`SUCCESS: ${rules().length} rules found`));
  });

  t.test('promtool test rules: each alert fires, and stays quiet, when it should', async (t) => {
    const r = promtool(runtime, ['test', 'rules', testFile], dir);
    t.equal(r.status, 0, r.out);
    t.match(r.out, /SUCCESS/);
  });

  t.test('a rule that waits longer, or misses a first skip, fails its unit tests', async (t) => {
    const scratch = edited(t, (s) =>
      s
        .replace(/(alert: StraitPartitionErrored[\s\S]*?)for: 2m/, '$1for: 10m')
        .replace('(strait_records_skipped_total unless strait_records_skipped_total offset 15m)\n            or ', ''),
    );
    const r = promtool(runtime, ['test', 'rules', 'strait.rules.test.yml'], scratch);
    t.not(r.status, 0, 'promtool test rules fails');
    t.match(r.out, /alertname: StraitPartitionErrored/);
    t.match(r.out, /alertname: StraitRecordsSkipped/);
  });

  t.test('a broken expression fails promtool check rules', async (t) => {
    const scratch = edited(t, (s) => s.replace('expr: strait_checkpoint_age_seconds > 600', 'expr: strait_checkpoint_age_seconds > > 600'));
    const r = promtool(runtime, ['check', 'rules', 'strait.rules.yml'], scratch);
    t.not(r.status, 0, 'promtool check rules fails');
    t.match(r.out, /FAILED/);
  });
});
