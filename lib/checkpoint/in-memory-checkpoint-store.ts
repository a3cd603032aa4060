/**
 * `InMemoryCheckpointStore`: the embedded default. Entries are stored sealed (serialised and
 * checksummed) exactly as a durable store would hold them, so state is never shared by
 * reference with a live actor and corruption is detectable. Keeps the invariants of
 * `checkpoint-store.ts`, and behaves as `RedisCheckpointStore` does wherever the contract suite
 * (`test/contract/checkpoint-store.contract.ts`) looks: an epoch or seq that is not a
 * non-negative integer, and a snapshot or outbox JSON cannot serialise, are refused with
 * `VALIDATION` (naming the scope, and the key) before anything changes.
 */
import { SystemClock, type Clock } from '../core/clock.js';
import { CheckpointFencedError, WardenError } from '../core/errors.js';
import {
  scopeId,
  type ActorEntry,
  type CheckpointMeta,
  type CheckpointScope,
  type CheckpointStore,
  type CheckpointWrite,
  type WriteResult,
} from './checkpoint-store.js';
import { openEntry, sealEntry } from './codec.js';

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
  private readonly clock: Clock;
  /** Writes accepted, for tests and metrics. */
  writes = 0;

  constructor(options: { clock?: Clock } = {}) {
    this.clock = options.clock ?? new SystemClock();
  }

  // The methods are async so that every failure, even one raised while serialising, is a
  // rejected promise and never a synchronous throw.
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
    const existing = this.partitions.get(id);
    if (existing && cp.epoch < existing.epoch) {
      throw new CheckpointFencedError(`checkpoint ${id} refused: epoch ${cp.epoch} is older than stored epoch ${existing.epoch}`, {
        scope: id, epoch: cp.epoch, storedEpoch: existing.epoch,
      });
    }
    if (existing && cp.seq < existing.seq) {
      throw new CheckpointFencedError(`checkpoint ${id} refused: seq ${cp.seq} goes backwards from stored seq ${existing.seq}`, {
        scope: id, seq: cp.seq, storedSeq: existing.seq,
      });
    }
    // Invariant 1: seal everything into a copy, and swap it in only when all of it succeeded.
    const actors = new Map<string, string>(existing?.actors);
    let bytes = 0;
    for (const [key, snapshot] of Object.entries(cp.actors)) {
      const entry: ActorEntry = { key, snapshot, machineVersion: cp.machineVersion, seq: cp.seq };
      const sealed = sealOrRefuse(entry, () => `checkpoint ${id} actor ${key}`, { scope: id, key });
      bytes += sealed.length;
      actors.set(key, sealed);
    }
    for (const key of cp.removed ?? []) actors.delete(key);
    const meta: CheckpointMeta = {
      scope: { ...cp.scope },
      seq: cp.seq,
      epoch: cp.epoch,
      machineVersion: cp.machineVersion,
      outbox: cp.outbox,
      timers: cp.timers ?? [],
      calls: cp.calls ?? [],
      actorCount: actors.size,
      writtenAtMs: this.clock.now(),
    };
    const sealedMeta = sealOrRefuse(meta, () => `checkpoint ${id} meta`, { scope: id });
    bytes += sealedMeta.length;
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
  async readActors(scope: CheckpointScope): Promise<ActorEntry[]> {
    const p = this.partitions.get(scopeId(scope));
    if (!p) return [];
    return [...p.actors].map(([key, sealed]) => openEntry<ActorEntry>(sealed, `${scopeId(scope)}#${key}`));
  }

  clear(scope: CheckpointScope): Promise<void> {
    this.partitions.delete(scopeId(scope));
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
