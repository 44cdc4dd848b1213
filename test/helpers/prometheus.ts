/**
 * A real Prometheus server for tests: its config and TSDB in a temporary folder, bound to 127.0.0.1 on a port picked
 * here, its pid recorded, and stopped by that pid (never by name). Tests register `stopPrometheus` in teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { PrometheusRuntime } from '../../bench/harness/prometheus-runtime';
import { waitFor } from './strait-process';

/** a port that was free a moment ago (Prometheus cannot report the port it picked for :0) */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

const running = new Set<PrometheusServer>();

export class PrometheusServer {
  output = '';
  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    readonly url: string,
    readonly exited: Promise<number | null>,
  ) {}

  /** Starts Prometheus scraping `targets` (host:port) as job `strait` every second, with `ruleFiles` evaluated every second. */
  static async start(runtime: PrometheusRuntime, targets: string[], ruleFiles: string[]): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'strait-prometheus-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      stringify({
        global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
        rule_files: ruleFiles,
        scrape_configs: [{ job_name: 'strait', static_configs: [{ targets }] }],
      }),
    );
    const port = await freePort();
    const child = spawn(
      runtime.prometheus,
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (child.pid === undefined) throw new Error(`${runtime.prometheus} did not start`);
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const server = new PrometheusServer(child, child.pid, `http://127.0.0.1:${port}`, exited);
    running.add(server);
    void exited.then(() => running.delete(server));
    const onData = (d: Buffer) => (server.output += d.toString());
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    await waitFor(
      'Prometheus ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${server.output.slice(-2000)}`);
        try {
          return (await fetch(`${server.url}/-/ready`)).status === 200;
        } catch {
          return false;
        }
      },
      60_000,
      250,
    );
    return server;
  }

  async api<T>(path: string): Promise<T> {
    const body = (await (await fetch(`${this.url}/api/v1/${path}`)).json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? body.status}`);
    return body.data;
  }

  async alerts(): Promise<PrometheusAlert[]> {
    return (await this.api<{ alerts: PrometheusAlert[] }>('alerts')).alerts;
  }

  /** an instant query's samples as labels + value */
  async query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    return (await this.api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`query?query=${encodeURIComponent(q)}`)).result;
  }

  /** SIGTERM to the recorded pid; SIGKILL if it has not exited 15 s later */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    process.kill(this.pid, 'SIGTERM');
    const timer = setTimeout(() => this.child.exitCode === null && process.kill(this.pid, 'SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export async function stopPrometheus(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}
