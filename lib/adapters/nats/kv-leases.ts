/**
 * `KvLeaseStore`: the production `LeaseStore` (`lib/cluster/leases.ts`) on a NATS JetStream KV
 * bucket. It keeps the port's invariants (the contract suite runs against it and the in-memory
 * twin) as follows:
 *
 *  1. One bucket per cluster (default `warden-leases`), history 1, max age = the lease TTL, so a
 *     key nobody renews is removed by the server (NATS 2.9 has no per-key TTL; the bucket's is
 *     the lease's). An existing bucket with another TTL is refused (`CONFIG`): every node must
 *     count on the same lifetime.
 *  2. `acquire` is KV `create` (a put expecting no live value), `renew` a put expecting the lease's
 *     last revision, `release` and `revoke` deletes expecting it: JetStream's compare-and-set on the
 *     subject's last sequence decides every race, on the replicated stream.
 *  3. A revision is the bucket stream's sequence, so it only grows: the revision of the create is
 *     the owner's epoch. The value keeps `{ owner, epoch }` (a create writes epoch 0: its own revision).
 *  4. `validUntil` is the owner's clock at the start of the write plus the TTL less the safety margin.
 *  5. A watcher is restarted with backoff after an error or a reconnect; an expiry by max age is
 *     never told (NATS removes the message silently), so owners also poll.
 *  6. Every failure is a `WardenError`; no credential appears in one.
 *  7. A request to the bucket waits at most `requestTimeoutMs` (half the TTL, 1 to 5 s) for
 *     its answer: one sent while the bucket's stream elects a leader (a listing), or whose answer
 *     went to a connection that was lost, is never answered; the writes on one lease are
 *     serialized (coordinator invariant 4) and reconciles run one at a time, so a request waiting
 *     the full API timeout would hold the next ones back past the election; and a renewal
 *     answered later than that could not be counted on anyway (`validUntil` runs from its start).
 */
