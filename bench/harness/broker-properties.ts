/**
 * What every harness broker runs with: its server.properties (KRaft combined mode, the listeners a start asked for,
 * production-shaped replication from 3 nodes on) and the SASL users and client certificate name it knows.
 */
import { join } from 'node:path';
import type { BrokerState, ClusterState } from './cluster-state';

/**
 * The harness's SASL users. `admin` is a super user (so is ANONYMOUS: the PLAINTEXT listener and the KRaft
 * controller listener stay unrestricted); every other user gets only the ACLs a test grants it.
 */
export const DEV_SASL_USERS: Record<string, string> = { admin: 'admin-secret', strait: 'strait-secret', limited: 'limited-secret' };

/** The common name of the harness's client certificate; the brokers map `CN=strait` to the principal `User:strait`. */
export const DEV_CLIENT_CN = 'strait';

function listenerProperties(c: ClusterState, b: BrokerState): Record<string, string> {
  const listeners = [`PLAINTEXT://127.0.0.1:${b.port}`, `CONTROLLER://127.0.0.1:${b.controllerPort}`];
  const advertised = [`PLAINTEXT://127.0.0.1:${b.port}`];
  const protocols = ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT'];
  const props: Record<string, string> = {};
  if (b.saslPort) {
    listeners.push(`SASL_PLAINTEXT://127.0.0.1:${b.saslPort}`);
    advertised.push(`SASL_PLAINTEXT://127.0.0.1:${b.saslPort}`);
    protocols.push('SASL_PLAINTEXT:SASL_PLAINTEXT');
    const users = Object.entries(DEV_SASL_USERS)
      .map(([u, pw]) => `user_${u}="${pw}"`)
      .join(' ');
    Object.assign(props, {
      'sasl.enabled.mechanisms': 'PLAIN',
      'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${users};`,
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'super.users': 'User:ANONYMOUS;User:admin',
    });
  }
  if (c.tls && b.sslPort && b.saslSslPort && b.scramPort) {
    // Listener names SSL and SASL_SSL are the protocol names (what a Kafka operator expects to see); the SCRAM-SHA-256
    // listener is SASL_PLAINTEXT under its own name, so it can sit beside the PLAIN one of `sasl`.
    for (const [name, port, protocol] of [
      ['SSL', b.sslPort, 'SSL'],
      ['SASL_SSL', b.saslSslPort, 'SASL_SSL'],
      ['SCRAM', b.scramPort, 'SASL_PLAINTEXT'],
    ] as const) {
      listeners.push(`${name}://127.0.0.1:${port}`);
      advertised.push(`${name}://127.0.0.1:${port}`);
      protocols.push(`${name}:${protocol}`);
    }
    const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    Object.assign(props, {
      'ssl.keystore.type': 'PEM',
      'ssl.keystore.location': c.tls.brokerKeyStore,
      'ssl.truststore.type': 'PEM',
      'ssl.truststore.location': c.tls.caLocation,
      'listener.name.ssl.ssl.client.auth': 'required',
      // an mTLS client is User:<CN> (the harness's client certificate: User:strait, the SCRAM user's name)
      'ssl.principal.mapping.rules': 'RULE:^CN=([^,]+)$/$1/,DEFAULT',
      'listener.name.sasl_ssl.sasl.enabled.mechanisms': 'SCRAM-SHA-512',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': scram,
      'listener.name.scram.sasl.enabled.mechanisms': 'SCRAM-SHA-256',
      'listener.name.scram.scram-sha-256.sasl.jaas.config': scram,
    });
  }
  if (c.wan) {
    listeners.push(`WAN://127.0.0.1:${c.wan.port}`);
    advertised.push(`WAN://127.0.0.1:${c.wan.proxyPort}`);
    protocols.push('WAN:PLAINTEXT');
  }
  return {
    ...props,
    listeners: listeners.join(','),
    'advertised.listeners': advertised.join(','),
    'listener.security.protocol.map': protocols.join(','),
  };
}

/**
 * Every node runs broker and controller in one JVM (KRaft combined mode), and with N nodes all N are voters. A
 * separate quorum would add 3 JVMs per cluster (about 1.5 GB and the CPU of their fetch loops on a 2-core machine
 * shared with the other cluster, ZooKeeper, strait and MirrorMaker 2) and would leave the controllers out of every
 * drill; combined, a roll or a kill -9 also moves the active controller, which is the harder case for clients.
 * Three voters keep a quorum with one node down, which is all the drills ever take away.
 */
export function brokerProperties(c: ClusterState, b: BrokerState, extra: Record<string, string>): string {
  const n = c.brokers.length;
  // Production shape from 3 nodes on: a record acknowledged with acks=all is on 2 replicas at least, so one node
  // lost (killed, restarting) never loses an acknowledged record and never blocks producers.
  const rf = String(Math.min(n, 3));
  const minIsr = n >= 3 ? '2' : '1';
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': String(b.id),
    'controller.quorum.voters': c.brokers.map((x) => `${x.id}@127.0.0.1:${x.controllerPort}`).join(','),
    ...listenerProperties(c, b),
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': join(b.dir, 'data'),
    'num.partitions': '1',
    'default.replication.factor': rf,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': rf,
    'offsets.topic.num.partitions': '8',
    'transaction.state.log.replication.factor': rf,
    'transaction.state.log.min.isr': minIsr,
    'transaction.state.log.num.partitions': '4',
    'group.initial.rebalance.delay.ms': '0',
    // the log cleaner looks for compactable logs every second (default 15 s), so compaction is observable in tests
    'log.cleaner.backoff.ms': '1000',
    'auto.create.topics.enable': 'false',
    'log.segment.bytes': String(256 * 1024 * 1024),
    'num.network.threads': '2',
    'num.io.threads': n > 1 ? '2' : '4',
    // A roll leaves the last restarted node leading nothing; Kafka moves leadership back to the preferred replicas
    // every leader.imbalance.check.interval.seconds (300 by default), which would keep a 3-node cluster lopsided for
    // minutes after each drill. 30 s restores the usual balance between drills.
    ...(n > 1 ? { 'leader.imbalance.check.interval.seconds': '30' } : {}),
    ...extra,
  };
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}
