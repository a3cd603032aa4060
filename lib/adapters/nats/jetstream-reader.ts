/**
 * `JetStreamReader`: the port's ordered, unacknowledged `Reader` on a JetStream ordered consumer
 * (`js.consumers.get(stream, { filter_subjects, opt_start_seq })` + `consume()`). The client
 * library recreates the ephemeral consumer after a gap; the reader itself recreates it, from its
 * own cursor, after a reconnect (the server may have restarted and lost the in-memory consumer),
 * when the server's heartbeats stop (the server holding the consumer died, or its pull request
 * was lost: the library's own recovery then waits for a consumer-info request, up to `EXPIRES_MS`
 * between tries, and after recreating the consumer can pull too few messages), when the library
 * gives up, and when nothing arrives while the server says messages are pending (a stall
 * watchdog).
 *
 * Invariants:
 *  1. `cursor` is 1 + the stream sequence of the last message taken into the buffer; a message
 *     below it is dropped, and every (re)created consumer starts at `cursor`. So every message
 *     of the filter with seq >= startSeq is yielded once, in sequence order, across
 *     recreations, reconnects and server restarts (port invariant 3).
 *  2. Deliveries come through the library's callback (no per-message promise) into `buffer`.
 *     At `PAUSE_BATCHES * batch` buffered messages or `PAUSE_BYTES` buffered bytes the consumer
 *     is stopped (deliveries still in flight for it are dropped: the cursor did not move past
 *     them) and it is recreated from the cursor once `next()` has taken the buffer below
 *     `batch`; so memory stays bounded whatever the reader's pace (the limits are generous
 *     because deliveries come in bursts between two turns of a reading loop). A `generation`
 *     counter tells the current consumer's deliveries from a stopped one's.
 *  3. `serverPending` is what the server last said is stored for the filter beyond `cursor`
 *     (the consumer's `num_pending` at creation, then each delivery's pending count). `next()`
 *     resolves `[]` only when the reader is closed, or `waitMs` passed AND `serverPending` is 0;
 *     so `next(max, 0)` means "what is stored now" (as far as the server last said), as with
 *     the in-memory twin. A message reported pending but never delivered (removed by a limit)
 *     is settled by asking the server (consumer info) every `RECHECK_MS` while `next()` waits
 *     past its `waitMs`.
 *  4. Parked `next()` calls are woken once per burst of deliveries (a 0 ms clock timer), so a
 *     call returns what arrived together, not the first message of it.
 *  5. `close()` resolves parked `next()` calls with `[]`, stops the pump and deletes the
 *     ephemeral consumer (best effort; the server drops it after its inactivity threshold anyway).
 *  6. A consumer is never silent for long: every pull request asks for a heartbeat every
 *     `HEARTBEAT_MS` while it has nothing to deliver, and when the library reports two missed,
 *     the consumer is recreated from the cursor (invariant 1). One try at creating a consumer
 *     (stream info, then the create request) waits at most the transport's `attemptTimeoutMs`
 *     (2 s), and a failed one is tried again after `READER_RETRY` (200 ms doubling to 1 s): a
 *     request sent while the stream has no leader, or one the meta leader placed on a server
 *     that just died, is never answered. So a reader whose stream lost its leader reads again at
 *     most about 3 s after the election, and one whose consumer's server died about
 *     `3 * HEARTBEAT_MS` plus one creation after the death.
 */
