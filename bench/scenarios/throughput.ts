/**
 * `throughput`: each system replicates the preloaded backlog into its own target topic; records/s and MB/s from the
 * first record landing to the last, CPU seconds per GB and peak RSS of its own processes.
 */
import { replicateBacklog } from '../backlog';
import { ratio, rateTable, type ScenarioResult } from '../results';
import type { BacklogScenario, ResultTable } from './scenario';

/** Also the ceiling's table: its rows join this one under the same heading. */
export const throughputTable: ResultTable = {
  holds: (s) => s.scenario === 'throughput',
  charted: true,
  markdown(s) {
    const lines = rateTable(s);
    const get = (n: string) => s.results.find((r) => r.system === n)?.recordsPerSec;
    const ceiling = Math.min(
      ...s.results
        .filter((r) => r.system.startsWith('ceiling'))
        .map((r) => r.recordsPerSec)
        .filter((x) => x > 0),
    );
    lines.push(
      '',
      `strait / MirrorMaker 2 default: ${ratio(get('strait'), get('mm2-default'))}; strait / MirrorMaker 2 tuned: ${ratio(get('strait'), get('mm2-tuned'))}; ` +
        `strait / JS loop: ${ratio(get('strait'), get('js-baseline'))}; strait / ceiling: ${ratio(get('strait'), Number.isFinite(ceiling) ? ceiling : undefined)}`,
      '',
    );
    return lines;
  },
};

export const throughput: BacklogScenario = {
  name: 'throughput',
  systems: (given) => given.filter((s) => s !== 'strait-wan'),
  runs: 'on-backlog',
  async run(ctx, systems, { recordSize, codec, topic }) {
    const { opts, c } = ctx;
    const scenario: ScenarioResult = { scenario: 'throughput', recordSize, codec, partitions: opts.partitions, records: opts.records, results: [] };
    await replicateBacklog(ctx, scenario, systems, topic, c.source, '');
    return scenario;
  },
  table: throughputTable,
};
