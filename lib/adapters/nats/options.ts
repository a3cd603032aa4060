/**
 * Options of `JetStreamTransport` (with their defaults), its event and stats types, and their
 * resolution into the NATS client's connection options. No I/O.
 */
import type { Authenticator, ConnectionOptions, TlsOptions } from '@nats-io/transport-node';
import { SystemClock, type Clock } from '../../core/clock.js';
import { ConfigError, type WardenError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { Redactor } from './errors.js';
import type { PublishStats } from './puback-collector.js';

/**
 * Stream settings applied where a `StreamConfig` leaves them unset.
 *
 * @example await JetStreamTransport.connect({ streamDefaults: { storage: 'memory', replicas: 3 } });
 */
export interface JetStreamStreamDefaults {
  /** Where the server keeps messages. @default 'file' */
  storage?: 'file' | 'memory';
  /** Copies kept in a cluster. @default 1 */
  replicas?: number;
  /** Duplicate window when a stream's config has none. @default 120_000 (or maxAgeMs if shorter) */
  duplicateWindowMs?: number;
  /** Max age when a stream's config has none. 0 = keep forever. @default 0 */
  maxAgeMs?: number;
  /** Largest message when a stream's config has none. JetStream counts the header block (msgId, headers) too. @default 1_048_576 */
  maxMsgSize?: number;
}

/**
 * Backoff of publishes sent again after `publishTimeoutMs` without a PubAck.
 *
 * @example await JetStreamTransport.connect({ publishTimeoutMs: 2_000, publishRetry: { initialMs: 50, maxMs: 2_000 } });
 */
export interface PublishRetryOptions {
  /** First backoff; doubles per attempt. @default 100 */
  initialMs?: number;
  /** Longest backoff. @default 5_000 */
  maxMs?: number;
}

/**
 * Options of `JetStreamTransport.connect`.
 *
 * @example
 * const options: JetStreamTransportOptions = { servers: ['nats://n1:4222', 'nats://n2:4222'], token: process.env.NATS_TOKEN };
 */
export interface JetStreamTransportOptions {
  /** Server URL(s); a comma-separated list is split. @default process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222' */
  servers?: string | string[];
  /** User name (with `pass`). */
  user?: string;
  /** Password (with `user`). Never logged. */
  pass?: string;
  /** Authentication token. Never logged. */
  token?: string;
  /** A NATS authenticator (nkeys, JWT, creds), passed through. */
  authenticator?: Authenticator | Authenticator[];
  /** TLS options, passed through (an empty object asks for TLS). */
  tls?: TlsOptions | null;
  /** Client name shown by the server's monitoring. @default 'warden' */
  name?: string;
  /** Time source of timeouts, retries and waits. @default new SystemClock() */
  clock?: Clock;
  /** @default silentLogger */
  logger?: Logger;
  /** Time to wait for a PubAck before sending the publish again (same msgId). @default 5_000 */
  publishTimeoutMs?: number;
  /** @default { initialMs: 100, maxMs: 5_000 } */
  publishRetry?: PublishRetryOptions;
  /**
   * Time to wait for a JetStream API answer (stream and consumer management, getMessage...); the
   * idempotent reads ask again every 2 s within it (see `JetStreamTransport`, invariant 6). @default 5_000
   */
  apiTimeoutMs?: number;
  /**
   * How long `ensureStream` keeps asking again while JetStream does not answer (a cluster electing
   * the leader of a new replicated stream, a server restarting) before it throws `TIMEOUT`;
   * 0 asks once. @default 30_000
   */
  setupTimeoutMs?: number;
  /** Time to wait for a server's handshake on each connection attempt. @default 10_000 */
  connectTimeoutMs?: number;
  /** Keep trying when the first connection fails (else `connect` rejects at once). @default true */
  waitOnFirstConnect?: boolean;
  /** Wait between reconnect attempts to a server. @default 500 */
  reconnectTimeWaitMs?: number;
  /** Random extra wait (0..jitter) added to each reconnect wait. @default 500 */
  reconnectJitterMs?: number;
  /** Messages a reader asks of the server at a time (it buffers up to 16 times as many, or 8 MiB). @default 1_024 */
  readerBatch?: number;
  /** Stream settings where a `StreamConfig` has none. @default { storage: 'file', replicas: 1 } */
  streamDefaults?: JetStreamStreamDefaults;
}

/**
 * A connection status change (invariant 1). `server` is a host:port or a URL with any userinfo
 * redacted; `error` is a translated `WardenError`.
 *
 * @example
 * transport.on((e) => { if (e.type === 'disconnected') metrics.natsDown.inc() });
 */
export type JetStreamTransportEvent =
  | { type: 'disconnected'; server: string }
  | { type: 'reconnecting' }
  | { type: 'reconnected'; server: string }
  | { type: 'error'; error: WardenError }
  | { type: 'closed'; error?: WardenError };

/**
 * Counters of a `JetStreamTransport`: the publish path plus connection changes.
 *
 * @example const { retries, reconnects } = transport.stats();
 */
export interface JetStreamTransportStats extends PublishStats {
  disconnects: number;
  reconnects: number;
}

/**
 * @internal Options with defaults applied.
 *
 * @example const { resolved } = resolveOptions({}); resolved.publishTimeoutMs // 5000
 */
export interface ResolvedOptions {
  clock: Clock;
  logger: Logger;
  publishTimeoutMs: number;
  apiTimeoutMs: number;
  /**
   * One try of a request the transport asks again (a reader's consumer creation, an idempotent
   * read): `ATTEMPT_TIMEOUT_MS`, or `apiTimeoutMs` if shorter.
   */
  attemptTimeoutMs: number;
  setupTimeoutMs: number;
  readerBatch: number;
  defaults: Required<JetStreamStreamDefaults> & { duplicateWindowGiven: boolean; maxAgeGiven: boolean; maxMsgSizeGiven: boolean };
}

/**
 * @internal Longest wait for one try of a request that is asked again when it gets no answer: a
 * request sent while a stream (or the JetStream meta group) elects a leader, or one placed on a
 * server that just died, is never answered, so a try that waited the whole API timeout would keep
 * its caller waiting seconds after the election.
 *
 * @example Math.min(apiTimeoutMs, ATTEMPT_TIMEOUT_MS)
 */
export const ATTEMPT_TIMEOUT_MS = 2_000;

/** @example servers ?? DEFAULT_URL */
export const DEFAULT_URL = 'nats://127.0.0.1:4222';
/** JetStream's default duplicate window. @example Math.min(DEFAULT_DUPLICATE_WINDOW_MS, maxAgeMs) */
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

/** A stream's replica count: an integer 1..5 (JetStream's limits), or a `ConfigError` naming `field`. */
export function replicasOf(value: number | undefined, field: string): number {
  const v = value ?? 1;
  if (!Number.isInteger(v) || v < 1 || v > 5) throw new ConfigError(field, `must be an integer from 1 to 5, got ${String(v)}`);
  return v;
}

function positive(value: number | undefined, fallback: number, field: string, allowZero = false): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) throw new ConfigError(field, `must be a ${allowZero ? 'number >= 0' : 'positive number'} (got ${v})`);
  return v;
}

