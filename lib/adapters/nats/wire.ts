/**
 * Byte-level helpers of the hot paths (publish, PubAck, read): a slab allocator for small
 * copies, the encoding of a publish's header block, and readers of the client's received
 * bytes. They exist because per-message allocations (an `ArrayBuffer` per copy, a `MsgHdrs`
 * per publish, decoded strings per PubAck) cost more than the rest of the path.
 *
 * Invariants:
 *  1. A slab region handed out is never handed out again; a copy may share its `.buffer` with
 *     other copies (as Node's pooled Buffers do) but its own bytes are never written again, and
 *     a slab holds nothing but zeros and copied message bytes.
 *  2. The client's internals (`MsgImpl._msg`, `_rdata`) are only read after a run-time shape
 *     check; without them every helper falls back to the public API with the same result.
 *  3. Everything here is synchronous and keeps no reference to the caller's buffers.
 */
import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { ConfigError } from '../../core/errors.js';
import type { PublishOptions } from '../../transport/transport.js';

/** Bytes of a slab that small copies are cut from. */
const SLAB_BYTES = 64 * 1024;
/** Copies up to this size share slabs; larger ones get their own buffer. @example n > POOLED_MAX ? own : pooled */
export const POOLED_MAX = 2 * 1024;

/**
 * A new, zero-filled slab. (Not `Buffer.allocUnsafeSlow`: a copy's `.buffer` exposes its whole
 * slab, which must never show stale process memory.)
 */
function newSlab(): ArrayBuffer {
  return new ArrayBuffer(SLAB_BYTES);
}

let slab = newSlab();
let slabBytes = new Uint8Array(slab);
let slabUsed = 0;

/** Reserves `n` bytes (n <= POOLED_MAX) of the current slab; returns their offset in `slab`. */
function reserve(n: number): number {
  if (slabUsed + n > SLAB_BYTES) {
    slab = newSlab();
    slabBytes = new Uint8Array(slab);
    slabUsed = 0;
  }
  const at = slabUsed;
  slabUsed += (n + 7) & ~7;
  return at;
}

/**
 * A copy of `src` as a plain `Uint8Array` (invariant 1): small copies are views cut from shared
 * 64 KiB slabs; a separate `ArrayBuffer` per message costs microseconds.
 *
 * @example
 * const mine = copyBytes(msg.data); // msg.data may be reused by the driver
 */
export function copyBytes(src: Uint8Array): Uint8Array {
  const n = src.byteLength;
  if (n > POOLED_MAX) return new Uint8Array(src);
  const at = reserve(n);
  slabBytes.set(src, at);
  return new Uint8Array(slab, at, n);
}

/**
 * Where a publish's bytes are: header block then body, in one buffer (`encodePublish`).
 *
 * @example const body = new Uint8Array(p.buf, p.bodyAt, p.bodyLength);
 */
export interface PublishBytes {
  buf: ArrayBuffer;
  /** Offset of the header block (its length is `bodyAt - headerAt`; 0 = no headers). */
  headerAt: number;
  bodyAt: number;
  bodyLength: number;
}

const HEADER_NAME = /^[!-9;-~]+$/;
const RESERVED = /^nats-/i;
const LINE_BREAK = /[\r\n]/;
const MSG_ID_LINE = 'Nats-Msg-Id: ';
const PREFIX = 'NATS/1.0\r\n';

/** Throws `CONFIG` for headers and a msgId JetStream would refuse or treat specially. */
function checkHeaders(options: PublishOptions): void {
  const { msgId, headers } = options;
  if (headers !== undefined) {
    for (const name of Object.keys(headers)) {
      if (!HEADER_NAME.test(name)) throw new ConfigError('headers', `name ${JSON.stringify(name)} is empty or has a character NATS does not allow`);
      if (RESERVED.test(name)) throw new ConfigError('headers', `name "${name}" is reserved for JetStream (set msgId for Nats-Msg-Id)`);
      if (LINE_BREAK.test(headers[name] ?? '')) throw new ConfigError('headers', `value of "${name}" has a line break`);
    }
  }
  if (msgId !== undefined && (msgId.length === 0 || msgId !== msgId.trim() || LINE_BREAK.test(msgId))) {
    throw new ConfigError('msgId', `must be non-empty, without surrounding whitespace or line breaks (got ${JSON.stringify(msgId)})`);
  }
}

