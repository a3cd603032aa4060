/**
 * Dead letters: an input that may not or cannot be applied is published to the pipeline's
 * dead-letter stream with its reason, its error chain, the original headers and body, and the
 * checkpoint its actor was last restored from. It is never silently dropped.
 */
import { describeError, errorChain, ValidationError } from '../core/errors.js';
import type { StoredMessage } from '../transport/transport.js';

/** The body of a dead-letter message. */
export interface DeadLetter {
  stage: string;
  partition: number;
  /** Sequence of the input in its stream. */
  seq: number;
  subject: string;
  /** `undecodable`, `too-large`, `schema`, `unknown-event` or `crashed`. */
  reason: string;
  error: string;
  errorChain: Array<{ name: string; message: string; code?: string }>;
  headers: Record<string, string>;
  /** Original body as UTF-8 text, or base64 when it is not valid UTF-8. */
  body: string;
  bodyEncoding: 'utf8' | 'base64';
  /** `<stage>/<partition>@<seq>`: the checkpoint the actor state was restored from. */
  snapshotId: string;
  key?: string;
  type?: string;
}

const strict = new TextDecoder('utf-8', { fatal: true });

/** Builds the dead letter for `msg`, refused or crashed with `err`. */
export function deadLetterOf(
  msg: StoredMessage,
  err: unknown,
  ctx: { stage: string; partition: number; snapshotId: string; key?: string; type?: string },
): DeadLetter {
  let body: string;
  let bodyEncoding: 'utf8' | 'base64' = 'utf8';
  try {
    body = strict.decode(msg.data);
  } catch {
    body = Buffer.from(msg.data).toString('base64');
    bodyEncoding = 'base64';
  }
  const dl: DeadLetter = {
    stage: ctx.stage,
    partition: ctx.partition,
    seq: msg.seq,
    subject: msg.subject,
    reason: err instanceof ValidationError ? err.reason : 'crashed',
    error: describeError(err),
    errorChain: errorChain(err),
    headers: msg.headers,
    body,
    bodyEncoding,
    snapshotId: ctx.snapshotId,
  };
  if (ctx.key !== undefined) dl.key = ctx.key;
  if (ctx.type !== undefined) dl.type = ctx.type;
  return dl;
}
