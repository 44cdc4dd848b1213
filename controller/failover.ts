/**
 * `strait failover` and `strait failback`: move a consumer group to another cluster at exactly the next record.
 *
 * failover --group G --from A --to B: G's committed offsets on A are translated through the A->B route(s) and written
 * into G on B. With A reachable the translation is live (and waits up to the timeout for records still in flight, so
 * it is exact); with A gone, the newest checkpoints on B are used (exact where the checkpoint was; records that were
 * still in flight at the last checkpoint are re-read, and the report says at most how many).
 *
 * Both directions are always combined: the group's offsets on the cluster it leaves for that cluster's own topics map
 * forward through its routes to the destination; its offsets on replicas of the destination's topics map back through
 * the destination's routes to it (inverse translation). When both apply to one partition (identity naming with writes
 * on both sides: one topic interleaves local records and replicas) the lower offset wins, so nothing is lost.
 *
 * failback --group G --from B --to A is the same move, named for the way back after a failover; it needs B reachable.
 */
import { closest } from 'fastest-levenshtein';
import type { RouteConfig, StraitConfig } from '../shared/config';
import { StraitError } from '../shared/errors';
import { OffsetMapView, readCheckpoints } from '../shared/offset-map/readers';
import type { Translation } from '../shared/offset-map/runs';
import { Admins, groupOffsets, inverseTranslate, lowestPerPartition, translateGroups, type PartitionTranslation } from './group-translation';

export interface MoveOptions {
  group: string;
  from: string;
  to: string;
  dryRun: boolean;
  /** how long to wait for in-flight records to land before settling for a pending translation */
  timeoutMs: number;
  log?: (line: string) => void;
}

export interface MoveRow {
  /** topic and partition on the cluster the group leaves */
  fromTopic: string;
  partition: number;
  fromOffset: number;
  /** topic and offset on the cluster the group moves to */
  toTopic: string;
  toOffset: number | undefined;
  /** the group's offset there before (undefined: none) */
  previous: number | undefined;
  kind: Translation['kind'];
  maxDuplicates: number;
  route: string;
}

export interface MoveReport {
  group: string;
  from: string;
  to: string;
  /** live: read from both clusters now; checkpoint: from the newest checkpoints on the target */
  basis: 'live' | 'checkpoint';
  /** checkpoint basis: age of the oldest checkpoint used */
  checkpointAgeMs?: number;
  rows: MoveRow[];
  applied: boolean;
  /** upper bound of records the group reads a second time (0 when every row is exact) */
  maxDuplicates: number;
}

function checkAlias(config: StraitConfig, alias: string, field: string): void {
  const aliases = Object.keys(config.clusters);
  if (aliases.includes(alias)) return;
  const guess = aliases.length > 0 ? closest(alias, aliases) : undefined;
  throw new StraitError(
    'STRAIT_USAGE',
    `${field}: unknown cluster alias '${alias}'${guess ? `; did you mean '${guess}'?` : ''} (defined: ${aliases.join(', ')})`,
    { field },
  );
}

function routesBetween(config: StraitConfig, source: string, target: string): RouteConfig[] {
  return config.routes.filter((r) => r.source === source && r.target === target);
}

function describeRoutes(config: StraitConfig): string {
  return config.routes.length === 0 ? 'none' : config.routes.map((r) => `${r.name} (${r.source} -> ${r.target})`).join(', ');
}

