/**
 * The ioredis client of a `RedisCheckpointStore`: its options (standalone, Sentinel or Cluster),
 * the reconnect backoff, and the strings no log line or error may show.
 *
 * Invariants:
 *  1. A client the store creates connects lazily, reconnects forever with the bounded, jittered
 *     backoff of `RedisRetryOptions`, and times out a command after `commandTimeoutMs`.
 *  2. Every password and URL userinfo of the options is listed in `secrets`, so the store can
 *     scrub it from any message (`errors.ts`).
 */
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { exponentialBackoff } from '../../core/backoff.js';
import type { Clock } from '../../core/clock.js';
import { ConfigError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { redactUrl } from './errors.js';
import { CLAIM_COMMAND, CLEAR_COMMAND, WRITE_COMMAND } from './lua.js';

/**
 * Connection options passed through to ioredis (all but `lazyConnect` and `replyMapping`, which
 * the store sets), plus `cluster` for Redis Cluster.
 *
 * @example
 * const sentinel: RedisConnectionOptions = { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', password: pw };
 * const cluster: RedisConnectionOptions = { cluster: [{ host: 'c1', port: 7000 }], password: pw, tls: {} };
 */
export type RedisConnectionOptions = Omit<RedisOptions, 'lazyConnect' | 'replyMapping'> & {
  /**
   * Startup nodes of a Redis Cluster. When set, the store creates an ioredis `Cluster` on these
   * nodes (the `url` is then used only for its credentials and TLS scheme).
   */
  cluster?: ClusterNode[];
  /** Extra ioredis `Cluster` options (only with `cluster`); per-node options come from the rest of these options. */
  clusterOptions?: Omit<ClusterOptions, 'lazyConnect' | 'redisOptions'>;
};

/**
 * Reconnection backoff of a client the store creates.
 *
 * @example
 * new RedisCheckpointStore({ retry: { minDelayMs: 100, maxDelayMs: 5000 } }); // forever, capped at 5 s
 */
export interface RedisRetryOptions {
  /** First reconnect delay. @default 50 */
  minDelayMs?: number;
  /** Longest reconnect delay: the backoff doubles up to it, with up to 10 % jitter that never takes it past. @default 2000 */
  maxDelayMs?: number;
  /** Reconnect attempts before giving up for good; `Infinity` reconnects forever. @default Infinity */
  maxAttempts?: number;
}

/**
 * Options of `RedisCheckpointStore`.
 *
 * @example
 * const options: RedisCheckpointStoreOptions = { url: 'rediss://app:pw@cache:6380', keyPrefix: 'shop', commandTimeoutMs: 2000 };
 */
export interface RedisCheckpointStoreOptions {
  /** An existing ioredis client (`Redis` or `Cluster`). The store never closes it. */
  redis?: Redis | Cluster;
  /** Redis URL (`redis://`, `rediss://` for TLS), used when `redis` is not given. @default process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379' */
  url?: string;
  /** First part of every key; may not contain `{` or `}`. @default 'warden' */
  keyPrefix?: string;
  /** Source of `writtenAtMs`. @default new SystemClock() */
  clock?: Clock;
  /** @default createLogger() */
  logger?: Logger;
  /** Passed through to ioredis (username, password, tls, sentinels, name, db, ...) and `cluster`. @default {} */
  redisOptions?: RedisConnectionOptions;
  /** How long a connection attempt may take. @default 10000 */
  connectTimeoutMs?: number;
  /** How long one command may wait for its reply, queueing included. @default 5000 */
  commandTimeoutMs?: number;
  /** Reconnects a queued command may wait through before it rejects. @default 2 */
  maxRetriesPerRequest?: number;
  /** Reconnect backoff. @default { minDelayMs: 50, maxDelayMs: 2000, maxAttempts: Infinity } */
  retry?: RedisRetryOptions;
  /** HSCAN `COUNT` hint of `readActors`. @default 1000 */
  scanCount?: number;
  /** Scans `readActors` tries before it falls back to one HGETALL when writes keep landing. @default 3 */
  scanAttempts?: number;
}

export type ScriptedClient = (Redis | Cluster) & {
  [WRITE_COMMAND](...args: Array<string | number>): Promise<unknown>;
  [CLAIM_COMMAND](...args: string[]): Promise<[string, string]>;
  [CLEAR_COMMAND](...args: string[]): Promise<unknown>;
};

/**
 * The backoff of a client the store creates: doubling from `minDelayMs` to `maxDelayMs`, plus up
 * to 10 % jitter (never past `maxDelayMs`); `null` (give up) after `maxAttempts`. The schedule is
 * built once, when the strategy is; bad values throw a `ConfigError` naming `retry.<field>`.
 *
 * @example
 * new Redis(url, { retryStrategy: backoff({ minDelayMs: 50, maxDelayMs: 2000 }) });
 */
export function backoff(retry: RedisRetryOptions = {}): (times: number) => number | null {
  const minMs = retry.minDelayMs ?? 50;
  const maxMs = retry.maxDelayMs ?? 2000;
  const maxAttempts = retry.maxAttempts ?? Infinity;
  for (const [name, value] of [['minDelayMs', minMs], ['maxDelayMs', maxMs]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new ConfigError(`retry.${name}`, `must be a finite number >= 0 (got ${String(value)})`);
  }
  // A minimum above the maximum waits the maximum every time, as it always did.
  const schedule = exponentialBackoff({ minMs: Math.min(minMs, maxMs), maxMs, randomFactor: 0.1 }, 'retry');
  // ioredis counts reconnect attempts from 1.
  return (times) => (times > maxAttempts ? null : schedule.delay(times - 1));
}

/** The client a store uses: the one passed in, or a new one it owns (lazy: connects on first use). */
export function createClient(options: RedisCheckpointStoreOptions): { client: ScriptedClient; owned: boolean; target: string; secrets: string[] } {
  if (options.redis) {
    const client = options.redis as ScriptedClient;
    if (client instanceof Cluster) {
      const pw = client.options.redisOptions?.password;
      return { client, owned: false, target: 'redis-cluster', secrets: pw ? [pw] : [] };
    }
    const o = client.options;
    return { client, owned: false, target: `redis://${o.host ?? '?'}:${String(o.port ?? '?')}`, secrets: secretsOf('', o.password, o.sentinelPassword) };
  }
  const url = options.url ?? process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const { cluster, clusterOptions, ...redisOptions } = options.redisOptions ?? {};
  const secrets = secretsOf(url, redisOptions.password, redisOptions.sentinelPassword);
  for (const node of cluster ?? []) if (typeof node === 'string') secrets.push(...secretsOf(node));
  const target = cluster && cluster.length > 0 ? `redis-cluster(${cluster.map(nodeName).join(',')})` : redactUrl(url);
  const retryStrategy = backoff(options.retry);
  const common: Pick<RedisOptions, 'connectTimeout' | 'commandTimeout' | 'maxRetriesPerRequest'> = {
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    commandTimeout: options.commandTimeoutMs ?? 5_000,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 2,
  };
  if (cluster && cluster.length > 0) {
    const u = parseUrl(url);
    const fromUrl: Pick<RedisOptions, 'username' | 'password' | 'tls'> = {};
    if (u?.username) fromUrl.username = decodeURIComponent(u.username);
    if (u?.password) fromUrl.password = decodeURIComponent(u.password);
    if (u?.protocol === 'rediss:') fromUrl.tls = {};
    // Options a Cluster takes at its own level, not per node.
    const { retryStrategy: _r, enableOfflineQueue: _e, sentinels: _s, readOnly: _ro, himportFieldsets: _h, ...perNode } = { ...common, ...fromUrl, ...redisOptions };
    const client = new Cluster(cluster, {
      clusterRetryStrategy: retryStrategy,
      ...clusterOptions,
      lazyConnect: true,
      redisOptions: perNode,
    });
    return { client: client as ScriptedClient, owned: true, target, secrets };
  }
  const client = new Redis(url, { ...common, retryStrategy, ...redisOptions, lazyConnect: true });
  return { client: client as ScriptedClient, owned: true, target, secrets };
}

function nodeName(node: ClusterNode): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`;
  if (typeof node === 'string') return redactUrl(node);
  return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
}

function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** The strings no message may show: passwords, and a colon-less URL userinfo (read as a password). */
function secretsOf(url: string, ...passwords: Array<string | undefined>): string[] {
  const out = passwords.filter((p): p is string => typeof p === 'string' && p !== '');
  const u = parseUrl(url);
  if (u) {
    if (u.password) out.push(u.password, decodeURIComponent(u.password));
    else if (u.username) out.push(u.username, decodeURIComponent(u.username));
  }
  // The raw userinfo too, as written (up to the last @ before the path).
  const info = /^[a-z][a-z0-9+.-]*:\/\/([^/]*)@/i.exec(url)?.[1];
  if (info) out.push(info.includes(':') ? info.slice(info.indexOf(':') + 1) : info);
  return [...new Set(out)];
}
