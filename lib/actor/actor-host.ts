/**
 * `ActorHost`: runs one keyed instance of an operator's machine.
 *
 * Invariants:
 *  1. `handle` is synchronous: one input is applied completely (all its actions and emits)
 *     before the call returns, so a checkpoint cut between two calls is consistent.
 *  2. Outputs are exactly the events the machine emitted while applying the input, in order.
 *     A crashed input yields no outputs: a half-applied event never leaks.
 *  3. After a crash (an action threw, snapshot status 'error') the host refuses further input
 *     with `ACTOR_CRASHED`; it must be rebuilt from a checkpoint and the log.
 *  4. A host restored from `persisted()` of another host, then fed the same inputs, reaches
 *     the same state and emits the same outputs (given a deterministic machine).
 *  5. Delayed events never run on the clock: they are pending timers (see `timers.ts`), listed
 *     by `timers()`, carried by `persisted()`, and delivered only by `fireTimer`, which is an
 *     input like `handle` (invariants 1-3 hold for it). A timer's deadline is the log time of
 *     the input that armed it plus its delay, so a replay at the same log points arms the same
 *     timers with the same ids and deadlines.
 *  6. A host that is not active (finished, stopped, crashed) has no pending timers.
 *  7. A host behaves the same in a shared actor system as in its own (actor-system.ts).
 */
import { createActor, type AnyActorRef, type AnyStateMachine } from 'xstate';
import type { Clock } from '../core/clock.js';
import type { Json } from '../core/envelope.js';
import { ActorCrashedError, WardenError } from '../core/errors.js';
import type { ActorDefinition } from './define-actor.js';
import { join, type Member, type SharedActorSystem } from './actor-system.js';
import { CallBridge, type CallLookup, type CallRequest, type CallResult } from './calls.js';
import { CALL_EVENT } from '../core/ids.js';
import { persistSnapshot } from './persist.js';
import { resolvePath, splitPersisted, joinPersisted, TimerTable, type LogPoint, type PendingTimer, type PersistedTimer } from './timers.js';

export type { LogPoint, PendingTimer } from './timers.js';

/** An event a machine emitted: `{ type, ...fields }`. */
export interface EmittedEvent {
  type: string;
  [field: string]: unknown;
}

/** Options of an `ActorHost`. */
export interface ActorHostOptions {
  clock: Clock;
  /** A persisted snapshot to restore from (already migrated to this machine version). */
  snapshot?: Json;
  /**
   * The input that creates this host: timers armed by the initial state are numbered and
   * timed from it. @default seq 0 at `clock.now()`
   */
  at?: LogPoint;
  /** Finds guarded calls by name for `fromCall('name')`. @default the process-wide registry */
  calls?: CallLookup;
  /**
   * The actor system to run in, shared with the partition's other keyed actors (about 1.8 KB less
   * per actor; see actor-system.ts). @default an own system, as `createActor` makes
   */
  system?: SharedActorSystem;
}

const NO_TIMERS: readonly PersistedTimer[] = [];

/**
 * The events emitted during the step being applied (invariant 2). A step is synchronous and never
 * runs inside another, so one array and one listener serve every host instead of an array and a
 * listener closure per actor. Emits outside a step (none in a pipeline) are dropped.
 */
let stepOutputs: EmittedEvent[] = [];
let collecting = false;

/**
 * The listener collecting `stepOutputs`, and the error observer that keeps xstate from rethrowing
 * an actor's crash globally (the host reads the crash from the snapshot). Both anonymous, made in
 * an array literal so that no name is inferred: xstate binds every listener and observer it is
 * given, once per actor, and binding a named function builds a new "bound <name>" string each time
 * (redefining `name` is worse still: it leaves V8's fast path). Named, they cost a live actor about
 * 230 bytes more.
 */
const [collect, ignoreError] = [
  (ev: EmittedEvent): void => {
    if (collecting) stepOutputs.push(ev);
  },
  (): void => undefined,
];
const IGNORE_ERRORS = { error: ignoreError };

/** What an input that emitted nothing returns: one shared array, frozen (a caller never changes outputs). */
const NO_OUTPUTS = Object.freeze([]) as unknown as EmittedEvent[];

/** The outputs of the step just applied, as an array of their own (the collecting array itself, replaced). */
function takeOutputs(): EmittedEvent[] {
  if (stepOutputs.length === 0) return NO_OUTPUTS;
  const out = stepOutputs;
  stepOutputs = [];
  return out;
}

/**
 * @example
 * const host = new ActorHost(counter, 'user-1', { clock: new SystemClock() });
 * const outputs = host.handle({ type: 'inc' }, { seq: 7, timeMs: 1_700_000_000_000 });
 * host.timers(); // [{ id: '7.0', dueMs: 1_700_000_060_000 }] if 'inc' armed a 60 s `after`
 * // The worker appends a timer record when '7.0' is due; read back at seq 9, it fires:
 * host.fireTimer('7.0', { seq: 9, timeMs: 1_700_000_060_004 });
 * const saved = host.persisted(); // carries the pending timers
 */
