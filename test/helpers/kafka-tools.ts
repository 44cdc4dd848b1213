/**
 * Kafka's own command-line tools, run from the harness's Kafka runtime against the test clusters: ACLs (as the SASL
 * super user), deleteRecords, and for clusters of a test's own, topics with a replica assignment and unclean leader
 * elections.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKafkaClass, toolClass } from '../../bench/harness/kafka-runtime';
import { DEV_SASL_USERS, runtimeOf, type DevState } from '../../bench/harness/local-cluster';
import { bootstrap, testClusters } from './kafka';

/** Connection settings for `user` on a test cluster's SASL_PLAINTEXT listener, as a strait cluster entry. */
export function saslCluster(alias: string, user: string): { bootstrap: string; properties: Record<string, string> } {
  const c = testClusters().clusters[alias]!;
  if (!c.saslBootstrap) throw new Error(`test cluster '${alias}' has no SASL listener`);
  return {
    bootstrap: c.saslBootstrap,
    properties: { 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanism': 'PLAIN', 'sasl.username': user, 'sasl.password': DEV_SASL_USERS[user]! },
  };
}

/** kafka-acls --add/--remove as the super user; `args` are the tool's (principal, operations, resource). */
export function acls(alias: string, action: 'add' | 'remove', args: string[]): void {
  const c = testClusters().clusters[alias]!;
  const dir = mkdtempSync(join(tmpdir(), 'strait-acl-'));
  const props = join(dir, 'admin.properties');
  writeFileSync(
    props,
    [
      'security.protocol=SASL_PLAINTEXT',
      'sasl.mechanism=PLAIN',
      `sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${DEV_SASL_USERS.admin}";`,
      '',
    ].join('\n'),
  );
  const r = runKafkaClass(runtimeOf(testClusters()), toolClass(runtimeOf(testClusters()), 'AclCommand'), [
    '--bootstrap-server',
    c.saslBootstrap!,
    '--command-config',
    props,
    `--${action}`,
    ...(action === 'remove' ? ['--force'] : []),
    ...args,
  ]);
  if (r.status !== 0) throw new Error(`kafka-acls --${action} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
}

/**
 * kafka-delete-records: moves the log start of each partition to `offset` (records below it are gone). `cluster`: a
 * test cluster's alias, or the bootstrap of a cluster of the test's own.
 */
export function deleteRecords(cluster: string | { bootstrap: string }, topic: string, offsets: { partition: number; offset: number }[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'strait-delete-'));
  const file = join(dir, 'offsets.json');
  writeFileSync(file, JSON.stringify({ version: 1, partitions: offsets.map((o) => ({ topic, partition: o.partition, offset: o.offset })) }));
  const r = runKafkaClass(runtimeOf(testClusters()), 'org.apache.kafka.tools.DeleteRecordsCommand', [
    '--bootstrap-server',
    typeof cluster === 'string' ? bootstrap(cluster) : cluster.bootstrap,
    '--offset-json-file',
    file,
  ]);
  if (r.status !== 0) throw new Error(`kafka-delete-records failed: ${(r.stderr + r.stdout).trim().split('\n').slice(-3).join(' ')}`);
}

/**
 * kafka-topics --create with an explicit replica assignment (`2:3`: one partition on brokers 2 and 3, 2 preferred) on a
 * cluster of a test's own (`state`: its dev state).
 */
export function createTopicOn(state: DevState, brokers: string, topic: string, assignment: string, config: Record<string, string>): void {
  const r = runKafkaClass(runtimeOf(state), 'org.apache.kafka.tools.TopicCommand', [
    '--bootstrap-server',
    brokers,
    '--create',
    '--topic',
    topic,
    '--replica-assignment',
    assignment,
    ...Object.entries(config).flatMap(([k, v]) => ['--config', `${k}=${v}`]),
  ]);
  if (r.status !== 0) throw new Error(`kafka-topics --create failed: ${(r.stderr + r.stdout).trim().split('\n').slice(-3).join(' ')}`);
}

/**
 * kafka-leader-election --election-type unclean for one partition: a replica out of the ISR may become leader. Returns
 * the tool's output (it also exits 0 when the election was not needed).
 */
export function electUncleanLeader(state: DevState, brokers: string, topic: string, partition: number): { status: number; output: string } {
  const r = runKafkaClass(runtimeOf(state), 'org.apache.kafka.tools.LeaderElectionCommand', [
    '--bootstrap-server',
    brokers,
    '--election-type',
    'unclean',
    '--topic',
    topic,
    '--partition',
    String(partition),
  ]);
  return { status: r.status, output: (r.stdout + r.stderr).trim() };
}

/**
 * kafka-transactions describe-producers for one partition: each producer's epoch and the start offset of its open
 * transaction (a transaction nobody ends holds read_committed readers before it). The tool's output, for a diagnosis.
 */
export function describeProducers(state: DevState, brokers: string, topic: string, partition: number): string {
  const r = runKafkaClass(runtimeOf(state), 'org.apache.kafka.tools.TransactionsCommand', [
    '--bootstrap-server',
    brokers,
    'describe-producers',
    '--topic',
    topic,
    '--partition',
    String(partition),
  ]);
  return (r.stdout + r.stderr).trim();
}
