/**
 * The keyed actors of one partition (OTP's simple_one_for_one): loaded on their first input,
 * stepped, rebuilt after a crash, reset into a safe state, passivated when idle, and tracked as
 * dirty until a cut holds their state.
 *
 * Invariants (tests cite them as "worker invariant N", the numbers of lib/worker/worker.ts):
 *  6. A crashed actor is rebuilt from its checkpoint entry plus the replay of its own inputs
 *     since (or from its initial state, by the stage's `supervision.restartFrom`, or when the
 *     rebuilt state is not one of its `safeStates`), after the key's backoff; the input that
 *     crashed it is retried up to `maxCrashesPerInput` times, then reported `poisoned`. An actor
 *     that cannot even be created or restored (its `input(key)` or its restore throws) crashed on
 *     that input too. More restarts than the stage's intensity allows are reported `escalated`.
 *  7'. Once the worker is dead (killed or failed), nothing is stepped, loaded or rebuilt into
 *     the partition: a host that arrives late is stopped.
 * 11. An idle actor (`idleMs`) is dropped from memory only when its latest state is in a written
 *     cut; its timers stay armed in the partition's timer wheel.
 * 13. Keys are map keys, never property names: `__proto__`, `constructor` and the like are
 *     ordinary keys, in memory and in every cut.
 * 20. Batch loading (`prefetch`): stated in batch.ts.
 * 21. An input to an actor in memory and active is stepped synchronously: no promise, no
 *     microtask between the input and its outcome; the asynchronous path is taken only to load,
 *     start a new life, back off after a crash, or rebuild. Either path gives the same outcome.
 * 22. The compact tier: stated in compact-tier.ts.
 * 23. A key's entry that cannot be read because the store does not answer (`TRANSPORT_CLOSED`,
 *     `TIMEOUT`, retryable) is read again with backoff (10 ms doubling to 1 s) until it can be,
 *     while the partition waits on that input: the actors it holds stay in memory and the
 *     partition goes on as soon as the store answers (it does not fail and restart, which would
 *     drop them and need the store to claim the partition again). A kill or a failure of the
 *     worker ends the wait; so does a graceful stop (`StoreWaitAbandoned`: the worker stops, the
 *     input stays in the log for the next owner).
 */
import type { ActorEntry } from '../checkpoint/checkpoint-store.js';
import { ActorHost, type ActorHostOptions, type LogPoint } from '../actor/actor-host.js';
import { SharedActorSystem } from '../actor/actor-system.js';
import type { Json } from '../core/envelope.js';
import { ActorCrashedError, describeError, WardenError } from '../core/errors.js';
import { sleep } from '../core/clock.js';
import { readEntries } from './batch.js';
import { CompactTier } from './compact-tier.js';
import { KeyRestarts } from './key-restarts.js';
import type { WorkerConfig } from './options.js';
import { isUnusableCheckpoint, loadActor, rebuildActor } from './replay.js';
import { RejectedStep, StoreWaitAbandoned, type ActorsOwner, type DirtyState, type StepOutcome } from './keyed-types.js';

/** Invariant 23: an error of a store that does not answer now, which a later read may not meet. */
function storeUnavailable(err: unknown): boolean {
  return err instanceof WardenError && !err.nonRetryable && (err.code === 'TRANSPORT_CLOSED' || err.code === 'TIMEOUT');
}

/** No entry prefetched: one shared empty map. */
const NOTHING_PREFETCHED = new Map<string, Promise<ActorEntry | undefined>>(); // never added to: a load only deletes from it

