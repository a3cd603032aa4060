/**
 * Restart bookkeeping for a partition's keyed actors: restart intensity over a sliding window
 * (OTP) and per-key exponential backoff (Akka).
 *
 * Invariants:
 *  1. More than `intensity` restarts within `periodMs` (clock time) is an escalation: `record`
 *     throws, and the partition worker fails to its supervisor.
 *  2. The n-th consecutive restart of a key waits the stage's backoff for n - 1 failures
 *     (`minBackoffMs * 2^(n-1)`, jittered by `randomFactor`, capped at `maxBackoffMs`); a key that
 *     ran `resetBackoffAfterMs` since its last restart starts over at n = 1.
 */
import { exponentialBackoff, type Backoff } from '../core/backoff.js';
import type { Clock } from '../core/clock.js';
import { WardenError } from '../core/errors.js';
import type { ResolvedActorSupervision } from './stage.js';

/** Tracks restarts of one partition's actors. */
export class KeyRestarts {
  private readonly window: number[] = [];
  private readonly perKey = new Map<string, { consecutive: number; at: number }>();
  private readonly backoff: Backoff;
  /** Restarts per key since the worker started (for `tree()`). */
  readonly counts = new Map<string, number>();

  constructor(
    private readonly policy: ResolvedActorSupervision,
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {
    this.backoff = exponentialBackoff({ minMs: policy.minBackoffMs, maxMs: policy.maxBackoffMs, randomFactor: policy.randomFactor }, 'supervision');
  }

  /** Records a restart of `key`; returns the backoff delay in ms, or throws an escalation (invariant 1). */
  record(key: string, where: string): number {
    const now = this.clock.now();
    this.window.push(now);
    while (this.window.length > 0 && this.window[0]! <= now - this.policy.periodMs) this.window.shift();
    if (this.window.length > this.policy.intensity) {
      throw new WardenError(
        'ESCALATED',
        `${where}: ${this.window.length} actor restarts within ${this.policy.periodMs} ms exceed intensity ${this.policy.intensity}`,
        { details: { restarts: this.window.length, periodMs: this.policy.periodMs, intensity: this.policy.intensity } },
      );
    }
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    const prev = this.perKey.get(key);
    const consecutive = prev && now - prev.at < this.policy.resetBackoffAfterMs ? prev.consecutive + 1 : 1;
    this.perKey.set(key, { consecutive, at: now });
    return this.backoff.delay(consecutive - 1, this.random); // invariant 2
  }
}
