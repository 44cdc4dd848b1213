/**
 * The assignment function: which worker replicates which partition. Pure (no I/O) so its properties are tested
 * directly. Sticky (a partition stays where it is unless balance requires a move), balanced within one partition,
 * incremental (moves only what must move); every change of owner raises the partition's epoch.
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
}

export interface AssignOutput {
  assignment: Map<string, Owned>;
  /** partitions whose owner changed (including newly assigned ones) */
  moved: string[];
}

export function assign(input: AssignInput): AssignOutput {
  const workers = [...new Set(input.workers)].sort();
  const assignment = new Map<string, Owned>();
  const moved: string[] = [];
  if (workers.length === 0) return { assignment, moved };
  const load = new Map<string, string[]>(workers.map((w) => [w, []]));
  const unplaced: string[] = [];
  for (const p of input.partitions) {
    const cur = input.current.get(p);
    if (cur && load.has(cur.worker)) {
      load.get(cur.worker)!.push(p);
      assignment.set(p, cur);
    } else {
      unplaced.push(p);
    }
  }
  const total = input.partitions.length;
  const floor = Math.floor(total / workers.length);
  const extra = total % workers.length;
  // The most loaded keep up to ceil; the rest up to floor. Ties go to the worker already holding more (stickier).
  const ranked = [...workers].sort((a, b) => load.get(b)!.length - load.get(a)!.length || a.localeCompare(b));
  const quota = new Map(ranked.map((w, i) => [w, floor + (i < extra ? 1 : 0)]));
  for (const w of workers) {
    const mine = load.get(w)!;
    while (mine.length > quota.get(w)!) unplaced.push(mine.pop()!);
  }
  const epochOf = (p: string) => Math.max(input.current.get(p)?.epoch ?? 0, input.epochs?.get(p) ?? 0);
  for (const p of unplaced) {
    let best = workers[0]!;
    for (const w of workers) {
      const room = quota.get(w)! - load.get(w)!.length;
      if (room > quota.get(best)! - load.get(best)!.length) best = w;
    }
    load.get(best)!.push(p);
    assignment.set(p, { worker: best, epoch: epochOf(p) + 1 });
    moved.push(p);
  }
  return { assignment, moved };
}
