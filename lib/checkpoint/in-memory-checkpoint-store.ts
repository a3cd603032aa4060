/**
 * `InMemoryCheckpointStore`: the embedded default. Entries are stored sealed (serialised and
 * checksummed) exactly as a durable store would hold them, so state is never shared by
 * reference with a live actor and corruption is detectable. Keeps the invariants of
 * `checkpoint-store.ts`, and behaves as `RedisCheckpointStore` does wherever the contract suite
 * (`test/contract/checkpoint-store.contract.ts`) looks: an epoch or seq that is not a
 * non-negative integer, and a snapshot or outbox JSON cannot serialise, are refused with
 * `VALIDATION` (naming the scope, and the key) before anything changes.
 */
import { randomBytes } from 'node:crypto';
import { SystemClock, type Clock } from '../core/clock.js';
import { CheckpointFencedError, WardenError } from '../core/errors.js';
import {
  scopeId,
  type ActorEntry,
  type Claim,
  type CheckpointMeta,
  type CheckpointScope,
  type CheckpointStore,
  type CheckpointWrite,
  type WriteResult,
} from './checkpoint-store.js';
import { openEntry, openSettled, sealEntry } from './codec.js';

interface Partition {
  meta: string;
  epoch: number;
  seq: number;
  actors: Map<string, string>;
}