export class ActorHost {
  readonly key: string;
  /** When the partition put this host in memory (for its uptime); set by the partition. */
  placedAtMs = 0;
  private readonly def: ActorDefinition;
  private readonly actor: AnyActorRef;
  private readonly clock: Clock;
  private readonly timerTable: TimerTable;
  private readonly calls: CallBridge;
  private crash: ActorCrashedError | undefined;
  private readonly shared: SharedActorSystem | undefined;
  private readonly member: Member = { timers: undefined, calls: undefined, ids: undefined };

  constructor(def: ActorDefinition, key: string, options: ActorHostOptions) {
    this.def = def;
    this.key = key;
    this.clock = options.clock;
    const machine: AnyStateMachine = def.machine;
    const actorOptions: Record<string, unknown> = { clock: options.clock, id: `${def.name}:${key}` };
    let restored: PersistedTimer[] = [];
    if (options.snapshot !== undefined) {
      try {
        const split = splitPersisted(options.snapshot);
        actorOptions.snapshot = split.snapshot;
        restored = split.timers;
      } catch (err) {
        throw new ActorCrashedError(def.name, key, err, { phase: 'restore' });
      }
    } else if (def.input) {
      try {
        actorOptions.input = def.input(key);
      } catch (err) {
        throw new ActorCrashedError(def.name, key, err, { phase: 'input' });
      }
    }
    const shared = (this.shared = options.system);
    if (shared) actorOptions.parent = shared.parent;
    try {
      this.actor = shared ? shared.creatingMember(this.member, () => createActor(machine, actorOptions)) : createActor(machine, actorOptions);
    } catch (err) {
      throw new ActorCrashedError(def.name, key, err, { phase: options.snapshot === undefined ? 'create' : 'restore' });
    }
    // Before start(): xstate defers the initial state's actions (and so its timers) until then.
    this.timerTable = new TimerTable(this.actor, restored, options.at ?? { seq: 0, timeMs: options.clock.now() });
    if (!shared) this.timerTable.install(); // a shared system's scheduler finds the table through the member
    this.calls = new CallBridge(this.actor, this.timerTable, options.calls);
    this.member.timers = this.timerTable;
    this.member.calls = this.calls;
    join(this.actor, this.member);
    shared?.enter(this.member);
    this.actor.on('*', collect);
    // An error observer keeps xstate from rethrowing the crash globally; we read it from the snapshot.
    this.actor.subscribe(IGNORE_ERRORS); // one shared observer: a closure per actor costs ~700 bytes

    try {
      this.actor.start();
    } finally {
      shared?.leave();
    }
    this.afterStep(undefined, undefined, { phase: 'start' });
  }

  /** 'active', 'done' (reached a final state) or 'error' (crashed). */
  get status(): 'active' | 'done' | 'error' | 'stopped' {
    return (this.actor.getSnapshot() as { status: 'active' | 'done' | 'error' | 'stopped' }).status;
  }

  /** The crash that stopped this host, if any. */
  get crashed(): ActorCrashedError | undefined {
    return this.crash;
  }

  /**
   * Applies one input and returns the events the machine emitted while applying it.
   * `at` places the input in the log (a number is its seq; its time is then `clock.now()`, read
   * only if the step arms a timer).
   * Throws `ActorCrashedError` if an action threw.
   */
  handle(event: EmittedEvent, at?: LogPoint | number): EmittedEvent[] {
    if (this.crash) throw this.crash;
    if (typeof at === 'object') this.timerTable.begin(at);
    else this.timerTable.beginNow(at, this.clock);
    this.beginStep();
    try {
      this.actor.send(event);
    } finally {
      this.endStep();
    }
    this.afterStep(event.type, typeof at === 'object' ? at.seq : at);
    return takeOutputs();
  }

  /**
   * Delivers the delayed event of timer `id`, as the input at `at` (the log record of its
   * firing), and returns the events the machine emitted meanwhile. Returns [] and changes
   * nothing if `id` is not pending (already fired, cancelled). A timer whose target actor has
   * gone (stopped child) is consumed and delivered to nobody, as xstate does.
   * Throws `ActorCrashedError` if an action threw; its outputs are dropped.
   */
  fireTimer(id: string, at: LogPoint): EmittedEvent[] {
    if (this.crash) throw this.crash;
    const timer = this.timerTable.take(id);
    if (!timer) return [];
    const target = resolvePath(this.actor, timer.target);
    if (!target) return [];
    this.timerTable.begin(at);
    this.beginStep();
    try {
      target.send(timer.event);
    } finally {
      this.endStep();
    }
    this.afterStep(timer.event.type, at.seq, { timer: id });
    return takeOutputs();
  }

