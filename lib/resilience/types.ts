/**
 * The guarded-call vocabulary: what `defineCall` takes (`GuardedCallOptions`), what the guarded
 * function receives (`CallContext`), what a `GuardedCall` offers, its events and its metrics.
 * See docs/guarded-calls.md.
 */
import type { Clock } from '../core/clock.js';
import type { WardenError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { BreakerStateStore } from './breaker-state.js';

/** What the guarded function receives with its input, per attempt. */
export interface CallContext {
  /**
   * Aborted when this attempt times out (reason: the `TIMEOUT` WardenError), when the caller's
   * signal aborts (its reason), or when the call is closed (`STOPPED`). Pass it on (`fetch(url, {
   * signal })`) so the work really stops. Created on first read: a function that never reads it
   * pays nothing for it.
   */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry... */
  readonly attempt: number;
  /** The same on every attempt of one call, so the callee can recognise a re-issue. */
  readonly idempotencyKey: string;
}

/** The function a guard protects. */
export type CallFn<I, O> = (input: I, ctx: CallContext) => Promise<O>;

/** Per-call options of `call` and `callDetailed`. */
export interface CallOptions {
  /** @default `idempotencyKey(input)` of the call's options, else a random UUID */
  idempotencyKey?: string;
  /** Aborting it stops the call: the attempt in flight is aborted and no retry follows. */
  signal?: AbortSignal;
}

/**
 * Retries with exponential backoff and jitter (p-retry). Retry k (1-based) waits
 * `min(maxTimeoutMs, round(r * minTimeoutMs * factor^(k-1)))` with `r` = `1 + random()` when
 * `randomize`, else 1; at least an error's `retryAfterMs`.
 */
export interface RetryOptions {
  /** Retries after the first attempt (Resilience4j `maxAttempts` - 1). @default 3 */
  retries?: number;
  /** Growth of the delay per retry. @default 2 */
  factor?: number;
  /** Delay before the first retry (Resilience4j `waitDuration`). @default 100 */
  minTimeoutMs?: number;
  /** Upper bound of one delay (a `retryAfterMs` may exceed it). @default 10_000 */
  maxTimeoutMs?: number;
  /** Multiply each delay by a random factor in [1, 2). @default true */
  randomize?: boolean;
  /** Total time budget of a call, from its first attempt: no retry starts after it. @default Infinity */
  maxRetryTimeMs?: number;
}

/** The circuit breaker (opossum) around each attempt. */
export interface BreakerOptions {
  /** Opens when the failure rate in the window is above this (Resilience4j `failureRateThreshold`). @default 50 */
  errorThresholdPercentage?: number;
  /** Calls the window must hold before it can open (Resilience4j `minimumNumberOfCalls`). @default 5 */
  volumeThreshold?: number;
  /** Time open before one probe is let through (Resilience4j `waitDurationInOpenState`). @default 30_000 */
  resetTimeoutMs?: number;
  /** Length of the rolling window (Resilience4j time-based `slidingWindowSize`). @default 10_000 */
  rollingCountTimeoutMs?: number;
  /** Buckets of the rolling window. @default 10 */
  rollingCountBuckets?: number;
  /** Share this breaker's state with the breakers of the same name on other nodes. */
  shared?: BreakerStateStore;
  /** This node's name in shared states. @default `${hostname}:${pid}` */
  node?: string;
}

/** Options of `defineCall`. Every field is optional. */
export interface GuardedCallOptions<I, O> {
  /** Per-attempt timeout; the attempt's signal is aborted when it expires. `Infinity`: none. @default 10_000 */
  timeoutMs?: number;
  retry?: RetryOptions;
  breaker?: BreakerOptions;
  /**
   * Used when the call fails because the dependency is unavailable (breaker open, or attempts
   * exhausted), never for a terminal error. Its value is returned, and reported: a `fallback`
   * event, the `fallbacks` metric, and `callDetailed()`'s `fallback: true`. Throw the given error
   * to decline.
   */
  fallback?: (input: I, error: WardenError) => O | Promise<O>;
  /** Errors it rejects are terminal: not retried, not counted by the breaker. @default every error is retryable */
  isRetryable?: (error: unknown) => boolean;
  /** Count terminal errors as breaker failures. @default false */
  terminalTripsBreaker?: boolean;
  /** Default idempotency key of a call. @default a random UUID per call */
  idempotencyKey?: (input: I) => string;
  /** Consecutive failed calls that raise an alert (once per episode). @default 5 */
  alertAfter?: number;
  /** Called with each alert (as the `alert` event). */
  onAlert?: (alert: CallAlert) => void;
  /** Replace a call of the same name in the registry instead of throwing. @default false */
  replace?: boolean;
  /** @default new SystemClock() */
  clock?: Clock;
  /** Jitter source, in [0, 1). @default Math.random */
  random?: () => number;
  /** @default silentLogger */
  logger?: Logger;
}

/** A circuit breaker's state (the vocabulary of the shared `BreakerStateStore`). */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Why an attempt failed. `breaker-open`: refused by the open breaker, the function did not run. */
export type AttemptFailureKind = 'timeout' | 'error' | 'terminal' | 'breaker-open' | 'aborted';

/** What `callDetailed` resolves to. */
export interface CallOutcome<O> {
  value: O;
  /** True when `value` came from the fallback, not from the function. */
  fallback: boolean;
  /** Attempts the function ran (0 when the open breaker refused the first one). */
  attempts: number;
  idempotencyKey: string;
}

/** Raised after `alertAfter` consecutive failed calls, once per episode. */
export interface CallAlert {
  call: string;
  consecutiveFailures: number;
  /** The last error's chain, one line (`describeError`). */
  error: string;
  chain: Array<{ name: string; message: string; code?: string }>;
  /** Clock time of the first failure of the episode. */
  sinceMs: number;
}

/** Everything a guarded call reports through `on(listener)`. */
export type CallEvent =
  | { type: 'attempt-failed'; call: string; attempt: number; kind: AttemptFailureKind; error: string }
  | { type: 'timeout'; call: string; attempt: number; timeoutMs: number }
  | { type: 'retry'; call: string; attempt: number; delayMs: number; retryAfterMs?: number }
  | { type: 'call-failed'; call: string; attempts: number; kind: AttemptFailureKind; error: string; idempotencyKey: string }
  | { type: 'breaker-open' | 'breaker-half-open' | 'breaker-closed'; call: string; source: 'local' | 'remote'; node?: string }
  | { type: 'fallback'; call: string; error: string }
  | ({ type: 'alert' } & CallAlert)
  | { type: 'recovered'; call: string; failedCalls: number; downForMs: number };

/** Upper bounds (ms, inclusive) of the latency histogram's buckets; one more bucket holds the rest. */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000]);

