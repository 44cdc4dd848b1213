/** Free loopback ports for the harness's brokers and ZooKeeper. */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** `n` distinct free ports on 127.0.0.1. */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/**
 * A port that was free a moment ago, below the kernel's ephemeral range. Brokers and ZooKeeper restart on the ports they
 * were given; a port from the ephemeral range (what `listen(0)` hands out) can meanwhile become the local end of any
 * outgoing connection on the machine — a client reconnecting to another broker, say — and the restart then fails to
 * bind. Ports below the range are only ever taken by a listener that asks for one.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralRangeStart();
  const [min, max] = [10_000, low - 1];
  for (let i = 0; max - min >= 1000 && i < 200; i++) {
    const port = min + Math.floor(Math.random() * (max - min + 1));
    if (await canListen(port)) return port;
  }
  return anyPort();
}

function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

function anyPort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}
