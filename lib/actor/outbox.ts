/**
 * The outbox of a partition worker: outputs published to the log and not yet acknowledged.
 *
 * Invariants:
 *  1. An entry stays in the outbox from its publish until the log acknowledges it; a checkpoint
 *     copies the entries, so a successor republishes exactly what may not have landed.
 *  2. A failed publish is retried with the same message ID (the log's dedupe drops a copy that
 *     did land), with exponential backoff on the clock, while the owner is live.
 *  3. After `close()`, nothing is published or retried and no timer is left.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { OutboxEntry } from '../checkpoint/checkpoint-store.js';
import type { Transport } from '../transport/transport.js';

const enc = new TextEncoder();

/**
 * @example
 * const outbox = new Outbox({ transport, clock, logger, maxSize: 4096 });
 * outbox.publish({ subject: 'clicks.pages.0', msgId: 'sessions:u1:7:0', body });
 * if (outbox.full) await outbox.drained();
 */
export class Outbox {
  private readonly pending = new Map<string, OutboxEntry>();
  private readonly timers = new Set<TimerHandle>();
  private waiter: (() => void) | undefined;
  private closed = false;

  constructor(private readonly o: { transport: Transport; clock: Clock; logger: Logger; maxSize: number }) {}

  get size(): number {
    return this.pending.size;
  }

  /** At or over `maxSize`: the owner should wait for `drained()` before producing more. */
  get full(): boolean {
    return this.pending.size >= this.o.maxSize;
  }

  /** A copy of the unacknowledged entries, in publish order (invariant 1). */
  entries(): OutboxEntry[] {
    return [...this.pending.values()];
  }

  publish(entry: OutboxEntry, attempt = 0): void {
    if (this.closed) return;
    this.pending.set(entry.msgId, entry);
    this.o.transport.publish(entry.subject, enc.encode(entry.body), { msgId: entry.msgId }).then(
      () => {
        this.pending.delete(entry.msgId);
        if (this.waiter && this.pending.size < this.o.maxSize / 2) this.wake();
      },
      (err: unknown) => {
        if (this.closed) return;
        const delay = Math.min(5000, 10 * 2 ** attempt); // invariant 2
        this.o.logger.warn({ subject: entry.subject, msgId: entry.msgId, attempt, delay, err }, 'publish failed; retrying with the same message ID');
        const timer = this.o.clock.setTimeout(() => {
          this.timers.delete(timer);
          this.publish(entry, attempt + 1);
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
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
