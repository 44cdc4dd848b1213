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
  | 'STRAIT_CLUSTER_UNREACHABLE'
  | 'STRAIT_CLUSTER_AUTH'
  | 'STRAIT_INTERRUPTED'
  | 'STRAIT_NOT_AUTHORIZED'
  | 'STRAIT_KAFKA'
  | 'STRAIT_TOPIC_CONFLICT'
  | 'STRAIT_STORE'
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
  | 'STRAIT_COMMIT_FAILING';

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
