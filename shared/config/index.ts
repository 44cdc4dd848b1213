/**
 * The one config file, the wing's front door: its schema and types (schema.ts), validation with exact paths and
 * defaults (check.ts), secret redaction (redact.ts), and loading (load.ts).
 */
export * from './schema';
export { validateConfig, validateRoute } from './check';
export { isSecretKey, redactConfig, redactProperties, shownValue } from './redact';
export { loadConfig } from './load';
