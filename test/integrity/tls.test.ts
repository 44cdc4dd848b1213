/**
 * Security as deployed: two 1-broker clusters of this file's own (`strait dev up --tls`: SSL with client
 * certificates required, SASL_SSL with SCRAM-SHA-512, SASL_PLAINTEXT with SCRAM-SHA-256, a CA made on the spot).
 * strait replicates over each, both ways (mTLS with an encrypted key); examples/active-passive.yaml runs as written
 * with only addresses, the CA path and secrets changed; and each usual mistake (wrong CA, no client certificate, an
 * expired or foreign one, an unreadable CA file, TLS to a plaintext port, a wrong SCRAM password, a host name the
 * certificate does not carry) is an error naming the cluster, the field and the cause, with no secret in any output.
 * The clusters are stopped by their recorded pids in teardown.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parse, stringify } from 'yaml';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import { issueCertificate, makeCertificateAuthority } from '../../bench/harness/dev-certificates';
import * as dev from '../../bench/harness/local-cluster';
import { createTopic, endOffsets, produce, readAll, sameRecord, uniqueName, type TestRecord } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

const dir = mkdtempSync(join(tmpdir(), 'strait-tls-'));
let state: dev.DevState;
const password = dev.DEV_SASL_USERS.strait!;

t.before(async () => {
  const started = Date.now();
  state = await dev.up({ clusters: 2, tls: true, zookeeper: true, dir, kafkaVersion: process.env.STRAIT_KAFKA_VERSION, log: (l) => t.comment(l) });
  t.comment(`TLS clusters ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
t.teardown(async () => {
  await stopAll();
  await dev.down({ dir });
  rmSync(dir, { recursive: true, force: true });
});

function cluster(alias: string): dev.ClusterState & { tls: dev.ClusterTls } {
  const c = state.clusters[alias]!;
  if (!c.tls) throw new Error(`cluster ${alias} has no TLS listeners`);
  return c as dev.ClusterState & { tls: dev.ClusterTls };
}

/** strait's view of a cluster through one of its secured listeners; the SCRAM password from the environment. */
function through(alias: string, listener: 'mtls' | 'scram512' | 'scram256'): { bootstrap: string; properties: Record<string, string> } {
  const tls = cluster(alias).tls;
  process.env.TLS_TEST_SCRAM_PASSWORD = password;
  const scram = { 'sasl.username': 'strait', 'sasl.password': '${env:TLS_TEST_SCRAM_PASSWORD}' };
  switch (listener) {
    case 'mtls':
      return {
        bootstrap: tls.ssl,
        properties: {
          'security.protocol': 'SSL',
          'ssl.ca.location': tls.caLocation,
          'ssl.certificate.location': tls.certificateLocation,
          'ssl.key.location': tls.keyLocation,
        },
      };
    case 'scram512':
      return {
        bootstrap: tls.saslSsl,
        properties: { 'security.protocol': 'SASL_SSL', 'ssl.ca.location': tls.caLocation, 'sasl.mechanisms': 'SCRAM-SHA-512', ...scram },
      };
    case 'scram256':
      return { bootstrap: tls.saslPlaintextScram, properties: { 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanisms': 'SCRAM-SHA-256', ...scram } };
  }
}

function records(n: number, partitions: number): TestRecord[] {
  // recent timestamps: the brokers' time-based retention (7 days, first checked 30 s after start) would delete
  // records stamped long ago from the source before strait reads them
  const base = Date.now() - 60_000;
  return Array.from({ length: n }, (_, i) => ({
    partition: i % partitions,
    key: i % 10 === 0 ? null : Buffer.from(`k${i}`),
    value: Buffer.from(`value-${i}-${'x'.repeat(i % 50)}`),
    headers: [{ key: 'h', value: Buffer.from(String(i)) }],
    timestamp: base + i,
  }));
}

/** Waits until `target` holds every record of `topic` on `source`, then compares them record by record. */
async function assertMirrored(
  t: Test,
  source: string,
  topic: string,
  target: string,
  targetTopic: string,
  partitions: number,
  total: number,
  processes: StraitProcess[],
): Promise<void> {
  const src = dev.readState(dir)!.clusters[source]!.bootstrap;
  const dst = dev.readState(dir)!.clusters[target]!.bootstrap;
  try {
    await waitFor(
      `${total} records in ${targetTopic} on ${target}`,
      async () => {
        try {
          return (await endOffsets(dst, targetTopic, partitions)).reduce((x, y) => x + y, 0) >= total;
        } catch {
          return false;
        }
      },
      90_000,
      500,
    );
  } catch (e) {
    for (const p of processes) {
      t.comment(`strait ${p.role} output:\n${p.output.split('\n').slice(-60).join('\n')}`);
      t.comment(`strait ${p.role} /v1/status: ${await p.json('/v1/status').then(JSON.stringify, (x: Error) => x.message)}`);
    }
    throw e;
  }
  const [a, b] = await Promise.all([readAll(src, topic, partitions, total), readAll(dst, targetTopic, partitions, total)]);
  t.equal(b.length, total, `${total} records on the target`);
  const mismatched = a.filter((r) => {
    const same = b.find((x) => x.partition === r.partition && x.offset === r.offset);
    return same === undefined || !sameRecord(r, same);
  });
  t.equal(mismatched.length, 0, 'every record byte-identical, same partition and offset');
}

type Listener = 'mtls' | 'scram512' | 'scram256';
type Side = [string, Listener] | [string, Listener, { bootstrap: string; properties: Record<string, string> }];

async function replicate(t: Test, from: Side, to: Side, secrets: string[] = []): Promise<void> {
  const topic = uniqueName('tls');
  await createTopic(cluster(from[0]).bootstrap, topic, 2);
  await produce(cluster(from[0]).bootstrap, topic, records(300, 2));
  const strait = new StraitProcess(
    writeConfig({
      clusters: { src: from[2] ?? through(from[0], from[1]), dst: to[2] ?? through(to[0], to[1]) },
      routes: [{ name: 'secure', source: 'src', target: 'dst', topics: { include: [topic] } }],
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  await assertMirrored(t, from[0], topic, to[0], `src.${topic}`, 2, 300, [strait]);
  t.same((await strait.status()).controller.problems, [], 'no problems reported');
  for (const secret of [password, ...secrets]) t.notOk(strait.output.includes(secret), 'no password (SCRAM, key) appears in the output');
  t.equal(await strait.stop(), 0, 'stops cleanly');
}

t.test('SASL_SSL/SCRAM-SHA-512 source -> mTLS target', (t) => replicate(t, ['a', 'scram512'], ['b', 'mtls']));

t.test('mTLS source with an encrypted key -> SASL_SSL/SCRAM-SHA-512 target (the reverse)', async (t) => {
  // the client key encrypted (PKCS#8, AES-256), its password from the environment
  const keyPassword = 'key-password-8f2c4a';
  const encrypted = join(dir, 'client-encrypted.key');
  const r = spawnSync(
    'openssl',
    ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', cluster('b').tls.keyLocation, '-out', encrypted, '-passout', 'env:TLS_TEST_KEY_PASSWORD'],
    { env: { ...process.env, TLS_TEST_KEY_PASSWORD: keyPassword }, encoding: 'utf8' },
  );
  t.equal(r.status, 0, r.stderr);
  t.match(readFileSync(encrypted, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
  process.env.TLS_TEST_KEY_PASSWORD = keyPassword;
  const mtls = through('b', 'mtls');
  const source = {
    bootstrap: mtls.bootstrap,
    properties: { ...mtls.properties, 'ssl.key.location': encrypted, 'ssl.key.password': '${env:TLS_TEST_KEY_PASSWORD}' },
  };
  await replicate(t, ['b', 'mtls', source], ['a', 'scram512'], [keyPassword]);
});

t.test('SASL_PLAINTEXT/SCRAM-SHA-256 both ends', (t) => replicate(t, ['a', 'scram256'], ['b', 'scram256']));

t.test('examples/active-passive.yaml as written: only addresses, the CA path and the secrets changed', async (t) => {
  // inside the test's folder, which teardown removes whatever happens here
  const work = mkdtempSync(join(dir, 'example-'));
  const text = readFileSync(join(projectRoot(), 'examples', 'active-passive.yaml'), 'utf8');
  const primary = cluster('a');
  const standby = cluster('b');
  const z = state.zookeeper!;
  // the substitutions an operator makes: where the brokers, ZooKeeper and the ports are, where the CA file is,
  // and where the secrets come from (the password file's path; the variables the example names)
  writeFileSync(join(work, 'primary-sasl-password'), `${password}\n`);
  const [restPort, controllerMetrics, workerMetrics] = [await dev.freePort(), await dev.freePort(), await dev.freePort()];
  const adapted = text
    .replace(/bootstrap: kafka-primary-1\.dc1\.example:9093,kafka-primary-2\.dc1\.example:9093/, `bootstrap: ${primary.tls.saslSsl}`)
    .replace(/bootstrap: kafka-standby-1\.dc2\.example:9093/, `bootstrap: ${standby.tls.saslSsl}`)
    .replaceAll('/etc/strait/tls/ca.pem', primary.tls.caLocation)
    .replace('${file:/etc/strait/secrets/primary-sasl-password}', `\${file:${join(work, 'primary-sasl-password')}}`)
    .replace(/connect: zk-1\.dc2\.example:2181,zk-2\.dc2\.example:2181,zk-3\.dc2\.example:2181/, `connect: ${z.connect}`)
    .replace('port: 8470', `port: ${restPort}`);
  // every other line is as written
  const changed = adapted.split('\n').filter((l, i) => l !== text.split('\n')[i]);
  t.equal(changed.length, 7, `7 lines changed: ${changed.join(' | ')}`);
  t.same(Object.keys(parse(adapted) as object), Object.keys(parse(text) as object), 'same sections');
  // controller and worker run on different hosts in production; here they share one, so each gets its metrics port
  const file = join(work, 'controller.yaml');
  const workerFile = join(work, 'worker.yaml');
  writeFileSync(file, adapted.replace('metrics: { port: 9464 }', `metrics: { port: ${controllerMetrics} }`));
  writeFileSync(workerFile, adapted.replace('metrics: { port: 9464 }', `metrics: { port: ${workerMetrics} }`));
  const token = 'example-token-5d1c0f9a2b7e';
  Object.assign(process.env, { STRAIT_STANDBY_SASL_PASSWORD: password, STRAIT_REST_TOKEN: token, STRAIT_ZK_CREDENTIALS: z.auth.credentials });

  const topic = uniqueName('payments.tls');
  await createTopic(primary.bootstrap, topic, 3);
  await createTopic(primary.bootstrap, `${topic}.tmp`, 1);
  await produce(primary.bootstrap, topic, records(600, 3));
  await produce(primary.bootstrap, `${topic}.tmp`, records(10, 1));
  const controller = new StraitProcess(file, 'controller');
  const worker = new StraitProcess(workerFile, 'worker');
  await assertMirrored(t, 'a', topic, 'b', `primary.${topic}`, 3, 600, [controller, worker]);
  const topics = await fetch(`http://127.0.0.1:${restPort}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(topics.status, 200, 'the REST API answers with the token from the environment');
  t.notOk(stringify(await topics.json()).includes(`primary.${topic}.tmp`), 'the excluded .tmp topic is not replicated');
  const output = controller.output + worker.output;
  for (const secret of [password, token, z.auth.credentials.split(':')[1]!]) t.notOk(output.includes(secret), 'no secret in the output');
  t.equal(await worker.stop(), 0);
  t.equal(await controller.stop(), 0);
  rmSync(work, { recursive: true, force: true });
});

t.test('the usual mistakes: each names the cluster, the field and the cause, and prints no secret', async (t) => {
  const certs = join(dir, 'mistakes');
  const otherCa = makeCertificateAuthority(certs, 'other');
  const ca = { certificate: state.tls!.caLocation, key: state.tls!.caKeyLocation };
  const expired = issueCertificate(ca, certs, 'expired-client', { cn: 'strait', usage: 'client', expired: true });
  const foreign = issueCertificate(otherCa, certs, 'foreign-client', { cn: 'strait', usage: 'client' });
  const key = readFileSync(state.tls!.keyLocation, 'utf8').split('\n').slice(1, -2).join('');
  process.env.TLS_TEST_WRONG_PASSWORD = 'wrong-password-3e9a1c';
  const mtls = through('b', 'mtls');
  const scram = through('b', 'scram512');
  const hostname = scram.bootstrap.replace('127.0.0.1', '127.1');
  // one strait process, one route per mistake (all from a good source); each broken cluster is reported on its own
  const broken: Record<string, { bootstrap: string; properties: Record<string, string> }> = {
    'wrong-ca': { ...scram, properties: { ...scram.properties, 'ssl.ca.location': otherCa.certificate } },
    'no-cert': { bootstrap: mtls.bootstrap, properties: { 'security.protocol': 'SSL', 'ssl.ca.location': mtls.properties['ssl.ca.location']! } },
    'expired-cert': { ...mtls, properties: { ...mtls.properties, 'ssl.certificate.location': expired.certificate, 'ssl.key.location': expired.key } },
    'wrong-password': { ...scram, properties: { ...scram.properties, 'sasl.password': '${env:TLS_TEST_WRONG_PASSWORD}' } },
    // 127.1 is 127.0.0.1 to the resolver but not a name the broker's certificate carries (127.0.0.1, localhost)
    hostname: { ...scram, bootstrap: hostname },
    'foreign-cert': { ...mtls, properties: { ...mtls.properties, 'ssl.certificate.location': foreign.certificate, 'ssl.key.location': foreign.key } },
    'no-ca-file': { ...scram, properties: { ...scram.properties, 'ssl.ca.location': join(certs, 'no-such-ca.pem') } },
    'plaintext-port': { bootstrap: cluster('b').bootstrap, properties: { 'security.protocol': 'SSL', 'ssl.ca.location': mtls.properties['ssl.ca.location']! } },
  };
  const strait = new StraitProcess(
    writeConfig({
      clusters: { good: through('a', 'scram512'), ...broken },
      routes: Object.keys(broken).map((alias) => ({ name: `to-${alias}`, source: 'good', target: alias, topics: { include: ['nothing-to-replicate'] } })),
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  const problems = async () => (await strait.status()).controller.problems;
  const since = Date.now();
  await waitFor('a problem for each broken cluster', async () => (await problems()).length >= Object.keys(broken).length, 90_000, 500);
  t.comment(`all ${Object.keys(broken).length} problems reported ${((Date.now() - since) / 1000).toFixed(1)} s after the start`);
  const messageOf = async (alias: string, code: string) => {
    const p = (await problems()).find((x) => x.route === `to-${alias}`);
    t.equal(p?.code, code, `${alias}: ${code}`);
    return p?.message ?? '';
  };
  const bs = (s: string) => s.replace(/[.]/g, '\\.');
  const prefix = (alias: string, bootstrap: string) => `^cluster '${alias}' \\(${bs(bootstrap)}\\): `;

  t.match(
    await messageOf('wrong-ca', 'STRAIT_CLUSTER_TLS'),
    new RegExp(
      `${prefix('wrong-ca', scram.bootstrap)}TLS connection failed: certificate verify failed: the broker's certificate \\(CN=localhost, issued by CN=strait-dev CA\\) is not signed by the CA in ${bs(otherCa.certificate)}; check clusters\\.wrong-ca\\.properties\\["ssl\\.ca\\.location"\\]$`,
    ),
    'wrong CA',
  );
  t.match(
    await messageOf('no-cert', 'STRAIT_CLUSTER_TLS'),
    new RegExp(
      `${prefix('no-cert', mtls.bootstrap)}TLS connection failed: the broker requires a client certificate \\(mTLS\\) and none is configured; set ssl\\.certificate\\.location and ssl\\.key\\.location; check clusters\\.no-cert\\.properties\\["ssl\\.certificate\\.location"\\]$`,
    ),
    'missing client certificate',
  );
  t.match(
    await messageOf('expired-cert', 'STRAIT_CLUSTER_TLS'),
    new RegExp(
      `${prefix('expired-cert', mtls.bootstrap)}TLS connection failed: the client certificate \\(CN=strait\\) expired on \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z; the broker refuses it; check clusters\\.expired-cert\\.properties\\["ssl\\.certificate\\.location"\\]$`,
    ),
    'expired client certificate',
  );
  t.match(
    await messageOf('wrong-password', 'STRAIT_CLUSTER_AUTH'),
    new RegExp(
      `${prefix('wrong-password', scram.bootstrap)}authentication failed \\(SASL_SSL/SCRAM-SHA-512 as 'strait'\\): the broker refused the user name or password \\(a wrong sasl\\.password, or no SCRAM-SHA-512 credential for 'strait' on this cluster\\); the broker said: .*invalid credentials.*; check clusters\\.wrong-password\\.properties\\["sasl\\.password"\\]$`,
    ),
    'wrong SCRAM password',
  );
  t.match(
    await messageOf('hostname', 'STRAIT_CLUSTER_TLS'),
    new RegExp(
      `${prefix('hostname', hostname)}TLS connection failed: hostname mismatch: the broker's certificate is for IP Address:127\\.0\\.0\\.1, DNS:localhost, not for '127\\.1'; .*check clusters\\.hostname\\.bootstrap$`,
    ),
    'hostname mismatch',
  );
  t.match(
    await messageOf('foreign-cert', 'STRAIT_CLUSTER_TLS'),
    new RegExp(
      `${prefix('foreign-cert', mtls.bootstrap)}TLS connection failed: the broker refused the client certificate \\(CN=strait, issued by CN=other CA\\): it is not signed by a CA the broker trusts, or the broker revoked it; check clusters\\.foreign-cert\\.properties\\["ssl\\.certificate\\.location"\\]$`,
    ),
    'client certificate from a CA the broker does not trust',
  );
  t.match(
    await messageOf('no-ca-file', 'STRAIT_CLUSTER_TLS'),
    new RegExp(
      `${prefix('no-ca-file', scram.bootstrap)}TLS connection failed: cannot read the CA certificate file ${bs(join(certs, 'no-such-ca.pem'))} \\(ENOENT\\); check clusters\\.no-ca-file\\.properties\\["ssl\\.ca\\.location"\\]$`,
    ),
    'unreadable CA file',
  );
  const plain = cluster('b').bootstrap;
  t.match(
    await messageOf('plaintext-port', 'STRAIT_CLUSTER_TLS'),
    new RegExp(
      `${prefix('plaintext-port', plain)}TLS connection failed: the broker at ${bs(plain)} did not complete a TLS handshake \\([A-Z_]+\\); is ${bs(plain)} a TLS listener \\(security\\.protocol SSL\\)\\?; check clusters\\.plaintext-port\\.properties\\["security\\.protocol"\\]$`,
    ),
    'TLS to a plaintext port',
  );
  // each is also an error-level log line
  for (const p of await problems()) t.ok(strait.output.includes(JSON.stringify(p.message).slice(1, -1)), `${p.route}: logged`);
  t.equal(await strait.stop(), 0, 'stops cleanly');
  for (const [what, secret] of [
    ['the SCRAM password', password],
    ['the wrong password', 'wrong-password-3e9a1c'],
    ['the client key', key],
  ] as const) {
    t.notOk(strait.output.includes(secret), `${what} never appears in the output`);
  }
});
