/**
 * The acknowledged, durable consumer of `InMemoryTransport` (a JetStream pull consumer with
 * explicit ack). Keeps invariant 4 of the Transport port (`transport.ts`): a message is
 * delivered until it is acked or terminated; one not acked within `ackWaitMs`, or nak'ed, is
 * delivered again, at most `maxDeliver` times in all, after which it is left alone and reported
 * through a `max-deliveries` advisory. All times are read from the transport's clock.
 */
import { ConfigError } from '../core/errors.js';
import type { Consumer, ConsumerOptions, Delivery, StoredMessage } from './transport.js';
import { matcherFor, type Matcher, type MemoryStream, type Waiter } from './in-memory-stream.js';

/**
 * An event about a consumer, as JetStream publishes it on `$JS.EVENT.ADVISORY.CONSUMER.*`.
 * `max-deliveries`: the message was delivered `maxDeliver` times without an ack and will not be
 * delivered again (`MAX_DELIVERIES`). `terminated`: a delivery was `term()`ed (`MSG_TERMINATED`).
 *
 * @example
 * const transport = new InMemoryTransport({
 *   onAdvisory: (a) => { if (a.kind === 'max-deliveries') deadLetter(a.stream, a.seq); },
 * });
 */
export interface ConsumerAdvisory {
  kind: 'max-deliveries' | 'terminated';
  stream: string;
  /** Durable name of the consumer. */
  consumer: string;
  /** Stream sequence of the message. */
  seq: number;
  /** Deliveries made of the message. */
  deliveries: number;
  /** The reason given to `term(reason)`. */
  reason?: string;
}

/** A delivered message not yet acked or terminated. */
interface PendingEntry {
  seq: number;
  deliveries: number;
  /** Clock time at which it is due for redelivery (ack wait expiry or nak delay). */
  dueAt: number;
}

/**
 * @internal The durable state of one consumer (cursor and ack-pending table), kept by its
 * stream and shared by every `InMemoryConsumer` bound to the same name.
 *
 * @example
 * const state = new ConsumerState(stream, { name: 'sessions' }, emitAdvisory);
 * const deliveries = state.collect(10);
 */
export class ConsumerState {
  readonly name: string;
  /** Next stream sequence never delivered. */
  cursor: number;
  /** Parked pulls of every handle, woken when a nak makes a redelivery due earlier. */
  readonly waiters = new Set<Waiter>();
  matches: Matcher = () => true;
  private ackWaitMs = 30_000;
  private maxDeliver = -1;
  private readonly pending = new Map<number, PendingEntry>();

  constructor(
    readonly stream: MemoryStream,
    options: ConsumerOptions,
    private readonly emit: (advisory: ConsumerAdvisory) => void,
  ) {
    this.name = options.name;
    this.cursor = options.startSeq ?? 1;
    this.configure(options);
  }

  /** Applies (re)bind options. `startSeq` only counts at creation, as in JetStream. */
  configure(options: ConsumerOptions): void {
    this.matches = matcherFor(options.filterSubject);
    this.ackWaitMs = options.ackWaitMs ?? 30_000;
    this.maxDeliver = options.maxDeliver ?? -1;
  }

  /** Messages delivered and not yet acked or terminated. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Clock time of the earliest redelivery, `Infinity` if none is pending. */
  earliestDue(): number {
    let due = Infinity;
    for (const entry of this.pending.values()) due = Math.min(due, entry.dueAt);
    return due;
  }

  /** Up to `max` deliveries: due redeliveries in sequence order first, then new messages. */
  collect(max: number): Delivery[] {
    const stream = this.stream;
    stream.expire();
    const now = stream.clock.now();
    const out: Delivery[] = [];
    const advisories: ConsumerAdvisory[] = [];
    // `pending` is in first-delivery order, which is sequence order (the cursor only moves on).
    const due = [...this.pending.values()].filter((e) => e.dueAt <= now);
    for (const entry of due) {
      if (!stream.has(entry.seq)) {
        // Removed by a limit while pending: nothing left to deliver (JetStream skips it too).
        this.pending.delete(entry.seq);
      } else if (this.maxDeliver > 0 && entry.deliveries >= this.maxDeliver) {
        this.pending.delete(entry.seq);
        advisories.push(this.advisory('max-deliveries', entry));
      } else if (out.length < max) {
        const message = stream.get(entry.seq);
        if (!message) continue;
        entry.deliveries++;
        entry.dueAt = now + this.ackWaitMs;
        out.push(this.delivery(entry, message));
      }
    }
    if (out.length < max) {
      const { messages, next } = stream.read(this.cursor, max - out.length, this.matches);
      this.cursor = next;
      for (const message of messages) {
        const entry: PendingEntry = { seq: message.seq, deliveries: 1, dueAt: now + this.ackWaitMs };
        this.pending.set(entry.seq, entry);
        out.push(this.delivery(entry, message));
      }
    }
    for (const advisory of advisories) this.emit(advisory);
    return out;
  }

