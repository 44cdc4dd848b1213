/**
 * `rest`: a real deployment (ZooKeeper, one `strait controller`, one `strait worker`, a 16-partition route) and
 * autocannon against the controller's REST API: requests/s and latency percentiles per endpoint.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { projectRoot } from '../harness/kafka-runtime';
import { ProcSampler } from '../proc-stats';
import type { ScenarioResult } from '../results';
import { stopChild } from '../systems';
import { createTopic, deleteTopic } from '../topics';
import type { OnceScenario, RunContext } from './scenario';

async function restScenario(ctx: RunContext): Promise<ScenarioResult> {
  const { opts, c, work } = ctx;
  const topic = `rest-${Date.now().toString(36)}`;
  await createTopic(c.source, topic, 16);
  const cfg = join(work, 'rest.yaml');
  writeFileSync(
    cfg,
    stringify({
      deployment: `bench-rest-${Date.now().toString(36)}`,
      clusters: { a: { bootstrap: c.source }, b: { bootstrap: c.target } },
      routes: [{ name: 'bench', source: 'a', target: 'b', topics: { include: [topic] } }],
      store: { type: 'zookeeper', connect: c.zookeeper!, sessionTimeoutMs: 6000, auth: c.zookeeperAuth },
      controller: { refreshTopicsIntervalMs: 2000, rest: { port: 0 } },
      metrics: { port: 0 },
      worker: { threads: 1 },
      log: { level: 'info' },
    }),
  );
  const start = (role: string) => {
    const ch = spawn(process.execPath, [join(projectRoot(), 'dist', 'bin', 'strait.js'), role, '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    ctx.running.add(ch);
    return ch;
  };
  const controller = start('controller');
  const worker = start('worker');
  const scenario: ScenarioResult = { scenario: 'rest', recordSize: 0, codec: 'none', partitions: 16, records: 0, results: [] };
  try {
    const url = await new Promise<string>((res, rej) => {
      let out = '';
      const timer = setTimeout(() => rej(new Error(`the controller did not log its REST address within 60 s: ${out.slice(-500)}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /"rest":"(http:\/\/[^"]+)"/.exec(out);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      };
      controller.stdout!.on('data', onData);
      controller.stderr!.on('data', onData);
    });
    for (const ch of [controller, worker]) {
      ch.stdout!.resume();
      ch.stderr!.resume();
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = (await (await fetch(`${url}/v1/status`)).json()) as { partitions?: { assigned: number } | null };
      if (s.partitions?.assigned === 16) break;
      if (Date.now() > deadline) throw new Error('the controller did not assign the 16 partitions within 60 s');
      await new Promise((r) => setTimeout(r, 300));
    }
    const autocannon = require('autocannon') as (
      o: Record<string, unknown>,
    ) => Promise<{ requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number; timeouts: number; duration: number }>;
    for (const path of ['/v1/health', '/v1/status', '/v1/assignments']) {
      ctx.checkAborted();
      const rss = new ProcSampler(controller.pid!);
      const r = await autocannon({ url: `${url}${path}`, connections: 10, duration: opts.durationSec ?? 10 });
      const rps = Math.round(r.requests.average);
      scenario.results.push({
        system: `strait controller GET ${path}`,
        records: 0,
        seconds: r.duration,
        recordsPerSec: 0,
        mbPerSec: 0,
        cpuSecondsPerGB: 0,
        peakRssMB: Math.round(rss.stop() / 1e6),
        requestsPerSec: rps,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        errors: r.non2xx + r.errors + r.timeouts,
      });
      opts.log(`  rest GET ${path}: ${rps} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`);
    }
  } finally {
    for (const ch of [worker, controller]) {
      await stopChild(ch);
      ctx.running.delete(ch);
    }
    await deleteTopic(c.source, topic);
  }
  return scenario;
}

export const rest: OnceScenario = {
  name: 'rest',
  systems: () => [], // strait's own controller, whatever --systems lists
  runs: 'once',
  localOnly: {
    zookeeper: true,
    refusal: 'the rest scenario runs on local clusters only (it starts its own ZooKeeper, controller and worker); drop --source/--target or the rest scenario',
  },
  run: restScenario,
  table: {
    holds: (s) => s.scenario === 'rest',
    charted: false,
    markdown: (s) => [
      '### rest: autocannon, 10 connections, against the leading controller (one worker, 16 partitions)',
      '',
      '| endpoint | requests/s | p50 ms | p99 ms | errors | controller peak RSS MB |',
      '|---|---:|---:|---:|---:|---:|',
      ...s.results.map((r) => `| ${r.system} | ${r.requestsPerSec ?? 0} | ${r.p50Ms ?? '-'} | ${r.p99Ms ?? '-'} | ${r.errors ?? 0} | ${r.peakRssMB || '-'} |`),
      '',
    ],
  },
};
