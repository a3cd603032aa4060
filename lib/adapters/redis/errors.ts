/**
 * How the Redis checkpoint store reports failures: every Redis or ioredis error becomes a
 * `WardenError` (the driver error kept as `cause`), and no credential ever reaches a message,
 * a detail or a log line.
 *
 * Invariants:
 *  1. `translateRedisError` always returns a `WardenError`; a `WardenError` passes through as is.
 *  2. Codes by cause: the store closed by its owner -> `STOPPED` (non-retryable); a command or
 *     connect timeout -> `TIMEOUT`; a lost or refused connection, or a server that cannot serve
 *     now (LOADING, BUSY, OOM, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN...) -> `TRANSPORT_CLOSED`
 *     (retryable: the client reconnects and the next write retries); a key holding another type
 *     -> `CHECKPOINT_CORRUPT`; authentication and permission errors -> `CONFIG` (non-retryable).
 *  3. Messages name the redacted URL (`redactUrl`) and pass through `scrubSecrets`; a driver
 *     error whose message holds a secret is replaced, as `cause`, by a scrubbed copy.
 */
import { redactUrl, scrubSecrets } from '../../core/redact.js';
import { WardenError, type WardenErrorCode } from '../../core/errors.js';

/**
 * What the store was doing when Redis failed, for messages and details.
 *
 * @example
 * const ctx: RedisErrorContext = { op: 'write', scope: 'orders/0', target: redactUrl(url), secrets: [password] };
 */
export interface RedisErrorContext {
  /** `write`, `readMeta`, `readActor`, `readActors`, `clear`, `connect`... */
  op: string;
  /** `operator/partition`, when the operation has one. */
  scope?: string;
  /** The redacted server address. */
  target: string;
  /** Strings that must never appear in a message (passwords, URL userinfo). */
  secrets: readonly string[];
}

const UNAVAILABLE = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|MOVED|ASK)\b/;
const AUTH = /^(NOAUTH|WRONGPASS|NOPERM)\b/;

function classify(err: Error): { code: WardenErrorCode; reason: string; nonRetryable: boolean } {
  const msg = err.message;
  if (err.name === 'ReplyError' || err.constructor.name === 'SimpleError' || err.constructor.name === 'ReplyError') {
    if (msg.startsWith('WRONGTYPE')) return { code: 'CHECKPOINT_CORRUPT', reason: 'wrong-type', nonRetryable: true };
    if (AUTH.test(msg)) return { code: 'CONFIG', reason: 'auth', nonRetryable: true };
    if (UNAVAILABLE.test(msg)) return { code: 'TRANSPORT_CLOSED', reason: 'unavailable', nonRetryable: false };
    return { code: 'TRANSPORT_CLOSED', reason: 'server', nonRetryable: false };
  }
  if (/timed? ?out|ETIMEDOUT/i.test(msg)) return { code: 'TIMEOUT', reason: 'timeout', nonRetryable: false };
  return { code: 'TRANSPORT_CLOSED', reason: 'connection', nonRetryable: false };
}

/** A copy of `err` safe to keep as a cause: the same name and scrubbed message, no other fields. */
function scrubbedCause(err: unknown, secrets: readonly string[]): unknown {
  if (!(err instanceof Error)) return err;
  const scrubbed = scrubSecrets(err.message, secrets);
  if (scrubbed === err.message && (typeof err.stack !== 'string' || scrubSecrets(err.stack, secrets) === err.stack)) return err;
  const copy = new Error(scrubbed);
  copy.name = err.name;
  copy.stack = scrubSecrets(err.stack ?? '', secrets);
  return copy;
}

/**
 * Turns any error raised by ioredis or Redis into a `WardenError` (invariants 1-3).
 *
 * @example
 * try { await client.hget(key, 'body') }
 * catch (err) { throw translateRedisError(err, { op: 'readMeta', scope: 'orders/0', target, secrets }) }
 */
export function translateRedisError(err: unknown, ctx: RedisErrorContext): WardenError {
  if (err instanceof WardenError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const { code, reason, nonRetryable } = classify(e);
  const where = ctx.scope === undefined ? '' : ` ${ctx.scope}`;
  const message = scrubSecrets(`redis checkpoint ${ctx.op}${where} failed on ${ctx.target}: ${e.message}`, ctx.secrets);
  const details: Record<string, unknown> = { op: ctx.op, target: ctx.target, reason };
  if (ctx.scope !== undefined) details.scope = ctx.scope;
  return new WardenError(code, message, { cause: scrubbedCause(err, ctx.secrets), nonRetryable, details });
}

/**
 * The error for a store used after `close()`.
 *
 * @example
 * if (this.closed) throw storeClosedError('write', target);
 */
export function storeClosedError(op: string, target: string): WardenError {
  return new WardenError('STOPPED', `redis checkpoint ${op} refused: the store on ${target} is closed`, {
    nonRetryable: true,
    details: { op, target, reason: 'closed' },
  });
}

export { redactUrl, scrubSecrets };