export class KeyedActors {
  private readonly actors = new Map<string, ActorHost>();
  /** Invariant 22: idle actors as their persisted snapshots. */
  private readonly compact: CompactTier;
  private readonly dirty = new Set<string>();
  /** Keys in memory by last input, least recent first (passivation). */
  private readonly lastActive = new Map<string, number>();
  /** Replay start for keys removed (reached a final state) during this incarnation. */
  private readonly removedAt = new Map<string, number>();
  /** Inputs dead-lettered by this incarnation: never replayed into an actor. */
  readonly poisoned = new Set<number>();
  private readonly restarts: KeyRestarts;
  /** Invariant 20: entries read ahead for the batch being applied, by key. */
  private prefetched = NOTHING_PREFETCHED;
  crashes = 0;
  passivated = 0;
  compacted = 0;
  /** Least-recently-active order is kept only when something reads it (passivation, compaction). */
  private readonly trackActivity: boolean;
  readonly system: SharedActorSystem; // every host of the partition runs in it (lib/actor/actor-system.ts)

  constructor(
    private readonly c: WorkerConfig,
    private readonly owner: ActorsOwner,
  ) {
    this.system = new SharedActorSystem(c.clock);
    this.restarts = new KeyRestarts(c.stage.supervision, c.clock, c.random);
    this.compact = new CompactTier(c.clock.now());
    this.trackActivity = c.stage.idleMs > 0 || c.stage.compactMs > 0;
  }

  /** Live actors in memory. */
  get size(): number {
    return this.actors.size;
  }

  /** Compact actors in memory (invariant 22). */
  get compactSize(): number {
    return this.compact.size;
  }

  get(key: string): ActorHost | undefined {
    return this.actors.get(key);
  }

  /**
   * Sends one input to the actor of `key` (`step`), loading it first, and rebuilding it after a
   * crash (invariant 6). `existingOnly`: a timer or call record, which creates no actor.
   * Invariant 21: an input to an active actor in memory is applied synchronously (the outcome,
   * not a promise); only a load, a crash or a rollback makes it asynchronous.
   */
  apply<T>(key: string, at: LogPoint, step: (host: ActorHost) => T, existingOnly: boolean): StepOutcome<T> | Promise<StepOutcome<T>> {
    let host = this.actors.get(key);
    try {
      if (host === undefined && !this.owner.dead && this.compact.has(key)) host = this.wake(key); // invariant 22
      if (host === undefined || this.owner.dead || host.status !== 'active') return this.applyFrom(1, key, at, step, existingOnly);
      return this.stepOn(key, host, step);
    } catch (err) {
      return this.afterThrow(err, 1, key, at).then((o) => o ?? this.applyFrom(2, key, at, step, existingOnly));
    }
  }

  private async applyFrom<T>(first: number, key: string, at: LogPoint, step: (host: ActorHost) => T, existingOnly: boolean): Promise<StepOutcome<T>> {
    for (let attempt = first; ; attempt++) {
      try {
        let host = this.actors.get(key) ?? (await this.load(key, at, existingOnly));
        if (this.owner.dead) return { kind: 'dead' };
        if (!host) return { kind: 'absent' };
        if (host.status === 'done') {
          if (existingOnly) return { kind: 'absent' }; // a timer of a finished life
          // A keyed actor that reached a final state starts a new life on its next input.
          host = this.newHost(key, at);
          this.actors.set(key, host);
        }
        return this.stepOn(key, host, step);
      } catch (err) {
        const outcome = await this.afterThrow(err, attempt, key, at);
        if (outcome) return outcome;
      }
    }
  }

  private stepOn<T>(key: string, host: ActorHost, step: (host: ActorHost) => T): StepOutcome<T> {
    const value = step(host);
    this.dirty.add(key);
    this.touch(key, host);
    return { kind: 'applied', value };
  }

