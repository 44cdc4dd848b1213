import t from 'tap';
import { kafkaCodeOf, kafkaError } from '../shared/kafka/errors';
import { partitionErrorCode } from '../shared/partition-errors';

t.test('librdkafka error names map to flags; unknown names have none', async (t) => {
  t.match(kafkaError('NOT_COORDINATOR'), { coordinator: true, retriable: true, auth: false });
  t.match(kafkaError('COORDINATOR_LOAD_IN_PROGRESS'), { coordinator: true });
  t.match(kafkaError('TOPIC_AUTHORIZATION_FAILED'), { auth: true, retriable: false });
  t.match(kafkaError('NOT_LEADER_OR_FOLLOWER'), { staleMetadata: true, retriable: true, coordinator: false });
  t.match(kafkaError('_FATAL'), { fatal: true, retriable: false });
  t.match(kafkaError('_BAD_COMPRESSION'), { unreadable: true });
  for (const name of ['NO_SUCH_ERROR', '', undefined])
    t.same(kafkaError(name), { retriable: false, fatal: false, auth: false, staleMetadata: false, coordinator: false, unreadable: false });
  t.equal(kafkaError('GROUP_AUTHORIZATION_FAILED').coordinator, false, 'names are looked up whole, not matched by a pattern');
});

t.test('partition codes follow the flags', async (t) => {
  t.equal(partitionErrorCode('source', 'TOPIC_AUTHORIZATION_FAILED'), 'STRAIT_SOURCE_NOT_AUTHORIZED');
  t.equal(partitionErrorCode('source', '_NOT_IMPLEMENTED'), 'STRAIT_SOURCE_UNREADABLE');
  t.equal(partitionErrorCode('source', '_TRANSPORT'), 'STRAIT_SOURCE_FETCH_FAILED');
  t.equal(partitionErrorCode('target', 'CLUSTER_AUTHORIZATION_FAILED'), 'STRAIT_TARGET_NOT_AUTHORIZED');
  t.equal(partitionErrorCode('target', 'MSG_SIZE_TOO_LARGE'), 'STRAIT_TARGET_REJECTED');
  t.equal(partitionErrorCode('gap', undefined), 'STRAIT_OFFSET_GAP');
});

t.test('kafkaCodeOf reads the code a rejected admin call carries, and nothing else', async (t) => {
  t.equal(kafkaCodeOf(Object.assign(new Error('listConsumerGroupOffsets: NOT_COORDINATOR: moved'), { kafkaCode: 'NOT_COORDINATOR' })), 'NOT_COORDINATOR');
  t.equal(kafkaCodeOf(new Error('listConsumerGroupOffsets: NOT_COORDINATOR: moved')), undefined, 'the message is not parsed');
  t.equal(kafkaCodeOf(undefined), undefined);
  t.equal(kafkaCodeOf({ kafkaCode: 7 }), undefined);
});
