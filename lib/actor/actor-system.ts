/**
 * One xstate actor system for all the keyed actors of a partition.
 *
 * A root xstate actor builds its own actor system (a scheduler, registries, a dozen closures):
 * about 1.8 KB per actor, more than a third of what a live actor took. The keyed actors of a
 * partition are created as children of one silent root actor instead (`SharedActorSystem`), so
 * they share its system. What a machine sees of its system stays per key:
 *
 * Invariants:
 *  1. Each host is a member (`memberOf` finds it from any actor of its tree, walking `_parent`):
 *     its delayed events go to its own `TimerTable`, its guarded calls to its own `CallBridge`,
 *     in a shared system as in an own one.
 *  2. `systemId`s are per member: two keys may each have a child with the same `systemId`;
 *     `system.get(id)` answers for the member being stepped (the host's input, timer or call
 *     result, or the target of an event sent between actors), `undefined` outside any.
 *  3. The shared system holds no reference to a member: its actor registry and scheduler keep
 *     nothing (timers live in each member's table, `systemId`s in the member), so a host dropped
 *     without `stop()` is garbage like one with its own system.
 *  4. The root handles every event with no effect: a member's completion or crash, relayed to its
 *     parent by xstate, never affects the root or another member. An event a member sends to its
 *     parent (`sendParent`) crashes the member, as it does an actor with its own system (no parent).
 */
import { createActor, setup, type AnyActorRef } from 'xstate';
import type { Clock } from '../core/clock.js';
import { WardenError } from '../core/errors.js';
import type { CallBridge } from './calls.js';
import type { TimerTable } from './timers.js';

/** What a host lends to the system its actor runs in. */
export interface Member {
  timers: TimerTable | undefined;
  calls: CallBridge | undefined;
  /** The `systemId`s of the member's actors (invariant 2); created on the first one. */
  ids: Map<string, AnyActorRef> | undefined;
}

const members = new WeakMap<object, Member>();

/** Invariant 1: the member `ref` belongs to (itself or an ancestor is a host's actor). */
export function memberOf(ref: unknown): Member | undefined {
  for (let cur = ref as AnyActorRef | undefined; cur !== undefined && cur !== null; cur = cur._parent) {
    const m = members.get(cur);
    if (m) return m;
  }
  return undefined;
}

/** Makes `actor` (a host's root actor) the member `member`. */
export function join(actor: AnyActorRef, member: Member): void {
  members.set(actor, member);
}

const ROOT = setup({}).createMachine({ id: 'warden', on: { '*': {} } }); // invariant 4

/** The subset of xstate's (internal) system object warden replaces. */
interface XSystem {
  scheduler: {
    schedule(source: AnyActorRef, target: AnyActorRef, event: { type: string }, delay: number, id?: string): void;
    cancel(source: AnyActorRef, id: string): void;
    cancelAll(ref: AnyActorRef): void;
  };
  _register(sessionId: string, ref: AnyActorRef): string;
  _unregister(ref: AnyActorRef): void;
  _set(systemId: string, ref: AnyActorRef): void;
  get(systemId: string): AnyActorRef | undefined;
  getAll(): Record<string, AnyActorRef>;
  _relay(source: AnyActorRef | undefined, target: AnyActorRef, event: { type: string }): void;
}

/**
 * The actor system of a partition's keyed actors (see the file comment). Pass it as
 * `ActorHostOptions.system`; `stop()` when the partition ends.
 *
 * @example
 * const system = new SharedActorSystem(clock);
 * const host = new ActorHost(counter, 'alice', { clock, system });
 */
export class SharedActorSystem {
  private readonly root: AnyActorRef;
  /** The member whose input, timer or call is being applied (invariant 2). */
  private current: Member | undefined;
  /** The member whose actor is being created (its children register before it can be found). */
  private creating: Member | undefined;

  constructor(clock: Clock) {
    this.root = createActor(ROOT, { clock });
    this.root.subscribe({ error: () => undefined });
    const system = this.root.system as unknown as XSystem;
    const memberFor = (ref: AnyActorRef, what: string): Member => {
      const m = memberOf(ref) ?? this.creating;
      if (!m) throw new WardenError('CONFIG', `${what} of an actor outside any keyed actor of this partition`, { nonRetryable: true });
      return m;
    };
    system.scheduler.schedule = (source, target, event, delay, id) => {
      const timers = memberFor(source, `a delayed '${event.type}'`).timers;
      if (!timers) throw new WardenError('CONFIG', `xstate scheduled a delayed '${event.type}' before the actor started; warden cannot make it durable`, { nonRetryable: true });
      timers.schedule(source, target, event, delay, id);
    };
    system.scheduler.cancel = (source, id) => memberOf(source)?.timers?.cancel(source, id);
    system.scheduler.cancelAll = (ref) => memberOf(ref)?.timers?.cancelAll(ref);
    system._register = (sessionId) => sessionId; // invariant 3
    system._set = (systemId, ref) => {
      const m = memberFor(ref, `system ID '${systemId}'`);
      const ids = (m.ids ??= new Map<string, AnyActorRef>());
      const existing = ids.get(systemId);
      if (existing && existing !== ref) throw new Error(`Actor with system ID '${systemId}' already exists.`);
      ids.set(systemId, ref);
    };
    system._unregister = (ref) => {
      const id = (ref as { systemId?: string }).systemId;
      if (id === undefined) return;
      const ids = memberOf(ref)?.ids;
      if (ids?.get(id) === ref) ids.delete(id);
    };
    system.get = (systemId) => this.current?.ids?.get(systemId);
    system.getAll = () => Object.fromEntries(this.current?.ids ?? []);
    const relay = system._relay.bind(system);
    system._relay = (source, target, event) => {
      // Invariant 4: xstate's own notices (done, error) reach the root; an event a member sends its parent does not.
      if (target === this.root && !event.type.startsWith('xstate.')) throw new Error(`a keyed actor has no parent: its '${event.type}' reaches no one`);
      const before = this.current;
      this.current = memberOf(target) ?? before;
      try {
        relay(source, target, event);
      } finally {
        this.current = before;
      }
    };
    this.root.start();
  }

  /** The parent to create a member's actor under (`createActor(machine, { parent })`). */
  get parent(): AnyActorRef {
    return this.root;
  }

  /** Runs `create` with `member` as the member being created (its children's `systemId`s go to it). */
  creatingMember<T>(member: Member, create: () => T): T {
    this.creating = member;
    try {
      return create();
    } finally {
      this.creating = undefined;
    }
  }

  /** Invariant 2: `member` is being stepped. */
  enter(member: Member): void {
    this.current = member;
  }

  /** Invariant 2: the step ended; until the next one, `system.get` answers for no member. */
  leave(): void {
    this.current = undefined;
  }

  stop(): void {
    this.root.stop();
  }
}