  /** A step (or load) threw: the outcome to report, or undefined to try the input again (invariant 6). */
  private async afterThrow(err: unknown, attempt: number, key: string, at: LogPoint): Promise<StepOutcome<never> | undefined> {
    if (err instanceof RejectedStep) {
      this.poisoned.add(at.seq);
      await this.recover(key, at);
      return this.owner.dead ? { kind: 'dead' } : { kind: 'rejected', error: err.reason };
    }
    if (!(err instanceof ActorCrashedError)) throw err;
    if (this.owner.dead) return { kind: 'dead' };
    this.crashes++;
    this.c.emit({ type: 'actor-crashed', key, seq: at.seq, attempt, error: describeError(err) });
    this.c.logger.warn({ stage: this.c.stage.name, partition: this.c.partition, key, seq: at.seq, attempt, err }, 'actor crashed');
    let delayMs: number;
    try {
      delayMs = this.restarts.record(key, this.c.where);
    } catch (escalation) {
      this.poisoned.add(at.seq);
      return { kind: 'escalated', error: escalation as WardenError, crash: err };
    }
    if (delayMs > 0) await sleep(this.c.clock, delayMs, this.owner.ended).catch(() => undefined);
    if (this.owner.dead) return { kind: 'dead' };
    if (attempt >= this.c.stage.maxCrashesPerInput) {
      this.poisoned.add(at.seq);
      await this.recover(key, at);
      return this.owner.dead ? { kind: 'dead' } : { kind: 'poisoned', error: err };
    }
    await this.recover(key, at);
    return this.owner.dead ? { kind: 'dead' } : undefined;
  }

  /**
   * Rebuilds `key` to just before `before` (invariant 6) after a crash, an escalation or a rolled-back
   * input; an actor that cannot even be created is left out (its next input tries again).
   */
  async recover(key: string, before: LogPoint): Promise<void> {
    try {
      await this.rebuild(key, before);
    } catch (err) {
      if (!(err instanceof ActorCrashedError)) throw err;
      this.drop(key);
    }
  }

  /**
   * A timer firing or call result dead-lettered after crashing its actor: the rebuilt actor still
   * has it pending; it is dropped, or every cut would carry it and a successor fire it again.
   */
  forget(key: string, forget: (host: ActorHost) => void): void {
    const host = this.actors.get(key);
    if (!host || this.owner.dead) return;
    forget(host);
    this.dirty.add(key);
    this.touch(key, host);
  }

  /**
   * Invariant 20: reads the checkpoint entries of `keys` not in memory, every request at once;
   * replaces what an earlier batch prefetched. Resolves when all are read (failures are kept for
   * the load that uses them); undefined when every key is in memory (nothing to wait for).
   */
  prefetch(keys: Iterable<string>): Promise<void> | undefined {
    let missing: string[] | undefined;
    for (const key of keys) if (!this.actors.has(key) && !this.compact.has(key)) (missing ??= []).push(key);
    if (missing === undefined) {
      // Every key is in memory (the common case): nothing to read, no promise.
      if (this.prefetched.size > 0) this.prefetched = NOTHING_PREFETCHED;
      return undefined;
    }
    const ctx = this.owner.restoreContext();
    this.prefetched = readEntries(ctx.store, ctx.scope, missing);
    return Promise.allSettled(this.prefetched.values()).then(() => undefined);
  }

  /** Loads `key` (a restored cut listed it with pending calls); no-op if it is in memory. */
  async ensureLoaded(key: string, at: LogPoint): Promise<void> {
    if (!this.actors.has(key) && !this.compact.has(key)) await this.load(key, at, true);
  }

  /** The state of every dirty actor, for a cut. */
  takeDirty(): DirtyState {
    const snapshots: DirtyState['snapshots'] = [];
    const removed: string[] = [];
    const keys: string[] = [];
    for (const key of this.dirty) {
      const host = this.actors.get(key);
      const compact = host ? undefined : this.compact.peek(key);
      if (!host && compact === undefined) continue; // not in memory right now: stays dirty for the next cut
      keys.push(key);
      if (compact !== undefined) snapshots.push([key, () => JSON.parse(compact) as Json]); // invariant 22: only active actors are compact
      else if (host!.status === 'done') removed.push(key);
      else snapshots.push([key, host!.capture()]);
    }
    for (const key of keys) this.dirty.delete(key);
    return { snapshots, removed, keys };
  }

  /** The cut that took `state` failed: its keys are dirty again. */
  restoreDirty(state: DirtyState): void {
    for (const key of state.keys) this.dirty.add(key);
  }

  /** The cut at `seq` that took `state` was written. */
  committed(state: DirtyState, seq: number): void {
    for (const key of state.removed) this.removedAt.set(key, seq);
  }

