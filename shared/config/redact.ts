/**
 * What of a config may be shown: literal secrets (by key) never, values that came from a reference as the reference.
 */
import { fieldPath } from '../errors';
import type { ResolvedReference } from '../secret-references';
import type { ClientProps, StraitConfig } from './schema';

/** Keys whose values are never printed: librdkafka secrets and strait's own token. */
const SECRET_KEY = /(password|secret|token|jaas|credentials|private|\.key\.pem|keystore\.key|sasl\.oauthbearer\.config)/i;

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
export const referencesOf = new WeakMap<StraitConfig, ResolvedReference[]>();

/**
 * A copy of the whole config safe to log or return over REST: literal secrets (by key) are `<redacted>`, and every
 * value that came from a reference, whatever its key, is shown as the reference as written (`${env:KAFKA_PASSWORD}`).
 */
export function redactConfig(config: StraitConfig): StraitConfig {
  const copy = structuredClone(config);
  for (const ref of referencesOf.get(config) ?? []) {
    let holder: unknown = copy;
    for (const s of ref.segments.slice(0, -1))
      holder = holder !== null && typeof holder === 'object' ? (holder as Record<string | number, unknown>)[s] : undefined;
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
    auth.alsoGrant = auth.alsoGrant.map((id, i) =>
      fromReference.has(`store.auth.alsoGrant[${i}]`) ? id : `${id.slice(0, Math.max(0, id.indexOf(':')))}:<redacted>`,
    );
  }
  return copy;
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