/** Writes `s` at `at` if it is all ASCII; returns the end, or -1 (nothing to rely on) if not. */
function writeAscii(target: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return -1;
    target[at + i] = c;
  }
  return at + s.length;
}

/**
 * Validates a publish's headers and msgId and writes its header block (as the client's
 * `MsgHdrsImpl` encodes it: `NATS/1.0\r\n`, user headers with trimmed values, `Nats-Msg-Id`,
 * `\r\n`) and a copy of its body into one buffer, recording where in `out`. Throws `CONFIG`
 * by the same rules as the in-memory twin: an empty msgId or one with surrounding whitespace or
 * a line break, a header name that is empty or has a character outside `!`..`~` or a `:`, a
 * name starting with `Nats-` (JetStream's own), a value with a line break.
 *
 * @example
 * const out = { buf: new ArrayBuffer(0), headerAt: 0, bodyAt: 0, bodyLength: 0 };
 * encodePublish(body, { msgId: 'o-1' }, out);
 * const headers = new EncodedHeaders();
 * headers.block = new Uint8Array(out.buf, out.headerAt, out.bodyAt - out.headerAt);
 * nc.publish(subject, new Uint8Array(out.buf, out.bodyAt, out.bodyLength), { headers: headers.asMsgHdrs() });
 */
export function encodePublish(data: Uint8Array, options: PublishOptions, out: PublishBytes): void {
  const { msgId, headers } = options;
  if (headers === undefined && msgId !== undefined && encodeMsgIdOnly(data, msgId, out)) return;
  checkHeaders(options);
  let text = '';
  if (headers !== undefined) for (const name of Object.keys(headers)) text += `${name}: ${(headers[name] ?? '').trim()}\r\n`;
  if (msgId !== undefined) text += `${MSG_ID_LINE}${msgId}\r\n`;
  const hasHeaders = text.length > 0;
  // Upper bound of the block: UTF-8 takes at most 3 bytes per UTF-16 unit.
  const headerMax = hasHeaders ? PREFIX.length + text.length * 3 + 2 : 0;
  const total = headerMax + data.byteLength;
  let buf: ArrayBuffer;
  let bytes: Uint8Array;
  let at: number;
  if (total > POOLED_MAX) {
    buf = new ArrayBuffer(total);
    bytes = new Uint8Array(buf);
    at = 0;
  } else {
    at = reserve(total);
    buf = slab;
    bytes = slabBytes;
  }
  out.buf = buf;
  out.headerAt = at;
  let end = at;
  if (hasHeaders) {
    end = writeAscii(bytes, at, PREFIX);
    const ascii = writeAscii(bytes, end, text);
    end = ascii !== -1 ? ascii : end + new TextEncoder().encodeInto(text, new Uint8Array(buf, end, text.length * 3)).written;
    bytes[end++] = 13;
    bytes[end++] = 10;
  }
  bytes.set(data, end);
  out.bodyAt = end;
  out.bodyLength = data.byteLength;
}

/** ASCII whitespace as `String.prototype.trim` sees it. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/**
 * `encodePublish` for the common case, a msgId and no other header, when the msgId is ASCII:
 * no intermediate string. Returns false (nothing reserved that matters) for a non-ASCII msgId;
 * throws `CONFIG` for a bad one.
 */
function encodeMsgIdOnly(data: Uint8Array, msgId: string, out: PublishBytes): boolean {
  const n = msgId.length;
  if (n === 0 || isSpace(msgId.charCodeAt(0)) || isSpace(msgId.charCodeAt(n - 1))) return false; // the general path says why
  const total = MSG_ID_ONLY.length + n + 4 + data.byteLength;
  if (total > POOLED_MAX) return false;
  const at = reserve(total);
  const bytes = slabBytes;
  bytes.set(MSG_ID_ONLY, at);
  let end = at + MSG_ID_ONLY.length;
  for (let i = 0; i < n; i++) {
    const c = msgId.charCodeAt(i);
    if (c > 0x7f || c === 10 || c === 13) return false;
    bytes[end++] = c;
  }
  bytes[end++] = 13;
  bytes[end++] = 10;
  bytes[end++] = 13;
  bytes[end++] = 10;
  bytes.set(data, end);
  out.buf = slab;
  out.headerAt = at;
  out.bodyAt = end;
  out.bodyLength = data.byteLength;
  return true;
}

