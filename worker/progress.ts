/**
 * What the pool threads report, applied to the worker's partition table: each forwarder's progress batch advances its
 * partitions (committable offset, counts, watermarks), feeds their health (errors, stalls, gaps) and the metrics, and
 * keeps the worker's totals. A draining partition's final report hands it back to the pipeline to commit and forget.
 */
import type { StraitMetrics } from '../shared/metrics';
import type { ForwarderProgress, PartitionProgress } from '../native';
import type { PartitionHealth } from './partition-health';
import { runtimeKey, type PartitionRuntime } from './partitions';

export interface PipelineTotals {
  /** records the target already held, sent again: after a restart inside this worker, or by a start at the committed
   *  offset (strait_records_resent_total) */
  resent: number;
  records: number;
  bytes: number;
  partitions: number;
  lag: number;
  errored: number;
  paused: number;
}

export class ProgressApplier {
  readonly totals: PipelineTotals = { records: 0, bytes: 0, partitions: 0, lag: 0, errored: 0, paused: 0, resent: 0 };
  /** unacknowledged bytes per forwarder (`shard|route`): strait_inflight_bytes is their sum */
  private readonly inflight = new Map<string, number>();

  constructor(
    private readonly partitions: Map<string, PartitionRuntime>,
    private readonly health: PartitionHealth,
    private readonly metrics: StraitMetrics,
    /** a draining partition reported its final state: commit it, then forget it */
    private readonly drained: (rt: PartitionRuntime) => void,
  ) {}

  /** `rt` starts at its committed offset with `n` records past it already on the target: they are sent again. */
  resentOnStart(rt: PartitionRuntime, n: number): void {
    this.metrics.resent.inc({ route: rt.route, topic: rt.topic }, n);
    this.totals.resent += n;
  }

  /** One forwarder's progress batch (pool thread `shard`, route `route`). */
  apply(shard: number, route: string, progress: ForwarderProgress): void {
    const latencyCount = progress.latency.counts.reduce((a, b) => a + b, 0);
    if (latencyCount > 0) this.metrics.latency.add({ route }, progress.latency.counts, progress.latency.sumMs / 1000);
    if (progress.consumerError) this.health.applyClientError(route, 'consumer', progress.consumerError);
    if (progress.producerError) this.health.applyClientError(route, 'producer', progress.producerError);
    for (const pp of progress.partitions) {
      const rt = this.partitions.get(runtimeKey(route, pp.topic, pp.partition));
      if (rt) this.partition(rt, pp);
    }
    let lag = 0;
    let errored = 0;
    let paused = 0;
    for (const p of this.partitions.values()) {
      if (p.highWatermark !== undefined && p.committable >= 0 && !p.draining) lag += Math.max(0, p.highWatermark - p.committable);
      if (p.error) errored++;
      if (p.paused) paused++;
    }
    this.totals.lag = lag;
    this.totals.errored = errored;
    this.totals.paused = paused;
    this.inflight.set(`${shard}|${route}`, progress.inflightBytes);
    let inflight = 0;
    for (const bytes of this.inflight.values()) inflight += bytes;
    this.metrics.inflightBytes.set(inflight);
  }

  private partition(rt: PartitionRuntime, pp: PartitionProgress): void {
    const labels = { route: rt.route, topic: rt.topic, partition: String(rt.partition) };
    // A `truncation` gap goes on where the source's log diverged, below the offset strait had reached: that offset is
    // not in the source's log any more, so the partition's position goes back with the forwarder's, and the stored one
    // no longer counts (as for a re-created topic): the next commit writes the new position, and a restart resumes
    // there rather than meeting the truncation again. Runs from the old log past that point are forgotten (the new
    // log's records land elsewhere on the target).
    const rewound = pp.rewound === true && pp.committable >= 0;
    const advanced = rewound || pp.committable > rt.committable;
    if (advanced) {
      rt.committable = pp.committable;
      rt.leaderEpoch = pp.committableLeaderEpoch;
      if (rewound) {
        rt.committed = -1;
        for (const start of rt.recentRuns.keys()) if (start >= pp.committable) rt.recentRuns.delete(start);
      }
    } else if (pp.committable >= 0 && pp.committable === rt.committable && pp.committableLeaderEpoch !== undefined) {
      rt.leaderEpoch = pp.committableLeaderEpoch;
    }
    if (pp.highWatermark !== undefined && pp.highWatermark >= 0) rt.highWatermark = pp.highWatermark;
    if (pp.records > 0) {
      rt.records += pp.records;
      rt.bytes += pp.bytes;
      this.totals.records += pp.records;
      this.totals.bytes += pp.bytes;
      this.metrics.records.inc(labels, pp.records);
      this.metrics.bytes.inc(labels, pp.bytes);
    }
    if (pp.dropped > 0) this.metrics.dropped.inc({ route: rt.route, topic: rt.topic }, pp.dropped);
    if (pp.resent !== undefined && pp.resent > 0) {
      this.metrics.resent.inc({ route: rt.route, topic: rt.topic }, pp.resent);
      this.totals.resent += pp.resent;
    }
    if (pp.lastTimestamp > 0) {
      rt.lastTimestamp = pp.lastTimestamp;
      this.metrics.recordAge.set(labels, Math.max(0, (Date.now() - pp.lastTimestamp) / 1000));
    }
    if (rt.highWatermark !== undefined && rt.committable >= 0) this.metrics.lag.set(labels, Math.max(0, rt.highWatermark - rt.committable));
    // nothing committed yet: a restart reads from the route's start, so the whole log counts (an upper bound)
    if (rt.highWatermark !== undefined) this.metrics.committedLag.set(labels, Math.max(0, rt.highWatermark - Math.max(0, rt.committed)));
    rt.paused = pp.paused;
    this.metrics.paused.set(labels, pp.paused ? 1 : 0);
    this.health.applyError(rt, pp);
    this.health.checkStall(rt, pp, advanced);
    for (const gap of pp.gaps ?? []) this.health.applyGap(rt, gap);
    for (const run of pp.runs) {
      rt.runs.set(run[0], run);
      rt.recentRuns.set(run[0], run);
    }
    if (!pp.assigned && pp.inflight === 0 && rt.draining) this.drained(rt);
  }
}
