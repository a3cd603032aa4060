/**
 * Conversions between NATS messages and the Transport port's shapes, and the subject and
 * option checks the in-memory twin also makes (so both reject the same inputs with `CONFIG`).
 * Pure functions; no I/O.
 */
import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { ConfigError } from '../../core/errors.js';
import type { StoredMessage } from '../../transport/transport.js';
import * as wire from './wire.js';

// Hot-path functions bound once: a module namespace access per call costs a getter under tsx.
const { copyBytes, msgIdOnly, SubjectCache, wireOf } = wire;

/**
 * The JetStream header carrying a publish's deduplication ID.
 *
 * @example msg.headers?.get(MSG_ID_HEADER) // 'o-1'
 */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

const INTERNAL_HEADER = /^nats-/i;

/**
 * The user headers of a stored message as a plain record, without JetStream's own `Nats-*`
 * headers; `msgId` is the `Nats-Msg-Id` header. A header with several values is joined by `,`.
 *
 * @example
 * const { headers, msgId } = splitHeaders(msg.headers); // { headers: { trace: 't1' }, msgId: 'o-1' }
 */
export function splitHeaders(h: MsgHdrs | undefined): { headers: Record<string, string>; msgId: string | undefined } {
  const headers: Record<string, string> = {};
  let msgId: string | undefined;
  if (!h) return { headers, msgId };
  for (const [key, values] of h) {
    if (INTERNAL_HEADER.test(key)) {
      if (key.toLowerCase() === 'nats-msg-id') msgId = values[0];
      continue;
    }
    headers[key] = values.length === 1 ? (values[0] ?? '') : values.join(',');
  }
  return { headers, msgId };
}

const decoder = new TextDecoder();

/**
 * `splitHeaders` straight from the wire form of a header block (`NATS/1.0\r\nKey: value\r\n...`),
 * parsed as the client's `MsgHdrsImpl.decode` does (first line skipped, a line split at its first
 * `:`, values trimmed) without building its `MsgHdrs` (the read path's hot spot).
 *
 * @example
 * parseHeaderBlock(new TextEncoder().encode('NATS/1.0\r\nNats-Msg-Id: o-1\r\ntrace: t1\r\n\r\n'))
 * // { headers: { trace: 't1' }, msgId: 'o-1' }
 */
export function parseHeaderBlock(block: Uint8Array): { headers: Record<string, string>; msgId: string | undefined } {
  const text = decoder.decode(block);
  const headers: Record<string, string> = {};
  let msgId: string | undefined;
  let i = text.indexOf('\r\n');
  if (i === -1) return { headers, msgId };
  i += 2;
  while (i < text.length) {
    let end = text.indexOf('\r\n', i);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', i);
    if (colon !== -1 && colon < end) {
      const key = text.slice(i, colon);
      const value = text.slice(colon + 1, end).trim();
      if (INTERNAL_HEADER.test(key)) {
        if (msgId === undefined && key.length === 11 && key.toLowerCase() === 'nats-msg-id') msgId = value;
      } else {
        const seen = headers[key];
        headers[key] = seen === undefined ? value : `${seen},${value}`;
      }
    }
    i = end + 2;
  }
  return { headers, msgId };
}

/**
 * A `StoredMessage` with its own copy of the bytes (the driver may reuse its buffers).
 *
 * @example
 * const m = storedMessage('orders', 'orders.eu', 7, stored.data, stored.header, stored.time.getTime());
 */
export function storedMessage(
  stream: string, subject: string, seq: number, data: Uint8Array, h: MsgHdrs | undefined, timestampMs: number,
): StoredMessage {
  const { headers, msgId } = splitHeaders(h);
  const message: StoredMessage = { stream, subject, seq, data: copyBytes(data), headers, timestampMs };
  if (msgId !== undefined) message.msgId = msgId;
  return message;
}

const subjects = new SubjectCache();

/**
 * `storedMessage` of a delivered driver message (`Msg`). When the client's `MsgImpl` fields are
 * there (checked at run time), it works on the wire bytes: the subject string is reused from
 * the previous delivery when equal, a header block holding only the msgId is read without
 * decoding, others go through `parseHeaderBlock`, and the body is copied straight from the
 * receive buffer. Otherwise it uses the public getters. Same result either way.
 *
 * @example
 * const m = storedMessageOf('orders', 7, jsMsg.msg, info.timestampMs);
 */
