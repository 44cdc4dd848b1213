/**
 * Readers of strait's records on a target cluster: the offset map as an index kept up to date incrementally (the
 * checkpointer, `strait failover`), and the newest checkpoints (`strait failover` when the source is gone).
 */
import type { StraitConfig } from '../config';
import { clusterProps } from '../kafka/client-settings';
import { CHECKPOINT_TOPIC, OFFSET_MAP_TOPIC, decodeCheckpoint, decodeOffsetMapRecord, type CheckpointRecord } from './records';
import { OffsetIndex } from './runs';
import { TopicTail } from './topic-tail';

/** The offset map of one target cluster, kept up to date incrementally. */
export class OffsetMapView {
  readonly index = new OffsetIndex();
  private readonly tail: TopicTail;

  constructor(
    config: StraitConfig,
    readonly alias: string,
  ) {
    this.tail = new TopicTail(alias, clusterProps(config, alias), OFFSET_MAP_TOPIC, (_key, value) => {
      if (value === null) return;
      const r = decodeOffsetMapRecord(value);
      if (r === undefined) return;
      this.index.add(r.route, r.sourceTopic, r.targetTopic, r.partition, { srcStart: r.srcStart, srcEnd: r.srcEnd, delta: r.delta });
    });
  }

  /** Reads what was appended since the last call. */
  async catchUp(timeoutMs: number): Promise<OffsetIndex> {
    await this.tail.catchUp(timeoutMs);
    return this.index;
  }

  close(): Promise<void> {
    return this.tail.close();
  }
}

/** The newest checkpoint of every route / group / partition on a target cluster. */
export async function readCheckpoints(config: StraitConfig, alias: string, timeoutMs: number): Promise<CheckpointRecord[]> {
  const latest = new Map<string, CheckpointRecord>();
  const tail = new TopicTail(alias, clusterProps(config, alias), CHECKPOINT_TOPIC, (key, value) => {
    if (key === null) return;
    if (value === null) latest.delete(key.toString());
    else {
      const r = decodeCheckpoint(value);
      if (r === undefined) latest.delete(key.toString());
      else latest.set(key.toString(), r);
    }
  });
  try {
    await tail.catchUp(timeoutMs);
  } finally {
    await tail.close();
  }
  return [...latest.values()];
}
