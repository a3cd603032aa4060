/**
 * The outbox of a partition worker: outputs published to the log and not yet acknowledged.
 *
 * Invariants:
 *  1. An entry stays in the outbox from its publish until the log acknowledges it; a checkpoint
 *     copies the entries, so a successor republishes exactly what may not have landed.
 *  2. A failed publish is retried with the same message ID (the log's dedupe drops a copy that
 *     did land) while the owner is live, in publish order: the first failure puts the outbox on
 *     hold (`state`) and nothing more is sent; after `retry.delay(rounds)` on the clock (one
 *     timer) the oldest pending entry is sent alone, as a probe (or, still in flight, awaited);
 *     once the log takes it, every pending entry not in flight is sent again, in publish order,
 *     and the hold ends; if it fails, the next round waits longer. So a stream without a leader
 *     (it answers "no responders" at once) costs one publish per round, not one per entry;
 *     entries land in the order they were published; and they go again at most one backoff
 *     step after the stream is back. (A publish lost in flight while a later one lands, a
 *     leader dying between the two, can still land after it: the transport sends it again only
 *     after its PubAck timeout.)
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
  /** Delays between rounds of retries while publishes fail (invariant 2). */
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

/** One entry in the outbox. */
interface Slot {
  entry: OutboxEntry;
  /** Publish number: publish order. */
  n: number;
  dedupe: boolean;
  /** A publish of it is awaiting the log's answer. */
  inFlight: boolean;
}

/**
 * @example
 * const outbox = new Outbox({ transport, clock, logger, maxSize: 4096, retry: exponentialBackoff({ minMs: 10, maxMs: 1000 }) });
 * outbox.publish({ subject: 'clicks.pages.0', msgId: 'sessions:u1:7:0', body });
 * if (outbox.full) await outbox.drained();
 */
export class Outbox {
  /** Unacknowledged entries by message ID, in publish order. */
  private readonly pending = new Map<string, Slot>();
  /**
   * Invariant 2: `sending` publishes at once; `holding` waits for the retry timer after a failure;
   * `probing` waits for the answer to the oldest entry, sent alone.
   */
  private state: 'sending' | 'holding' | 'probing' = 'sending';
  /** Rounds of retries that failed since the last success (the backoff's attempt number). */
  private rounds = 0;
  private probe: Slot | undefined;
  private retryTimer: TimerHandle = undefined;
  private waiter: (() => void) | undefined;
  private readonly settling: Array<{ upTo: number; resolve: (acked: boolean) => void }> = [];
  private published = 0;
  /** Entries the log acknowledged (a refused one is not counted). */
  acknowledged = 0;
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
    const slot = this.pending.get(entry.msgId) ?? { entry, n: ++this.published, dedupe, inFlight: false };
    this.pending.set(entry.msgId, slot);
    if (this.state === 'sending' && !slot.inFlight) this.send(slot); // invariant 2: held entries wait their turn
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

  private send(slot: Slot): void {
    const { entry } = slot;
    if (this.o.gate && !this.o.gate()) {
      this.o.onGateClosed?.(); // invariant 7
      return;
    }
    slot.inFlight = true;
    this.o.transport.publish(entry.subject, enc.encode(entry.body), slot.dedupe ? { msgId: entry.msgId } : {}).then(
      () => {
        slot.inFlight = false;
        if (this.closed) return;
        if (this.pending.get(entry.msgId) === slot) {
          this.acknowledged++;
          this.remove(slot);
        }
        if (slot === this.probe) this.resume();
      },
      (err: unknown) => {
        slot.inFlight = false;
        if (this.closed) return;
        if (isPermanentRefusal(err)) {
          // Invariant 6: no retry can change it (and the log did answer: a probe refused so ends the hold).
          if (this.pending.get(entry.msgId) === slot) {
            this.remove(slot);
            this.o.logger.error({ subject: entry.subject, msgId: entry.msgId, err }, 'publish refused for good; not retried');
            this.o.onRefused?.(entry, err);
          }
          if (slot === this.probe) this.resume();
          return;
        }
        if (this.state === 'sending' || slot === this.probe) this.hold(slot, err); // invariant 2
      },
    );
  }

  /** Invariant 2: stops sending; the retry timer sends the oldest entry alone. */
  private hold(failed: Slot, err: unknown): void {
    this.state = 'holding';
    this.probe = undefined;
    const delay = this.o.retry.delay(this.rounds++, this.o.random);
    this.o.logger.warn({ subject: failed.entry.subject, msgId: failed.entry.msgId, pending: this.pending.size, round: this.rounds, delay, err },
      'publish failed; holding the outbox, then retrying in publish order with the same message IDs');
    this.retryTimer = this.o.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed || this.state !== 'holding') return;
      const oldest = this.pending.values().next();
      if (oldest.done) {
        this.resume();
        return;
      }
      this.state = 'probing';
      this.probe = oldest.value;
      // An oldest entry still in flight is its own probe: its answer ends or renews the hold.
      if (!oldest.value.inFlight) this.send(oldest.value);
    }, delay);
  }

  /** Invariant 2: the log took the probe: every entry not in flight is sent again, in publish order. */
  private resume(): void {
    this.state = 'sending';
    this.probe = undefined;
    this.rounds = 0;
    for (const slot of [...this.pending.values()]) {
      if (this.state !== 'sending' || this.closed) return; // failed again (synchronously) or closed
      if (!slot.inFlight) this.send(slot);
    }
  }

  private remove(slot: Slot): void {
    this.pending.delete(slot.entry.msgId);
    if (this.waiter && this.pending.size < this.o.maxSize / 2) this.wake();
    if (this.settling.length > 0) this.wakeSettled();
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
    if (this.retryTimer !== undefined) this.o.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
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
