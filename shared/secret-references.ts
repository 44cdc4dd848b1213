/**
 * Secret references in the config file: `${env:NAME}` and `${file:/absolute/path}` (contents trimmed), resolved once
 * at startup. Errors name the config path and the reference, never a value. Every resolved value is remembered so
 * output can be scrubbed of it (the logger does this for every line), and its path is returned so the config can be
 * printed with the reference in place of the value.
 *
 * References are refused inside `routes`: a route travels through the coordination store and the REST API, which
 * would carry the resolved value; and a REST body must never make the controller read its environment or files.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fieldPath, type FieldProblem } from './errors';

export interface ResolvedReference {
  /** where in the config, as keys and indexes */
  segments: (string | number)[];
  /** the string as written, references and all: what redacted output shows */
  written: string;
}

// Large enough for a PEM chain, small enough that a wrong path (a log, a device) fails fast.
const MAX_FILE_BYTES = 64 * 1024;
const REFERENCE = /\$\{(env|file):([^}]*)\}/g;
const OPENING = /\$\{(env|file):/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Below this length a value is not scrubbed from free text: short words ("a", "on") would blank out every log line.
const MIN_SCRUB_LENGTH = 6;

const resolvedValues = new Set<string>();

/** `text` with every value a reference resolved to in this process replaced by `<redacted>`. */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const v of resolvedValues) if (out.includes(v)) out = out.split(v).join('<redacted>');
  return out;
}

export function isReference(text: string): boolean {
  OPENING.lastIndex = 0;
  return OPENING.test(text);
}

function remember(value: string): void {
  if (value.length >= MIN_SCRUB_LENGTH) resolvedValues.add(value);
  // JSON output escapes quotes and backslashes: scrub that form as well
  const json = JSON.stringify(value).slice(1, -1);
  if (json !== value && json.length >= MIN_SCRUB_LENGTH) resolvedValues.add(json);
}

function readSecretFile(path: string): { value: string } | { problem: string } {
  if (!isAbsolute(path)) return { problem: 'needs an absolute path' };
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not hang startup (it is refused below as not a regular file)
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return { problem: `cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: 'is not a regular file' };
    if (st.size > MAX_FILE_BYTES) return { problem: `is larger than ${MAX_FILE_BYTES / 1024} KiB` };
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (n > MAX_FILE_BYTES) return { problem: `is larger than ${MAX_FILE_BYTES / 1024} KiB` };
    return { value: buf.subarray(0, n).toString('utf8').trim() };
  } catch (e) {
    return { problem: `cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  } finally {
    closeSync(fd);
  }
}

/** The value of one string with its references replaced, or the problems (naming references, never values). */
function resolveString(text: string, env: NodeJS.ProcessEnv): { value: string; parts: string[]; problems: string[] } {
  const problems: string[] = [];
  const parts: string[] = [];
  const value = text.replace(REFERENCE, (whole: string, kind: string, arg: string) => {
    if (kind === 'env') {
      if (!ENV_NAME.test(arg)) {
        problems.push(`${whole}: '${arg}' is not an environment variable name (letters, digits, _; not starting with a digit)`);
        return '';
      }
      // own string values only: `${env:__proto__}` must not reach Object.prototype (found by the fuzz test)
      const v = Object.prototype.hasOwnProperty.call(env, arg) && typeof env[arg] === 'string' ? env[arg] : undefined;
      if (v === undefined) problems.push(`${whole}: environment variable ${arg} is not set`);
      else if (v.trim() === '') problems.push(`${whole}: environment variable ${arg} is empty`);
      parts.push(v?.trim() ?? '');
      return v?.trim() ?? '';
    }
    const r = readSecretFile(arg);
    if ('problem' in r) {
      problems.push(`${whole}: the file ${r.problem}`);
      return '';
    }
    if (r.value === '') problems.push(`${whole}: the file is empty`);
    parts.push(r.value);
    return r.value;
  });
  // an opening left after replacement was never closed: `${env:NAME` is a typo, not a literal
  if (isReference(text.replace(REFERENCE, '')) && problems.length === 0) problems.push('has an unterminated reference (write ${env:NAME} or ${file:/path})');
  return { value, parts, problems };
}

/**
 * Resolves every reference in `root` in place. Returns where references were (for redaction); problems are added to
 * `problems` with the config path and the reference.
 */
export function resolveReferences(root: unknown, problems: FieldProblem[], env: NodeJS.ProcessEnv = process.env): ResolvedReference[] {
  const found: ResolvedReference[] = [];
  const walk = (node: unknown, segments: (string | number)[]): void => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        if (typeof item === 'string') visit(node, i, item, [...segments, i]);
        else walk(item, [...segments, i]);
      });
    } else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
        if (typeof v === 'string') visit(node as Record<string, unknown>, k, v, [...segments, k]);
        else walk(v, [...segments, k]);
      }
    }
  };
  const visit = (holder: unknown[] | Record<string, unknown>, key: string | number, text: string, segments: (string | number)[]): void => {
    if (!isReference(text)) return;
    const path = fieldPath(segments);
    if (segments[0] === 'routes') {
      problems.push({
        path,
        message:
          'a reference (${env:...}, ${file:...}) is not allowed in a route: routes travel through the coordination store and the REST API; put secrets in clusters.<alias>.properties',
      });
      return;
    }
    const r = resolveString(text, env);
    if (r.problems.length > 0) {
      for (const p of r.problems) problems.push({ path, message: p });
      return;
    }
    for (const v of [r.value, ...r.parts]) remember(v);
    (holder as Record<string | number, unknown>)[key] = r.value;
    found.push({ segments, written: text });
  };
  walk(root, []);
  return found;
}
