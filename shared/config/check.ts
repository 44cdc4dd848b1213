/**
 * Validation with exact paths and defaults (house style: validate once, say exactly what is wrong). Errors name the
 * path (`routes[1].topics.include[0]`), the bad value (never a secret's) and what is allowed; unknown keys get a
 * did-you-mean hint.
 */
import { availableParallelism } from 'node:os';
import Ajv, { type ErrorObject } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { closest, distance } from 'fastest-levenshtein';
import { clusterPropertyProblems, routePropertyProblems } from '../client-properties';
import { ConfigError, fieldPath, type FieldProblem } from '../errors';
import { isLoopbackHost } from '../http-guard';
import { patternError } from '../pattern';
import { separatorProblems, topologyProblems } from '../replication-policy';
import { resolveReferences, scrubSecrets } from '../secret-references';
import { isSecretKey, referencesOf } from './redact';
import { ConfigSchema, type ClusterConfig, type RouteConfig, type StraitConfig, type StraitConfigInput } from './schema';

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true, verbose: true });
ajv.addFormat('regex', (s: string) => regexError(s) === undefined);
const validateSchema = ajv.compile<StraitConfigInput>(ConfigSchema);

/** Topic and group patterns are regular expressions matched against the whole name, on RE2 (shared/pattern.ts). */
function regexError(pattern: string): string | undefined {
  return patternError(pattern);
}

function pointerKeys(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `/routes/1/topics/include/0` -> `routes[1].topics.include[0]` */
function toPath(pointer: string, extra?: string): string {
  return fieldPath(extra === undefined ? pointerKeys(pointer) : [...pointerKeys(pointer), extra]);
}

/** The last key of a display path (`...properties["sasl.password"]` -> `sasl.password`). */
function lastKey(path: string): string {
  const quoted = /\[("(?:[^"\\]|\\.)*")\]$/.exec(path);
  if (quoted !== null) return JSON.parse(quoted[1]!) as string;
  const m = /([^.[\]]+)\]?$/.exec(path);
  return m?.[1] ?? path;
}

/** A value for an error message; `referenced` maps paths whose value came from a reference to the reference. */
function show(path: string, value: unknown, referenced: ReadonlyMap<string, string>): string {
  const written = referenced.get(path);
  if (written !== undefined) return `the value of ${written}`;
  if (isSecretKey(lastKey(path)) || path.startsWith('store.auth.alsoGrant')) return '<redacted>';
  if (typeof value === 'string') return `'${value.length > 80 ? `${value.slice(0, 77)}...` : value}'`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function valueAt(root: unknown, pointer: string): unknown {
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function describeSchema(schema: TSchema | undefined): string {
  if (schema === undefined) return '';
  if (Array.isArray(schema.anyOf) && schema.anyOf.every((s: TSchema) => 'const' in s)) {
    return `one of ${schema.anyOf.map((s: TSchema) => String(s.const)).join(', ')}`;
  }
  return '';
}

function translate(err: ErrorObject, input: unknown, referenced: ReadonlyMap<string, string>): FieldProblem | undefined {
  const path = toPath(err.instancePath);
  const value = valueAt(input, err.instancePath);
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(err.params.additionalProperty);
      const allowed = Object.keys((err.parentSchema as { properties?: Record<string, unknown> }).properties ?? {});
      const guess = allowed.length > 0 ? closest(key, allowed) : undefined;
      const hint = guess !== undefined && distance(key, guess) <= Math.max(2, Math.floor(key.length / 3)) ? `; did you mean '${guess}'?` : '';
      return { path: toPath(err.instancePath, key), message: `unknown key${hint} (allowed: ${allowed.join(', ')})` };
    }
    case 'required':
      return { path: toPath(err.instancePath, String(err.params.missingProperty)), message: 'is required' };
    case 'type':
      return { path, message: `must be ${String(err.params.type)}, got ${show(path, value, referenced)}` };
    case 'pattern': {
      const what = (err.parentSchema as { description?: string }).description;
      return { path, message: `${show(path, value, referenced)} does not match ${what ?? `the pattern ${String(err.params.pattern)}`}` };
    }
    case 'anyOf': {
      const allowed = describeSchema(err.parentSchema as TSchema);
      return { path, message: `${show(path, value, referenced)} is not allowed; allowed: ${allowed || 'see the config reference'}` };
    }
    case 'const':
      return undefined; // reported through the enclosing anyOf
    case 'format':
      return { path, message: `${show(path, value, referenced)} is not a valid regular expression: ${regexError(String(value))}` };
    case 'not':
      return { path, message: `${show(path, value, referenced)} is not allowed` };
    case 'propertyNames':
      return undefined; // the pattern error on the name itself says it
    default:
      return { path, message: `${err.message ?? 'is invalid'}${value === undefined ? '' : `, got ${show(path, value, referenced)}`}` };
  }
}

