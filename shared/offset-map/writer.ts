/**
 * Persists offset-map runs (records.ts) to a target cluster. Runs are written before the offsets they
 * cover are committed, so every committed offset can be translated. The checkpointer writes checkpoints with it too.
 */
import Kafka from 'node-rdkafka';
import type { ClientProps } from '../config';
import { StraitError } from '../errors';
import { disconnectClient } from '../kafka/bounded-call';
import { OFFSET_MAP_TOPIC, encodeOffsetMapRecord, type OffsetMapRecord } from './records';

export class OffsetMapWriter {
  private producer: Kafka.Producer | undefined;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private seq = 0;

  constructor(
    private readonly clusterAlias: string,
    private readonly props: ClientProps,
    /** 0 = retry until delivered (offset-map runs must land before the offsets they cover are committed) */
    private readonly messageTimeoutMs = 0,
  ) {}

  private async connect(): Promise<Kafka.Producer> {
    if (this.producer) return this.producer;
    const p = new Kafka.Producer({
      ...this.props,
      dr_cb: true,
      'enable.idempotence': true,
      'linger.ms': 10,
      'message.timeout.ms': this.messageTimeoutMs,
      log_level: 0,
    } as Kafka.ProducerGlobalConfig);
    p.on('delivery-report', (err, report) => {
      const w = this.waiting.get(report.opaque as number);
      if (!w) return;
      this.waiting.delete(report.opaque as number);
      if (err) w.reject(new StraitError('STRAIT_KAFKA', `offset map write to ${this.clusterAlias} failed: ${err.message}`, { retriable: true }));
      else w.resolve();
    });
    await new Promise<void>((res, rej) =>
      p.connect({ timeout: 10_000 }, (err) =>
        err ? rej(new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${this.clusterAlias}': ${err.message}`, { retriable: true })) : res(),
      ),
    );
    p.setPollInterval(10);
    this.producer = p;
    return p;
  }

  /** Resolves once every run is acknowledged by the target cluster. */
  write(records: OffsetMapRecord[]): Promise<void> {
    return this.writeTo(OFFSET_MAP_TOPIC, records.map(encodeOffsetMapRecord));
  }

  /** Writes keyed records to one of strait's compacted topics; resolves once all are acknowledged. */
  async writeTo(topic: string, records: { key: Buffer; value: Buffer }[]): Promise<void> {
    if (records.length === 0) return;
    const p = await this.connect();
    const acks: Promise<void>[] = [];
    const ids: number[] = [];
    try {
      for (const r of records) {
        const id = ++this.seq;
        const ack = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
        // a batch abandoned below leaves its acks unawaited: they must not become unhandled rejections later
        // (close() rejects whatever still waits), which would end the process
        ack.catch(() => {});
        acks.push(ack);
        ids.push(id);
        p.produce(topic, null, r.value, r.key, Date.now(), id);
      }
    } catch (e) {
      // produce() throws when librdkafka refuses at once (e.g. the topic's authorization already failed)
      for (const id of ids) this.waiting.delete(id);
      throw new StraitError('STRAIT_KAFKA', `offset map write to ${this.clusterAlias} failed: ${(e as Error).message}`, { retriable: true, cause: e });
    }
    await Promise.all(acks);
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (!p) return;
    const rejectWaiting = () => {
      for (const w of this.waiting.values())
        w.reject(new StraitError('STRAIT_KAFKA', `write to ${this.clusterAlias} abandoned: the writer closed`, { retriable: true }));
      this.waiting.clear();
    };
    await new Promise<void>((res) => p.flush(5000, () => res()));
    rejectWaiting();
    await disconnectClient(p, 30_000);
  }
}
