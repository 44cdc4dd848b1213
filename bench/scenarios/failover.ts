/**
 * `failover`: one consumer group switches from the source to the target. For each system, with its own topic and
 * group: N numbered records on the source; the group exists (offset 0 everywhere) before the system starts; the
 * system replicates; the group reads 40% of every partition on the source, commits and stops (the switch); strait
 * runs `strait failover` (live translation into the group on the target), MirrorMaker 2 syncs the group's offsets
 * from its checkpoints (sync.group.offsets); once everything is replicated, the same group reads the target topic
 * from its offsets there to the end. Every record is numbered, so re-reads and gaps are counted, not estimated.
 */
import type { ChildProcess } from 'node:child_process';
import { failover as straitFailover } from '../../controller/failover';
import { loadNative } from '../../native';
import { loadConfig } from '../../shared/config';
import { produceNumbered, readAsGroup, recordNumber } from '../numbered-records';
import type { ScenarioResult, SystemResult } from '../results';
import { MM2_CHECKPOINT_INTERVAL_SEC, MM2_FAILOVER_SETTINGS, startSystem, stopChild, type SystemName } from '../systems';
import { createTopic, deleteTopic, Watermarks } from '../topics';
import type { OnceScenario, RunContext } from './scenario';

const FAILOVER_READ_FRACTION = 0.4;
const FAILOVER_SYSTEMS: readonly SystemName[] = ['strait', 'mm2-default', 'mm2-tuned'];

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function until(ctx: RunContext, what: string, check: () => Promise<boolean>, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    ctx.checkAborted();
    if (child && exited(child)) throw new Error(`exited while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function failoverScenario(ctx: RunContext, systems: SystemName[]): Promise<ScenarioResult> {
  const { opts } = ctx;
  const records = opts.failoverRecords ?? 200_000;
  const recordSize = Math.min(...opts.recordSizes);
  const codec = opts.codecs[0] ?? 'none';
  const scenario: ScenarioResult = { scenario: 'failover', recordSize, codec, partitions: opts.partitions, records, results: [] };
  for (const system of systems) {
    ctx.checkAborted();
    try {
      const r = await failoverRun(ctx, system, records, recordSize, codec);
      scenario.results.push(r);
      opts.log(
        `  failover ${system}: read ${r.readBeforeSwitch} before the switch, ${r.readAfterSwitch} after; ${r.duplicates} duplicates, ${r.missing} missing; offsets ready after ${r.offsetsReadySec} s${r.note ? ` (${r.note})` : ''}`,
      );
    } catch (e) {
      ctx.checkAborted();
      scenario.results.push({ system, records: 0, seconds: 0, recordsPerSec: 0, mbPerSec: 0, cpuSecondsPerGB: 0, peakRssMB: 0, note: (e as Error).message });
      opts.log(`  failover ${system}: FAILED ${(e as Error).message}`);
    }
  }
  return scenario;
}

async function failoverRun(ctx: RunContext, system: SystemName, n: number, recordSize: number, codec: string): Promise<SystemResult> {
  const { opts, c, work } = ctx;
  const P = opts.partitions;
  const id = Date.now().toString(36);
  const topic = `fo-${system}-${id}`;
  const group = `fobench-${system}-${id}`;
  const mm2 = system.startsWith('mm2');
  await createTopic(c.source, topic, P);
  const onSource = new Watermarks(c.source);
  const onTarget = new Watermarks(c.target);
  const Admin = loadNative().Admin;
  const sourceAdmin = new Admin({ 'bootstrap.servers': c.source });
  const targetAdmin = new Admin({ 'bootstrap.servers': c.target });
  let child: ChildProcess | undefined;
  let targetTopic: string | undefined;
  const targetOffsets = async (): Promise<Map<number, number>> => {
    const list = await targetAdmin.listConsumerGroupOffsets(group, null, 5000).catch(() => []);
    return new Map(list.filter((o) => o.topic === targetTopic && o.offset >= 0 && o.error === undefined).map((o) => [o.partition, o.offset]));
  };
  try {
    opts.log(`  failover ${system}: producing ${n} numbered records of ${recordSize} B into ${topic} (${P} partitions) ...`);
    await produceNumbered(c.source, topic, P, n, recordSize);
    const highs = await onSource.perPartition(topic, P);
    if (highs.reduce((a, b) => a + b, 0) !== n) throw new Error(`the source topic holds ${highs.reduce((a, b) => a + b, 0)} records, not ${n}`);
    // the group exists before the system starts, as a deployment's groups do long before a switch
    await sourceAdmin.alterConsumerGroupOffsets(
      group,
      highs.map((_, partition) => ({ topic, partition, offset: 0 })),
      10_000,
    );
    const started = await startSystem(system, c, work, topic, P, codec, n, 1000, c.source, 'fo', group, opts.transactionIntervalMs);
    child = started.child;
    ctx.running.add(child);
    targetTopic = started.targetTopic;
    const tt = targetTopic;
    await until(ctx, `${system}: first records on the target`, async () => (await onTarget.total(tt, P)) > 0, 180_000, child);
    // MirrorMaker 2: its checkpoint pipeline runs (offset 0 of the group is synced for some partition) before the
    // switch, so the switch measures checkpointing, not MirrorMaker 2 starting up. Not every partition: MirrorMaker 2
    // keeps at most 10 offset syncs in flight and replaces the waiting ones, so on a backlog many partitions get
    // their first sync well after offset 0, and offset 0 there cannot be translated (too old for the sync store).
    if (mm2) await until(ctx, `${system}: the group's first offsets synced to the target`, async () => (await targetOffsets()).size > 0, 180_000, child);
    if (mm2) opts.log(`  failover ${system}: checkpoints flow (${(await targetOffsets()).size} of ${P} partitions of the group synced at offset 0)`);
    const readOnSource = new Uint8Array(n);
    const readBeforeSwitch = await readAsGroup(c.source, group, topic, P, {
      limit: (p) => Math.floor(highs[p]! * FAILOVER_READ_FRACTION),
      end: (p) => highs[p]!,
      idleMs: 30_000,
      onRecord: (m) => {
        const i = recordNumber(m);
        if (i >= 0 && i < n) readOnSource[i] = 1;
      },
    });
    const switchAt = performance.now();
    opts.log(`  failover ${system}: the group read ${readBeforeSwitch} records on the source and stopped; switching ...`);
    let offsetsReadySec: number;
    const notes: string[] = [];
    if (!mm2) {
      const report = await straitFailover(loadConfig(started.config), { group, from: started.alias, to: 'target', dryRun: false, timeoutMs: 120_000 });
      offsetsReadySec = (performance.now() - switchAt) / 1000;
      const inexact = report.rows.filter((r) => r.kind !== 'exact').length;
      if (inexact > 0) notes.push(`${inexact} partition(s) not exact (${report.rows.map((r) => r.kind).join(',')})`);
    } else {
      // ready: every partition's offset moved past 0, everything is replicated, and the offsets stayed the same for
      // five sync intervals; the time is that of the last change
      const stableMs = 5 * MM2_CHECKPOINT_INTERVAL_SEC * 1000;
      const timeoutMs = Math.max(180_000, (n / 2000) * 1000);
      let last = '';
      let lastChange = performance.now();
      for (;;) {
        const got = await targetOffsets();
        const key = [...got.entries()].sort((a, b) => a[0] - b[0]).join(';');
        const now = performance.now();
        if (key !== last) {
          last = key;
          lastChange = now;
        }
        const moved = highs.every((h, p) => Math.floor(h * FAILOVER_READ_FRACTION) === 0 || (got.get(p) ?? 0) > 0);
        if (moved && now - lastChange >= stableMs && (await onTarget.total(tt, P)) >= n) break;
        if (now - switchAt > timeoutMs) {
          notes.push(`offsets not settled within ${Math.round(timeoutMs / 1000)} s (${got.size} of ${P} partitions synced)`);
          break;
        }
        ctx.checkAborted();
        if (exited(child)) throw new Error('exited while syncing offsets');
        await new Promise((r) => setTimeout(r, 200));
      }
      offsetsReadySec = (lastChange - switchAt) / 1000;
    }
    await until(ctx, `${system}: all ${n} records replicated`, async () => (await onTarget.total(tt, P)) >= n, Math.max(180_000, (n / 2000) * 1000), child);
    await stopChild(child);
    ctx.running.delete(child);
    const targetHighs = await onTarget.perPartition(tt, P);
    const readOnTarget = new Uint8Array(n);
    let duplicates = 0;
    const readAfterSwitch = await readAsGroup(c.target, group, tt, P, {
      limit: () => Infinity,
      end: (p) => targetHighs[p]!,
      idleMs: 15_000,
      onRecord: (m) => {
        const i = recordNumber(m);
        if (i < 0 || i >= n) return;
        if (readOnSource[i] || readOnTarget[i]) duplicates++;
        readOnTarget[i] = 1;
      },
    });
    let missing = 0;
    for (let i = 0; i < n; i++) if (!readOnSource[i] && !readOnTarget[i]) missing++;
    return {
      system,
      records: n,
      seconds: Number(offsetsReadySec.toFixed(2)),
      recordsPerSec: 0,
      mbPerSec: 0,
      cpuSecondsPerGB: 0,
      peakRssMB: 0,
      readBeforeSwitch,
      readAfterSwitch,
      duplicates,
      missing,
      offsetsReadySec: Number(offsetsReadySec.toFixed(2)),
      ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    };
  } finally {
    if (child) {
      await stopChild(child);
      ctx.running.delete(child);
    }
    sourceAdmin.close();
    targetAdmin.close();
    await onSource.close();
    await onTarget.close();
    if (targetTopic) await deleteTopic(c.target, targetTopic);
    await deleteTopic(c.source, topic);
  }
}

