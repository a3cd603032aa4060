/**
 * When a partition's cuts are taken and written: Flink's checkpoint policy (`everyEvents`,
 * `intervalMs` through the worker's tick, `minPauseMs`, `timeoutMs`) as one small explicit state
 * machine. What a cut holds is its source's business (the worker); this module only decides when
 * to collect one and runs its write.
 *
 *   phase   idle ──request──> writing ──ended──> idle (or writing again, if a request waits)
 *             └──request within minPauseMs──> paused ──pause over──> writing
 *   want    none | cut | forced: what the requests since the last collection ask for
 *   an input in hand (`beginInput`..`endInput`) holds every collection until it ends
 *
 * Invariants (tests cite them as "checkpointer invariant N"; worker invariant 3 rests on 1):
 *  1. A cut is collected only between inputs: a request made while an input is applied (across
 *     its awaits: loading, backoff, rebuild) is served right after `endInput`.
 *  2. At most one write is in flight; requests made meanwhile are merged into one cut collected
 *     when it ends.
 *  3. A cut that is not forced starts no sooner than `minPauseMs` after the previous write
 *     ended; a forced one does not wait for the pause (but does for 1 and 2).
 *  4. A write slower than `timeoutMs` fails with `TIMEOUT`. A failure is counted, reported to the
 *     cut (`failed`) and never rejects a request; the next trigger retries.
 *  5. `request()` resolves once the first write collected after it has ended, written or failed
 *     (at once when the checkpointer is closed, or periodic cuts are off and it is not forced).
 *  6. After `close()` no cut is collected and no timer is left.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { WardenError } from '../core/errors.js';
import type { WriteResult } from '../checkpoint/checkpoint-store.js';

/** A collected cut, ready to be written. */
export interface PendingCut {
  readonly seq: number;
  /** Writes the cut (and whatever must come first, such as acknowledged outputs). */
  write(): Promise<WriteResult>;
  /** The write landed. */
  committed(result: WriteResult, durationMs: number): void;
  /** The write failed or timed out (invariant 4). */
  failed(error: unknown): void;
}

/** Counters of the checkpoints of one incarnation. */
export interface CheckpointCounters {
  checkpoints: number;
  checkpointFailures: number;
  checkpointTimeouts: number;
  /** Clock time the last successful checkpoint was written; 0 before the first. */
  lastCheckpointAtMs: number;
  lastCheckpointDurationMs: number;
  lastCheckpointBytes: number;
}

/** The policy of one stage. */
export interface CheckpointPolicy {
  enabled: boolean;
  everyEvents: number;
  minPauseMs: number;
  timeoutMs: number;
}

type Phase = 'idle' | 'paused' | 'writing' | 'closed';
type Want = 'none' | 'cut' | 'forced';

export class Checkpointer {
  private phase: Phase = 'idle';
  private want: Want = 'none';
  private inInput = false;
  private waiters: Array<() => void> = [];
  private pauseTimer: TimerHandle = undefined;
  private endedAt: number;
  /** Inputs applied since the last collected cut (plus one per failed write, so a tick retries it). */
  private since = 0;
  readonly counters: CheckpointCounters = {
    checkpoints: 0, checkpointFailures: 0, checkpointTimeouts: 0, lastCheckpointAtMs: 0, lastCheckpointDurationMs: 0, lastCheckpointBytes: 0,
  };

  constructor(
    private readonly clock: Clock,
    private readonly policy: CheckpointPolicy,
    private readonly collect: () => PendingCut,
    private readonly describe: (seq: number) => string,
  ) {
    this.endedAt = clock.now();
  }

  /** A write is in flight. */
  get writing(): boolean {
    return this.phase === 'writing';
  }

  /** A write is in flight or an input is being applied: the actors' state may be in a cut not yet written. */
  get busy(): boolean {
    return this.phase === 'writing' || this.inInput;
  }

  /** Inputs applied since the last cut was collected. */
  get pending(): number {
    return this.since;
  }

  /** Invariant 5: asks for a cut; `force` skips the pause and works with periodic cuts off. */
  request(force = false): Promise<void> {
    if (this.phase === 'closed' || (!force && !this.policy.enabled)) return Promise.resolve();
    if (force) this.want = 'forced';
    else if (this.want === 'none') this.want = 'cut';
    const served = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.pump();
    return served;
  }

  /** Invariant 1: an input is being applied; no cut until `endInput`. */
  beginInput(): void {
    this.inInput = true;
  }

  /** The input in hand is done (applied, or abandoned); `counted` when it moved the position. */
  endInput(counted: boolean): void {
    this.inInput = false;
    if (counted && ++this.since >= this.policy.everyEvents) void this.request();
    else this.pump();
  }

  /** The worker moved its position without an input (an at-most-once commit ahead). */
  restartCount(): void {
    this.since = 0;
  }

  /** Invariant 6. */
  close(): void {
    this.phase = 'closed';
    this.clock.clearTimeout(this.pauseTimer);
    this.pauseTimer = undefined;
    this.settleWaiters();
  }

  private pump(): void {
    if (this.want === 'none' || this.inInput || this.phase === 'writing' || this.phase === 'closed') return;
    if (this.want === 'cut') {
      const left = this.endedAt + this.policy.minPauseMs - this.clock.now();
      if (left > 0) {
        // Invariant 3: wait out the pause (a forced request meanwhile goes at once).
        if (this.phase !== 'paused') {
          this.phase = 'paused';
          this.pauseTimer = this.clock.setTimeout(() => {
            this.pauseTimer = undefined;
            if (this.phase === 'paused') this.phase = 'idle';
            this.pump();
          }, left);
        }
        return;
      }
    }
    this.clock.clearTimeout(this.pauseTimer);
    this.pauseTimer = undefined;
    this.want = 'none';
    this.phase = 'writing';
    const waiters = this.waiters;
    this.waiters = [];
    this.since = 0;
    const cut = this.collect();
    const t0 = this.clock.now();
    withTimeout(this.clock, cut.write(), this.policy.timeoutMs, () => new WardenError('TIMEOUT', `${this.describe(cut.seq)} took longer than ${this.policy.timeoutMs} ms`))
      .then(
        (result) => {
          const now = this.clock.now();
          Object.assign(this.counters, { checkpoints: this.counters.checkpoints + 1, lastCheckpointAtMs: now, lastCheckpointDurationMs: now - t0, lastCheckpointBytes: result.bytes });
          cut.committed(result, now - t0);
        },
        (err: unknown) => {
          this.counters.checkpointFailures++;
          if (err instanceof WardenError && err.code === 'TIMEOUT') this.counters.checkpointTimeouts++;
          this.since += 1; // invariant 4: a later trigger retries
          cut.failed(err);
        },
      )
      .finally(() => {
        if (this.phase === 'writing') this.phase = 'idle';
        this.endedAt = this.clock.now();
        for (const resolve of waiters) resolve();
        this.pump();
      });
  }

  private settleWaiters(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}

/** `promise`, or a rejection with `timeoutError()` after `ms` on `clock` (the promise itself runs on). */
function withTimeout<T>(clock: Clock, promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const handle = clock.setTimeout(() => reject(timeoutError()), ms);
    promise.then(
      (v) => {
        clock.clearTimeout(handle);
        resolve(v);
      },
      (err: unknown) => {
        clock.clearTimeout(handle);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
