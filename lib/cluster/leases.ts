/**
 * The LeaseStore port: time-bounded ownership of named things (a partition, a node's membership)
 * through a replicated key-value bucket with compare-and-set writes and a time to live. On NATS
 * JetStream it is a KV bucket whose max age is the TTL (`warden/nats`, `KvLeaseStore`); the
 * embedded twin runs on the injected clock.
 *
 * Invariants every implementation keeps (the contract suite checks them):
 *  1. At most one live lease per key: `acquire` creates the key only if no live lease holds it.
 *  2. A lease lives `ttlMs` after its last write (acquire or renew), by the store's clock; then
 *     it is gone and the key can be acquired again.
 *  3. `renew` and `release` are writes on the lease's last revision: they succeed only if nobody
 *     wrote the key since. A renew that finds the key gone or taken throws `LEASE_LOST`; a release
 *     of a lost lease does nothing.
 *  4. Every write gets a revision from one counter per store (the bucket's stream sequence), so
 *     revisions only grow: the revision of an `acquire` is the owner's **epoch**, higher than that of
 *     every owner before it. Renewals keep the epoch.
 *  5. A watcher is told every put and delete of its prefix made after it started (an expiry by TTL
 *     may go untold: NATS removes expired messages silently, so owners of a key poll for it too).
 */
import type { WardenError } from '../core/errors.js';

/** A lease its owner holds. */
export interface Lease {
  key: string;
  owner: string;
  /** The revision of the write that acquired it (invariant 4): the owner's fencing epoch. */
  epoch: number;
  /** The revision of its last write; renewals and the release are made on it. */
  revision: number;
  /**
   * Owner's clock time until which it may act on the lease: the start of its last successful write
   * plus the TTL less a safety margin. Past it, the owner must assume the lease is gone.
   */
  validUntil: number;
}

/** What anyone can read of a lease. */
export interface LeaseEntry {
  key: string;
  owner: string;
  epoch: number;
  revision: number;
}

/** A change under a watched prefix (invariant 5). */
export interface LeaseChange {
  key: string;
  /** The entry after a put; undefined after a delete or purge. */
  entry: LeaseEntry | undefined;
}

/** Time-bounded ownership of keys. */
export interface LeaseStore {
  /** Lifetime of a lease after its last write (invariant 2). */
  readonly ttlMs: number;
  /** Invariant 1: the lease on `key` for `owner`, or undefined when a live lease holds it. */
  acquire(key: string, owner: string): Promise<Lease | undefined>;
  /** Invariant 3: the lease extended by a write on its revision; `LEASE_LOST` if it is gone or taken. */
  renew(lease: Lease): Promise<Lease>;
  /** Invariant 3: gives the lease up (a graceful handoff); nothing happens if it was lost. */
  release(lease: Lease): Promise<void>;
  /** Removes `key` whoever holds it, or only if `owner` holds it (a parent clearing a dead child's leases). */
  revoke(key: string, owner?: string): Promise<boolean>;
  /** The live lease on `key`, if any. */
  get(key: string): Promise<LeaseEntry | undefined>;
  /** Every live lease whose key starts with `prefix`. */
  list(prefix: string): Promise<LeaseEntry[]>;
  /** Invariant 5: calls `onChange` on every change under `prefix`; returns the unsubscribe. */
  watch(prefix: string, onChange: (change: LeaseChange) => void): () => void;
  close(): Promise<void>;
}

/** Is `err` the loss of a lease? */
export function isLeaseLost(err: unknown): err is WardenError {
  return (err as WardenError | undefined)?.code === 'LEASE_LOST';
}

/** The body a lease key holds: its owner and epoch (a fresh acquire writes epoch 0: its own revision). */
export interface LeaseValue {
  owner: string;
  epoch: number;
}

/** Parses a stored lease body; an unreadable one reads as nobody's (it expires like any other). */
export function parseLeaseValue(text: string): LeaseValue | undefined {
  try {
    const v = JSON.parse(text) as Partial<LeaseValue>;
    if (typeof v.owner === 'string' && typeof v.epoch === 'number') return { owner: v.owner, epoch: v.epoch };
  } catch {
    // not a lease
  }
  return undefined;
}