export function storedMessageOf(stream: string, seq: number, msg: Msg, timestampMs: number): StoredMessage {
  const w = wireOf(msg);
  if (!w) return storedMessage(stream, msg.subject, seq, msg.data, msg.headers, timestampMs);
  const rdata = w._rdata;
  const hdr = w._msg.hdr;
  let headers: Record<string, string> = {};
  let msgId: string | undefined;
  if (hdr > 0) {
    msgId = msgIdOnly(rdata, hdr);
    if (msgId === undefined) ({ headers, msgId } = parseHeaderBlock(rdata.subarray(0, hdr)));
  }
  const start = hdr > 0 ? hdr : 0;
  const body = copyBytes(new Uint8Array(rdata.buffer, rdata.byteOffset + start, rdata.byteLength - start));
  const message: StoredMessage = { stream, subject: subjects.of(w._msg.subject), seq, data: body, headers, timestampMs };
  if (msgId !== undefined) message.msgId = msgId;
  return message;
}

/**
 * What the reply subject of a JetStream delivery tells.
 *
 * @example const { streamSeq, deliveryCount } = parseAckReply(msg.reply)!;
 */
export interface AckReplyInfo {
  stream: string;
  consumer: string;
  deliveryCount: number;
  streamSeq: number;
  timestampMs: number;
  /** Messages left for the consumer after this one, when it was delivered. */
  pending: number;
}

/**
 * Parses a delivery's reply subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`
 * (or the 12-token form with domain and account hash). Undefined if it is not one.
 *
 * @example
 * parseAckReply('$JS.ACK.S.c.2.14.20.1700000000000000000.3')?.deliveryCount // 2
 */
export function parseAckReply(reply: string | undefined): AckReplyInfo | undefined {
  if (reply === undefined || !reply.startsWith('$JS.ACK.')) return undefined;
  const t = reply.split('.');
  const base = t.length === 9 ? 0 : 2;
  if (t.length < 9 + base) return undefined;
  const num = (i: number): number => Number(t[base + i]);
  const info: AckReplyInfo = {
    stream: t[base + 2] ?? '', consumer: t[base + 3] ?? '', deliveryCount: num(4), streamSeq: num(5),
    timestampMs: Math.floor(num(7) / 1e6), pending: num(8),
  };
  return Number.isFinite(info.streamSeq) && Number.isFinite(info.deliveryCount) ? info : undefined;
}

/**
 * Is `subject` a valid subject (or, with `wildcards`, a filter): dot-separated non-empty tokens
 * without whitespace, `*` a whole token, `>` only as the last token? (Same rule as the in-memory twin.)
 *
 * @example isValidSubject('orders.*', true) // true; isValidSubject('orders.*', false) // false
 */
export function isValidSubject(subject: string, wildcards: boolean): boolean {
  if (subject.length === 0 || /\s/.test(subject)) return false;
  const tokens = subject.split('.');
  return tokens.every((t, i) =>
    t.length > 0 && (t === '>' ? wildcards && i === tokens.length - 1 : t !== '*' || wildcards));
}

let lastValidSubject = '';

/**
 * Throws `CONFIG` for a publish subject that is empty, malformed or has wildcards.
 *
 * @example checkPublishSubject('orders.*') // throws ConfigError
 */
export function checkPublishSubject(subject: string): void {
  if (subject === lastValidSubject) return; // publishes repeat subjects
  // Fast path: the common subject has no wildcard, space or empty token.
  if (subject.length === 0 || /[*>\s]|\.\.|^\.|\.$/.test(subject)) {
    if (!isValidSubject(subject, false)) throw new ConfigError('subject', `is not a valid publish subject (got "${subject}")`);
  }
  lastValidSubject = subject;
}

/**
 * Throws `CONFIG` for a bad filter subject.
 *
 * @example checkFilter('orders..eu') // throws ConfigError
 */
export function checkFilter(filter: string | undefined, field = 'filterSubject'): void {
  if (filter !== undefined && !isValidSubject(filter, true)) {
    throw new ConfigError(field, `is not a valid subject filter (got "${filter}")`);
  }
}

/**
 * Throws `CONFIG` unless `max` is an integer >= 1.
 *
 * @example checkMax(0) // throws ConfigError
 */
export function checkMax(max: number): void {
  if (!Number.isInteger(max) || max < 1) throw new ConfigError('max', `must be an integer >= 1 (got ${max})`);
}

/**
 * Stream and consumer names: letters, digits, `-` and `_` (as in the in-memory twin).
 *
 * @example NAME.test('orders-v2') // true
 */
export const NAME = /^[A-Za-z0-9_-]+$/;
