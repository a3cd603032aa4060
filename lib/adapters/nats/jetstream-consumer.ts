/**
 * `JetStreamConsumer`: the port's acknowledged `Consumer` on a durable JetStream pull consumer
 * with explicit acks. Pulls are raw pull requests (`$JS.API.CONSUMER.MSG.NEXT`) on this handle's
 * own wildcard inbox, so `pull(max, waitMs)` keeps the port's timing exactly (the client's
 * `fetch` waits at least 1 s and for a full batch).
 *
 * Invariants:
 *  1. One pull at a time per handle (calls queue); each pull first takes what is buffered, then
 *     asks `{ batch: max, no_wait }` (what is ready now), then, if nothing came and `waitMs`
 *     allows, `{ batch: 1, expires: waitMs }` (the first message to arrive), then
 *     `{ batch: max - 1, no_wait }` for what came with it. A request ends with its batch filled
 *     or a status (404/408/409), at a reconnect, or by a clock guard should the status be lost.
 *  2. Every request has its own reply subject, where its statuses come, so a late status only
 *     ends its own request. Deliveries carry the stream's subject and count for the request in
 *     progress; a late one (of a request whose guard fired) is buffered, never dropped.
 *  3. Redelivery, ack wait, nak delay, maxDeliver and term are the server's (port invariant 4);
 *     `pending()` is kept locally per durable (`DurableBook`): delivered, not acked or
 *     terminated, and not known to be past its last delivery.
 *  4. `close()` ends the pull in progress with what it has (or `[]`) and unsubscribes; the
 *     durable and its pending deliveries stay on the server for the next binding.
 */
