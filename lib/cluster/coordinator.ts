/**
 * The coordinator of one node in a cluster: it keeps the node's membership lease, computes which
 * partitions are the node's (placement.ts), acquires their leases, renews them well inside their
 * TTL, hands partitions over when the membership changes, and gives them up at once when a lease
 * is lost. The node starts and stops partition workers when told (`onGain`, `onLose`).
 *
 *   members: <cluster>.members.<nodeId>      one lease per live node (its heartbeat)
 *   owners:  <cluster>.parts.<pipeline>.<stage>.<partition>   one lease per owned partition
 *
 * Invariants (tests cite them as "coordinator invariant N"):
 *  1. The node runs a partition only while it holds the partition's lease: a worker is started
 *     after the lease is acquired, and stopped (`onLose`) before the lease is released, or at once
 *     when a renewal finds it lost or when the lease's `validUntil` passes without a renewal (a
 *     node paused past its lease stops acting before anything else, see `valid`). A start that
 *     fails (its stream has no leader yet, after an outage) is tried again by every reconcile
 *     while the lease is held and renewed: a partition is never held with nothing running.
 *  2. Every incarnation of a partition's worker gets a fresh epoch: the revision of a lease write
 *     made for it (`epochFor` renews first), higher than every revision before it in the bucket,
 *     so it fences every earlier owner and every earlier incarnation.
 *  3. A partition that the placement gives to another node is handed over: its worker stops
 *     gracefully (final checkpoint), then the lease is released, so the new owner restores that
 *     checkpoint. Partitions that stay are untouched.
 *  4. Reconciling runs one at a time (membership changes, lease changes, the periodic poll that
 *     catches expiries no watcher is told of), and never after `stop()`; the partitions one
 *     reconcile acquires are started together. Renewals do not wait for it, the first reconcile
 *     included (a slow start or handoff never lets another lease run out); the writes on one
 *     lease are serialized.
 *  5. `stop()` hands every owned partition over (graceful stop, then release) and leaves the
 *     membership, so the others take over at once instead of after the TTL.
 *  6. A partition whose worker stopped because its lease had run out for it (`lapsed`: the
 *     process stalled past `validUntil`, though a later renewal may have succeeded) is given up
 *     (stopped, its lease released if still held) and reconciled again: it runs again under a
 *     new epoch, here or on another node, never stays down with its lease held.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError, describeError, WardenError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { OwnershipEvent } from '../pipeline/ownership.js';
import { SerialQueue } from '../supervision/serial-queue.js';
import { isLeaseLost, type Lease, type LeaseStore } from './leases.js';
import { assign } from './placement.js';

/** One partition the cluster places. */
export interface PlacedPartition {
  /** Lease key suffix: `<pipeline>.<stage>.<partition>`. */
  id: string;
  stage: string;
  partition: number;
}

/** Options of a coordinator. */
export interface CoordinatorOptions {
  cluster: string;
  nodeId: string;
  leases: LeaseStore;
  clock: Clock;
  logger: Logger;
  partitions: readonly PlacedPartition[];
  /** Start the partition's worker (the lease is held). */
  onGain: (p: PlacedPartition) => Promise<void>;
  /** Stop the partition's worker: gracefully for a handoff, at once for a lost lease. */
  onLose: (p: PlacedPartition, how: 'handoff' | 'lost') => Promise<void>;
  /** Renew leases this often. @default a third of the TTL */
  renewEveryMs?: number;
  /** Reconcile at least this often (expiries are not always told). @default half the TTL */
  pollEveryMs?: number;
  onEvent?: (event: ClusterEvent) => void;
}

/** What a coordinator reports. */
export type ClusterEvent = OwnershipEvent;

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** A node id for this process: `<host>-<pid>-<random>`, with only characters lease keys allow. */
export function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'node';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Checks a cluster name and a node id (`ConfigError` naming the field). */
export function checkClusterNames(cluster: string, nodeId: string): void {
  if (typeof cluster !== 'string' || !NAME.test(cluster)) throw new ConfigError('cluster.name', `must match ${NAME}, got ${JSON.stringify(cluster)}`);
  if (typeof nodeId !== 'string' || !NODE_ID.test(nodeId)) throw new ConfigError('cluster.nodeId', `must match ${NODE_ID}, got ${JSON.stringify(nodeId)}`);
}