export const failover: OnceScenario = {
  name: 'failover',
  systems: (given) => given.filter((s) => FAILOVER_SYSTEMS.includes(s)),
  runs: 'once',
  run: failoverScenario,
  table: {
    holds: (s) => s.scenario === 'failover',
    charted: false,
    markdown: (s) => [
      `### failover: ${s.records} records x ${s.recordSize} B per system, ${s.partitions} partitions; one consumer group reads ${FAILOVER_READ_FRACTION * 100}% of every partition on the source, then switches to the target`,
      '',
      '| system | records | read before switch | read after switch | duplicates | duplicates % of read before | missing | offsets ready s | note |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
      ...s.results.map((r) => {
        const pct = r.readBeforeSwitch ? `${((100 * (r.duplicates ?? 0)) / r.readBeforeSwitch).toFixed(2)}%` : '-';
        return `| ${r.system} | ${r.records} | ${r.readBeforeSwitch ?? '-'} | ${r.readAfterSwitch ?? '-'} | ${r.duplicates ?? '-'} | ${pct} | ${r.missing ?? '-'} | ${r.offsetsReadySec ?? '-'} | ${r.note ?? ''} |`;
      }),
      '',
      'strait: `strait failover` (live translation from the offset map) run at the switch; offsets ready = when it returned.',
      `MirrorMaker 2: ${MM2_FAILOVER_SETTINGS}; offsets ready = the last change of the group's offsets on the target (synced from checkpoints), once every partition moved and they stayed put for ${5 * MM2_CHECKPOINT_INTERVAL_SEC} s.`,
      '',
    ],
  },
};