import { createInbox, nanos, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { WardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Consumer, Delivery } from '../../transport/transport.js';
import { toWardenError, type Redactor } from './errors.js';
import { checkMax, parseAckReply, storedMessageOf } from './messages.js';

/** Longest single waiting pull request; longer waits are several requests. */
const MAX_EXPIRES_MS = 30_000;
/** Extra time a request's clock guard gives the server's status. */
const GUARD_MS = 2_000;

const ACK = new TextEncoder().encode('+ACK');
const NAK = new TextEncoder().encode('-NAK');
const TERM = new TextEncoder().encode('+TERM');

/**
 * @internal The local view of one durable's pending deliveries, shared by every handle bound
 * to it through one transport (invariant 3).
 *
 * @example
 * const book = new DurableBook(30_000, -1);
 * book.delivered(7, 1, clock.now()); book.settled(7);
 */
export class DurableBook {
  private readonly entries = new Map<number, { deliveries: number; at: number }>();

  constructor(public ackWaitMs: number, public maxDeliver: number) {}

  delivered(seq: number, deliveries: number, at: number): void {
    this.entries.set(seq, { deliveries, at });
  }

  /** Acked or terminated. */
  settled(seq: number): void {
    this.entries.delete(seq);
  }

  /** Nak'ed: a last delivery nak'ed is never delivered again. */
  naked(seq: number): void {
    const e = this.entries.get(seq);
    if (e && this.maxDeliver > 0 && e.deliveries >= this.maxDeliver) this.entries.delete(seq);
  }

  count(now: number): number {
    if (this.maxDeliver > 0) {
      for (const [seq, e] of this.entries) {
        if (e.deliveries >= this.maxDeliver && now - e.at >= this.ackWaitMs) this.entries.delete(seq);
      }
    }
    return this.entries.size;
  }
}

/**
 * @internal What a consumer handle needs from its transport.
 *
 * @example new JetStreamConsumer(host, 'orders', 'billing', book)
 */
export interface ConsumerHost {
  readonly nc: NatsConnection;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly redactor: Redactor;
  /** JetStream API prefix, e.g. `$JS.API`. */
  readonly apiPrefix: string;
  /** Time given to a `no_wait` request. */
  readonly requestTimeoutMs: number;
  /** Whether the server takes a reason after `+TERM` (2.10.4+; older servers ignore the whole ack). */
  readonly termWithReason: boolean;
  assertOpen(): void;
  release(consumer: JetStreamConsumer): void;
}

interface PullRequest {
  readonly want: number;
  got: number;
  timer: TimerHandle;
  done(): void;
}

/**
 * @internal One binding to a durable pull consumer (see the file comment for its invariants);
 * made by `JetStreamTransport.consumer`.
 *
 * @example
 * const consumer = await transport.consumer('orders', { name: 'billing', ackWaitMs: 5_000 });
 * for (const d of await consumer.pull(10, 1_000)) { handle(d.message); d.ack(); }
 */
export class JetStreamConsumer implements Consumer {
  private closedFlag = false;
  private readonly inbox: string;
  private readonly sub: Subscription;
  private buffer: Msg[] = [];
  /** Requests not ended, by the last token of their reply subject (statuses come there). */
  private readonly requests = new Map<string, PullRequest>();
  /** The request in progress (one at a time: invariant 1). */
  private active: PullRequest | undefined;
  private nextRequest = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: WardenError | undefined;

  constructor(
    private readonly host: ConsumerHost,
    readonly streamName: string,
    readonly name: string,
    private readonly book: DurableBook,
  ) {
    this.inbox = `${createInbox()}.`;
    this.sub = host.nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => this.onMessage(err, msg) });
  }

  /** True once closed (by `close`, by deleting its stream, or by closing the transport). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Up to `max` deliveries; waits up to `waitMs` (no `waitMs`: no limit) for at least one.
   * Resolves `[]` when the wait passes or the handle is closed; rejects with `TRANSPORT_CLOSED`
   * once the transport is closed.
   */
  pull(max: number, waitMs?: number): Promise<Delivery[]> {
    try {
      this.host.assertOpen();
      checkMax(max);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const run = this.queue.then(() => this.doPull(max, waitMs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Messages delivered and not yet acked or terminated (invariant 3). */
  pending(): number {
    return this.book.count(this.host.clock.now());
  }

  close(): Promise<void> {
    this.shutdown();
    return Promise.resolve();
  }

  /**
   * @internal After a reconnect: requests sent before it are lost (the client drops what it
   * buffered while disconnected), so they end now and the pull in progress asks again.
   */
  reconnected(): void {
    for (const r of [...this.requests.values()]) r.done();
  }

  /** @internal Invariant 4. */
  shutdown(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const r of [...this.requests.values()]) r.done();
    try {
      this.sub.unsubscribe();
    } catch {
      // The connection is already closed.
    }
    this.host.release(this);
  }

  private async doPull(max: number, waitMs: number | undefined): Promise<Delivery[]> {
    const clock = this.host.clock;
    const deadline = waitMs === undefined ? Infinity : clock.now() + Math.max(0, waitMs);
    if (this.closedFlag) return [];
    this.failure = undefined; // a failure is reported by the pull that met it, then retried
    if (this.buffer.length === 0) await this.ask(max, undefined);
    let waited = false;
    while (this.buffer.length === 0 && !this.closedFlag) {
      const failure = this.currentFailure();
      if (failure) throw failure;
      const left = deadline - clock.now();
      if (left <= 0) break;
      waited = true;
      await this.ask(1, Math.min(left, MAX_EXPIRES_MS));
    }
    if (waited && this.buffer.length > 0 && this.buffer.length < max && !this.closedFlag) await this.ask(max - this.buffer.length, undefined);
    if (this.closedFlag) return [];
    const failure = this.currentFailure();
    if (this.buffer.length === 0 && failure) throw failure;
    return this.take(max);
  }

  /** The failure met by the pull in progress, if any (read through a call: it changes across awaits). */
  private currentFailure(): WardenError | undefined {
    return this.failure;
  }

  /** Sends one pull request and resolves when it ends (invariant 1). */
  private ask(batch: number, expiresMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const id = (this.nextRequest++).toString(36);
      const request: PullRequest = {
        want: batch, got: 0, timer: undefined,
        done: () => {
          if (!this.requests.delete(id)) return;
          if (this.active === request) this.active = undefined;
          if (request.timer !== undefined) this.host.clock.clearTimeout(request.timer);
          resolve();
        },
      };
      this.requests.set(id, request);
      this.active = request;
      const guard = expiresMs === undefined ? this.host.requestTimeoutMs : expiresMs + GUARD_MS;
      request.timer = this.host.clock.setTimeout(() => {
        request.timer = undefined;
        request.done();
      }, guard);
      const body = expiresMs === undefined ? { batch, no_wait: true } : { batch, expires: nanos(Math.max(1, expiresMs)) };
      try {
        this.host.nc.publish(`${this.host.apiPrefix}.CONSUMER.MSG.NEXT.${this.streamName}.${this.name}`, JSON.stringify(body), { reply: this.inbox + id });
      } catch (err) {
        this.failure = toWardenError(err, { op: 'pull', stream: this.streamName, consumer: this.name, redactor: this.host.redactor });
        request.done();
      }
    });
  }

  private onMessage(err: Error | null, msg: Msg): void {
    if (err) {
      this.failure = toWardenError(err, { op: 'pull', stream: this.streamName, consumer: this.name, redactor: this.host.redactor });
      for (const r of [...this.requests.values()]) r.done();
      return;
    }
    const info = parseAckReply(msg.reply);
    if (!info) {
      const request = msg.subject.startsWith(this.inbox) ? this.requests.get(msg.subject.slice(this.inbox.length)) : undefined;
      // A status: 100 heartbeat, 404 no messages, 408 request timeout, 409 limits, 503 no consumer.
      const code = msg.headers?.code ?? 0;
      if (code === 100) return;
      if (code === 503) {
        this.failure = new WardenError('STREAM_NOT_FOUND', `pull failed: consumer "${this.name}" of stream "${this.streamName}" not found`, {
          details: { op: 'pull', stream: this.streamName, consumer: this.name, status: code },
        });
      } else if (code === 409) {
        this.host.logger.debug({ stream: this.streamName, consumer: this.name, status: code, description: msg.headers?.description }, 'pull request ended');
      }
      request?.done();
      return;
    }
    this.buffer.push(msg); // invariant 2: buffered even if its request already ended
    this.book.delivered(info.streamSeq, info.deliveryCount, this.host.clock.now());
    // A delivery keeps the stream's subject (not the reply inbox): it counts for the request in progress.
    const request = this.active;
    if (request && ++request.got >= request.want) request.done();
  }

  private take(max: number): Delivery[] {
    const msgs = this.buffer.length <= max ? this.buffer : this.buffer.slice(0, max);
    this.buffer = this.buffer.length <= max ? [] : this.buffer.slice(max);
    return msgs.map((m) => this.delivery(m));
  }

  private delivery(m: Msg): Delivery {
    const info = parseAckReply(m.reply)!;
    const reply = m.reply!;
    const seq = info.streamSeq;
    let settled = false;
    const send = (payload: Uint8Array, what: string): void => {
      try {
        this.host.nc.publish(reply, payload);
      } catch (err) {
        this.host.logger.warn({ stream: this.streamName, consumer: this.name, seq, what,
          err: toWardenError(err, { op: what, stream: this.streamName, consumer: this.name, redactor: this.host.redactor }) }, 'could not send ack');
      }
    };
    return {
      message: storedMessageOf(this.streamName, seq, m, info.timestampMs),
      deliveryCount: info.deliveryCount,
      ack: () => {
        if (settled) return;
        settled = true;
        this.book.settled(seq);
        send(ACK, 'ack');
      },
      nak: (delayMs = 0) => {
        if (settled) return;
        this.book.naked(seq);
        const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
        send(delay > 0 ? new TextEncoder().encode(`-NAK ${JSON.stringify({ delay: nanos(delay) })}`) : NAK, 'nak');
      },
      term: (reason?: string) => {
        if (settled) return;
        settled = true;
        this.book.settled(seq);
        if (reason !== undefined) this.host.logger.info({ stream: this.streamName, consumer: this.name, seq, reason }, 'delivery terminated');
        send(reason && this.host.termWithReason ? new TextEncoder().encode(`+TERM ${reason}`) : TERM, 'term');
      },
    };
  }
}
