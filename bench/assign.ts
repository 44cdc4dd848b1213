/**
 * Scale bench of the assignment function (not a test): 100,000 partitions over 500 workers, then one worker added,
 * one removed, one topic added — with equal weights (nothing reported yet) and with measured, heavy-tailed weights.
 * For each step: compute time, partitions moved, and workers whose assignment changed (the controller writes
 * exactly those to the store, `changedWorkers`). Run: `node dist/bench/assign.js [--partitions N] [--workers N]`.
 */
import { performance } from 'node:perf_hooks';
import { cpus, totalmem } from 'node:os';
import { assign, changedWorkers, type Owned } from '../controller/assignment';

interface Step {
  weights: string;
  step: string;
  ms: number;
  moved: number;
  written: number;
  /** heaviest worker's load over the mean */
  maxOverMean: number;
}

/** mulberry32: a seeded PRNG, so every run measures the same fleet (and tests generate the same data) */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1, got '${process.argv[i + 1]}'`);
  return n;
}

function imbalance(a: Map<string, Owned>, weights: Map<string, number> | undefined, workers: string[]): number {
  const load = new Map(workers.map((w) => [w, 0]));
  for (const [k, o] of a) load.set(o.worker, (load.get(o.worker) ?? 0) + (weights?.get(k) ?? 1));
  const l = [...load.values()];
  const mean = l.reduce((x, y) => x + y, 0) / l.length;
  return Math.max(...l) / mean;
}

export function runAssignBench(partitions: number, workerCount: number, perTopic = 100): Step[] {
  const topics = Math.ceil(partitions / perTopic);
  const keys: string[] = [];
  for (let t = 0; t < topics && keys.length < partitions; t++)
    for (let p = 0; p < perTopic && keys.length < partitions; p++) keys.push(`route|topic-${t}/${p}`);
  const newTopic = Array.from({ length: perTopic }, (_, p) => `route|topic-new/${p}`);
  const workers = Array.from({ length: workerCount }, (_, i) => `worker-${String(i).padStart(4, '0')}`);
  const rnd = prng(42);
  // bytes/s per partition: log-uniform from 1 KB/s to ~3 MB/s (a few hot topics, many quiet ones)
  const measured = new Map(keys.map((k) => [k, 1000 * Math.exp(rnd() * 8)]));
  const out: Step[] = [];
  for (const [label, weights] of [
    ['equal (none reported)', undefined],
    ['measured bytes/s', measured],
  ] as const) {
    let current = new Map<string, Owned>();
    let fleet = workers;
    let parts = keys;
    const step = (name: string, nextFleet: string[], nextParts: string[]) => {
      const started = performance.now();
      const r = assign({ current, workers: nextFleet, partitions: nextParts, ...(weights ? { weights } : {}) });
      const written = changedWorkers(current, r.assignment, r.moved).size;
      const ms = performance.now() - started;
      out.push({ weights: label, step: name, ms, moved: r.moved.length, written, maxOverMean: imbalance(r.assignment, weights, nextFleet) });
      current = r.assignment;
      fleet = nextFleet;
      parts = nextParts;
    };
    step(`initial (${keys.length} partitions, ${workers.length} workers)`, fleet, parts);
    step('add one worker', [...fleet, 'worker-new'], parts);
    step(
      'remove one worker',
      fleet.filter((w) => w !== 'worker-0007'),
      parts,
    );
    step(`add a topic (${perTopic} partitions)`, fleet, [...parts, ...newTopic]);
    step('same input again (no change)', fleet, parts);
  }
  return out;
}

if (require.main === module) {
  const partitions = arg('partitions', 100_000);
  const workers = arg('workers', 500);
  // one run to let the JIT settle, then the measured one (a controller computes this every refresh)
  runAssignBench(partitions, workers);
  const steps = runAssignBench(partitions, workers);
  const cpu = cpus();
  process.stdout.write(`machine: ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n\n`);
  process.stdout.write('| weights | step | compute ms | partitions moved | workers written | heaviest / mean |\n|---|---|---:|---:|---:|---:|\n');
  for (const s of steps) process.stdout.write(`| ${s.weights} | ${s.step} | ${s.ms.toFixed(0)} | ${s.moved} | ${s.written} | ${s.maxOverMean.toFixed(3)} |\n`);
  const slow = steps.filter((s) => s.ms >= 1000);
  if (slow.length > 0) {
    process.stderr.write(`over 1 s: ${slow.map((s) => `${s.weights} / ${s.step}`).join(', ')}\n`);
    process.exitCode = 1;
  }
}
