/**
 * Structured JSON logs (pino). Callers log redacted config only; every line is also scrubbed of the values secret
 * references resolved to, so a value that reaches a message some other way (a library's error text) is not written.
 */
import pino, { type Logger } from 'pino';
import { scrubSecrets } from './secret-references';

export type { Logger };

export function createLogger(name: string, level: string = process.env.STRAIT_LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    { name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, hooks: { streamWrite: scrubSecrets } },
    destination ?? pino.destination(2),
  );
}
