/**
 * What one checkpoint of a partition holds, collected between two inputs (worker invariant 3):
 * the dirty actors, the position, the unacknowledged outbox, the held outputs, the pending
 * timers and calls, under the owner's epoch. The `Checkpointer` decides when; this decides what,
 * and what a written or a failed cut changes.
 *
 * A cut is consistent without blocking the loop for its whole size: between two inputs it takes
 * the position, the outbox, the timers, the calls and a reference to each dirty actor's snapshot
 * (`ActorHost.capture`: xstate's snapshots are immutable values); the persisted snapshots are
 * then built, and sealed by the store, in chunks between which the loop applies further inputs.
 * Those inputs make new snapshots and never change the captured ones, so the cut holds exactly
 * the state at its position (worker invariant 3).
 */
import { describeError, WardenError } from '../core/errors.js';
import type { CheckpointScope } from '../checkpoint/checkpoint-store.js';
import type { CallRunner } from './call-runner.js';
import type { CheckpointCounters, PendingCut } from './checkpointer.js';
import type { KeyedActors } from './keyed-actors.js';
import type { DirtyState } from './keyed-types.js';
import type { Json } from '../core/envelope.js';
import type { Failpoint, WorkerConfig } from './options.js';
import type { Outbox } from './outbox.js';
import type { LogRecords } from './records.js';
import type { TimerWheel } from './timer-wheel.js';

/** Counters of one worker incarnation. */
export interface WorkerStats extends CheckpointCounters {
  appliedSeq: number;
  checkpointSeq: number;
  applied: number;
  deadLettered: number;
  crashes: number;
  outbox: number;
  /** Outputs (and dead letters, timer and call records) the log acknowledged. */
  published: number;
  /** Outputs held until the next checkpoint (`outputs: 'after-checkpoint'`). */
  held: number;
  actors: number;
  /** Actors dropped from memory after `idleMs` without input. */
  passivated: number;
  /** Actors held in memory as their persisted snapshot (the compact tier). */
  compact: number;
  /** Live actors replaced by their persisted snapshot (after `compactMs`, or beyond `maxLiveActors`). */
  compacted: number;
  /** Pending timers of the partition's actors. */
  timers: number;
  timersFired: number;
  /** Guarded calls started by the partition's actors and not settled in the log. */
  callsPending: number;
  /** Calls this incarnation issued. */
  callsIssued: number;
  epoch: number;
}

/** The counters a worker reports, gathered from its collaborators. */
export function statsOf(w: CutSource & { readonly applied: number; readonly timersFired: number; readonly checkpointer: { readonly counters: CheckpointCounters } }): WorkerStats {
  return {
    ...w.checkpointer.counters,
    appliedSeq: w.appliedSeq, checkpointSeq: w.checkpointSeq, applied: w.applied, deadLettered: w.records.deadLettered, crashes: w.actors.crashes,
    outbox: w.outbox.size, published: w.outbox.acknowledged, held: w.records.heldCount, actors: w.actors.size, passivated: w.actors.passivated, compact: w.actors.compactSize, compacted: w.actors.compacted,
    timers: w.wheel.size, timersFired: w.timersFired, callsPending: w.calls.pendingCount, callsIssued: w.calls.issuedCount, epoch: w.epoch,
  };
}

/** What a cut is collected from: the worker and its collaborators. */
export interface CutSource {
  readonly c: WorkerConfig;
  readonly scope: CheckpointScope;
  readonly actors: KeyedActors;
  readonly records: LogRecords;
  readonly wheel: TimerWheel;
  readonly calls: CallRunner;
  readonly outbox: Outbox;
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly aheadSeq: number;
  checkpointSeq: number;
  readonly dead: boolean;
  failpoint(point: Failpoint, seq: number): void;
  killedError(): WardenError;
  leaseLost(): WardenError;
  fail(err: unknown): void;
}

/** Actor snapshots a cut builds between two turns of the event loop. */
export const SNAPSHOTS_PER_CHUNK = 256;

/**
 * Builds the persisted snapshots a cut captured, `SNAPSHOTS_PER_CHUNK` at a time, yielding between
 * chunks so inputs go on meanwhile; each is the state at the cut (`ActorHost.capture`), whatever
 * was applied since. A null-prototype record (keyed-actors invariant 13).
 */
async function persistInChunks(snapshots: DirtyState['snapshots'], turn: () => Promise<void>): Promise<Record<string, Json>> {
  const actors = Object.create(null) as Record<string, Json>;
  for (let i = 0; i < snapshots.length; i++) {
    if (i > 0 && i % SNAPSHOTS_PER_CHUNK === 0) await turn();
    const [key, persist] = snapshots[i]!;
    actors[key] = persist();
  }
  return actors;
}

/** Collects the cut at the current position (called between inputs only). */
export function collectCut(w: CutSource): PendingCut {
  const { c } = w;
  const seq = Math.max(w.appliedSeq, w.aheadSeq);
  const actorsSeq = w.appliedSeq; // at-most-once commits ahead of what the actors hold (worker invariant 8)
  const state = w.actors.takeDirty();
  const release = w.records.takeHeld();
  const timers = w.wheel.entries();
  const calls = w.calls.entries();
  return {
    seq,
    async write() {
      // At-least-once: if the outbox closed before the cut's outputs were acknowledged, the cut must not be written.
      if (c.settleBeforeCut && !(await w.outbox.settled())) {
        throw new WardenError('STOPPED', `checkpoint of ${c.where} at seq ${seq} abandoned: its outputs were not acknowledged before the worker ended`);
      }
      const actors = await persistInChunks(state.snapshots, c.yieldEvery.yield);
      w.failpoint('before-checkpoint-write', seq);
      if (w.dead) throw w.killedError();
      if (c.leaseValid && !c.leaseValid()) {
        const lost = w.leaseLost();
        w.fail(lost); // worker invariant 17
        throw lost;
      }
      return c.store.write({
        scope: w.scope,
        seq,
        ...(actorsSeq < seq ? { actorsSeq } : {}),
        epoch: w.epoch,
        machineVersion: c.stage.actor.version,
        actors,
        removed: state.removed,
        outbox: [...w.outbox.entries(), ...release],
        timers,
        calls,
      });
    },
    committed(result, durationMs) {
      w.failpoint('after-checkpoint-write', seq);
      if (w.dead) return;
      w.checkpointSeq = seq;
      w.actors.committed(state, seq);
      w.records.release(release); // worker invariant 10
      c.emit({ type: 'checkpoint', seq, bytes: result.bytes, actors: state.keys.length, durationMs });
    },
    failed(err) {
      if (w.dead) return;
      w.actors.restoreDirty(state);
      w.records.restore(release);
      c.emit({ type: 'checkpoint-failed', seq, error: describeError(err), ...(err instanceof WardenError ? { code: err.code } : {}) });
      c.logger.warn({ stage: c.stage.name, partition: c.partition, seq, err }, 'checkpoint failed; the actors keep their state and the next trigger retries');
      if (err instanceof WardenError && err.code === 'CHECKPOINT_FENCED') w.fail(err);
    },
  };
}
