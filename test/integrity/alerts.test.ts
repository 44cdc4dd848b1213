/**
 * The shipped alert rules in a real Prometheus: it scrapes a real `strait run` replicating between the test clusters,
 * a record too large for the target errors its partition (STRAIT_TARGET_REJECTED, as in limits.test.ts), and the
 * StraitPartitionErrored alert fires with that partition's labels, read from Prometheus's HTTP API. The controller
 * gauges behind StraitNoLeader / StraitNoWorkers are read through Prometheus too, and those alerts stay quiet.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import { ensurePrometheus } from '../../bench/harness/prometheus-runtime';
import { bootstrap, createTopic, produce, uniqueName } from '../helpers/kafka';
import { PrometheusServer, stopPrometheus } from '../helpers/prometheus';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(async () => {
  await stopPrometheus();
  await stopAll();
});

/**
 * The shipped rules with every `for:` shortened to 5 s, and nothing else changed: the test cannot wait the real
 * minutes. The expressions, labels and annotations are the shipped ones.
 */
function rulesWithShortFor(): string {
  const shipped = readFileSync(join(projectRoot(), 'docs', 'alerts', 'strait.rules.yml'), 'utf8');
  const rules = shipped.match(/^\s+- alert: /gm)?.length ?? 0;
  let changed = 0;
  const short = shipped.replace(/^(\s+)for: [0-9]+[smh]$/gm, (_, indent: string) => {
    changed++;
    return `${indent}for: 5s`;
  });
  if (changed !== rules || rules === 0) throw new Error(`expected one for: per rule, found ${changed} in ${rules} rules`);
  const file = join(mkdtempSync(join(tmpdir(), 'strait-rules-')), 'strait.rules.yml');
  writeFileSync(file, short);
  return file;
}

t.test('a real Prometheus fires StraitPartitionErrored for a partition the target rejects', async (t) => {
  const runtime = await ensurePrometheus((l) => t.comment(l));
  const a = bootstrap('a');
  const b = bootstrap('b');
  const topic = uniqueName('alerts');
  // the target topic keeps Kafka's default limit (~1 MB): syncTopicConfigs is off
  await createTopic(a, topic, 2, { 'max.message.bytes': String(3 * 1024 * 1024) });
  const strait = new StraitProcess(
    writeConfig({
      deployment: 'alerts',
      clusters: { a: { bootstrap: a }, b: { bootstrap: b } },
      routes: [{ name: 'alerts', source: 'a', target: 'b', topics: { include: [topic] }, syncTopicConfigs: false }],
      worker: { commitIntervalMs: 300, reportIntervalMs: 1000 },
    }),
  );
  const target = new URL(await strait.metricsUrl).host;
  const prometheus = await PrometheusServer.start(runtime, [target], [rulesWithShortFor()]);
  t.comment(`prometheus pid ${prometheus.pid} at ${prometheus.url} scraping ${target}`);

  await waitFor(
    'the rules loaded and evaluated',
    async () => {
      const groups = (await prometheus.api<{ groups: { rules: { name: string; health: string }[] }[] }>('rules')).groups;
      const all = groups.flatMap((g) => g.rules);
      return all.length >= 10 && all.every((r) => r.health === 'ok');
    },
    60_000,
    500,
  );
  t.pass('every shipped rule loaded and evaluates with health ok');

  await waitFor('strait scraped', async () => (await prometheus.query('up{job="strait"}')).some((s) => s.value[1] === '1'), 60_000, 500);
  await waitFor('the controller gauges scraped', async () => (await prometheus.query('strait_controller_leader')).length > 0, 60_000, 500);
  t.match(await prometheus.query('strait_controller_leader'), [{ metric: { controller: 'standalone' }, value: [Number, '1'] }], 'strait run leads');
  t.match(await prometheus.query('strait_controller_workers'), [{ metric: { controller: 'standalone' }, value: [Number, '1'] }], 'one worker registered');

  // partition 0: small records around one the target refuses; partition 1 keeps replicating
  await produce(
    a,
    topic,
    [
      ...Array.from({ length: 4 }, (_, i) => ({
        partition: 0,
        key: Buffer.from(`p0-${i}`),
        value: i === 2 ? randomBytes(2 * 1024 * 1024) : Buffer.from(`small-${i}`),
      })),
      ...Array.from({ length: 4 }, (_, i) => ({ partition: 1, key: Buffer.from(`p1-${i}`), value: Buffer.from(`small-${i}`) })),
    ],
    { 'message.max.bytes': 10 * 1024 * 1024 },
  );

  const started = Date.now();
  let firing: { labels: Record<string, string>; annotations: Record<string, string> } | undefined;
  await waitFor(
    'StraitPartitionErrored firing',
    async () => {
      firing = (await prometheus.alerts()).find((a) => a.labels.alertname === 'StraitPartitionErrored' && a.state === 'firing');
      return firing !== undefined;
    },
    120_000,
    500,
  );
  t.comment(`firing ${((Date.now() - started) / 1000).toFixed(1)} s after the produce`);
  t.match(firing!.labels, {
    alertname: 'StraitPartitionErrored',
    severity: 'critical',
    job: 'strait',
    instance: target,
    route: 'alerts',
    topic,
    partition: '0',
    code: 'STRAIT_TARGET_REJECTED',
  });
  t.equal(firing!.annotations.summary, `strait: ${topic}[0] of route alerts is errored with STRAIT_TARGET_REJECTED`);
  t.match(firing!.annotations.description, `on ${target} makes no progress: STRAIT_TARGET_REJECTED`);

  const alerts = await prometheus.alerts();
  t.equal(alerts.filter((a) => a.labels.alertname === 'StraitPartitionErrored').length, 1, 'only partition 0 is errored');
  for (const quiet of ['StraitNoLeader', 'StraitNoWorkers', 'StraitWorkerMissing', 'StraitCommitFailing', 'StraitRecordsSkipped']) {
    t.notOk(
      alerts.some((a) => a.labels.alertname === quiet),
      `${quiet} is not active`,
    );
  }
  t.equal(await strait.stop(), 0);
});
