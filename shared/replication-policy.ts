/**
 * Replication policies: which source topics a route copies and what they are called on the target.
 *
 * prefix (default): `<source-alias><sep><topic>`, MirrorMaker 2's DefaultReplicationPolicy naming, so MM2 users can
 * migrate. A topic whose name shows, at any depth of prefixes, that it came from the target is never sent back.
 * identity: same name; loops are stopped per record by the provenance header in the native path.
 */
import type { RouteConfig } from './config';
import { matchesAny } from './pattern';

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

/**
 * whether a name matches one of the patterns as a whole (topic and group patterns), on RE2 (linear time); `exclude`:
 * the patterns are an exclude list, where a pattern RE2 refuses matches everything (shared/pattern.ts)
 */
export function fullMatch(patterns: string[], topic: string, exclude = false): boolean {
  return matchesAny(patterns, topic, exclude);
}

export type Selection = { selected: true } | { selected: false; reason: 'internal' | 'excluded' | 'not-included' | 'from-target' };

/** Whether `route` replicates source topic `topic`. `aliases`: every cluster alias of the deployment. */
export function selectTopic(route: RouteConfig, topic: string, aliases: string[]): Selection {
  if (isInternalTopic(topic)) return { selected: false, reason: 'internal' };
  if (!fullMatch(route.topics.include, topic)) return { selected: false, reason: 'not-included' };
  if (fullMatch(route.topics.exclude, topic, true)) return { selected: false, reason: 'excluded' };
  if (route.naming.policy === 'prefix' && prefixOrigins(topic, route.naming.separator, aliases).includes(route.target)) {
    return { selected: false, reason: 'from-target' };
  }
  return { selected: true };
}

/** Where a route setup would let records or topics go round (or be duplicated), with the config path to blame. */
export interface LoopProblem {
  path: string;
  message: string;
}

/**
 * Separator checks for the prefix policy. `prefixOrigins` reads a name back with EVERY alias of the deployment (a
 * topic on a cluster may have been named by any route into it, at any depth), so a separator is checked against all
 * aliases, not only the route's two: it may not occur in one, and no `<alias><sep>` may begin another alias's
 * `<alias><sep>` (separator `--`, aliases `a` and `a-`: `a---orders` reads as `a` + `-orders` or `a-` + `orders`).
 */
export function separatorProblems(routes: RouteConfig[], aliases: string[]): LoopProblem[] {
  const out: LoopProblem[] = [];
  routes.forEach((r, i) => {
    if (r.naming.policy !== 'prefix') return;
    const sep = r.naming.separator;
    const path = `routes[${i}].naming.separator`;
    for (const alias of aliases) {
      if (alias.includes(sep)) {
        const which = alias === r.source ? 'source alias' : alias === r.target ? 'target alias' : 'cluster alias';
        out.push({
          path,
          message: `'${sep}' occurs in the ${which} '${alias}' (clusters.${alias}), which makes prefixed topic names ambiguous ('${alias}${sep}orders' could be read as '${alias.slice(0, alias.indexOf(sep))}' + '${alias.slice(alias.indexOf(sep) + sep.length)}${sep}orders'); choose a separator that no cluster alias contains`,
        });
        continue;
      }
      const shadowed = aliases.find((other) => other !== alias && !other.includes(sep) && `${other}${sep}`.startsWith(`${alias}${sep}`));
      if (shadowed !== undefined) {
        out.push({
          path,
          message: `with '${sep}' the aliases '${alias}' and '${shadowed}' cannot be told apart in a prefixed name ('${shadowed}${sep}orders' also reads as '${alias}' + '${`${shadowed}${sep}orders`.slice(alias.length + sep.length)}'); choose another separator or rename clusters.${shadowed}`,
        });
      }
    }
  });
  return out;
}

/** A pattern that names exactly one topic: letters, digits, `_`, `-`, and dots written as `\.`. */
function literalName(pattern: string): string | undefined {
  return /^(?:[A-Za-z0-9_-]|\\\.)+$/.test(pattern) ? pattern.replace(/\\\./g, '.') : undefined;
}

/**
 * Which routes may carry a topic called `probe`; `undefined` stands for a topic no route names literally, carried by
 * every route with a non-literal include pattern. Conservative: a regular expression is assumed to match anything.
 */
function carries(route: RouteConfig, probe: string | undefined): boolean {
  if (probe === undefined) return route.topics.include.some((p) => literalName(p) === undefined);
  return fullMatch(route.topics.include, probe) && !fullMatch(route.topics.exclude, probe);
}

/** Clusters reachable from `from` over `routes`. */
function reachable(routes: RouteConfig[], from: string): Set<string> {
  const seen = new Set<string>([from]);
  const todo = [from];
  while (todo.length > 0) {
    const at = todo.pop()!;
    for (const r of routes) {
      if (r.source === at && !seen.has(r.target)) {
        seen.add(r.target);
        todo.push(r.target);
      }
    }
  }
  return seen;
}

/**
 * Route setups that would loop or duplicate, found per topic that routes can carry (every literal name in an include
 * list, plus "any other name" for routes with regular expressions):
 * - routes on one cycle of clusters with different naming policies or separators: what one route prefixes the next
 *   does not recognise (or an identity copy has no origin in its name), so topics come back under ever longer names;
 * - identity routes that give a record two ways to reach a cluster (a mesh, or a cycle the record enters without
 *   passing its origin): the loop guard drops only records returning to their origin cluster, so the second copy
 *   arrives as a duplicate, and inside a cycle the copies go round until the hop limit.
 */
