/**
 * The pending timers of one partition, across its actors (in memory or passivated), and the
 * one clock timeout that wakes the worker when the earliest is due.
 *
 * Invariants:
 *  1. `sync(key, timers)` makes the wheel hold exactly `timers` for `key`; a timer that left
 *     (fired, cancelled) is never reported due.
 *  2. A due timer is reported to `onDue` once per arming: again only after `load()` (a
 *     restored worker) or a `sync` that drops and re-adds it. The timer stays listed until
 *     its actor fires or cancels it, so a checkpoint always carries it (the worker appends
 *     the firing to the log; if that append is lost with a crash, the successor sends it again).
 *  3. At most one clock timeout is armed, no later than the earliest unreported deadline.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { TimerIndexEntry } from '../checkpoint/checkpoint-store.js';
import { compareTimers } from '../actor/timers.js';

interface Slot {
  dueMs: number;
  reported: boolean;
}

/**
 * @example
 * const wheel = new TimerWheel(clock, (key, id) => appendFiring(key, id));
 * wheel.sync('alice', host.timers());
 */
export class TimerWheel {
  private readonly byKey = new Map<string, Map<string, Slot>>();
  private handle: TimerHandle = undefined;
  private armedFor = Infinity;
  private closed = false;
  private count = 0;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: (key: string, id: string) => void,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Invariant 1: `key` now has exactly these pending timers. */
  sync(key: string, timers: ReadonlyArray<{ id: string; dueMs: number }>): void {
    const had = this.byKey.get(key);
    if (timers.length === 0) {
      if (had) {
        this.count -= had.size;
        this.byKey.delete(key);
      }
      return;
    }
    const next = new Map<string, Slot>();
    let earliest = Infinity;
    for (const t of timers) {
      const reported = had?.get(t.id)?.reported ?? false;
      next.set(t.id, { dueMs: t.dueMs, reported });
      if (!reported && t.dueMs < earliest) earliest = t.dueMs;
    }
    this.count += next.size - (had?.size ?? 0);
    this.byKey.set(key, next);
    this.schedule(earliest);
  }

  /** Loads the list a checkpoint carried (a restored worker); every timer is unreported. */
  load(entries: readonly TimerIndexEntry[]): void {
    for (const e of entries) {
      let m = this.byKey.get(e.key);
      if (!m) this.byKey.set(e.key, (m = new Map<string, Slot>()));
      if (!m.has(e.id)) this.count++;
      m.set(e.id, { dueMs: e.dueMs, reported: false });
    }
    let earliest = Infinity; // a loop: spreading 200k deadlines into Math.min overflows the stack
    for (const e of entries) if (e.dueMs < earliest) earliest = e.dueMs;
    this.schedule(earliest);
  }

  /** Every pending timer, for a checkpoint. */
  entries(): TimerIndexEntry[] {
    const out: TimerIndexEntry[] = [];
    for (const [key, m] of this.byKey) for (const [id, s] of m) out.push({ key, id, dueMs: s.dueMs });
    return out;
  }

  /** Does `key` have a pending timer? */
  has(key: string): boolean {
    return this.byKey.has(key);
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.handle);
    this.handle = undefined;
  }

  /** Arms the clock for `earliest` unless an earlier wake-up is armed (a wake-up with nothing due just re-arms). */
  private schedule(earliest: number): void {
    if (this.closed || earliest === Infinity || (this.handle !== undefined && earliest >= this.armedFor)) return;
    this.clock.clearTimeout(this.handle);
    this.armedFor = earliest;
    this.handle = this.clock.setTimeout(() => this.fire(), Math.max(0, earliest - this.clock.now()));
  }

  private fire(): void {
    this.handle = undefined;
    this.armedFor = Infinity;
    if (this.closed) return;
    const now = this.clock.now();
    const due: Array<[string, string, number]> = [];
    for (const [key, m] of this.byKey) {
      for (const [id, s] of m) {
        if (!s.reported && s.dueMs <= now) {
          s.reported = true;
          due.push([key, id, s.dueMs]);
        }
      }
    }
    due.sort((a, b) => compareTimers({ id: a[1], dueMs: a[2] }, { id: b[1], dueMs: b[2] }) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); // as xstate and checkDeterminism order them
    for (const [key, id] of due) this.onDue(key, id);
    let earliest = Infinity;
    for (const m of this.byKey.values()) for (const s of m.values()) if (!s.reported && s.dueMs < earliest) earliest = s.dueMs;
    this.schedule(earliest);
  }
}
