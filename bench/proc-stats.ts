/**
 * CPU time and resident memory of a process tree, read from /proc (Linux). Used by the bench to charge each
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

/** utime + stime of the tree, seconds (children that already exited and were reaped are in cutime/cstime). */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[11..14] = utime, stime, cutime, cstime (proc(5) fields 14-17)
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      // exited between listing and reading
    }
  }
  return ticks / TICKS;
}

export function rssBytes(pid: number): number {
  let kb = 0;
  for (const p of tree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // exited
    }
  }
  return kb * 1024;
}

/** Open file descriptors of the tree (sockets, files, pipes, eventfds): the entries of each process's /proc/<pid>/fd. */
export function openFds(pid: number): number {
  let n = 0;
  for (const p of tree(pid)) {
    try {
      n += readdirSync(`/proc/${p}/fd`).length;
    } catch {
      // exited
    }
  }
  return n;
}

/**
 * Samples a tree until stopped: `peak` is the largest RSS sum seen, `cpu` the latest CPU seconds read while the tree
 * was alive (a process that exits keeps its last reading instead of dropping to 0), `peakFds` the most open file
 * descriptors seen.
 */
export class ProcSampler {
  peak = 0;
  cpu = 0;
  peakFds = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    const rss = rssBytes(this.pid);
    if (rss === 0) return; // gone
    this.peak = Math.max(this.peak, rss);
    this.cpu = Math.max(this.cpu, cpuSeconds(this.pid));
    this.peakFds = Math.max(this.peakFds, openFds(this.pid));
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peak;
  }
}
