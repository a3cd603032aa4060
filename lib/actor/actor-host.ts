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
 */
import { createActor, type AnyActorRef, type AnyStateMachine } from 'xstate';
import type { Clock } from '../core/clock.js';
import type { Json } from '../core/envelope.js';
import { ActorCrashedError, WardenError } from '../core/errors.js';
import type { ActorDefinition } from './define-actor.js';

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
}

/**
 * @example
 * const host = new ActorHost(counter, 'user-1', { clock: new SystemClock() });
 * const outputs = host.handle({ type: 'inc' });
 * const saved = host.persisted();
 */
export class ActorHost {
  readonly key: string;
  private readonly def: ActorDefinition;
  private readonly actor: AnyActorRef;
  private readonly emitted: EmittedEvent[] = [];
  private crash: ActorCrashedError | undefined;

  constructor(def: ActorDefinition, key: string, options: ActorHostOptions) {
    this.def = def;
    this.key = key;
    const machine: AnyStateMachine = def.machine;
    const actorOptions: Record<string, unknown> = { clock: options.clock, id: `${def.name}:${key}` };
    if (options.snapshot !== undefined) actorOptions.snapshot = options.snapshot;
    else if (def.input) actorOptions.input = def.input(key);
    try {
      this.actor = createActor(machine, actorOptions);
    } catch (err) {
      throw new ActorCrashedError(def.name, key, err, { phase: options.snapshot === undefined ? 'create' : 'restore' });
    }
    this.actor.on('*', (ev: EmittedEvent) => {
      this.emitted.push(ev);
    });
    // An error observer keeps xstate from rethrowing the crash globally; we read it from the snapshot.
    this.actor.subscribe({ error: () => undefined });
    this.actor.start();
    this.checkCrash({ phase: 'start' });
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
   * Throws `ActorCrashedError` if an action threw.
   */
  handle(event: EmittedEvent, seq?: number): EmittedEvent[] {
    if (this.crash) throw this.crash;
    this.emitted.length = 0;
    this.actor.send(event);
    this.checkCrash(seq === undefined ? { type: event.type } : { type: event.type, seq });
    const out = this.emitted.slice();
    this.emitted.length = 0;
    return out;
  }

  /** The persisted snapshot (`getPersistedSnapshot()`), a JSON value. */
  persisted(): Json {
    if (this.crash) throw new WardenError('ACTOR_CRASHED', `actor ${this.def.name}[${this.key}] crashed; its state is not persistable`, { cause: this.crash });
    return this.actor.getPersistedSnapshot() as unknown as Json;
  }

  /** The live xstate snapshot (value, context), for inspection. */
  snapshot(): { value: unknown; context: unknown; status: string } {
    return this.actor.getSnapshot() as { value: unknown; context: unknown; status: string };
  }

  /** Does the actor's state match `state` (`'active'`, or a nested path `'checkout.paying'`)? */
  matches(state: string): boolean {
    const snap = this.actor.getSnapshot() as { matches?: (v: string) => boolean };
    return typeof snap.matches === 'function' && snap.matches(state);
  }

  stop(): void {
    this.actor.stop();
  }

  private checkCrash(details: Record<string, unknown>): void {
    const snap = this.actor.getSnapshot() as { status: string; error?: unknown };
    if (snap.status === 'error') {
      this.emitted.length = 0;
      this.crash = new ActorCrashedError(this.def.name, this.key, snap.error, details);
      throw this.crash;
    }
  }
}