  /**
   * Delivers the result of a guarded call started by `fromCall` (lib/actor/calls.ts), as the
   * input at `at` (the log record of its result), and returns the events emitted meanwhile.
   * Returns [] and changes nothing if the call is not pending (stopped, already settled).
   */
  resolveCall(result: CallResult, at: LogPoint): EmittedEvent[] {
    if (this.crash) throw this.crash;
    this.timerTable.begin(at);
    this.beginStep();
    let delivered: boolean;
    try {
      delivered = this.calls.deliver(result);
    } finally {
      this.endStep();
    }
    if (!delivered) return [];
    this.afterStep(CALL_EVENT, at.seq, { call: result.call });
    return takeOutputs();
  }

  /** A step begins: this key is the one its system answers for, and its emits are collected. */
  private beginStep(): void {
    this.shared?.enter(this.member);
    if (stepOutputs.length !== 0) stepOutputs = []; // a step that threw left its outputs
    collecting = true;
  }

  /** The step ended (normally or by a throw): nothing is collected, and no key is being stepped. */
  private endStep(): void {
    collecting = false;
    this.shared?.leave();
  }

  /** Cheap checks for the worker's per-input bookkeeping: any pending timers, any calls? */
  get hasTimers(): boolean {
    return !this.crash && this.timerTable.size > 0;
  }

  get hasCalls(): boolean {
    return !this.crash && this.calls.busy;
  }

  /** Drops pending timer `id` without firing it (its firing was dead-lettered). */
  forgetTimer(id: string): void {
    this.timerTable.take(id);
  }

  /** Drops pending call `id` without delivering a result (its result was dead-lettered); the call actor stays waiting. */
  forgetCall(id: string): void {
    this.calls.forget(id);
  }

  /** Calls started (or restored pending) since the last take, for the worker to run. */
  takeCallRequests(): CallRequest[] {
    return this.crash ? [] : this.calls.take();
  }

  /** Every pending call of the actor. */
  pendingCalls(): CallRequest[] {
    return this.crash ? [] : this.calls.pending();
  }

  /** Pending timers, by deadline then id (invariant 5). */
  timers(): PendingTimer[] {
    return this.crash ? [] : this.timerTable.pending();
  }

  /**
   * The persisted snapshot: xstate's `getPersistedSnapshot()`, a JSON value, with the pending
   * timers in a `"warden:timers"` field when there are any.
   */
  persisted(): Json {
    this.ensurePersistable();
    return joinPersisted(persistSnapshot(this.def.machine, this.actor.getSnapshot()), this.timerTable.persisted());
  }

  /**
   * The persisted snapshot as it is now, built later (`persisted()` deferred): the returned function
   * gives, whenever it is called, what `persisted()` gives at this moment. xstate's snapshots are
   * immutable values (each step makes a new one, and context is replaced, never changed in place),
   * so holding one costs nothing and building its JSON form can wait; a machine with child actors
   * (invoked or spawned, which are live) is persisted at once.
   */
  capture(): () => Json {
    this.ensurePersistable();
    const snap = this.actor.getSnapshot() as { children: Record<string, unknown> };
    for (const _child in snap.children) {
      const now = this.persisted();
      return () => now;
    }
    const timers = this.timerTable.size > 0 ? this.timerTable.persisted() : NO_TIMERS;
    const machine: AnyStateMachine = this.def.machine;
    return () => joinPersisted(persistSnapshot(machine, snap), timers);
  }

  /**
   * The actor's state for inspection: its state value, context and status, a plain object of
   * those three (not xstate's snapshot with its methods), the same shape whatever tier it is read from.
   */
  snapshot(): { value: unknown; context: unknown; status: string } {
    const { value, context, status } = this.actor.getSnapshot() as { value: unknown; context: unknown; status: string };
    return { value, context, status };
  }

  /** Does the actor's state match `state` (`'active'`, or a nested path `'checkout.paying'`)? */
  matches(state: string): boolean {
    const snap = this.actor.getSnapshot() as { matches?: (v: string) => boolean };
    return typeof snap.matches === 'function' && snap.matches(state);
  }

  stop(): void {
    // xstate stops a child actor only through its parent; a member of a shared system is one.
    if (this.shared) (this.actor as unknown as { _stop(): void })._stop();
    else this.actor.stop();
    this.timerTable.clear();
    this.calls.clear();
  }

  private ensurePersistable(): void {
    if (this.crash) throw new WardenError('ACTOR_CRASHED', `actor ${this.def.name}[${this.key}] crashed; its state is not persistable`, { cause: this.crash });
  }


  /** Ends a step: drops the timers of an actor that is no longer active (invariant 6), surfaces a crash. */
  private afterStep(type: string | undefined, seq: number | undefined, extra?: Record<string, unknown>): void {
    const snap = this.actor.getSnapshot() as { status: string; error?: unknown };
    if (snap.status === 'active') return;
    this.timerTable.clear();
    this.calls.clear();
    if (snap.status === 'error') {
      stepOutputs.length = 0;
      this.crash = new ActorCrashedError(this.def.name, this.key, snap.error, { ...(type === undefined ? {} : { type }), ...(seq === undefined ? {} : { seq }), ...extra });
      throw this.crash;
    }
  }
}
