/**
 * The Prometheus runtime the alert-rule tests use: `promtool` and `prometheus`, kept in the same cache as the Kafka
 * jars (bench/harness/kafka-runtime.ts). On Debian (the platform scripts/system-deps.sh sets up) they come from
 * Debian's `prometheus` package, downloaded with `apt-get download` and unpacked with `dpkg-deb -x` — no root, nothing
 * installed, no service started. Elsewhere they are built from the pinned Go module with the Go toolchain on PATH,
 * without service discovery (`remove_all_sd`: the tests scrape a static target; the cloud/Kubernetes plugins would
 * multiply the build time) and without the web UI assets (the HTTP API is all the tests read).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StraitError } from '../../shared/errors';
import { withDirLock } from './dir-lock';
import { cacheDir } from './kafka-runtime';

/** the Go module version of github.com/prometheus/prometheus (Prometheus 3.x tags its Go module v0.3xx.y) */
export const PROMETHEUS_MODULE_VERSION = 'v0.316.0';
const MODULE = 'github.com/prometheus/prometheus';
const BUILD_TAGS = 'remove_all_sd';

export interface PrometheusRuntime {
  version: string;
  promtool: string;
  prometheus: string;
}

/** `go` from PATH, else the official tarball's default location; `STRAIT_GO` names another. */
function findGo(): string {
  const candidates = [process.env.STRAIT_GO, 'go', '/usr/local/go/bin/go'].filter((c): c is string => c !== undefined && c !== '');
  for (const go of candidates) {
    const r = spawnSync(go, ['version'], { stdio: 'ignore' });
    if (r.error === undefined && r.status === 0) return go;
  }
  throw new StraitError(
    'STRAIT_DEV_MISSING_TOOL',
    `go was not found (tried ${candidates.join(', ')}): promtool and prometheus are built from source with Go; install Go 1.26.7 or newer (what the module asks for) from https://go.dev/dl (or set STRAIT_GO to its go binary)`,
  );
}

function goInstall(go: string, gobin: string): Promise<void> {
  const args = ['install', '-tags', BUILD_TAGS, `${MODULE}/cmd/promtool@${PROMETHEUS_MODULE_VERSION}`, `${MODULE}/cmd/prometheus@${PROMETHEUS_MODULE_VERSION}`];
  // static binaries (no C toolchain needed); the toolchain that is installed, never one downloaded behind the caller's back
  const env = { ...process.env, GOBIN: gobin, CGO_ENABLED: '0', GOTOOLCHAIN: 'local' };
  return new Promise((resolve, reject) => {
    const child = spawn(go, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => reject(new StraitError('STRAIT_DEV_FETCH_FAILED', `${go} could not be started: ${e.message}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) return resolve();
      const tail = out
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('go: downloading'))
        .slice(-5)
        .join(' | ');
      reject(new StraitError('STRAIT_DEV_FETCH_FAILED', `${go} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${tail}`));
    });
  });
}

/** Debian's package, downloaded and unpacked into `partial` (bin/promtool, bin/prometheus); false when apt is not there. */
function fromDebian(partial: string, log: (line: string) => void): boolean {
  const has = (tool: string, arg: string) => spawnSync(tool, [arg], { stdio: 'ignore' }).status === 0;
  if (!has('apt-get', '--version') || !has('dpkg-deb', '--version')) return false;
  const work = mkdtempSync(join(cacheDir(), 'prometheus-deb-'));
  try {
    const dl = spawnSync('apt-get', ['download', '-qq', 'prometheus'], { cwd: work, encoding: 'utf8', timeout: 300_000 });
    const deb = readdirSync(work).find((f) => /^prometheus_.*\.deb$/.test(f));
    if (dl.status !== 0 || deb === undefined) {
      log(`apt-get download prometheus failed (${(dl.stderr || dl.error?.message || `exit ${dl.status}`).trim().slice(0, 300)}); building from source instead`);
      return false;
    }
    const x = spawnSync('dpkg-deb', ['-x', join(work, deb), join(work, 'root')], { encoding: 'utf8' });
    if (x.status !== 0) throw new StraitError('STRAIT_DEV_FETCH_FAILED', `dpkg-deb -x ${deb} failed: ${x.stderr.trim()}`);
    mkdirSync(partial, { recursive: true });
    for (const tool of ['promtool', 'prometheus']) copyFileSync(join(work, 'root', 'usr', 'bin', tool), join(partial, tool));
    log(`unpacked promtool and prometheus from Debian's ${deb}`);
    return true;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Returns the cached promtool and prometheus, taking them from Debian's package or building them with `go install`
 * when absent (minutes the first time on
 * a cold Go build cache; nothing afterwards). The binaries land in a scratch folder renamed into place only after the
 * build succeeded, so an interrupted build is redone.
 */
export async function ensurePrometheus(log: (line: string) => void = () => {}, timeoutMs = 1_440_000): Promise<PrometheusRuntime> {
  // one cache folder whatever the source; `version` is what the binary says it is
  const home = join(cacheDir(), 'prometheus');
  const bin = join(home, 'bin');
  const runtime = { version: '', promtool: join(bin, 'promtool'), prometheus: join(bin, 'prometheus') };
  const ready = () => existsSync(runtime.promtool) && existsSync(runtime.prometheus);
  const versioned = () => ({
    ...runtime,
    version: /version (\S+)/.exec(spawnSync(runtime.promtool, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown',
  });
  if (ready()) return versioned();
  mkdirSync(home, { recursive: true });
  // one build at a time per cache: tap runs two test files at once
  const lock = join(home, 'build.lock');
  await withDirLock(
    lock,
    async () => {
      if (ready()) return; // another process built it while this one waited
      const partial = join(home, 'bin.partial');
      rmSync(partial, { recursive: true, force: true });
      const started = Date.now();
      if (!fromDebian(partial, log)) {
        const go = findGo();
        log(`building promtool and prometheus ${PROMETHEUS_MODULE_VERSION} with ${go} (-tags ${BUILD_TAGS}) into ${bin} ...`);
        await goInstall(go, partial);
      }
      rmSync(bin, { recursive: true, force: true });
      renameSync(partial, bin);
      log(`promtool and prometheus ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    },
    timeoutMs,
    (owner) => new StraitError('STRAIT_DEV_FETCH_FAILED', `the Prometheus build in ${home} is still held by pid ${owner} (${lock}) after ${timeoutMs} ms`),
  );
  if (!ready()) throw new StraitError('STRAIT_DEV_FETCH_FAILED', `${bin} lacks promtool or prometheus after the download or build`);
  return versioned();
}
