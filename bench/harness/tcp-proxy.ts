/**
 * A loopback TCP proxy. Tests cut it (`pause()` drops every connection and refuses new ones until `resume()`, so a
 * client behind it sees a real network outage while the server stays up); the bench's `wan` scenario gives it a
 * delay, so every byte crosses it `delayMs` later in each direction (round trip + 2 x delayMs), like a WAN link
 * (netem is not available here). Order is kept; a direction holding more than `maxQueuedBytes` stops reading from
 * its sender until it drains, so a slow reader cannot make the proxy buffer without bound.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:<port>` to give the client instead of the target */
  address: string;
  port: number;
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  /** port to listen on (default: a free one) */
  port?: number;
  /** one-way delay added to every byte, ms (default 0) */
  delayMs?: number;
  /** per direction, per connection (default 64 MiB) */
  maxQueuedBytes?: number;
}

/** Forwards `from` to `to`, each chunk `delayMs` after it arrived. */
function delayedPipe(from: Socket, to: Socket, delayMs: number, maxQueued: number): void {
  if (delayMs <= 0) {
    from.pipe(to);
    return;
  }
  const queue: { at: number; chunk: Buffer }[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.at <= now + 0.5) {
      const { chunk } = queue.shift()!;
      queued -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    if (queued < maxQueued / 2 && from.isPaused()) from.resume();
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.at - performance.now()));
    else if (ended && !to.destroyed) to.end();
  };
  let ended = false;
  from.on('data', (chunk: Buffer) => {
    queue.push({ at: performance.now() + delayMs, chunk });
    queued += chunk.length;
    if (queued > maxQueued) from.pause();
    if (!timer) timer = setTimeout(flush, delayMs);
  });
  // what is queued still goes out after the sender finished (a FIN travels with the delay too)
  const finish = () => {
    ended = true;
    if (queue.length === 0 && !to.destroyed) to.end();
  };
  from.on('end', finish);
  from.on('close', finish);
  to.on('close', () => {
    if (timer) clearTimeout(timer);
    queue.length = 0;
  });
}

export async function startTcpProxy(target: string, opts: TcpProxyOptions = {}): Promise<TcpProxy> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  const delayMs = opts.delayMs ?? 0;
  const maxQueued = opts.maxQueuedBytes ?? 64 * 1024 * 1024;
  const sockets = new Set<Socket>();
  let paused = false;
  // half-open, so a side that finished sending still receives what is queued for it
  const server = createServer({ allowHalfOpen: true }, (client) => {
    if (paused) {
      client.destroy();
      return;
    }
    const upstream = connect({ port, host, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    delayedPipe(client, upstream, delayMs, maxQueued);
    delayedPipe(upstream, client, delayMs, maxQueued);
    const abort = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', abort); // a reset on either side resets both, like a broken link
      s.on('close', () => sockets.delete(s));
    }
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(opts.port ?? 0, '127.0.0.1', res);
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('proxy has no TCP address');
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    address: `127.0.0.1:${addr.port}`,
    port: addr.port,
    pause() {
      paused = true;
      dropAll();
    },
    resume() {
      paused = false;
    },
    close() {
      dropAll();
      return new Promise<void>((res) => server.close(() => res()));
    },
  };
}