import { connect, type NatsConnection, type QueuedIterator } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV, type KvWatchEntry } from '@nats-io/kv';
import { exponentialBackoff } from '../../core/backoff.js';
import { SystemClock, sleep, type Clock } from '../../core/clock.js';
import { ConfigError, WardenError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { parseLeaseValue, type Lease, type LeaseChange, type LeaseEntry, type LeaseStore } from '../../cluster/leases.js';
import { Redactor, redactUrl, toWardenError, type NatsErrorContext } from './errors.js';
import { credentialsFromUrls, replicasOf } from './options.js';
import { retrySetup } from './setup-retry.js';

/** Options of `KvLeaseStore`. */
export interface KvLeaseStoreOptions {
  /**
   * Lifetime of a lease after its last write; the bucket's max age. A bucket that exists with
   * another TTL is refused. Left out, an existing bucket's TTL is used (readers such as
   * `warden status`), and a new bucket gets 5 000 ms. @default the bucket's, else 5_000
   */
  ttlMs?: number;
  /** Part of the TTL an owner does not count on. @default 20 % of ttlMs */
  safetyMarginMs?: number;
  /** KV bucket. @default 'warden-leases' */
  bucket?: string;
  /** Replicas of the bucket's stream when it is created (3 in production). @default 1 */
  replicas?: number;
  /**
   * How long one request to the bucket (acquire, renew, release, get, list) waits for an answer
   * before it fails with `TIMEOUT` (invariant 7). @default half of ttlMs, within 1_000..5_000
   */
  requestTimeoutMs?: number;
  /**
   * How long opening the bucket keeps asking again while JetStream does not answer (a cluster
   * electing the leader of a new replicated bucket) before it throws `TIMEOUT`; 0 asks once.
   * @default 30_000
   */
  setupTimeoutMs?: number;
  /**
   * `false`: open the bucket only if it exists (a reader such as `warden status` must not create it
   * with a TTL no node chose); a missing bucket rejects with `STREAM_NOT_FOUND`. @default true
   */
  create?: boolean;
  /** @default new SystemClock() */
  clock?: Clock;
  /** @default createLogger() */
  logger?: Logger;
}

/** Options of `KvLeaseStore.connect`. */
export interface KvLeaseStoreConnectOptions extends KvLeaseStoreOptions {
  /** @default process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222' */
  servers?: string | string[];
  /** NATS connection name. @default 'warden-leases' */
  name?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function isWrongLast(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

/** The lease-key filter of a prefix (a prefix ends with `.`, or is empty for every key). */
function filterOf(prefix: string): string {
  return prefix === '' ? '>' : `${prefix}>`;
}

/**
 * @example
 * const leases = await KvLeaseStore.connect({ servers: 'nats://127.0.0.1:4222', bucket: 'shop-leases', ttlMs: 5_000, replicas: 3 });
 */
export class KvLeaseStore implements LeaseStore {
  readonly ttlMs: number;
  private readonly marginMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly redactor: Redactor;
  private readonly stops = new Set<() => void>();
  private closed = false;

  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
    private readonly nc: NatsConnection | undefined,
    o: Required<Pick<KvLeaseStoreOptions, 'ttlMs'>> & KvLeaseStoreOptions,
    redactor: Redactor,
  ) {
    this.ttlMs = o.ttlMs;
    this.marginMs = o.safetyMarginMs ?? o.ttlMs * 0.2;
    this.clock = o.clock ?? new SystemClock();
    this.logger = (o.logger ?? createLogger()).child({ component: 'kv-leases', bucket });
    this.redactor = redactor;
  }

  /** Connects, and opens (or creates) the bucket; the connection is closed with the store. */
  static async connect(options: KvLeaseStoreConnectOptions = {}): Promise<KvLeaseStore> {
    const servers = options.servers ?? process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
    const list = Array.isArray(servers) ? servers : servers.split(',');
    const redactor = new Redactor(list);
    let nc: NatsConnection;
    try {
      const { servers: plain, ...credentials } = credentialsFromUrls(list);
      nc = await connect({ servers: plain, ...credentials, name: options.name ?? 'warden-leases', waitOnFirstConnect: false, maxReconnectAttempts: -1 });
    } catch (err) {
      throw toWardenError(err, { op: `leases.connect to ${list.map(redactUrl).join(',')}`, redactor });
    }
    try {
      return await KvLeaseStore.open(nc, options, redactor, true);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw err;
    }
  }

  /** On a connection the caller owns (it stays open after `close()`). */
  static fromConnection(nc: NatsConnection, options: KvLeaseStoreOptions = {}): Promise<KvLeaseStore> {
    return KvLeaseStore.open(nc, options, new Redactor([]), false);
  }

  private static async open(nc: NatsConnection, options: KvLeaseStoreOptions, redactor: Redactor, owned: boolean): Promise<KvLeaseStore> {
    const asked = options.ttlMs;
    const ttlMs = asked ?? 5_000;
    if (!Number.isFinite(ttlMs) || ttlMs < 100) throw new ConfigError('ttlMs', `must be a finite number >= 100, got ${String(options.ttlMs)}`);
    const bucket = options.bucket ?? 'warden-leases';
    const replicas = replicasOf(options.replicas, 'replicas');
    const setupTimeoutMs = options.setupTimeoutMs ?? 30_000;
    if (!Number.isFinite(setupTimeoutMs) || setupTimeoutMs < 0) throw new ConfigError('setupTimeoutMs', `must be a finite number >= 0, got ${String(options.setupTimeoutMs)}`);
    // Invariant 7 (from the TTL asked for; a bucket's own TTL, adopted, is known only once it is open).
    const requestTimeoutMs = options.requestTimeoutMs ?? Math.min(5_000, Math.max(1_000, Math.floor(ttlMs / 2)));
    if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs < 50) throw new ConfigError('requestTimeoutMs', `must be a finite number >= 50, got ${String(options.requestTimeoutMs)}`);
    const js = jetstream(nc, { timeout: requestTimeoutMs });
    const ctx: NatsErrorContext = { op: 'leases.openBucket', stream: `KV_${bucket}`, redactor };
    const openOnce = async (): Promise<{ kv: KV; ttl: number }> => {
      try {
        const kvm = new Kvm(js);
        const kv = options.create === false ? await kvm.open(bucket) : await kvm.create(bucket, { history: 1, ttl: ttlMs, replicas });
        return { kv, ttl: (await kv.status()).ttl };
      } catch (err) {
        const e = toWardenError(err, ctx);
        if (options.create === false && e.code === 'STREAM_NOT_FOUND') {
          throw new WardenError('STREAM_NOT_FOUND', `lease bucket ${bucket} does not exist (no node of the cluster has started)`, { cause: e, nonRetryable: true, details: { bucket } });
        }
        throw e;
      }
    };
    const { kv, ttl } = await retrySetup(openOnce, {
      withinMs: setupTimeoutMs, clock: options.clock ?? new SystemClock(), logger: options.logger ?? createLogger(), what: `open lease bucket ${bucket}`,
    });
    if (asked !== undefined && ttl !== asked) {
      throw new ConfigError('ttlMs', `${ttlMs} ms differs from the max age ${ttl} ms of the existing lease bucket ${bucket}: every node must count on one lease lifetime (delete the bucket to change it)`, {
        details: { bucket, ttlMs, bucketTtlMs: ttl },
      });
    }
    const margin = options.safetyMarginMs ?? ttl * 0.2;
    if (!(margin >= 0 && margin < ttl)) throw new ConfigError('safetyMarginMs', `must be >= 0 and < ttlMs (${ttl}), got ${String(options.safetyMarginMs)}`);
    return new KvLeaseStore(kv, await jetstreamManager(nc, { timeout: requestTimeoutMs }), bucket, owned ? nc : undefined, { ...options, ttlMs: ttl }, redactor);
  }

  async acquire(key: string, owner: string): Promise<Lease | undefined> {
    const started = this.clock.now();
    let revision: number;
    try {
      revision = await this.kv.create(key, enc.encode(JSON.stringify({ owner, epoch: 0 })));
    } catch (err) {
      if (isWrongLast(err)) return undefined;
      throw toWardenError(err, this.ctx('leases.acquire', key));
    }
    return { key, owner, epoch: revision, revision, validUntil: started + this.ttlMs - this.marginMs };
  }

  async renew(lease: Lease): Promise<Lease> {
    const started = this.clock.now();
    let revision: number;
    try {
      revision = await this.kv.update(lease.key, enc.encode(JSON.stringify({ owner: lease.owner, epoch: lease.epoch })), lease.revision);
    } catch (err) {
      if (!isWrongLast(err)) throw toWardenError(err, this.ctx('leases.renew', lease.key));
      const now = await this.get(lease.key).catch(() => undefined);
      const why = now ? `${now.owner} holds it now (epoch ${now.epoch})` : 'it expired';
      throw new WardenError('LEASE_LOST', `lease ${lease.key} of ${lease.owner} (epoch ${lease.epoch}) is lost: ${why}`, {
        nonRetryable: true,
        details: { key: lease.key, owner: lease.owner, epoch: lease.epoch, holder: now?.owner, holderEpoch: now?.epoch },
      });
    }
    return { ...lease, revision, validUntil: started + this.ttlMs - this.marginMs };
  }

  async release(lease: Lease): Promise<void> {
    try {
      await this.kv.delete(lease.key, { previousSeq: lease.revision });
    } catch (err) {
      if (!isWrongLast(err)) throw toWardenError(err, this.ctx('leases.release', lease.key));
    }
  }

  async revoke(key: string, owner?: string): Promise<boolean> {
    const entry = await this.get(key);
    if (!entry || (owner !== undefined && entry.owner !== owner)) return false;
    try {
      await this.kv.delete(key, { previousSeq: entry.revision });
      return true;
    } catch (err) {
      if (isWrongLast(err)) return false;
      throw toWardenError(err, this.ctx('leases.revoke', key));
    }
  }

  async get(key: string): Promise<LeaseEntry | undefined> {
    let e;
    try {
      e = await this.kv.get(key);
    } catch (err) {
      throw toWardenError(err, this.ctx('leases.get', key));
    }
    if (!e || e.operation !== 'PUT') return undefined;
    const v = parseLeaseValue(dec.decode(e.value));
    return v ? { key, owner: v.owner, epoch: v.epoch || e.revision, revision: e.revision } : undefined;
  }

  async list(prefix: string): Promise<LeaseEntry[]> {
    // One stream-info request names the subjects with a live message (no iterator that a bucket
    // written every few hundred ms keeps open).
    const subjectPrefix = `$KV.${this.bucket}.`;
    let keys: string[];
    try {
      const info = await this.jsm.streams.info(`KV_${this.bucket}`, { subjects_filter: `${subjectPrefix}${filterOf(prefix)}` });
      keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(subjectPrefix.length));
    } catch (err) {
      throw toWardenError(err, this.ctx('leases.list', prefix));
    }
    const out: LeaseEntry[] = [];
    for (const key of [...new Set(keys)].sort()) { // keys() may name a key twice while it is being written
      const e = await this.get(key);
      if (e) out.push(e);
    }
    return out;
  }

  watch(prefix: string, onChange: (change: LeaseChange) => void): () => void {
    if (this.closed) throw new WardenError('STOPPED', 'lease store is closed', { nonRetryable: true });
    let stopped = false;
    let iter: QueuedIterator<KvWatchEntry> | undefined;
    const wake = new AbortController();
    const retry = exponentialBackoff({ minMs: 100, maxMs: 5_000 });
    const run = async (): Promise<void> => {
      for (let failures = 0; !stopped; ) {
        try {
          iter = await this.kv.watch({ key: filterOf(prefix), include: KvWatchInclude.UpdatesOnly });
          failures = 0;
          for await (const e of iter) {
            if (stopped) break;
            const v = e.operation === 'PUT' ? parseLeaseValue(dec.decode(e.value)) : undefined;
            onChange({ key: e.key, entry: v ? { key: e.key, owner: v.owner, epoch: v.epoch || e.revision, revision: e.revision } : undefined });
          }
        } catch (err) {
          if (stopped) return;
          this.logger.warn({ prefix, err: toWardenError(err, this.ctx('leases.watch', prefix)) }, 'lease watcher failed; restarting it');
        }
        if (stopped) return;
        await sleep(this.clock, retry.delay(failures++), wake.signal).catch(() => undefined);
      }
    };
    void run();
    const stop = (): void => {
      stopped = true;
      wake.abort();
      iter?.stop();
      this.stops.delete(stop);
    };
    this.stops.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stop of [...this.stops]) stop();
    await this.nc?.close().catch(() => undefined);
  }

  private ctx(op: string, key: string): NatsErrorContext {
    return { op, stream: `KV_${this.bucket}`, subject: `$KV.${this.bucket}.${key}`, redactor: this.redactor };
  }
}
