/**
 * Which librdkafka properties a route, and a cluster, may set — the one policy used by config validation (file and
 * REST routes) and by workers re-checking the routes they receive.
 *
 * A route's `consumer`/`producer` map is input that can arrive over REST and through the coordination store, so it
 * carries only an allowlist of tuning properties (taken from librdkafka's CONFIGURATION.md, ranges included). Anything
 * else is refused with the category that says why: librdkafka runs `sasl.kerberos.kinit.cmd` through system() and
 * dlopen()s `plugin.library.paths`, several properties read local files, some switch off what strait guarantees
 * (acks=all, idempotence, read_committed, no local message timeout), some are strait's own, and security settings
 * belong to the operator's cluster properties. A cluster's `properties` come only from the operator's file: they may
 * carry security settings (files and Kerberos commands included) but never the delivery-weakening or strait-owned ones.
 */
import { closest, distance } from 'fastest-levenshtein';
import { fieldPath, type FieldProblem } from './errors';

export type ClientSide = 'consumer' | 'producer';

interface IntRule {
  kind: 'int';
  min: number;
  max: number;
  sides: readonly ClientSide[];
  why?: string;
}
interface BoolRule {
  kind: 'bool';
  sides: readonly ClientSide[];
}
interface EnumRule {
  kind: 'enum';
  values: readonly string[];
  sides: readonly ClientSide[];
}
interface TextRule {
  kind: 'text';
  pattern: RegExp;
  what: string;
  sides: readonly ClientSide[];
}
type Rule = IntRule | BoolRule | EnumRule | TextRule;

const BOTH = ['consumer', 'producer'] as const;
const C = ['consumer'] as const;
const P = ['producer'] as const;
const int = (min: number, max: number, sides: readonly ClientSide[], why?: string): IntRule => ({
  kind: 'int',
  min,
  max,
  sides,
  ...(why !== undefined ? { why } : {}),
});
const bool = (sides: readonly ClientSide[]): BoolRule => ({ kind: 'bool', sides });

// The idempotent producer keeps order across retries only with at most 5 requests in flight per connection
// (librdkafka refuses more with enable.idempotence; KIP-98's limit), and strait's producer is always idempotent.
const IN_FLIGHT = int(1, 5, BOTH, 'the idempotent producer keeps order only with at most 5 requests in flight');

