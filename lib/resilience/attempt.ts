/**
 * `Run` (one call) and `Attempt` (one run of the guarded function): the hot path of a guard.
 *
 * Invariants:
 *  1. An attempt settles once: with the function's value, its error, `TIMEOUT` at its deadline,
 *     or a stop reason (the caller's abort, `STOPPED`); whatever comes later is ignored. It
 *     rejects at its deadline even if the function ignores its signal.
 *  2. When an attempt is timed out or stopped, its signal aborts with that reason; a signal first
 *     read after that is already aborted. A signal nobody reads is never created.
 *  3. Every attempt of a run sees the same idempotency key; a random one is drawn at most once,
 *     when first read.
 *  4. A settled attempt is off its guard's deadline queue and off the caller's signal.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { DeadlineEntry, DeadlineQueue } from './deadlines.js';
import type { AttemptFailureKind, CallContext, CallFn } from './types.js';

/** What an attempt needs from its guard. */
export interface AttemptHost<I, O> {
  readonly name: string;
  readonly fn: CallFn<I, O>;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly deadlines: DeadlineQueue;
  attemptStarted(attempt: Attempt<I, O>): void;
  /** `terminal` or `error`, for an error the function threw. */
  classify(error: unknown): AttemptFailureKind;
  /** The `TIMEOUT` error of a timed-out attempt (and its event). */
  timedOut(attempt: Attempt<I, O>): Error;
}

/** One call to a guard. */
export class Run<I> {
  /** Times the function ran. */
  attempts = 0;
  lastKind: AttemptFailureKind | undefined;
  lastError: unknown;
  fallbackUsed = false;
  /** Aborts the retry loop (caller's abort, close). Exists once the run retries. */
  retryControl: AbortController | undefined;

  constructor(
    readonly input: I,
    readonly startedAt: number,
    readonly signal: AbortSignal | undefined,
    private key: string | undefined,
  ) {}

  /** Invariant 3. */
  idempotencyKey(): string {
    return (this.key ??= randomUUID());
  }
}

/** One attempt; it is also the `ctx` the function receives, and a deadline-queue entry. */
export class Attempt<I, O> implements CallContext, DeadlineEntry {
  deadline = 0;
  prevEntry: DeadlineEntry | undefined = undefined;
  nextEntry: DeadlineEntry | undefined = undefined;
  queued = false;
  /** Why it failed, once it has. */
  kind: AttemptFailureKind | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private abortReason: unknown = undefined;
  private settled = false;
  private resolve: ((value: O) => void) | undefined = undefined;
  private reject: ((error: unknown) => void) | undefined = undefined;
  private onCallerAbort: (() => void) | undefined = undefined;

  constructor(
    private readonly host: AttemptHost<I, O>,
    readonly run: Run<I>,
    readonly attempt: number,
  ) {}

  get idempotencyKey(): string {
    return this.run.idempotencyKey();
  }

  /** Invariant 2: created on first read. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** The breaker's action: runs the function under the deadline. */
  start(): Promise<O> {
    const host = this.host;
    host.attemptStarted(this);
    return new Promise<O>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      const started = this.attempt === 1 ? this.run.startedAt : host.clock.now();
      host.deadlines.add(this, started + host.timeoutMs);
      const callerSignal = this.run.signal;
      if (callerSignal !== undefined) {
        if (callerSignal.aborted) {
          this.stop(callerSignal.reason);
          return;
        }
        this.onCallerAbort = () => this.stop(callerSignal.reason);
        callerSignal.addEventListener('abort', this.onCallerAbort, { once: true });
      }
      let pending: Promise<O>;
      try {
        pending = host.fn(this.run.input, this);
      } catch (err) {
        this.failed(err);
        return;
      }
      if (typeof (pending as Partial<Promise<O>> | undefined)?.then !== 'function') {
        this.succeeded(pending as unknown as O);
        return;
      }
      pending.then(
        (value) => this.succeeded(value),
        (err: unknown) => this.failed(err),
      );
    });
  }

  /** Deadline reached (invariant 1). */
  onDeadline(): void {
    if (this.settled) return;
    const error = this.host.timedOut(this);
    this.end('timeout', error);
  }

  /** Stops the attempt with `reason`: the caller aborted, or the guard closed. */
  stop(reason: unknown): void {
    if (this.settled) return;
    this.end('aborted', reason);
  }

  private succeeded(value: O): void {
    if (this.settled) return;
    this.settled = true;
    this.release();
    this.resolve!(value);
  }

  private failed(err: unknown): void {
    if (this.settled) return;
    const error = err instanceof Error ? err : new Error(`call ${this.host.name} rejected with a non-Error: ${describeError(err)}`, { cause: err });
    this.settled = true;
    this.kind = this.host.classify(error);
    this.release();
    this.reject!(error);
  }

  private end(kind: AttemptFailureKind, reason: unknown): void {
    this.settled = true;
    this.kind = kind;
    this.release();
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.reject!(reason);
  }

  /** Invariant 4. */
  private release(): void {
    this.host.deadlines.remove(this);
    if (this.onCallerAbort !== undefined) {
      this.run.signal?.removeEventListener('abort', this.onCallerAbort);
      this.onCallerAbort = undefined;
    }
  }
}
