/**
 * One error base with stable codes (house style: undici's UND_ERR_*, platformatic's GenericError).
 * Callers branch on `code`, never on message text.
 */
export type StraitErrorCode =
  | 'STRAIT_CONFIG_INVALID'
  | 'STRAIT_CONFIG_UNREADABLE'
  | 'STRAIT_USAGE'
  | 'STRAIT_DEV_MISSING_TOOL'
  | 'STRAIT_DEV_ALREADY_RUNNING'
  | 'STRAIT_DEV_NOT_RUNNING'
  | 'STRAIT_DEV_START_FAILED'
  | 'STRAIT_DEV_FETCH_FAILED'
  | 'STRAIT_NATIVE_UNAVAILABLE'
  | 'STRAIT_LIBRDKAFKA_FEATURE_MISSING'
  | 'STRAIT_CLUSTER_UNREACHABLE'
  | 'STRAIT_CLUSTER_AUTH'
  | 'STRAIT_CLUSTER_TLS'
  | 'STRAIT_INTERRUPTED'
  | 'STRAIT_NOT_AUTHORIZED'
  // answered by the REST API (controller/rest.ts) and the metrics endpoint
  | 'STRAIT_BAD_REQUEST'
  | 'STRAIT_UNAUTHORIZED'
  | 'STRAIT_FORBIDDEN_HOST'
  | 'STRAIT_NOT_FOUND'
  | 'STRAIT_BODY_TOO_LARGE'
  | 'STRAIT_UNSUPPORTED_MEDIA_TYPE'
  | 'STRAIT_INVALID_ROUTE'
  | 'STRAIT_UNKNOWN_ROUTE'
  | 'STRAIT_UNKNOWN_WORKER'
  | 'STRAIT_ROUTE_READ_ONLY'
  | 'STRAIT_NOT_LEADER'
  | 'STRAIT_INTERNAL'
  | 'STRAIT_KAFKA'
  | 'STRAIT_TOPIC_CONFLICT'
  | 'STRAIT_STORE'
  | 'STRAIT_ROUTE_UNVERIFIED'
  | 'STRAIT_FENCED'
  | 'STRAIT_GROUP_ACTIVE'
  | 'STRAIT_GROUP_UNKNOWN'
  // partition states (shared/partition-errors.ts): why a partition makes no progress
  | 'STRAIT_SOURCE_NOT_AUTHORIZED'
  | 'STRAIT_SOURCE_UNREADABLE'
  | 'STRAIT_SOURCE_FETCH_FAILED'
  | 'STRAIT_OFFSET_GAP'
  | 'STRAIT_TARGET_NOT_AUTHORIZED'
  | 'STRAIT_TARGET_REJECTED'
  | 'STRAIT_COMMIT_FAILING'
  | 'STRAIT_PRODUCER_FATAL'
  | 'STRAIT_ASSIGN_FAILED'
  | 'STRAIT_CLUSTER_CHANGED'
  | 'STRAIT_PARTITION_STALLED'
  // logged and counted, never thrown: a store node changed behind strait's back, a stop that hung, a pool thread lost
  | 'STRAIT_STORE_TAMPERED'
  | 'STRAIT_STOP_STUCK'
  | 'STRAIT_FORWARDER';

/** The one JSON error shape every HTTP door answers (REST API, metrics and health endpoints). */
export interface HttpErrorBody {
  code: StraitErrorCode;
  message: string;
  /** the request field the error is about */
  field?: string;
}

export interface StraitErrorOptions {
  cause?: unknown;
  /** true when the same operation may succeed if tried again later */
  retriable?: boolean;
  /** the config path or request field the error is about, e.g. `routes[1].topics.include[0]` */
  field?: string;
}

export class StraitError extends Error {
  readonly code: StraitErrorCode;
  readonly retriable: boolean;
  readonly field: string | undefined;

  constructor(code: StraitErrorCode, message: string, options: StraitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StraitError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.field = options.field;
  }
}

/** A field-level problem found while validating input; many of them make one STRAIT_CONFIG_INVALID. */
export interface FieldProblem {
  /** e.g. `routes[1].topics.include[0]` */
  path: string;
  message: string;
}

export class ConfigError extends StraitError {
  readonly problems: FieldProblem[];

  constructor(source: string, problems: FieldProblem[]) {
    const lines = problems.map((p) => `  - ${p.path}: ${p.message}`);
    super('STRAIT_CONFIG_INVALID', `${source} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`, {
      field: problems[0]?.path,
    });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * The display form of a config path or request field: `routes[0].topics.include[1]`, and a key that is not a plain
 * name (librdkafka properties have dots) in brackets: `routes[0].consumer["sasl.kerberos.kinit.cmd"]`.
 */
export function fieldPath(segments: readonly (string | number)[], base = ''): string {
  let out = base;
  for (const s of segments) {
    if (typeof s === 'number' || /^[0-9]+$/.test(s)) out += `[${s}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out === '' ? '(root)' : out;
}
