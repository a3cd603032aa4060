/**
 * The CheckpointStore port. A checkpoint is a cache of "the state of a partition's actors
 * after applying its log up to sequence `seq`"; the log stays the record of truth.
 *
 * Invariants every implementation keeps (the contract suite checks them):
 *  1. A write is atomic: the partition's meta (seq, epoch, machine version, outbox, timers, calls) and every
 *     actor entry in it become visible together, or not at all.
 *  2. A write whose `epoch` is older than the stored epoch is refused (`CHECKPOINT_FENCED`):
 *     a zombie owner can never overwrite its successor.
 *  3. A write whose `seq` is lower than the stored seq is refused (`CHECKPOINT_FENCED`):
 *     positions never go backwards. An equal seq is accepted (an idempotent re-write).
 *  4. Actor entries not named in a write keep their last written value (a write carries only
 *     the actors that changed); `removed` keys are deleted in the same atomic step.
 *  5. Every entry carries a checksum of its bytes; a read that finds a mismatch raises
 *     `CHECKPOINT_CORRUPT` naming the scope and key, never returns the damaged value.
 *  6. `claim` is atomic and strictly increasing per scope: two claims never get the same epoch,
 *     and a claim is never lower than any epoch claimed or written before. After a claim, a
 *     write under an older epoch is refused (invariant 2) even before the new owner wrote.
 *  7. The claimed epoch and the scope's record key outlive `clear` (a lost, corrupt or cleared
 *     checkpoint never resets fencing); only `drop` (teardown) removes them.
 */
import type { Json } from '../core/envelope.js';

/** Which partition of which operator a checkpoint belongs to. */
export interface CheckpointScope {
  operator: string;
  partition: number;
}

/** An output produced but not yet acknowledged by the log when the checkpoint was cut. */
export interface OutboxEntry {
  subject: string;
  msgId: string;
  /** The envelope body, as a JSON string. */
  body: string;
}

/**
 * A pending timer of one actor at the cut. The partition keeps the whole list in its meta, so a
 * restored worker re-arms every timer without loading every actor.
 */
export interface TimerIndexEntry {
  key: string;
  /** The timer's deterministic ID (`<seq>.<n>`, see lib/actor/timers.ts). */
  id: string;
  /** Log time (ms) at which it fires. */
  dueMs: number;
}

/** A guarded call an actor started whose result is not in the log yet (lib/actor/calls.ts). */
export interface CallIndexEntry {
  key: string;
  id: string;
}

/** What a claim gives its owner. */
export interface Claim {
  /** The owner's fencing epoch: every write it makes carries it. */
  epoch: number;
  /**
   * A secret of the scope, created by its first claim and the same for every later one: the
   * owner authenticates the records it appends to its own log with it (lib/worker/records.ts).
   */
  recordKey: string;
}

/** What one checkpoint write carries. */
export interface CheckpointWrite {
  scope: CheckpointScope;
  /** Stream sequence of the partition's last applied (or, at-most-once, committed) input. */
  seq: number;
  /**
   * Sequence the written actor entries reflect, when it is below `seq`: an at-most-once owner
   * commits its position ahead of the inputs it has applied. @default seq
   */
  actorsSeq?: number;
  /** Fencing epoch of the writer. */
  epoch: number;
  /** Version of the operator's machine that produced the snapshots. */
  machineVersion: string;
  /** Persisted snapshots of the actors that changed since the last write, by key. */
  actors: Record<string, Json>;
  /** Keys whose entries are deleted. @default [] */
  removed?: string[];
  /** Outputs not yet acknowledged by the log at the cut. */
  outbox: OutboxEntry[];
  /** Every pending timer of the partition at the cut (replaces the stored list). @default [] */
  timers?: TimerIndexEntry[];
  /** Every pending guarded call of the partition at the cut (replaces the stored list). @default [] */
  calls?: CallIndexEntry[];
}

/** The stored meta of a partition checkpoint. */
export interface CheckpointMeta {
  scope: CheckpointScope;
  seq: number;
  epoch: number;
  machineVersion: string;
  outbox: OutboxEntry[];
  /** Every pending timer of the partition at the cut. */
  timers: TimerIndexEntry[];
  /** Every pending guarded call of the partition at the cut. */
  calls: CallIndexEntry[];
  /** Number of actor entries stored. */
  actorCount: number;
  /** Store clock time of the write (ms). */
  writtenAtMs: number;
}

/** One actor's stored entry. */
export interface ActorEntry {
  key: string;
  snapshot: Json;
  machineVersion: string;
  /** Sequence of the inputs this entry's state reflects (the write's `actorsSeq`, else its `seq`). */
  seq: number;
}

/** Result of a successful write. */
export interface WriteResult {
  seq: number;
  epoch: number;
  /** Bytes written in this write. */
  bytes: number;
}

/** Durable storage for partition checkpoints. */
export interface CheckpointStore {
  /**
   * Takes ownership of `scope` (invariant 6): the next epoch, or `epoch` if it is newer than every
   * epoch claimed or written before (else `CHECKPOINT_FENCED`). An epoch comes from a lease when
   * an outside authority (the cluster) decides ownership.
   */
  claim(scope: CheckpointScope, epoch?: number): Promise<Claim>;
  /** The last claim of `scope` (its epoch and record key), changing nothing; undefined if never claimed. */
  readClaim(scope: CheckpointScope): Promise<Claim | undefined>;
  write(cp: CheckpointWrite): Promise<WriteResult>;
  /** The partition's checkpoint meta, or undefined if it was never written. */
  readMeta(scope: CheckpointScope): Promise<CheckpointMeta | undefined>;
  /** One actor's entry, or undefined. */
  readActor(scope: CheckpointScope, key: string): Promise<ActorEntry | undefined>;
  /**
   * The entries of `keys` read together (one round trip for a batch), one settled result per
   * key in the order given: fulfilled with the entry or undefined, rejected for a key whose entry
   * is corrupt (`CHECKPOINT_CORRUPT`, that key only). The promise itself rejects when the read
   * fails. Optional: a partition whose store lacks it reads each key with `readActor`, all
   * requests at once.
   */
  readActorsOf?(scope: CheckpointScope, keys: readonly string[]): Promise<Array<PromiseSettledResult<ActorEntry | undefined>>>;
  /** Every actor entry of the partition. */
  readActors(scope: CheckpointScope): Promise<ActorEntry[]>;
  /**
   * Removes the partition's checkpoint (meta, position, actor entries); its claimed epoch and record
   * key stay (invariant 7), so a cleared partition is still fenced against its old owners.
   */
  clear(scope: CheckpointScope): Promise<void>;
  /** Removes everything of the scope, claims included (a pipeline's teardown, when no node runs). */
  drop(scope: CheckpointScope): Promise<void>;
  close(): Promise<void>;
}

/** `operator/partition`, for messages and map keys. */
export function scopeId(scope: CheckpointScope): string {
  return `${scope.operator}/${scope.partition}`;
}
