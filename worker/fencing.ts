/**
 * delivery: exactly-once. Before a partition's start is read from the target's offset map, its transactional id is
 * fenced: init_transactions under the same id (KIP-98) bumps the id's epoch, which aborts the transaction a previous
 * owner (or a killed process) left open and makes that owner's later commits fail. Only then is the offset map read:
 * no commit of a previous owner can land after the read, so the start it gives is final. (Read first, fence second,
 * and a previous owner's commit in between would be sent again by the new one.)
 */
import Kafka from 'node-rdkafka';
import type { ClientProps } from '../shared/config';
import { StraitError } from '../shared/errors';
import { CALLBACK_SLACK_MS, boundedCall, disconnectClient } from '../shared/kafka/bounded-call';

/** producers fencing at once: each is a librdkafka client with its own threads and connections */
const FENCING_CONCURRENCY = 8;

export async function fenceTransactionalIds(clusterAlias: string, props: ClientProps, ids: string[], timeoutMs: number): Promise<void> {
  const queue = [...ids];
  const fenceNext = async (): Promise<void> => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) await fence(clusterAlias, props, id, timeoutMs);
  };
  await Promise.all(Array.from({ length: Math.min(FENCING_CONCURRENCY, ids.length) }, fenceNext));
}

async function fence(clusterAlias: string, props: ClientProps, id: string, timeoutMs: number): Promise<void> {
  const p = new Kafka.Producer({ ...props, 'transactional.id': id, log_level: 0 } as Kafka.ProducerGlobalConfig);
  try {
    await boundedCall<void>(`connecting to cluster '${clusterAlias}' to fence '${id}'`, timeoutMs + CALLBACK_SLACK_MS, (done) =>
      p.connect({ timeout: timeoutMs }, (err) =>
        done(err ? new StraitError('STRAIT_CLUSTER_UNREACHABLE', `cluster '${clusterAlias}': ${err.message}`, { retriable: true }) : null),
      ),
    );
    await boundedCall<void>(`fencing transactional id '${id}' on '${clusterAlias}'`, timeoutMs + CALLBACK_SLACK_MS, (done) =>
      p.initTransactions(timeoutMs, (err) =>
        done(err ? new StraitError('STRAIT_KAFKA', `fencing transactional id '${id}' on '${clusterAlias}': ${err.message}`, { retriable: true }) : null),
      ),
    );
  } finally {
    await disconnectClient(p, 10_000);
  }
}