/**
 * Header bytes already encoded, in the shape the client's `publish` takes (it only calls
 * `encode()` on the headers it is given, synchronously, so one instance can be reused).
 *
 * @example
 * const hdrs = new EncodedHeaders();
 * hdrs.block = block; // from encodePublish
 * nc.publish(subject, body, { headers: hdrs.asMsgHdrs() });
 */
export class EncodedHeaders {
  block: Uint8Array = new Uint8Array(0);
  encode(): Uint8Array {
    return this.block;
  }
  asMsgHdrs(): MsgHdrs {
    return this as unknown as MsgHdrs;
  }
}

/**
 * The client's `MsgImpl` fields the hot paths read: raw bytes, header length, subject bytes.
 *
 * @example const w = wireOf(msg); if (w) headerBytes = w._rdata.subarray(0, w._msg.hdr);
 */
export interface WireMsg {
  _msg: { hdr: number; subject: Uint8Array };
  _rdata: Uint8Array;
}

/** `msg` as a `WireMsg` if it has that shape (invariant 2). @example wireOf(msg)?._msg.hdr */
export function wireOf(msg: unknown): WireMsg | undefined {
  const w = msg as Partial<WireMsg> | undefined;
  const m = w?._msg;
  return m && typeof m.hdr === 'number' && m.subject instanceof Uint8Array && w._rdata instanceof Uint8Array ? (w as WireMsg) : undefined;
}

/** Bytes `[from, to)` as a string if all are printable ASCII (no CR/LF, no UTF-8), else undefined. */
function asciiString(bytes: Uint8Array, from: number, to: number): string | undefined {
  for (let i = from; i < to; i++) {
    const c = bytes[i]!;
    if (c > 0x7e || c < 0x20) return undefined;
  }
  if (bytes instanceof Buffer) return (bytes as unknown as { latin1Slice(start: number, end: number): string }).latin1Slice(from, to);
  return String.fromCharCode(...bytes.subarray(from, to));
}

const decoder = new TextDecoder();

/**
 * Decodes subjects, reusing the previous string when the bytes are equal (subjects repeat).
 *
 * @example const subjects = new SubjectCache(); subjects.of(bytes) // 'orders.eu'
 */
export class SubjectCache {
  private bytes: Uint8Array | undefined;
  private text = '';

