/**
 * Akka-style exponential backoff between restarts of one child. The user-facing options
 * (`minBackoffMs`, `maxBackoffMs`, `randomFactor`, `resetBackoffAfterMs`) are resolved once, when
 * the child spec is, into the one schedule value of `lib/core/backoff.ts`; a restart only asks it
 * for the delay after n consecutive restarts, so it can be tested without a clock.
 */
import { exponentialBackoff, type Backoff } from '../core/backoff.js';
import { ConfigError } from '../core/errors.js';
import type { BackoffOptions } from './types.js';

/** `BackoffOptions` with every default applied and validated. */
export interface ResolvedBackoff {
  minBackoffMs: number;
  maxBackoffMs: number;
  randomFactor: number;
  resetBackoffAfterMs: number;
}

/** The defaults of `BackoffOptions` (OTP: restart at once). */
export const DEFAULT_BACKOFF: Readonly<ResolvedBackoff> = Object.freeze({
  minBackoffMs: 0,
  maxBackoffMs: 30_000,
  randomFactor: 0.2,
  resetBackoffAfterMs: 30_000,
});

/**
 * Applies the defaults to `options` (field by field over `base`, the supervisor's backoff for a
 * child) and validates the result; bad values throw a `ConfigError` naming `${field}.<name>`.
 *
 * @example
 * resolveBackoff({ minBackoffMs: 100 }); // { minBackoffMs: 100, maxBackoffMs: 30_000, randomFactor: 0.2, resetBackoffAfterMs: 30_000 }
 */
export function resolveBackoff(options: BackoffOptions | undefined, base: BackoffOptions = {}, field = 'backoff'): ResolvedBackoff {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new ConfigError(field, 'must be an object');
  const merged: BackoffOptions = { ...base, ...options };
  const minBackoffMs = merged.minBackoffMs ?? DEFAULT_BACKOFF.minBackoffMs;
  const maxBackoffMs = merged.maxBackoffMs ?? DEFAULT_BACKOFF.maxBackoffMs;
  const randomFactor = merged.randomFactor ?? DEFAULT_BACKOFF.randomFactor;
  const resetBackoffAfterMs = merged.resetBackoffAfterMs ?? maxBackoffMs;
  const nonNegative = (name: string, value: number): void => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new ConfigError(`${field}.${name}`, `must be a finite number >= 0 (got ${String(value)})`, { details: { value } });
    }
  };
  nonNegative('minBackoffMs', minBackoffMs);
  nonNegative('maxBackoffMs', maxBackoffMs);
  nonNegative('randomFactor', randomFactor);
  nonNegative('resetBackoffAfterMs', resetBackoffAfterMs);
  if (minBackoffMs > maxBackoffMs) {
    throw new ConfigError(`${field}.minBackoffMs`, `must be <= maxBackoffMs (${minBackoffMs} > ${maxBackoffMs})`, { details: { minBackoffMs, maxBackoffMs } });
  }
  return { minBackoffMs, maxBackoffMs, randomFactor, resetBackoffAfterMs };
}

/**
 * The restart schedule of a child: `minBackoffMs * 2^n`, capped at `maxBackoffMs`, jittered by up
 * to `randomFactor` (never past `maxBackoffMs`), built once from resolved options.
 *
 * @example
 * restartSchedule(resolveBackoff({ minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0 })).delay(3); // 800
 */
export function restartSchedule(resolved: ResolvedBackoff): Backoff {
  return exponentialBackoff({ minMs: resolved.minBackoffMs, maxMs: resolved.maxBackoffMs, randomFactor: resolved.randomFactor });
}

/**
 * Defaults for a backoff that give way to the caller's fields: a caller who sets only
 * `maxBackoffMs` below the default minimum gets that as the minimum too, and the reverse.
 *
 * @example
 * withBackoffDefaults({ maxBackoffMs: 50 }, { minBackoffMs: 100, maxBackoffMs: 30_000 }); // { minBackoffMs: 50, maxBackoffMs: 50 }
 */
export function withBackoffDefaults(user: BackoffOptions | undefined, defaults: { minBackoffMs: number; maxBackoffMs: number }): BackoffOptions {
  const u = user ?? {};
  const minBackoffMs = u.minBackoffMs ?? Math.min(defaults.minBackoffMs, u.maxBackoffMs ?? Infinity);
  const maxBackoffMs = u.maxBackoffMs ?? Math.max(defaults.maxBackoffMs, minBackoffMs);
  return { ...u, minBackoffMs, maxBackoffMs };
}

/**
 * The delay before restart number `attempt + 1` of a child, where `attempt` counts the
 * consecutive restarts before it (0 for the first):
 * `min(max, min(max, minBackoffMs * 2^attempt) * (1 + random() * randomFactor))`, rounded to
 * whole ms. With `minBackoffMs` 0 the delay is 0. A one-off helper: it resolves `options` on
 * every call; a supervisor resolves a child's schedule once (`restartSchedule`).
 *
 * @example
 * backoffDelay(3, { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0 }); // 800
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  return restartSchedule(resolveBackoff(options)).delay(attempt, random);
}