export class Coordinator {
  private readonly queue = new SerialQueue();
  /** Writes on one partition's lease, one at a time (invariant 4). */
  private readonly leaseOps = new Map<string, Promise<unknown>>();
  /** Held leases; `started` once `onGain` succeeded (invariant 1). */
  private readonly owned = new Map<string, { p: PlacedPartition; lease: Lease; started: boolean }>();
  private readonly byId: Map<string, PlacedPartition>;
  private members: string[] = [];
  private membership: Lease | undefined;
  private renewTimer: TimerHandle = undefined;
  private pollTimer: TimerHandle = undefined;
  private unwatch: Array<() => void> = [];
  private reconcileQueued = false;
  private stopped = false;
  private readonly renewEveryMs: number;
  private readonly pollEveryMs: number;

  constructor(private readonly o: CoordinatorOptions) {
    checkClusterNames(o.cluster, o.nodeId);
    this.byId = new Map(o.partitions.map((p) => [p.id, p]));
    this.renewEveryMs = o.renewEveryMs ?? Math.max(1, Math.floor(o.leases.ttlMs / 3));
    this.pollEveryMs = o.pollEveryMs ?? Math.max(1, Math.floor(o.leases.ttlMs / 2));
    for (const [field, v] of [['cluster.renewEveryMs', this.renewEveryMs], ['cluster.pollEveryMs', this.pollEveryMs]] as const) {
      if (!Number.isFinite(v) || v < 1) throw new ConfigError(field, `must be a finite number of ms >= 1, got ${String(v)}`);
    }
    if (this.renewEveryMs >= o.leases.ttlMs) throw new ConfigError('cluster.renewEveryMs', `must be well inside the lease TTL (${o.leases.ttlMs} ms), got ${this.renewEveryMs}`);
  }

  private get membersPrefix(): string {
    return `${this.o.cluster}.members.`;
  }

  private get partsPrefix(): string {
    return `${this.o.cluster}.parts.`;
  }

  /** The partitions this node holds now. */
  ownedPartitions(): Array<{ id: string; epoch: number; validUntil: number }> {
    return [...this.owned.values()].map(({ p, lease }) => ({ id: p.id, epoch: lease.revision, validUntil: lease.validUntil }));
  }

  /** The live members, as last seen. */
  liveMembers(): string[] {
    return [...this.members];
  }

  /** Joins: takes the membership lease (a node id already live is refused), watches, reconciles. */
  async start(): Promise<void> {
    const lease = await this.o.leases.acquire(`${this.membersPrefix}${this.o.nodeId}`, this.o.nodeId);
    if (!lease) throw new ConfigError('cluster.nodeId', `${JSON.stringify(this.o.nodeId)} is already a live member of cluster ${this.o.cluster}`);
    this.membership = lease;
    this.unwatch.push(this.o.leases.watch(this.membersPrefix, () => this.soon()));
    this.unwatch.push(this.o.leases.watch(this.partsPrefix, (c) => {
      if (c.entry === undefined) this.soon(); // a lease was given up: it may be ours to take
    }));
    // Invariant 4: renewals run from now on, not after the first reconcile, whose starts may be slow.
    this.armRenew();
    this.armPoll();
    try {
      await this.reconcile();
    } catch (err) {
      this.stopped = true; // a node whose start failed renews and polls nothing
      this.o.clock.clearTimeout(this.renewTimer);
      this.o.clock.clearTimeout(this.pollTimer);
      for (const off of this.unwatch.splice(0)) off();
      throw err;
    }
  }

