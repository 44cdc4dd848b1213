/**
 * `ceiling`: Kafka's ProducerPerformance into the target and ConsumerPerformance from the source, on the backlog's
 * size and partitions: what these clusters allow on this machine.
 */
import type { Clusters } from '../clusters';
import { runKafkaClass } from '../harness/kafka-runtime';
import type { SystemResult } from '../results';
import { log4jQuiet } from '../systems';
import { createTopic, deleteTopic } from '../topics';
import type { BacklogScenario } from './scenario';

function parseProducerPerf(out: string): number | undefined {
  const lines = out
    .trim()
    .split('\n')
    .filter((l) => /records sent/.test(l));
  const m = /([\d.]+) records\/sec/.exec(lines.at(-1) ?? '');
  return m ? Math.round(Number(m[1])) : undefined;
}

function parseConsumerPerf(out: string): number | undefined {
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const line = out
    .trim()
    .split('\n')
    .filter((l) => /^\d{4}-\d\d-\d\d/.test(l))
    .at(-1);
  const f = line?.split(',').map((s) => s.trim());
  return f && f.length >= 10 ? Math.round(Number(f[9])) : undefined;
}

async function ceilingResults(
  c: Clusters,
  dir: string,
  topic: string,
  o: { records: number; recordSize: number; partitions: number; codec: string },
): Promise<SystemResult[]> {
  const log4j = log4jQuiet(dir);
  const mb = (rps: number) => Number(((rps * o.recordSize) / 1e6).toFixed(1));
  const out: SystemResult[] = [];
  const perfTopic = `${topic}-ceiling`;
  await createTopic(c.target, perfTopic, o.partitions); // the harness brokers do not auto-create topics
  const pp = runKafkaClass(
    c.runtime,
    'org.apache.kafka.tools.ProducerPerformance',
    [
      '--topic',
      perfTopic,
      '--num-records',
      String(o.records),
      '--record-size',
      String(o.recordSize),
      '--throughput',
      '-1',
      '--producer-props',
      `bootstrap.servers=${c.target}`,
      'acks=all',
      'linger.ms=10',
      'batch.size=1048576',
      `compression.type=${o.codec}`,
    ],
    { heap: '1g', log4j },
  );
  const prod = parseProducerPerf(pp.stdout);
  if (prod)
    out.push({
      system: 'ceiling: ProducerPerformance -> target',
      records: o.records,
      seconds: Number((o.records / prod).toFixed(2)),
      recordsPerSec: prod,
      mbPerSec: mb(prod),
      cpuSecondsPerGB: 0,
      peakRssMB: 0,
      note: 'Kafka perf tool, acks=all',
    });
  const cp = runKafkaClass(
    c.runtime,
    'org.apache.kafka.tools.ConsumerPerformance',
    ['--bootstrap-server', c.source, '--topic', topic, '--messages', String(o.records), '--timeout', '60000'],
    { heap: '1g', log4j },
  );
  const cons = parseConsumerPerf(cp.stdout);
  await deleteTopic(c.target, perfTopic);
  if (cons)
    out.push({
      system: 'ceiling: ConsumerPerformance <- source',
      records: o.records,
      seconds: Number((o.records / cons).toFixed(2)),
      recordsPerSec: cons,
      mbPerSec: mb(cons),
      cpuSecondsPerGB: 0,
      peakRssMB: 0,
      note: 'Kafka perf tool, fetch rate',
    });
  return out;
}

export const ceiling: BacklogScenario = {
  name: 'ceiling',
  systems: () => [], // Kafka's perf tools, not replicators
  runs: 'on-backlog',
  // no table of its own: its rows stand in the throughput table (same heading)
  run: async ({ opts, c, work }, _systems, { recordSize, codec, topic }) => ({
    scenario: 'throughput',
    recordSize,
    codec,
    partitions: opts.partitions,
    records: opts.records,
    results: await ceilingResults(c, work, topic, { records: opts.records, recordSize, partitions: opts.partitions, codec }),
  }),
};