import { DeliverPolicy, type Consumer as NatsConsumer, type ConsumerMessages, type JetStreamClient, type JsMsg, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { Msg } from '@nats-io/transport-node';
import { exponentialBackoff, type Backoff } from '../../core/backoff.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { WardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Reader, StoredMessage } from '../../transport/transport.js';
import { toWardenError, type Redactor } from './errors.js';
import * as messages from './messages.js';

// Hot-path functions bound once: a module namespace access per call costs a getter under tsx.
const { checkMax, storedMessage, storedMessageOf } = messages;

/** While `next()` waits for messages the server reported, it re-checks this often. */
const RECHECK_MS = 1_000;
/** Behind, with nothing delivered for this long: the consumer is recreated (watchdog). */
const STALL_MS = 5_000;
/** The consumer is stopped (backpressure) at this many batches buffered... */
const PAUSE_BATCHES = 16;
/** ...or at this many buffered body bytes. */
const PAUSE_BYTES = 8 * 1024 * 1024;
/** Lifetime of one pull request of the library's `consume`. */
const EXPIRES_MS = 10_000;
/** Heartbeat interval a pull request asks of the server while it has nothing to deliver (invariant 6). */
const HEARTBEAT_MS = 1_000;
/**
 * @internal Delay before a failed ordered consumer is recreated: 200 ms after the first failure,
 * doubling up to 1 s, no jitter (invariant 6).
 *
 * @example READER_RETRY.delay(0) // 200
 */
export const READER_RETRY: Backoff = exponentialBackoff({ minMs: 200, maxMs: 1_000 }, 'readerRetry');

/**
 * @internal What a reader needs from its transport.
 *
 * @example new JetStreamReader(host, 'orders', 1, 'orders.eu')
 */
export interface ReaderHost {
  /**
   * Its requests (stream info and consumer create, info and delete) time out after the
   * transport's `attemptTimeoutMs` (2 s, or `apiTimeoutMs` if shorter; invariant 6).
   */
  readonly js: JetStreamClient;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly redactor: Redactor;
  /** Messages asked of the server at a time (invariant 2 bounds the buffer by it). */
  readonly batch: number;
  assertOpen(): void;
  release(reader: JetStreamReader): void;
}

/**
 * @internal An ordered reader (see the file comment for its invariants); made by
 * `JetStreamTransport.openReader`.
 *
 * @example
 * const reader = transport.openReader('orders', { filterSubject: 'orders.eu', startSeq: 42 });
 * const batch = await reader.next(256, 1_000);
 */
export class JetStreamReader implements Reader {
  private closedFlag = false;
  private buffer: StoredMessage[] = [];
  private head = 0;
  private cursor: number;
  private serverPending: number | undefined;
  private progressAt: number;
  private failure: WardenError | undefined;
  private readonly wakers = new Set<() => void>();
  private wakeTimer: TimerHandle = undefined;
  /** Resolves the pump's wait while paused for backpressure (invariant 2). */
  private resumePump: (() => void) | undefined;
  private paused = false;
  private bufferedBytes = 0;
  /** Bumped whenever a consumer is started or stopped (invariant 2). */
  private generation = 0;
  /** Deliveries seen (the stall watchdog looks at progress through `progressAt`). */
  private delivered = 0;
  private deliveredSeen = 0;
  private consumer: NatsConsumer | undefined;
  private messages: ConsumerMessages | undefined;
  private rechecking = false;

  constructor(
    private readonly host: ReaderHost,
    readonly streamName: string,
    startSeq: number,
    private readonly filter: string | undefined,
  ) {
    this.cursor = startSeq;
    this.progressAt = host.clock.now();
    this.pump().catch((err: unknown) => this.setFailure(toWardenError(err, this.ctx())));
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  async next(max: number, waitMs?: number): Promise<StoredMessage[]> {
    this.host.assertOpen();
    checkMax(max);
    const clock = this.host.clock;
    let deadline: number | undefined;
    for (;;) {
      if (this.closedFlag) return [];
      if (this.head < this.buffer.length) return this.take(max);
      if (this.failure) throw this.failure;
      const now = clock.now();
      deadline ??= waitMs === undefined ? Infinity : now + Math.max(0, waitMs);
      const behind = this.serverPending === undefined || this.serverPending > 0;
      if (!behind) {
        if (deadline <= now) return [];
        await this.parked(deadline - now);
        continue;
      }
      if (this.delivered !== this.deliveredSeen) {
        this.deliveredSeen = this.delivered;
        this.progressAt = now;
      } else if (this.consumer && now - this.progressAt >= STALL_MS) {
        this.restart('no delivery while messages are pending');
      }
      // Invariant 3: messages are known to be stored; past waitMs, re-ask the server.
      if (deadline <= now && !this.rechecking && this.consumer) void this.recheck(this.consumer);
      await this.parked(deadline > now ? Math.min(deadline - now, RECHECK_MS) : RECHECK_MS);
    }
  }

  close(): Promise<void> {
    this.shutdown();
    return Promise.resolve();
  }

  /** @internal Closes the reader (invariant 5). */
  shutdown(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.buffer = [];
    this.head = 0;
    this.bufferedBytes = 0;
    this.resumePump?.();
    this.resumePump = undefined;
    this.stopConsumer();
    if (this.wakeTimer !== undefined) this.host.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeNow();
    this.host.release(this);
  }

  /**
   * @internal Recreates the ordered consumer from the cursor (invariant 1): after a reconnect,
   * or when it stalled. Messages already buffered stay; nothing is read twice.
   */
  restart(reason: string): void {
    if (this.closedFlag || !this.messages) return;
    this.host.logger.info({ stream: this.streamName, cursor: this.cursor, reason }, 'recreating the ordered reader');
    this.progressAt = this.host.clock.now();
    this.stopConsumer();
  }

  private stopConsumer(): void {
    this.generation++;
    const messages = this.messages;
    const consumer = this.consumer;
    this.messages = undefined;
    this.consumer = undefined;
    if (messages) messages.stop();
    if (consumer) consumer.delete().catch(() => undefined);
  }

  private ctx(): { op: string; stream: string; redactor: Redactor } {
    return { op: 'read', stream: this.streamName, redactor: this.host.redactor };
  }

  private take(max: number): StoredMessage[] {
    const end = Math.min(this.buffer.length, this.head + max);
    const out = this.buffer.slice(this.head, end);
    this.head = end;
    if (this.head === this.buffer.length) {
      this.buffer = [];
      this.head = 0;
      this.bufferedBytes = 0;
    } else {
      for (const m of out) this.bufferedBytes -= m.data.byteLength;
    }
    if (this.paused && this.buffer.length - this.head < this.host.batch) {
      this.paused = false;
      const resume = this.resumePump;
      this.resumePump = undefined;
      resume?.();
    }
    return out;
  }

  /** Invariant 4: wakes parked calls once the current burst of deliveries is buffered. */
  private wakeSoon(): void {
    if (this.wakers.size === 0 || this.wakeTimer !== undefined) return;
    this.wakeTimer = this.host.clock.setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeNow();
    }, 0);
  }

  private wakeNow(): void {
    if (this.wakers.size === 0) return;
    for (const w of [...this.wakers]) w();
  }

  /** Waits for a wake (messages, failure, close) or `ms` on the clock. */
  private parked(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: TimerHandle = undefined;
      const done = (): void => {
        if (timer !== undefined) this.host.clock.clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      this.wakers.add(done);
      if (ms !== Infinity) timer = this.host.clock.setTimeout(done, ms);
    });
  }

  private setFailure(err: WardenError): void {
    if (this.closedFlag) return;
    this.failure = err;
    this.wakeNow();
  }

  private options(): Partial<OrderedConsumerOptions> {
    const o: Partial<OrderedConsumerOptions> = { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.cursor };
    if (this.filter !== undefined && this.filter !== '>') o.filter_subjects = this.filter;
    return o;
  }

  /** Invariants 1, 2: runs the ordered consumer into the buffer; recreates it when asked or when it fails. */
  private async pump(): Promise<void> {
    let failures = 0;
    while (!this.closedFlag) {
      try {
        if (this.paused) await new Promise<void>((resolve) => (this.resumePump = resolve));
        if (this.closedFlag) return;
        const consumer = await this.host.js.consumers.get(this.streamName, this.options());
        if (this.closedFlag) {
          consumer.delete().catch(() => undefined);
          return;
        }
        const gen = ++this.generation;
        this.consumer = consumer;
        this.serverPending = (await consumer.info(true)).num_pending;
        this.progressAt = this.host.clock.now();
        this.wakeNow();
        const messages = await consumer.consume({
          max_messages: this.host.batch, expires: EXPIRES_MS, idle_heartbeat: HEARTBEAT_MS, callback: (m) => this.accept(gen, m),
        });
        if (this.closedFlag || gen !== this.generation) {
          messages.stop();
          if (this.closedFlag) return;
          continue; // stopped (restart, backpressure) while starting
        }
        this.messages = messages;
        void this.watch(messages);
        failures = 0;
        const ended = await messages.closed();
        if (this.closedFlag) return;
        if (gen !== this.generation) continue; // stopped by restart() or for backpressure: recreate
        throw ended ?? new WardenError('TRANSPORT_CLOSED', `the ordered consumer of stream "${this.streamName}" stopped`);
      } catch (err) {
        if (this.closedFlag) return;
        const e = toWardenError(err, this.ctx());
        if (e.code === 'STREAM_NOT_FOUND' || e.code === 'CONFIG' || (e.code === 'TRANSPORT_CLOSED' && e.nonRetryable)) {
          this.setFailure(e);
          return;
        }
        this.stopConsumer();
        failures++;
        const delay = READER_RETRY.delay(failures - 1);
        this.host.logger.warn({ stream: this.streamName, cursor: this.cursor, failures, delay, err: e }, 'ordered reader failed; recreating it');
        await this.parked(delay);
      }
    }
  }

  private accept(gen: number, m: JsMsg): void {
    if (gen !== this.generation || this.closedFlag) return; // invariant 2: a stopped consumer's delivery
    const info = m.info;
    const seq = info.streamSequence;
    this.serverPending = info.pending;
    this.delivered++;
    if (seq < this.cursor) return; // invariant 1
    this.cursor = seq + 1;
    const timestampMs = Math.floor(info.timestampNanos / 1e6);
    const raw = (m as unknown as { msg?: Msg }).msg;
    this.buffer.push(raw ? storedMessageOf(this.streamName, seq, raw, timestampMs) : storedMessage(this.streamName, m.subject, seq, m.data, m.headers, timestampMs));
    this.bufferedBytes += this.buffer[this.buffer.length - 1]!.data.byteLength;
    if (this.buffer.length - this.head >= PAUSE_BATCHES * this.host.batch || this.bufferedBytes >= PAUSE_BYTES) {
      this.paused = true;
      this.host.logger.debug({ stream: this.streamName, cursor: this.cursor, buffered: this.buffer.length - this.head }, 'reader paused (backpressure)');
      this.stopConsumer();
    }
    this.wakeSoon();
  }

  /**
   * Logs what the library reports about the ordered consumer (recreations, missing stream...);
   * recreates it when its heartbeats stop (invariant 6).
   */
  private async watch(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const s of messages.status()) {
        if (s.type === 'heartbeats_missed') {
          if (messages === this.messages) this.restart(`no heartbeat from the server for ${s.count} intervals of ${HEARTBEAT_MS} ms`);
          continue;
        }
        if (s.type === 'ordered_consumer_recreated' || s.type === 'reset' || s.type === 'stream_not_found' || s.type === 'consumer_not_found') {
          this.host.logger.info({ stream: this.streamName, cursor: this.cursor, status: s }, 'ordered reader status');
          this.progressAt = this.host.clock.now();
        }
      }
    } catch {
      // The status iterator ends with the consumer.
    }
  }

  /** Invariant 3: asks the server whether anything is still stored beyond the cursor. */
  private async recheck(consumer: NatsConsumer): Promise<void> {
    this.rechecking = true;
    try {
      const info = await consumer.info();
      if (info.num_pending === 0 && info.delivered.stream_seq < this.cursor && this.head === this.buffer.length && this.consumer === consumer) {
        this.serverPending = 0;
        this.wakeNow();
      }
    } catch (err) {
      this.host.logger.debug({ stream: this.streamName, err: toWardenError(err, this.ctx()) }, 'reader re-check failed');
    } finally {
      this.rechecking = false;
    }
  }
}
