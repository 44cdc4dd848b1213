/**
 * What the loaded librdkafka was built with (`builtin.features`), checked against what a configuration needs before
 * anything starts. A librdkafka built without a codec does not fail to start: it fails every fetch of a batch in
 * that codec ("Local: Not implemented") while the rest runs, so a missing feature is refused at startup instead.
 */
import type { ClientProps, StraitConfig } from '../config';
import { loadNative } from '../../native';
import { StraitError } from '../errors';

/** librdkafka feature -> the Debian package whose headers its configure looks for */
const PACKAGE: Record<string, string> = {
  gzip: 'zlib1g-dev',
  snappy: 'libsnappy-dev',
  lz4: 'liblz4-dev',
  zstd: 'libzstd-dev',
  ssl: 'libssl-dev',
  sasl_plain: 'libssl-dev',
  sasl_scram: 'libssl-dev',
  sasl_gssapi: 'libsasl2-dev',
  sasl_oauthbearer: 'libssl-dev',
};

export interface FeatureNeed {
  feature: string;
  /** the config path that needs it */
  field: string;
  why: string;
}

function securityNeeds(props: ClientProps, field: string): FeatureNeed[] {
  const needs: FeatureNeed[] = [];
  const protocol = String(props['security.protocol'] ?? 'plaintext').toLowerCase();
  if (protocol === 'ssl' || protocol === 'sasl_ssl')
    needs.push({ feature: 'ssl', field: `${field}["security.protocol"]`, why: `security.protocol ${protocol.toUpperCase()}` });
  if (protocol.startsWith('sasl')) {
    const mechanism = String(props['sasl.mechanisms'] ?? props['sasl.mechanism'] ?? 'GSSAPI').toUpperCase();
    const feature =
      mechanism === 'PLAIN' ? 'sasl_plain' : mechanism.startsWith('SCRAM-') ? 'sasl_scram' : mechanism === 'OAUTHBEARER' ? 'sasl_oauthbearer' : 'sasl_gssapi';
    needs.push({ feature, field: `${field}["sasl.mechanisms"]`, why: `SASL mechanism ${mechanism}` });
  }
  return needs;
}

/**
 * Every feature `config` needs. Every codec is needed always: the source topics' batches come in whatever codec
 * their producers chose, and a route's `compression` picks the target's.
 */
export function neededFeatures(config: StraitConfig): FeatureNeed[] {
  const needs: FeatureNeed[] = ['gzip', 'snappy', 'lz4', 'zstd'].map((feature) => ({
    feature,
    field: 'routes',
    why: `reading source batches compressed with ${feature}`,
  }));
  for (const [alias, c] of Object.entries(config.clusters)) needs.push(...securityNeeds(c.properties, `clusters.${alias}.properties`));
  config.routes.forEach((r, i) => {
    needs.push(...securityNeeds(r.consumer, `routes[${i}].consumer`), ...securityNeeds(r.producer, `routes[${i}].producer`));
  });
  return needs;
}

/** Throws STRAIT_LIBRDKAFKA_FEATURE_MISSING naming each missing feature, who needs it, and how to rebuild. */
export function checkFeatures(config: StraitConfig, builtin: string, version: string): void {
  const have = new Set(builtin.split(',').map((f) => f.trim()));
  const missing = neededFeatures(config).filter((n) => !have.has(n.feature));
  if (missing.length === 0) return;
  const features = [...new Set(missing.map((m) => m.feature))];
  const packages = [...new Set(features.map((f) => PACKAGE[f] ?? `the headers for ${f}`))];
  const first = missing[0]!;
  throw new StraitError(
    'STRAIT_LIBRDKAFKA_FEATURE_MISSING',
    `the loaded librdkafka ${version} was built without ${features.join(', ')} (${missing
      .map((m) => `${m.field}: ${m.why}`)
      .filter((s, i, a) => a.indexOf(s) === i)
      .join('; ')}); ` +
      `install ${packages.join(' ')} (apt-get install -y ${packages.join(' ')}) and rebuild: npm rebuild node-rdkafka && npm run build:native`,
    { field: first.field },
  );
}

/** The check against the librdkafka strait's native addon loads (the same build node-rdkafka uses). */
export function checkLoadedFeatures(config: StraitConfig): void {
  const native = loadNative();
  checkFeatures(config, native.features(), native.version());
}
