/**
 * User patterns (route topic and group include/exclude) on a linear-time engine.
 *
 * Patterns arrive from the config file and over REST, and are matched against every topic and group name of a source
 * cluster on every refresh. On a backtracking engine (JavaScript's RegExp) a pattern like `(a*)*b` takes time
 * exponential in the name's length, so one bad pattern could stall the controller's event loop; RE2 (the `re2`
 * package) guarantees time linear in the input and refuses the constructs that need backtracking.
 */
import RE2 from 're2';

const ENGINE = 'patterns run on RE2, linear time';

/**
 * JavaScript constructs RE2 refuses, found by a scan that skips escapes and character classes; named so that an
 * error can say what to change instead of repeating RE2's parser message.
 */
function unsupportedConstruct(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (!inClass && next !== undefined && /[1-9]/.test(next)) return `backreferences (\\${next}) are not supported`;
      if (!inClass && next === 'k' && pattern[i + 2] === '<') return 'named backreferences (\\k<name>) are not supported';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      // a `]` right after `[` or `[^` is a literal in JavaScript
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2, i + 4);
      if (rest.startsWith('=') || rest.startsWith('!')) return `lookahead (?${rest[0]}...) is not supported`;
      if (rest === '<=' || rest === '<!') return `lookbehind (?${rest}...) is not supported`;
    }
  }
  return undefined;
}

/** Why `pattern` cannot be used, or undefined when it compiles on RE2. */
export function patternError(pattern: string): string | undefined {
  const construct = unsupportedConstruct(pattern);
  if (construct !== undefined) return `${construct} (${ENGINE})`;
  try {
    new RE2(pattern);
    return undefined;
  } catch (e) {
    return `${(e as Error).message.replace(/^Invalid regular expression: /, '')} (${ENGINE})`;
  }
}

/** compiled whole-name matchers (null: RE2 refused the pattern); patterns come from config and REST, so bounded */
const compiled = new Map<string, RE2 | null>();
const MAX_COMPILED = 4096;

function matcher(pattern: string): RE2 | null {
  let re = compiled.get(pattern);
  if (re === undefined) {
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    try {
      re = new RE2(`^(?:${pattern})$`);
    } catch {
      re = null;
    }
    compiled.set(pattern, re);
  }
  return re;
}

/**
 * Whether `name` matches one of `patterns` as a whole. Patterns are checked with `patternError` at config check and
 * by the REST API; one that still does not compile (a route stored before patterns ran on RE2) matches nothing, or
 * everything when `unusableMatches` is set — callers pass it for exclude lists, so such a route copies less, never more.
 */
export function matchesAny(patterns: string[], name: string, unusableMatches = false): boolean {
  return patterns.some((p) => {
    const re = matcher(p);
    return re === null ? unusableMatches : re.test(name);
  });
}
