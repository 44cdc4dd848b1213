/**
 * The startup check of librdkafka's built-in features: the real addon's list, and the same list with a feature
 * taken out (a fresh install whose librdkafka configure missed a header builds exactly such a list).
 */
import t from 'tap';
import { loadNative } from '../native';
import { validateConfig } from '../shared/config';
import { StraitError } from '../shared/errors';
import { checkFeatures, checkLoadedFeatures, neededFeatures } from '../shared/kafka/features';

const config = validateConfig({
  clusters: {
    a: { bootstrap: '127.0.0.1:9092', properties: { 'security.protocol': 'SASL_SSL', 'sasl.mechanisms': 'SCRAM-SHA-512' } },
    b: { bootstrap: '127.0.0.1:9093', properties: { 'security.protocol': 'SSL' } },
  },
  routes: [{ name: 'r', source: 'a', target: 'b' }],
});

t.test('the addon strait loads has every feature a TLS/SCRAM configuration needs', async (t) => {
  const native = loadNative();
  const builtin = new Set(native.features().split(','));
  for (const f of ['gzip', 'snappy', 'lz4', 'zstd', 'ssl', 'sasl_scram', 'sasl_plain', 'sasl_gssapi'])
    t.ok(builtin.has(f), `librdkafka ${native.version()} has ${f}`);
  t.doesNotThrow(() => checkLoadedFeatures(config));
});

t.test('needs: every codec always, SSL and the SASL mechanism where configured', async (t) => {
  const needs = neededFeatures(config).map((n) => `${n.feature}@${n.field}`);
  t.same(needs, [
    'gzip@routes',
    'snappy@routes',
    'lz4@routes',
    'zstd@routes',
    'ssl@clusters.a.properties["security.protocol"]',
    'sasl_scram@clusters.a.properties["sasl.mechanisms"]',
    'ssl@clusters.b.properties["security.protocol"]',
  ]);
});

t.test('a build without zstd or without SCRAM is refused, naming the feature, the field and how to rebuild', async (t) => {
  const all = loadNative().features();
  const without = (f: string) =>
    all
      .split(',')
      .filter((x) => x !== f)
      .join(',');
  const noZstd = t.throws(() => checkFeatures(config, without('zstd'), '2.x')) as StraitError;
  t.equal(noZstd.code, 'STRAIT_LIBRDKAFKA_FEATURE_MISSING');
  t.match(noZstd.message, /built without zstd/);
  t.match(noZstd.message, /apt-get install -y libzstd-dev/);
  t.match(noZstd.message, /npm rebuild node-rdkafka/);
  const noScram = t.throws(() => checkFeatures(config, without('sasl_scram'), '2.x')) as StraitError;
  t.equal(noScram.field, 'clusters.a.properties["sasl.mechanisms"]');
  t.match(noScram.message, /SASL mechanism SCRAM-SHA-512/);
  const plain = validateConfig({ clusters: { a: { bootstrap: 'x:1' }, b: { bootstrap: 'y:2' } }, routes: [{ name: 'r', source: 'a', target: 'b' }] });
  t.doesNotThrow(() => checkFeatures(plain, without('ssl'), '2.x'), 'a PLAINTEXT configuration does not need SSL');
});
