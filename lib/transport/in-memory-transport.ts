/**
 * `InMemoryTransport`: the embedded Transport, for single-process runs, tests and simulation.
 * It models JetStream's semantics so that it is interchangeable with `JetStreamTransport`, and
 * keeps every invariant of the port (`transport.ts`):
 *  1. Each stream numbers stored messages 1, 2, 3... from a counter that is never reset;
 *     messages removed by `maxMsgs`/`maxAgeMs` leave gaps, their sequences are never reused.
 *  2. A `msgId` seen within `duplicateWindowMs` (on the clock) stores nothing and answers
 *     `{ duplicate: true, seq: <original> }`.
 *  3. A reader yields every stored message of its filter from its start sequence on, in order,
 *     once each (skipping messages already removed by limits), then waits for new ones.
 *  4. Consumers redeliver until ack/term, at most `maxDeliver` times (`in-memory-consumer.ts`).
 *  5. `NO_STREAM_FOR_SUBJECT` / `MESSAGE_TOO_LARGE` publishes store nothing.
 * Headers and msgIds follow the NATS rules JetStream applies (`normalizePublishOptions`: header
 * names `!`..`~` without `:`, `Nats-*` names reserved, no line breaks, values trimmed), so a
 * publish the JetStream transport refuses with `CONFIG` is refused here too.
 * Time (timestamps, dedupe window, max age, ack waits, `waitMs`) comes only from the `Clock`.
 * Storage lives in `in-memory-stream.ts`, acknowledged consumers in `in-memory-consumer.ts`.
 */
import { SystemClock, type Clock } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import {
  resolveStreamConfig,
  subjectMatches,
  type Consumer,
  type ConsumerOptions,
  type PubAck,
  type PublishOptions,
  type Reader,
  type ReaderOptions,
  type StoredMessage,
  type StreamConfig,
  type StreamInfo,
  type Transport,
} from './transport.js';
import { ConsumerState, InMemoryConsumer, type ConsumerAdvisory } from './in-memory-consumer.js';
import { isValidSubject, matcherFor, MemoryStream, normalizePublishOptions, patternsOverlap, type Matcher, type Waiter } from './in-memory-stream.js';

export type { ConsumerAdvisory } from './in-memory-consumer.js';

/** Something `close`/`deleteStream` must shut down. */
interface Handle {
  readonly streamName: string;
  shutdown(): void;
}

const NAME = /^[A-Za-z0-9_-]+$/;
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

function attempt<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function checkMax(max: number): void {
  if (!Number.isInteger(max) || max < 1) throw new ConfigError('max', `must be an integer >= 1 (got ${max})`);
}

class InMemoryReader implements Reader {
  private closedFlag = false;
  private cursor: number;
  private readonly waiters = new Set<Waiter>();
  private readonly matches: Matcher;

  constructor(
    readonly streamName: string,
    startSeq: number,
    filter: string | undefined,
    private readonly host: { assertOpen(): void; stream(name: string): MemoryStream<ConsumerState>; release(h: Handle): void },
  ) {
    this.cursor = startSeq;
    this.matches = matcherFor(filter);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  async next(max: number, waitMs?: number): Promise<StoredMessage[]> {
    this.host.assertOpen();
    checkMax(max);
    let deadline: number | undefined;
    for (;;) {
      if (this.closedFlag) return [];
      const stream = this.host.stream(this.streamName);
      const { messages, next } = stream.read(this.cursor, max, this.matches);
      this.cursor = next;
      if (messages.length > 0) return messages;
      const now = stream.clock.now();
      deadline ??= waitMs === undefined ? Infinity : now + Math.max(0, waitMs);
      if (deadline <= now) return [];
      await stream.wait(this.matches, deadline - now, [this.waiters]);
    }
  }

  close(): Promise<void> {
    this.shutdown();
    return Promise.resolve();
  }

  shutdown(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const waiter of this.waiters) waiter.wake();
    this.host.release(this);
  }
}

/** Options of `InMemoryTransport`. @example new InMemoryTransport({ clock: new SimulatedClock(0) }) */
export interface InMemoryTransportOptions {
  /** Source of timestamps, dedupe windows, max age, ack waits and `waitMs`. @default new SystemClock() */
  clock?: Clock;
  /**
   * Called synchronously with each consumer advisory: `max-deliveries` when a message reached
   * `maxDeliver` deliveries without an ack (reported when its last ack wait or nak delay has
   * expired and the consumer is pulled), `terminated` on `term()`. An error it throws is
   * re-thrown from a microtask, never into the transport.
   */
  onAdvisory?: (advisory: ConsumerAdvisory) => void;
}

