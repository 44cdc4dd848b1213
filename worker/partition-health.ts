/**
 * What the worker makes of its partitions' health, as the pool threads report it: the errored state with its code
 * (entered, changed, cleared), stalls (STRAIT_PARTITION_STALLED), client-level errors and offset gaps — each with its
 * metric and its error-level log line. Never silent: this is where a partition that stops, skips or slows is said.
 */
import type { RouteConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import { partitionErrorCode } from '../shared/partition-errors';
import type { ReportedGap } from '../shared/wire';
import type { ClientError, GapReport, PartitionProgress } from '../native';
import type { ErroredPartition, PartitionRuntime } from './partitions';

/** how many recent gaps the status endpoint keeps */
const GAP_HISTORY = 100;

export class PartitionHealth {
  /** the most recent offset gaps, newest last */
  readonly gaps: ReportedGap[] = [];
  /** per route, client and code: client-level errors (applyClientError) */
  private readonly clientErrors = new Map<
    string,
    { route: string; client: 'consumer' | 'producer'; code: string; message: string; count: number; first: number; last: number; loggedAt: number }
  >();

  constructor(
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
    private readonly stallTimeoutMs: number,
    private readonly route: (name: string) => RouteConfig | undefined,
  ) {}

  /** the partitions among `partitions` that are errored or stalled (draining ones aside) */
  errored(partitions: Iterable<PartitionRuntime>): ErroredPartition[] {
    const out: ErroredPartition[] = [];
    for (const rt of partitions) {
      if (rt.stalledSince !== undefined && rt.error === undefined && !rt.draining) {
        out.push({
          route: rt.route,
          topic: rt.topic,
          partition: rt.partition,
          code: 'STRAIT_PARTITION_STALLED',
          kafkaCode: null,
          cause: rt.stallCause ?? '',
          since: new Date(rt.stalledSince).toISOString(),
        });
        continue;
      }
      if (rt.error === undefined || rt.errorCode === undefined || rt.draining) continue;
      out.push({
        route: rt.route,
        topic: rt.topic,
        partition: rt.partition,
        code: rt.errorCode,
        kafkaCode: rt.kafkaCode ?? null,
        cause: rt.error,
        since: new Date(rt.erroredAt ?? Date.now()).toISOString(),
      });
    }
    return out;
  }

  /** Enters, changes or leaves the errored state as the forwarder reports it. */
  applyError(rt: PartitionRuntime, pp: PartitionProgress): void {
    if (pp.error === undefined) {
      if (rt.error !== undefined && !rt.draining) this.clearError(rt, 'recovered');
      return;
    }
    const code = partitionErrorCode(pp.errorKind, pp.errorCode);
    if (rt.error !== undefined && rt.errorCode === code && rt.kafkaCode === pp.errorCode) {
      rt.error = pp.error;
      return;
    }
    if (rt.errorCode !== undefined && rt.errorCode !== code)
      this.metrics.partitionErrored.remove({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: rt.errorCode });
    rt.error = pp.error;
    rt.errorCode = code;
    rt.kafkaCode = pp.errorCode;
    rt.erroredAt = Date.now();
    this.metrics.partitionErrored.set({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code }, 1);
    this.metrics.errors.inc({ route: rt.route, topic: rt.topic, code });
    this.log.error(
      { route: rt.route, topic: rt.topic, partition: rt.partition, code, kafkaCode: pp.errorCode, cause: pp.error },
      `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes no progress: ${code} (${pp.errorCode ?? 'no Kafka code'}): ${pp.error}`,
    );
  }

  clearError(rt: PartitionRuntime, why: 'recovered' | 'unassigned'): void {
    if (rt.error === undefined) return;
    if (rt.errorCode !== undefined)
      this.metrics.partitionErrored.remove({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: rt.errorCode });
    if (why === 'recovered') {
      const seconds = rt.erroredAt !== undefined ? Math.round((Date.now() - rt.erroredAt) / 1000) : undefined;
      this.log.warn(
        { route: rt.route, topic: rt.topic, partition: rt.partition, code: rt.errorCode, erroredSeconds: seconds },
        `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes progress again (was ${rt.errorCode})`,
      );
    }
    delete rt.error;
    delete rt.errorCode;
    delete rt.kafkaCode;
    delete rt.erroredAt;
  }

  /**
   * A partition with work to do whose committable offset stands still for worker.stallTimeoutMs is errored
   * (STRAIT_PARTITION_STALLED), whatever the cause: a cluster down, a producer that gets no acknowledgement, a fetch
   * that returns nothing. One with a precise error already is left to that error.
   */
  checkStall(rt: PartitionRuntime, pp: PartitionProgress, advanced: boolean): void {
    const now = Date.now();
    const behind = rt.highWatermark !== undefined && rt.committable >= 0 && rt.highWatermark > rt.committable;
    if (advanced || rt.draining || (pp.inflight === 0 && !behind)) {
      rt.movedAt = now;
      if (rt.stalledSince !== undefined) this.clearStall(rt, true);
      return;
    }
    if (rt.error !== undefined) {
      if (rt.stalledSince !== undefined) this.clearStall(rt, false);
      return;
    }
    if (rt.stalledSince !== undefined || now - rt.movedAt < this.stallTimeoutMs) return;
    const seconds = Math.round((now - rt.movedAt) / 1000);
    const route = this.route(rt.route);
    const what =
      pp.inflight > 0
        ? `${pp.inflight} records in flight to target '${route?.target ?? '?'}' and none acknowledged`
        : `the source '${route?.source ?? '?'}' is ${rt.highWatermark! - rt.committable} records ahead and none was read`;
    // the newest client-level error of the route's producer and of its consumer, if one came while it stood still
    const newest = (client: 'consumer' | 'producer') =>
      [...this.clientErrors.values()].filter((e) => e.route === rt.route && e.client === client).sort((a, b) => b.last - a.last)[0];
    const said = [newest('producer'), newest('consumer')]
      .filter((e) => e !== undefined && now - e.last < seconds * 1000)
      .map((e) => `; the ${e!.client === 'consumer' ? 'source consumer' : 'target producer'} last said ${e!.code}: ${e!.message}`)
      .join('');
    rt.stalledSince = now;
    rt.stallCause = `no progress for ${seconds} s: ${what}${said}`;
    this.metrics.partitionErrored.set({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: 'STRAIT_PARTITION_STALLED' }, 1);
    this.metrics.errors.inc({ route: rt.route, topic: rt.topic, code: 'STRAIT_PARTITION_STALLED' });
    this.log.error(
      {
        route: rt.route,
        topic: rt.topic,
        partition: rt.partition,
        code: 'STRAIT_PARTITION_STALLED',
        inflight: pp.inflight,
        committable: rt.committable,
        highWatermark: rt.highWatermark,
        cause: rt.stallCause,
      },
      `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes no progress: STRAIT_PARTITION_STALLED: ${rt.stallCause}`,
    );
  }

  private clearStall(rt: PartitionRuntime, recovered: boolean): void {
    this.metrics.partitionErrored.remove({ route: rt.route, topic: rt.topic, partition: String(rt.partition), code: 'STRAIT_PARTITION_STALLED' });
    if (recovered) {
      const seconds = Math.round((Date.now() - rt.stalledSince!) / 1000);
      this.log.warn(
        { route: rt.route, topic: rt.topic, partition: rt.partition, code: 'STRAIT_PARTITION_STALLED', erroredSeconds: seconds },
        `partition ${rt.topic}[${rt.partition}] of route '${rt.route}' makes progress again (was STRAIT_PARTITION_STALLED)`,
      );
    }
    delete rt.stalledSince;
    delete rt.stallCause;
  }

  /**
   * An error a client reports for itself, not for a partition (a broker down, all brokers down, a transport failure):
   * counted in strait_client_errors_total, listed in the worker's status, and logged at error level the first time
   * and then at most once a minute per route, client and code (it repeats with every poll). What it does to
   * partitions shows as STRAIT_PARTITION_STALLED once they stand still.
   */
  applyClientError(route: string, client: 'consumer' | 'producer', { code, message }: ClientError): void {
    const now = Date.now();
    this.metrics.clientErrors.inc({ route, client, code });
    const key = `${route}|${client}|${code}`;
    const e = this.clientErrors.get(key) ?? { route, client, code, message, count: 0, first: now, last: now, loggedAt: 0 };
    e.message = message;
    e.count++;
    e.last = now;
    this.clientErrors.set(key, e);
    if (now - e.loggedAt < 60_000) return;
    e.loggedAt = now;
    const who = client === 'consumer' ? 'source consumer' : 'target producer';
    this.log.error(
      { route, client, code, cause: message, count: e.count },
      `route '${route}': the ${who} reports ${code}: ${message} (${e.count} times since ${new Date(e.first).toISOString()}; logged at most once a minute)`,
    );
  }

  /** the client-level errors of each route's source consumer and target producer, by code, seen in the last 5 minutes */
  recentClientErrors(): { route: string; client: 'consumer' | 'producer'; code: string; message: string; count: number; first: string; last: string }[] {
    const since = Date.now() - 5 * 60_000;
    return [...this.clientErrors.values()]
      .filter((e) => e.last >= since)
      .map((e) => ({
        route: e.route,
        client: e.client,
        code: e.code,
        message: e.message,
        count: e.count,
        first: new Date(e.first).toISOString(),
        last: new Date(e.last).toISOString(),
      }));
  }

  applyGap(rt: PartitionRuntime, gap: GapReport): void {
    // stopped: nothing is skipped yet (the offsets are gone, but the partition waits for the operator)
    if (!gap.stopped) this.metrics.skipped.inc({ route: rt.route, topic: rt.topic, reason: gap.reason }, gap.skipped);
    this.gaps.push({ route: rt.route, topic: rt.topic, partition: rt.partition, ...gap, at: new Date().toISOString() });
    if (this.gaps.length > GAP_HISTORY) this.gaps.splice(0, this.gaps.length - GAP_HISTORY);
    const where = `${rt.topic}[${rt.partition}] of route '${rt.route}'`;
    const what =
      gap.reason === 'retention'
        ? `offsets ${gap.from}..${gap.to - 1} were deleted from the source (retention or deleteRecords) before strait read them: ${gap.skipped} offsets skipped`
        : gap.reason === 'recreated'
          ? `the source topic was deleted and created again (topic id ${rt.topicId ?? 'unknown'}) since offset ${gap.from} was committed: the old topic's records from offset ${gap.from} on were never read, the new topic is replicated from its start`
          : `the source's log was truncated below offset ${gap.from} (e.g. an unclean leader election): the records strait replicated from offset ${gap.to} on are no longer in the source (the target keeps them), which holds other records there now or none`;
    const action = gap.stopped ? 'partition stopped (onGap: stop)' : `replication goes on from offset ${gap.to}`;
    this.log.error(
      { route: rt.route, topic: rt.topic, partition: rt.partition, reason: gap.reason, from: gap.from, to: gap.to, skipped: gap.skipped, stopped: gap.stopped },
      `${where}: ${what}; ${action}`,
    );
  }
}
