/**
 * The bench's delay proxy: the round trip grows by twice the one-way delay, bytes arrive intact and in order, and a
 * large transfer passes (the per-direction queue pauses the sender instead of growing without bound).
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
