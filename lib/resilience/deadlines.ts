/**
 * `DeadlineQueue`: the per-attempt timeouts of one guarded call on a single clock timer.
 *
 * Every attempt of a guard has the same timeout, so deadlines arrive in the order attempts
 * start: a FIFO list is already sorted, and one timer armed for its head serves them all.
 * Adding and removing are O(1) with no timer call; the timer fires at most once per head
 * deadline. A timer per attempt (`setTimeout` + `clearTimeout`) costs ~0.7 µs here, about as
 * much as the whole circuit breaker, which is why this exists (docs/guarded-calls.md).
 *
 * Invariants:
 *  1. The list is in deadline order: an entry's deadline is never earlier than the one before it
 *     (a clock stepping back gives a later entry its predecessor's deadline, never an earlier one).
 *  2. At most one clock timer is pending; while the list is non-empty one is pending, due no
 *     later than the head's deadline.
 *  3. An entry is expired (`onDeadline`) once, when the clock has reached its deadline, and is
 *     off the list before its `onDeadline` runs; a removed entry is never expired.
 *  4. A timer that finds the list empty is not re-armed, so an idle queue holds no timer after
 *     at most one timeout; `close()` clears it at once and `drain` empties the list.
 *  5. An entry with an infinite deadline (a guard without timeout) is listed, so `drain` reaches
 *     it, but never armed for.
 */
import type { Clock, TimerHandle } from '../core/clock.js';

/** The longest timer Node keeps (2^31 - 1 ms); a longer wait is armed in steps of it. */
export const MAX_TIMER_MS = 2_147_483_647;

/** What the queue links; an attempt is one. */
export interface DeadlineEntry {
  deadline: number;
  prevEntry: DeadlineEntry | undefined;
  nextEntry: DeadlineEntry | undefined;
  queued: boolean;
  onDeadline(): void;
}

/**
 * @example
 * const queue = new DeadlineQueue(clock);
 * queue.add(attempt, clock.now() + 10_000);
 * // attempt settled before its deadline:
 * queue.remove(attempt);
 */
export class DeadlineQueue {
  private head: DeadlineEntry | undefined;
  private tail: DeadlineEntry | undefined;
  private timer: TimerHandle = undefined;
  private armed = false;
  private readonly fire = (): void => this.expire();

  constructor(private readonly clock: Clock) {}

  get empty(): boolean {
    return this.head === undefined;
  }

  /** Appends `entry` with `deadline` (invariant 1 clamps it to the tail's). */
  add(entry: DeadlineEntry, deadline: number): void {
    const tail = this.tail;
    entry.deadline = tail !== undefined && tail.deadline > deadline ? tail.deadline : deadline;
    entry.prevEntry = tail;
    entry.nextEntry = undefined;
    entry.queued = true;
    if (tail === undefined) this.head = entry;
    else tail.nextEntry = entry;
    this.tail = entry;
    if (!this.armed && entry.deadline !== Infinity) this.arm(entry.deadline - this.clock.now());
  }

  /** Unlinks `entry` if it is queued (invariant 3). The timer stays: see invariant 4. */
  remove(entry: DeadlineEntry): void {
    if (!entry.queued) return;
    entry.queued = false;
    const { prevEntry, nextEntry } = entry;
    if (prevEntry === undefined) this.head = nextEntry;
    else prevEntry.nextEntry = nextEntry;
    if (nextEntry === undefined) this.tail = prevEntry;
    else nextEntry.prevEntry = prevEntry;
    entry.prevEntry = entry.nextEntry = undefined;
  }

  /** Removes every entry and hands each to `fn` (closing a guard). */
  drain(fn: (entry: DeadlineEntry) => void): void {
    while (this.head !== undefined) {
      const entry = this.head;
      this.remove(entry);
      fn(entry);
    }
  }

  /** Clears the timer (invariant 4); entries stay until drained. */
  close(): void {
    if (this.armed) this.clock.clearTimeout(this.timer);
    this.armed = false;
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.armed = true;
    this.timer = this.clock.setTimeout(this.fire, ms > 0 ? Math.min(ms, MAX_TIMER_MS) : 0);
  }

  private expire(): void {
    this.armed = false;
    this.timer = undefined;
    const now = this.clock.now();
    while (this.head !== undefined && this.head.deadline <= now) {
      const entry = this.head;
      this.remove(entry);
      entry.onDeadline();
    }
    if (this.head !== undefined && this.head.deadline !== Infinity && !this.armed) this.arm(this.head.deadline - now);
  }
}
