/**
 * The one place where NATS and JetStream failures become `WardenError`s, and where credentials
 * are scrubbed from anything that leaves the adapter (messages, details, events, log lines).
 *
 * Invariants:
 *  1. Every error the NATS adapter raises is a `WardenError` with a code; the driver's error is
 *     kept as `cause` (scrubbed: a copy with secrets replaced when its text contained one).
 *  2. No user name, password or token given to the transport, and no URL userinfo, appears in a
 *     message, a detail, an event or a log line.
 */
import { redactUrl } from '../../core/redact.js';
import { ConfigError, WardenError, type WardenErrorOptions } from '../../core/errors.js';

/**
 * JetStream API error codes (`err_code`) the adapter tells apart.
 *
 * @example if (body.err_code === JsErrCode.StreamNotFound) return undefined;
 */
export const JsErrCode = {
  ConsumerNotFound: 10014,
  JetStreamNotEnabled: 10039,
  MessageTooLarge: 10054,
  StreamNameInUse: 10058,
  StreamNotFound: 10059,
  SubjectsOverlap: 10065,
  /** "stream configuration ... invalid", "update can not change ...", "subjects overlap with jetstream api" (status 500). */
  StreamInvalidConfig: 10052,
  /** "replicas > 1 not supported in non-clustered mode" (status 500). */
  ReplicasNotSupported: 10074,
} as const;

/**
 * A JetStream API error body: `{ code, err_code, description }`.
 *
 * @example const body: JsApiErrorBody = { code: 404, err_code: 10059, description: 'stream not found' };
 */
export interface JsApiErrorBody {
  code: number;
  err_code?: number;
  description?: string;
}

/**
 * What an operation was doing when it failed: named in the message and the details.
 *
 * @example const ctx: NatsErrorContext = { op: 'streamInfo', stream: 'orders', redactor };
 */
export interface NatsErrorContext {
  /** Operation, e.g. `publish`, `ensureStream`. */
  op: string;
  stream?: string;
  subject?: string;
  consumer?: string;
  /** Scrubs secrets from text (see `Redactor`). */
  redactor?: Redactor;
}

const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^@/\s?#]+@/gi;
const BARE_USERINFO = /(^|[\s,[("'])([^@/\s:,[("']+(?::[^@/\s,]*)?)@(?=[A-Za-z0-9[.-]+(?::\d+)?\b)/g;

/**
 * Scrubs secrets from text: the userinfo of every URL in it, and each given secret value.
 *
 * @example
 * const redactor = new Redactor(['s3cret']);
 * redactor.text('login s3cret failed at nats://bob:pw@h:4222') // 'login *** failed at nats://***@h:4222'
 */
export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Array<string | undefined> = []) {
    // Longest first, so a secret containing another is replaced whole.
    this.secrets = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0).sort((a, b) => b.length - a.length);
  }

  /** `text` with URL userinfo and every known secret replaced by `***`. */
  text(text: string): string {
    let out = text.replace(USERINFO, '$1***@').replace(BARE_USERINFO, '$1***@');
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }

  /** Does `text` contain something `text()` would change? */
  leaks(text: string): boolean {
    return this.text(text) !== text;
  }

  /**
   * `err` itself when nothing in its chain leaks a secret; otherwise a copy of the chain (same
   * names, codes and shapes) with messages and stacks scrubbed.
   */
  error(err: unknown, depth = 0): unknown {
    if (!(err instanceof Error) || depth > 8) return typeof err === 'string' ? this.text(err) : err;
    const cause = this.error(err.cause, depth + 1);
    if (!this.leaks(err.message) && !this.leaks(err.stack ?? '') && cause === err.cause) return err;
    const copy = new Error(this.text(err.message), cause === undefined ? undefined : { cause });
    copy.name = err.name;
    copy.stack = this.text(err.stack ?? '');
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) Object.defineProperty(copy, 'code', { value: code, enumerable: true });
    return copy;
  }
}

const plain = new Redactor();

function detailsOf(ctx: NatsErrorContext, extra: Record<string, unknown>): Record<string, unknown> {
  const details: Record<string, unknown> = { op: ctx.op };
  if (ctx.stream !== undefined) details.stream = ctx.stream;
  if (ctx.subject !== undefined) details.subject = ctx.subject;
  if (ctx.consumer !== undefined) details.consumer = ctx.consumer;
  return { ...details, ...extra };
}

