/**
 * The Transport port: the replayable log warden runs on. It models exactly the JetStream
 * semantics the framework relies on, so `InMemoryTransport` (embedded default, tests,
 * simulation) and `JetStreamTransport` (production) are interchangeable.
 *
 * Invariants every implementation keeps (the contract suite checks them):
 *  1. A stream assigns each stored message the next sequence (1, 2, 3...); sequences never
 *     repeat and never go back, even after messages are removed by limits.
 *  2. A publish whose `msgId` was already stored within `duplicateWindowMs` stores nothing
 *     and answers `{ duplicate: true, seq: <seq of the original> }`.
 *  3. A reader started at sequence S yields every stored message of its filter with
 *     seq >= S, in sequence order, once each, then waits for new ones.
 *  4. A consumer delivers each message until it is acked or terminated; a message not acked
 *     within `ackWaitMs` (or nak'ed) is delivered again, at most `maxDeliver` times in all.
 *  5. A publish to a subject no stream captures fails with `NO_STREAM_FOR_SUBJECT`; a message
 *     larger than the stream's `maxMsgSize` fails with `MESSAGE_TOO_LARGE`. Nothing is stored.
 *  6. `streamInfo().consumers` counts the stream's durable consumers and its open readers: a
 *     reader counts from its first `next()` until it is closed; a durable consumer until its
 *     stream is deleted. `deleteStream` removes the stream with its consumers, and closes this
 *     transport's readers and consumers of it.
 */

/** Configuration of one stream (a log). */
export interface StreamConfig {
  /** Stream name: letters, digits, `-` and `_`. */
  name: string;
  /** Subjects captured by the stream; `*` matches one token, `>` the rest (NATS wildcards). */
  subjects: string[];
  /** Window within which a repeated `msgId` is dropped. @default 120_000 */
  duplicateWindowMs?: number;
  /** Messages older than this are removed. 0 = keep forever. @default 0 */
  maxAgeMs?: number;
  /** Largest message body accepted, in bytes. @default 1_048_576 */
  maxMsgSize?: number;
  /** Oldest messages are removed beyond this count. 0 = unlimited. @default 0 */
  maxMsgs?: number;
}

/** One message as stored in a stream. */
export interface StoredMessage {
  stream: string;
  subject: string;
  seq: number;
  data: Uint8Array;
  headers: Record<string, string>;
  /** Time the stream stored it (transport clock), ms. */
  timestampMs: number;
  msgId?: string;
}

/** Options of a publish. */
export interface PublishOptions {
  /** Deduplication ID (JetStream `Nats-Msg-Id`). */
  msgId?: string;
  headers?: Record<string, string>;
}

/** The stream's answer to a publish (JetStream PubAck). */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** State of a stream. */
export interface StreamInfo {
  name: string;
  /** The subjects the stream captures, as configured. */
  subjects: string[];
  /** Sequence of the oldest message still stored (lastSeq + 1 when empty). */
  firstSeq: number;
  /** Sequence of the newest message ever stored (0 if none). */
  lastSeq: number;
  /** Number of messages stored now. */
  messages: number;
  bytes: number;
  /**
   * Consumers of the stream now: its durable consumers, and one per ordered reader open on it
   * (a running node holds a reader on every partition of every stage). JetStream counts a reader
   * that went away without closing until the server drops its consumer (after its inactivity
   * threshold, a few seconds).
   */
  consumers: number;
}

/** Options of an ordered reader. */
export interface ReaderOptions {
  /** Only messages whose subject matches this filter (NATS wildcards). @default all */
  filterSubject?: string;
  /** First sequence to deliver. @default 1 */
  startSeq?: number;
}

/**
 * An ordered, unacknowledged view of a stream from a sequence on (JetStream ordered consumer).
 * Used for processing with positions kept in checkpoints, and for replay.
 */
export interface Reader {
  /**
   * Up to `max` next messages in sequence order. Waits until at least one is available, or
   * `waitMs` passed (then resolves with `[]`), or the reader is closed (then resolves with `[]`).
   */
  next(max: number, waitMs?: number): Promise<StoredMessage[]>;
  close(): Promise<void>;
  readonly closed: boolean;
}

/** Options of an acknowledged consumer. */
export interface ConsumerOptions {
  /** Durable name. */
  name: string;
  filterSubject?: string;
  /** First sequence to deliver when the consumer is created. @default 1 */
  startSeq?: number;
  /** Redeliver a message not acked within this time. @default 30_000 */
  ackWaitMs?: number;
  /** Deliveries per message at most; then it is left alone (and reported). -1 = unlimited. @default -1 */
  maxDeliver?: number;
}

/** One delivery of a message to an acknowledged consumer. */
export interface Delivery {
  message: StoredMessage;
  /** 1 on first delivery, then 2, 3... */
  deliveryCount: number;
  ack(): void;
  /** Ask for redelivery, after `delayMs` (0 = at once). */
  nak(delayMs?: number): void;
  /** Never deliver this message again. */
  term(reason?: string): void;
}

/** A durable, acknowledged consumer (JetStream pull consumer with explicit ack). */
export interface Consumer {
  readonly name: string;
  /** Up to `max` deliveries; waits up to `waitMs` for at least one. */
  pull(max: number, waitMs?: number): Promise<Delivery[]>;
  /** Messages delivered and not yet acked. */
  pending(): number;
  close(): Promise<void>;
}

/** The replayable log. */
export interface Transport {
  /** Creates the stream, or updates it if it exists with another config. Idempotent. */
  ensureStream(config: StreamConfig): Promise<StreamInfo>;
  streamInfo(stream: string): Promise<StreamInfo>;
  /** Sequence of the newest message on `subject` in `stream`, 0 if none (for per-partition lag). */
  lastSeqOf(stream: string, subject: string): Promise<number>;
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PubAck>;
  /** The stored message at `seq`, or undefined if it does not exist or was removed. */
  getMessage(stream: string, seq: number): Promise<StoredMessage | undefined>;
  openReader(stream: string, options?: ReaderOptions): Reader;
  /** Creates (or binds to) a durable consumer. */
  consumer(stream: string, options: ConsumerOptions): Promise<Consumer>;
  /** Deletes the stream, its messages and its consumers (invariant 6); `STREAM_NOT_FOUND` if there is none. */
  deleteStream(stream: string): Promise<void>;
  close(): Promise<void>;
}

/** Resolved stream limits with defaults applied. */
export function resolveStreamConfig(config: StreamConfig): Required<StreamConfig> {
  return {
    name: config.name,
    subjects: [...config.subjects],
    duplicateWindowMs: config.duplicateWindowMs ?? 120_000,
    maxAgeMs: config.maxAgeMs ?? 0,
    maxMsgSize: config.maxMsgSize ?? 1_048_576,
    maxMsgs: config.maxMsgs ?? 0,
  };
}

/** Does `subject` match the NATS `pattern` (`*` one token, `>` one or more trailing tokens)? */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}