  /** Marks `key` dirty (its entry must be rewritten by the next cut). */
  markDirty(key: string): void {
    if (this.actors.has(key) || this.compact.has(key)) this.dirty.add(key);
  }

  /**
   * Invariant 11: drops actors idle since `cutoff` whose latest state is in a written cut.
   * Returns true when idle actors with unwritten changes need a cut first.
   */
  passivate(cutoff: number): boolean {
    let needCut = false;
    const idle = (key: string): void => {
      if (this.dirty.has(key)) needCut = true;
      else {
        this.drop(key);
        this.passivated++;
      }
    };
    for (const [key, last] of this.lastActive) {
      if (last > cutoff) break; // least recent first
      idle(key);
    }
    for (const key of this.compact.idleSince(cutoff)) idle(key);
    return needCut;
  }

  /**
   * Invariant 22: compacts the live actors idle since `cutoff`, and the least recently active
   * beyond `maxLiveActors`, looking at no more than `budget` of them (the rest wait for the next
   * call, so a call never blocks the loop for long).
   */
  compactIdle(cutoff: number, budget: number): void {
    const limit = this.c.stage.maxLiveActors;
    let looked = 0;
    for (const [key, last] of this.lastActive) {
      if (last > cutoff && this.actors.size <= limit) return; // least recent first: the rest are newer
      if (looked++ >= budget) return;
      const host = this.actors.get(key);
      if (!host || host.status !== 'active' || host.hasCalls || host.crashed) continue;
      const json = JSON.stringify(host.persisted());
      host.stop();
      this.actors.delete(key);
      this.lastActive.delete(key);
      this.compact.put(key, json, last);
      this.compacted++;
    }
  }

  stopAll(): void {
    for (const host of this.actors.values()) host.stop();
    this.compact.clear();
    this.system.stop();
  }

  /** The state of `key`, if in memory (live or compact). */
  inspect(key: string): { value: unknown; context: unknown; status: string } | undefined {
    const host = this.actors.get(key);
    if (host) return host.snapshot();
    const compact = this.compact.peek(key);
    if (compact === undefined) return undefined;
    const { value, context, status } = JSON.parse(compact) as { value: unknown; context: unknown; status: string };
    return { value, context, status };
  }

  /**
   * The actor of `key` is in memory in a final state that a committed checkpoint already removed
   * (not dirty since): the key has no state, though the finished actor is still held.
   */
  finishedAndRemoved(key: string): boolean {
    return this.actors.get(key)?.status === 'done' && !this.dirty.has(key) && this.removedAt.has(key);
  }

