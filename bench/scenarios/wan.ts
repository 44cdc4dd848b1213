/**
 * `wan`: the same backlog read through the delay proxy (harness/tcp-proxy.ts), which adds `--rtt` ms of round trip in
 * front of the source (one table per round-trip time) and gives each connection a TCP window; strait with its
 * default and `wan` profiles against MirrorMaker 2.
 *
 * The window is what bounds a long link: a connection moves at most a window per round trip. A real receiver
 * advertises a window as large as its socket receive buffer, so each system gets the buffer its consumer of the
 * source asks for (systems.ts, `sourceReceiveBuffer`): MirrorMaker 2 the Java consumer's `receive.buffer.bytes`
 * (65536 unless its config sets it), strait librdkafka's `socket.receive.buffer.bytes` as its profile and config
 * give it; a consumer that leaves the buffer to the OS (0, or -1 in Java) gets the kernel's autotuning cap.
 */
import { readFileSync } from 'node:fs';
import { replicateBacklog } from '../backlog';
import { startTcpProxy } from '../harness/tcp-proxy';
import { ratio, rateTable, type ScenarioResult } from '../results';
import { TRANSACTIONAL_SYSTEMS, type ReceiveBuffer, type SystemName } from '../systems';
import type { BacklogScenario } from './scenario';

/** `--rtt` when not given, ms */
export const DEFAULT_RTT_MS = 50;

/** The autotuning cap assumed when tcp_rmem cannot be read: Linux's default */
const AUTOTUNE_CAP_FALLBACK = 6 * 1024 * 1024;

/**
 * How large the kernel lets an autotuned receive buffer grow: the third field of /proc/sys/net/ipv4/tcp_rmem, or
 * 6 MiB when it cannot be read.
 */
export function autotuneCap(tcpRmem: () => string = () => readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8')): { bytes: number; from: string } {
  try {
    const max = Number(tcpRmem().trim().split(/\s+/)[2]);
    if (Number.isInteger(max) && max > 0) return { bytes: max, from: `tcp_rmem's cap, ${max}` };
  } catch {
    // not Linux, or no /proc: the fallback below
  }
  return { bytes: AUTOTUNE_CAP_FALLBACK, from: `${AUTOTUNE_CAP_FALLBACK} (tcp_rmem unreadable)` };
}

/** The window a system's connections get: the receive buffer its consumer asks for, or the kernel's when it asks none. */
export function windowFor(buffer: ReceiveBuffer, cap: { bytes: number; from: string }): { bytes: number; from: string } {
  const asked = `${buffer.property} ${buffer.bytes}${buffer.byDefault ? ', the default' : ''}`;
  return buffer.bytes > 0 ? { bytes: buffer.bytes, from: asked } : { bytes: cap.bytes, from: `${asked}: the kernel autotunes up to ${cap.from}` };
}

export const wan: BacklogScenario = {
  name: 'wan',
  systems: (given) => [...new Set<SystemName>(['strait', 'strait-wan', ...given.filter((s) => s.startsWith('mm2') && !TRANSACTIONAL_SYSTEMS.includes(s))])],
  runs: 'on-backlog',
  localOnly: {
    wanListener: true,
    refusal:
      "the wan scenario runs on local clusters only: its delay proxy must be the source broker's advertised listener; drop --source/--target or the wan scenario",
  },
  async run(ctx, systems, { recordSize, codec, backlog }) {
    const { opts, c } = ctx;
    const cap = autotuneCap();
    const tables: ScenarioResult[] = [];
    for (const rtt of opts.rttMs ?? [DEFAULT_RTT_MS]) {
      ctx.checkAborted();
      const wan: ScenarioResult = {
        scenario: `wan (+${rtt} ms round trip to the source)`,
        recordSize,
        codec,
        partitions: opts.partitions,
        records: backlog.records,
        results: [],
      };
      // the delay proxy stands where the source broker's WAN listener is advertised; the window, set as each system
      // starts (before the proxy can accept any of its connections), is what bounds each connection, the queue bound
      // (the proxy's default, 64 MiB per direction and connection) only the proxy's memory
      const proxy = await startTcpProxy(c.sourceWan!.upstream, { port: c.sourceWan!.port, delayMs: rtt / 2 });
      const windows = new Map<string, { bytes: number; from: string }>();
      try {
        // the tag names each measurement's deployment, store and target topic: one per round-trip time, or a second
        // table's strait would resume from the first's store into the first's target topic (and never finish)
        await replicateBacklog(ctx, wan, systems, backlog, c.sourceWan!.bootstrap, `wan${rtt}`, (system, started) => {
          const w = windowFor(started.sourceReceiveBuffer, cap);
          proxy.setWindow(w.bytes);
          if (!windows.has(system)) opts.log(`  ${wan.scenario} ${system}: TCP window ${w.bytes} B (${w.from})`);
          windows.set(system, w);
        });
      } finally {
        await proxy.close();
      }
      for (const r of wan.results) {
        const w = windows.get(r.system);
        if (w) Object.assign(r, { windowBytes: w.bytes, windowFrom: w.from });
      }
      tables.push(wan);
    }
    return tables;
  },
  table: {
    holds: (s) => s.scenario.startsWith('wan'),
    charted: true,
    markdown(s) {
      const lines = rateTable(s);
      const get = (n: string) => s.results.find((r) => r.system === n)?.recordsPerSec;
      lines.push(
        '',
        `strait-wan / MirrorMaker 2 default: ${ratio(get('strait-wan'), get('mm2-default'))}; strait-wan / MirrorMaker 2 tuned: ${ratio(get('strait-wan'), get('mm2-tuned'))}; strait-wan / MirrorMaker 2 WAN-tuned: ${ratio(get('strait-wan'), get('mm2-wan'))}; strait-wan / strait (default profile): ${ratio(get('strait-wan'), get('strait'))}`,
      );
      const windows = s.results.filter((r) => r.windowBytes !== undefined).map((r) => `${r.system} ${r.windowBytes! / 1024} KiB (${r.windowFrom})`);
      if (windows.length > 0)
        lines.push('', `TCP window per connection and direction, the most the delay proxy lets be in flight for a round trip: ${windows.join('; ')}.`);
      lines.push('');
      return lines;
    },
  },
};