/** Refuses to touch a group that has consumers on `alias`: they would overwrite (or be confused by) the offsets. */
async function requireIdle(admins: Admins, alias: string, group: string): Promise<void> {
  const [desc] = await admins.get(alias).describeConsumerGroups([group], 10_000);
  if (desc && desc.members > 0) {
    throw new StraitError(
      'STRAIT_GROUP_ACTIVE',
      `group '${group}' has ${desc.members} active member(s) on cluster '${alias}' (state ${desc.state}); stop its consumers there first, then run this again`,
      { field: '--group' },
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Translates until every row is settled (exact or miss) or the timeout passes. */
async function translateLive(
  config: StraitConfig,
  routes: RouteConfig[],
  group: string,
  admins: Admins,
  maps: Map<string, OffsetMapView>,
  timeoutMs: number,
  log?: (l: string) => void,
): Promise<PartitionTranslation[]> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const rows: PartitionTranslation[] = [];
    for (const r of routes) {
      let m = maps.get(r.target);
      if (!m) maps.set(r.target, (m = new OffsetMapView(config, r.target)));
      rows.push(...((await translateGroups(config, r, [group], admins, m, 10_000)).get(group) ?? []));
    }
    const open = rows.filter((x) => x.kind === 'pending' || x.kind === 'unmapped');
    if (open.length === 0 || Date.now() >= deadline) return rows;
    if (attempt === 0) log?.(`waiting up to ${Math.round(timeoutMs / 1000)} s for ${open.length} partition(s) whose records are still being replicated`);
    await sleep(500);
  }
}

function summarise(report: Omit<MoveReport, 'maxDuplicates'>): MoveReport {
  return { ...report, maxDuplicates: report.rows.reduce((a, r) => a + r.maxDuplicates, 0) };
}

async function apply(admins: Admins, alias: string, group: string, rows: MoveRow[]): Promise<void> {
  const offsets = rows.filter((r) => r.toOffset !== undefined).map((r) => ({ topic: r.toTopic, partition: r.partition, offset: r.toOffset! }));
  if (offsets.length === 0) return;
  let result;
  try {
    result = await admins.get(alias).alterConsumerGroupOffsets(group, offsets, 10_000);
  } catch (e) {
    throw new StraitError('STRAIT_GROUP_ACTIVE', `cluster '${alias}' refused the offsets for group '${group}': ${(e as Error).message}`, {
      field: '--group',
      cause: e,
    });
  }
  const failed = result.filter((r) => r.error !== undefined);
  if (failed.length > 0) {
    throw new StraitError(
      'STRAIT_GROUP_ACTIVE',
      `cluster '${alias}' refused ${failed.length} offset(s) for group '${group}': ${failed
        .slice(0, 3)
        .map((f) => `${f.topic}[${f.partition}]: ${f.error}`)
        .join('; ')}`,
      { field: '--group' },
    );
  }
}

/**
 * Moves `opts.group` from cluster `from` to cluster `to`. Forward: the group's offsets on `from`'s own topics, through
 * the `from -> to` routes (live, or from the checkpoints on `to` when `from` is unreachable). Inverse: its offsets on
 * replicas of `to`'s topics, through the `to -> from` routes' maps on `from`. For one destination partition the lowest
 * offset wins.
 */
async function move(config: StraitConfig, opts: MoveOptions, verb: 'failover' | 'failback'): Promise<MoveReport> {
  checkAlias(config, opts.from, '--from');
  checkAlias(config, opts.to, '--to');
  const fwd = routesBetween(config, opts.from, opts.to);
  const back = routesBetween(config, opts.to, opts.from);
  if (verb === 'failover' && fwd.length === 0) {
    throw new StraitError('STRAIT_USAGE', `--to: no route replicates from '${opts.from}' to '${opts.to}' (routes: ${describeRoutes(config)})`, {
      field: '--to',
    });
  }
  if (fwd.length === 0 && back.length === 0) {
    throw new StraitError('STRAIT_USAGE', `--to: no route connects '${opts.from}' and '${opts.to}' (routes: ${describeRoutes(config)})`, { field: '--to' });
  }
  const admins = new Admins(config);
  const maps = new Map<string, OffsetMapView>();
  try {
    await requireIdle(admins, opts.to, opts.group);
    let basis: MoveReport['basis'] = 'live';
    let translated: PartitionTranslation[];
    let checkpointAgeMs: number | undefined;
    try {
      await admins.get(opts.from).listConsumerGroupOffsets(opts.group, null, 5000);
      const forward = fwd.length > 0 ? await translateLive(config, fwd, opts.group, admins, maps, opts.timeoutMs, opts.log) : [];
      const inverse: PartitionTranslation[] = [];
      if (back.length > 0) {
        // read after the forward part, so these offsets are no older than the ones it used
        const onFrom = await groupOffsets(admins, opts.from, opts.group, 10_000);
        let m = maps.get(opts.from);
        if (!m) maps.set(opts.from, (m = new OffsetMapView(config, opts.from)));
        const index = await m.catchUp(15_000);
        for (const r of back) inverse.push(...inverseTranslate(config, r, opts.group, onFrom, index));
      }
      translated = [...forward, ...inverse];
    } catch (e) {
      if (verb === 'failback' || (e instanceof StraitError && e.code !== 'STRAIT_CLUSTER_UNREACHABLE')) throw e;
      opts.log?.(`cluster '${opts.from}' is not reachable (${(e as Error).message}); using the newest checkpoints on '${opts.to}'`);
      basis = 'checkpoint';
      const names = new Set([...fwd, ...back].map((r) => r.name));
      const cps = (await readCheckpoints(config, opts.to, 15_000)).filter((c) => names.has(c.route) && c.group === opts.group);
      checkpointAgeMs = cps.length > 0 ? Date.now() - Math.min(...cps.map((c) => c.ts)) : undefined;
      translated = cps.map((c) => ({
        route: c.route,
        group: c.group,
        sourceTopic: c.sourceTopic,
        partition: c.partition,
        targetTopic: c.targetTopic,
        sourceOffset: c.sourceOffset,
        targetOffset: c.targetOffset,
        kind: c.kind,
        maxDuplicates: c.maxDuplicates,
        direction: c.direction ?? 'forward',
      }));
    }
    // the forward routes' runs on the destination count what a merged partition re-reads
    let toMap = maps.get(opts.to);
    if (!toMap && fwd.length > 0 && back.length > 0) {
      maps.set(opts.to, (toMap = new OffsetMapView(config, opts.to)));
      await toMap.catchUp(15_000);
    }
    translated = lowestPerPartition(translated, (row) => toMap?.index.get(row.route, row.sourceTopic, row.partition));
    if (translated.length === 0) {
      throw new StraitError(
        'STRAIT_GROUP_UNKNOWN',
        basis === 'live'
          ? `group '${opts.group}' has no committed offsets on cluster '${opts.from}' for topics the routes between '${opts.from}' and '${opts.to}' replicate (${[...fwd, ...back].map((r) => r.name).join(', ')})`
          : `no checkpoints for group '${opts.group}' on cluster '${opts.to}' (checkpoints are written for groups the route's groups.include selects)`,
        { field: '--group' },
      );
    }
    const previous = await groupOffsets(admins, opts.to, opts.group, 10_000);
    const rows: MoveRow[] = translated.map((t) => ({
      fromTopic: t.sourceTopic,
      partition: t.partition,
      fromOffset: t.sourceOffset,
      toTopic: t.targetTopic,
      toOffset: t.targetOffset,
      previous: previous.get(`${t.targetTopic}/${t.partition}`),
      kind: t.kind,
      maxDuplicates: t.maxDuplicates,
      route: t.route,
    }));
    if (!opts.dryRun) await apply(admins, opts.to, opts.group, rows);
    return summarise({
      group: opts.group,
      from: opts.from,
      to: opts.to,
      basis,
      ...(checkpointAgeMs === undefined ? {} : { checkpointAgeMs }),
      rows,
      applied: !opts.dryRun,
    });
  } finally {
    for (const m of maps.values()) await m.close();
    admins.close();
  }
}

/** A group leaves a route's source for its target (the source may be down: then the checkpoints on the target). */
export function failover(config: StraitConfig, opts: MoveOptions): Promise<MoveReport> {
  return move(config, opts, 'failover');
}

/** The way back: what the group read on `from` (replicas and `from`'s own writes) becomes offsets on `to`. */
export function failback(config: StraitConfig, opts: MoveOptions): Promise<MoveReport> {
  return move(config, opts, 'failback');
}

/** A table for people: one line per partition. */
export function formatMove(report: MoveReport, verb: 'failover' | 'failback'): string {
  const lines = [
    `${verb} of group '${report.group}' from '${report.from}' to '${report.to}' (${report.basis === 'live' ? 'translated live' : `from checkpoints, oldest ${Math.round((report.checkpointAgeMs ?? 0) / 1000)} s old`})${report.applied ? '' : ' — dry run, nothing written'}`,
  ];
  const head = ['FROM TOPIC', 'PART', 'OFFSET', 'TO TOPIC', 'OFFSET', 'WAS', 'KIND'];
  const body = report.rows.map((r) => [
    r.fromTopic,
    String(r.partition),
    String(r.fromOffset),
    r.toTopic,
    r.toOffset === undefined ? '-' : String(r.toOffset),
    r.previous === undefined ? '-' : String(r.previous),
    r.kind === 'pending'
      ? `pending (<= ${r.maxDuplicates} re-read)`
      : r.maxDuplicates > 0
        ? `${r.kind} (${r.maxDuplicates} re-read: both sides' records interleave)`
        : r.kind,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  for (const row of [head, ...body])
    lines.push(
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  const unmapped = report.rows.filter((r) => r.kind === 'unmapped').length;
  const misses = report.rows.filter((r) => r.kind === 'miss').length;
  lines.push(
    report.maxDuplicates === 0 && unmapped === 0 && misses === 0
      ? `exact: ${report.rows.length} partition(s), no record lost or read twice`
      : `${report.rows.length} partition(s): at most ${report.maxDuplicates} record(s) read twice` +
          `${misses ? `; ${misses} older than the offset map (resume at its oldest record)` : ''}${unmapped ? `; ${unmapped} not replicated yet (left unchanged)` : ''}`,
  );
  return lines.join('\n');
}