  /** The in-memory keyed actors as tree nodes (at most `limit`, restarted ones first). */
  describe(limit: number): Array<{ key: string; status: string; restarts: number; uptimeMs: number; state: unknown }> {
    const now = this.c.clock.now();
    const counts = this.restarts.counts;
    const keys = [...this.actors.keys()].sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0));
    return keys.slice(0, limit).map((key) => {
      const snap = this.actors.get(key)!.snapshot();
      return { key, status: snap.status, restarts: counts.get(key) ?? 0, uptimeMs: now - this.actors.get(key)!.placedAtMs, state: snap.value };
    });
  }

  /** Invariant 22: the live actor rebuilt from its compact snapshot (throws `ActorCrashedError` if it cannot be). */
  private wake(key: string): ActorHost {
    const json = this.compact.peek(key)!;
    const host = new ActorHost(this.c.stage.actor, key, this.hostOptions({ snapshot: JSON.parse(json) as Json }));
    this.compact.delete(key);
    this.place(key, host);
    return host;
  }

  private newHost(key: string, at: LogPoint): ActorHost {
    return new ActorHost(this.c.stage.actor, key, this.hostOptions({ at }));
  }

  private hostOptions(o: { at?: LogPoint; snapshot?: Json }): ActorHostOptions {
    return { clock: this.c.clock, system: this.system, ...o, ...(this.c.calls ? { calls: this.c.calls } : {}) };
  }

  private drop(key: string): void {
    this.actors.get(key)?.stop();
    this.actors.delete(key);
    this.compact.delete(key);
    this.lastActive.delete(key);
  }

  private place(key: string, host: ActorHost): void {
    this.actors.set(key, host);
    host.placedAtMs = this.c.clock.now();
    this.touch(key, host);
  }

  /** After a step: the wheel and calls catch up, and the key is the most recently active. */
  private touch(key: string, host: ActorHost): void {
    this.owner.touched(key, host);
    if (this.trackActivity) {
      this.lastActive.delete(key);
      this.lastActive.set(key, this.c.clock.now());
    }
  }

  /**
   * The actor for `key` from its checkpoint entry; an unusable entry is replaced by the log
   * (replay invariant 4). With `existingOnly`, a key with no entry gives undefined.
   */
  private async load(key: string, at: LogPoint, existingOnly: boolean): Promise<ActorHost | undefined> {
    if (this.compact.has(key)) return this.wake(key);
    let host: ActorHost;
    const ctx = this.owner.restoreContext();
    let ahead = this.prefetched.get(key);
    this.prefetched.delete(key); // invariant 20: used once
    for (let attempt = 0; ; attempt++) {
      try {
        const loaded = await loadActor(ctx, key, at, ahead);
        if (existingOnly && !loaded.entry) {
          loaded.host.stop();
          return undefined;
        }
        host = loaded.host;
        break;
      } catch (err) {
        if (isUnusableCheckpoint(err)) {
          ({ host } = await rebuildActor(ctx, key, this.owner.restoredSeq, at, this.poisoned));
          this.dirty.add(key); // the next cut overwrites the unusable entry
          break;
        }
        // Invariant 23: the store does not answer. The partition waits for it, keeping what it holds.
        if (!storeUnavailable(err) || this.owner.dead) throw err;
        if (this.owner.stopping) throw new StoreWaitAbandoned(key, this.c.where, err);
        if (attempt === 0) this.c.logger.warn({ stage: this.c.stage.name, partition: this.c.partition, key, err }, 'loading a key from the checkpoint store failed; the partition waits and tries again');
        ahead = undefined;
        await sleep(this.c.clock, this.c.commitRetry.delay(attempt, this.c.random), this.owner.ended).catch(() => undefined);
        if (this.owner.dead) throw err;
        if (this.owner.stopping) throw new StoreWaitAbandoned(key, this.c.where, err);
      }
    }
    if (this.owner.dead) {
      host.stop(); // killed while loading: nothing more is applied (invariant 7')
      return host;
    }
    this.place(key, host);
    return host;
  }

  /** Invariant 6: checkpoint + replay, or the initial state, by the stage's supervision policy. */
  private async rebuild(key: string, before: LogPoint): Promise<void> {
    const t0 = this.c.clock.now();
    const { restartFrom, safeStates } = this.c.stage.supervision;
    this.drop(key);
    let host: ActorHost;
    let replayed = 0;
    let from: 'checkpoint' | 'initial' = restartFrom;
    if (restartFrom === 'checkpoint') {
      const replayFrom = this.removedAt.get(key) ?? this.owner.restoredSeq;
      ({ host, replayed } = await rebuildActor(this.owner.restoreContext(), key, replayFrom, before, this.poisoned));
      if (safeStates && host.status === 'active' && !safeStates.some((s) => host.matches(s))) {
        const value = host.snapshot().value;
        const state = typeof value === 'string' ? value : JSON.stringify(value); // 'paying', or a nested value as JSON
        host.stop();
        host = this.newHost(key, before);
        from = 'initial';
        this.c.emit({ type: 'actor-reset', key, state, reason: `state ${state} is not in safeStates` });
      }
    } else {
      host = this.newHost(key, before);
    }
    if (this.owner.dead) {
      host.stop(); // invariant 7'
      return;
    }
    this.place(key, host);
    this.dirty.add(key);
    this.c.emit({ type: 'actor-restarted', key, replayed, from, durationMs: this.c.clock.now() - t0 });
  }
}
