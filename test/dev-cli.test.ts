import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_KAFKA_VERSION, projectRoot } from '../bench/harness/kafka-runtime';
import { isOurs, readState } from '../bench/harness/local-cluster';
import { buildProgram } from '../bin/strait';
import { TEST_DEV_DIR } from './helpers/dir';

const bin = join(projectRoot(), 'dist', 'bin', 'strait.js');
function strait(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: projectRoot(), timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('--help lists every subcommand', async (t) => {
  const r = strait('--help');
  t.equal(r.code, 0);
  const names = buildProgram().commands.map((c) => c.name());
  t.ok(names.length >= 3);
  for (const n of names) t.match(r.out, new RegExp(`\\n  ${n}\\b`), `help lists ${n}`);
  const devHelp = strait('dev', '--help');
  for (const n of ['up', 'down', 'status', 'stop', 'start', 'kill', 'roll', 'classpath', 'run-class'])
    t.match(devHelp.out, new RegExp(`\\n  ${n}\\b`), `dev help lists ${n}`);
});

t.test('the shared test clusters: state.json, status, and a second up refuses', async (t) => {
  const state = readState(TEST_DEV_DIR);
  t.ok(state, 'state.json written');
  const a = state!.clusters.a!;
  t.match(a.bootstrap, /^127\.0\.0\.1:\d+$/);
  t.ok(a.pid > 0 && existsSync(a.logDir));
  t.same(
    a.brokers.map((b) => [b.id, b.pid, b.port, b.dir, b.logDir]),
    [[1, a.pid, a.port, a.dir, a.logDir]],
    'a single-broker cluster lists its one broker in brokers[]',
  );
  t.match(state!.zookeeper?.connect, /^127\.0\.0\.1:\d+$/);
  t.ok(
    readdirSync(join(state!.kafkaHome, 'libs')).some((f) => /^connect-mirror-/.test(f)),
    'MirrorMaker 2 jars fetched',
  );
  t.ok(
    readdirSync(join(state!.kafkaHome, 'libs')).some((f) => /^kafka-tools-/.test(f)),
    'perf tools jars fetched',
  );
  const status = strait('dev', 'status', '--dir', TEST_DEV_DIR, '--json');
  t.equal(status.code, 0);
  t.match(JSON.parse(status.out).running.join(' '), /kafka a .*zookeeper/);
  const again = strait('dev', 'up', '--dir', TEST_DEV_DIR);
  t.equal(again.code, 1, 'second up fails');
  t.match(again.err, /already run/);
  t.equal(readState(TEST_DEV_DIR)!.clusters.a!.pid, a.pid, 'nothing restarted');
});

t.test('up and down of a separate one-cluster deployment stop exactly what they started', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-dev-'));
  const up = strait('dev', 'up', '--clusters', '1', '--dir', dir);
  t.equal(up.code, 0, up.err);
  const state = readState(dir)!;
  const pid = state.clusters.a!.pid;
  t.ok(isOurs(pid, join(state.clusters.a!.dir, 'server.properties')), 'broker runs');
  const down = strait('dev', 'down', '--dir', dir);
  t.equal(down.code, 0);
  t.match(down.out, new RegExp(`kafka a \\(pid ${pid}\\)`));
  t.notOk(isOurs(pid, join(state.clusters.a!.dir, 'server.properties')), 'broker pid is gone');
  t.equal(readState(dir), undefined, 'state removed');
  t.equal(strait('dev', 'down', '--dir', dir).out.trim(), 'nothing was running');
});

t.test('bad arguments and tools', async (t) => {
  const r = strait('dev', 'up', '--clusters', 'x');
  t.equal(r.code, 2);
  t.match(r.err, /--clusters must be a whole number from 1 to 26, got 'x'/);
  const nb = strait('dev', 'up', '--brokers', '0', '--dir', mkdtempSync(join(tmpdir(), 'strait-dev-')));
  t.equal(nb.code, 2);
  t.match(nb.err, /--brokers must be a whole number from 1 to 9, got '0'/);
  const kill = strait('dev', 'kill', 'a', 'x', '--dir', TEST_DEV_DIR);
  t.equal(kill.code, 2);
  t.match(kill.err, /broker-id must be a whole number from 1 to 9, got 'x'/);
  const unknown = strait('dev', 'kill', 'a', '7', '--dir', TEST_DEV_DIR);
  t.equal(unknown.code, 2, 'a broker the cluster does not have is a usage error, and nothing is killed');
  t.match(unknown.err, /cluster a has no broker '7' \(its brokers: 1\)/);
  const v = strait('dev', 'up', '--kafka-version', 'latest', '--dir', mkdtempSync(join(tmpdir(), 'strait-dev-')));
  t.equal(v.code, 2);
  t.match(v.err, /--kafka-version: 'latest' is not a release version/);
  const cp = strait('dev', 'classpath');
  t.match(cp.out.trim(), new RegExp(`kafka-${DEFAULT_KAFKA_VERSION.replace(/\./g, '\\.')}/libs/\\*$`), 'the default version');
});

t.test('config check', async (t) => {
  // the example takes its secrets from references: a copy whose /etc/strait/secrets files live in a temp dir, and
  // the variables it names
  const secrets = mkdtempSync(join(tmpdir(), 'strait-cfg-secrets-'));
  const text = readFileSync(join(projectRoot(), 'examples', 'active-passive.yaml'), 'utf8');
  for (const m of text.matchAll(/\$\{file:\/etc\/strait\/secrets\/([^}]+)\}/g)) writeFileSync(join(secrets, m[1]!), 'file-secret-7f3a9c\n');
  writeFileSync(join(secrets, 'active-passive.yaml'), text.replaceAll('${file:/etc/strait/secrets/', `\${file:${secrets}/`));
  Object.assign(process.env, {
    STRAIT_STANDBY_SASL_PASSWORD: 'env-secret-5b1d2e',
    STRAIT_REST_TOKEN: 'env-token-0123456789abcdef',
    STRAIT_ZK_CREDENTIALS: 'strait:zk-secret-9c8d7e',
  });
  const ok = strait('config', 'check', join(secrets, 'active-passive.yaml'));
  t.equal(ok.code, 0, ok.err);
  t.notMatch(ok.out + ok.err, /secret-7f3a9c|secret-5b1d2e|token-0123456789abcdef|zk-secret-9c8d7e/, 'no resolved secret printed');
  t.match(ok.out, /\$\{env:STRAIT_STANDBY_SASL_PASSWORD\}/, 'references printed as written');
  t.match(ok.err, /valid \(2 clusters, 1 routes\)/);
  const dir = mkdtempSync(join(tmpdir(), 'strait-cfg-'));
  writeFileSync(join(dir, 'c.yaml'), 'clusters: { a: { bootstrap: "h:1" } }\nroutes:\n  - { name: r, source: a, target: z }\n');
  const bad = strait('config', 'check', join(dir, 'c.yaml'));
  t.equal(bad.code, 1);
  t.match(bad.err, /routes\[0\]\.target: unknown cluster alias 'z'/);
});