/** Tuning properties a route may set, with librdkafka's ranges (CONFIGURATION.md). */
export const TUNING_PROPERTIES: Readonly<Record<string, Rule>> = {
  // requests, sockets, connections
  'max.in.flight.requests.per.connection': IN_FLIGHT,
  'max.in.flight': IN_FLIGHT,
  'receive.message.max.bytes': int(1000, 2147483647, BOTH),
  'message.copy.max.bytes': int(0, 1000000000, P),
  'socket.timeout.ms': int(10, 300000, BOTH),
  'socket.send.buffer.bytes': int(0, 100000000, BOTH),
  'socket.receive.buffer.bytes': int(0, 100000000, BOTH),
  'socket.keepalive.enable': bool(BOTH),
  'socket.nagle.disable': bool(BOTH),
  'socket.max.fails': int(0, 1000000, BOTH),
  'socket.connection.setup.timeout.ms': int(1000, 2147483647, BOTH),
  'connections.max.idle.ms': int(0, 2147483647, BOTH),
  'reconnect.backoff.ms': int(0, 3600000, BOTH),
  'reconnect.backoff.max.ms': int(0, 3600000, BOTH),
  'retry.backoff.ms': int(1, 300000, BOTH),
  'retry.backoff.max.ms': int(1, 300000, BOTH),
  'request.timeout.ms': int(1, 900000, P),
  'api.version.request.timeout.ms': int(1, 300000, BOTH),
  'broker.address.ttl': int(0, 86400000, BOTH),
  'broker.address.family': { kind: 'enum', values: ['any', 'v4', 'v6'], sides: BOTH },
  // metadata
  'topic.metadata.refresh.interval.ms': int(1000, 3600000, BOTH),
  'metadata.max.age.ms': int(1, 86400000, BOTH),
  'topic.metadata.refresh.fast.interval.ms': int(1, 60000, BOTH),
  'topic.metadata.refresh.sparse': bool(BOTH),
  'topic.metadata.propagation.max.ms': int(0, 3600000, BOTH),
  // consumer: fetching and the prefetch queue
  'fetch.wait.max.ms': int(0, 300000, C),
  'fetch.min.bytes': int(1, 100000000, C),
  'fetch.max.bytes': int(0, 2147483135, C),
  'fetch.message.max.bytes': int(1, 1000000000, C),
  'max.partition.fetch.bytes': int(1, 1000000000, C),
  'fetch.queue.backoff.ms': int(0, 300000, C),
  'fetch.error.backoff.ms': int(0, 300000, C),
  'queued.min.messages': int(1, 10000000, C),
  'queued.max.messages.kbytes': int(1, 2097151, C),
  'check.crcs': bool(C),
  // fetch from the closest replica (KIP-392): a rack name, nothing else
  'client.rack': { kind: 'text', pattern: /^[A-Za-z0-9._:-]{1,255}$/, what: 'a rack name of letters, digits, . _ : -', sides: C },
  // producer: batching and the producer queue
  'linger.ms': int(0, 900000, P),
  'queue.buffering.max.ms': int(0, 900000, P),
  'queue.buffering.max.messages': int(0, 2147483647, P),
  'queue.buffering.max.kbytes': int(1, 2147483647, P),
  'queue.buffering.backpressure.threshold': int(1, 1000000, P),
  'batch.num.messages': int(1, 1000000, P),
  'batch.size': int(1, 2147483647, P),
  'compression.level': int(-1, 12, P),
};

export type RefusalCategory = 'code' | 'files' | 'weakens' | 'strait' | 'security';

const REASONS: Record<RefusalCategory, string> = {
  code: 'runs or loads code in the strait process',
  files: 'points at a file on the strait host',
  weakens: 'weakens what strait guarantees',
  strait: 'is set by strait itself',
  security: "is a security/identity setting; it belongs in the operator's clusters.<alias>.properties",
};