export function topologyProblems(routes: RouteConfig[]): LoopProblem[] {
  const out = new Map<string, LoopProblem>();
  const add = (p: LoopProblem) => out.set(`${p.path}|${p.message}`, p);
  const probes = new Set<string | undefined>([undefined]);
  for (const r of routes) for (const p of r.topics.include) if (/^[A-Za-z0-9._-]+$/.test(p) || literalName(p) !== undefined) probes.add(literalName(p) ?? p);
  const index = new Map(routes.map((r, i) => [r, i]));
  for (const probe of probes) {
    const live = routes.filter((r) => carries(r, probe));
    const what = probe === undefined ? 'the topics their patterns match' : `topic '${probe}'`;
    // routes whose target leads back to their source are on a cycle; routes on one cycle share a strongly connected set
    const reach = new Map<string, Set<string>>();
    const reachOf = (c: string) => reach.get(c) ?? reach.set(c, reachable(live, c)).get(c)!;
    const cyclic = live.filter((r) => reachOf(r.target).has(r.source));
    // each route is compared with the first route of its cycle, so one mismatch is reported once
    for (let j = 0; j < cyclic.length; j++) {
      const rj = cyclic[j]!;
      const ri = cyclic.find((r) => reachOf(r.source).has(rj.source) && reachOf(rj.source).has(r.source))!;
      if (ri === rj) continue;
      const [ii, jj] = [index.get(ri)!, index.get(rj)!];
      const ring = [...reachOf(rj.source)].filter((c) => reachOf(c).has(rj.source)).join(', ');
      if (ri.naming.policy !== rj.naming.policy) {
        add({
          path: `routes[${jj}].naming.policy`,
          message: `'${rj.naming.policy}' differs from routes[${ii}].naming.policy ('${ri.naming.policy}') although both routes carry ${what} round the same cycle of clusters (${ring}); what one policy writes the other does not recognise as coming back, so it would circulate under ever longer names; use one policy for every route on the cycle`,
        });
      } else if (rj.naming.policy === 'prefix' && ri.naming.separator !== rj.naming.separator) {
        add({
          path: `routes[${jj}].naming.separator`,
          message: `'${rj.naming.separator}' differs from routes[${ii}].naming.separator ('${ri.naming.separator}') although both routes carry ${what} round the same cycle of clusters (${ring}); a name prefixed with one separator is not recognised with the other, so topics would come back as new ones; use one separator for every route on the cycle`,
        });
      }
    }
    // identity: from every origin, each cluster must be reached over exactly one route (records returning to the
    // origin are dropped, so routes into the origin do not count)
    const identity = live.filter((r) => r.naming.policy === 'identity');
    for (const origin of new Set(identity.map((r) => r.source))) {
      const reached = reachable(
        identity.filter((r) => r.target !== origin),
        origin,
      );
      for (const cluster of reached) {
        if (cluster === origin) continue;
        const into = identity.filter((r) => r.target === cluster && r.source !== cluster && reached.has(r.source));
        const from = [...new Set(into.map((r) => r.source))];
        if (from.length < 2) continue;
        const second = into.find((r) => r.source === from[1])!;
        add({
          path: `routes[${index.get(second)!}].source`,
          message: `with the identity policy, records of ${what} that originate on '${origin}' would reach '${cluster}' both from '${from[0]}' and from '${from[1]}'; the loop guard drops only records coming back to their origin, so each would be written to '${cluster}' more than once; give every cluster one path from each origin (a ring, or a pair mirroring each other), or use the prefix policy`,
        });
      }
    }
  }
  return [...out.values()];
}

/**
 * The separator and loop problems a new or changed route brings into a deployment: what `route` together with
 * `others` (the config file's routes and the other stored routes) has that `others` alone do not. A route checked on
 * its own can pass and still close a cycle with routes defined elsewhere, so REST routes are checked this way.
 * Paths name the new route's fields under `base` (`body.naming.policy`); a problem the checks pin on another route is
 * reported on the same field of the new one, naming the other route.
 */
export function addedRouteProblems(route: RouteConfig, others: { route: RouteConfig; definedIn: string }[], aliases: string[], base: string): LoopProblem[] {
  const existing = others.map((o) => o.route);
  const all = [...existing, route];
  const at = existing.length;
  const key = (p: LoopProblem) => `${p.path}|${p.message}`;
  const before = new Set([...separatorProblems(existing, aliases), ...topologyProblems(existing)].map(key));
  const name = (i: number) => (i === at ? base : `route '${all[i]!.name}' (${others[i]!.definedIn})`);
  const rename = (text: string) => text.replace(/routes\[([0-9]+)\]/g, (_, i: string) => name(Number(i)));
  const out: LoopProblem[] = [];
  for (const p of [...separatorProblems(all, aliases), ...topologyProblems(all)]) {
    if (before.has(key(p))) continue;
    const m = /^routes\[([0-9]+)\](.*)$/.exec(p.path);
    if (!m) continue;
    const i = Number(m[1]);
    out.push(
      i === at
        ? { path: `${base}${m[2]!}`, message: rename(p.message) }
        : { path: `${base}${m[2]!}`, message: `this route completes a setup in which ${name(i)}${m[2]!}: ${rename(p.message)}` },
    );
  }
  return out;
}
