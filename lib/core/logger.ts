/**
 * The logger port. warden logs through this narrow interface; `createLogger` returns a pino
 * logger that satisfies it, and any pino-compatible logger of the host service can be passed in.
 */
import { pino } from 'pino';

/** What warden needs of a logger (a subset of pino's). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** @default process.env.WARDEN_LOG_LEVEL ?? 'warn' */
  level?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Name bound to every line. @default 'warden' */
  name?: string;
}

/**
 * A pino logger writing JSON lines to stderr.
 *
 * @example
 * const logger = createLogger({ level: 'info' });
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.WARDEN_LOG_LEVEL as LoggerOptions['level']) ?? 'warn';
  return pino({ name: options.name ?? 'warden', level }, pino.destination(2));
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
