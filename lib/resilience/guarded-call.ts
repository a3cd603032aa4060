/**
 * `defineCall`: a function behind a guard, so one failing dependency never cascades. Each
 * attempt runs under a deadline that aborts its signal, inside an opossum circuit breaker;
 * failed attempts are retried with exponential backoff and jitter by p-retry; every attempt of
 * a call carries the same idempotency key. See docs/guarded-calls.md.
 *
 * Invariants:
 *  1. The first attempt runs directly; p-retry is entered only after it fails and the failure is
 *     retryable (its success path costs ~10x the rest of the guard). p-retry then replays that
 *     failure as its own attempt 1, so it decides every retry the same way.
 *  2. Retried: timeouts and errors. Never retried: terminal errors (`TerminalError`, any error
 *     with `nonRetryable: true`, or one `isRetryable` rejects), refusals of the open breaker,
 *     aborts. As in p-retry, a `TypeError` other than a network error (a bug) is not retried.
 *  3. Backoff sleeps run on the injected clock (p-retry's own delay is set to 0): retry k waits
 *     the backoff of k, and at least the failed attempt's `retryAfterMs`. No retry starts at or
 *     after `maxRetryTimeMs` from the first attempt; a `retryAfterMs` past it ends the call.
 *  4. Terminal errors and caller aborts do not count as breaker failures (an abort counts in
 *     half-open: an aborted probe proves nothing), unless `terminalTripsBreaker` for terminal ones.
 *  5. A call settles once, with the function's value, the fallback's value (reported: `fallback`
 *     event and metric, `callDetailed().fallback`), or a rejection: `BREAKER_OPEN`,
 *     `CALL_FAILED` (last error as cause; `nonRetryable` when it was terminal), `FALLBACK_FAILED`,
 *     `STOPPED`, or the caller's abort reason. The fallback is used for `BREAKER_OPEN` and for
 *     non-terminal `CALL_FAILED` only.
 *  6. `alertAfter` consecutive failed calls (not counting terminal errors, unless they trip the
 *     breaker, nor aborts) raise one `alert`; the next successful call ends the episode with
 *     `recovered`.
 *  7. After `close()` no timer, interval or watcher of the guard is left, calls in flight
 *     have rejected with `STOPPED`, and new calls reject with `STOPPED`.
 */
import { SpanKinds, startSpan } from '../core/tracing.js';
import pRetry, { type RetryContext } from 'p-retry';
import { sleep, type Clock } from '../core/clock.js';
import { ConfigError, describeError, errorChain, WardenError } from '../core/errors.js';
import { Attempt, Run, type AttemptHost } from './attempt.js';
import { CallBreaker } from './breaker.js';
import { CallStats } from './call-stats.js';
import { DeadlineQueue, MAX_TIMER_MS } from './deadlines.js';
import { resolveCallOptions, type ResolvedCallOptions } from './options.js';
import { checkCallName, registerCall, unregisterCall } from './registry.js';
import { retryAfterOf } from './retry-after.js';
import type { AttemptFailureKind, BreakerState, CallAlert, CallEvent, CallFn, CallMetrics, CallOptions, CallOutcome, GuardedCall, GuardedCallOptions } from './types.js';

/**
 * Defines a guarded call and registers it under `name` (see `getCall`). Options are validated at
 * once: bad values throw a `ConfigError` naming the field.
 *
 * @example
 * const charge = defineCall('payments.charge', async (req: ChargeRequest, { signal, idempotencyKey }) => {
 *   const res = await fetch(PAYMENTS_URL, { method: 'POST', body: JSON.stringify(req), headers: { 'idempotency-key': idempotencyKey }, signal });
 *   if (res.status >= 400 && res.status < 500 && res.status !== 429) throw new TerminalError(`payments: HTTP ${res.status}`);
 *   if (!res.ok) throw Object.assign(new Error(`payments: HTTP ${res.status}`), { retryAfterMs: retryAfterFrom(res) });
 *   return (await res.json()) as Receipt;
 * }, { timeoutMs: 2_000, retry: { retries: 4 }, breaker: { resetTimeoutMs: 10_000 } });
 * const receipt = await charge.call(request, { idempotencyKey: request.orderId });
 */
export function defineCall<I, O>(name: string, fn: CallFn<I, O>, options: GuardedCallOptions<I, O> = {}): GuardedCall<I, O> {
  if (typeof fn !== 'function') throw new ConfigError('fn', 'must be a function (input, ctx) => Promise<output>');
  const resolved = resolveCallOptions(options);
  checkCallName(name, resolved.replace);
  const guard = new Guard(name, fn, resolved);
  registerCall(guard);
  return guard;
}

