/**
 * Server-told delays (`Retry-After`) and how a guard reads them off errors: an error (or one in
 * its `cause` chain) with a `retryAfterMs` number makes the next attempt wait at least that long.
 */
import { SystemClock } from '../core/clock.js';

/** Anything with `get(name)` like the fetch `Headers`. */
export interface HeadersLike {
  get(name: string): string | null;
}

/** What `retryAfterFrom` reads: a fetch `Response`, its `Headers`, a plain header record (`node:http`), or the value (a string, or a number of seconds). */
export type RetryAfterSource = { headers: HeadersLike } | HeadersLike | Record<string, string | string[] | number | undefined> | string | number;

const systemClock = new SystemClock();
const DELTA_SECONDS = /^\d+(?:\.\d+)?$/;

function headerValue(source: RetryAfterSource | null | undefined): string | undefined {
  if (source === null || source === undefined) return undefined;
  if (typeof source === 'string') return source;
  if (typeof source === 'number') return String(source);
  if (typeof source !== 'object') return undefined;
  if ('headers' in source && typeof (source.headers as Partial<HeadersLike> | undefined)?.get === 'function') {
    return (source.headers as HeadersLike).get('retry-after') ?? undefined;
  }
  if (typeof (source as Partial<HeadersLike>).get === 'function') return (source as HeadersLike).get('retry-after') ?? undefined;
  const record = source as Record<string, unknown>;
  const raw = record['retry-after'] ?? record['Retry-After'];
  const first: unknown = Array.isArray(raw) ? raw[0] : raw;
  return typeof first === 'string' || typeof first === 'number' ? String(first) : undefined;
}

/**
 * The wait a `Retry-After` header asks for, in ms: delta-seconds (`120`) or an HTTP date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`, measured from `nowMs`, never negative). `undefined` when
 * there is no header or it does not parse.
 *
 * @example
 * const res = await fetch(url, { signal });
 * if (res.status === 429 || res.status === 503) {
 *   throw Object.assign(new Error(`HTTP ${res.status}`), { retryAfterMs: retryAfterFrom(res) });
 * }
 */
export function retryAfterFrom(source: RetryAfterSource | null | undefined, nowMs: number = systemClock.now()): number | undefined {
  const value = headerValue(source)?.trim();
  if (value === undefined || value === '') return undefined;
  if (DELTA_SECONDS.test(value)) return Math.round(Number(value) * 1000);
  // An HTTP date names its day and month; Date.parse alone would read '-5' as a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** The `retryAfterMs` of an error or of the first error in its cause chain that has one. */
export function retryAfterOf(err: unknown): number | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    const ms = (current as { retryAfterMs?: unknown }).retryAfterMs;
    if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return ms;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