/** `[major, minor, patch]` of a server version string. @example versionOf('2.9.10') // [2, 9, 10] */
export function versionOf(v: string | undefined): [number, number, number] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

/** Is version `v` at least `want`? @example atLeast([2, 9, 10], [2, 10, 0]) // false */
export function atLeast(v: [number, number, number], want: [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== want[i]) return (v[i] ?? 0) > (want[i] ?? 0);
  return true;
}

/** Server URLs from an option or an env value (comma-separated lists split). */
function serverList(servers: string | string[]): string[] {
  const list = (Array.isArray(servers) ? servers : [servers]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new ConfigError('servers', 'must name at least one NATS server');
  return list;
}

/** What `credentialsFromUrls` finds: the URLs without their user info, and the credentials they carried. */
export interface UrlCredentials {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * @internal The credentials written in server URLs (`nats://user:pass@host`, `nats://token@host`),
 * taken out of the URLs: the NATS client does not read them there, and would connect without
 * them. URLs that carry different credentials are a `ConfigError` (a connection has one set).
 *
 * @example credentialsFromUrls(['nats://alice:s3cret@n1:4222']) // { servers: ['nats://n1:4222'], user: 'alice', pass: 's3cret' }
 */
export function credentialsFromUrls(servers: readonly string[]): UrlCredentials {
  let found: { user?: string; pass?: string; token?: string } | undefined;
  let first = '';
  const stripped = servers.map((s) => {
    const u = userInfoOf(s);
    if (!u) return s;
    const creds = u.pass === undefined ? { token: decodeURIComponent(u.user) } : { user: decodeURIComponent(u.user), pass: decodeURIComponent(u.pass) };
    if (found === undefined) {
      found = creds;
      first = u.info;
    } else if (first !== u.info) {
      throw new ConfigError('servers', 'URLs carry different credentials; a connection logs in with one set: give it once (user/pass or token options, or the same user info in every URL)');
    }
    return u.without;
  });
  return { servers: stripped, ...(found ?? {}) };
}

/** The user info of a server URL (`user:pass@`, or a lone `token@`, as written) and the URL without it. */
function userInfoOf(url: string): { info: string; user: string; pass: string | undefined; without: string } | undefined {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)?([^@/]+)@(.*)$/i.exec(url);
  if (!m?.[2]) return undefined;
  const info = m[2];
  const colon = info.indexOf(':');
  return { info, user: colon < 0 ? info : info.slice(0, colon), pass: colon < 0 ? undefined : info.slice(colon + 1), without: `${m[1] ?? ''}${m[3]}` };
}

/** Passwords and tokens in server URLs, as written and decoded, so they are scrubbed from free text too. */
function urlSecrets(servers: string[]): string[] {
  const out: string[] = [];
  for (const s of servers) {
    const u = userInfoOf(s);
    const secret = u?.pass || u?.user; // the password, or a lone token
    if (secret) out.push(secret, decodeURIComponent(secret));
  }
  return out.filter((x) => x.length >= 3);
}

/**
 * @internal Validates `options` and applies the defaults: the server list (from
 * `WARDEN_NATS_URL` when none is given), a redactor of every secret given, the transport's own
 * settings and the client's connection options (reconnecting forever).
 *
 * @example
 * const { servers, connection } = resolveOptions({ servers: 'nats://a:4222,nats://b:4222' });
 */
export function resolveOptions(options: JetStreamTransportOptions): {
  servers: string[];
  redactor: Redactor;
  resolved: ResolvedOptions;
  retry: { initialMs: number; maxMs: number };
  connection: ConnectionOptions;
} {
  const servers = serverList(options.servers ?? process.env.WARDEN_NATS_URL ?? DEFAULT_URL);
  const redactor = new Redactor([options.pass, options.token, ...urlSecrets(servers)]);
  const d = options.streamDefaults ?? {};
  const apiTimeoutMs = positive(options.apiTimeoutMs, 5_000, 'apiTimeoutMs');
  const resolved: ResolvedOptions = {
    clock: options.clock ?? new SystemClock(),
    logger: options.logger ?? silentLogger,
    publishTimeoutMs: positive(options.publishTimeoutMs, 5_000, 'publishTimeoutMs'),
    apiTimeoutMs,
    attemptTimeoutMs: Math.min(apiTimeoutMs, ATTEMPT_TIMEOUT_MS),
    setupTimeoutMs: positive(options.setupTimeoutMs, 30_000, 'setupTimeoutMs', true),
    readerBatch: positive(options.readerBatch, 1_024, 'readerBatch'),
    defaults: {
      storage: d.storage ?? 'file',
      replicas: replicasOf(d.replicas, 'streamDefaults.replicas'),
      duplicateWindowMs: positive(d.duplicateWindowMs, DEFAULT_DUPLICATE_WINDOW_MS, 'streamDefaults.duplicateWindowMs', true),
      maxAgeMs: positive(d.maxAgeMs, 0, 'streamDefaults.maxAgeMs', true),
      maxMsgSize: positive(d.maxMsgSize, 1_048_576, 'streamDefaults.maxMsgSize'),
      duplicateWindowGiven: d.duplicateWindowMs !== undefined,
      maxAgeGiven: d.maxAgeMs !== undefined,
      maxMsgSizeGiven: d.maxMsgSize !== undefined,
    },
  };
  if (resolved.defaults.storage !== 'file' && resolved.defaults.storage !== 'memory') {
    throw new ConfigError('streamDefaults.storage', `must be 'file' or 'memory' (got ${String(resolved.defaults.storage)})`);
  }
  const retry = {
    initialMs: positive(options.publishRetry?.initialMs, 100, 'publishRetry.initialMs'),
    maxMs: positive(options.publishRetry?.maxMs, 5_000, 'publishRetry.maxMs'),
  };
  const fromUrls = credentialsFromUrls(servers);
  const co: ConnectionOptions = {
    servers: fromUrls.servers,
    name: options.name ?? 'warden',
    maxReconnectAttempts: -1,
    waitOnFirstConnect: options.waitOnFirstConnect ?? true,
    reconnectTimeWait: positive(options.reconnectTimeWaitMs, 500, 'reconnectTimeWaitMs', true),
    reconnectJitter: positive(options.reconnectJitterMs, 500, 'reconnectJitterMs', true),
    reconnectJitterTLS: positive(options.reconnectJitterMs, 500, 'reconnectJitterMs', true),
    timeout: positive(options.connectTimeoutMs, 10_000, 'connectTimeoutMs'),
  };
  // Explicit credentials win over those written in the URLs.
  const explicit = options.user !== undefined || options.token !== undefined || options.authenticator !== undefined;
  const user = options.user ?? (explicit ? undefined : fromUrls.user);
  const pass = options.pass ?? (explicit ? undefined : fromUrls.pass);
  const token = options.token ?? (explicit ? undefined : fromUrls.token);
  if (user !== undefined) co.user = user;
  if (pass !== undefined) co.pass = pass;
  if (token !== undefined) co.token = token;
  if (options.authenticator !== undefined) co.authenticator = options.authenticator;
  if (options.tls !== undefined) co.tls = options.tls;
  return { servers, redactor, resolved, retry, connection: co };
}