/**
 * The embedded Transport: streams, readers and durable consumers in process memory, with
 * JetStream's semantics (see the file comment for the invariants kept). Messages are copied on
 * publish and on every read, so callers may reuse or mutate their buffers.
 *
 * Beyond the port: `openReader` throws `TRANSPORT_CLOSED` synchronously after `close()`, while
 * a reader of a missing stream reports `STREAM_NOT_FOUND` from `next()` (as a remote transport
 * would). Reads and pulls in progress resolve with `[]` on `close()` and `deleteStream()`.
 *
 * @example
 * const transport = new InMemoryTransport({ clock: new SimulatedClock(0) });
 * await transport.ensureStream({ name: 'orders', subjects: ['orders.>'] });
 * await transport.publish('orders.eu', new TextEncoder().encode('{}'), { msgId: 'o-1' });
 * const [first] = await transport.openReader('orders', { startSeq: 1 }).next(10, 0);
 */
export class InMemoryTransport implements Transport {
  private readonly clock: Clock;
  private readonly onAdvisory: ((advisory: ConsumerAdvisory) => void) | undefined;
  private readonly streams = new Map<string, MemoryStream<ConsumerState>>();
  private readonly live = new Set<Handle>();
  private closed = false;
  private readonly host = {
    assertOpen: (): void => this.assertOpen(),
    stream: (name: string): MemoryStream<ConsumerState> => this.stream(name),
    release: (handle: Handle): void => {
      this.live.delete(handle);
    },
  };

  constructor(options: InMemoryTransportOptions = {}) {
    this.clock = options.clock ?? new SystemClock();
    this.onAdvisory = options.onAdvisory;
  }

  ensureStream(config: StreamConfig): Promise<StreamInfo> {
    return attempt(() => {
      this.assertOpen();
      const resolved = this.checkStreamConfig(config);
      const existing = this.streams.get(resolved.name);
      if (existing) {
        existing.reconfigure(resolved);
        return this.infoOf(existing);
      }
      const stream = new MemoryStream<ConsumerState>(this.clock, resolved);
      this.streams.set(resolved.name, stream);
      return this.infoOf(stream);
    });
  }

  streamInfo(stream: string): Promise<StreamInfo> {
    return attempt(() => this.infoOf(this.open(stream)));
  }

