/**
 * Secured clusters: the test clusters also listen with SASL_PLAINTEXT (PLAIN) and enforce ACLs there. Bad credentials
 * are named with the cluster, the mechanism and the user while other routes keep replicating; a principal missing an
 * ACL gets an error naming the topic, the cluster, the principal and the ACL it lacks, and once the ACL is granted
 * the held topic replicates in full without operator action.
 */
import t from 'tap';
import { DEV_SASL_USERS } from '../../bench/harness/local-cluster';
import { bootstrap, createTopic, endOffsets, produce, testClusters, uniqueName } from '../helpers/kafka';
import { acls } from '../helpers/kafka-tools';
import { StraitProcess, stopAll, waitFor, writeConfig } from '../helpers/strait-process';

t.teardown(stopAll);

function sasl(alias: string, user: string, password: string): { bootstrap: string; properties: Record<string, string> } {
  const c = testClusters().clusters[alias]!;
  if (!c.saslBootstrap) throw new Error(`test cluster '${alias}' has no SASL listener`);
  return {
    bootstrap: c.saslBootstrap,
    properties: { 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanism': 'PLAIN', 'sasl.username': user, 'sasl.password': password },
  };
}

t.test('bad credentials name the cluster and user; a healthy route keeps replicating', async (t) => {
  const topic = uniqueName('auth-ok');
  await createTopic(bootstrap('a'), topic, 1);
  await produce(
    bootstrap('a'),
    topic,
    Array.from({ length: 50 }, (_, i) => ({ partition: 0, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) })),
  );
  const strait = new StraitProcess(
    writeConfig({
      clusters: { a: { bootstrap: bootstrap('a') }, x: sasl('a', 'strait', 'not-the-password'), b: { bootstrap: bootstrap('b') } },
      routes: [
        { name: 'badcreds', source: 'x', target: 'b', topics: { include: [topic] } },
        { name: 'healthy', source: 'a', target: 'b', topics: { include: [topic] } },
      ],
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  await waitFor(
    'authentication problem in status',
    async () => (await strait.status()).controller.problems.some((p) => p.code === 'STRAIT_CLUSTER_AUTH'),
    60_000,
    500,
  );
  const problem = (await strait.status()).controller.problems.find((p) => p.code === 'STRAIT_CLUSTER_AUTH')!;
  t.match(
    problem.message,
    new RegExp(
      `^cluster 'x' \\(${testClusters().clusters.a!.saslBootstrap!.replace(/\./g, '\\.')}\\): authentication failed \\(SASL_PLAINTEXT/PLAIN as 'strait'\\): .*Invalid username or password`,
    ),
    "names cluster, bootstrap, mechanism, user and the broker's reason",
  );
  t.notMatch(strait.output, /not-the-password/, 'the password never appears in the output');
  await waitFor(
    'the healthy route replicated everything',
    async () => {
      try {
        return (await endOffsets(bootstrap('b'), `a.${topic}`, 1))[0] === 50;
      } catch {
        return false;
      }
    },
    60_000,
  );
  t.pass('the healthy route replicated all 50 records meanwhile');
  t.equal(strait.child.exitCode, null, 'still running');
  t.equal(await strait.stop(), 0);
});

t.test('a missing ACL names topic, cluster, principal and the ACL; granting it resumes with nothing lost', async (t) => {
  const topic = uniqueName('auth-acl');
  await createTopic(bootstrap('a'), topic, 2);
  const records = Array.from({ length: 400 }, (_, i) => ({ partition: i % 2, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) }));
  await produce(bootstrap('a'), topic, records);
  const strait = new StraitProcess(
    writeConfig({
      deployment: 'auth',
      clusters: { a: { bootstrap: bootstrap('a') }, b: sasl('b', 'limited', DEV_SASL_USERS.limited!) },
      routes: [{ name: 'acl', source: 'a', target: 'b', topics: { include: [topic] } }],
      controller: { refreshTopicsIntervalMs: 1000 },
    }),
  );
  await waitFor(
    'authorization problem in status',
    async () => (await strait.status()).controller.problems.some((p) => p.code === 'STRAIT_NOT_AUTHORIZED' && p.topic === topic),
    60_000,
    500,
  );
  const problem = (await strait.status()).controller.problems.find((p) => p.code === 'STRAIT_NOT_AUTHORIZED')!;
  t.match(
    problem.message,
    new RegExp(`^creating topic 'a\\.${topic}' on cluster 'b' \\([^)]+\\) was refused: User:limited needs the CREATE .*ACL .*topic held$`),
  );
  t.match(await strait.metrics(), new RegExp(`strait_topic_error\\{route="acl",topic="${topic}",code="STRAIT_NOT_AUTHORIZED"\\} 1`));
  // what a replicator needs on the target: create/describe/write its topics (and its offset map), idempotent writes
  acls('b', 'add', [
    '--allow-principal',
    'User:limited',
    '--operation',
    'Create',
    '--operation',
    'Describe',
    '--operation',
    'Write',
    '--operation',
    'DescribeConfigs',
    '--topic',
    '*',
  ]);
  acls('b', 'add', ['--allow-principal', 'User:limited', '--operation', 'IdempotentWrite', '--operation', 'Describe', '--cluster']);
  await waitFor(
    'all records replicated after the grant',
    async () => {
      try {
        const ends = await endOffsets(bootstrap('b'), `a.${topic}`, 2);
        return ends[0] === 200 && ends[1] === 200;
      } catch {
        return false;
      }
    },
    90_000,
    500,
  );
  t.pass('400 of 400 records landed once the ACLs were granted');
  await waitFor('the problem cleared', async () => !(await strait.status()).controller.problems.some((p) => p.topic === topic), 30_000, 500);
  t.pass('the problem is gone from status');
  t.equal(await strait.stop(), 0);
});