/** Why each known non-tuning property is refused; anything not listed here or in the allowlist is "unknown". */
const REFUSED: Record<string, { category: RefusalCategory; detail: string }> = {};
function refuse(category: RefusalCategory, detail: string, names: string[]): void {
  for (const n of names) REFUSED[n] = { category, detail };
}
refuse('code', 'librdkafka runs it through system()', ['sasl.kerberos.kinit.cmd']);
refuse('code', 'librdkafka loads it with dlopen()', ['plugin.library.paths', 'ssl.engine.location', 'ssl.engine.id', 'ssl.providers']);
refuse('code', 'only settable through the C API', [
  'interceptors',
  'opaque',
  'default_topic_conf',
  'error_cb',
  'throttle_cb',
  'stats_cb',
  'log_cb',
  'background_event_cb',
  'socket_cb',
  'connect_cb',
  'closesocket_cb',
  'open_cb',
  'resolve_cb',
  'ssl_engine_callback_data',
  'ssl.certificate.verify_cb',
  'oauthbearer_token_refresh_cb',
  'consume_cb',
  'rebalance_cb',
  'offset_commit_cb',
  'dr_cb',
  'dr_msg_cb',
  'partitioner_cb',
  'msg_order_cmp',
  'ssl_key',
  'ssl_certificate',
  'ssl_ca',
]);
refuse('files', 'a path read by librdkafka', [
  'ssl.key.location',
  'ssl.certificate.location',
  'ssl.ca.location',
  'https.ca.location',
  'ssl.crl.location',
  'ssl.keystore.location',
  'sasl.kerberos.keytab',
  'sasl.oauthbearer.assertion.file',
  'sasl.oauthbearer.assertion.private.key.file',
  'sasl.oauthbearer.assertion.jwt.template.file',
  'ssl.ca.certificate.stores',
]);
refuse('files', 'the deprecated file offset store writes there', ['offset.store.path', 'offset.store.sync.interval.ms', 'offset.store.method']);
refuse('weakens', 'strait produces with acks=all', ['acks', 'request.required.acks']);
refuse('weakens', 'strait always produces idempotently (no duplicates or reordering on retry)', ['enable.idempotence', 'enable.gapless.guarantee']);
refuse('weakens', 'strait never gives up on a record while the target is down (message.timeout.ms=0)', [
  'message.timeout.ms',
  'delivery.timeout.ms',
  'message.send.max.retries',
  'retries',
]);
refuse('weakens', 'strait reads committed records only (isolation.level=read_committed)', ['isolation.level']);
refuse('weakens', 'an out-of-range offset restarts from the earliest record (duplicates, never a gap)', ['auto.offset.reset']);
refuse('weakens', 'offsets are committed by strait only for acknowledged records', [
  'enable.auto.commit',
  'auto.commit.enable',
  'auto.commit.interval.ms',
  'enable.auto.offset.store',
]);
refuse('weakens', "the transactional producer is strait's (delivery: exactly-once)", ['transactional.id', 'transaction.timeout.ms']);
refuse('weakens', 'a client-side size limit rejects records the target broker accepts', ['message.max.bytes']);
refuse('weakens', 'reordering the producer queue breaks per-partition order', ['queuing.strategy']);
refuse('strait', 'strait connects to the cluster named by the route', ['bootstrap.servers', 'metadata.broker.list']);
refuse('strait', "the route's compression sets the codec", ['compression.codec', 'compression.type']);
refuse('strait', "strait creates target topics itself and picks topics by the route's include/exclude", ['allow.auto.create.topics', 'topic.blacklist']);
refuse('strait', 'strait names its clients and its mirrored consumer group', ['client.id', 'group.id', 'group.instance.id']);
refuse('strait', 'strait assigns partitions itself; no group membership', [
  'partition.assignment.strategy',
  'session.timeout.ms',
  'heartbeat.interval.ms',
  'group.protocol',
  'group.protocol.type',
  'group.remote.assignor',
  'coordinator.query.interval.ms',
  'max.poll.interval.ms',
]);
refuse('strait', 'the forwarder depends on it', [
  'enable.partition.eof',
  'delivery.report.only.error',
  'partitioner',
  'consume.callback.max.messages',
  'enabled_events',
  'internal.termination.signal',
  'log.queue',
  'builtin.features',
]);

/** Security settings: they name identities, credentials and trust, so only the operator's cluster properties hold them. */
function isSecurityProperty(name: string): boolean {
  return name === 'security.protocol' || name === 'enable.ssl.certificate.verification' || /^(ssl|sasl|https)[._]/.test(name);
}

/** Why a property is not a tuning property, or undefined for an allowed one and for one strait does not know. */
export function refusalOf(name: string): { category: RefusalCategory; reason: string } | undefined {
  const known = REFUSED[name];
  if (known !== undefined) return { category: known.category, reason: `${REASONS[known.category]} (${known.detail})` };
  if (isSecurityProperty(name)) return { category: 'security', reason: REASONS.security };
  return undefined;
}

