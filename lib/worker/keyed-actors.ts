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
 * 20. Batch loading: the checkpoint entries of the keys a read batch names that are not in
 *     memory are read together, all requests sent at once (`prefetch`), before the batch is
 *     applied. A prefetched entry is used by the key's next load only, within the batch it was
 *     read for (the entry of a key not in memory changes only when this worker writes it, and it
 *     writes only keys in memory); a later load reads the store again. A failed prefetch read
 *     fails that load exactly as a read at load time would.
 */
import type { ActorEntry } from '../checkpoint/checkpoint-store.js';
import { ActorHost, type LogPoint } from '../actor/actor-host.js';
import type { Json } from '../core/envelope.js';
import { ActorCrashedError, describeError, WardenError } from '../core/errors.js';
import { sleep } from '../core/clock.js';
import { KeyRestarts } from './key-restarts.js';
import type { WorkerConfig } from './options.js';
import { isUnusableCheckpoint, loadActor, rebuildActor, type RestoreContext } from './replay.js';

/**
 * Thrown by a step to refuse its own result (its outputs cannot be routed): the step is rolled
 * back (the actor rebuilt to before the input) and reported `rejected`.
 */
export class RejectedStep extends Error {
  constructor(readonly reason: unknown) {
    super('step rejected', { cause: reason });
  }
}

/** What became of one input sent to its actor. */
export type StepOutcome<T> =
  | { kind: 'applied'; value: T }
  /** The step refused its result (`RejectedStep`); the actor is rebuilt to before the input. */
  | { kind: 'rejected'; error: unknown }
  /** A timer or call record for an actor that no longer exists: nothing to do. */
  | { kind: 'absent' }
  /** Invariant 6: it crashed its actor `maxCrashesPerInput` times; the actor is rebuilt without it. */
  | { kind: 'poisoned'; error: unknown }
  /** Invariant 6: the crash pushed the partition past its restart intensity; the actor is not rebuilt yet. */
  | { kind: 'escalated'; error: WardenError; crash: unknown }
  /** The worker died meanwhile (invariant 7'). */
  | { kind: 'dead' };

/** What the keyed actors need of their worker. */
export interface ActorsOwner {
  readonly dead: boolean;
  /** Aborted when the worker dies: cuts a restart backoff short. */
  readonly ended: AbortSignal;
  /** The position the worker restored (replays start above it for keys without an entry). */
  readonly restoredSeq: number;
  /** Context for loading and replaying (fresh per use: it carries the incarnation's settings). */
  restoreContext(): RestoreContext;
  /** After every step: the timer wheel and the call runner catch up with the actor. */
  touched(key: string, host: ActorHost): void;
}

/** The state of the dirty actors, for a cut. */
export interface DirtyState {
  /** Persisted snapshots by key (a null-prototype record: invariant 13). */
  actors: Record<string, Json>;
  /** Keys whose actor reached a final state. */
  removed: string[];
  /** Every key taken (to mark dirty again if the cut fails). */
  keys: string[];
}

export class KeyedActors {
  private readonly actors = new Map<string, ActorHost>();
  private readonly dirty = new Set<string>();
  /** Keys in memory by last input, least recent first (passivation). */
  private readonly lastActive = new Map<string, number>();
  private readonly since = new Map<string, number>();
  /** Replay start for keys removed (reached a final state) during this incarnation. */
  private readonly removedAt = new Map<string, number>();
  /** Inputs dead-lettered by this incarnation: never replayed into an actor. */
  readonly poisoned = new Set<number>();
  private readonly restarts: KeyRestarts;
  /** Invariant 20: entries read ahead for the batch being applied, by key. */
  private prefetched = new Map<string, Promise<ActorEntry | undefined>>();
  crashes = 0;
  passivated = 0;

  constructor(
    private readonly c: WorkerConfig,
    private readonly owner: ActorsOwner,
  ) {
    this.restarts = new KeyRestarts(c.stage.supervision, c.clock, c.random);
  }

  get size(): number {
    return this.actors.size;
  }

  get(key: string): ActorHost | undefined {
    return this.actors.get(key);
  }

  /**
   * Sends one input to the actor of `key` (`step`), loading it first, and rebuilding it after a
   * crash (invariant 6). `existingOnly`: a timer or call record, which creates no actor.
   */
  async apply<T>(key: string, at: LogPoint, step: (host: ActorHost) => T, existingOnly: boolean): Promise<StepOutcome<T>> {
    for (let attempt = 1; ; attempt++) {
      let crash: unknown;
      let host: ActorHost | undefined;
      try {
        host = this.actors.get(key) ?? (await this.load(key, at, existingOnly));
        if (this.owner.dead) return { kind: 'dead' };
        if (!host) return { kind: 'absent' };
        if (host.status === 'done') {
          if (existingOnly) return { kind: 'absent' }; // a timer of a finished life
          // A keyed actor that reached a final state starts a new life on its next input.
          host = this.newHost(key, at);
          this.actors.set(key, host);
        }
        const value = step(host);
        this.dirty.add(key);
        this.touch(key, host);
        return { kind: 'applied', value };
      } catch (err) {
        if (err instanceof RejectedStep) {
          this.poisoned.add(at.seq);
          await this.recover(key, at);
          return this.owner.dead ? { kind: 'dead' } : { kind: 'rejected', error: err.reason };
        }
        if (!(err instanceof ActorCrashedError)) throw err;
        crash = err;
      }
      if (this.owner.dead) return { kind: 'dead' };
      this.crashes++;
      this.c.emit({ type: 'actor-crashed', key, seq: at.seq, attempt, error: describeError(crash) });
      this.c.logger.warn({ stage: this.c.stage.name, partition: this.c.partition, key, seq: at.seq, attempt, err: crash }, 'actor crashed');
      let delayMs: number;
      try {
        delayMs = this.restarts.record(key, this.c.where);
      } catch (escalation) {
        this.poisoned.add(at.seq);
        return { kind: 'escalated', error: escalation as WardenError, crash };
      }
      if (delayMs > 0) await sleep(this.c.clock, delayMs, this.owner.ended).catch(() => undefined);
      if (this.owner.dead) return { kind: 'dead' };
      if (attempt >= this.c.stage.maxCrashesPerInput) {
        this.poisoned.add(at.seq);
        await this.recover(key, at);
        return this.owner.dead ? { kind: 'dead' } : { kind: 'poisoned', error: crash };
      }
      await this.recover(key, at);
      if (this.owner.dead) return { kind: 'dead' };
    }
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
   * the load that uses them).
   */
  async prefetch(keys: Iterable<string>): Promise<void> {
    const ctx = this.owner.restoreContext();
    const next = new Map<string, Promise<ActorEntry | undefined>>();
    for (const key of keys) {
      if (this.actors.has(key) || next.has(key)) continue;
      const read = ctx.store.readActor(ctx.scope, key);
      read.catch(() => undefined); // handled by the load that uses it (or dropped with the batch)
      next.set(key, read);
    }
    this.prefetched = next;
    await Promise.allSettled(next.values());
  }

