/**
 * The assignment function: which worker replicates which partition. Pure (no I/O) so its properties are tested
 * directly. Sticky (a partition stays where it is unless balance requires a move), balanced by weight (the bytes/s
 * workers report per partition) with hysteresis, incremental (moves only what must move); every change of owner
 * raises the partition's epoch.
 *
 * Weights. A partition's weight is its measured bytes/s. A partition nobody has measured yet (new topic, new route,
 * controller just started) counts as the MEAN of the measured ones — the mean rather than the median because in a
 * fleet of many idle partitions and a few hot ones the median is near zero, and piling every new partition on one
 * worker because "unknown = idle" is the worse mistake. Every weight is at least MIN_SHARE of that mean, so idle
 * partitions still cost something and one worker does not collect thousands of them. When every partition weighs
 * the same (nothing measured yet, or all equal) the tolerance is 0 and the result is balanced by count within one
 * partition, exactly.
 *
 * Hysteresis. Nothing moves while every worker's load is within `tolerance` of the mean (measurements are noisy). Once
 * one is outside, partitions move from the heaviest to the lightest worker until every load is within HALF the
 * tolerance (or no single move improves the pair), so the next small fluctuation does not trigger another round.
 * Each move takes the largest partition that keeps both workers inside that band, so few partitions move.
 */
export interface Owned {
  worker: string;
  epoch: number;
}

export interface AssignInput {
  /** partition key -> current owner */
  current: ReadonlyMap<string, Owned>;
  /** live workers that may receive partitions (drained ones excluded) */
  workers: readonly string[];
  /** every partition that should be replicated */
  partitions: readonly string[];
  /** highest epoch ever seen per partition (survives ownership gaps and controller restarts) */
  epochs?: ReadonlyMap<string, number>;
  /** measured weight (bytes/s) per partition; a partition missing here is unknown (see the module comment) */
  weights?: ReadonlyMap<string, number>;
  /** how far (fraction of the mean load) a worker may be from the mean before partitions move. Default 0.1 */
  tolerance?: number;
  /**
   * false: only partitions without a live owner (orphaned, new) are placed, each on the least loaded worker; nothing
   * owned moves. Default true (see Controller: load rebalances are spaced by `controller.rebalanceIntervalMs`)
   */
  rebalance?: boolean;
  /**
   * workers that left but are inside their grace period: what they hold stays theirs (same epoch), they receive
   * nothing new, and neither they nor their partitions count for the balance of the others
   */
  holding?: readonly string[];
}

export interface AssignOutput {
  assignment: Map<string, Owned>;
  /** partitions whose owner changed (including newly assigned ones) */
  moved: string[];
}

export const DEFAULT_TOLERANCE = 0.1;
/** the least weight of a partition, as a fraction of the mean measured weight */
export const MIN_SHARE = 0.02;

/**
 * Effective weights, in the order of `partitions`: unknown = mean of the known ones, floor MIN_SHARE of it; all 1
 * when they would all be equal (`uniform`).
 */
export function effectiveWeights(
  partitions: readonly string[],
  measured: ReadonlyMap<string, number> | undefined,
): { weights: Float64Array; uniform: boolean } {
  const weights = new Float64Array(partitions.length).fill(-1);
  let sum = 0;
  let known = 0;
  if (measured && measured.size > 0) {
    for (let i = 0; i < partitions.length; i++) {
      const w = measured.get(partitions[i]!);
      if (w !== undefined && Number.isFinite(w) && w >= 0) {
        weights[i] = w;
        sum += w;
        known++;
      }
    }
  }
  // nothing measured: all 1; everything measured idle: all 0 (then uniform, so balanced by count)
  const mean = known > 0 ? sum / known : 1;
  const floor = mean * MIN_SHARE;
  let uniform = true;
  for (let i = 0; i < weights.length; i++) {
    const m = weights[i]!;
    weights[i] = m < 0 ? mean : Math.max(m, floor);
    if (weights[i] !== weights[0]) uniform = false;
  }
  // equal weights: count them as 1 each, so the arithmetic below is exact and the balance is by count
  if (uniform) weights.fill(1);
  return { weights, uniform };
}

/** A worker's partitions (indexes into the input's `partitions`) and their summed weight. */
interface Bin {
  id: string;
  load: number;
  parts: number[];
}

/** Lightest first; ties: fewer partitions, then name (deterministic). */
function lighter(a: Bin, b: Bin): boolean {
  return a.load < b.load || (a.load === b.load && (a.parts.length < b.parts.length || (a.parts.length === b.parts.length && a.id < b.id)));
}

/** A binary min-heap of bins by `lighter`, for placing many partitions in O(log W) each. */
class BinHeap {
  private readonly h: Bin[] = [];

  constructor(bins: Bin[]) {
    for (const b of bins) this.push(b);
  }