function isNonNegativeInteger(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Seals `value`; a value JSON cannot serialise (a cycle, a BigInt) is refused as `VALIDATION`. */
function sealOrRefuse(value: unknown, what: () => string, details: Record<string, unknown>): string {
  try {
    return sealEntry(value);
  } catch (err) {
    throw new WardenError('VALIDATION', `${what()} is not serialisable: ${(err as Error).message}`, { cause: err, nonRetryable: true, details });
  }
}

/**
 * @example
 * const store = new InMemoryCheckpointStore();
 * await store.write({ scope: { operator: 'sessions', partition: 0 }, seq: 10, epoch: 1,
 *   machineVersion: '1', actors: { alice: snapshot }, outbox: [] });
 */
export class InMemoryCheckpointStore implements CheckpointStore {
  private readonly partitions = new Map<string, Partition>();
  /** Invariants 6 and 7: claimed epochs and record keys, kept apart from the checkpoints. */
  private readonly claims = new Map<string, Claim>();
  private readonly clock: Clock;
  private readonly newKey: () => string;
  /** Writes accepted, for tests and metrics. */
  writes = 0;

  /**
   * @param options.recordKey source of a scope's record key at its first claim. @default 16 random bytes, hex
   */
  constructor(options: { clock?: Clock; recordKey?: () => string } = {}) {
    this.clock = options.clock ?? new SystemClock();
    this.newKey = options.recordKey ?? (() => randomBytes(16).toString('hex'));
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async claim(scope: CheckpointScope, epoch?: number): Promise<Claim> {
    const id = scopeId(scope);
    if (epoch !== undefined && (!isNonNegativeInteger(epoch) || epoch === 0)) {
      throw new WardenError('VALIDATION', `claim of ${id} refused: epoch must be a positive integer, got ${String(epoch)}`, { nonRetryable: true, details: { scope: id, epoch } });
    }
    const held = this.claims.get(id);
    const stored = Math.max(held?.epoch ?? 0, this.partitions.get(id)?.epoch ?? 0);
    if (epoch !== undefined && epoch <= stored) {
      throw new CheckpointFencedError(`claim of ${id} refused: epoch ${epoch} is not newer than claimed epoch ${stored}`, { scope: id, epoch, storedEpoch: stored });
    }
    const claim = { epoch: epoch ?? stored + 1, recordKey: held?.recordKey ?? this.newKey() };
    this.claims.set(id, claim);
    return { ...claim };
  }

  // The methods are async so that every failure, even one raised while serialising, is a
  // rejected promise and never a synchronous throw.
  readClaim(scope: CheckpointScope): Promise<Claim | undefined> {
    const c = this.claims.get(scopeId(scope));
    return Promise.resolve(c ? { ...c } : undefined);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async write(cp: CheckpointWrite): Promise<WriteResult> {
    const id = scopeId(cp.scope);
    // A NaN or fractional position would compare false against everything and switch fencing
    // off for the scope for good; the Redis store refuses such writes too.
    if (!isNonNegativeInteger(cp.epoch) || !isNonNegativeInteger(cp.seq)) {
      throw new WardenError('VALIDATION', `checkpoint ${id} refused: epoch and seq must be non-negative integers (epoch ${String(cp.epoch)}, seq ${String(cp.seq)})`, {
        nonRetryable: true,
        details: { scope: id, epoch: cp.epoch, seq: cp.seq },
      });
    }
    const actorsSeq = cp.actorsSeq ?? cp.seq;
    if (!isNonNegativeInteger(actorsSeq) || actorsSeq > cp.seq) {
      throw new WardenError('VALIDATION', `checkpoint ${id} refused: actorsSeq must be an integer in 0..seq (${cp.seq}), got ${String(cp.actorsSeq)}`, {
        nonRetryable: true,
        details: { scope: id, seq: cp.seq, actorsSeq: cp.actorsSeq },
      });
    }
    const existing = this.partitions.get(id);
    const storedEpoch = Math.max(existing?.epoch ?? 0, this.claims.get(id)?.epoch ?? 0);
    if (cp.epoch < storedEpoch) {
      throw new CheckpointFencedError(`checkpoint ${id} refused: epoch ${cp.epoch} is older than stored epoch ${storedEpoch}`, {
        scope: id, epoch: cp.epoch, storedEpoch,
      });
    }
    if (existing && cp.seq < existing.seq) {
      throw new CheckpointFencedError(`checkpoint ${id} refused: seq ${cp.seq} goes backwards from stored seq ${existing.seq}`, {
        scope: id, seq: cp.seq, storedSeq: existing.seq,
      });
    }
    // Invariant 1: seal everything first, and change the stored entries only when all of it
    // succeeded (in place: a write costs its own entries, not the partition's).
    const sealedActors: Array<[string, string]> = [];
    let bytes = 0;
    for (const [key, snapshot] of Object.entries(cp.actors)) {
      const entry: ActorEntry = { key, snapshot, machineVersion: cp.machineVersion, seq: actorsSeq };
      const sealed = sealOrRefuse(entry, () => `checkpoint ${id} actor ${key}`, { scope: id, key });
      bytes += sealed.length;
      sealedActors.push([key, sealed]);
    }
    const actors = existing?.actors ?? new Map<string, string>();
    const removed = new Set(cp.removed ?? []);
    let count = actors.size; // after the entries are set and the removed keys deleted
    for (const [key] of sealedActors) if (!actors.has(key) && !removed.has(key)) count++;
    for (const key of removed) if (actors.has(key)) count--;
    const meta: CheckpointMeta = {
      scope: { ...cp.scope },
      seq: cp.seq,
      epoch: cp.epoch,
      machineVersion: cp.machineVersion,
      outbox: cp.outbox,
      timers: cp.timers ?? [],
      calls: cp.calls ?? [],
      actorCount: count,
      writtenAtMs: this.clock.now(),
    };
    const sealedMeta = sealOrRefuse(meta, () => `checkpoint ${id} meta`, { scope: id });
    bytes += sealedMeta.length;
    for (const [key, sealed] of sealedActors) actors.set(key, sealed);
    for (const key of removed) actors.delete(key);
    this.partitions.set(id, { meta: sealedMeta, epoch: cp.epoch, seq: cp.seq, actors });
    this.writes++;
    return { seq: cp.seq, epoch: cp.epoch, bytes };
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async readMeta(scope: CheckpointScope): Promise<CheckpointMeta | undefined> {
    const p = this.partitions.get(scopeId(scope));
    return p ? openEntry<CheckpointMeta>(p.meta, `${scopeId(scope)}#meta`) : undefined;
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async readActor(scope: CheckpointScope, key: string): Promise<ActorEntry | undefined> {
    const sealed = this.partitions.get(scopeId(scope))?.actors.get(key);
    return sealed === undefined ? undefined : openEntry<ActorEntry>(sealed, `${scopeId(scope)}#${key}`);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async readActorsOf(scope: CheckpointScope, keys: readonly string[]): Promise<Array<PromiseSettledResult<ActorEntry | undefined>>> {
    const actors = this.partitions.get(scopeId(scope))?.actors;
    return keys.map((key) => openSettled(actors?.get(key) ?? null, `${scopeId(scope)}#${key}`));
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async readActors(scope: CheckpointScope): Promise<ActorEntry[]> {
    const p = this.partitions.get(scopeId(scope));
    if (!p) return [];
    return [...p.actors].map(([key, sealed]) => openEntry<ActorEntry>(sealed, `${scopeId(scope)}#${key}`));
  }

  clear(scope: CheckpointScope): Promise<void> {
    const id = scopeId(scope);
    const p = this.partitions.get(id);
    // Invariant 7: the fencing epoch outlives the checkpoint.
    if (p) this.claims.set(id, { epoch: Math.max(p.epoch, this.claims.get(id)?.epoch ?? 0), recordKey: this.claims.get(id)?.recordKey ?? this.newKey() });
    this.partitions.delete(id);
    return Promise.resolve();
  }

  drop(scope: CheckpointScope): Promise<void> {
    this.partitions.delete(scopeId(scope));
    this.claims.delete(scopeId(scope));
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Test hook: damage the stored bytes of an entry (`key` omitted = the meta). */
  corrupt(scope: CheckpointScope, key?: string): void {
    const p = this.partitions.get(scopeId(scope));
    if (!p) return;
    if (key === undefined) p.meta = p.meta.slice(0, -2) + 'xx';
    else {
      const v = p.actors.get(key);
      if (v !== undefined) p.actors.set(key, v.slice(0, -2) + 'xx');
    }
  }
}
