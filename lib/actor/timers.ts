/**
 * Durable timers: the delayed events of an xstate actor (`after`, `raise(..., { delay })`,
 * `sendTo(..., { delay })`, `sendParent(..., { delay })`) kept as data, not as clock timeouts.
 *
 * xstate keeps delayed events in memory and fires them with its clock, so a restored actor
 * would forget them (and hang) or, restored from an older state, fire them twice. `TimerTable`
 * replaces the `schedule`, `cancel` and `cancelAll` of the actor system's scheduler: arming a
 * timer only records it. The partition worker appends a `warden.timer` record to the log when
 * one is due, and `ActorHost.fireTimer` delivers it when that record is read back, so every
 * firing is an input in the log like any other.
 *
 * A timer's deadline is the log time of the input that armed it plus its delay
 * (`dueMs = at.timeMs + delay`), never the wall clock at the moment it was armed: a replay
 * of the same inputs at the same log points computes the same ids and the same deadlines.
 *
 * Invariants:
 *  1. Arming a timer reads no clock and no randomness. Its id is `${at.seq}.${n}`, where `at`
 *     is the log point of the input being applied (or of the host's creation) and `n` counts
 *     the timers armed while applying it (0, 1, 2..). xstate's own send id (random when the
 *     machine gave none) is kept only to honour `cancel(source, sendId)`.
 *  2. Actors are named by path, the chain of `.id`s from the root (root = '', a child `c`,
 *     its child `c/g`; `/` and `%` in an id are percent-escaped), never by `sessionId`, which
 *     comes from a process-wide counter and changes across restores.
 *  3. A timer is delivered at most once: `take` removes it before it is sent; an id that is not
 *     pending (fired, cancelled, never armed) is a no-op.
 *  4. `cancel(source, sendId)` removes the pending timers armed by `source` with that send id;
 *     `cancelAll(ref)` (xstate calls it when an actor stops, errors or finishes) removes every
 *     timer `ref` armed. Timers armed by another actor towards `ref` stay, as in xstate.
 *  5. The persisted form is xstate's persisted snapshot, unchanged, plus one top-level field
 *     `"warden:timers"` that is present only when timers are pending; `splitPersisted` and
 *     `joinPersisted` convert between the two and are each other's inverse.
 *  6. Delayed events must be JSON values, like inputs: they are persisted as they are.
 */
import type { AnyActorRef, EventObject } from 'xstate';
import type { Json } from '../core/envelope.js';
import type { Clock } from '../core/clock.js';
import { WardenError } from '../core/errors.js';

/** Where in the log the host is: the input being applied. */
export interface LogPoint {
  /** Log sequence of the input. */
  seq: number;
  /** Log time of the input (ms), the base of the deadlines of the timers it arms. */
  timeMs: number;
}

/** A timer waiting to fire. */
export interface PendingTimer {
  id: string;
  dueMs: number;
}

/** A pending timer as persisted in the `"warden:timers"` field. */
export interface PersistedTimer {
  id: string;
  dueMs: number;
  delay: number;
  /** The event to deliver, `{ type, ...fields }`. */
  event: { type: string; [field: string]: Json };
  /** Path of the actor that armed it (invariant 2). */
  source: string;
  /** Path of the actor it is delivered to. */
  target: string;
  /** xstate's send id, given by the machine (`raise`/`sendTo` `id`, `after` event type); null if none. */
  xid: string | null;
}

/** Name of the top-level field of a persisted snapshot that carries its pending timers. */
export const TIMERS_FIELD = 'warden:timers';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function corrupt(message: string, details: Record<string, unknown> = {}): WardenError {
  return new WardenError('CHECKPOINT_CORRUPT', `persisted snapshot: ${message}`, { nonRetryable: true, details });
}

function parseTimer(v: unknown, index: number): PersistedTimer {
  const ok =
    isRecord(v) &&
    typeof v.id === 'string' &&
    typeof v.dueMs === 'number' && Number.isFinite(v.dueMs) &&
    typeof v.delay === 'number' && Number.isFinite(v.delay) &&
    isRecord(v.event) && typeof v.event.type === 'string' &&
    typeof v.source === 'string' &&
    typeof v.target === 'string' &&
    (typeof v.xid === 'string' || v.xid === null);
  if (!ok) throw corrupt(`${TIMERS_FIELD}[${index}] is not a timer`, { index });
  return {
    id: v.id as string,
    dueMs: v.dueMs as number,
    delay: v.delay as number,
    event: v.event as PersistedTimer['event'],
    source: v.source as string,
    target: v.target as string,
    xid: v.xid as string | null,
  };
}

/**
 * Splits a persisted snapshot into xstate's snapshot (without the warden field) and its pending
 * timers. Pure: `json` is not modified. Throws `CHECKPOINT_CORRUPT` if the field is malformed.
 */
