/**
 * Options of `KvBreakerStateStore` (with their defaults) and the mapping of breaker names to KV
 * keys. No I/O.
 *
 * Invariants:
 *  1. `breakerKey` is injective and total over the names `checkBreakerName` accepts; its keys
 *     hold only `[-/=A-Za-z0-9_]`, never a `.` (one subject token) and never start with `_`.
 *  2. Every option is validated once, at construction; a bad value is a `ConfigError` naming
 *     the field, and the connection options are resolved by the transport's `resolveOptions`.
 */
import { StorageType } from '@nats-io/jetstream';
import { SystemClock, type Clock } from '../../core/clock.js';
import { ConfigError, type WardenError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { checkBreakerName } from '../../resilience/breaker-state-codec.js';
import type { JetStreamTransportOptions } from './options.js';

/** The bucket used when none is given. @example await KvBreakerStateStore.connect({ bucket: DEFAULT_BREAKER_BUCKET }) */
export const DEFAULT_BREAKER_BUCKET = 'warden-breakers';

const KEPT = /^[A-Za-z0-9_/-]$/;
const utf8 = new TextEncoder();

/**
 * The KV key of a breaker name. Letters, digits, `_`, `-` and `/` are kept; every other character
 * (`.`, `:`, `=`, spaces, non-ASCII...) and a leading `_` (`_kv...` keys are reserved) become
 * `=XX` per UTF-8 byte, upper-case hex. The mapping is injective (each key decodes back to one
 * name), never yields `.` (so one key is one subject token) and at most 9 characters per name
 * character. Throws `ConfigError` (`breaker.name`) for names no key can stand for: empty, longer
 * than 256 characters, or holding a lone surrogate.
 *
 * @example
 * breakerKey('payments-api')       // 'payments-api'
 * breakerKey('db.orders:eu')       // 'db=2Eorders=3Aeu'
 * breakerKey('_kv')                // '=5Fkv'
 * breakerKey('café')               // 'caf=C3=A9'
 */
export function breakerKey(name: string): string {
  checkBreakerName(name);
  let key = '';
  for (const ch of name) {
    if (KEPT.test(ch) && !(key === '' && ch === '_')) key += ch;
    else for (const byte of utf8.encode(ch)) key += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return key;
}

/**
 * Options of a `KvBreakerStateStore`, however it is connected.
 *
 * @example
 * const options: KvBreakerStateStoreOptions = { bucket: 'shop-breakers', maxAgeMs: 15 * 60_000, onError: (e) => log.warn(e) };
 */
export interface KvBreakerStateStoreOptions {
  /** KV bucket name (letters, digits, `_`, `-`); created if missing. @default 'warden-breakers' */
  bucket?: string;
  /** Bucket TTL, applied only when this store creates the bucket: a state not published again within it expires. 0 = keep forever. @default 0 */
  maxAgeMs?: number;
  /**
   * Values kept per key by a bucket this store creates (1..64). With 1, a watcher that lags behind
   * a burst of publishes of one name sees only the latest of them; a deeper history lets it see
   * each one (up to that many behind). @default 1
   */
  history?: number;
  /** Replicas of a bucket this store creates. @default 1 */
  replicas?: number;
  /** Storage of a bucket this store creates. @default 'file' */
  storage?: 'file' | 'memory';
  /** Time to wait for a KV answer (put, watcher start, bucket creation). @default 5_000 */
  apiTimeoutMs?: number;
  /** Backoff of a watcher that could not start or ended: `initialMs`, doubling up to `maxMs`. @default { initialMs: 250, maxMs: 5_000 } */
  watchRetry?: { initialMs?: number; maxMs?: number };
  /** Told of every malformed value skipped and every watcher failure (it is retried). @default logs them (warn) */
  onError?: (error: WardenError) => void;
  /** Clock of the watcher backoff. @default new SystemClock() */
  clock?: Clock;
  /** Where a bucket kept with other settings, and a watcher failure without `onError`, are reported. @default createLogger() */
  logger?: Logger;
}

/**
 * Options of `KvBreakerStateStore.connect`: the store's options plus the connection options of
 * `JetStreamTransport` (servers, credentials, TLS, reconnect timing), with the same defaults.
 *
 * @example
 * const options: KvBreakerStateConnectOptions = { servers: process.env.WARDEN_NATS_URL, token: process.env.NATS_TOKEN, maxAgeMs: 600_000 };
 */
export type KvBreakerStateConnectOptions = KvBreakerStateStoreOptions &
  Pick<JetStreamTransportOptions, 'servers' | 'user' | 'pass' | 'token' | 'authenticator' | 'tls' | 'name' | 'connectTimeoutMs' | 'waitOnFirstConnect' | 'reconnectTimeWaitMs' | 'reconnectJitterMs'>;

/** @internal The resolved options. @example const s: KvBreakerSettings = resolveStoreOptions({}); */
export interface KvBreakerSettings {
  bucket: string;
  history: number;
  maxAgeMs: number;
  replicas: number;
  storage: StorageType;
  apiTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  onError: ((error: WardenError) => void) | undefined;
  clock: Clock;
  logger: Logger;
}

function number(value: number | undefined, fallback: number, field: string, min: number, integer = false, max = Infinity): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(field, `must be ${integer ? 'an integer' : 'a number'} ${range} (got ${String(v)})`);
  }
  return v;
}

/**
 * @internal Validates the store options and applies the defaults (invariant 2).
 *
 * @example resolveStoreOptions({ maxAgeMs: -1 }) // throws ConfigError: maxAgeMs must be a number >= 0 (got -1)
 */
export function resolveStoreOptions(o: KvBreakerStateStoreOptions): KvBreakerSettings {
  const bucket = o.bucket ?? DEFAULT_BREAKER_BUCKET;
  if (!/^[-\w]+$/.test(bucket)) throw new ConfigError('bucket', `must be letters, digits, _ and - only (got ${JSON.stringify(bucket)})`);
  const storage = o.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') throw new ConfigError('storage', `must be 'file' or 'memory' (got ${String(storage)})`);
  const retryInitialMs = number(o.watchRetry?.initialMs, 250, 'watchRetry.initialMs', 1);
  return {
    bucket,
    history: number(o.history, 1, 'history', 1, true, 64),
    maxAgeMs: number(o.maxAgeMs, 0, 'maxAgeMs', 0),
    replicas: number(o.replicas, 1, 'replicas', 1, true),
    storage: storage === 'file' ? StorageType.File : StorageType.Memory,
    apiTimeoutMs: number(o.apiTimeoutMs, 5_000, 'apiTimeoutMs', 1),
    retryInitialMs,
    retryMaxMs: Math.max(retryInitialMs, number(o.watchRetry?.maxMs, 5_000, 'watchRetry.maxMs', 1)),
    onError: o.onError,
    clock: o.clock ?? new SystemClock(),
    logger: o.logger ?? createLogger(),
  };
}

const CONNECTION_KEYS = ['servers', 'user', 'pass', 'token', 'authenticator', 'tls', 'name', 'connectTimeoutMs', 'waitOnFirstConnect', 'reconnectTimeWaitMs', 'reconnectJitterMs'] as const;

/**
 * @internal The connection options among `o`, for the transport's `resolveOptions`.
 *
 * @example resolveOptions(connectionPart({ servers: url, bucket: 'b' })) // bucket left out
 */
export function connectionPart(o: KvBreakerStateConnectOptions): JetStreamTransportOptions {
  const out: Record<string, unknown> = {};
  for (const k of CONNECTION_KEYS) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

