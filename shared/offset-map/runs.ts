/**
 * Exact offset translation from offset-map runs (records.ts): the arithmetic, with no I/O.
 *
 * A run says: source offsets srcStart..srcEnd of one partition all exist and landed on the target at source + delta,
 * with nothing else in between. The forwarder opens a new run whenever the delta changes (a compacted-away offset, a
 * transaction marker, an aborted or loop-guarded record that was not forwarded, a record produced locally on the
 * target), so consecutive runs leave gaps that no replicated record occupies.
 *
 * A consumer's committed offset C means "the next record I want is the first one at or after C". On the target that
 * record is the first replicated record whose source offset is >= C:
 *   - C inside a run              -> C + delta
 *   - C in a gap before a run     -> that run's srcStart + delta (the gap holds nothing replicated)
 *   - C past the last run         -> lastEnd + delta + 1, which is exact only when the replicator has handled every
 *                                    source offset below C (its own committed offset `handled` >= C); otherwise the
 *                                    records handled..C-1 are still on their way and a consumer starting there would
 *                                    read them again ("pending", at most C - handled duplicates)
 *   - C before the first run      -> the first run's start ("miss": the map does not reach back that far, e.g. the
 *                                    route started at `latest` or the group is older than what was replicated)
 */

export interface Run {
  srcStart: number;
  srcEnd: number;
  delta: number;
}

export type Translation =
  | { kind: 'exact'; offset: number }
  /** the replicator has not yet handled source offsets `handled`..C-1; `maxDuplicates` bounds what a consumer re-reads */
  | { kind: 'pending'; offset: number; maxDuplicates: number }
  /** C is older than the oldest mapped record; `offset` is the oldest mapped target offset */
  | { kind: 'miss'; offset: number }
  /** nothing of this partition has been replicated yet */
  | { kind: 'unmapped' };

/** The runs of one (route, source topic, partition), kept sorted by srcStart. */
export class PartitionRuns {
  private runs: Run[] = [];

  get size(): number {
    return this.runs.length;
  }

  /** Adds or widens a run (the open run is rewritten with a growing srcEnd under the same srcStart). */
  add(run: Run): void {
    const i = this.lowerBound(run.srcStart);
    const at = this.runs[i];
    if (at !== undefined && at.srcStart === run.srcStart) {
      if (run.srcEnd > at.srcEnd || run.delta !== at.delta) this.runs[i] = { ...run };
      return;
    }
    this.runs.splice(i, 0, { ...run });
  }

  /** first index whose srcStart >= offset */
  private lowerBound(offset: number): number {
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.runs[mid]!.srcStart < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** first index whose srcEnd >= offset (runs do not overlap, so srcEnd is sorted too) */
  private firstEndingAtOrAfter(offset: number): number {
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.runs[mid]!.srcEnd < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Source committed offset -> target committed offset. `handled`: the replicator's own committed source offset
   * (everything below it is on the target and in the map); omit it when unknown.
   */
  translate(committed: number, handled?: number): Translation {
    const first = this.runs[0];
    if (first === undefined) return { kind: 'unmapped' };
    if (committed < first.srcStart) return { kind: 'miss', offset: first.srcStart + first.delta };
    const i = this.firstEndingAtOrAfter(committed);
    const run = this.runs[i];
    if (run !== undefined) {
      return { kind: 'exact', offset: (committed >= run.srcStart ? committed : run.srcStart) + run.delta };
    }
    const last = this.runs[this.runs.length - 1]!;
    const offset = last.srcEnd + last.delta + 1;
    if (handled !== undefined && handled >= committed) return { kind: 'exact', offset };
    const from = Math.max(handled ?? last.srcEnd + 1, last.srcEnd + 1);
    return { kind: 'pending', offset, maxDuplicates: committed - from };
  }

  /**
   * Target committed offset -> source committed offset (failback of what a consumer read on the target): the source
   * offset of the first replicated record at or after `committed` on the target, or one past the last replicated
   * record when the consumer has read all of them.
   */
  inverse(committed: number): Translation {
    const first = this.runs[0];
    if (first === undefined) return { kind: 'unmapped' };
    if (committed < first.srcStart + first.delta) return { kind: 'miss', offset: first.srcStart };
    const run = this.runs[this.firstTargetEndingAtOrAfter(committed)];
    if (run !== undefined) {
      return { kind: 'exact', offset: committed >= run.srcStart + run.delta ? committed - run.delta : run.srcStart };
    }
    const last = this.runs[this.runs.length - 1]!;
    return { kind: 'exact', offset: last.srcEnd + 1 };
  }

  /** first index whose target end (srcEnd + delta) >= offset; target offsets grow with source offsets */
  private firstTargetEndingAtOrAfter(offset: number): number {
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = this.runs[mid]!;
      if (r.srcEnd + r.delta < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** how many target offsets in [lo, hi) hold replicas (mapped records) of this partition */
  targetCount(lo: number, hi: number): number {
    let n = 0;
    for (let i = this.firstTargetEndingAtOrAfter(lo); i < this.runs.length; i++) {
      const r = this.runs[i]!;
      const start = Math.max(lo, r.srcStart + r.delta);
      const end = Math.min(hi, r.srcEnd + r.delta + 1);
      if (start >= hi) break;
      if (end > start) n += end - start;
    }
    return n;
  }

  /** the last source offset mapped, if any */
  get lastSource(): number | undefined {
    const last = this.runs[this.runs.length - 1];
    return last?.srcEnd;
  }
}

/** All runs of a target cluster's offset map, by route / source topic / partition. */
export class OffsetIndex {
  private readonly byKey = new Map<string, PartitionRuns>();
  /** route + target topic -> source topic */
  private readonly sources = new Map<string, string>();

  static key(route: string, sourceTopic: string, partition: number): string {
    return `${route}\u0000${sourceTopic}\u0000${partition}`;
  }

  add(route: string, sourceTopic: string, targetTopic: string, partition: number, run: Run): void {
    this.sources.set(`${route}\u0000${targetTopic}`, sourceTopic);
    const k = OffsetIndex.key(route, sourceTopic, partition);
    let p = this.byKey.get(k);
    if (!p) this.byKey.set(k, (p = new PartitionRuns()));
    p.add(run);
  }

  get(route: string, sourceTopic: string, partition: number): PartitionRuns | undefined {
    return this.byKey.get(OffsetIndex.key(route, sourceTopic, partition));
  }

  /** the source topic a route replicated into `targetTopic`, if the map has seen it */
  sourceTopicOf(route: string, targetTopic: string): string | undefined {
    return this.sources.get(`${route}\u0000${targetTopic}`);
  }

  get partitions(): number {
    return this.byKey.size;
  }
}

/**
 * The target offset just past the last record replicated from below source offset `committed`, from recent runs of one
 * partition as `[srcStart, srcEnd, delta]` (any order): where a restart from `committed` writes its first record if the
 * target holds nothing more of this partition. Undefined when no run starts below `committed` (not known here).
 */
export function targetEndBefore(runs: Iterable<readonly [number, number, number]>, committed: number): number | undefined {
  let best: readonly [number, number, number] | undefined;
  for (const r of runs) if (r[0] <= committed - 1 && (best === undefined || r[0] > best[0])) best = r;
  return best === undefined ? undefined : Math.min(committed - 1, best[1]) + best[2] + 1;
}
