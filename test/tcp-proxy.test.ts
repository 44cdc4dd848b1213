/**
 * The bench's delay proxy: the round trip grows by twice the one-way delay, bytes arrive intact and in order, a
 * large transfer passes (the per-direction queue pauses the sender instead of growing without bound), and a window
 * bounds a connection to about a window per round trip.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import { startTcpProxy } from '../bench/harness/tcp-proxy';

async function echoServer(): Promise<{ server: Server; address: string }> {
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no address');
  return { server, address: `127.0.0.1:${a.port}` };
}

/** Sends `payload` through `address` to the echo server and resolves with what came back and how long it took. */
function roundTrip(address: string, payload: Buffer): Promise<{ ms: number; back: Buffer }> {
  const [host, port] = address.split(':');
  return new Promise((res, rej) => {
    const started = performance.now();
    const parts: Buffer[] = [];
    let got = 0;
    const s = connect(Number(port), host!, () => s.end(payload));
    s.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= payload.length) {
        res({ ms: performance.now() - started, back: Buffer.concat(parts) });
        s.destroy();
      }
    });
    s.on('error', rej);
    s.on('close', () => rej(new Error(`connection closed after ${got} of ${payload.length} bytes`)));
  });
}

t.test('delay proxy adds the round trip, keeps bytes and order', async (t) => {
  const echo = await echoServer();
  t.teardown(() => echo.server.close());
  const direct = await roundTrip(echo.address, Buffer.from('ping'));
  const proxy = await startTcpProxy(echo.address, { delayMs: 40, maxQueuedBytes: 1024 * 1024 });
  t.teardown(() => proxy.close());
  const small = await roundTrip(proxy.address, Buffer.from('ping'));
  t.equal(small.back.toString(), 'ping');
  t.ok(small.ms >= 80, `round trip through the proxy ${small.ms.toFixed(1)} ms >= 2 x 40 ms`);
  t.ok(small.ms < 80 + direct.ms + 200, `and not much more (${small.ms.toFixed(1)} ms; direct ${direct.ms.toFixed(1)} ms)`);
  const big = randomBytes(32 * 1024 * 1024);
  const r = await roundTrip(proxy.address, big);
  t.equal(
    createHash('sha256').update(r.back).digest('hex'),
    createHash('sha256').update(big).digest('hex'),
    '32 MiB echoed byte-identical through a 1 MiB queue bound',
  );
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A connection to `address` that stays open: `send` resolves once `payload` came back from the echo server. */
async function openConnection(address: string): Promise<{ send(payload: Buffer): Promise<{ ms: number; back: Buffer }>; close(): void }> {
  const [host, port] = address.split(':');
  const s = connect(Number(port), host!);
  await new Promise<void>((res, rej) => {
    s.once('connect', res);
    s.once('error', rej);
  });
  return {
    send(payload) {
      return new Promise((res, rej) => {
        const started = performance.now();
        const parts: Buffer[] = [];
        let got = 0;
        const onData = (d: Buffer) => {
          parts.push(d);
          got += d.length;
          if (got < payload.length) return;
          s.off('data', onData);
          s.off('error', rej);
          res({ ms: performance.now() - started, back: Buffer.concat(parts) });
        };
        s.on('data', onData);
        s.once('error', rej);
        s.write(payload);
      });
    },
    close: () => s.destroy(),
  };
}

t.test('a window bounds each direction near a window per round trip; setWindow changes it', async (t) => {
  const echo = await echoServer();
  t.teardown(() => echo.server.close());
  // 25 ms each way: a 50 ms round trip; 64 KiB per round trip is 1.28 MiB/s each way, so 1 MiB takes about 0.8 s
  // (the two directions overlap) where the delay alone takes a few round trips
  const proxy = await startTcpProxy(echo.address, { delayMs: 25, windowBytes: 64 * 1024 });
  t.teardown(() => proxy.close());
  const payload = randomBytes(1024 * 1024);
  const narrow = await roundTrip(proxy.address, payload);
  t.equal(sha256(narrow.back), sha256(payload), '1 MiB echoed byte-identical through a 64 KiB window');
  t.ok(narrow.ms >= 600, `64 KiB window: ${narrow.ms.toFixed(0)} ms >= 600 ms (1 MiB at 1.28 MiB/s)`);
  proxy.setWindow(8 * 1024 * 1024);
  const wide = await roundTrip(proxy.address, payload);
  t.equal(sha256(wide.back), sha256(payload), 'and through an 8 MiB window');
  t.ok(wide.ms * 3 <= narrow.ms, `8 MiB window: ${wide.ms.toFixed(0)} ms, at least 3x faster than ${narrow.ms.toFixed(0)} ms`);
  // an open connection gets the new window too
  const open = await openConnection(proxy.address);
  t.teardown(() => open.close());
  t.equal((await open.send(Buffer.from('hello'))).back.toString(), 'hello');
  proxy.setWindow(64 * 1024);
  const narrowed = await open.send(payload);
  t.equal(sha256(narrowed.back), sha256(payload), 'an open connection echoes 1 MiB intact after setWindow(64 KiB)');
  t.ok(narrowed.ms >= 600, `and takes ${narrowed.ms.toFixed(0)} ms >= 600 ms`);
  t.throws(() => proxy.setWindow(0), RangeError, 'a window of 0 bytes is refused');
});

t.test('pause drops connections and refuses new ones until resume', async (t) => {
  const echo = await echoServer();
  t.teardown(() => echo.server.close());
  const proxy = await startTcpProxy(echo.address);
  t.teardown(() => proxy.close());
  proxy.pause();
  await t.rejects(roundTrip(proxy.address, Buffer.from('x')), 'refused while paused');
  proxy.resume();
  t.equal((await roundTrip(proxy.address, Buffer.from('back'))).back.toString(), 'back');
});

/** A Kafka-shaped frame: int32 size, int16 API key, then `body`. */
function frame(apiKey: number, body: string): Buffer {
  const b = Buffer.alloc(6 + body.length);
  b.writeInt32BE(2 + body.length, 0);
  b.writeInt16BE(apiKey, 4);
  b.write(body, 6);
  return b;
}

t.test('holdResponsesAfter: the request of that API key goes through, every answer from then on waits for release', async (t) => {
  // the server counts what it received and echoes it
  let received = 0;
  const server = createServer((s) =>
    s.on('data', (d: Buffer) => {
      received += d.length;
      s.write(d);
    }),
  );
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => server.close());
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no address');
  const proxy = await startTcpProxy(`127.0.0.1:${a.port}`);
  t.teardown(() => proxy.close());
  const client = connect(proxy.port, '127.0.0.1');
  t.teardown(() => client.destroy());
  let back = 0;
  client.on('data', (d: Buffer) => (back += d.length));
  await new Promise<void>((res) => client.once('connect', () => res()));
  const held = proxy.holdResponsesAfter(26);
  let seen = false;
  void held.then(() => (seen = true));
  // a frame split across writes, and one of another key: answered, not watched for
  const other = frame(0, 'produce-request-body');
  client.write(other.subarray(0, 3));
  await new Promise((r) => setTimeout(r, 50));
  client.write(other.subarray(3));
  await new Promise((r) => setTimeout(r, 200));
  t.equal(back, other.length, 'a request of another API key is answered');
  t.notOk(seen, 'and does not trigger the hold');
  const endTxn = frame(26, 'end-txn');
  client.write(endTxn);
  await held;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(received, other.length + endTxn.length, 'the watched request reached the server');
  t.equal(back, other.length, 'its answer is held');
  proxy.releaseResponses();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(back, other.length + endTxn.length, 'and arrives once released');
});
