/**
 * `throughput`: each system replicates the preloaded backlog into its own target topic, `--repeat` times in rotated
 * order, each time over at least `--min-window` seconds; records/s and MB/s from the first record landing to the last,
 * CPU seconds per GB and peak RSS of its own processes (medians, and the records/s spread).
 */
import { replicateBacklog } from '../backlog';
import { ratio, rateTable, type ScenarioResult } from '../results';
import { CEILING } from './ceiling';
import type { BacklogScenario, ResultTable } from './scenario';

/** Also the ceiling's table: its rows join this one under the same heading. */
export const throughputTable: ResultTable = {
  holds: (s) => s.scenario === 'throughput',
  charted: true,
  markdown(s) {
    const get = (n: string) => s.results.find((r) => r.system === n)?.recordsPerSec;
    const ceiling = get(CEILING) || undefined;
    const lines = rateTable(s, ceiling);
    lines.push(
      '',
      `Medians of the repetitions. strait / MirrorMaker 2 default: ${ratio(get('strait'), get('mm2-default'))}; strait / MirrorMaker 2 tuned: ${ratio(get('strait'), get('mm2-tuned'))}; ` +
        `strait / JS loop: ${ratio(get('strait'), get('js-baseline'))}; strait / concurrent ceiling: ${ratio(get('strait'), ceiling)}`,
      '',
    );
    return lines;
  },
};

export const throughput: BacklogScenario = {
  name: 'throughput',
  systems: (given) => given.filter((s) => s !== 'strait-wan'),
  runs: 'on-backlog',
  async run(ctx, systems, { recordSize, codec, backlog }) {
    const { opts, c } = ctx;
    const scenario: ScenarioResult = { scenario: 'throughput', recordSize, codec, partitions: opts.partitions, records: backlog.records, results: [] };
    await replicateBacklog(ctx, scenario, systems, backlog, c.source, '');
    return [scenario];
  },
  table: throughputTable,
};