  of(bytes: Uint8Array): string {
    const prev = this.bytes;
    if (prev?.length === bytes.length) {
      let same = true;
      for (let i = 0; i < bytes.length; i++) {
        if (prev[i] !== bytes[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.text;
    }
    this.bytes = bytes.slice();
    this.text = decoder.decode(bytes);
    return this.text;
  }
}

const MSG_ID_ONLY = new TextEncoder().encode(`${PREFIX}${MSG_ID_LINE}`);

/**
 * The msgId of a header block (bytes `[0, end)`) that holds only a printable-ASCII
 * `Nats-Msg-Id`, else undefined (then the block needs a full parse).
 *
 * @example msgIdOnly(block, block.length) // 'o-1'
 */
export function msgIdOnly(block: Uint8Array, end: number): string | undefined {
  const p = MSG_ID_ONLY.length;
  if (end < p + 4 || block[end - 1] !== 10 || block[end - 2] !== 13 || block[end - 3] !== 10 || block[end - 4] !== 13) return undefined;
  for (let i = 0; i < p; i++) if (block[i] !== MSG_ID_ONLY[i]) return undefined;
  const id = asciiString(block, p, end - 4);
  // Values are trimmed on decode (as the client does); ours never need it.
  return id !== undefined && id.length > 0 && (isSpace(id.charCodeAt(0)) || isSpace(id.charCodeAt(id.length - 1))) ? id.trim() : id;
}

/** A PubAck read from its bytes. @example const { seq, duplicate } = parsePubAck(bytes, cache)!; */
export interface ParsedAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

const STREAM_KEY = new TextEncoder().encode('{"stream":"');
const SEQ_KEY = new TextEncoder().encode('"seq":');
const ERROR_KEY = new TextEncoder().encode('"error"');
const DUPLICATE_KEY = new TextEncoder().encode('"duplicate":');

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const last = hay.length - needle.length;
  outer: for (let i = from; i <= last; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Reads a PubAck (`{"stream":"S", "seq":N[,"duplicate": true]...}`) straight from its bytes;
 * undefined for anything else (an error reply, another layout), which then goes through
 * `JSON.parse`. `streams` keeps the stream name's string.
 *
 * @example parsePubAck(new TextEncoder().encode('{"stream":"S", "seq":7}'), cache) // { stream: 'S', seq: 7, duplicate: false }
 */
export function parsePubAck(bytes: Uint8Array, streams: SubjectCache): ParsedAck | undefined {
  for (let i = 0; i < STREAM_KEY.length; i++) if (bytes[i] !== STREAM_KEY[i]) return undefined;
  const nameStart = STREAM_KEY.length;
  let nameEnd = nameStart;
  while (nameEnd < bytes.length && bytes[nameEnd] !== 34 && bytes[nameEnd] !== 92) nameEnd++;
  if (bytes[nameEnd] !== 34) return undefined; // a backslash or no end: let JSON decide
  // The server writes `{"stream":"S", "seq":N}` (then `,"duplicate": true` or `,"domain":...`).
  let seqAt = bytes[nameEnd + 1] === 44 && bytes[nameEnd + 2] === 32 ? nameEnd + 3 : -1;
  for (let k = 0; seqAt !== -1 && k < SEQ_KEY.length; k++) if (bytes[seqAt + k] !== SEQ_KEY[k]) seqAt = -1;
  if (seqAt === -1) seqAt = indexOfBytes(bytes, SEQ_KEY, nameEnd);
  if (seqAt === -1) return undefined;
  let i = seqAt + SEQ_KEY.length;
  while (bytes[i] === 32) i++;
  let seq = 0;
  let digits = 0;
  for (; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
    digits++;
  }
  if (digits === 0 || digits > 15) return undefined;
  const name = bytes.subarray(nameStart, nameEnd);
  if (i === bytes.length - 1 && bytes[i] === 125) return { stream: streams.of(name), seq, duplicate: false }; // `}`: nothing more
  if (indexOfBytes(bytes, ERROR_KEY, nameEnd) !== -1) return undefined;
  let duplicate = false;
  let d = indexOfBytes(bytes, DUPLICATE_KEY, nameEnd);
  if (d !== -1) {
    d += DUPLICATE_KEY.length;
    while (bytes[d] === 32) d++;
    if (bytes[d] === 116) duplicate = true; // t(rue)
    else if (bytes[d] !== 102) return undefined; // neither true nor false: let JSON decide
  }
  return { stream: streams.of(name), seq, duplicate };
}

/**
 * The reply token of a PubAck: the decimal after `prefix` in its subject, read from the wire
 * bytes when possible; -1 if there is none.
 *
 * @example replyToken(msg, '_INBOX.abc.') // 42
 */
export function replyToken(msg: Msg, prefixLength: number): number {
  const wire = wireOf(msg);
  if (!wire) {
    const n = Number(msg.subject.slice(prefixLength));
    return Number.isInteger(n) && n >= 0 ? n : -1;
  }
  const s = wire._msg.subject;
  if (s.length <= prefixLength) return -1;
  let n = 0;
  for (let i = prefixLength; i < s.length; i++) {
    const c = s[i]!;
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

/**
 * The body of a received message without the client's per-access view (the public `data`
 * getter makes one each time), or the getter's when the internals are not there.
 *
 * @example if (bodyOf(msg).length === 0) handleStatus(msg);
 */
export function bodyOf(msg: Msg): Uint8Array {
  const wire = wireOf(msg);
  if (!wire) return msg.data;
  const hdr = wire._msg.hdr;
  return hdr > 0 ? wire._rdata.subarray(hdr) : wire._rdata;
}
