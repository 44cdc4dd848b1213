/**
 * The native admin client's consumer-group calls survive a group coordinator that goes away and comes back.
 *
 * librdkafka 2.12 aborts the whole process (`rd_kafka_enq_once_del_source_return: Assertion 'eonce->refcnt > 0'`)
 * when a coordinator-targeted admin request (list/describe group offsets, alter offsets) timed out while its
 * coordinator was unreachable and the coordinator then comes back: the request still waiting for the coordinator is
 * sent after its operation was freed (upstream confluentinc/librdkafka#5397, not released). strait's checkpointer and
 * failover call these every few seconds, so a broker restart killed `strait run` (seen in the chaos drill). The addon
 * now lets librdkafka's own timeout run well past the caller's and retires a handle whose request the caller gave up
 * on, so the pending request is failed by the handle's destruction, never sent late.
 *
 * A cluster of its own (one broker, killed and started again); the process must still be alive, and the same Admin
 * object answers again, once the broker is back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import Kafka from 'node-rdkafka';
import * as dev from '../bench/harness/local-cluster';
import { loadNative, type NativeAdmin } from '../native';
import { createTopic, disconnect, uniqueName } from './helpers/kafka';
import { waitFor } from './helpers/strait-process';

async function commitOffsets(brokers: string, group: string, topic: string): Promise<void> {
  const consumer = new Kafka.KafkaConsumer({ 'bootstrap.servers': brokers, 'group.id': group, 'enable.auto.commit': false, log_level: 0 }, {});
  await new Promise<void>((res, rej) => consumer.connect({ timeout: 10_000 }, (err) => (err ? rej(err) : res())));
  consumer.commitSync([{ topic, partition: 0, offset: 0 }]);
  await disconnect(consumer);
}

t.test('a group coordinator killed and started again while group calls time out does not abort the process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-admin-outage-'));
  t.teardown(async () => {
    await dev.down({ dir });
    rmSync(dir, { recursive: true, force: true });
  });
  const state = await dev.up({ clusters: 1, brokers: 1, zookeeper: false, dir });
  const alias = Object.keys(state.clusters)[0]!;
  const brokers = state.clusters[alias]!.bootstrap;
  const topic = uniqueName('outage');
  const group = uniqueName('outage-group');
  await createTopic(brokers, topic, 1);
  await commitOffsets(brokers, group, topic);

  const admin: NativeAdmin = new (loadNative().Admin)({ 'bootstrap.servers': brokers, 'reconnect.backoff.max.ms': 500 });
  t.teardown(() => admin.close());
  // the coordinator is known (cached) from here on
  t.same(
    (await admin.listConsumerGroupOffsets(group, null, 10_000)).map((o) => o.offset),
    [0],
    'the committed offset is read while the broker runs',
  );

  await dev.killBroker(alias, 1, { dir });
  // every kind of coordinator request gives up while the coordinator is gone
  // the first call may still reach the dying connection (a transport failure); the next one waits for the coordinator
  await admin.listConsumerGroupOffsets(group, null, 1500).catch(() => undefined);
  await t.rejects(admin.listConsumerGroupOffsets(group, null, 1500), /_TIMED_OUT: no result within 1500 ms/, 'listConsumerGroupOffsets times out');
  await t.rejects(admin.describeConsumerGroups([group], 1500), /_TIMED_OUT: no result within 1500 ms/, 'describeConsumerGroups times out');
  await t.rejects(
    admin.alterConsumerGroupOffsets(group, [{ topic, partition: 0, offset: 0 }], 1500),
    /_TIMED_OUT: no result within 1500 ms/,
    'alterConsumerGroupOffsets times out',
  );

  t.ok(admin.retiredHandles() >= 3, `each abandoned request retired its handle (${admin.retiredHandles()} retired)`);

  await dev.startBroker(alias, 1, { dir });
  // the abandoned requests would be sent now (and abort the process) if their handle were still alive
  let back: number[] = [];
  await waitFor(
    'the admin answers again',
    async () => {
      back = await admin.listConsumerGroupOffsets(group, null, 3000).then(
        (r) => r.map((o) => o.offset),
        () => [],
      );
      return back.length > 0;
    },
    60_000,
    500,
  );
  t.same(back, [0], 'the same Admin object reads the committed offset after the restart');
  await sleep(5000);
  t.same(
    (await admin.describeConsumerGroups([group], 10_000)).map((d) => d.groupId),
    [group],
    'and still answers 5 s later: the process was not aborted',
  );
  const altered = await admin.alterConsumerGroupOffsets(group, [{ topic, partition: 0, offset: 0 }], 10_000);
  t.same(
    altered.map((o) => o.error),
    [undefined],
    'altering offsets works on the new handle',
  );
});
