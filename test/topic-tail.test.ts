/**
 * TopicTail (shared/offset-map/topic-tail.ts) on a topic that is written while it is read, as `__strait-offset-map` is
 * by exactly-once workers (a transaction every transaction interval): a catch-up reads up to the end as of its start,
 * over the transaction markers, and returns — it does not wait for the writer to pause, nor read on past that end.
 * (The first fleet test hung here: one consume call waited for a batch of records that a steady writer never let end;
 * later a CI run timed out here after 20 s of one consume call that kept taking the writer's new records.)
 */
import t from 'tap';
import { TopicTail } from '../shared/offset-map/topic-tail';
import { bootstrap, connectProducer, createTopic, disconnect, uniqueName } from './helpers/kafka';

const call = (what: (cb: (err: unknown) => void) => void) => new Promise<void>((res, rej) => what((err) => (err ? rej(err as Error) : res())));

t.test('a catch-up returns at the end as of its start while a transactional writer commits every 50 ms', async (t) => {
  const b = bootstrap('b');
  const topic = uniqueName('tail');
  await createTopic(b, topic, 1);
  const producer = await connectProducer(b, { 'transactional.id': uniqueName('tail-tx') });
  await call((cb) => producer.initTransactions(15_000, cb));
  let written = 0;
  let writing = true;
  const writes = (async () => {
    while (writing) {
      await call((cb) => producer.beginTransaction(cb));
      producer.produce(topic, 0, Buffer.from(`v${written}`), Buffer.from(`k${written}`));
      await call((cb) => producer.commitTransaction(15_000, cb));
      written++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.teardown(async () => {
    writing = false;
    await writes;
    await disconnect(producer);
  });
  const seen: string[] = [];
  const tail = new TopicTail('b', { 'bootstrap.servers': b }, topic, (_k, v) => seen.push(v!.toString()));
  t.teardown(() => tail.close());
  while (written < 40) await new Promise((r) => setTimeout(r, 50));
  for (let pass = 0; pass < 3; pass++) {
    const before = written;
    const started = Date.now();
    await tail.catchUp(15_000);
    const took = Date.now() - started;
    t.ok(took < 10_000, `pass ${pass}: the catch-up returned in ${took} ms while the writer went on`);
    t.ok(seen.length >= before, `pass ${pass}: it read every record committed before it started (${seen.length} >= ${before})`);
    // one consume call used to go on past the end while each next record came within its wait (13 s, 430 offsets)
    t.ok(seen.length <= before + 20, `pass ${pass}: and stopped at that end, not records later (${seen.length} read, ${before} committed at the start)`);
    t.same(
      seen,
      seen.map((_, i) => `v${i}`),
      `pass ${pass}: each record once, in order`,
    );
  }
});
