/**
 * `resolveCallOptions`: the options of `defineCall` with defaults applied and validated once.
 * Bad values throw a `ConfigError` naming the field (`timeoutMs`, `retry.factor`,
 * `breaker.shared`...).
 */
import { hostname } from 'node:os';
import { SystemClock, type Clock } from '../core/clock.js';
import { ConfigError, type WardenError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { BreakerStateStore } from './breaker-state.js';
import { MAX_TIMER_MS } from './deadlines.js';
import type { CallAlert, GuardedCallOptions } from './types.js';

/** The retry options with defaults applied. */
export interface ResolvedRetry {
  retries: number;
  factor: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
  randomize: boolean;
  maxRetryTimeMs: number;
}

/** The breaker options with defaults applied. */
export interface ResolvedBreaker {
  errorThresholdPercentage: number;
  volumeThreshold: number;
  resetTimeoutMs: number;
  rollingCountTimeoutMs: number;
  rollingCountBuckets: number;
  shared: BreakerStateStore | undefined;
  node: string;
}

/** `GuardedCallOptions` with defaults applied and validated. */
export interface ResolvedCallOptions<I, O> {
  timeoutMs: number;
  retry: ResolvedRetry;
  breaker: ResolvedBreaker;
  fallback: ((input: I, error: WardenError) => O | Promise<O>) | undefined;
  isRetryable: ((error: unknown) => boolean) | undefined;
  terminalTripsBreaker: boolean;
  idempotencyKey: ((input: I) => string) | undefined;
  alertAfter: number;
  onAlert: ((alert: CallAlert) => void) | undefined;
  replace: boolean;
  clock: Clock;
  random: () => number;
  logger: Logger;
}

/** Defaults of `RetryOptions`. */
export const DEFAULT_RETRY: Readonly<ResolvedRetry> = Object.freeze({
  retries: 3,
  factor: 2,
  minTimeoutMs: 100,
  maxTimeoutMs: 10_000,
  randomize: true,
  maxRetryTimeMs: Infinity,
});

/** Defaults of `BreakerOptions` (but `shared` and `node`). */
export const DEFAULT_BREAKER = Object.freeze({
  errorThresholdPercentage: 50,
  volumeThreshold: 5,
  resetTimeoutMs: 30_000,
  rollingCountTimeoutMs: 10_000,
  rollingCountBuckets: 10,
});

/** Default per-attempt timeout. */
export const DEFAULT_TIMEOUT_MS = 10_000;

type Check = (field: string, value: unknown) => void;

const show = (value: unknown): string => (typeof value === 'function' ? 'a function' : (JSON.stringify(value) ?? String(value)));

const number =
  (min: number, opts: { above?: boolean; integer?: boolean; infinity?: boolean; max?: number } = {}): Check =>
  (field, value) => {
    const ok =
      typeof value === 'number' &&
      !Number.isNaN(value) &&
      (opts.infinity === true ? value !== -Infinity : Number.isFinite(value)) &&
      (opts.above === true ? value > min : value >= min) &&
      (opts.integer !== true || Number.isInteger(value) || value === Infinity) &&
      (opts.max === undefined || value <= opts.max);
    if (!ok) {
      const upTo = opts.max === undefined ? '' : ` and <= ${opts.max}`;
      const what = `${opts.integer === true ? 'an integer' : 'a number'} ${opts.above === true ? '>' : '>='} ${min}${upTo}${opts.infinity === true ? ' (or Infinity)' : ''}`;
      throw new ConfigError(field, `must be ${what} (got ${show(value)})`, { details: { value } });
    }
  };

const fnOrUndefined: Check = (field, value) => {
  if (value !== undefined && typeof value !== 'function') throw new ConfigError(field, `must be a function (got ${show(value)})`);
};

const bool: Check = (field, value) => {
  if (typeof value !== 'boolean') throw new ConfigError(field, `must be a boolean (got ${show(value)})`);
};

function objectOrUndefined(field: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'object' || value === null)) throw new ConfigError(field, `must be an object (got ${show(value)})`);
}

function take<T>(field: string, value: T | undefined, fallback: T, check: Check): T {
  const v = value === undefined ? fallback : value;
  check(field, v);
  return v;
}

