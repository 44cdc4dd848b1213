/**
 * Runs `strait run` as a real child process for integration tests: writes its config, records its pid, and stops
 * exactly that pid (SIGTERM, or SIGKILL for crash tests). Tests register `stopAll` in teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { projectRoot } from '../../bench/harness/kafka-runtime';

const running = new Set<StraitProcess>();

export class StraitProcess {
  readonly child: ChildProcess;
  output = '';
  metricsUrl: Promise<string>;
  /** `strait controller` only: the REST API's base URL */
  restUrl: Promise<string>;
  readonly exited: Promise<number | null>;

  constructor(
    readonly configFile: string,
    readonly role: 'run' | 'controller' | 'worker' = 'run',
  ) {
    this.child = spawn(
      process.execPath,
      [join(projectRoot(), 'dist', 'bin', 'strait.js'), role, '-c', configFile, ...(role === 'run' ? ['--no-status-line'] : [])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, STRAIT_LOG_LEVEL: 'info' },
      },
    );
    running.add(this);
    let resolveUrl: (u: string) => void = () => {};
    this.metricsUrl = new Promise((r) => (resolveUrl = r));
    let resolveRest: (u: string) => void = () => {};
    this.restUrl = new Promise((r) => (resolveRest = r));
    const onData = (d: Buffer) => {
      this.output += d.toString();
      const m = /"metrics":"(http:\/\/[^"]+)\/metrics"/.exec(this.output);
      if (m) resolveUrl(m[1]!);
      const rest = /"rest":"(https?:\/\/[^"]+)"/.exec(this.output);
      if (rest) resolveRest(rest[1]!);
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((res) =>
      this.child.on('exit', (code) => {
        running.delete(this);
        res(code);
      }),
    );
  }

  async status(): Promise<{
    controller: { problems: { route: string; topic: string; code: string; message: string; retryInMs?: number }[] };
    worker: { totals: { records: number; errored: number; paused: number } };
  }> {
    const res = await fetch(`${await this.metricsUrl}/v1/status`);
    return (await res.json()) as never;
  }

  async json<T>(path: string): Promise<T> {
    return (await (await fetch(`${await this.metricsUrl}${path}`)).json()) as T;
  }

  async metrics(): Promise<string> {
    return (await fetch(`${await this.metricsUrl}/metrics`)).text();
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'strait-run-'));
  const file = join(dir, 'strait.yaml');
  const full = { store: { type: 'embedded', path: join(dir, 'store') }, metrics: { port: 0 }, ...config };
  writeFileSync(file, stringify(full));
  return file;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill9()));
}

/** Polls `check` until it returns true or the time runs out. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
