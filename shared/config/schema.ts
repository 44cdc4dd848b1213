/**
 * The config file's schema (TypeBox, compiled by ajv in check.ts) and the filled types every component receives.
 * Input types (`StraitConfigInput`) allow omissions; everything past `loadConfig` receives the filled `StraitConfig`.
 */
import { Type, type Static } from '@sinclair/typebox';

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

/** delivery: exactly-once: a partition's transaction commits after this long, or after this many bytes */
export const DELIVERY_DEFAULTS = { transactionIntervalMs: 500, transactionMaxBytes: 8 * 1024 * 1024 } as const;

const RouteSchema = Type.Object(
  {
    name: Name('route name'),
    source: Type.String({ minLength: 1 }),
    target: Type.String({ minLength: 1 }),
    topics: Type.Object({ include: Patterns(['.*']), exclude: Patterns([]) }, { additionalProperties: false, default: {} }),
    groups: Type.Object({ include: Patterns(['.*']), exclude: Patterns([]) }, { additionalProperties: false, default: {} }),
    naming: Type.Object(
      {
        policy: Type.Union(
          NAMING_POLICIES.map((p) => Type.Literal(p)),
          { default: 'prefix' },
        ),
        separator: Type.String({ minLength: 1, maxLength: 8, pattern: '^[A-Za-z0-9._-]+$', default: '.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    start: Type.Union([Type.Literal('earliest'), Type.Literal('latest')], { default: 'earliest' }),
    onGap: Type.Union([Type.Literal('continue'), Type.Literal('stop')], {
      default: 'continue',
      description:
        "when a partition's next offset is no longer in the source log (retention or deleteRecords removed records strait had not read, or the log was truncated): 'continue' goes on from the log start (after a truncation: where the log diverged from what strait read) and reports the skipped offsets (strait_records_skipped_total, an error-level log, the worker's status); 'stop' errors the partition with STRAIT_OFFSET_GAP instead",
    }),
    compression: Type.Union(
      COMPRESSIONS.map((c) => Type.Literal(c)),
      { default: 'source' },
    ),
    profile: Type.Union(
      PROFILES.map((p) => Type.Literal(p)),
      { default: 'default' },
    ),
    delivery: Type.Union([Type.Literal('at-least-once'), Type.Literal('exactly-once')], {
      default: 'at-least-once',
      description:
        'exactly-once: the records and the offset-map runs that cover them commit in one transaction on the target (consumers read it with isolation.level=read_committed); a transactional producer per source partition',
    }),
    transactionIntervalMs: Ms(DELIVERY_DEFAULTS.transactionIntervalMs, 10),
    transactionMaxBytes: Type.Integer({ minimum: 1024, default: DELIVERY_DEFAULTS.transactionMaxBytes }),
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

export const ConfigSchema = Type.Object(
  {
    deployment: Type.String({ pattern: '^[A-Za-z0-9._-]+$', minLength: 1, default: 'default' }),
    clusters: Type.Record(Name('cluster alias'), ClusterSchema, { minProperties: 1 }),
    routes: Type.Array(RouteSchema, { default: [] }),
    controller: Type.Object(
      {
        id: Type.Optional(Type.String({ minLength: 1 })),
        refreshTopicsIntervalMs: Ms(10_000, 100),
        workerGraceMs: Type.Integer({
          minimum: 0,
          maximum: 3_600_000,
          default: 0,
          description: 'how long a departed worker keeps its partitions before they move; 0 = move at session expiry',
        }),
        balanceTolerance: Type.Number({
          minimum: 0,
          maximum: 1,
          default: 0.1,
          description: "how far (fraction of the mean) a worker's load may be from the mean before partitions move",
        }),
        rebalanceIntervalMs: Type.Integer({
          minimum: 0,
          maximum: 86_400_000,
          default: 60_000,
          description:
            'least time between two rebalances by load (moving owned partitions between live workers); a worker joining rebalances at once; 0 = on every refresh',
        }),
        rest: Type.Object(
          {
            host: Type.String({ minLength: 1, default: '127.0.0.1' }),
            port: Type.Integer({ minimum: 0, maximum: 65535, default: 8470 }),
            token: Type.Optional(Type.String({ minLength: 16 })),
            allowUnauthenticated: Type.Boolean({
              default: false,
              description: 'serve a non-loopback host without a token (only behind something else that authenticates)',
            }),
            tls: Type.Optional(
              Type.Object(
                {
                  cert: Type.String({ minLength: 1, description: 'PEM server certificate (chain) file' }),
                  key: Type.String({ minLength: 1, description: 'PEM private key file' }),
                  clientCa: Type.Optional(
                    Type.String({ minLength: 1, description: 'PEM CA file: when set, every client must present a certificate it signed (mTLS)' }),
                  ),
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
              alsoGrant: Type.Array(Type.String({ pattern: '^[^:]+:[A-Za-z0-9+/]{27}=$', description: "a digest ACL id 'user:base64(sha1(user:password))'" }), {
                default: [],
              }),
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
          description:
            'HTTP status of /v1/health while degraded (a partition errored): 200 with the reasons, or 503 for load balancers that only read the status',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['debug', 'info', 'warn', 'error'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
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
  delivery: 'at-least-once' | 'exactly-once';
  transactionIntervalMs: number;
  transactionMaxBytes: number;
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
  worker: {
    id?: string;
    threads: number;
    inflightBytes: number;
    commitIntervalMs: number;
    reportIntervalMs: number;
    stallTimeoutMs: number;
    targetRetryMs: number;
  };
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