class Guard<I, O> implements GuardedCall<I, O>, AttemptHost<I, O> {
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly deadlines: DeadlineQueue;
  private readonly stats: CallStats;
  private readonly breaker: CallBreaker<Attempt<I, O>>;
  private readonly listeners = new Set<(event: CallEvent) => void>();
  private readonly retrying = new Set<Run<I>>();
  private streakStartedAt = 0;
  private isClosed = false;
  private closing: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly fn: CallFn<I, O>,
    private readonly o: ResolvedCallOptions<I, O>,
  ) {
    this.clock = o.clock;
    this.timeoutMs = o.timeoutMs;
    this.deadlines = new DeadlineQueue(o.clock);
    this.stats = new CallStats(name);
    this.breaker = new CallBreaker<Attempt<I, O>>(o.breaker, {
      name,
      action: (attempt) => attempt.start(),
      ignore: (_err, attempt) => this.ignoredByBreaker(attempt),
      onTransition: (to, source, node) => this.onTransition(to, source, node),
      clock: o.clock,
      logger: o.logger,
    });
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  call(input: I, options?: CallOptions): Promise<O> {
    let run: Run<I>;
    try {
      run = this.newRun(input, options);
    } catch (err) {
      return rejection(err);
    }
    return this.execute(run);
  }

  async callDetailed(input: I, options?: CallOptions): Promise<CallOutcome<O>> {
    const run = this.newRun(input, options);
    const value = await this.execute(run);
    return { value, fallback: run.fallbackUsed, attempts: run.attempts, idempotencyKey: run.idempotencyKey() };
  }

  on(listener: (event: CallEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  metrics(): CallMetrics {
    return this.stats.snapshot(this.breaker.state);
  }

  /** Invariant 7. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.isClosed = true;
    unregisterCall(this);
    const stopped = this.stoppedError();
    for (const run of this.retrying) run.retryControl?.abort(stopped);
    this.deadlines.drain((entry) => (entry as Attempt<I, O>).stop(stopped));
    this.deadlines.close();
    this.closing = this.breaker.close();
    return this.closing;
  }

  // ---- AttemptHost ----

  attemptStarted(attempt: Attempt<I, O>): void {
    this.stats.attempts++;
    attempt.run.attempts++;
  }

  classify(error: unknown): AttemptFailureKind {
    if ((error as { nonRetryable?: unknown }).nonRetryable === true) return 'terminal';
    const isRetryable = this.o.isRetryable;
    if (isRetryable === undefined) return 'error';
    try {
      return isRetryable(error) ? 'error' : 'terminal';
    } catch (err) {
      this.o.logger.warn({ call: this.name, err: err }, 'isRetryable threw; treating the error as retryable');
      return 'error';
    }
  }

  timedOut(attempt: Attempt<I, O>): Error {
    this.emit({ type: 'timeout', call: this.name, attempt: attempt.attempt, timeoutMs: this.timeoutMs });
    return new WardenError('TIMEOUT', `call ${this.name} timed out after ${this.timeoutMs} ms (attempt ${attempt.attempt})`, {
      details: { call: this.name, timeoutMs: this.timeoutMs, attempt: attempt.attempt },
    });
  }

  // ---- the call ----

  private newRun(input: I, options: CallOptions | undefined): Run<I> {
    if (this.isClosed) throw this.stoppedError();
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    let key = options?.idempotencyKey;
    if (key === undefined && this.o.idempotencyKey !== undefined) key = this.o.idempotencyKey(input);
    if (key !== undefined && (typeof key !== 'string' || key.length === 0)) {
      throw new ConfigError('idempotencyKey', `of call ${this.name} must be a non-empty string (got ${JSON.stringify(key) ?? String(key)})`);
    }
    this.stats.calls++;
    return new Run(input, this.clock.now(), signal, key);
  }

  /** A `call <name>` span around the whole call, attempts and retries included (lib/core/tracing.ts). */
  private execute(run: Run<I>): Promise<O> {
    const span = startSpan(`call ${this.name}`, SpanKinds.client, undefined, () => ({ 'warden.call': this.name }));
    if (!span) return this.executeRun(run);
    const settle = (): void => {
      span.setAttribute('warden.call.attempts', run.attempts);
      if (run.fallbackUsed) span.setAttribute('warden.call.fallback', true);
    };
    return span.within(() => this.executeRun(run)).then(
      (value) => {
        settle();
        span.end();
        return value;
      },
      (err: unknown) => {
        settle();
        span.fail(err);
        span.end();
        throw err;
      },
    );
  }

  private async executeRun(run: Run<I>): Promise<O> {
    const first = new Attempt(this, run, 1);
    let value: O;
    try {
      value = (await this.breaker.fire(first)) as O;
    } catch (err) {
      return this.recover(run, this.attemptFailed(run, first, err));
    }
    this.succeeded(run);
    return value;
  }

  /** Invariant 1: p-retry from the first failure on. */
  private async recover(run: Run<I>, firstError: unknown): Promise<O> {
    let error = firstError;
    if (this.retryable(run.lastKind) && this.o.retry.retries > 0 && !this.isClosed) {
      const control = new AbortController();
      run.retryControl = control;
      const callerSignal = run.signal;
      const onAbort = (): void => control.abort(callerSignal?.reason);
      callerSignal?.addEventListener('abort', onAbort, { once: true });
      this.retrying.add(run);
      try {
        const value = await pRetry(
          async (n) => {
            if (n === 1) throw firstError;
            return this.retryAttempt(run, n);
          },
          { retries: this.o.retry.retries, minTimeout: 0, signal: control.signal, shouldRetry: (ctx) => this.beforeRetry(run, ctx, control.signal) },
        );
        this.succeeded(run);
        return value;
      } catch (err) {
        error = control.signal.aborted ? control.signal.reason : err;
        if (control.signal.aborted) run.lastKind = 'aborted';
      } finally {
        callerSignal?.removeEventListener('abort', onAbort);
        this.retrying.delete(run);
      }
    }
    return this.failed(run, error);
  }

  private async retryAttempt(run: Run<I>, n: number): Promise<O> {
    const attempt = new Attempt(this, run, n);
    try {
      return (await this.breaker.fire(attempt)) as O;
    } catch (err) {
      throw this.attemptFailed(run, attempt, err);
    }
  }

  /** Records a failed attempt; returns the error to carry on with (a refusal becomes `BREAKER_OPEN`). */
  private attemptFailed(run: Run<I>, attempt: Attempt<I, O>, err: unknown): unknown {
    let kind = attempt.kind;
    let error = err;
    if (kind === undefined) {
      if (this.breaker.isRefusal(err)) {
        kind = 'breaker-open';
        // The cause is the dependency's last error in this call; none when the first attempt was refused.
        error = new WardenError('BREAKER_OPEN', `call ${this.name}: the circuit breaker is ${this.breaker.state}; failing fast`, {
          ...(run.lastError === undefined ? {} : { cause: run.lastError }),
          details: { call: this.name, state: this.breaker.state, attempts: run.attempts },
        });
      } else {
        kind = 'aborted';
        if (this.breaker.isShutdown(err)) error = this.stoppedError();
      }
    }
    run.lastKind = kind;
    run.lastError = error;
    this.stats.failure(kind);
    if (this.listeners.size > 0) this.emit({ type: 'attempt-failed', call: this.name, attempt: attempt.attempt, kind, error: describeError(error) });
    return error;
  }

  /** Invariant 3: p-retry's `shouldRetry`, sleeping the backoff on the clock. */
  private async beforeRetry(run: Run<I>, ctx: RetryContext, signal: AbortSignal): Promise<boolean> {
    if (!this.retryable(run.lastKind) || this.isClosed) return false;
    const remaining = this.o.retry.maxRetryTimeMs - (this.clock.now() - run.startedAt);
    let delayMs = this.backoff(ctx.retriesConsumed);
    const retryAfterMs = retryAfterOf(run.lastError);
    if (retryAfterMs !== undefined) delayMs = Math.max(delayMs, retryAfterMs);
    if (delayMs >= remaining || delayMs > MAX_TIMER_MS) return false;
    this.stats.retries++;
    const attempt = ctx.attemptNumber + 1;
    this.emit(retryAfterMs === undefined ? { type: 'retry', call: this.name, attempt, delayMs } : { type: 'retry', call: this.name, attempt, delayMs, retryAfterMs });
    if (delayMs > 0) await sleep(this.clock, delayMs, signal);
    return true;
  }

  /** Retry k = `retriesConsumed + 1` (p-retry's formula, with the injected random). */
  private backoff(retriesConsumed: number): number {
    const { minTimeoutMs, factor, maxTimeoutMs, randomize } = this.o.retry;
    const r = randomize ? 1 + Math.min(Math.max(this.o.random(), 0), 1) : 1;
    return Math.min(maxTimeoutMs, Math.round(r * minTimeoutMs * factor ** retriesConsumed));
  }

  private retryable(kind: AttemptFailureKind | undefined): boolean {
    return kind === 'error' || kind === 'timeout';
  }

  private succeeded(run: Run<I>): void {
    const stats = this.stats;
    stats.successes++;
    stats.observeLatency(this.clock.now() - run.startedAt);
    if (stats.consecutiveFailures !== 0) this.recovered();
  }

  /** Invariant 5. */
  private async failed(run: Run<I>, error: unknown): Promise<O> {
    const stats = this.stats;
    stats.failedCalls++;
    stats.observeLatency(this.clock.now() - run.startedAt);
    const kind = run.lastKind ?? 'error';
    const surfaced = kind === 'aborted' || kind === 'breaker-open' ? error : this.callFailedError(run, kind);
    if (this.listeners.size > 0) {
      this.emit({ type: 'call-failed', call: this.name, attempts: run.attempts, kind, error: describeError(surfaced), idempotencyKey: run.idempotencyKey() });
    }
    this.o.logger.debug({ call: this.name, attempts: run.attempts, kind, err: surfaced }, 'guarded call failed');
    if (kind === 'aborted') throw surfaced;
    if (kind !== 'terminal' || this.o.terminalTripsBreaker) this.countFailure(surfaced);
    const fallback = this.o.fallback;
    if (fallback === undefined || kind === 'terminal') throw surfaced;
    let value: O;
    try {
      value = await fallback(run.input, surfaced as WardenError);
    } catch (fbErr) {
      if (fbErr === surfaced) throw surfaced;
      throw new WardenError('FALLBACK_FAILED', `call ${this.name}: the fallback failed`, {
        cause: fbErr,
        details: { call: this.name, error: describeError(surfaced) },
      });
    }
    run.fallbackUsed = true;
    stats.fallbacks++;
    this.emit({ type: 'fallback', call: this.name, error: describeError(surfaced) });
    return value;
  }

  private callFailedError(run: Run<I>, kind: AttemptFailureKind): WardenError {
    const n = run.attempts;
    return new WardenError('CALL_FAILED', `call ${this.name} failed after ${n} attempt${n === 1 ? '' : 's'} (${kind})`, {
      cause: run.lastError,
      nonRetryable: kind === 'terminal',
      details: { call: this.name, attempts: n, kind, elapsedMs: this.clock.now() - run.startedAt },
    });
  }

  /** Invariant 6. */
  private countFailure(error: unknown): void {
    const stats = this.stats;
    if (stats.consecutiveFailures++ === 0) this.streakStartedAt = this.clock.now();
    if (stats.consecutiveFailures !== this.o.alertAfter) return;
    stats.alerts++;
    const alert: CallAlert = { call: this.name, consecutiveFailures: stats.consecutiveFailures, error: describeError(error), chain: errorChain(error), sinceMs: this.streakStartedAt };
    this.o.logger.error({ call: this.name, consecutiveFailures: alert.consecutiveFailures, err: alert.error }, `guarded call ${this.name} keeps failing`);
    this.emit({ type: 'alert', ...alert });
    try {
      this.o.onAlert?.(alert);
    } catch (err) {
      this.o.logger.warn({ call: this.name, err: err }, 'onAlert threw');
    }
  }

  private recovered(): void {
    const failedCalls = this.stats.consecutiveFailures;
    this.stats.consecutiveFailures = 0;
    if (failedCalls < this.o.alertAfter) return;
    const downForMs = this.clock.now() - this.streakStartedAt;
    this.o.logger.info({ call: this.name, failedCalls, downForMs }, `guarded call ${this.name} recovered`);
    this.emit({ type: 'recovered', call: this.name, failedCalls, downForMs });
  }

  private ignoredByBreaker(attempt: Attempt<I, O>): boolean {
    const kind = attempt.kind;
    if (kind === 'terminal') return !this.o.terminalTripsBreaker;
    if (kind === 'aborted') return this.breaker.state !== 'half-open';
    return false;
  }

  private onTransition(to: BreakerState, source: 'local' | 'remote', node?: string): void {
    this.stats.transition(to);
    const type = to === 'open' ? 'breaker-open' : to === 'half-open' ? 'breaker-half-open' : 'breaker-closed';
    const event: CallEvent = node === undefined ? { type, call: this.name, source } : { type, call: this.name, source, node };
    const log = to === 'open' ? 'warn' : 'info';
    this.o.logger[log]({ call: this.name, state: to, source, node }, `circuit breaker of ${this.name} ${to}`);
    this.emit(event);
  }

  private stoppedError(): WardenError {
    return new WardenError('STOPPED', `call ${this.name} is closed`, { details: { call: this.name } });
  }

  private emit(event: CallEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.o.logger.warn({ call: this.name, event: event.type, err: err }, 'guarded-call listener threw');
      }
    }
  }
}

/** A promise rejected with `err` (a caller's abort reason need not be an Error). */
// eslint-disable-next-line @typescript-eslint/require-await
async function rejection(err: unknown): Promise<never> {
  throw err;
}
