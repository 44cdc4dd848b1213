/**
 * `wan`: the same backlog read through the delay proxy (harness/tcp-proxy.ts), which adds `--rtt` ms of round trip in
 * front of the source; strait with its default and `wan` profiles against MirrorMaker 2.
 */
import { replicateBacklog } from '../backlog';
import { startTcpProxy } from '../harness/tcp-proxy';
import { ratio, rateTable, type ScenarioResult } from '../results';
import { TRANSACTIONAL_SYSTEMS, type SystemName } from '../systems';
import type { BacklogScenario } from './scenario';

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
    const rtt = opts.rttMs ?? 50;
    const wan: ScenarioResult = {
      scenario: `wan (+${rtt} ms round trip to the source)`,
      recordSize,
      codec,
      partitions: opts.partitions,
      records: backlog.records,
      results: [],
    };
    // the delay proxy stands where the source broker's WAN listener is advertised; its queue bound (8 MiB
    // per direction and connection) plays the part of the TCP window a real long link has
    const proxy = await startTcpProxy(c.sourceWan!.upstream, { port: c.sourceWan!.port, delayMs: rtt / 2, maxQueuedBytes: 8 * 1024 * 1024 });
    try {
      await replicateBacklog(ctx, wan, systems, backlog, c.sourceWan!.bootstrap, 'wan');
    } finally {
      await proxy.close();
    }
    return wan;
  },
  table: {
    holds: (s) => s.scenario.startsWith('wan'),
    charted: true,
    markdown(s) {
      const lines = rateTable(s);
      const get = (n: string) => s.results.find((r) => r.system === n)?.recordsPerSec;
      lines.push(
        '',
        `strait-wan / MirrorMaker 2 default: ${ratio(get('strait-wan'), get('mm2-default'))}; strait-wan / MirrorMaker 2 tuned: ${ratio(get('strait-wan'), get('mm2-tuned'))}; strait-wan / strait (default profile): ${ratio(get('strait-wan'), get('strait'))}`,
        '',
      );
      return lines;
    },
  },
};
