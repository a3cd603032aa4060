/**
 * Time enters warden only through a `Clock`. `SystemClock` reads the wall clock;
 * `SimulatedClock` is driven by tests and simulations, so every time-based behaviour
 * (checkpoint intervals, ack waits, dedupe windows, backoff) can be tested without sleeping.
 *
 * The interface is a superset of xstate's clock, so a warden clock can be handed to
 * `createActor(machine, { clock })` directly.
 */

/** An opaque handle returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/** The time source every part of warden uses. */
export interface Clock {
  /** Milliseconds since the epoch (or since the simulation started). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The longest wait one Node timer can hold (2^31-1 ms, about 24.8 days). Node clamps a longer
 * `setTimeout` to 1 ms with a `TimeoutOverflowWarning`, so a far deadline would fire at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A wait longer than `MAX_TIMER_MS`: a chain of timers of at most that long, one armed at a time. */
class LongTimer {
  current: ReturnType<typeof setTimeout> | undefined;
  cleared = false;
}

/**
 * The real clock.
 *
 * Invariants:
 *  1. A callback runs at most once, and never after `clearTimeout` of its handle.
 *  2. Any delay is accepted: a wait longer than `MAX_TIMER_MS` is armed in pieces of at most that
 *     long, re-armed until its deadline, under one handle; `Infinity` never fires. No Node timer is
 *     ever given more than `MAX_TIMER_MS`, so there is no `TimeoutOverflowWarning` and no 1 ms spin.
 *
 * @example
 * const node = await startNode({ pipeline, clock: new SystemClock() });
 */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    // Timers keep the process alive, as a running node should; everything warden starts,
    // `stop()` clears, so a stopped node lets the process exit. A 0 ms timer runs on
    // setImmediate: Node clamps setTimeout to at least 1 ms, which would cap immediate
    // restarts at about a thousand a second.
    if (ms <= 0) return { immediate: setImmediate(fn) };
    if (ms > MAX_TIMER_MS) return armLong(fn, performance.now() + ms);
    return setTimeout(fn, ms);
  }
  clearTimeout(handle: TimerHandle): void {
    if (handle instanceof LongTimer) {
      handle.cleared = true;
      clearTimeout(handle.current);
      handle.current = undefined;
    } else if (typeof handle === 'object' && handle !== null && 'immediate' in handle) {
      clearImmediate((handle as { immediate: ReturnType<typeof setImmediate> }).immediate);
    } else {
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    }
  }
}

/** Invariant 2: waits until `deadline` (performance.now() time) in pieces of at most `MAX_TIMER_MS`. */
function armLong(fn: () => void, deadline: number): LongTimer {
  const timer = new LongTimer();
  const step = (): void => {
    timer.current = undefined;
    if (timer.cleared) return;
    const left = deadline - performance.now();
    if (left <= 0) {
      timer.cleared = true;
      fn();
      return;
    }
    timer.current = setTimeout(step, Math.min(Math.ceil(left), MAX_TIMER_MS));
  };
  timer.current = setTimeout(step, MAX_TIMER_MS);
  return timer;
}

interface SimTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock that only moves when told to. Timers fire in deadline order (ties in creation order)
 * during `advance`.
 *
 * @example
 * const clock = new SimulatedClock(0);
 * clock.setTimeout(() => fired = true, 100);
 * clock.advance(100); // fired === true
 */
export class SimulatedClock implements Clock {
  private current: number;
  private nextId = 1;
  private timers: SimTimer[] = [];

  /** Throws a `RangeError` for a `startMs` that is not a finite number. */
  constructor(startMs = 0) {
    if (typeof startMs !== 'number' || !Number.isFinite(startMs)) throw new RangeError(`SimulatedClock: startMs must be a finite number, got ${String(startMs)}`);
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /**
   * Any delay is accepted, as by `SystemClock`: one longer than `MAX_TIMER_MS` fires once, at its
   * deadline; `Infinity` never fires; `NaN` (Node: 1 ms) counts as 0.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: SimTimer = { id: this.nextId++, at: this.current + (ms > 0 ? ms : 0), fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Number of timers still pending. */
  get pending(): number {
    return this.timers.length;
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way, in order. Throws a `RangeError`
   * for an `ms` that is not a finite number >= 0 (time never goes back, and never reaches `Infinity`).
   */
  advance(ms: number): void {
    const target = this.current + checkStep('advance', ms);
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = target;
  }

  /**
   * Like `advance`, but lets promise callbacks run after each timer fires, so async code
   * that awaits between timers (retry loops, restarts) makes progress as it would in real time.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.current + checkStep('advanceAsync', ms);
    await flushMicrotasks();
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.at);
      next.fn();
      await flushMicrotasks();
    }
    this.current = target;
    await flushMicrotasks();
  }

  private nextDue(limit: number): SimTimer | undefined {
    let best: SimTimer | undefined;
    for (const t of this.timers) {
      if (t.at <= limit && (!best || t.at < best.at || (t.at === best.at && t.id < best.id))) best = t;
    }
    return best;
  }
}

/** A step of a simulated clock: a finite number of ms >= 0. */
function checkStep(op: string, ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new RangeError(`SimulatedClock.${op}: ms must be a finite number >= 0, got ${String(ms)}`);
  return ms;
}

/** Resolves after queued promise callbacks (several rounds of them) have run. */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** `sleep(clock, ms, signal?)` waits `ms` on the given clock; rejects with the signal's reason if aborted. */
/**
 * Resolves on the event loop's next turn, after the I/O callbacks already due (`setImmediate`):
 * how a long run of work lets replies in. Not a clock wait: a simulated clock does not delay it.
 *
 * @example await nextTurn();
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason as Error);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
