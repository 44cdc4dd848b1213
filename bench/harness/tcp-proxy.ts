/**
 * A loopback TCP proxy. Tests cut it (`pause()` drops every connection and refuses new ones until `resume()`, so a
 * client behind it sees a real network outage while the server stays up); the bench's `wan` scenario gives it a
 * delay, so every byte crosses it `delayMs` later in each direction (round trip + 2 x delayMs), like a WAN link
 * (netem is not available here). Order is kept; a direction holding more than `maxQueuedBytes` stops reading from
 * its sender until it drains, so a slow reader cannot make the proxy buffer without bound.
 *
 * With `windowBytes` (or `setWindow`) each direction of each connection also has a TCP window: at most that many bytes
 * sent and not yet acknowledged, an acknowledgement coming back 2 x `delayMs` after the byte was sent. A connection
 * then moves at most a window per round trip, the bandwidth-delay limit of a long link (64 KiB over 50 ms: 1.28 MiB/s),
 * which the delay alone does not impose: the proxy terminates TCP on both sides, so the client's own window never
 * spans the delay.
 *
 * In front of a Kafka broker (no delay, no TLS), `holdResponsesAfter(apiKey)` lets the next request of that kind
 * (EndTxn: 26) through to the broker and from then on holds every answer the broker sends on every connection, until
 * `releaseResponses()`: the broker acts on the request while the client hears nothing back, a lost answer no real
 * broker can be asked to produce.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:<port>` to give the client instead of the target */
  address: string;
  port: number;
  pause(): void;
  resume(): void;
  /** the window of every delayed connection from now on, open ones included (undefined: none); see `windowBytes` */
  setWindow(bytes: number | undefined): void;
  /** resolves once a request with this Kafka API key went through; every answer is held from then on */
  holdResponsesAfter(apiKey: number): Promise<void>;
  /** answers flow again (what the broker sent meanwhile first) */
  releaseResponses(): void;
  close(): Promise<void>;
}

/** Calls `onRequest` with the API key of each Kafka request in a client's byte stream (int32 size, int16 key, ...). */
function kafkaRequestWatcher(onRequest: (apiKey: number) => void): (chunk: Buffer) => void {
  let skip = 0;
  let head = Buffer.alloc(0);
  return (chunk) => {
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        continue;
      }
      const take = Math.min(6 - head.length, chunk.length - i);
      head = Buffer.concat([head, chunk.subarray(i, i + take)]);
      i += take;
      if (head.length < 6) continue;
      skip = head.readInt32BE(0) - 2;
      onRequest(head.readInt16BE(4));
      head = Buffer.alloc(0);
    }
  };
}

/** Answers from the server: flowing, or held (each sending side paused) until the gate opens again. */
class ResponseGate {
  held = false;
  private readonly senders = new Set<Socket>();
  add(s: Socket): void {
    this.senders.add(s);
    s.on('close', () => this.senders.delete(s));
    if (this.held) s.pause();
  }
  hold(): void {
    this.held = true;
    for (const s of this.senders) s.pause();
  }
  release(): void {
    this.held = false;
    for (const s of this.senders) s.resume();
  }
}

/** `from` to `to` without delay, with backpressure, and paused while `gate` holds. */
function gatedPipe(from: Socket, to: Socket, gate: ResponseGate): void {
  gate.add(from);
  from.on('data', (chunk: Buffer) => {
    if (to.destroyed) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => {
        if (!gate.held) from.resume();
      });
    }
  });
  from.on('end', () => {
    if (!to.destroyed) to.end();
  });
}

export interface TcpProxyOptions {
  /** port to listen on (default: a free one) */
  port?: number;
  /** one-way delay added to every byte, ms (default 0) */
  delayMs?: number;
  /** per direction, per connection (default 64 MiB) */
  maxQueuedBytes?: number;
  /**
   * per direction, per connection: at most this many bytes sent and not yet acknowledged, a TCP window (default: no
   * window). Needs a delay: a byte counts from when it was read until 2 x `delayMs` later.
   */
  windowBytes?: number;
}

/** What every delayed pipe of a proxy reads its window from (`setWindow` changes it). */
interface Link {
  windowBytes: number | undefined;
}

function checkWindow(bytes: number | undefined): void {
  if (bytes !== undefined && !(Number.isFinite(bytes) && bytes > 0))
    throw new RangeError(`windowBytes must be a positive number of bytes or undefined, got ${bytes}`);
}

/**
 * Forwards `from` to `to`, each byte `delayMs` after it entered the link. Bytes enter the link as they are read, but
 * only while the link's window has room: a byte counts against the window from then until 2 x `delayMs` later (it
 * arrives after `delayMs`, its acknowledgement takes as long again), and a chunk that does not fit enters in pieces
 * as earlier bytes are acknowledged. While bytes wait for room, or more than `maxQueued` bytes are on their way, the
 * sender is not read. Returns what to call when the window changed.
 */