/** A plain snapshot of a guarded call's counters since it was defined. */
export interface CallMetrics {
  call: string;
  /** Calls started. */
  calls: number;
  /** Calls that returned the function's value. */
  successes: number;
  /** Calls that did not (rejected, or answered by the fallback). */
  failedCalls: number;
  /** Times the function ran. */
  attempts: number;
  /** Failed attempts by kind (`breakerOpen`: refused without running). */
  failures: { timeout: number; error: number; terminal: number; breakerOpen: number; aborted: number };
  retries: number;
  fallbacks: number;
  alerts: number;
  consecutiveFailures: number;
  breaker: { state: BreakerState; opened: number; halfOpened: number; closed: number };
  /**
   * Call latency (first attempt to settling, retries and fallback included), on the clock.
   * `counts[i]` holds latencies `<= bucketsMs[i]` and above the previous bound; the last count
   * holds those above every bound.
   */
  latencyMs: { bucketsMs: readonly number[]; counts: number[]; sum: number; count: number };
}

/**
 * A function behind a timeout, retries, a circuit breaker and an idempotency key.
 *
 * @example
 * const quote = defineCall('fx.quote', (pair: string, { signal }) => fetchQuote(pair, signal));
 * const rate = await quote.call('EURUSD');
 */
export interface GuardedCall<I = unknown, O = unknown> {
  readonly name: string;
  /** Runs the call; rejects with a `WardenError` (`CALL_FAILED`, `BREAKER_OPEN`, `FALLBACK_FAILED`, `STOPPED`) or the caller's abort reason. */
  call(input: I, options?: CallOptions): Promise<O>;
  /** Like `call`, and tells whether the fallback answered. */
  callDetailed(input: I, options?: CallOptions): Promise<CallOutcome<O>>;
  /** Subscribes to events; returns the unsubscribe. */
  on(listener: (event: CallEvent) => void): () => void;
  metrics(): CallMetrics;
  readonly breakerState: BreakerState;
  readonly closed: boolean;
  /**
   * Stops the guard: calls in flight reject with `STOPPED` (their signals abort), pending retries
   * stop, the breaker's timers and the shared-state watcher are released, and the name is free
   * again. Resolves once pending shared-state publishes have settled.
   */
  close(): Promise<void>;
}
