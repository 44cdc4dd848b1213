/**
 * The client property policy (shared/client-properties.ts) through config validation: route properties are an
 * allowlist of tuning settings with librdkafka's ranges; every refusal names the field and says why; cluster
 * properties take security settings but never delivery-weakening or strait-owned ones; every profile passes.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterPropertyProblems, refusalOf, routePropertyProblems, TUNING_PROPERTIES } from '../shared/client-properties';
import { validateConfig, validateRoute } from '../shared/config';
import { ConfigError } from '../shared/errors';
import { forwarderSettings, MIN_FORWARDER_BUDGET, partitionShare, PROFILES } from '../shared/kafka/client-settings';
import { projectRoot } from '../bench/harness/kafka-runtime';
import { configProblems } from './helpers/config';

const clusters = { a: { bootstrap: '127.0.0.1:9092' }, b: { bootstrap: '127.0.0.1:9093' } };
const withRoute = (extra: Record<string, unknown>, clusterProps: Record<string, unknown> = {}) => ({
  clusters: { a: clusters.a, b: { ...clusters.b, properties: clusterProps } },
  routes: [{ name: 'r', source: 'a', target: 'b', ...extra }],
});

const problems = configProblems;

t.test('each refused category names the field and why', async (t) => {
  const cases: [string, 'consumer' | 'producer', RegExp][] = [
    ['sasl.kerberos.kinit.cmd', 'consumer', /is refused: it runs or loads code in the strait process \(librdkafka runs it through system\(\)\)/],
    ['plugin.library.paths', 'producer', /runs or loads code .*dlopen/],
    ['ssl.engine.location', 'consumer', /runs or loads code/],
    ['ssl.key.location', 'producer', /points at a file on the strait host/],
    ['sasl.kerberos.keytab', 'consumer', /points at a file/],
    ['acks', 'producer', /weakens what strait guarantees \(strait produces with acks=all\)/],
    ['enable.idempotence', 'producer', /weakens what strait guarantees/],
    ['message.timeout.ms', 'producer', /weakens .*never gives up on a record/],
    ['isolation.level', 'consumer', /weakens .*read_committed/],
    ['auto.offset.reset', 'consumer', /weakens/],
    ['enable.auto.commit', 'consumer', /weakens/],
    ['transactional.id', 'producer', /weakens/],
    ['enable.gapless.guarantee', 'producer', /weakens/],
    ['bootstrap.servers', 'consumer', /is set by strait itself/],
    ['group.id', 'consumer', /is set by strait itself/],
    ['client.id', 'producer', /is set by strait itself/],
    ['security.protocol', 'consumer', /security\/identity setting; it belongs in the operator's clusters\.<alias>\.properties/],
    ['sasl.password', 'producer', /security\/identity setting/],
  ];
  for (const [name, side, why] of cases) {
    const ps = problems(withRoute({ [side]: { [name]: 'x' } }));
    const path = name.includes('.') ? `routes[0].${side}["${name}"]` : `routes[0].${side}.${name}`;
    t.equal(ps.length, 1, `${name}: one problem`);
    t.equal(ps[0]?.path, path, `${name}: the path names the field`);
    t.match(ps[0]?.message, why, `${name}: says why`);
    t.notMatch(ps[0]?.message ?? '', /'x'/, `${name}: the refused value is not echoed`);
  }
});

t.test('unknown names: not an allowed tuning property, with near allowed names', async (t) => {
  const [p] = problems(withRoute({ producer: { 'linger.msec': 5 } }));
  t.equal(p?.path, 'routes[0].producer["linger.msec"]');
  t.match(p?.message, /is not an allowed tuning property; did you mean 'linger\.ms'/);
  const [q] = problems(withRoute({ consumer: { 'fetch.max.byte': 5 } }));
  t.match(q?.message, /did you mean 'fetch\.max\.bytes'/);
  t.notMatch(q?.message ?? '', /linger/, 'a consumer is offered consumer properties');
  const [side] = problems(withRoute({ consumer: { 'linger.ms': 5 } }));
  t.match(side?.message, /is a producer property; a route's consumer cannot set it/);
});

t.test('allowed tuning properties: values checked against librdkafka ranges', async (t) => {
  t.same(
    problems(
      withRoute({
        consumer: { 'fetch.min.bytes': 1024, 'fetch.wait.max.ms': '100', 'check.crcs': true },
        producer: { 'linger.ms': 20, 'batch.size': 65536, 'compression.level': 3, 'socket.nagle.disable': 'true' },
      }),
    ),
    [],
  );
  const ps = problems(
    withRoute({
      producer: { 'linger.ms': 'soon', 'max.in.flight.requests.per.connection': 6, 'compression.level': 13 },
      consumer: { 'client.rack': 'rack 1; rm -rf /' },
    }),
  );
  const at = (p: string) => ps.find((x) => x.path === p)?.message ?? '';
  t.match(at('routes[0].producer["linger.ms"]'), /must be an integer 0\.\.900000, got 'soon'/);
  t.match(
    at('routes[0].producer["max.in.flight.requests.per.connection"]'),
    /must be 1\.\.5 \(the idempotent producer keeps order only with at most 5 requests in flight\), got 6/,
  );
  t.match(at('routes[0].producer["compression.level"]'), /must be -1\.\.12, got 13/);
  t.match(at('routes[0].consumer["client.rack"]'), /must be a rack name/);
});

t.test('REST bodies get the same policy, with body.* paths', async (t) => {
  const config = validateConfig({ clusters, routes: [] });
  let err: unknown;
  try {
    validateRoute({ name: 'x', source: 'a', target: 'b', consumer: { 'sasl.kerberos.kinit.cmd': 'touch /tmp/x' }, producer: { acks: 0 } }, config);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError);
  const ps = (err as ConfigError).problems;
  t.match(ps.find((p) => p.path === 'body.consumer["sasl.kerberos.kinit.cmd"]')?.message, /runs or loads code/);
  t.match(ps.find((p) => p.path === 'body.producer.acks')?.message, /weakens what strait guarantees/);
  t.notMatch((err as Error).message, /touch/, 'the command is not echoed');
});

t.test('cluster properties: security settings yes, delivery-weakening and strait-owned no', async (t) => {
  t.same(
    problems(
      withRoute(
        {},
        {
          'security.protocol': 'SASL_SSL',
          'sasl.mechanism': 'GSSAPI',
          'sasl.kerberos.kinit.cmd': 'kinit -k -t /etc/k.keytab strait',
          'sasl.kerberos.keytab': '/etc/k.keytab',
          'ssl.ca.location': '/etc/ca.pem',
          'linger.ms': 10,
          debug: 'security',
        },
      ),
    ),
    [],
    'the operator may configure TLS, SASL and Kerberos',
  );
  const ps = problems(withRoute({}, { acks: 1, 'enable.idempotence': false, 'isolation.level': 'read_uncommitted', 'group.id': 'other', 'linger.ms': -1 }));
  t.same(ps.map((p) => p.path).sort(), [
    'clusters.b.properties.acks',
    'clusters.b.properties["enable.idempotence"]',
    'clusters.b.properties["group.id"]',
    'clusters.b.properties["isolation.level"]',
    'clusters.b.properties["linger.ms"]',
  ]);
  t.match(ps.find((p) => p.path === 'clusters.b.properties.acks')?.message, /weakens what strait guarantees/);
  t.match(ps.find((p) => p.path === 'clusters.b.properties["group.id"]')?.message, /is set by strait itself/);
});

t.test('every profile setting is an allowed tuning property (and in range)', async (t) => {
  for (const [name, p] of Object.entries(PROFILES)) {
    t.same(routePropertyProblems('consumer', p.consumer, `profile ${name} consumer`), [], `${name}: consumer`);
    t.same(routePropertyProblems('producer', p.producer, `profile ${name} producer`), [], `${name}: producer`);
    t.same(clusterPropertyProblems({ ...p.consumer, ...p.producer }, name), [], `${name}: fine as cluster properties too`);
  }
});

t.test('the allowlist and the refusals agree with librdkafka CONFIGURATION.md', async (t) => {
  const doc = readFileSync(join(projectRoot(), 'node_modules', 'node-rdkafka', 'deps', 'librdkafka', 'CONFIGURATION.md'), 'utf8');
  const known = new Map<string, string>();
  for (const line of doc.split('\n')) {
    const m = /^([a-z_][a-z0-9._]*)\s+\|\s*([CP*])\s*\|\s*([^|]*)\|/.exec(line);
    if (m) known.set(m[1]!, m[3]!.trim());
  }
  t.ok(known.size > 150, `parsed ${known.size} properties`);
  for (const [name, rule] of Object.entries(TUNING_PROPERTIES)) {
    t.ok(known.has(name), `${name} is a librdkafka property`);
    t.equal(refusalOf(name), undefined, `${name} is not also refused`);
    if (rule.kind === 'int') {
      const [lo, hi] = (known.get(name) ?? '').split('..').map((x) => Number(x.trim()));
      t.ok(rule.min >= lo! && rule.max <= hi!, `${name}: ${rule.min}..${rule.max} within librdkafka's ${lo}..${hi}`);
    }
  }
  for (const name of [
    'sasl.kerberos.kinit.cmd',
    'plugin.library.paths',
    'ssl.engine.location',
    'acks',
    'enable.idempotence',
    'message.timeout.ms',
    'isolation.level',
    'auto.offset.reset',
    'enable.auto.commit',
    'transactional.id',
  ]) {
    t.ok(known.has(name), `${name} exists in librdkafka`);
  }
});

t.test("exactly-once: a route's partitions on a pool thread split its share of worker.inflightBytes, prefetch included", async (t) => {
  const MiB = 1 << 20;
  const config = (profile: string, consumer: Record<string, unknown> = {}) =>
    validateConfig({ ...withRoute({ delivery: 'exactly-once', profile, consumer }), worker: { threads: 2, inflightBytes: 64 * MiB } });
  const share = (profile: string, n: number, consumer: Record<string, unknown> = {}) => {
    const c = config(profile, consumer);
    return partitionShare(forwarderSettings(c, c.routes[0]!, 'w'), n);
  };
  // the thread's share is 32 MiB: split 4 ways
  t.same(share('default', 4), { inflightBytes: 8 * MiB, consumer: { ...share('default', 4).consumer, 'queued.max.messages.kbytes': 8 * 1024 } });
  t.equal(share('default', 1).inflightBytes, 32 * MiB, 'one partition keeps the whole share');
  t.equal(share('default', 0).inflightBytes, 32 * MiB, 'no partition counted yet: as one');
  t.equal(share('default', 1000).inflightBytes, MIN_FORWARDER_BUDGET, 'never under the floor');
  t.equal(share('default', 1000).consumer['queued.max.messages.kbytes'], MIN_FORWARDER_BUDGET / 1024, 'nor the prefetch');
  // the wan profile asks for 256 MiB of prefetch per consumer: capped at the partition's share
  t.equal(share('wan', 4).consumer['queued.max.messages.kbytes'], 8 * 1024, "a profile's larger prefetch is capped");
  t.equal(share('default', 4, { 'queued.max.messages.kbytes': 2048 }).consumer['queued.max.messages.kbytes'], 2048, "a route's smaller prefetch is kept");
  t.equal(share('default', 4).consumer['bootstrap.servers'], '127.0.0.1:9092', 'the rest of the consumer settings stay');
});