/** `consumer["sasl.kerberos.kinit.cmd"]`, `producer.acks`: the path of one property under `base`. */
export function propertyPath(base: string, name: string): string {
  return fieldPath([name], base);
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 37)}...` : value}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function valueProblem(rule: Rule, value: unknown): string | undefined {
  switch (rule.kind) {
    case 'int': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
      if (!Number.isInteger(n)) return `must be an integer ${rule.min}..${rule.max}, got ${show(value)}`;
      if (n < rule.min || n > rule.max) return `must be ${rule.min}..${rule.max}${rule.why !== undefined ? ` (${rule.why})` : ''}, got ${n}`;
      return undefined;
    }
    case 'bool':
      return typeof value === 'boolean' || value === 'true' || value === 'false' ? undefined : `must be true or false, got ${show(value)}`;
    case 'enum':
      return typeof value === 'string' && rule.values.includes(value) ? undefined : `must be one of ${rule.values.join(', ')}, got ${show(value)}`;
    case 'text':
      return typeof value === 'string' && rule.pattern.test(value) ? undefined : `must be ${rule.what}, got ${show(value)}`;
  }
}

/** A few allowed names near `name`, closest first: the did-you-mean of an unknown property. */
function nearNames(name: string, side: ClientSide): string[] {
  const allowed = Object.keys(TUNING_PROPERTIES).filter((n) => TUNING_PROPERTIES[n]!.sides.includes(side));
  const best = closest(name, allowed);
  const words = new Set(name.split(/[._]/).filter((w) => w.length > 2));
  const sharing = allowed.filter((n) => n.split(/[._]/).some((w) => words.has(w)));
  const ranked = [...new Set([best, ...sharing.sort((a, b) => distance(name, a) - distance(name, b))])];
  return ranked.slice(0, 4);
}

/**
 * Problems with a route's `consumer` or `producer` properties (`base` is their path, e.g. `routes[0].consumer` or
 * `body.producer`). Empty when every property is an allowed tuning property with a value in its range. Values of
 * refused properties are never echoed: they may be commands, paths or credentials.
 */
export function routePropertyProblems(side: ClientSide, props: unknown, base: string): FieldProblem[] {
  if (props === undefined) return [];
  if (props === null || typeof props !== 'object' || Array.isArray(props))
    return [{ path: base, message: 'must be a mapping of librdkafka tuning properties' }];
  const problems: FieldProblem[] = [];
  for (const [name, value] of Object.entries(props as Record<string, unknown>)) {
    const path = propertyPath(base, name);
    const rule = TUNING_PROPERTIES[name];
    if (rule !== undefined && rule.sides.includes(side)) {
      const bad = valueProblem(rule, value);
      if (bad !== undefined) problems.push({ path, message: bad });
      continue;
    }
    if (rule !== undefined) {
      problems.push({ path, message: `is a ${rule.sides[0]} property; a route's ${side} cannot set it` });
      continue;
    }
    const refusal = refusalOf(name);
    if (refusal !== undefined) {
      problems.push({ path, message: `is refused: it ${refusal.reason}` });
      continue;
    }
    const near = nearNames(name, side);
    problems.push({
      path,
      message: `is not an allowed tuning property${near.length > 0 ? `; did you mean ${near.map((n) => `'${n}'`).join(', ')}?` : ''} (allowed: see the ${side} tuning properties in the README's config reference)`,
    });
  }
  return problems;
}

/**
 * Problems with a cluster's `properties` (operator's file only): everything librdkafka knows may be set, security
 * settings, certificate paths and Kerberos commands included, except the properties that weaken delivery and the ones
 * strait sets itself. Values are never echoed (this map holds credentials).
 */
export function clusterPropertyProblems(props: unknown, base: string): FieldProblem[] {
  if (props === undefined || props === null || typeof props !== 'object' || Array.isArray(props)) return [];
  const problems: FieldProblem[] = [];
  for (const [name, value] of Object.entries(props as Record<string, unknown>)) {
    const path = propertyPath(base, name);
    const refusal = refusalOf(name);
    if (refusal !== undefined && (refusal.category === 'weakens' || refusal.category === 'strait')) {
      problems.push({ path, message: `is refused: it ${refusal.reason}` });
      continue;
    }
    const rule = TUNING_PROPERTIES[name];
    const bad = rule !== undefined ? valueProblem(rule, value) : undefined;
    if (bad !== undefined) problems.push({ path, message: bad });
  }
  return problems;
}