  /** Loads `key` (a restored cut listed it with pending calls); no-op if it is in memory. */
  async ensureLoaded(key: string, at: LogPoint): Promise<void> {
    if (!this.actors.has(key)) await this.load(key, at, true);
  }

  /** The state of every dirty actor, for a cut (invariant 13: a null-prototype record). */
  takeDirty(): DirtyState {
    const actors = Object.create(null) as Record<string, Json>;
    const removed: string[] = [];
    const keys: string[] = [];
    for (const key of this.dirty) {
      const host = this.actors.get(key);
      if (!host) continue; // not in memory right now: stays dirty for the next cut
      keys.push(key);
      if (host.status === 'done') removed.push(key);
      else actors[key] = host.persisted();
    }
    for (const key of keys) this.dirty.delete(key);
    return { actors, removed, keys };
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
    if (this.actors.has(key)) this.dirty.add(key);
  }

  /**
   * Invariant 11: drops actors idle since `cutoff` whose latest state is in a written cut.
   * Returns true when idle actors with unwritten changes need a cut first.
   */
  passivate(cutoff: number): boolean {
    let needCut = false;
    for (const [key, last] of this.lastActive) {
      if (last > cutoff) break; // least recent first
      if (this.dirty.has(key)) {
        needCut = true;
        continue;
      }
      this.drop(key);
      this.passivated++;
    }
    return needCut;
  }

  stopAll(): void {
    for (const host of this.actors.values()) host.stop();
  }

  /** The live state of `key`, if in memory. */
  inspect(key: string): { value: unknown; context: unknown; status: string } | undefined {
    return this.actors.get(key)?.snapshot();
  }

  /** The in-memory keyed actors as tree nodes (at most `limit`, restarted ones first). */
  describe(limit: number): Array<{ key: string; status: string; restarts: number; uptimeMs: number; state: unknown }> {
    const now = this.c.clock.now();
    const counts = this.restarts.counts;
    const keys = [...this.actors.keys()].sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0));
    return keys.slice(0, limit).map((key) => {
      const snap = this.actors.get(key)!.snapshot();
      return { key, status: snap.status, restarts: counts.get(key) ?? 0, uptimeMs: now - (this.since.get(key) ?? now), state: snap.value };
    });
  }

  private newHost(key: string, at: LogPoint): ActorHost {
    return new ActorHost(this.c.stage.actor, key, { clock: this.c.clock, at, ...(this.c.calls ? { calls: this.c.calls } : {}) });
  }

  private drop(key: string): void {
    this.actors.get(key)?.stop();
    this.actors.delete(key);
    this.since.delete(key);
    this.lastActive.delete(key);
  }

  private place(key: string, host: ActorHost): void {
    this.actors.set(key, host);
    this.since.set(key, this.c.clock.now());
    this.touch(key, host);
  }

  /** After a step: the wheel and calls catch up, and the key is the most recently active. */
  private touch(key: string, host: ActorHost): void {
    this.owner.touched(key, host);
    if (this.c.stage.idleMs > 0) {
      this.lastActive.delete(key);
      this.lastActive.set(key, this.c.clock.now());
    }
  }

  /**
   * The actor for `key` from its checkpoint entry; an unusable entry is replaced by the log
   * (replay invariant 4). With `existingOnly`, a key with no entry gives undefined.
   */
  private async load(key: string, at: LogPoint, existingOnly: boolean): Promise<ActorHost | undefined> {
    let host: ActorHost;
    const ctx = this.owner.restoreContext();
    const ahead = this.prefetched.get(key);
    this.prefetched.delete(key); // invariant 20: used once
    try {
      const loaded = await loadActor(ctx, key, at, ahead);
      if (existingOnly && !loaded.entry) {
        loaded.host.stop();
        return undefined;
      }
      host = loaded.host;
    } catch (err) {
      if (!isUnusableCheckpoint(err)) throw err;
      ({ host } = await rebuildActor(ctx, key, this.owner.restoredSeq, at, this.poisoned));
      this.dirty.add(key); // the next cut overwrites the unusable entry
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
        const state = JSON.stringify(host.snapshot().value);
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

/** Worker invariant 15: the error a dead letter carries for the input that escalated. */
export function escalatedInput(where: string, crash: unknown): WardenError {
  return new WardenError('ACTOR_CRASHED', `the input crashed its actor and pushed ${where} past its restart intensity: dead-lettered before the partition escalates`, { cause: crash });
}