export function splitPersisted(json: Json): { snapshot: Json; timers: PersistedTimer[] } {
  if (!isRecord(json) || !(TIMERS_FIELD in json)) return { snapshot: json, timers: [] };
  const { [TIMERS_FIELD]: field, ...snapshot } = json;
  if (!Array.isArray(field)) throw corrupt(`${TIMERS_FIELD} is not an array`);
  const timers = field.map(parseTimer);
  const ids = new Set(timers.map((t) => t.id));
  if (ids.size !== timers.length) throw corrupt(`${TIMERS_FIELD} lists a timer id twice`);
  return { snapshot, timers };
}

/**
 * The persisted form of `snapshot` with `timers` attached: `snapshot` itself when no timer is
 * pending, else a copy with the `"warden:timers"` field. Pure: its arguments are not modified.
 */
export function joinPersisted(snapshot: Json, timers: readonly PersistedTimer[]): Json {
  if (timers.length === 0) return snapshot;
  if (!isRecord(snapshot)) throw corrupt(`${timers.length} pending timer(s) cannot be attached to a snapshot that is not an object`);
  return { ...snapshot, [TIMERS_FIELD]: timers.map((t) => ({ ...t })) };
}

/** Orders timers by deadline, then by id (`seq`, then `n`, numerically). */
export function compareTimers(a: PendingTimer, b: PendingTimer): number {
  if (a.dueMs !== b.dueMs) return a.dueMs - b.dueMs;
  const [as = '', an = ''] = a.id.split('.');
  const [bs = '', bn = ''] = b.id.split('.');
  const d = Number(as) - Number(bs) || Number(an) - Number(bn);
  if (d) return d;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const escapeId = (id: string): string => id.replaceAll('%', '%25').replaceAll('/', '%2F');
const unescapeId = (seg: string): string => seg.replaceAll('%2F', '/').replaceAll('%25', '%');

/**
 * Path of `ref` inside the tree rooted at `root` (invariant 2), or undefined if `ref` is not
 * in it (an actor of another system) or has an empty id. Walks `_parent`, so it also names a
 * child that was just stopped and already left its parent's `children`.
 */
export function actorPath(root: AnyActorRef, ref: unknown): string | undefined {
  const ids: string[] = [];
  let cur = ref as AnyActorRef | undefined;
  while (cur !== undefined && cur !== root) {
    if (typeof cur !== 'object' || typeof cur.id !== 'string' || cur.id === '') return undefined;
    ids.push(escapeId(cur.id));
    cur = cur._parent;
  }
  return cur === root ? ids.reverse().join('/') : undefined;
}

/** The live actor at `path` under `root`, walking `getSnapshot().children[id]`; undefined if gone. */
export function resolvePath(root: AnyActorRef, path: string): AnyActorRef | undefined {
  let cur: AnyActorRef | undefined = root;
  if (path === '') return cur;
  for (const seg of path.split('/')) {
    const snap = cur.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> } | undefined;
    cur = snap?.children?.[unescapeId(seg)];
    if (cur === undefined) return undefined;
  }
  return cur;
}

/**
 * The pending timers of one actor tree, and the scheduler that arms and cancels them.
 *
 * @example
 * const actor = createActor(machine, { clock });
 * const table = new TimerTable(actor, [], { seq: 1, timeMs: 0 });
 * table.install();                       // before actor.start()
 * actor.start();                          // an initial `after` is now table.pending()
 * table.begin({ seq: 2, timeMs: 500 });  // before applying input 2
 */
export class TimerTable {
  private readonly root: AnyActorRef;
  /** Created on the first timer: most actors never arm one, and an empty Map per actor adds up. */
  private tableOrUndefined: Map<string, PersistedTimer> | undefined;
  private get table(): Map<string, PersistedTimer> {
    return (this.tableOrUndefined ??= new Map());
  }
  /** The log point of the input being applied (two fields, not an object: `begin` runs per input). */
  private seq: number;
  private timeMs: number;
  /** Set by `beginNow`: the clock is read the first time the step needs its time, then cleared. */
  private timeSource: Clock | undefined;
  private n = 0;

  /** `restored`: the timers of the snapshot the actor was created from; `at`: the creating input. */
  constructor(root: AnyActorRef, restored: readonly PersistedTimer[], at: LogPoint) {
    this.root = root;
    for (const t of restored) this.table.set(t.id, { ...t });
    this.seq = at.seq;
    this.timeMs = at.timeMs;
  }

