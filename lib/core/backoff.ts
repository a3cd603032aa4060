/**
 * One backoff value for the whole code base: an exponential schedule of delays, built once from
 * its options and then asked for the delay before attempt n. Restarts (supervision, keyed
 * actors), publish retries (outbox, PubAck collector), reconnects (Redis, the JetStream reader,
 * NATS KV watchers) and store retries all use it, so "how long until the next try" has one
 * definition and one set of tests.
 *
 * Invariants:
 *  1. `delay(n)` is `min(maxMs, minMs * factor^n)`, then jittered to `base * (1 + r * randomFactor)`
 *     with `r` in [0, 1) from the injected random source, capped again at `maxMs`, rounded to
 *     whole ms. `n` counts the failures before the attempt (0 for the first retry).
 *  2. `n` is clamped to [0, 64] and non-integers are floored: a long outage never overflows to
 *     `Infinity` or `NaN`, and a caller's counter never makes a negative delay.
 *  3. A schedule is immutable; it holds no counter. Callers count their own attempts.
 *  4. `minMs` 0 gives 0 for every attempt (retry at once, as OTP restarts).
 */
import { ConfigError } from './errors.js';

/** How a backoff grows. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. */
  minMs: number;
  /** Longest delay, in ms. */
  maxMs: number;
  /** Growth per attempt. @default 2 */
  factor?: number;
  /** Jitter: up to this fraction is added to each delay (0.2 = up to +20 %). @default 0 */
  randomFactor?: number;
}

/** An immutable exponential schedule (invariant 3). */
export interface Backoff {
  readonly minMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly randomFactor: number;
  /**
   * The delay in ms before the retry that follows `failures` failures (invariants 1, 2).
   * @param random source of jitter in [0, 1). @default Math.random
   */
  delay(failures: number, random?: () => number): number;
}

/**
 * Builds a schedule; bad values throw a `ConfigError` naming `${field}.<name>`.
 *
 * @example
 * const retry = exponentialBackoff({ minMs: 10, maxMs: 5_000 });
 * retry.delay(0); // 10
 * retry.delay(3); // 80
 * retry.delay(20); // 5000
 */
export function exponentialBackoff(options: BackoffOptions, field = 'backoff'): Backoff {
  const minMs = options.minMs;
  const maxMs = options.maxMs;
  const factor = options.factor ?? 2;
  const randomFactor = options.randomFactor ?? 0;
  const finiteAtLeast = (name: string, value: number, least: number): void => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < least) {
      throw new ConfigError(`${field}.${name}`, `must be a finite number >= ${least} (got ${String(value)})`, { details: { value } });
    }
  };
  finiteAtLeast('minMs', minMs, 0);
  finiteAtLeast('maxMs', maxMs, 0);
  finiteAtLeast('factor', factor, 1);
  finiteAtLeast('randomFactor', randomFactor, 0);
  if (minMs > maxMs) throw new ConfigError(`${field}.minMs`, `must be <= maxMs (${minMs} > ${maxMs})`, { details: { minMs, maxMs } });
  return Object.freeze({
    minMs,
    maxMs,
    factor,
    randomFactor,
    delay(failures: number, random: () => number = Math.random): number {
      const n = Number.isFinite(failures) ? Math.min(Math.max(0, Math.floor(failures)), 64) : 64;
      const base = Math.min(maxMs, minMs * factor ** n);
      if (base === 0) return 0;
      if (randomFactor === 0) return Math.round(base);
      const r = Math.min(1, Math.max(0, random()));
      return Math.min(maxMs, Math.round(base * (1 + r * randomFactor)));
    },
  });
}
