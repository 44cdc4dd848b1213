/**
 * Consumer groups as the failover tests use them: a real group that reads from its committed offsets and commits what
 * it read, the `strait failover|failback` CLI as a child process, and the exactly-the-rest check.
 */
import { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import { projectRoot } from '../../bench/harness/kafka-runtime';
import type { MoveReport } from '../../controller/failover';
import { disconnect, within } from './kafka';

export interface Got {
  topic: string;
  partition: number;
  offset: number;
  value: string;
}

/** Reads up to `max` records as group `group` from its committed offsets (earliest when none), commits what it read. */
export function consumeAndCommit(brokers: string, group: string, topics: string[], max: number, idleMs = 2500, partitions = 3): Promise<Got[]> {
  return within(consumeAndCommitNow(brokers, group, topics, max, idleMs, partitions), 120_000, `reading ${topics.join(', ')} as ${group}`);
}

async function consumeAndCommitNow(brokers: string, group: string, topics: string[], max: number, idleMs: number, partitions: number): Promise<Got[]> {
  const c = new Kafka.KafkaConsumer(
    {
      'bootstrap.servers': brokers,
      'group.id': group,
      'enable.auto.commit': false,
      'enable.partition.eof': false,
      'isolation.level': 'read_committed',
      log_level: 0,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((res, rej) => c.connect({ timeout: 10_000 }, (e) => (e ? rej(e) : res())));
  const out: Got[] = [];
  try {
    // a fresh cluster's group coordinator may not be ready yet (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS): retry
    let committed: Kafka.TopicPartitionOffset[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        committed = await new Promise<Kafka.TopicPartitionOffset[]>((res, rej) =>
          c.committed(
            topics.flatMap((topic) => Array.from({ length: partitions }, (_, partition) => ({ topic, partition }))),
            10_000,
            (e, tp) => (e ? rej(e) : res(tp)),
          ),
        );
        break;
      } catch (e) {
        if (attempt >= 30) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    c.assign(
      committed.map((tp) => ({ topic: tp.topic, partition: tp.partition, offset: tp.offset !== undefined && tp.offset >= 0 ? tp.offset : -2 })) as never,
    );
    let idleSince = Date.now();
    while (out.length < max && Date.now() - idleSince < idleMs) {
      const batch = await new Promise<Kafka.Message[]>((res, rej) => c.consume(Math.min(500, max - out.length), (e, m) => (e ? rej(e) : res(m))));
      if (batch.length > 0) idleSince = Date.now();
      for (const m of batch) out.push({ topic: m.topic, partition: m.partition, offset: m.offset, value: m.value!.toString() });
    }
    const next = new Map<string, Kafka.TopicPartitionOffset>();
    for (const g of out) next.set(`${g.topic}/${g.partition}`, { topic: g.topic, partition: g.partition, offset: g.offset + 1 });
    if (next.size > 0) c.commitSync([...next.values()]);
  } finally {
    await disconnect(c);
  }
  return out;
}

export function cli(
  config: string,
  verb: 'failover' | 'failback',
  group: string,
  from: string,
  to: string,
  extra: string[] = [],
): Promise<{ code: number; report?: MoveReport; stderr: string; stdout: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [join(projectRoot(), 'dist', 'bin', 'strait.js'), verb, '-c', config, '--group', group, '--from', from, '--to', to, '--json', ...extra],
      { timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        let report: MoveReport | undefined;
        try {
          report = JSON.parse(stdout) as MoveReport;
        } catch {
          report = undefined;
        }
        res({ code, report, stderr, stdout });
      },
    );
  });
}

/**
 * Every value exactly once across the two reads, and the second read holds exactly the rest. The second read stops
 * at the number of records left, so a record read twice would show up both as a duplicate and as a missing one.
 */
export function checkExactlyRest(t: Test, all: string[], first: Got[], second: Got[], what: string): void {
  const firstSet = new Set(first.map((g) => g.value));
  const dup = second.filter((g) => firstSet.has(g.value)).length;
  const seen = new Set([...firstSet, ...second.map((g) => g.value)]);
  const missing = all.filter((v) => !seen.has(v)).length;
  t.equal(dup, 0, `${what}: no record read twice`);
  t.equal(missing, 0, `${what}: no record missing`);
  t.equal(first.length + second.length, all.length, `${what}: ${first.length} on the source + ${second.length} on the target = ${all.length}`);
}