  /**
   * Replaces the system scheduler's `schedule`, `cancel` and `cancelAll`; xstate looks them up on
   * `system.scheduler` at each call. Call it after `createActor` and before `start()`: xstate
   * defers every action of the initial state (and of restored or invoked children) until then,
   * so nothing can have been scheduled yet. Throws if xstate scheduled something anyway.
   */
  install(): void {
    const system = this.root.system;
    const early = Object.keys(system.getSnapshot()._scheduledEvents);
    if (early.length > 0) {
      throw new WardenError('CONFIG', `xstate scheduled ${early.length} delayed event(s) before the actor started; warden cannot make them durable`, { nonRetryable: true });
    }
    const scheduler = system.scheduler;
    scheduler.schedule = (source, target, event, delay, xid) => this.schedule(source, target, event, delay, xid);
    scheduler.cancel = (source, xid) => this.cancel(source, xid);
    scheduler.cancelAll = (ref) => this.cancelAll(ref);
  }

  /**
   * Starts applying the input at `at`: timers armed from now on are numbered `${at.seq}.0`,
   * `.1`... An `at` without `seq` (an input the caller did not place in the log) keeps the
   * current seq and numbering; only the deadlines' base time changes.
   */
  begin(at: { seq?: number; timeMs: number }): void {
    this.beginAt(at.seq, at.timeMs);
  }

  /** `begin({ seq, timeMs })` without the object. */
  beginAt(seq: number | undefined, timeMs: number): void {
    this.timeMs = timeMs;
    this.timeSource = undefined;
    if (seq !== undefined) {
      this.seq = seq;
      this.n = 0;
    }
  }

  /**
   * `beginAt(seq, clock.now())`, but the clock is read only if the step arms a timer or asks for
   * `at` (once; every timer of the step has the same base time), not for every input.
   */
  beginNow(seq: number | undefined, clock: Clock): void {
    this.timeSource = clock;
    if (seq !== undefined) {
      this.seq = seq;
      this.n = 0;
    }
  }

  /** The base time of the step being applied (reads the clock once after `beginNow`). */
  private time(): number {
    if (this.timeSource !== undefined) {
      this.timeMs = this.timeSource.now();
      this.timeSource = undefined;
    }
    return this.timeMs;
  }

  /** Number of pending timers. */
  get size(): number {
    return this.tableOrUndefined?.size ?? 0;
  }

  /** The log point of the input being applied (after `beginNow`, its time is fixed by the first read). */
  get at(): LogPoint {
    return { seq: this.seq, timeMs: this.time() };
  }

  /** Pending timers, by deadline then id. */
  pending(): PendingTimer[] {
    return [...this.table.values()].sort(compareTimers).map((t) => ({ id: t.id, dueMs: t.dueMs }));
  }

  /** Pending timers in their persisted form, in `pending()` order. */
  persisted(): PersistedTimer[] {
    return [...this.table.values()].sort(compareTimers).map((t) => ({ ...t }));
  }

  /** Removes and returns the timer `id`, or undefined if it is not pending (invariant 3). */
  take(id: string): PersistedTimer | undefined {
    const t = this.table.get(id);
    if (t) this.table.delete(id);
    return t;
  }

  /** Forgets every pending timer (the actor stopped, finished or crashed). */
  clear(): void {
    this.tableOrUndefined?.clear();
  }

  /** @internal xstate's `scheduler.schedule`, for this table's tree: records the timer (invariant 1). */
  schedule(source: AnyActorRef, target: AnyActorRef, event: EventObject, delay: number, xid: string | undefined): void {
    const from = actorPath(this.root, source);
    const to = actorPath(this.root, target);
    if (from === undefined || to === undefined) {
      throw new WardenError('CONFIG', `a delayed '${event.type}' cannot be made durable: its ${from === undefined ? 'sender' : 'target'} is not an actor of this tree with a non-empty id`, {
        nonRetryable: true,
        details: { event: event.type },
      });
    }
    if (!Number.isFinite(delay)) {
      throw new WardenError('CONFIG', `a delayed '${event.type}' cannot be made durable: its delay ${delay} is not a finite number of ms`, { nonRetryable: true, details: { event: event.type, delay } });
    }
    let id: string;
    do id = `${this.seq}.${this.n++}`;
    while (this.table.has(id)); // taken only if a seq is applied twice or an input has no seq
    this.table.set(id, {
      id,
      dueMs: this.time() + delay,
      delay,
      event, // invariant 6: a JSON value
      source: from,
      target: to,
      xid: xid ?? null,
    });
  }

  /** @internal xstate's `scheduler.cancel` (invariant 4). */
  cancel(source: AnyActorRef, xid: string): void {
    const from = actorPath(this.root, source);
    if (from === undefined) return;
    for (const [id, t] of this.table) if (t.source === from && t.xid === xid) this.table.delete(id);
  }

  /** @internal xstate's `scheduler.cancelAll` (invariant 4). */
  cancelAll(ref: AnyActorRef): void {
    const from = actorPath(this.root, ref);
    if (from === undefined) return;
    for (const [id, t] of this.table) if (t.source === from) this.table.delete(id);
  }
}