function where(ctx: NatsErrorContext): string {
  const parts = [ctx.stream !== undefined ? `stream "${ctx.stream}"` : '', ctx.consumer !== undefined ? `consumer "${ctx.consumer}"` : '',
    ctx.subject !== undefined ? `subject "${ctx.subject}"` : ''].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/**
 * A JetStream API error body (`{ code, err_code, description }`, from an API reply or a PubAck)
 * as a `WardenError`.
 *
 * @example
 * translateApiError({ code: 400, err_code: 10054, description: 'message size exceeds maximum allowed' }, { op: 'publish' })
 * // WardenError MESSAGE_TOO_LARGE
 */
export function translateApiError(body: JsApiErrorBody, ctx: NatsErrorContext, cause?: unknown): WardenError {
  const r = ctx.redactor ?? plain;
  const description = r.text(body.description ?? 'unknown JetStream error');
  const extra = { status: body.code, errCode: body.err_code, description };
  const message = `${ctx.op} failed${where(ctx)}: ${description}`;
  const options = (nonRetryable: boolean): WardenErrorOptions => {
    const o: WardenErrorOptions = { nonRetryable, details: detailsOf(ctx, extra) };
    if (cause !== undefined) o.cause = r.error(cause);
    return o;
  };
  switch (body.err_code) {
    case JsErrCode.StreamNotFound:
    case JsErrCode.ConsumerNotFound:
      return new WardenError('STREAM_NOT_FOUND', message, options(false));
    case JsErrCode.MessageTooLarge:
      return new WardenError('MESSAGE_TOO_LARGE', message, options(true));
    case JsErrCode.StreamNameInUse:
      return new WardenError('STREAM_EXISTS', message, options(true));
    case JsErrCode.SubjectsOverlap:
      return new ConfigError('stream.subjects', `${description}${where(ctx)}`, options(true));
    case JsErrCode.StreamInvalidConfig:
    case JsErrCode.ReplicasNotSupported:
      return new ConfigError(ctx.op, `rejected by JetStream${where(ctx)}: ${description}`, options(true));
    case JsErrCode.JetStreamNotEnabled:
      return new ConfigError('nats', `${description}: the server or account has no JetStream`, options(true));
    default:
      break;
  }
  if (body.code === 400) return new ConfigError(ctx.op, `rejected by JetStream${where(ctx)}: ${description}`, options(true));
  if (body.code === 404) return new WardenError('STREAM_NOT_FOUND', message, options(false));
  if (body.code === 408 || body.code === 503) return new WardenError('TIMEOUT', message, options(false));
  return new WardenError('TRANSPORT_CLOSED', message, options(false));
}

/**
 * Any failure from the NATS client or JetStream as a `WardenError` (invariant 1). A
 * `WardenError` passes through unchanged.
 *
 * | driver error | code |
 * |---|---|
 * | JetStream API error | see `translateApiError`: stream/consumer not found `STREAM_NOT_FOUND`; too large `MESSAGE_TOO_LARGE`; name in use `STREAM_EXISTS`; bad config, overlap, status 400 `CONFIG`; 408/503 `TIMEOUT` |
 * | `ClosedConnectionError`, `DrainingConnectionError` | `TRANSPORT_CLOSED` (non-retryable) |
 * | `ConnectionError`, `ProtocolError`, anything else | `TRANSPORT_CLOSED` (retryable) |
 * | `TimeoutError`, `NoRespondersError` on an API request | `TIMEOUT` |
 * | `max_payload` exceeded | `MESSAGE_TOO_LARGE` |
 * | bad argument, subject or name; authorization or permission | `CONFIG` |
 *
 * @example
 * try { await jsm.streams.info(name) } catch (err) { throw toWardenError(err, { op: 'streamInfo', stream: name }) }
 */
export function toWardenError(err: unknown, ctx: NatsErrorContext): WardenError {
  if (err instanceof WardenError) return err;
  const r = ctx.redactor ?? plain;
  const cause = r.error(err);
  const name = err instanceof Error ? err.name : typeof err;
  const text = r.text(err instanceof Error ? err.message : String(err));
  const apiError = apiErrorOf(err);
  if (apiError) return translateApiError(apiError, ctx, err);
  const message = `${ctx.op} failed${where(ctx)}: ${text}`;
  const opts = (nonRetryable: boolean, extra: Record<string, unknown> = {}): { cause: unknown; nonRetryable: boolean; details: Record<string, unknown> } =>
    ({ cause, nonRetryable, details: detailsOf(ctx, { natsError: name, ...extra }) });
  switch (name) {
    case 'ClosedConnectionError':
    case 'DrainingConnectionError':
      return new WardenError('TRANSPORT_CLOSED', message, opts(true));
    case 'TimeoutError':
    case 'NoRespondersError':
      return new WardenError('TIMEOUT', message, opts(false));
    case 'InvalidArgumentError':
      if (/max_payload/i.test(text)) return new WardenError('MESSAGE_TOO_LARGE', message, opts(true));
      return new ConfigError(ctx.op, `rejected by the NATS client${where(ctx)}: ${text}`, opts(true));
    case 'InvalidSubjectError':
    case 'InvalidNameError':
    case 'InvalidOperationError':
      return new ConfigError(ctx.op, `rejected by the NATS client${where(ctx)}: ${text}`, opts(true));
    case 'AuthorizationError':
    case 'UserAuthenticationExpiredError':
    case 'PermissionViolationError':
      return new ConfigError('nats.credentials', `${ctx.op} was refused by the server${where(ctx)}: ${text}`, opts(true));
    case 'JetStreamNotEnabled':
      return new ConfigError('nats', `${text}: the server or account has no JetStream`, opts(true));
    default:
      return new WardenError('TRANSPORT_CLOSED', message, opts(false));
  }
}

/** The JetStream API error body carried by a driver error, if any. */
function apiErrorOf(err: unknown): JsApiErrorBody | undefined {
  if (!(err instanceof Error)) return undefined;
  const apiError = (err as { apiError?: unknown }).apiError;
  if (typeof apiError !== 'function') return undefined;
  const body = (apiError as () => unknown).call(err);
  if (typeof body !== 'object' || body === null || typeof (body as { code?: unknown }).code !== 'number') return undefined;
  return body as JsApiErrorBody;
}

export { redactUrl };
