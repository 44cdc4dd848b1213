/**
 * CPU time, resident memory and open file descriptors of a process tree, read from /proc (Linux). Used by the bench to charge each
 * replicator for exactly its own processes (brokers excluded).
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

export function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]!));
  return all;
}

/** The sum of `read` over the processes `pids`; one that exited between the listing and the read counts 0. */
function sumOver(pids: readonly number[], read: (pid: number) => number): number {
  let n = 0;
  for (const p of pids) {
    try {
      n += read(p);
    } catch {
      // exited
    }
  }
  return n;
}

/** utime + stime + cutime + cstime of one process, clock ticks (proc(5) fields 14-17 of /proc/<pid>/stat). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
}

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

/** Open file descriptors of one process (sockets, files, pipes, eventfds): the entries of /proc/<pid>/fd. */
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/**
 * utime + stime of the tree, seconds (children that already exited and were reaped are in cutime/cstime); `pids`: the
 * tree when the caller has it already.
 */
export function cpuSeconds(pid: number, pids: readonly number[] = tree(pid)): number {
  return sumOver(pids, cpuTicks) / TICKS;
}

export function rssBytes(pid: number, pids: readonly number[] = tree(pid)): number {
  return sumOver(pids, rssKb) * 1024;
}

/**
 * Samples a tree until stopped: `peak` is the largest RSS sum seen, `cpu` the latest CPU seconds read while the tree
 * was alive (a process that exits keeps its last reading instead of dropping to 0), `peakFds` the most open file
 * descriptors seen (when asked to count them).
 */
export class ProcSampler {
  peak = 0;
  cpu = 0;
  peakFds = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 100,
    /** count open file descriptors too (`peakFds`; the many-partitions scenario) */
    private readonly countFds = false,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    const pids = tree(this.pid); // listed once for the three readings
    const rss = rssBytes(this.pid, pids);
    if (rss === 0) return; // gone
    this.peak = Math.max(this.peak, rss);
    this.cpu = Math.max(this.cpu, cpuSeconds(this.pid, pids));
    if (this.countFds) this.peakFds = Math.max(this.peakFds, sumOver(pids, fdCount));
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peak;
  }
}