  /**
   * Invariant 1: may the node still act on partition `id`? (Checked before every write of its
   * worker.) Also while `stop()` hands the partition over (invariant 5): its final checkpoint is
   * written under the lease, which is released only after it.
   */
  valid(id: string): boolean {
    const held = this.owned.get(id);
    return held !== undefined && this.o.clock.now() < held.lease.validUntil;
  }

  /** Invariant 2: a fresh epoch for a new incarnation of `id` (a lease write); `LEASE_LOST` if the node no longer holds it. */
  epochFor(id: string): Promise<number> {
    return this.onLease(id, async () => {
      const held = this.owned.get(id);
      if (!held || this.stopped) throw new WardenError('LEASE_LOST', `partition ${id} is not held by node ${this.o.nodeId}`, { nonRetryable: true, details: { partition: id } });
      held.lease = await this.o.leases.renew(held.lease);
      return held.lease.revision;
    });
  }

  /** Runs `op` after the writes on `id`'s lease queued before it. */
  private onLease<T>(id: string, op: () => Promise<T>): Promise<T> {
    const result = (this.leaseOps.get(id) ?? Promise.resolve()).then(op, op);
    const tail = result.then(() => undefined, () => undefined);
    this.leaseOps.set(id, tail);
    void tail.then(() => {
      if (this.leaseOps.get(id) === tail) this.leaseOps.delete(id);
    });
    return result;
  }

  /** Gives `id` up: its worker stops (`how`), then its lease is released (invariant 3). */
  private async giveUp(id: string, p: PlacedPartition): Promise<void> {
    const held = this.owned.get(id);
    if (held && this.o.clock.now() >= held.lease.validUntil) {
      // Ran out while the node was paused: nothing to hand over, the worker may not write.
      this.owned.delete(id);
      this.emit({ type: 'lease-lost', partition: id, error: `lease of ${id} ran out (valid until ${held.lease.validUntil})` });
      await this.o.onLose(p, 'lost').catch(() => undefined);
      return;
    }
    await this.o.onLose(p, 'handoff').catch((err: unknown) => this.o.logger.warn({ partition: id, err: describeError(err) }, 'stopping a partition failed'));
    this.owned.delete(id);
    if (held) await this.onLease(id, () => this.o.leases.release(held.lease)).catch(() => undefined);
    this.emit({ type: 'lease-released', partition: id });
  }

  /** Invariant 6. */
  lapsed(id: string): void {
    void this.queue.run(async () => {
      const held = this.owned.get(id);
      if (!held || this.stopped) return;
      this.owned.delete(id);
      this.emit({ type: 'lease-lost', partition: id, error: `the worker of ${id} found its lease run out (valid until ${held.lease.validUntil}) and stopped` });
      this.o.logger.warn({ partition: id }, 'partition worker stopped for a lapsed lease; giving the partition up and placing it again');
      await this.o.onLose(held.p, 'lost').catch(() => undefined);
      await this.onLease(id, () => this.o.leases.release(held.lease)).catch(() => undefined); // may have expired already
    }).catch((err: unknown) => this.o.logger.warn({ partition: id, err: describeError(err) }, 'giving up a lapsed partition failed')).finally(() => this.soon());
  }

  /** Invariant 5. */
  stop(): Promise<void> {
    this.stopped = true;
    this.o.clock.clearTimeout(this.renewTimer);
    this.o.clock.clearTimeout(this.pollTimer);
    for (const off of this.unwatch.splice(0)) off();
    return this.queue.run(async () => {
      for (const [id, { p }] of [...this.owned]) await this.giveUp(id, p);
      if (this.membership) await this.o.leases.release(this.membership).catch(() => undefined);
    });
  }

  /** Invariant 4: one reconcile soon (coalesced). */
  private soon(): void {
    if (this.reconcileQueued || this.stopped) return;
    this.reconcileQueued = true;
    this.reconcile().catch((err: unknown) => this.o.logger.warn({ err: describeError(err) }, 'reconcile failed; the next poll retries'));
  }

