/**
 * The warden error family. Every failure the framework reports is a `WardenError` with a
 * string-literal `code`; the original error is kept as `cause`. Adapters translate NATS and
 * Redis errors into these, so callers switch on `code`, never on driver messages.
 */

/** Every code a `WardenError` can carry. */
export type WardenErrorCode =
  | 'CONFIG'
  | 'VALIDATION'
  | 'TERMINAL'
  | 'ACTOR_CRASHED'
  | 'CHECKPOINT_FENCED'
  | 'CHECKPOINT_CORRUPT'
  | 'CHECKPOINT_VERSION'
  | 'STREAM_NOT_FOUND'
  | 'STREAM_EXISTS'
  | 'IN_USE'
  | 'MESSAGE_TOO_LARGE'
  | 'NO_STREAM_FOR_SUBJECT'
  | 'TRANSPORT_CLOSED'
  | 'TIMEOUT'
  | 'STOPPED'
  | 'LOG_TRUNCATED'
  | 'ESCALATED'
  | 'KILLED'
  | 'CALL_FAILED'
  | 'BREAKER_OPEN'
  | 'FALLBACK_FAILED'
  | 'LEASE_LOST'
  | 'CHILD_NOT_FOUND'
  | 'CHILD_EXISTS'
  | 'CHILD_RUNNING'
  | 'CHILD_RESTARTING'
  | 'SUPERVISOR_NOT_RUNNING';

/** Options shared by every warden error. */
export interface WardenErrorOptions {
  cause?: unknown;
  /** A non-retryable error is never retried by a guard or a restart policy. @default false */
  nonRetryable?: boolean;
  /** Structured details that name what is wrong (field, value, limit...). */
  details?: Record<string, unknown>;
}

/**
 * Base class of every error warden raises.
 *
 * @example
 * try { await store.write(cp) } catch (err) {
 *   if (err instanceof WardenError && err.code === 'CHECKPOINT_FENCED') stepDown();
 * }
 */
export class WardenError extends Error {
  readonly code: WardenErrorCode;
  readonly nonRetryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: WardenErrorCode, message: string, options: WardenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.nonRetryable = options.nonRetryable ?? false;
    this.details = options.details ?? {};
  }
}

/** Bad configuration. Thrown at start, naming the field: `ConfigError: checkpoint.everyEvents must be ...`. */
export class ConfigError extends WardenError {
  readonly field: string;
  constructor(field: string, message: string, options: WardenErrorOptions = {}) {
    super('CONFIG', `${field} ${message}`, { ...options, nonRetryable: true, details: { field, ...options.details } });
    this.field = field;
  }
}

/**
 * An input that may not reach a machine: too large, undecodable, failing its schema, of an unknown
 * type, or a `warden.` record that its partition's owner did not write (`forged`).
 */
export class ValidationError extends WardenError {
  readonly reason: 'undecodable' | 'too-large' | 'schema' | 'unknown-event' | 'forged';
  constructor(reason: ValidationError['reason'], message: string, options: WardenErrorOptions = {}) {
    super('VALIDATION', message, { ...options, nonRetryable: true, details: { reason, ...options.details } });
    this.reason = reason;
  }
}

/** An error that must never be retried (the Restate/Temporal notion). */
export class TerminalError extends WardenError {
  constructor(message: string, options: Omit<WardenErrorOptions, 'nonRetryable'> = {}) {
    super('TERMINAL', message, { ...options, nonRetryable: true });
  }
}

/** A machine action threw, or the actor reached status 'error'. */
export class ActorCrashedError extends WardenError {
  constructor(actor: string, key: string, cause: unknown, details: Record<string, unknown> = {}) {
    super('ACTOR_CRASHED', `actor ${actor}[${key}] crashed: ${describeError(cause)}`, {
      cause,
      details: { actor, key, ...details },
    });
  }
}

/** A checkpoint write refused because a newer owner (epoch) or a later position already wrote. */
export class CheckpointFencedError extends WardenError {
  constructor(message: string, details: Record<string, unknown>) {
    super('CHECKPOINT_FENCED', message, { nonRetryable: true, details });
  }
}

/**
 * A value a check refused, for its error message: a string quoted, an object by its class, a
 * function or an array by its kind, and never its contents.
 *
 * @example describeValue(new Date()) // 'a Date object'
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') {
    if (Array.isArray(value)) return 'an array';
    const name = (value as { constructor?: { name?: string } }).constructor?.name;
    return name === 'Object' ? 'an object' : `a ${name ?? 'null-prototype'} object`;
  }
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return value.toString();
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

/**
 * `describeError(err)` renders an error chain as one line: `a: b (caused by c)`. Line breaks
 * inside a message become spaces, and a cause whose message the error's own already quotes is
 * not repeated.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  const add = (text: string): void => {
    const line = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
    if (parts.length === 0 || !parts[parts.length - 1]!.includes(line)) parts.push(line);
  };
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof Error) {
      add(current.message);
      current = current.cause;
    } else {
      add(typeof current === 'string' ? current : (JSON.stringify(current) ?? typeof current));
      break;
    }
  }
  return parts.join(' (caused by ') + ')'.repeat(Math.max(0, parts.length - 1));
}

/** `errorChain(err)` lists `{ name, message, code }` down the `cause` chain, for dead letters and events. */
export function errorChain(err: unknown): Array<{ name: string; message: string; code?: string }> {
  const chain: Array<{ name: string; message: string; code?: string }> = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      chain.push(typeof code === 'string' ? { name: current.name, message: current.message, code } : { name: current.name, message: current.message });
      current = current.cause;
    } else {
      chain.push({ name: typeof current, message: typeof current === 'string' ? current : (JSON.stringify(current) ?? typeof current) });
      break;
    }
  }
  return chain;
}