/** Checks that need the whole config: aliases exist, names unique, naming unambiguous, no route setup that loops. */
function checkSemantics(config: StraitConfig, problems: FieldProblem[]): void {
  const aliases = Object.keys(config.clusters);
  const names = new Set<string>();
  config.routes.forEach((r, i) => {
    const base = `routes[${i}]`;
    if (names.has(r.name)) problems.push({ path: `${base}.name`, message: `'${r.name}' is used by another route; route names must be unique` });
    names.add(r.name);
    for (const side of ['source', 'target'] as const) {
      if (!aliases.includes(r[side])) {
        const guess = aliases.length > 0 ? closest(r[side], aliases) : undefined;
        problems.push({
          path: `${base}.${side}`,
          message: `unknown cluster alias '${r[side]}'${guess ? `; did you mean '${guess}'?` : ''} (defined: ${aliases.join(', ')})`,
        });
      }
    }
    if (r.source === r.target) problems.push({ path: `${base}.target`, message: `must differ from source ('${r.source}')` });
  });
  // loop checks follow routes from cluster to cluster: only meaningful once every route's aliases exist
  const routesSound = problems.length === 0;
  problems.push(...separatorProblems(config.routes, aliases));
  if (routesSound) problems.push(...topologyProblems(config.routes));
  const rest = config.controller.rest;
  if (!isLoopbackHost(rest.host) && rest.token === undefined && !rest.allowUnauthenticated) {
    problems.push({
      path: 'controller.rest.host',
      message: `'${rest.host}' is not a loopback address and controller.rest.token is not set: anyone who can reach it could change routes, pause replication and drain workers; set controller.rest.token (16+ characters), bind to 127.0.0.1, or set controller.rest.allowUnauthenticated: true if something in front of the API authenticates every request`,
    });
  }
  if (config.store.type === 'zookeeper' && config.store.connect === undefined) {
    problems.push({ path: 'store.connect', message: "is required when store.type is 'zookeeper' (host:port[,host:port...])" });
  }
  // DESIGN.md, "Security model": ZooKeeper access is authenticated; an open tree lets anyone who reaches ZooKeeper
  // rewrite assignments, offsets and routes, so going without is an explicit, visible choice
  if (config.store.type === 'zookeeper' && config.store.auth === undefined && !config.store.allowUnauthenticated) {
    problems.push({
      path: 'store.auth',
      message:
        "is required when store.type is 'zookeeper' ({ scheme: digest, credentials: 'user:password' }); set store.allowUnauthenticated: true to run with world-open znodes",
    });
  }
  if (config.store.auth !== undefined && config.store.allowUnauthenticated) {
    problems.push({ path: 'store.allowUnauthenticated', message: 'must not be true when store.auth is set' });
  }
}

