/**
 * Reading the config file.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StraitError } from '../errors';
import { validateConfig } from './check';
import type { StraitConfig } from './schema';

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
