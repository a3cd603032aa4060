/**
 * `PubAckCollector`: the publish fast path of `JetStreamTransport`. Publishes go out as core
 * NATS messages (`nc.publish(subject, data, { reply, headers })`) without waiting for each
 * other; every reply subject is `<inbox>.<token>` on ONE wildcard subscription the collector
 * owns, and the PubAck (or JetStream error) arriving there settles the publish's promise.
 *
 * Invariants:
 *  1. Every publish settles exactly once: with its PubAck, with a translated `WardenError`
 *     (a JetStream error reply, `NO_STREAM_FOR_SUBJECT` for a no-responders status, a client
 *     error), or with `TRANSPORT_CLOSED` when the collector closes.
 *  2. A publish with a `msgId` that gets no reply within `timeoutMs` is sent again, with the
 *     same msgId, headers, body and reply token, after an exponential backoff on the clock, and
 *     so on until a reply comes or the collector closes; after a reconnect every one in flight
 *     is sent again at once (`resendAll`). The stream's duplicate window makes the copies
 *     harmless: nothing is lost and nothing doubled. The first reply to any copy settles it
 *     (after a retry, `duplicate: true` may mean the first copy landed).
 *  3. A publish without a `msgId` is never sent twice (a copy could be stored twice); without a
 *     reply in time it fails with `TIMEOUT`.
 *  4. `waiting` holds the publishes awaiting a reply in send order, which is deadline order
 *     (one timeout for all); one clock timer, armed for the oldest deadline, sweeps it.
 *  5. A publish's header block and body are encoded once, into a pooled slab (`wire.ts`), and
 *     sent again from there on a retry; nothing else per publish outlives its send but the
 *     `Pending` entry and the promise.
 */
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox } from '@nats-io/transport-node';
import { exponentialBackoff, type Backoff } from '../../core/backoff.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { WardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { PubAck, PublishOptions } from '../../transport/transport.js';
import { toWardenError, translateApiError, type JsApiErrorBody, type Redactor } from './errors.js';
import * as wire from './wire.js';
import { EncodedHeaders, SubjectCache, type PublishBytes } from './wire.js';

// Hot-path functions bound once: a module namespace access per call costs a getter under tsx.
const { bodyOf, encodePublish, parsePubAck, replyToken } = wire;

const EMPTY = new ArrayBuffer(0);

/**
 * Counters of the publish path.
 *
 * @example if (transport.stats().retries > 0) logger.warn('publishes were retried');
 */
export interface PublishStats {
  /** Publishes accepted by `publish()`. */
  published: number;
  /** PubAcks received (including duplicates). */
  acked: number;
  /** PubAcks that said `duplicate: true`. */
  duplicates: number;
  /** Publishes sent again: after `publishTimeoutMs` without a reply, or after a reconnect (invariant 2). */
  retries: number;
  /** Publishes that failed (error reply, no stream, client error, closed, timeout without msgId). */
  failed: number;
  /** Publishes not settled yet. */
  inFlight: number;
}

/**
 * Options of a `PubAckCollector`.
 *
 * @example new PubAckCollector({ nc, clock, logger, redactor, timeoutMs: 5_000, retryInitialMs: 100, retryMaxMs: 5_000 })
 */
export interface PubAckCollectorOptions {
  nc: NatsConnection;
  clock: Clock;
  logger: Logger;
  redactor: Redactor;
  /** Time to wait for a PubAck before sending again. */
  timeoutMs: number;
  /** First retry backoff; doubles per attempt. */
  retryInitialMs: number;
  /** Longest retry backoff. */
  retryMaxMs: number;
}

/**
 * @internal The publish retry schedule: `initialMs` before the first retry, doubling up to
 * `maxMs`, no jitter (a maximum below the initial delay waits the maximum every time).
 *
 * @example publishRetryBackoff(100, 5_000).delay(2) // 400
 */
export function publishRetryBackoff(initialMs: number, maxMs: number): Backoff {
  return exponentialBackoff({ minMs: Math.min(initialMs, maxMs), maxMs }, 'publishRetry');
}

/** One publish in flight; its bytes stay where `encodePublish` put them (for retries). */
interface Pending extends PublishBytes {
  readonly token: number;
  readonly subject: string;
  readonly msgId: string | undefined;
  deadline: number;
  attempts: number;
  retryTimer: TimerHandle;
  resolve: (ack: PubAck) => void;
  reject: (err: WardenError) => void;
}

const decoder = new TextDecoder();

const noop = (): void => undefined;
/** The resolving functions of the promise being made, taken by one shared executor (no closure per publish). */
let lastResolve: (ack: PubAck) => void = noop;
let lastReject: (err: WardenError) => void = noop;
function capture(resolve: (ack: PubAck) => void, reject: (err: WardenError) => void): void {
  lastResolve = resolve;
  lastReject = reject;
}