function delayedPipe(from: Socket, to: Socket, delayMs: number, maxQueued: number, link: Link): () => void {
  if (delayMs <= 0) {
    from.pipe(to);
    return () => undefined;
  }
  /** on their way: each piece arrives at `at` */
  const queue: { at: number; chunk: Buffer }[] = [];
  let queued = 0;
  /** counted against the window until `at` (tracked without a window too, so a window set later finds them) */
  const unacked: { at: number; bytes: number }[] = [];
  let inFlight = 0;
  /** read from the sender, waiting for room in the window */
  const waiting: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let ended = false;
  let endSent = false;
  const acknowledge = (now: number) => {
    while (unacked.length > 0 && unacked[0]!.at <= now + 0.5) inFlight -= unacked.shift()!.bytes;
  };
  const enter = (now: number) => {
    while (waiting.length > 0) {
      const room = link.windowBytes === undefined ? Infinity : link.windowBytes - inFlight;
      if (room <= 0) break;
      let chunk = waiting[0]!;
      if (chunk.length > room) {
        waiting[0] = chunk.subarray(room);
        chunk = chunk.subarray(0, room);
      } else waiting.shift();
      queue.push({ at: now + delayMs, chunk });
      queued += chunk.length;
      unacked.push({ at: now + 2 * delayMs, bytes: chunk.length });
      inFlight += chunk.length;
    }
  };
  // the next delivery, or while bytes wait for room, the next acknowledgement
  const schedule = () => {
    const next = Math.min(queue[0]?.at ?? Infinity, waiting.length > 0 ? (unacked[0]?.at ?? Infinity) : Infinity);
    if (next === timerAt) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    timerAt = next;
    if (next < Infinity) timer = setTimeout(step, Math.max(0, next - performance.now()));
  };
  const step = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    timerAt = Infinity;
    const now = performance.now();
    acknowledge(now);
    while (queue.length > 0 && queue[0]!.at <= now + 0.5) {
      const { chunk } = queue.shift()!;
      queued -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    enter(now);
    if (waiting.length === 0 && queued < maxQueued / 2 && from.isPaused()) from.resume();
    schedule();
    if (ended && queue.length === 0 && waiting.length === 0 && !endSent && !to.destroyed) {
      endSent = true;
      to.end();
    }
  };
  from.on('data', (chunk: Buffer) => {
    if (to.destroyed) return;
    const now = performance.now();
    acknowledge(now);
    waiting.push(chunk);
    enter(now);
    if (waiting.length > 0 || queued > maxQueued) from.pause();
    schedule();
  });
  // what is queued still goes out after the sender finished (a FIN travels with the delay too)
  const finish = () => {
    ended = true;
    step();
  };
  from.on('end', finish);
  from.on('close', finish);
  to.on('close', () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    timerAt = Infinity;
    queue.length = 0;
    waiting.length = 0;
  });
  return () => {
    if (!to.destroyed) step();
  };
}

export async function startTcpProxy(target: string, opts: TcpProxyOptions = {}): Promise<TcpProxy> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  const delayMs = opts.delayMs ?? 0;
  const maxQueued = opts.maxQueuedBytes ?? 64 * 1024 * 1024;
  checkWindow(opts.windowBytes);
  const link: Link = { windowBytes: opts.windowBytes };
  /** each delayed pipe's call for a changed window */
  const pipes = new Set<() => void>();
  const sockets = new Set<Socket>();
  let paused = false;
  const gate = new ResponseGate();
  let armed: { apiKey: number; seen: () => void } | undefined;
  const onRequest = (apiKey: number) => {
    if (!armed || apiKey !== armed.apiKey) return;
    gate.hold();
    armed.seen();
    armed = undefined;
  };
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
    if (delayMs <= 0) {
      // requests are watched before they go on, so an answer cannot pass before the gate holds
      client.on('data', kafkaRequestWatcher(onRequest));
      client.pipe(upstream);
      gatedPipe(upstream, client, gate);
    } else {
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        const windowChanged = delayedPipe(from, to, delayMs, maxQueued, link);
        pipes.add(windowChanged);
        to.on('close', () => pipes.delete(windowChanged));
      }
    }
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
    setWindow(bytes) {
      checkWindow(bytes);
      link.windowBytes = bytes;
      for (const windowChanged of pipes) windowChanged();
    },
    holdResponsesAfter(apiKey: number) {
      if (delayMs > 0) throw new Error('holdResponsesAfter: only a proxy without delay watches requests');
      return new Promise<void>((seen) => (armed = { apiKey, seen }));
    },
    releaseResponses() {
      armed = undefined;
      gate.release();
    },
    close() {
      dropAll();
      return new Promise<void>((res) => server.close(() => res()));
    },
  };
}
