/**
 * `MemoryStream`: the storage engine of `InMemoryTransport` (one stream's log, limits, dedupe
 * table and parked readers). Keeps invariants 1-3 and the storage half of 5 of the Transport
 * port (`transport.ts`): sequences come from a counter never reset (limits leave gaps, never
 * reuse); a `msgId` seen within `duplicateWindowMs` stores nothing and answers the original
 * sequence; reads yield matching messages from a sequence on, in order, once each, skipping
 * messages removed by limits. Limits are applied lazily on publish, read and info. The caller
 * (the transport) checks subjects and sizes before `append`.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { subjectMatches, type PubAck, type PublishOptions, type StoredMessage, type StreamConfig, type StreamInfo } from './transport.js';

/** @internal Decides whether a subject passes a filter. @example const all: Matcher = () => true; */
export type Matcher = (subject: string) => boolean;

/** @internal A parked `next`/`pull` call. @example stream.waiters.forEach((w) => w.wake()); */
export interface Waiter {
  readonly matches: Matcher;
  /** Resolves the parked call (idempotent). */
  wake(): void;
}

/**
 * Is `subject` a valid subject (or, with `wildcards`, a filter): dot-separated non-empty tokens
 * without whitespace, `*` a whole token, `>` only as the last token?
 *
 * @example isValidSubject('orders.*', true) // true; isValidSubject('orders.*', false) // false
 */
export function isValidSubject(subject: string, wildcards: boolean): boolean {
  if (subject.length === 0 || /\s/.test(subject)) return false;
  const tokens = subject.split('.');
  return tokens.every((t, i) =>
    t.length > 0 && (t === '>' ? wildcards && i === tokens.length - 1 : t !== '*' || wildcards));
}

/**
 * The publish options as NATS JetStream stores them: header values trimmed (as the NATS client
 * does). Throws `CONFIG` for what JetStream would refuse or treat specially: an empty msgId or
 * one with surrounding whitespace or a line break (the `Nats-Msg-Id` header), a header name
 * that is empty or has a character outside `!`..`~` or a `:`, a name starting with `Nats-`
 * (JetStream's own headers), a value with a line break.
 *
 * @example normalizePublishOptions({ msgId: 'm-1', headers: { trace: ' t1 ' } }) // { msgId: 'm-1', headers: { trace: 't1' } }
 */
export function normalizePublishOptions(options: PublishOptions): PublishOptions {
  const { msgId, headers } = options;
  if (msgId !== undefined && (msgId.length === 0 || msgId !== msgId.trim() || /[\r\n]/.test(msgId))) {
    throw new ConfigError('msgId', `must be non-empty, without surrounding whitespace or line breaks (got ${JSON.stringify(msgId)})`);
  }
  if (headers === undefined) return options;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!/^[!-9;-~]+$/.test(name)) throw new ConfigError('headers', `name ${JSON.stringify(name)} is empty or has a character NATS does not allow`);
    if (/^nats-/i.test(name)) throw new ConfigError('headers', `name "${name}" is reserved for JetStream (set msgId for Nats-Msg-Id)`);
    if (/[\r\n]/.test(value)) throw new ConfigError('headers', `value of "${name}" has a line break`);
    out[name] = value.trim();
  }
  const normalized: PublishOptions = { headers: out };
  if (msgId !== undefined) normalized.msgId = msgId;
  return normalized;
}

/** Could some subject match both patterns? @example patternsOverlap('a.>', 'a.b') // true */
export function patternsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < x.length && i < y.length; i++) {
    if (x[i] === '>' || y[i] === '>') return true;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
  return x.length === y.length;
}

function copyOf(m: StoredMessage): StoredMessage {
  return { ...m, data: new Uint8Array(m.data), headers: { ...m.headers } };
}

/**
 * A matcher for a (validated) filter subject; no filter matches everything.
 *
 * @example matcherFor('orders.*')('orders.eu') // true
 */
export function matcherFor(filter: string | undefined): Matcher {
  if (filter === undefined || filter === '>') return () => true;
  if (!/(^|\.)[*>](\.|$)/.test(filter)) return (subject) => subject === filter;
  return (subject) => subjectMatches(filter, subject);
}

/**
 * @internal One stream: its messages (an array ordered by sequence, trimmed at the front by
 * limits), its dedupe table, its durable consumers and its parked readers.
 *
 * @example
 * const stream = new MemoryStream(clock, resolveStreamConfig({ name: 'a', subjects: ['a.>'] }));
 * stream.append('a.x', bytes, {});
 */
/** `C`: what the transport keeps per durable consumer (the stream only holds them, by name). */
export class MemoryStream<C = unknown> {
  lastSeq = 0;
  bytes = 0;
  readonly waiters = new Set<Waiter>();
  readonly consumers = new Map<string, C>();
  private msgs: StoredMessage[] = [];
  /** Index of the oldest stored message in `msgs` (removal from the front is O(1)). */
  private head = 0;
  /** msgId -> original sequence and time, in insertion (= time) order. */
  private readonly ids = new Map<string, { seq: number; at: number }>();
  private readonly lastBySubject = new Map<string, number>();