/**
 * @internal The fast publish path (see the file comment for its invariants).
 *
 * @example
 * const collector = new PubAckCollector({ nc, clock, logger, redactor, timeoutMs: 5_000, retryInitialMs: 100, retryMaxMs: 5_000 });
 * const ack = await collector.publish('orders.eu', bytes, { msgId: 'o-1' });
 */
export class PubAckCollector {
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly waiting = new Map<number, Pending>();
  private readonly backingOff = new Map<number, Pending>();
  private nextToken = 0;
  private sweepTimer: TimerHandle = undefined;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly counters = { published: 0, acked: 0, duplicates: 0, retries: 0, failed: 0 };
  /** Reused for every send: the client reads them synchronously and keeps neither. */
  private readonly encoded = new EncodedHeaders();
  private readonly withHeaders: { reply: string; headers: MsgHdrs } = { reply: '', headers: this.encoded.asMsgHdrs() };
  private readonly withoutHeaders = { reply: '' };
  private readonly streams = new SubjectCache();
  /** Delays before a publish without a reply is sent again (invariant 2), built once. */
  private readonly retry: Backoff;

  constructor(private readonly o: PubAckCollectorOptions) {
    this.retry = publishRetryBackoff(o.retryInitialMs, o.retryMaxMs);
    this.prefix = `${createInbox()}.`;
    this.sub = o.nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => this.onReply(err, msg) });
  }

  /**
   * Publishes and resolves with the PubAck (invariants 1-3). Throws `CONFIG` (synchronously)
   * for headers or a msgId NATS would refuse; the body and headers are copied at once.
   */
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PubAck> {
    if (this.closed) return Promise.reject(closedError());
    const p: Pending = {
      token: this.nextToken++, subject, msgId: options.msgId, deadline: 0, attempts: 0, retryTimer: undefined,
      resolve: noop, reject: noop, buf: EMPTY, headerAt: 0, bodyAt: 0, bodyLength: 0,
    };
    encodePublish(data, options, p);
    const promise = new Promise<PubAck>(capture);
    p.resolve = lastResolve;
    p.reject = lastReject;
    this.counters.published++;
    this.send(p);
    return promise;
  }

  /** Counters; `inFlight` counts publishes awaiting a reply or a retry. */
  stats(): PublishStats {
    return { ...this.counters, inFlight: this.waiting.size + this.backingOff.size };
  }

  /** Resolves when nothing is in flight, or after `timeoutMs` on the clock. */
  settle(timeoutMs: number): Promise<void> {
    if (this.waiting.size + this.backingOff.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.o.clock.clearTimeout(timer);
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve();
      };
      const timer = this.o.clock.setTimeout(done, timeoutMs);
      this.idleWaiters.push(done);
    });
  }

  /**
   * Sends every publish with a msgId still in flight again, now (invariant 2): called after a
   * reconnect, as the client drops what it buffered while disconnected and replies sent to the
   * old connection are lost. Publishes without a msgId are left to time out (invariant 3).
   */
  resendAll(): number {
    if (this.closed) return 0;
    const again = [...this.waiting.values(), ...this.backingOff.values()].filter((p) => p.msgId !== undefined);
    for (const p of again) {
      this.unlink(p);
      this.counters.retries++;
      p.attempts++;
      this.send(p);
    }
    return again.length;
  }

  /** Fails everything in flight with `TRANSPORT_CLOSED` and stops (invariant 1). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== undefined) this.o.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const all = [...this.waiting.values(), ...this.backingOff.values()];
    this.waiting.clear();
    this.backingOff.clear();
    for (const p of all) {
      if (p.retryTimer !== undefined) this.o.clock.clearTimeout(p.retryTimer);
      this.fail(p, closedError());
    }
    try {
      this.sub.unsubscribe();
    } catch {
      // The connection is already closed: nothing to unsubscribe.
    }
    this.notifyIdle();
  }

  private send(p: Pending): void {
    p.deadline = this.o.clock.now() + this.o.timeoutMs;
    this.waiting.set(p.token, p);
    let options: { reply: string; headers?: MsgHdrs };
    if (p.bodyAt > p.headerAt) {
      this.encoded.block = new Uint8Array(p.buf, p.headerAt, p.bodyAt - p.headerAt);
      options = this.withHeaders;
    } else {
      options = this.withoutHeaders;
    }
    options.reply = this.prefix + p.token;
    try {
      this.o.nc.publish(p.subject, new Uint8Array(p.buf, p.bodyAt, p.bodyLength), options);
    } catch (err) {
      this.waiting.delete(p.token);
      this.fail(p, toWardenError(err, { op: 'publish', subject: p.subject, redactor: this.o.redactor }));
      return;
    }
    if (this.sweepTimer === undefined) this.arm(this.o.timeoutMs);
  }

  private onReply(err: Error | null, msg: Msg): void {
    if (err) {
      // The reply subscription itself failed (e.g. a permissions violation): nothing can settle.
      this.o.logger.error({ err: this.o.redactor.error(err) }, 'PubAck subscription failed; failing publishes in flight');
      const e = toWardenError(err, { op: 'publish', redactor: this.o.redactor });
      for (const p of [...this.waiting.values(), ...this.backingOff.values()]) {
        this.unlink(p);
        this.fail(p, e);
      }
      return;
    }
    const token = replyToken(msg, this.prefix.length);
    const p = this.waiting.get(token) ?? this.backingOff.get(token);
    if (!p) return; // A late reply to a copy of a publish already settled (invariant 2).
    this.unlink(p);
    const data = bodyOf(msg);
    if (data.length === 0) {
      const code = msg.headers?.code ?? 0;
      if (code === 503) {
        this.fail(p, new WardenError('NO_STREAM_FOR_SUBJECT', `no stream captures subject "${p.subject}"`, { details: { subject: p.subject } }));
      } else {
        this.fail(p, new WardenError('TRANSPORT_CLOSED', `publish to "${p.subject}" got an empty reply (status ${code})`, {
          details: { subject: p.subject, status: code },
        }));
      }
      return;
    }
    let ack: PubAck | undefined = parsePubAck(data, this.streams);
    if (!ack) {
      let reply: { stream?: string; seq?: number; duplicate?: boolean; error?: JsApiErrorBody };
      try {
        reply = JSON.parse(decoder.decode(data)) as typeof reply;
      } catch (cause) {
        this.fail(p, new WardenError('TRANSPORT_CLOSED', `publish to "${p.subject}" got an unreadable PubAck`, { cause, details: { subject: p.subject } }));
        return;
      }
      if (reply.error) {
        const e = translateApiError(reply.error, { op: 'publish', subject: p.subject, redactor: this.o.redactor });
        if (e.code === 'MESSAGE_TOO_LARGE') Object.assign(e.details, { size: p.bodyLength });
        this.fail(p, e);
        return;
      }
      ack = { stream: reply.stream ?? '', seq: reply.seq ?? 0, duplicate: reply.duplicate === true };
    }
    this.counters.acked++;
    if (ack.duplicate) this.counters.duplicates++;
    p.resolve(ack);
    if (this.idleWaiters.length > 0) this.notifyIdle();
  }

  /** Removes `p` from the tables (and cancels its retry). */
  private unlink(p: Pending): void {
    if (!this.waiting.delete(p.token) && this.backingOff.delete(p.token) && p.retryTimer !== undefined) {
      this.o.clock.clearTimeout(p.retryTimer);
      p.retryTimer = undefined;
    }
  }

  private fail(p: Pending, err: WardenError): void {
    this.counters.failed++;
    p.reject(err);
    if (this.idleWaiters.length > 0) this.notifyIdle();
  }

  private arm(ms: number): void {
    this.sweepTimer = this.o.clock.setTimeout(() => this.sweep(), Math.max(0, ms));
  }

  /** Invariant 4: handles every publish past its deadline, then re-arms for the oldest left. */
  private sweep(): void {
    this.sweepTimer = undefined;
    if (this.closed) return;
    const now = this.o.clock.now();
    let retried = 0;
    for (const p of this.waiting.values()) {
      if (p.deadline > now) break;
      this.waiting.delete(p.token);
      if (p.msgId === undefined) {
        this.fail(p, new WardenError('TIMEOUT', `publish to "${p.subject}" got no PubAck within ${this.o.timeoutMs} ms ` +
          '(not retried: without a msgId a copy could be stored twice)', { details: { subject: p.subject, timeoutMs: this.o.timeoutMs } }));
        continue;
      }
      retried++;
      this.counters.retries++;
      p.attempts++;
      const delay = this.retry.delay(p.attempts - 1);
      this.backingOff.set(p.token, p);
      p.retryTimer = this.o.clock.setTimeout(() => {
        p.retryTimer = undefined;
        if (this.closed || !this.backingOff.delete(p.token)) return;
        this.send(p);
      }, delay);
    }
    if (retried > 0) {
      this.o.logger.warn({ retried, inFlight: this.waiting.size + this.backingOff.size, timeoutMs: this.o.timeoutMs },
        'publishes got no PubAck in time; sending again with the same msgId');
    }
    const oldest = this.waiting.values().next();
    if (!oldest.done) this.arm(oldest.value.deadline - now);
  }

  private notifyIdle(): void {
    if (this.waiting.size + this.backingOff.size > 0 && !this.closed) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function closedError(): WardenError {
  return new WardenError('TRANSPORT_CLOSED', 'transport is closed', { nonRetryable: true });
}
