/**
 * `InMemoryLeaseStore`: the embedded twin of a lease bucket, on the injected clock. Several nodes of
 * one process (tests, simulation) share one instance; it keeps every invariant of `leases.ts`, and
 * the contract suite runs against it and against NATS KV.
 */
import { SystemClock, type Clock } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import type { Lease, LeaseChange, LeaseEntry, LeaseStore } from './leases.js';

/** Options of `InMemoryLeaseStore`. */
export interface InMemoryLeaseStoreOptions {
  /** Lifetime of a lease after its last write. @default 5_000 */
  ttlMs?: number;
  /** Part of the TTL an owner does not count on (clock drift, a slow write). @default 20 % of ttlMs */
  safetyMarginMs?: number;
  /** @default new SystemClock() */
  clock?: Clock;
}

interface Slot {
  entry: LeaseEntry;
  writtenAt: number;
}

/**
 * @example
 * const leases = new InMemoryLeaseStore({ ttlMs: 3_000, clock });
 * const lease = await leases.acquire('shop.orders.0', 'node-a'); // epoch = its revision
 */
export class InMemoryLeaseStore implements LeaseStore {
  readonly ttlMs: number;
  private readonly marginMs: number;
  private readonly clock: Clock;
  private readonly keys = new Map<string, Slot>();
  private readonly watchers = new Set<{ prefix: string; onChange: (c: LeaseChange) => void }>();
  private revision = 0;
  private closed = false;

  constructor(options: InMemoryLeaseStoreOptions = {}) {
    this.ttlMs = options.ttlMs ?? 5_000;
    if (!Number.isFinite(this.ttlMs) || this.ttlMs <= 0) throw new ConfigError('ttlMs', `must be a finite number > 0, got ${String(options.ttlMs)}`);
    this.marginMs = options.safetyMarginMs ?? this.ttlMs * 0.2;
    if (!(this.marginMs >= 0 && this.marginMs < this.ttlMs)) throw new ConfigError('safetyMarginMs', `must be >= 0 and < ttlMs (${this.ttlMs}), got ${String(options.safetyMarginMs)}`);
    this.clock = options.clock ?? new SystemClock();
  }

  acquire(key: string, owner: string): Promise<Lease | undefined> {
    return this.op(() => {
      const started = this.clock.now();
      if (this.live(key)) return undefined;
      const revision = ++this.revision;
      const entry = { key, owner, epoch: revision, revision };
      this.keys.set(key, { entry, writtenAt: this.clock.now() });
      this.tell(key, entry);
      return { ...entry, validUntil: started + this.ttlMs - this.marginMs };
    });
  }

  renew(lease: Lease): Promise<Lease> {
    return this.op(() => {
      const started = this.clock.now();
      const slot = this.live(lease.key);
      if (!slot || slot.entry.revision !== lease.revision) throw lost(lease, slot?.entry);
      const entry = { ...slot.entry, revision: ++this.revision };
      this.keys.set(lease.key, { entry, writtenAt: this.clock.now() });
      this.tell(lease.key, entry);
      return { ...entry, validUntil: started + this.ttlMs - this.marginMs };
    });
  }

  release(lease: Lease): Promise<void> {
    return this.op(() => {
      const slot = this.live(lease.key);
      if (!slot || slot.entry.revision !== lease.revision) return;
      this.remove(lease.key);
    });
  }

  revoke(key: string, owner?: string): Promise<boolean> {
    return this.op(() => {
      const slot = this.live(key);
      if (!slot || (owner !== undefined && slot.entry.owner !== owner)) return false;
      this.remove(key);
      return true;
    });
  }

  get(key: string): Promise<LeaseEntry | undefined> {
    return this.op(() => {
      const slot = this.live(key);
      return slot ? { ...slot.entry } : undefined;
    });
  }

  list(prefix: string): Promise<LeaseEntry[]> {
    return this.op(() => {
      const out: LeaseEntry[] = [];
      for (const key of [...this.keys.keys()]) {
        const slot = key.startsWith(prefix) ? this.live(key) : undefined;
        if (slot) out.push({ ...slot.entry });
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    });
  }

  watch(prefix: string, onChange: (change: LeaseChange) => void): () => void {
    const w = { prefix, onChange };
    this.watchers.add(w);
    return () => {
      this.watchers.delete(w);
    };
  }

  close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    return Promise.resolve();
  }

  /** Test hook: the store forgets `key` as an expiry would, without telling watchers. */
  expire(key: string): void {
    this.keys.delete(key);
  }

  /** Invariant 2: a slot whose TTL ran out is gone. */
  private live(key: string): Slot | undefined {
    const slot = this.keys.get(key);
    if (slot && this.clock.now() - slot.writtenAt >= this.ttlMs) {
      this.keys.delete(key);
      return undefined;
    }
    return slot;
  }

  private remove(key: string): void {
    this.keys.delete(key);
    ++this.revision;
    this.tell(key, undefined);
  }

  private tell(key: string, entry: LeaseEntry | undefined): void {
    for (const w of [...this.watchers]) {
      if (!key.startsWith(w.prefix)) continue;
      const change = { key, entry: entry && { ...entry } };
      queueMicrotask(() => {
        if (this.watchers.has(w)) w.onChange(change);
      });
    }
  }

  /** Every method answers asynchronously and rejects, never throws. */
  private op<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new WardenError('TRANSPORT_CLOSED', 'lease store is closed', { nonRetryable: true }));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

function lost(lease: Lease, now: LeaseEntry | undefined): WardenError {
  const why = now ? `${now.owner} holds it now (epoch ${now.epoch})` : 'it expired';
  return new WardenError('LEASE_LOST', `lease ${lease.key} of ${lease.owner} (epoch ${lease.epoch}) is lost: ${why}`, {
    nonRetryable: true,
    details: { key: lease.key, owner: lease.owner, epoch: lease.epoch, holder: now?.owner, holderEpoch: now?.epoch },
  });
}
