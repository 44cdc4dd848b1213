/**
 * Structured JSON logs (pino). Callers log redacted config only; every line is also scrubbed of the values secret
 * references resolved to, so a value that reaches a message some other way (a library's error text) is not written.
 *
 * Lines are written synchronously, as Node writes process.stderr to files and pipes on Linux: pino's default
 * destination writes through libuv's thread pool, where node-rdkafka's blocking calls (connect, metadata, watermarks)
 * hold its threads for up to seconds under load, so an error or recovery line reached stderr up to 0.9 s after the
 * state it reports was visible in /v1/status (measured in test/integrity/limits.test.ts runs at load 17-29). A few
 * lines every 10 s in steady state: the main thread can afford the write.
 */
import pino, { type Logger } from 'pino';
import { scrubSecrets } from './secret-references';

export type { Logger };

export function createLogger(name: string, level: string = process.env.STRAIT_LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    { name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, hooks: { streamWrite: scrubSecrets } },
    destination ?? pino.destination({ dest: 2, sync: true }),
  );
}
