import t from 'tap';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { Piscina } from 'piscina';
import Kafka from 'node-rdkafka';
import { FORWARDER_DEFAULTS, LATENCY_BUCKETS_MS, forwarderOptions, loadNative } from '../native';

const REQUIRED = ['gzip', 'snappy', 'lz4', 'zstd', 'ssl', 'sasl', 'sasl_plain', 'sasl_scram'];

t.test('node-rdkafka is built with every codec, SSL and SASL', async (t) => {
  for (const f of REQUIRED) t.ok(Kafka.features.includes(f), `node-rdkafka features include ${f} (${Kafka.features.join(',')})`);
});

t.test('the addon reaches librdkafka in the main thread and in piscina threads at the same time', async (t) => {
  const native = loadNative();
  t.match(native.version(), /^\d+\.\d+\.\d+/, 'main thread: rd_kafka_version_str()');
  t.equal(native.version(), Kafka.librdkafkaVersion, 'the addon links the same librdkafka node-rdkafka built');
  for (const f of REQUIRED) t.ok(native.features().split(',').includes(f), `addon librdkafka has ${f}`);
  const pool = new Piscina({ filename: join(__dirname, 'fixtures', 'native-thread.js'), minThreads: 2, maxThreads: 2, idleTimeout: Infinity });
  try {
    const results = await Promise.all([pool.run({}), pool.run({}), pool.run({}), pool.run({})]);
    // the main thread uses the addon while the pool threads do
    t.equal(native.version(), results[0].version);
    for (const r of results) {
      t.equal(r.version, native.version(), 'pool thread: same librdkafka version');
      t.not(r.threadId, threadId, 'ran off the main thread');
    }
    t.ok(new Set(results.map((r) => r.threadId)).size >= 1);
  } finally {
    await pool.destroy();
  }
});

t.test('a Forwarder can be built and closed in the main thread; bad client properties name the field', async (t) => {
  const native = loadNative();
  const fw = new native.Forwarder({ consumer: { 'bootstrap.servers': '127.0.0.1:9', 'group.id': 'g' }, producer: { 'bootstrap.servers': '127.0.0.1:9' } });
  t.equal(fw.pump(10), 0);
  t.same(fw.progress().partitions, []);
  fw.close(0);
  t.throws(() => fw.pump(1), /closed/);
  t.throws(() => new native.Forwarder({ consumer: { 'no.such.property': 1 }, producer: {} }), /consumer\.no\.such\.property/);
});

t.test('the addon takes complete options only: TypeScript fills every default, the addon names a missing one', async (t) => {
  const filled = forwarderOptions({ consumer: {}, producer: {}, provenance: { localOrigin: 'a', dropOrigin: 'b' } });
  t.same(
    { inflightBytes: filled.inflightBytes, batchSize: filled.batchSize, compression: filled.compression, onGap: filled.onGap, provenance: filled.provenance },
    {
      inflightBytes: FORWARDER_DEFAULTS.inflightBytes,
      batchSize: FORWARDER_DEFAULTS.batchSize,
      compression: 'none',
      onGap: 'continue',
      provenance: { header: 'strait.origin', localOrigin: 'a', dropOrigin: 'b', maxHops: 8 },
    },
  );
  t.same(filled.latencyBucketsMs, LATENCY_BUCKETS_MS, 'the latency buckets the metric uses are the ones the addon fills');
  t.equal(forwarderOptions({ consumer: {}, producer: {}, batchSize: 10, onGap: 'stop' }).batchSize, 10, 'a given option is kept');
  // the addon itself, without the loader's filling
  loadNative();
  const raw = require(join(__dirname, '..', '..', 'build', 'Release', 'strait_native.node')) as { Forwarder: new (o: object) => { close(ms: number): void } };
  const props = { consumer: { 'bootstrap.servers': '127.0.0.1:9', 'group.id': 'g' }, producer: { 'bootstrap.servers': '127.0.0.1:9' } };
  const complete = forwarderOptions(props);
  new raw.Forwarder(complete).close(0);
  t.equal(complete.transactionalId, '', 'not transactional unless a transactional id is given');
  for (const key of ['inflightBytes', 'batchSize', 'compression', 'onGap', 'transactionalId'] as const) {
    const { [key]: _gone, ...missing } = complete;
    t.throws(() => new raw.Forwarder(missing), new RegExp(`option '${key}'`), `without ${key}: refused, naming it`);
  }
  t.throws(() => new raw.Forwarder({ ...complete, latencyBucketsMs: [1, 2] }), /latencyBucketsMs/, 'a bucket list of another length: refused');
  t.throws(
    () => new raw.Forwarder({ ...complete, provenance: { localOrigin: 'a', dropOrigin: 'b' } }),
    /option 'header'/,
    'provenance without its header: refused',
  );
});

t.test('a transactional forwarder: init_transactions against an unreachable target blocks no pump, and fails naming the call', async (t) => {
  const native = loadNative();
  const props = { consumer: { 'bootstrap.servers': '127.0.0.1:9', 'group.id': 'g' }, producer: { 'bootstrap.servers': '127.0.0.1:9' } };
  const started = Date.now();
  const fw = new native.Forwarder({ ...props, transactionalId: 'strait|b|r|t|0' });
  t.ok(Date.now() - started < 1000, `constructed without waiting for init_transactions (${Date.now() - started} ms)`);
  t.match(fw.transaction(), { ready: false, open: false }, 'not ready while init_transactions is under way');
  // a pool thread pumps its other forwarders meanwhile: no call may hold it longer than its wait
  let longest = 0;
  let result = 0;
  while (result === 0 && Date.now() - started < 30_000) {
    const before = Date.now();
    result = fw.pump(20);
    longest = Math.max(longest, Date.now() - before);
    await new Promise((r) => setImmediate(r));
  }
  const failedAfter = Date.now() - started;
  t.equal(result, -1, 'the forwarder fails once init_transactions could not complete');
  t.ok(longest < 1000, `no pump() call held the thread for long (longest ${longest} ms)`);
  t.ok(failedAfter >= 14_000 && failedAfter < 30_000, `it failed after its 15 s bound (${failedAfter} ms)`);
  t.match(fw.progress(), { fatal: /init_transactions/ }, 'progress() names init_transactions as the fatal error');
  fw.close(0);
  const plain = new native.Forwarder(props);
  t.same(plain.transaction(), { ready: true, open: false, ageMs: 0, bytes: 0 }, 'a plain forwarder has no transaction');
  t.match(plain.flushTransaction(10), { ok: false, errorCode: '_STATE' }, 'and cannot flush one');
  plain.close(0);
});
