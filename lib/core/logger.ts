/**
 * The logger port. warden logs through this narrow interface; `createLogger` returns a pino
 * logger that satisfies it, and any pino-compatible logger of the host service can be passed in.
 *
 * Invariants of `createLogger`:
 *  1. Credentials and payloads never reach a line: the fields named in `REDACTED_FIELDS` (at the
 *     top level and one level down) are written as `[redacted]`, and `redact` adds paths.
 *  2. An error under `err` is written with its type, message, `code`, stack and `chain` (the error
 *     and every cause, as `errorChain` lists them). Warden's own lines pass the error itself.
 */
import { pino } from 'pino';
import { ConfigError, errorChain } from './errors.js';

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
  /** More fields to write as `[redacted]` (pino paths: `'req.headers.cookie'`, `'*.secret'`). */
  redact?: string[];
  /** Where lines go (one JSON line per `write`). @default stderr */
  destination?: { write(line: string): void };
}

/**
 * Fields written as `[redacted]` by `createLogger` (invariant 1): credentials, and the payloads
 * and bodies of inputs, outputs and dead letters.
 */
export const REDACTED_FIELDS: readonly string[] = Object.freeze(['password', 'pass', 'token', 'authorization', 'secret', 'credentials', 'payload', 'body', 'data', 'context']);

/** Invariant 2. */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  return { type: err.name, message: err.message, ...(code === undefined ? {} : { code }), stack: err.stack, chain: errorChain(err) };
}

/** The levels `createLogger` takes (`level`, or `WARDEN_LOG_LEVEL`). */
const LEVELS: ReadonlyArray<NonNullable<LoggerOptions['level']>> = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * A pino logger writing JSON lines to stderr.
 *
 * @example
 * const logger = createLogger({ level: 'info' });
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const fromEnv = options.level === undefined && process.env.WARDEN_LOG_LEVEL !== undefined && process.env.WARDEN_LOG_LEVEL !== '';
  const level: string = options.level ?? (fromEnv ? process.env.WARDEN_LOG_LEVEL! : 'warn');
  if (!(LEVELS as readonly unknown[]).includes(level)) {
    throw new ConfigError(fromEnv ? 'WARDEN_LOG_LEVEL' : 'level', `must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  }
  const paths = [...REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`]), ...(options.redact ?? [])];
  return pino({ name: options.name ?? 'warden', level, redact: { paths, censor: '[redacted]' }, serializers: { err: serializeError } }, options.destination ?? pino.destination(2));
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