/** Client property problems of the raw (not yet schema-checked) document: the policy of shared/client-properties.ts. */
function propertyProblems(doc: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isMap(doc.clusters)) {
    for (const [alias, c] of Object.entries(doc.clusters)) {
      if (isMap(c)) problems.push(...clusterPropertyProblems(c.properties, fieldPath(['clusters', alias, 'properties'])));
    }
  }
  if (Array.isArray(doc.routes)) {
    doc.routes.forEach((r: unknown, i) => {
      if (!isMap(r)) return;
      for (const side of ['consumer', 'producer'] as const) {
        if (r[side] !== undefined && isMap(r[side])) problems.push(...routePropertyProblems(side, r[side], fieldPath(['routes', i, side])));
      }
    });
  }
  return problems;
}

/** A ConfigError whose text carries no value a reference resolved to, whatever check quoted it. */
function invalid(source: string, problems: FieldProblem[]): ConfigError {
  return new ConfigError(
    source,
    problems.map((p) => ({ path: scrubSecrets(p.path), message: scrubSecrets(p.message) })),
  );
}

/**
 * Validates a parsed config object and fills defaults; secret references are resolved first (and refused inside
 * routes). Throws ConfigError listing every problem.
 */
export function validateConfig(input: unknown, source = 'config'): StraitConfig {
  const copy: unknown = structuredClone(input ?? {});
  const problems: FieldProblem[] = [];
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) {
    throw new ConfigError(source, [{ path: '(root)', message: 'must be a mapping with clusters, routes, ...' }]);
  }
  const references = resolveReferences(copy, problems);
  if (problems.length > 0) throw invalid(source, problems);
  const referenced = new Map(references.map((r) => [fieldPath(r.segments), r.written]));
  problems.push(...propertyProblems(copy as Record<string, unknown>));
  if (!validateSchema(copy)) {
    for (const e of validateSchema.errors ?? []) {
      const p = translate(e, copy, referenced);
      if (p !== undefined && !problems.some((q) => q.path === p.path && q.message === p.message)) problems.push(p);
    }
  }
  if (problems.length > 0) throw invalid(source, problems);
  const config = fill(copy as StraitConfigInput);
  checkSemantics(config, problems);
  if (problems.length > 0) throw invalid(source, problems);
  referencesOf.set(config, references);
  return config;
}

function fill(input: StraitConfigInput): StraitConfig {
  const clusters: Record<string, ClusterConfig> = {};
  for (const [alias, c] of Object.entries(input.clusters)) clusters[alias] = { bootstrap: c.bootstrap, properties: c.properties ?? {} };
  // ajv's useDefaults has filled every defaulted key; the casts below only restate that.
  const routes = (input.routes as RouteConfig[]).map((r) => ({ ...r, consumer: r.consumer ?? {}, producer: r.producer ?? {} }));
  const worker = input.worker as StraitConfig['worker'];
  return {
    deployment: input.deployment as string,
    clusters,
    routes,
    controller: input.controller as StraitConfig['controller'],
    worker: { ...worker, threads: worker.threads === 0 ? availableParallelism() : worker.threads },
    store: input.store as StraitConfig['store'],
    metrics: input.metrics as StraitConfig['metrics'],
    health: input.health as StraitConfig['health'],
    log: input.log as StraitConfig['log'],
  };
}

/**
 * Validates one route on its own (a REST request body) with exactly the schema and checks of a config-file route,
 * against the clusters `config` defines. Problems name the field under `base` (`body.topics.include[0]`).
 */
export function validateRoute(input: unknown, config: StraitConfig, base = 'body'): RouteConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(base, [{ path: base, message: 'must be a route object (name, source, target, topics, ...)' }]);
  }
  const clusters = Object.fromEntries(Object.entries(config.clusters).map(([alias, c]) => [alias, { bootstrap: c.bootstrap }]));
  try {
    return validateConfig({ clusters, routes: [input] }, base).routes[0]!;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const problems = e.problems.map((p) => ({ ...p, path: p.path.replace(/^routes\[0\]/, base) }));
    throw new ConfigError(base, problems);
  }
}