  constructor(readonly clock: Clock, public config: Required<StreamConfig>) {}

  get name(): string {
    return this.config.name;
  }

  reconfigure(config: Required<StreamConfig>): void {
    this.config = config;
    this.expire();
  }

  /** The stream's state; the transport adds the consumers it knows of. */
  info(): Omit<StreamInfo, 'consumers'> {
    this.expire();
    const first = this.msgs[this.head];
    return {
      name: this.name, subjects: [...this.config.subjects], firstSeq: first ? first.seq : this.lastSeq + 1, lastSeq: this.lastSeq,
      messages: this.msgs.length - this.head, bytes: this.bytes,
    };
  }

  append(subject: string, data: Uint8Array, options: PublishOptions): PubAck {
    const now = this.clock.now();
    const { msgId } = options;
    if (msgId !== undefined) {
      for (const [id, seen] of this.ids) {
        if (now - seen.at < this.config.duplicateWindowMs) break;
        this.ids.delete(id);
      }
      const seen = this.ids.get(msgId);
      if (seen) return { stream: this.name, seq: seen.seq, duplicate: true };
    }
    const seq = ++this.lastSeq;
    const message: StoredMessage = {
      stream: this.name, subject, seq, data: new Uint8Array(data), headers: { ...options.headers }, timestampMs: now,
    };
    if (msgId !== undefined) {
      message.msgId = msgId;
      if (this.config.duplicateWindowMs > 0) this.ids.set(msgId, { seq, at: now });
    }
    this.msgs.push(message);
    this.bytes += message.data.byteLength;
    this.lastBySubject.set(subject, seq);
    this.expire();
    for (const waiter of this.waiters) if (waiter.matches(subject)) waiter.wake();
    return { stream: this.name, seq, duplicate: false };
  }

  /** Applies `maxAgeMs` and `maxMsgs`, removing the oldest messages. */
  expire(): void {
    const { maxAgeMs, maxMsgs } = this.config;
    const now = this.clock.now();
    for (let m = this.msgs[this.head]; m; m = this.msgs[this.head]) {
      const tooOld = maxAgeMs > 0 && now - m.timestampMs > maxAgeMs;
      if (!tooOld && !(maxMsgs > 0 && this.msgs.length - this.head > maxMsgs)) break;
      this.head++;
      this.bytes -= m.data.byteLength;
      if (this.lastBySubject.get(m.subject) === m.seq) this.lastBySubject.delete(m.subject);
    }
    if (this.head === this.msgs.length) {
      this.msgs = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.msgs.length) {
      this.msgs = this.msgs.slice(this.head);
      this.head = 0;
    }
  }

  lastSeqOf(subject: string): number {
    this.expire();
    return this.lastBySubject.get(subject) ?? 0;
  }

  has(seq: number): boolean {
    return this.msgs[this.lowerBound(seq)]?.seq === seq;
  }

  /** A copy of the message at `seq`, if stored. */
  get(seq: number): StoredMessage | undefined {
    this.expire();
    const m = this.msgs[this.lowerBound(seq)];
    return m?.seq === seq ? copyOf(m) : undefined;
  }

  /** Copies of up to `max` matching messages with seq >= `from`, and the sequence to continue from. */
  read(from: number, max: number, matches: Matcher): { messages: StoredMessage[]; next: number } {
    this.expire();
    const messages: StoredMessage[] = [];
    let next = from;
    for (let i = this.lowerBound(from); messages.length < max; i++) {
      const m = this.msgs[i];
      if (!m) break;
      next = m.seq + 1;
      if (matches(m.subject)) messages.push(copyOf(m));
    }
    return { messages, next };
  }

  /** Parks until a publish `matches`, `ms` pass on the clock, or something wakes the waiter. */
  wait(matches: Matcher, ms: number, also: Array<Set<Waiter>>): Promise<void> {
    const sets = [this.waiters, ...also];
    return new Promise<void>((resolve) => {
      let timer: TimerHandle;
      let armed = false;
      const waiter: Waiter = {
        matches,
        wake: () => {
          if (armed) this.clock.clearTimeout(timer);
          armed = false;
          for (const set of sets) set.delete(waiter);
          resolve();
        },
      };
      for (const set of sets) set.add(waiter);
      if (ms !== Infinity) {
        armed = true;
        timer = this.clock.setTimeout(() => {
          armed = false;
          waiter.wake();
        }, ms);
      }
    });
  }

  /** Index of the first message with seq >= `seq` (binary search). */
  private lowerBound(seq: number): number {
    let lo = this.head;
    let hi = this.msgs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.msgs[mid]?.seq ?? Infinity) < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

