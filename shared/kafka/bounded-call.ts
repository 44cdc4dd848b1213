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
