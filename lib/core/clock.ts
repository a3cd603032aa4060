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
 * The real clock.
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
    return setTimeout(fn, ms);
  }
  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === 'object' && handle !== null && 'immediate' in handle) {
      clearImmediate((handle as { immediate: ReturnType<typeof setImmediate> }).immediate);
    } else {
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    }
  }
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

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: SimTimer = { id: this.nextId++, at: this.current + Math.max(0, ms), fn };
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

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
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
    const target = this.current + ms;
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

/** Resolves after queued promise callbacks (several rounds of them) have run. */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** `sleep(clock, ms, signal?)` waits `ms` on the given clock; rejects with the signal's reason if aborted. */
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
