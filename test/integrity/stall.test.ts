/**
 * Nothing stands still silently. A cluster of its own (one broker) is stopped under a running `strait run`:
 * - as the target, with records in flight: the partition is errored with STRAIT_PARTITION_STALLED after
 *   worker.stallTimeoutMs (status, metric, health, an error-level log), and clears by itself once the broker is back
 *   and every record has landed;
 * - as the source: the consumer's client-level errors (no partition attached) are counted in
 *   strait_client_errors_total, listed in the worker's status and logged at error level — at most once a minute.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as dev from '../../bench/harness/local-cluster';
import { bootstrap, createTopic, endOffsets, produce, uniqueName } from '../helpers/kafka';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

const records = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ partition: 0, key: Buffer.from(`k${from + i}`), value: Buffer.from(`v${from + i}`) }));

async function end(brokers: string, topic: string): Promise<number> {
  try {
    return (await endOffsets(brokers, topic, 1))[0]!;
  } catch {
    return -1;
  }
}

interface Errored {
  route: string;
  topic: string;
  partition: number;
  code: string;
  cause: string;
}
interface Status {
  worker: { errored: Errored[]; clientErrors: { route: string; client: string; code: string; count: number }[] };
}

t.test('a stopped cluster: STRAIT_PARTITION_STALLED for a target that acknowledges nothing, client errors for a source that answers nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-stall-'));
  t.teardown(async () => {
    await dev.down({ dir });
    rmSync(dir, { recursive: true, force: true });
  });
  const state = await dev.up({ clusters: 1, brokers: 1, zookeeper: false, dir });
  const alias = Object.keys(state.clusters)[0]!;
  const own = state.clusters[alias]!.bootstrap;

  // ---- the target stops while records are in flight
  const topic = uniqueName('stall');
  await createTopic(bootstrap('a'), topic, 1);
  await produce(bootstrap('a'), topic, records(0, 200));
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: bootstrap('a') }, own: { bootstrap: own } },
      routes: [{ name: 'stall', source: 'a', target: 'own', topics: { include: [topic] } }],
      controller: { refreshTopicsIntervalMs: 1000 },
      worker: { commitIntervalMs: 500, stallTimeoutMs: 4000 },
    }),
  );
  await waitFor('200 records on the target', async () => (await end(own, `a.${topic}`)) === 200, 90_000, 500);
  t.same((await strait.json<Status>('/v1/status')).worker.errored, [], 'nothing errored while it flows');
  await dev.stopBroker(alias, 1, { dir });
  await produce(bootstrap('a'), topic, records(200, 300));
  let stalled: Errored | undefined;
  await waitFor(
    'the partition errored with STRAIT_PARTITION_STALLED',
    async () => {
      stalled = (await strait.json<Status>('/v1/status')).worker.errored.find((e) => e.code === 'STRAIT_PARTITION_STALLED');
      return stalled !== undefined;
    },
    60_000,
    500,
  );
  t.match(stalled, { route: 'stall', topic, partition: 0, code: 'STRAIT_PARTITION_STALLED' });
  t.match(
    stalled!.cause,
    /no progress for \d+ s: \d+ records in flight to target 'own' and none acknowledged; the target producer last said _[A-Z_]+: /,
    'the cause says what stands still, and what the producer said',
  );
  t.match(
    await strait.metrics(),
    new RegExp(`strait_partition_errored\\{route="stall",topic="${topic}",partition="0",code="STRAIT_PARTITION_STALLED"\\} 1\\n`),
    'strait_partition_errored',
  );
  const health = (await (await fetch(`${await strait.metricsUrl}/v1/health`)).json()) as { status: string; reasons: { code: string }[] };
  t.equal(health.status, 'degraded', 'health is degraded');
  // the offset map lives on the target too: its commits fail as well (STRAIT_COMMIT_FAILING after 10 intervals)
  t.ok(
    health.reasons.some((r) => r.code === 'STRAIT_PARTITION_STALLED'),
    `with the stall among the reasons (${health.reasons.map((r) => r.code).join(', ')})`,
  );
  t.equal(
    strait.output.split('\n').filter((l) => l.includes('"level":50') && l.includes('"code":"STRAIT_PARTITION_STALLED"')).length,
    1,
    'one error-level log line',
  );

  await dev.startBroker(alias, 1, { dir });
  await waitFor('all 500 records on the target', async () => (await end(own, `a.${topic}`)) >= 500, 120_000, 500);
  await waitFor('the stall clears by itself', async () => (await strait.json<Status>('/v1/status')).worker.errored.length === 0, 30_000, 500);
  t.notMatch(await strait.metrics(), /strait_partition_errored\{[^}]*code="STRAIT_PARTITION_STALLED"\}/, 'the errored series is gone');
  t.ok(strait.output.includes('makes progress again (was STRAIT_PARTITION_STALLED)'), 'its recovery is logged');
  t.equal(await strait.stop(), 0, 'stops cleanly');

  // ---- the source stops: the consumer's errors name no partition
  const src = uniqueName('stallsrc');
  await createTopic(own, src, 1);
  await produce(own, src, records(0, 50));
  const reader = new StraitProcess(
    writeConfig({
      clusters: { own: { bootstrap: own }, b: { bootstrap: bootstrap('b') } },
      routes: [{ name: 'stallsrc', source: 'own', target: 'b', topics: { include: [src] } }],
      controller: { refreshTopicsIntervalMs: 1000 },
      worker: { commitIntervalMs: 500, stallTimeoutMs: 4000 },
    }),
  );
  await waitFor('50 records on b', async () => (await end(bootstrap('b'), `own.${src}`)) === 50, 90_000, 500);
  await dev.stopBroker(alias, 1, { dir });
  let client: Status['worker']['clientErrors'] = [];
  await waitFor(
    "the source consumer's errors in the status",
    async () => (client = (await reader.json<Status>('/v1/status')).worker.clientErrors.filter((e) => e.client === 'consumer')).length > 0,
    60_000,
    500,
  );
  t.match(client[0], { route: 'stallsrc', client: 'consumer' });
  t.match(client[0]!.code, /^_[A-Z_]+$/, `librdkafka's name (${client[0]!.code})`);
  t.match(
    await reader.metrics(),
    new RegExp(`strait_client_errors_total\\{route="stallsrc",client="consumer",code="${client[0]!.code}"\\} [1-9]`),
    'strait_client_errors_total counts them',
  );
  await new Promise((r) => setTimeout(r, 5000));
  const lines = reader.output.split('\n').filter((l) => l.includes('"level":50') && l.includes('the source consumer reports'));
  t.ok(lines.length >= 1, 'logged at error level');
  // one error line per code within a minute, however many errors of it came (and however the codes alternate)
  const perCode = new Map<string, number>();
  for (const l of lines) {
    const code = String((JSON.parse(l) as { code: unknown }).code);
    perCode.set(code, (perCode.get(code) ?? 0) + 1);
  }
  const counted = Number(
    new RegExp(`strait_client_errors_total\\{route="stallsrc",client="consumer",code="${client[0]!.code}"\\} (\\d+)`).exec(await reader.metrics())?.[1],
  );
  t.ok(
    [...perCode.values()].every((n) => n === 1),
    `at most one line per code in a minute (${JSON.stringify(Object.fromEntries(perCode))}; ${counted} errors of ${client[0]!.code})`,
  );
  await dev.startBroker(alias, 1, { dir });
  await produce(own, src, records(50, 50));
  await waitFor('replication goes on once the source is back', async () => (await end(bootstrap('b'), `own.${src}`)) === 100, 120_000, 500);
  t.equal(await reader.stop(), 0, 'stops cleanly');
});
