/**
 * The outbox of a partition worker: outputs published to the log and not yet acknowledged.
 *
 * Invariants:
 *  1. An entry stays in the outbox from its publish until the log acknowledges it; a checkpoint
 *     copies the entries, so a successor republishes exactly what may not have landed.
 *  2. A failed publish is retried with the same message ID (the log's dedupe drops a copy that
 *     did land), with exponential backoff on the clock, while the owner is live.
 *  3. After `close()`, nothing is published or retried and no timer is left.
 *  4. `settled()` resolves once every entry published before the call is acknowledged: an
 *     at-least-once worker writes a checkpoint only after its outputs have landed, so it never
 *     needs to persist an outbox.
 *  5. An entry published with `dedupe: false` is sent without a message ID (cheaper for the
 *     stream; a retry or a replay may store it twice, which at-least-once allows) and is not
 *     part of `entries()`: a successor republishing it would only add a copy.
 *  6. A publish the log refuses for good (a non-retryable error: too large, an invalid ID, no
 *     stream for the subject) is never retried: the entry leaves the outbox and `onRefused` is
 *     told, once, so the owner turns it into a dead letter or a failure with the reason.
 *  7. Nothing is sent while `gate()` says no (the owner's lease ran out): the entry stays pending
 *     and `onGateClosed` is told, so the owner stops.
 */
import type { Backoff } from '../core/backoff.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { WardenError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { OutboxEntry } from '../checkpoint/checkpoint-store.js';
import type { Transport } from '../transport/transport.js';

/** Options of an `Outbox`. */
export interface OutboxOptions {
  transport: Transport;
  clock: Clock;
  logger: Logger;
  maxSize: number;
  /** Delays between retries of a publish that failed for a while (invariant 2). */
  retry: Backoff;
  random?: () => number;
  /** Invariant 6: a publish refused for good. */
  onRefused?: (entry: OutboxEntry, error: WardenError) => void;
  /** Invariant 7: may the owner write now? @default always */
  gate?: () => boolean;
  onGateClosed?: () => void;
}

/** A refusal no retry can change (invariant 6). */
export function isPermanentRefusal(err: unknown): err is WardenError {
  return err instanceof WardenError && err.nonRetryable && err.code !== 'TRANSPORT_CLOSED' && err.code !== 'STOPPED';
}

const enc = new TextEncoder();

/**
 * @example
 * const outbox = new Outbox({ transport, clock, logger, maxSize: 4096, retry: exponentialBackoff({ minMs: 10, maxMs: 5000 }) });
 * outbox.publish({ subject: 'clicks.pages.0', msgId: 'sessions:u1:7:0', body });
 * if (outbox.full) await outbox.drained();
 */
export class Outbox {
  /** Unacknowledged entries by message ID, in publish order, each with its publish number. */
  private readonly pending = new Map<string, { entry: OutboxEntry; n: number; dedupe: boolean }>();
  private readonly timers = new Set<TimerHandle>();
  private waiter: (() => void) | undefined;
  private readonly settling: Array<{ upTo: number; resolve: (acked: boolean) => void }> = [];
  private published = 0;
  private closed = false;

  constructor(private readonly o: OutboxOptions) {}

  get size(): number {
    return this.pending.size;
  }

  /** At or over `maxSize`: the owner should wait for `drained()` before producing more. */
  get full(): boolean {
    return this.pending.size >= this.o.maxSize;
  }

  /** A copy of the unacknowledged entries that carry an ID, in publish order (invariants 1, 5). */
  entries(): OutboxEntry[] {
    const out: OutboxEntry[] = [];
    // Invariant 5: entries sent without an ID are not carried: a successor could only send copies.
    for (const p of this.pending.values()) if (p.dedupe) out.push(p.entry);
    return out;
  }

  publish(entry: OutboxEntry, options: { dedupe?: boolean } = {}): void {
    if (this.closed) return;
    const dedupe = options.dedupe ?? true;
    // A re-publish of a pending ID (a restored outbox entry that is also regenerated) keeps its place.
    const slot = this.pending.get(entry.msgId) ?? { entry, n: ++this.published, dedupe };
    this.pending.set(entry.msgId, slot);
    this.send(slot, 0);
  }

  /** Invariant 4: resolves true when everything published so far is acknowledged, false if the outbox closed first. */
  settled(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.pending.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => this.settling.push({ upTo: this.published, resolve }));
  }

  /** Wakes a `drained()` waiter now (the owner is stopping and must not wait for the log). */
  interruptDrain(): void {
    this.wake();
  }

  private send(slot: { entry: OutboxEntry; n: number; dedupe: boolean }, attempt: number): void {
    const { entry } = slot;
    if (this.o.gate && !this.o.gate()) {
      this.o.onGateClosed?.(); // invariant 7
      return;
    }
    this.o.transport.publish(entry.subject, enc.encode(entry.body), slot.dedupe ? { msgId: entry.msgId } : {}).then(
      () => {
        if (this.pending.get(entry.msgId) !== slot) return;
        this.pending.delete(entry.msgId);
        if (this.waiter && this.pending.size < this.o.maxSize / 2) this.wake();
        if (this.settling.length > 0) this.wakeSettled();
      },
      (err: unknown) => {
        if (this.closed) return;
        if (isPermanentRefusal(err)) {
          // Invariant 6: no retry can change it.
          if (this.pending.get(entry.msgId) !== slot) return;
          this.pending.delete(entry.msgId);
          if (this.waiter && this.pending.size < this.o.maxSize / 2) this.wake();
          if (this.settling.length > 0) this.wakeSettled();
          this.o.logger.error({ subject: entry.subject, msgId: entry.msgId, err }, 'publish refused for good; not retried');
          this.o.onRefused?.(entry, err);
          return;
        }
        const delay = this.o.retry.delay(attempt, this.o.random); // invariant 2
        this.o.logger.warn({ subject: entry.subject, msgId: entry.msgId, attempt, delay, err }, 'publish failed; retrying with the same message ID');
        const timer = this.o.clock.setTimeout(() => {
          this.timers.delete(timer);
          if (!this.closed && this.pending.get(entry.msgId) === slot) this.send(slot, attempt + 1);
        }, delay);
        this.timers.add(timer);
      },
    );
  }

  /** Resolves when the outbox is down to half its size, or it is closed. */
  drained(): Promise<void> {
    if (this.closed || !this.full) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Invariant 3. Entries stay readable (for a final checkpoint), nothing more is sent. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) this.o.clock.clearTimeout(t);
    this.timers.clear();
    this.wake();
    for (const s of this.settling.splice(0)) s.resolve(false);
  }

  private wakeSettled(): void {
    const oldest = this.pending.values().next().value?.n ?? Infinity;
    for (let i = this.settling.length - 1; i >= 0; i--) {
      const s = this.settling[i]!;
      if (s.upTo < oldest) {
        this.settling.splice(i, 1);
        s.resolve(true);
      }
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
