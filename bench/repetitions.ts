/**
 * How a bench run repeats itself and what it reports from the repetitions: systems take turns in a rotated order (so
 * none always runs first, right after a preload, or last, on a warm page cache), and each row is the median of the
 * repetitions that succeeded, with their spread. Also the rules the scenarios size their work by: the backlog that
 * fills a measurement window, and the rates of the latency scenario derived from a measured throughput.
 * Pure functions: unit-tested without clusters (test/bench-repetitions.test.ts).
 */
import type { SystemResult } from './results';

/** The order of repetition `rep` (0-based): the list turned left by `rep`, so each system leads once in every n. */
export function rotate<T>(list: readonly T[], rep: number): T[] {
  if (list.length === 0) return [];
  const k = ((rep % list.length) + list.length) % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/** The median (the mean of the middle two for an even count); undefined for none. */
export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The numeric fields a row's median is taken over, and how each is rounded. */
const FIELDS: ReadonlyArray<[keyof SystemResult, number]> = [
  ['records', 0],
  ['seconds', 2],
  ['recordsPerSec', 0],
  ['mbPerSec', 1],
  ['cpuSecondsPerGB', 1],
  ['peakRssMB', 0],
  ['p50Ms', 0],
  ['p99Ms', 0],
  ['p999Ms', 0],
  ['achievedRate', 0],
  ['maxMs', 0],
  ['maxLagRecords', 0],
  ['partitionsRead', 0],
  ['cpuCores', 2],
  ['peakFds', 0],
];

/** A failed repetition is a row with a note and no rate (`failedRow`). */
export const failed = (r: SystemResult) => r.note !== undefined && r.recordsPerSec === 0;

/**
 * One row out of a system's repetitions: each field the median of the successful ones, the records/s and p99 spread
 * (min and max), how many ran and failed, and the repetitions as they were. All failed: the first failure's row.
 */
export function aggregate(system: string, runs: readonly SystemResult[]): SystemResult {
  const ok = runs.filter((r) => !failed(r));
  const failures = runs.filter(failed);
  if (ok.length === 0) {
    const first = failures[0];
    return { ...failedRow(system, first?.note ?? 'not run'), runs: 0, failedRuns: failures.length, repetitions: [...runs] };
  }
  const row: SystemResult = { ...ok[0]!, system };
  for (const [field, digits] of FIELDS) {
    const m = median(ok.map((r) => r[field]).filter((v): v is number => typeof v === 'number'));
    if (m !== undefined) (row as unknown as Record<string, number>)[field] = Number(m.toFixed(digits));
  }
  const rates = ok.map((r) => r.recordsPerSec);
  row.recordsPerSecRange = [Math.min(...rates), Math.max(...rates)];
  const p99 = ok.map((r) => r.p99Ms).filter((v): v is number => v !== undefined);
  if (p99.length > 0) row.p99MsRange = [Math.min(...p99), Math.max(...p99)];
  row.runs = ok.length;
  row.failedRuns = failures.length;
  const notes = [...new Set(runs.map((r) => r.note).filter((n): n is string => n !== undefined))];
  if (failures.length > 0) notes.unshift(`${failures.length} of ${runs.length} repetitions failed`);
  if (notes.length > 0) row.note = notes.join('; ');
  else delete row.note;
  row.repetitions = runs.map((r) => ({ ...r, repetitions: undefined }));
  return row;
}

export function failedRow(system: string, note: string): SystemResult {
  return { system, records: 0, seconds: 0, recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0, peakRssMB: 0, note };
}

/** Headroom over the measured rate when a backlog is grown: the next repetition may well be faster. */
export const BACKLOG_HEADROOM = 1.25;

/**
 * The backlog (records) that a system replicating at `recordsPerSec` needs for a window of `windowSec`: the current
 * one when it is long enough already, else the rate times the window with headroom (twice that when it lasted less
 * than a quarter of the window: a rate taken over a few seconds is mostly start-up and polling overhead and
 * underestimates what a bigger backlog runs at), and at least half as much again as the current one. Between a
 * quarter and the whole window the measured rate holds: a 7.6 s calibration of strait at 131k records/s ran 122k/s
 * over 54 s, and doubling the headroom there grew 1 M records to 6.6 M, windows of 50-135 s.
 */
export function backlogFor(current: number, recordsPerSec: number, windowSec: number): number {
  if (!(recordsPerSec > 0) || windowSec <= 0) return current;
  const lasted = current / recordsPerSec;
  if (lasted >= windowSec) return current;
  const headroom = BACKLOG_HEADROOM * (lasted < windowSec / 4 ? 2 : 1);
  return Math.max(Math.ceil(current * 1.5), Math.ceil(recordsPerSec * windowSec * headroom));
}

/** The shares of its own measured throughput at which the latency scenario loads each system. */
export const LOAD_SHARES = [0.5, 0.9] as const;

/** The steady rate (records/s, at least 1) at `share` of a measured throughput. */
export function rateAt(share: number, recordsPerSec: number): number {
  return Math.max(1, Math.round(recordsPerSec * share));
}

/** `lo–hi` of a spread, or '-' without one (a single repetition has none worth showing). */
export function range(r: [number, number] | undefined, runs: number | undefined): string {
  return r && (runs ?? 0) > 1 ? `${r[0]}–${r[1]}` : '-';
}
