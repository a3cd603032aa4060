/**
 * Dead letters: an input that may not or cannot be applied is published to the pipeline's
 * dead-letter stream with its reason, its error chain, the original headers and body, and the
 * checkpoint its actor was last restored from. It is never silently dropped.
 *
 * Invariants:
 *  1. A dead letter always fits in the log: the original body is carried up to `maxBodyBytes`
 *     (cut at a character boundary, `bodyTruncated: true`, `bodyBytes` the original size), and
 *     error texts are cut too. The original stays in its stream at `stream`/`seq` while the
 *     stream retains it.
 *  2. Every dead letter names why: `undecodable`, `too-large`, `schema`, `unknown-event` (refused
 *     before reaching the machine), `forged` (a `warden.` record its partition's owner did not
 *     write), `crashed` (it crashed its actor, or its actor could not be created), `unroutable`
 *     (an output of it could not be routed; its effect was rolled back) or `unpublishable` (an
 *     output the log refused for good, e.g. too large).
 */
import { describeError, errorChain, ValidationError } from '../core/errors.js';
import type { StoredMessage } from '../transport/transport.js';

/** Why an input (or an output) was dead-lettered (invariant 2). */
export type DeadLetterReason = ValidationError['reason'] | 'crashed' | 'unroutable' | 'unpublishable';

/** The body of a dead-letter message. */
export interface DeadLetter {
  stage: string;
  partition: number;
  /** Stream and sequence of the input (of the input that produced it, for an output). */
  stream: string;
  seq: number;
  subject: string;
  reason: DeadLetterReason;
  error: string;
  errorChain: Array<{ name: string; message: string; code?: string }>;
  headers: Record<string, string>;
  /** Original body as UTF-8 text, or base64 when it is not valid UTF-8; cut at `maxBodyBytes` (invariant 1). */
  body: string;
  bodyEncoding: 'utf8' | 'base64';
  /** Size of the original body in bytes. */
  bodyBytes: number;
  /** True when `body` holds only the start of the original. */
  bodyTruncated: boolean;
  /** `<stage>/<partition>@<seq>`: the checkpoint the actor state was restored from. */
  snapshotId: string;
  key?: string;
  type?: string;
  /** For `unpublishable`: the message ID of the output the log refused. */
  outputId?: string;
}

/** What a dead letter is built from besides the message and the error. */
export interface DeadLetterContext {
  stage: string;
  partition: number;
  snapshotId: string;
  key?: string;
  type?: string;
  reason?: DeadLetterReason;
  outputId?: string;
  /** @default 65_536 */
  maxBodyBytes?: number;
}

const strict = new TextDecoder('utf-8', { fatal: true });
const lenient = new TextDecoder('utf-8');
const MAX_TEXT = 4096;

function cutText(s: string, max = MAX_TEXT): string {
  return s.length <= max ? s : `${s.slice(0, max)}... (${s.length - max} more characters)`;
}

/** The first `max` bytes of UTF-8 `data` as text, not splitting a character. */
function utf8Prefix(data: Uint8Array, max: number): string {
  let end = Math.min(max, data.length);
  while (end > 0 && end < data.length && (data[end]! & 0xc0) === 0x80) end--; // back to a character start
  return lenient.decode(data.subarray(0, end));
}

/** Builds the dead letter for `msg`, refused or crashed with `err` (invariants 1 and 2). */
export function deadLetterOf(msg: StoredMessage, err: unknown, ctx: DeadLetterContext): DeadLetter {
  const max = ctx.maxBodyBytes ?? 65_536;
  const truncated = msg.data.length > max;
  let body: string;
  let bodyEncoding: 'utf8' | 'base64' = 'utf8';
  try {
    strict.decode(msg.data);
    body = truncated ? utf8Prefix(msg.data, max) : lenient.decode(msg.data);
  } catch {
    body = Buffer.from(truncated ? msg.data.subarray(0, max) : msg.data).toString('base64');
    bodyEncoding = 'base64';
  }
  const dl: DeadLetter = {
    stage: ctx.stage,
    partition: ctx.partition,
    stream: msg.stream,
    seq: msg.seq,
    subject: msg.subject,
    reason: ctx.reason ?? (err instanceof ValidationError ? err.reason : 'crashed'),
    error: cutText(describeError(err)),
    errorChain: errorChain(err).map((e) => ({ ...e, message: cutText(e.message, 1024) })),
    headers: msg.headers,
    body,
    bodyEncoding,
    bodyBytes: msg.data.length,
    bodyTruncated: truncated,
    snapshotId: ctx.snapshotId,
  };
  if (ctx.key !== undefined) dl.key = ctx.key;
  if (ctx.type !== undefined) dl.type = ctx.type;
  if (ctx.outputId !== undefined) dl.outputId = ctx.outputId;
  return dl;
}
