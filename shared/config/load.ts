/**
 * Reading the config file, and what strait's own connections take from a loaded config.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StraitError } from '../errors';
import { validateConfig } from './check';
import type { ClientProps, StraitConfig } from './schema';

/** librdkafka properties for a connection of strait's own to a cluster (its properties and bootstrap servers). */
export function clusterProps(config: StraitConfig, alias: string): ClientProps {
  const c = config.clusters[alias];
  if (!c) throw new StraitError('STRAIT_USAGE', `unknown cluster alias '${alias}' (defined: ${Object.keys(config.clusters).join(', ')})`);
  return { ...c.properties, 'bootstrap.servers': c.bootstrap };
}

/** Reads a YAML or JSON file and validates it. */
export function loadConfig(file: string): StraitConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new StraitError('STRAIT_CONFIG_UNREADABLE', `cannot read config file ${file}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = extname(file) === '.json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new StraitError('STRAIT_CONFIG_UNREADABLE', `${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return validateConfig(parsed, file);
}