  push(b: Bin): void {
    const h = this.h;
    h.push(b);
    let i = h.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!lighter(h[i]!, h[up]!)) break;
      [h[i], h[up]] = [h[up]!, h[i]!];
      i = up;
    }
  }

  pop(): Bin {
    const h = this.h;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && lighter(h[l]!, h[m]!)) m = l;
        if (r < h.length && lighter(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

export function assign(input: AssignInput): AssignOutput {
  const workers = [...new Set(input.workers)].sort();
  const live = new Set(workers);
  const holding = new Set((input.holding ?? []).filter((w) => !live.has(w)));
  const partitions = input.partitions;
  const { weights, uniform } = effectiveWeights(partitions, input.weights);
  const tolerance = uniform ? 0 : Math.max(0, input.tolerance ?? DEFAULT_TOLERANCE);
  const bins = new Map<string, Bin>(workers.map((w) => [w, { id: w, load: 0, parts: [] }]));
  /** 1: owned by a holding worker (stays as it is) */
  const held = new Uint8Array(partitions.length);
  /** 1: has no live owner, so it moves in this round anyway */
  const fresh = new Uint8Array(partitions.length);
  const unplaced: number[] = [];
  for (let i = 0; i < partitions.length; i++) {
    const cur = input.current.get(partitions[i]!);
    const bin = cur ? bins.get(cur.worker) : undefined;
    if (bin) {
      bin.parts.push(i);
      bin.load += weights[i]!;
    } else if (cur && holding.has(cur.worker)) {
      held[i] = 1;
    } else {
      unplaced.push(i);
      fresh[i] = 1;
    }
  }

  const owner: (string | undefined)[] = new Array(partitions.length);
  if (workers.length > 0) {
    // heaviest first onto the lightest worker (LPT); the sort is stable, so equal weights keep the input order
    if (!uniform) unplaced.sort((a, b) => weights[b]! - weights[a]!);
    const heap = new BinHeap([...bins.values()]);
    for (const i of unplaced) {
      const bin = heap.pop();
      bin.parts.push(i);
      bin.load += weights[i]!;
      heap.push(bin);
    }
    if (input.rebalance !== false) rebalance([...bins.values()], weights, tolerance, fresh);
    for (const bin of bins.values()) for (const i of bin.parts) owner[i] = bin.id;
  }

  const epochOf = (p: string) => Math.max(input.current.get(p)?.epoch ?? 0, input.epochs?.get(p) ?? 0);
  const assignment = new Map<string, Owned>();
  const moved: string[] = [];
  for (let i = 0; i < partitions.length; i++) {
    const p = partitions[i]!;
    const cur = input.current.get(p);
    if (held[i]) {
      assignment.set(p, cur!);
      continue;
    }
    const w = owner[i];
    if (w === undefined) continue;
    if (cur && cur.worker === w) {
      assignment.set(p, cur);
    } else {
      assignment.set(p, { worker: w, epoch: epochOf(p) + 1 });
      moved.push(p);
    }
  }
  return { assignment, moved };
}

/**
 * Moves partitions from the heaviest to the lightest worker while a load is outside the band (see the module
 * comment). Each move lowers the sum of squared loads, so it ends; the cap is a guard only.
 */
function rebalance(bins: Bin[], weights: Float64Array, tolerance: number, fresh: Uint8Array): void {
  if (bins.length < 2) return;
  const total = bins.reduce((a, b) => a + b.load, 0);
  const mean = total / bins.length;
  // a move must improve the pair by more than float noise (loads are sums of many doubles)
  const eps = tolerance > 0 ? mean * 1e-9 : 0;
  const extremes = () => {
    let h = bins[0]!;
    let l = bins[0]!;
    for (const b of bins) {
      if (lighter(h, b)) h = b;
      if (lighter(b, l)) l = b;
    }
    return { h, l };
  };
  const first = extremes();
  if (first.h.load - mean <= tolerance * mean + eps && mean - first.l.load <= tolerance * mean + eps) return;
  const target = (tolerance / 2) * mean;
  let guard = 0;
  for (const b of bins) guard += b.parts.length;
  guard = guard * 2 + 16;
  while (guard-- > 0) {
    const { h, l } = extremes();
    if (h.load - mean <= target + eps && mean - l.load <= target + eps) return;
    const gap = h.load - l.load;
    // the largest partition that leaves both inside the target band (few, big moves); failing that, what evens the
    // pair best. A partition that moves in this round anyway (orphaned, new) is taken before one that would otherwise
    // stay: that move is free.
    const room = Math.min(h.load - (mean - target), mean + target - l.load);
    const at = pick(h.parts, weights, room, gap, eps, fresh) ?? pick(h.parts, weights, room, gap, eps);
    if (at === undefined) return;
    const i = h.parts[at]!;
    h.parts[at] = h.parts[h.parts.length - 1]!;
    h.parts.pop();
    h.load -= weights[i]!;
    l.parts.push(i);
    l.load += weights[i]!;
  }
}

/**
 * The position in `parts` of the partition to move: the largest that fits in `room`, else the one nearest half the
 * gap; only partitions lighter than the gap (a move must make the pair more even). With `only`, just those marked.
 */
function pick(parts: readonly number[], weights: Float64Array, room: number, gap: number, eps: number, only?: Uint8Array): number | undefined {
  let best = -1;
  let bestW = -1;
  let fallback = -1;
  let fallbackScore = Infinity;
  for (let at = parts.length - 1; at >= 0; at--) {
    const i = parts[at]!;
    if (only && !only[i]) continue;
    const w = weights[i]!;
    if (w >= gap - eps) continue;
    if (w <= room + eps && w > bestW) {
      best = at;
      bestW = w;
    }
    const score = Math.abs(gap / 2 - w);
    if (score < fallbackScore) {
      fallback = at;
      fallbackScore = score;
    }
  }
  const at = best >= 0 ? best : fallback;
  return at >= 0 ? at : undefined;
}

/**
 * The workers whose stored assignment must be written after `next` replaces `prev`: the new and the previous owner
 * of every partition that moved, and the owner of every partition that is no longer assigned. Nobody else: store
 * writes are proportional to the change, not to the fleet.
 */
export function changedWorkers(prev: ReadonlyMap<string, Owned>, next: ReadonlyMap<string, Owned>, moved: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const k of moved) {
    out.add(next.get(k)!.worker);
    const before = prev.get(k);
    if (before) out.add(before.worker);
  }
  for (const [k, o] of prev) if (!next.has(k)) out.add(o.worker);
  return out;
}