  private delivery(entry: PendingEntry, message: StoredMessage): Delivery {
    const { seq, deliveries } = entry;
    return {
      message,
      deliveryCount: deliveries,
      ack: () => {
        this.pending.delete(seq);
      },
      nak: (delayMs = 0) => {
        const current = this.pending.get(seq);
        if (!current) return;
        current.dueAt = this.stream.clock.now() + (Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0);
        for (const waiter of this.waiters) waiter.wake();
      },
      term: (reason?: string) => {
        const current = this.pending.get(seq);
        if (!current) return;
        this.pending.delete(seq);
        this.emit(this.advisory('terminated', current, reason));
      },
    };
  }

  private advisory(kind: ConsumerAdvisory['kind'], entry: PendingEntry, reason?: string): ConsumerAdvisory {
    const advisory: ConsumerAdvisory = {
      kind, stream: this.stream.name, consumer: this.name, seq: entry.seq, deliveries: entry.deliveries,
    };
    if (reason !== undefined) advisory.reason = reason;
    return advisory;
  }
}

/**
 * One binding to a durable consumer, returned by `InMemoryTransport.consumer`. Closing it keeps
 * the durable state: binding again with the same stream and name continues where it stopped,
 * pending redeliveries included. Acks of deliveries still count after the handle is closed.
 *
 * @example
 * const consumer = await transport.consumer('orders', { name: 'billing', ackWaitMs: 5_000 });
 * for (const d of await consumer.pull(10, 1_000)) { handle(d.message); d.ack(); }
 */
export class InMemoryConsumer implements Consumer {
  private closedFlag = false;
  private readonly waiters = new Set<Waiter>();

  constructor(
    private readonly state: ConsumerState,
    private readonly host: { assertOpen(): void; release(handle: InMemoryConsumer): void },
  ) {}

  get name(): string {
    return this.state.name;
  }

  /** Name of the stream the consumer reads. */
  get streamName(): string {
    return this.state.stream.name;
  }

  /** True once closed (by `close`, by deleting its stream, or by closing the transport). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Up to `max` deliveries. When none is ready, waits until a matching publish, a redelivery
   * falls due, `waitMs` passes on the clock (then `[]`; no `waitMs` = no limit), or the consumer
   * is closed (then `[]`). Rejects with `TRANSPORT_CLOSED` once the transport is closed.
   */
  async pull(max: number, waitMs?: number): Promise<Delivery[]> {
    this.host.assertOpen();
    if (!Number.isInteger(max) || max < 1) throw new ConfigError('max', `must be an integer >= 1 (got ${max})`);
    const clock = this.state.stream.clock;
    const deadline = waitMs === undefined ? Infinity : clock.now() + Math.max(0, waitMs);
    for (;;) {
      if (this.closedFlag) return [];
      const out = this.state.collect(max);
      if (out.length > 0) return out;
      const now = clock.now();
      if (deadline <= now) return [];
      const wakeAt = Math.min(deadline, this.state.earliestDue());
      await this.state.stream.wait(this.state.matches, Math.max(0, wakeAt - now), [this.state.waiters, this.waiters]);
    }
  }

  /** Messages delivered and not yet acked or terminated (shared by every binding of the durable). */
  pending(): number {
    return this.state.pendingCount;
  }

  close(): Promise<void> {
    this.shutdown();
    return Promise.resolve();
  }

  /** @internal Closes the binding and resolves its parked pulls with `[]`. */
  shutdown(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const waiter of this.waiters) waiter.wake();
    this.host.release(this);
  }
}