function resolveRetry(options: GuardedCallOptions<unknown, unknown>['retry']): ResolvedRetry {
  objectOrUndefined('retry', options);
  const o = options ?? {};
  const retries = take('retry.retries', o.retries, DEFAULT_RETRY.retries, number(0, { integer: true, infinity: true }));
  const factor = take('retry.factor', o.factor, DEFAULT_RETRY.factor, number(0, { above: true }));
  const minTimeoutMs = take('retry.minTimeoutMs', o.minTimeoutMs, DEFAULT_RETRY.minTimeoutMs, number(0));
  const maxTimeoutMs = take('retry.maxTimeoutMs', o.maxTimeoutMs, Math.max(DEFAULT_RETRY.maxTimeoutMs, minTimeoutMs), number(0, { infinity: true }));
  if (minTimeoutMs > maxTimeoutMs) {
    throw new ConfigError('retry.minTimeoutMs', `must be <= retry.maxTimeoutMs (${minTimeoutMs} > ${maxTimeoutMs})`, { details: { minTimeoutMs, maxTimeoutMs } });
  }
  const randomize = take('retry.randomize', o.randomize, DEFAULT_RETRY.randomize, bool);
  const maxRetryTimeMs = take('retry.maxRetryTimeMs', o.maxRetryTimeMs, DEFAULT_RETRY.maxRetryTimeMs, number(0, { above: true, infinity: true }));
  return { retries, factor, minTimeoutMs, maxTimeoutMs, randomize, maxRetryTimeMs };
}

function resolveBreaker(options: GuardedCallOptions<unknown, unknown>['breaker']): ResolvedBreaker {
  objectOrUndefined('breaker', options);
  const o = options ?? {};
  const errorThresholdPercentage = take('breaker.errorThresholdPercentage', o.errorThresholdPercentage, DEFAULT_BREAKER.errorThresholdPercentage, number(0));
  if (errorThresholdPercentage >= 100) {
    throw new ConfigError('breaker.errorThresholdPercentage', `must be < 100: the breaker opens above it, and no rate is above 100 (got ${errorThresholdPercentage})`);
  }
  const volumeThreshold = take('breaker.volumeThreshold', o.volumeThreshold, DEFAULT_BREAKER.volumeThreshold, number(0, { integer: true }));
  // opossum arms these on Node timers, which cannot wait longer than 2^31 - 1 ms.
  const resetTimeoutMs = take('breaker.resetTimeoutMs', o.resetTimeoutMs, DEFAULT_BREAKER.resetTimeoutMs, number(0, { above: true, max: MAX_TIMER_MS }));
  const rollingCountTimeoutMs = take('breaker.rollingCountTimeoutMs', o.rollingCountTimeoutMs, DEFAULT_BREAKER.rollingCountTimeoutMs, number(0, { above: true, max: MAX_TIMER_MS }));
  const rollingCountBuckets = take('breaker.rollingCountBuckets', o.rollingCountBuckets, DEFAULT_BREAKER.rollingCountBuckets, number(1, { integer: true }));
  if (rollingCountTimeoutMs / rollingCountBuckets < 1) {
    throw new ConfigError('breaker.rollingCountBuckets', `must leave buckets of at least 1 ms (${rollingCountTimeoutMs} ms / ${rollingCountBuckets})`);
  }
  const shared = o.shared;
  if (shared !== undefined && (typeof shared !== 'object' || shared === null || typeof shared.publish !== 'function' || typeof shared.watch !== 'function')) {
    throw new ConfigError('breaker.shared', 'must be a BreakerStateStore (publish, watch, close)');
  }
  const node = o.node ?? `${hostname()}:${process.pid}`;
  if (typeof node !== 'string' || node.length === 0) throw new ConfigError('breaker.node', `must be a non-empty string (got ${show(node)})`);
  return { errorThresholdPercentage, volumeThreshold, resetTimeoutMs, rollingCountTimeoutMs, rollingCountBuckets, shared, node };
}

/**
 * Applies the defaults of `GuardedCallOptions` and validates every field.
 *
 * @example
 * resolveCallOptions({ retry: { retries: 5 } }).retry; // { retries: 5, factor: 2, minTimeoutMs: 100, ... }
 */
export function resolveCallOptions<I, O>(options: GuardedCallOptions<I, O> = {}): ResolvedCallOptions<I, O> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object');
  const timeoutMs = take('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS, number(0, { above: true, infinity: true }));
  const retry = resolveRetry(options.retry);
  const breaker = resolveBreaker(options.breaker);
  for (const field of ['fallback', 'isRetryable', 'idempotencyKey', 'onAlert', 'random'] as const) fnOrUndefined(field, options[field]);
  const terminalTripsBreaker = take('terminalTripsBreaker', options.terminalTripsBreaker, false, bool);
  const alertAfter = take('alertAfter', options.alertAfter, 5, number(1, { integer: true }));
  const replace = take('replace', options.replace, false, bool);
  const clock = options.clock ?? new SystemClock();
  if (typeof clock?.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw new ConfigError('clock', 'must implement now, setTimeout and clearTimeout');
  }
  const logger = options.logger ?? silentLogger;
  if (typeof logger?.warn !== 'function') throw new ConfigError('logger', 'must be a Logger (debug, info, warn, error, child)');
  return {
    timeoutMs,
    retry,
    breaker,
    fallback: options.fallback,
    isRetryable: options.isRetryable,
    terminalTripsBreaker,
    idempotencyKey: options.idempotencyKey,
    alertAfter,
    onAlert: options.onAlert,
    replace,
    clock,
    random: options.random ?? Math.random,
    logger,
  };
}