  lastSeqOf(stream: string, subject: string): Promise<number> {
    return attempt(() => this.open(stream).lastSeqOf(subject));
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PubAck> {
    return attempt(() => {
      this.assertOpen();
      if (!isValidSubject(subject, false)) {
        throw new ConfigError('subject', `must be a literal subject of non-empty tokens (got "${subject}")`);
      }
      const normalized = normalizePublishOptions(options);
      const stream = [...this.streams.values()].find((s) => s.config.subjects.some((p) => subjectMatches(p, subject)));
      if (!stream) {
        throw new WardenError('NO_STREAM_FOR_SUBJECT', `no stream captures subject "${subject}"`, { details: { subject } });
      }
      const limit = stream.config.maxMsgSize;
      if (data.byteLength > limit) {
        throw new WardenError('MESSAGE_TOO_LARGE', `message of ${data.byteLength} bytes on "${subject}" exceeds ` +
          `maxMsgSize ${limit} of stream "${stream.name}"`, {
          nonRetryable: true, details: { subject, stream: stream.name, size: data.byteLength, limit },
        });
      }
      return stream.append(subject, data, normalized);
    });
  }

  getMessage(stream: string, seq: number): Promise<StoredMessage | undefined> {
    return attempt(() => this.open(stream).get(seq));
  }

  /**
   * An ordered reader. Throws `TRANSPORT_CLOSED` (synchronously) after `close()` and
   * `CONFIG` for a bad filter or start; a missing stream is reported by `next()`.
   */
  openReader(stream: string, options: ReaderOptions = {}): Reader {
    this.assertOpen();
    this.checkFilter(options.filterSubject);
    const startSeq = options.startSeq ?? 1;
    if (!Number.isInteger(startSeq) || startSeq < 1) {
      throw new ConfigError('reader.startSeq', `must be an integer >= 1 (got ${startSeq})`);
    }
    const reader = new InMemoryReader(stream, startSeq, options.filterSubject, this.host);
    this.live.add(reader);
    return reader;
  }

  consumer(stream: string, options: ConsumerOptions): Promise<Consumer> {
    return attempt(() => {
      const s = this.open(stream);
      this.checkConsumerOptions(options);
      let state = s.consumers.get(options.name);
      if (state) state.configure(options);
      else {
        state = new ConsumerState(s, options, (advisory) => this.advise(advisory));
        s.consumers.set(options.name, state);
      }
      const consumer = new InMemoryConsumer(state, this.host);
      this.live.add(consumer);
      return consumer;
    });
  }

  /** Deletes the stream with its consumers; its readers and consumers are closed. */
  deleteStream(stream: string): Promise<void> {
    return attempt(() => {
      const s = this.open(stream);
      this.streams.delete(stream);
      for (const handle of this.live) if (handle.streamName === stream) handle.shutdown();
      for (const waiter of s.waiters) waiter.wake();
    });
  }

  /** Closes every reader and consumer; afterwards every operation fails with `TRANSPORT_CLOSED`. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const handle of this.live) handle.shutdown();
      for (const stream of this.streams.values()) for (const waiter of stream.waiters) waiter.wake();
      this.streams.clear();
    }
    return Promise.resolve();
  }

  /** The stream's state, with its durable consumers and open readers counted (port invariant 6). */
  private infoOf(stream: MemoryStream): StreamInfo {
    let readers = 0;
    for (const handle of this.live) if (handle instanceof InMemoryReader && handle.streamName === stream.name) readers++;
    return { ...stream.info(), consumers: stream.consumers.size + readers };
  }

  private assertOpen(): void {
    if (this.closed) throw new WardenError('TRANSPORT_CLOSED', 'transport is closed', { nonRetryable: true });
  }

  private stream(name: string): MemoryStream<ConsumerState> {
    const stream = this.streams.get(name);
    if (!stream) throw new WardenError('STREAM_NOT_FOUND', `stream "${name}" not found`, { details: { stream: name } });
    return stream;
  }

  private open(name: string): MemoryStream<ConsumerState> {
    this.assertOpen();
    return this.stream(name);
  }

  private advise(advisory: ConsumerAdvisory): void {
    if (!this.onAdvisory) return;
    try {
      this.onAdvisory(advisory);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  private checkFilter(filter: string | undefined): void {
    if (filter !== undefined && !isValidSubject(filter, true)) {
      throw new ConfigError('filterSubject', `is not a valid subject filter (got "${filter}")`);
    }
  }

  private checkConsumerOptions(o: ConsumerOptions): void {
    if (!NAME.test(o.name)) throw new ConfigError('consumer.name', `must match ${NAME.source} (got "${o.name}")`);
    this.checkFilter(o.filterSubject);
    if (o.startSeq !== undefined && (!Number.isInteger(o.startSeq) || o.startSeq < 1)) {
      throw new ConfigError('consumer.startSeq', `must be an integer >= 1 (got ${o.startSeq})`);
    }
    if (o.ackWaitMs !== undefined && !(o.ackWaitMs > 0 && Number.isFinite(o.ackWaitMs))) {
      throw new ConfigError('consumer.ackWaitMs', `must be a positive number of ms (got ${o.ackWaitMs})`);
    }
    if (o.maxDeliver !== undefined && !(o.maxDeliver === -1 || (Number.isInteger(o.maxDeliver) && o.maxDeliver >= 1))) {
      throw new ConfigError('consumer.maxDeliver', `must be -1 (unlimited) or an integer >= 1 (got ${o.maxDeliver})`);
    }
  }

  private checkStreamConfig(config: StreamConfig): Required<StreamConfig> {
    if (!NAME.test(config.name)) throw new ConfigError('stream.name', `must match ${NAME.source} (got "${config.name}")`);
    const resolved = resolveStreamConfig(config);
    if (resolved.subjects.length === 0) throw new ConfigError('stream.subjects', 'must list at least one subject');
    for (const [i, subject] of resolved.subjects.entries()) {
      if (!isValidSubject(subject, true)) throw new ConfigError('stream.subjects', `"${subject}" is not a valid subject`);
      if (resolved.subjects.indexOf(subject) !== i) throw new ConfigError('stream.subjects', `"${subject}" is listed twice`);
      for (const other of this.streams.values()) {
        if (other.name === resolved.name) continue;
        const clash = other.config.subjects.find((o) => patternsOverlap(subject, o));
        if (clash !== undefined) {
          throw new ConfigError('stream.subjects', `subject "${subject}" overlaps subject "${clash}" of stream "${other.name}"`, {
            details: { subject, stream: other.name, otherSubject: clash },
          });
        }
      }
    }
    for (const key of ['duplicateWindowMs', 'maxAgeMs', 'maxMsgSize', 'maxMsgs'] as const) {
      const value = resolved[key];
      if (!(Number.isFinite(value) && value >= 0)) throw new ConfigError(`stream.${key}`, `must be a number >= 0 (got ${value})`);
    }
    // JetStream: the duplicate window defaults to, and may not exceed, a shorter max age.
    if (resolved.maxAgeMs > 0) {
      if (config.duplicateWindowMs === undefined) {
        resolved.duplicateWindowMs = Math.min(DEFAULT_DUPLICATE_WINDOW_MS, resolved.maxAgeMs);
      } else if (resolved.duplicateWindowMs > resolved.maxAgeMs) {
        throw new ConfigError('stream.duplicateWindowMs', `must not exceed maxAgeMs ${resolved.maxAgeMs} (got ${resolved.duplicateWindowMs})`);
      }
    }
    return resolved;
  }
}