  private reconcile(): Promise<void> {
    return this.queue.run(async () => {
      this.reconcileQueued = false;
      if (this.stopped) return;
      const live = (await this.o.leases.list(this.membersPrefix)).map((e) => e.owner);
      if (live.join() !== this.members.join()) {
        this.members = live;
        this.emit({ type: 'members-changed', members: [...live] });
      }
      // A node whose own membership has lapsed takes nothing: the others may already count it gone.
      const member = this.membership !== undefined && this.o.clock.now() < this.membership.validUntil;
      const wanted = assign(member ? (live.includes(this.o.nodeId) ? live : [...live, this.o.nodeId]) : live, [...this.byId.keys()]);
      for (const [id, { p }] of [...this.owned]) {
        if (wanted.get(id) !== this.o.nodeId && !this.stopped) await this.giveUp(id, p); // invariant 3
      }
      // Started together, not one after the other: a slow start (its stream electing a leader)
      // holds back no other; all are done before this reconcile ends (invariant 4).
      const starts: Array<Promise<void>> = [];
      try {
        for (const [id, node] of wanted) {
          if (node !== this.o.nodeId || this.stopped) continue;
          let held = this.owned.get(id);
          if (!held) {
            const lease = await this.o.leases.acquire(`${this.partsPrefix}${id}`, this.o.nodeId);
            if (!lease) continue; // its previous owner still holds it: a later reconcile retries
            held = { p: this.byId.get(id)!, lease, started: false };
            this.owned.set(id, held);
            this.emit({ type: 'lease-acquired', partition: id, epoch: lease.epoch });
          }
          if (!held.started) starts.push(this.startPartition(id, held));
        }
      } finally {
        await Promise.all(starts); // startPartition never rejects
      }
    });
  }

  /** Invariant 1: starts a held partition's worker; a failed start is tried again by the next reconcile. */
  private async startPartition(id: string, held: { p: PlacedPartition; started: boolean }): Promise<void> {
    try {
      await this.o.onGain(held.p);
      held.started = true;
    } catch (err) {
      this.o.logger.error({ partition: id, err: describeError(err) }, 'starting a partition failed; the next reconcile tries again');
    }
  }

  /** Renews the membership and every owned lease; a lost or expired one stops its partition at once (invariant 1). */
  private async renewAll(): Promise<void> {
    if (this.stopped) return;
    if (this.membership) {
      try {
        this.membership = await this.o.leases.renew(this.membership);
      } catch (err) {
        if (isLeaseLost(err) && !this.stopped) {
          this.membership = await this.o.leases.acquire(`${this.membersPrefix}${this.o.nodeId}`, this.o.nodeId);
          this.soon();
        }
      }
    }
    await Promise.all([...this.owned.keys()].map((id) => this.onLease(id, async () => {
      const held = this.owned.get(id);
      if (!held || this.stopped) return;
      try {
        held.lease = await this.o.leases.renew(held.lease);
      } catch (err) {
        const expired = this.o.clock.now() >= held.lease.validUntil;
        if (!isLeaseLost(err) && !expired) {
          this.emit({ type: 'lease-renew-failed', partition: id, error: describeError(err) });
          return; // the store is unreachable: the lease is still valid, try again
        }
        if (this.owned.get(id) !== held) return;
        this.owned.delete(id);
        this.emit({ type: 'lease-lost', partition: id, error: describeError(err) });
        this.o.logger.error({ partition: id, err: describeError(err) }, 'partition lease lost; its worker stops');
        await this.o.onLose(held.p, 'lost').catch(() => undefined);
        this.soon();
      }
    })));
  }

  private armRenew(): void {
    this.renewTimer = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.renewAll().catch((err: unknown) => this.o.logger.warn({ err: describeError(err) }, 'lease renewal failed'));
      this.armRenew();
    }, this.renewEveryMs);
  }

  private armPoll(): void {
    this.pollTimer = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.soon();
      this.armPoll();
    }, this.pollEveryMs);
  }

  private emit(e: ClusterEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch (err) {
      this.o.logger.warn({ event: e.type, err: describeError(err) }, 'cluster event listener threw');
    }
  }
}
