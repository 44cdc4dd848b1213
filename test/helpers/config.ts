/** Config validation as the tests see it: the problems a document has (none when it is valid). */
import { validateConfig } from '../../shared/config';
import { ConfigError } from '../../shared/errors';

export function configProblems(input: unknown): { path: string; message: string }[] {
  try {
    validateConfig(input);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}
