/**
 * A time bound on a node-rdkafka call answered by callback. librdkafka honours the timeouts it is given, but node-rdkafka
 * runs each call on the libuv thread pool (four threads unless UV_THREADPOOL_SIZE says otherwise): a call queued behind
 * calls that hold every pool thread waits for them before its own timeout starts. The bound turns that wait into an
 * error the caller retries; it cannot cancel the call, so the client it was made on must be dropped, not reused.
 */
import { StraitError } from '../errors';

/** past a call's own librdkafka timeout, how long its callback may still take (queued on the libuv thread pool) */
export const CALLBACK_SLACK_MS = 5000;

export class CallTimedOut extends StraitError {}

/** `run` starts the call and settles it through `done`; rejects with CallTimedOut (retriable) after `timeoutMs`. */
export function boundedCall<T>(what: string, timeoutMs: number, run: (done: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CallTimedOut('STRAIT_KAFKA', `${what}: no answer within ${timeoutMs} ms`, { retriable: true })), timeoutMs);
    run((err, value) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value as T);
    });
  });
}

/**
 * Disconnects a node-rdkafka client, resolving when it is done or after `boundMs` (a disconnect callback that never
 * comes must not hold a shutdown). A producer's poll interval is stopped first: node-rdkafka's poll() calls librdkafka
 * on the main thread without the lock its disconnect takes on the libuv thread pool while it destroys the handle, so a
 * poll that lands then uses a freed handle (a test process died of SIGSEGV in CI, its producer polling every 20 ms).
 */
export function disconnectClient(client: { disconnect(cb: () => void): unknown; setPollInterval?(ms: number): unknown }, boundMs: number): Promise<void> {
  client.setPollInterval?.(0);
  return new Promise<void>((res) => {
    const timer = setTimeout(res, boundMs);
    client.disconnect(() => {
      clearTimeout(timer);
      res();
    });
  });
}
