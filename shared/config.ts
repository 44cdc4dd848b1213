/**
 * The one config file: schema, validation with exact paths, defaults, secret redaction.
 *
 * The schema is compiled once (house style: validate once, say exactly what is wrong). Errors name the path
 * (`routes[1].topics.include[0]`), the bad value (never a secret's) and what is allowed; unknown keys get a
 * did-you-mean hint. Input types (`StraitConfigInput`) allow omissions; everything past `loadConfig` receives the
 * filled `StraitConfig`.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { closest, distance } from 'fastest-levenshtein';
import { parse as parseYaml } from 'yaml';
import { clusterPropertyProblems, routePropertyProblems } from './client-properties';
import { ConfigError, StraitError, fieldPath, type FieldProblem } from './errors';
import { isLoopbackHost } from './http-guard';
import { patternError } from './pattern';
import { separatorProblems, topologyProblems } from './replication-policy';
import { resolveReferences, scrubSecrets, type ResolvedReference } from './secret-references';

const Name = (description: string) => Type.String({ pattern: '^[A-Za-z0-9._-]+$', minLength: 1, maxLength: 200, description });
// Which names and values are allowed is shared/client-properties.ts's policy, checked next to the schema.
const ClientProperties = Type.Record(Type.String({ minLength: 1 }), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
  description: 'librdkafka client properties (see librdkafka CONFIGURATION.md)',
});
const Patterns = (fallback: string[]) => Type.Array(Type.String({ minLength: 1, format: 'regex' }), { default: fallback });
const Ms = (fallback: number, minimum: number) => Type.Integer({ minimum, default: fallback });

export const COMPRESSIONS = ['source', 'none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export const NAMING_POLICIES = ['prefix', 'identity'] as const;
export const PROFILES = ['default', 'lan', 'wan'] as const;

const ClusterSchema = Type.Object(
  {
    bootstrap: Type.String({ minLength: 1, pattern: '^[^,\\s]+:[0-9]+(,[^,\\s]+:[0-9]+)*$', description: 'host:port[,host:port...]' }),
    properties: Type.Optional(ClientProperties),
  },
  { additionalProperties: false },
);

const RouteSchema = Type.Object(
  {
    name: Name('route name'),
    source: Type.String({ minLength: 1 }),
    target: Type.String({ minLength: 1 }),
    topics: Type.Object(
      { include: Patterns(['.*']), exclude: Patterns([]) },
      { additionalProperties: false, default: {} },
    ),
    groups: Type.Object(
      { include: Patterns(['.*']), exclude: Patterns([]) },
      { additionalProperties: false, default: {} },
    ),
    naming: Type.Object(
      {
        policy: Type.Union(NAMING_POLICIES.map((p) => Type.Literal(p)), { default: 'prefix' }),
        separator: Type.String({ minLength: 1, maxLength: 8, pattern: '^[A-Za-z0-9._-]+$', default: '.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    start: Type.Union([Type.Literal('earliest'), Type.Literal('latest')], { default: 'earliest' }),
    onGap: Type.Union([Type.Literal('continue'), Type.Literal('stop')], {
      default: 'continue',
      description:
        "when a partition's next offset is no longer in the source log (retention or deleteRecords removed records strait had not read, or the log was truncated): 'continue' goes on from the log start (or end) and reports the skipped offsets (strait_records_skipped_total, an error-level log, the worker's status); 'stop' errors the partition with STRAIT_OFFSET_GAP instead",
    }),
    compression: Type.Union(COMPRESSIONS.map((c) => Type.Literal(c)), { default: 'source' }),
    profile: Type.Union(PROFILES.map((p) => Type.Literal(p)), { default: 'default' }),
    replicationFactor: Type.Integer({ minimum: -1, maximum: 32767, not: { const: 0 }, default: -1 }),
    syncTopicConfigs: Type.Boolean({ default: true }),
    syncGroupOffsets: Type.Boolean({ default: false }),
    checkpointIntervalMs: Ms(5000, 100),
    paused: Type.Boolean({ default: false }),
    consumer: Type.Optional(ClientProperties),
    producer: Type.Optional(ClientProperties),
  },
  { additionalProperties: false },
);

const ConfigSchema = Type.Object(
  {
    deployment: Type.String({ pattern: '^[A-Za-z0-9._-]+$', minLength: 1, default: 'default' }),
    clusters: Type.Record(Name('cluster alias'), ClusterSchema, { minProperties: 1 }),
    routes: Type.Array(RouteSchema, { default: [] }),
    controller: Type.Object(
      {
        id: Type.Optional(Type.String({ minLength: 1 })),
        refreshTopicsIntervalMs: Ms(10_000, 100),
        workerGraceMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 0, description: 'how long a departed worker keeps its partitions before they move; 0 = move at session expiry' }),
        balanceTolerance: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'how far (fraction of the mean) a worker\'s load may be from the mean before partitions move' }),
        rebalanceIntervalMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 60_000, description: 'least time between two rebalances by load (moving owned partitions between live workers); a worker joining rebalances at once; 0 = on every refresh' }),
        rest: Type.Object(
          {
            host: Type.String({ minLength: 1, default: '127.0.0.1' }),
            port: Type.Integer({ minimum: 0, maximum: 65535, default: 8470 }),
            token: Type.Optional(Type.String({ minLength: 16 })),
            allowUnauthenticated: Type.Boolean({ default: false, description: 'serve a non-loopback host without a token (only behind something else that authenticates)' }),
            tls: Type.Optional(
              Type.Object(
                {
                  cert: Type.String({ minLength: 1, description: 'PEM server certificate (chain) file' }),
                  key: Type.String({ minLength: 1, description: 'PEM private key file' }),
                  clientCa: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA file: when set, every client must present a certificate it signed (mTLS)' })),
                },
                { additionalProperties: false },
              ),
            ),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    worker: Type.Object(
      {
        id: Type.Optional(Type.String({ minLength: 1 })),
        threads: Type.Integer({ minimum: 0, maximum: 256, default: 0, description: '0 = one per core' }),
        inflightBytes: Type.Integer({ minimum: 1024 * 1024, default: 64 * 1024 * 1024 }),
        commitIntervalMs: Ms(1000, 50),
        reportIntervalMs: Ms(5000, 100),
        /** a partition with work to do (records in flight, or behind the source's high watermark) whose committable
         *  offset has not moved for this long is errored (STRAIT_PARTITION_STALLED) */
        stallTimeoutMs: Ms(60_000, 1000),
        /** a partition the target refused a record of (STRAIT_TARGET_REJECTED / _NOT_AUTHORIZED) reads it again after
         *  this long, doubling up to 20 times it, until the target takes it */
        targetRetryMs: Ms(30_000, 500),
      },
      { additionalProperties: false, default: {} },
    ),
    store: Type.Object(
      {
        type: Type.Union([Type.Literal('embedded'), Type.Literal('zookeeper')], { default: 'embedded' }),
        path: Type.String({ minLength: 1, default: '.strait/store' }),
        connect: Type.Optional(Type.String({ minLength: 1, pattern: '^[^,\\s]+:[0-9]+(,[^,\\s]+:[0-9]+)*(/.*)?$' })),
        root: Type.String({ pattern: '^/', default: '/strait' }),
        sessionTimeoutMs: Ms(10_000, 2000),
        auth: Type.Optional(
          Type.Object(
            {
              // anyOf, so a wrong value is reported with the allowed ones (a bare literal only yields 'const', and
              // TypeBox folds a one-member union into that literal)
              scheme: Type.Unsafe<'digest'>({ anyOf: [{ type: 'string', const: 'digest' }] }),
              credentials: Type.String({ minLength: 3, pattern: '^[^:]+:[\\s\\S]+$', description: "'user:password'" }),
              alsoGrant: Type.Array(Type.String({ pattern: '^[^:]+:[A-Za-z0-9+/]{27}=$', description: "a digest ACL id 'user:base64(sha1(user:password))'" }), { default: [] }),
            },
            { additionalProperties: false },
          ),
        ),
        allowUnauthenticated: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    metrics: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 9464 }),
      },
      { additionalProperties: false, default: {} },
    ),
    health: Type.Object(
      {
        degradedStatus: Type.Union([Type.Literal(200), Type.Literal(503)], {
          default: 200,
          description: "HTTP status of /v1/health while degraded (a partition errored): 200 with the reasons, or 503 for load balancers that only read the status",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      { level: Type.Union(['debug', 'info', 'warn', 'error'].map((l) => Type.Literal(l)), { default: 'info' }) },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type StraitConfigInput = Static<typeof ConfigSchema>;
export type ClientProps = Record<string, string | number | boolean>;

/** A route after defaults are filled. */
export interface RouteConfig {
  name: string;
  source: string;
  target: string;
  topics: { include: string[]; exclude: string[] };
  groups: { include: string[]; exclude: string[] };
  naming: { policy: (typeof NAMING_POLICIES)[number]; separator: string };
  start: 'earliest' | 'latest';
  onGap: 'continue' | 'stop';
  compression: (typeof COMPRESSIONS)[number];
  profile: (typeof PROFILES)[number];
  replicationFactor: number;
  syncTopicConfigs: boolean;
  syncGroupOffsets: boolean;
  checkpointIntervalMs: number;
  paused: boolean;
  consumer: ClientProps;
  producer: ClientProps;
}

export interface ClusterConfig {
  bootstrap: string;
  properties: ClientProps;
}

/** `controller.rest.tls`: file paths, read when the API starts listening. */
export interface RestTls {
  cert: string;
  key: string;
  clientCa?: string;
}

/** The whole config after defaults are filled: what every component receives. */
export interface StraitConfig {
  deployment: string;
  clusters: Record<string, ClusterConfig>;
  routes: RouteConfig[];
  controller: {
    id?: string;
    refreshTopicsIntervalMs: number;
    workerGraceMs: number;
    balanceTolerance: number;
    rebalanceIntervalMs: number;
    rest: { host: string; port: number; token?: string; allowUnauthenticated: boolean; tls?: RestTls };
  };
  worker: { id?: string; threads: number; inflightBytes: number; commitIntervalMs: number; reportIntervalMs: number; stallTimeoutMs: number; targetRetryMs: number };
  store: {
    type: 'embedded' | 'zookeeper';
    path: string;
    connect?: string;
    root: string;
    sessionTimeoutMs: number;
    /** ZooKeeper digest auth; `credentials` is 'user:password' (secret), `alsoGrant` digest ids for a rotation */
    auth?: { scheme: 'digest'; credentials: string; alsoGrant: string[] };
    allowUnauthenticated: boolean;
  };
  metrics: { enabled: boolean; host: string; port: number };
  health: { degradedStatus: 200 | 503 };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true, verbose: true });
ajv.addFormat('regex', (s: string) => regexError(s) === undefined);
const validateSchema = ajv.compile<StraitConfigInput>(ConfigSchema);

/** Topic and group patterns are regular expressions matched against the whole name, on RE2 (shared/pattern.ts). */
function regexError(pattern: string): string | undefined {
  return patternError(pattern);
}

/** Keys whose values are never printed: librdkafka secrets and strait's own token. */
const SECRET_KEY = /(password|secret|token|jaas|credentials|private|\.key\.pem|keystore\.key|sasl\.oauthbearer\.config)/i;

/** librdkafka properties for a connection of strait's own to a cluster (its properties and bootstrap servers). */
export function clusterProps(config: StraitConfig, alias: string): ClientProps {
  const c = config.clusters[alias];
  if (!c) throw new StraitError('STRAIT_USAGE', `unknown cluster alias '${alias}' (defined: ${Object.keys(config.clusters).join(', ')})`);
  return { ...c.properties, 'bootstrap.servers': c.bootstrap };
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A copy of client properties safe to log or return over REST. */
export function redactProperties(props: ClientProps): ClientProps {
  const out: ClientProps = {};
  for (const [k, v] of Object.entries(props)) out[k] = isSecretKey(k) ? '<redacted>' : v;
  return out;
}

/** Where the references of each validated config were: redacted output shows the reference, not its value. */
const referencesOf = new WeakMap<StraitConfig, ResolvedReference[]>();

/**
 * A copy of the whole config safe to log or return over REST: literal secrets (by key) are `<redacted>`, and every
 * value that came from a reference, whatever its key, is shown as the reference as written (`${env:KAFKA_PASSWORD}`).
 */
export function redactConfig(config: StraitConfig): StraitConfig {
  const copy = structuredClone(config);
  for (const ref of referencesOf.get(config) ?? []) {
    let holder: unknown = copy;
    for (const s of ref.segments.slice(0, -1)) holder = holder !== null && typeof holder === 'object' ? (holder as Record<string | number, unknown>)[s] : undefined;
    const last = ref.segments[ref.segments.length - 1]!;
    if (holder !== null && typeof holder === 'object' && last in holder) (holder as Record<string | number, unknown>)[last] = ref.written;
  }
  const fromReference = new Set((referencesOf.get(config) ?? []).map((r) => fieldPath(r.segments)));
  const keep = (base: string, props: ClientProps): ClientProps => {
    const out = redactProperties(props);
    for (const k of Object.keys(out)) if (fromReference.has(fieldPath([k], base))) out[k] = props[k]!;
    return out;
  };
  for (const [alias, c] of Object.entries(copy.clusters)) c.properties = keep(fieldPath(['clusters', alias, 'properties']), c.properties);
  for (const r of copy.routes) {
    r.consumer = redactProperties(r.consumer);
    r.producer = redactProperties(r.producer);
  }
  if (copy.controller.rest.token !== undefined && !fromReference.has('controller.rest.token')) copy.controller.rest.token = '<redacted>';
  // the user name is what an operator needs to tell identities apart; the password and the digests are not shown
  // (credentials from a reference show the reference)
  const auth = copy.store.auth;
  if (auth) {
    if (!fromReference.has('store.auth.credentials')) auth.credentials = `${auth.credentials.slice(0, Math.max(0, auth.credentials.indexOf(':')))}:<redacted>`;
    auth.alsoGrant = auth.alsoGrant.map((id, i) => (fromReference.has(`store.auth.alsoGrant[${i}]`) ? id : `${id.slice(0, Math.max(0, id.indexOf(':')))}:<redacted>`));
  }
  return copy;
}

function pointerKeys(pointer: string): string[] {
  return pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * How a config value may appear in a message: the reference as written when it came from one (a user name from
 * `${env:KAFKA_USER}` is shown as that), else the value itself.
 */
export function shownValue(config: StraitConfig, segments: readonly (string | number)[], value: unknown): string {
  const path = fieldPath(segments);
  const ref = (referencesOf.get(config) ?? []).find((r) => fieldPath(r.segments) === path);
  return ref !== undefined ? ref.written : String(value);
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
        problems.push({ path: `${base}.${side}`, message: `unknown cluster alias '${r[side]}'${guess ? `; did you mean '${guess}'?` : ''} (defined: ${aliases.join(', ')})` });
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
      message: "is required when store.type is 'zookeeper' ({ scheme: digest, credentials: 'user:password' }); set store.allowUnauthenticated: true to run with world-open znodes",
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
  return new ConfigError(source, problems.map((p) => ({ path: scrubSecrets(p.path), message: scrubSecrets(p.message) })));
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
    throw new StraitError('STRAIT_CONFIG_UNREADABLE', `${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`, { cause: e });
  }
  return validateConfig(parsed, file);
}
