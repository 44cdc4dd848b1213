/**
 * Replication policies: which source topics a route copies and what they are called on the target.
 *
 * prefix (default): `<source-alias><sep><topic>`, MirrorMaker 2's DefaultReplicationPolicy naming, so MM2 users can
 * migrate. A topic whose name shows, at any depth of prefixes, that it came from the target is never sent back.
 * identity: same name; loops are stopped per record by the provenance header in the native path.
 */
import type { RouteConfig } from './config';

/** Kafka's own (`__consumer_offsets`, `__transaction_state`), strait's (`__strait-*`) and MirrorMaker 2's. */
export function isInternalTopic(topic: string): boolean {
  return topic.startsWith('__') || topic.endsWith('.internal') || topic === 'heartbeats' || topic.startsWith('mm2-');
}

export function targetTopicName(route: RouteConfig, topic: string): string {
  return route.naming.policy === 'identity' ? topic : `${route.source}${route.naming.separator}${topic}`;
}

/** The chain of cluster aliases a prefixed name has passed through, outermost first: `b.c.orders` -> [b, c]. */
export function prefixOrigins(topic: string, separator: string, aliases: string[]): string[] {
  const origins: string[] = [];
  let rest = topic;
  for (;;) {
    const alias = aliases.find((a) => rest.startsWith(`${a}${separator}`) && rest.length > a.length + separator.length);
    if (alias === undefined) return origins;
    origins.push(alias);
    rest = rest.slice(alias.length + separator.length);
  }
}

function fullMatch(patterns: string[], topic: string): boolean {
  return patterns.some((p) => new RegExp(`^(?:${p})$`).test(topic));
}

export type Selection = { selected: true } | { selected: false; reason: 'internal' | 'excluded' | 'not-included' | 'from-target' };

/** Whether `route` replicates source topic `topic`. `aliases`: every cluster alias of the deployment. */
export function selectTopic(route: RouteConfig, topic: string, aliases: string[]): Selection {
  if (isInternalTopic(topic)) return { selected: false, reason: 'internal' };
  if (!fullMatch(route.topics.include, topic)) return { selected: false, reason: 'not-included' };
  if (fullMatch(route.topics.exclude, topic)) return { selected: false, reason: 'excluded' };
  if (route.naming.policy === 'prefix' && prefixOrigins(topic, route.naming.separator, aliases).includes(route.target)) {
    return { selected: false, reason: 'from-target' };
  }
  return { selected: true };
}
