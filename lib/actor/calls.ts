/**
 * Guarded calls from inside a machine, routed through the log: `fromCall(call)` is an xstate
 * promise-like actor whose result is not delivered by the promise but by a `warden.call` record
 * the partition worker appends to the partition's stream when the call settles. The machine
 * reacts to the record like to any input, so a replay delivers the same result at the same
 * point and never issues the call again.
 *
 *   machine invokes fromCall(charge)   -> the host registers a request (callId `<seq>.<n>`)
 *   worker runs charge.call(input, { idempotencyKey: '<stage>:<key>:<callId>', signal })
 *   result or final error              -> `warden.call` record appended (ID `<stage>:<key>:c<callId>`)
 *   record applied                     -> the call actor is done (onDone) or failed (onError)
 *
 * Outside a warden worker (a plain `createActor`), `fromCall` runs the call directly, like
 * `fromPromise`.
 *
 * Invariants:
 *  1. A call's ID is `${seq}.${n}`: the log sequence of the input that started it and a count of
 *     the calls started while applying that input. A replay of the same inputs gives the same
 *     IDs, so the same idempotency keys.
 *  2. A result is delivered at most once: only to a call that is still pending; a record for a
 *     call that was stopped (the state was left) or already settled does nothing.
 *  3. The input and the output of a call, and its error as delivered (`CallError`), are JSON
 *     values: they are persisted with the actor and carried by the log.
 *  4. A pending call is part of the actor's persisted snapshot (xstate persists invoked
 *     children); a restored actor registers it again, and the worker decides whether to issue it
 *     (it does not while the log may still hold its result).
 */
import type { AnyActorRef, PromiseActorLogic } from 'xstate';
import type { Json } from '../core/envelope.js';
import { describeError, WardenError } from '../core/errors.js';
import { getCall } from '../resilience/registry.js';
import { memberOf } from './actor-system.js';
import type { LogPoint } from './timers.js';
import { actorPath, resolvePath } from './timers.js';

/** What `fromCall` can run: a guarded call (`defineCall`), or anything with its `call` shape. */
export interface CallTarget<I = unknown, O = unknown> {
  readonly name: string;
  call(input: I, options: { idempotencyKey: string; signal?: AbortSignal }): Promise<O>;
}

/** How a failed call reaches the machine (`onError`'s `event.error`): a JSON value. */
export interface CallError {
  name: string;
  message: string;
  /** A `WardenError` code, if the error had one (`TIMEOUT`, `BREAKER_OPEN`, `CALL_FAILED`, ...). */
  code?: string;
  /** The error chain, one line. */
  chain: string;
}

/** The payload of a `warden.call` record. */
export type CallResult = { call: string; ok: true; output: Json } | { call: string; ok: false; error: CallError };

/** A call the machine started and the worker should run. */
export interface CallRequest {
  id: string;
  name: string;
  input: Json;
  /** Path of the call actor below the root (lib/actor/timers.ts invariant 2). */
  path: string;
  target: CallTarget;
}

/** Internal event delivering a result to the call actor. */
const RESULT = 'warden.call.result';

/** Finds a call by name for `fromCall('name')`. */
export type CallLookup = (name: string) => CallTarget | undefined;

/**
 * The call `fromCall` runs: the one given, or the one named, found through the host's lookup (a
 * worker's `calls` option) or else the process-wide registry of `defineCall`.
 */
function targetOf(callOrName: CallTarget | string, lookup: CallLookup | undefined): CallTarget {
  if (typeof callOrName !== 'string') return callOrName;
  const found = (lookup ?? getCall)(callOrName);
  if (!found) throw new WardenError('CONFIG', `fromCall('${callOrName}'): no call of that name is defined (defineCall('${callOrName}', ...))`, { nonRetryable: true });
  return found;
}

/** A failed call's error as a JSON value (invariant 3). */
export function callErrorOf(err: unknown): CallError {
  const e = err instanceof Error ? err : new Error(String(err));
  const out: CallError = { name: e.name, message: e.message, chain: describeError(err) };
  if (err instanceof WardenError) out.code = err.code;
  return out;
}

/** The per-host side: numbers calls, collects requests, delivers results. */
export class CallBridge {
  /** Both created on the first call: most actors never make one. */
  private pendingOrUndefined: Map<string, CallRequest> | undefined;
  private fresh: CallRequest[] | undefined;
  private seq = -1;
  private n = 0;

  private get pendingById(): Map<string, CallRequest> {
    return (this.pendingOrUndefined ??= new Map());
  }

  constructor(
    private readonly root: AnyActorRef,
    /** Where the host is in the log (the timer table keeps it). */
    private readonly position: { readonly at: LogPoint },
    /** Finds calls by name. @default the process-wide registry */
    readonly lookup?: CallLookup,
  ) {}

  /** Invariant 1. */
  nextId(): string {
    const { seq } = this.position.at;
    if (seq !== this.seq) {
      this.seq = seq;
      this.n = 0;
    }
    return `${seq}.${this.n++}`;
  }

  register(req: Omit<CallRequest, 'path'>, self: AnyActorRef): void {
    const path = actorPath(this.root, self);
    if (path === undefined) throw new WardenError('CONFIG', `call ${req.name} was invoked by an actor without an id; warden cannot route its result`, { nonRetryable: true });
    const full = { ...req, path };
    this.pendingById.set(req.id, full);
    (this.fresh ??= []).push(full);
  }

  forget(id: string): void {
    this.pendingOrUndefined?.delete(id);
  }

  /** Requests registered since the last call (new calls, and pending ones of a restored actor). */
  take(): CallRequest[] {
    // A call started and settled within one replay is not reported.
    if (!this.fresh) return [];
    const out = this.fresh.filter((r) => this.pendingById.get(r.id) === r);
    this.fresh = undefined;
    return out;
  }

  /** Are there pending calls or requests not taken yet? */
  get busy(): boolean {
    return (this.pendingOrUndefined?.size ?? 0) > 0 || (this.fresh?.length ?? 0) > 0;
  }

  /** Every pending call. */
  pending(): CallRequest[] {
    return this.pendingOrUndefined ? [...this.pendingOrUndefined.values()] : [];
  }

  /** Delivers `result` to its call actor if the call is pending (invariant 2); false otherwise. */
  deliver(result: CallResult): boolean {
    const req = this.pendingOrUndefined?.get(result.call);
    if (!req) return false;
    this.pendingById.delete(result.call);
    const actor = resolvePath(this.root, req.path);
    if (!actor) return false;
    actor.send({ type: RESULT, ...result });
    return true;
  }

  clear(): void {
    this.pendingOrUndefined?.clear();
    this.fresh = undefined;
  }
}

/** The bridge of the host whose tree `self` is in (undefined under plain xstate). */
function bridgeOf(self: unknown): CallBridge | undefined {
  return memberOf(self)?.calls;
}

interface CallSnapshot {
  status: 'active' | 'done' | 'error' | 'stopped';
  output: unknown;
  error: unknown;
  input: unknown;
  /** Set under a warden host (invariant 1). */
  callId?: string;
}

/**
 * An xstate actor logic that runs a guarded call, for `invoke`:
 *
 * @example
 * const charge = defineCall('charge', (input: { orderId: string }, { signal, idempotencyKey }) =>
 *   fetch(url, { method: 'POST', signal, headers: { 'Idempotency-Key': idempotencyKey }, body: JSON.stringify(input) }).then((r) => r.json()));
 * setup({ actors: { charge: fromCall(charge) } }).createMachine({
 *   initial: 'paying',
 *   states: { paying: { invoke: { src: 'charge', input: ({ context }) => ({ orderId: context.id }),
 *     onDone: 'paid', onError: 'failed' } }, paid: {}, failed: {} },
 * });
 */
export function fromCall<I = unknown, O = unknown>(callOrName: CallTarget<I, O> | string): PromiseActorLogic<O, I> {
  const name = typeof callOrName === 'string' ? callOrName : callOrName.name;
  const logic = {
    config: callOrName,
    getInitialSnapshot: (scope: { self: unknown }, input: unknown): CallSnapshot => {
      const bridge = bridgeOf(scope.self);
      const snap: CallSnapshot = { status: 'active', output: undefined, error: undefined, input };
      if (bridge) snap.callId = bridge.nextId();
      return snap;
    },
    start: (snap: CallSnapshot, scope: { self: AnyActorRef }): void => {
      if (snap.status !== 'active') return;
      const bridge = bridgeOf(scope.self);
      const target = targetOf(callOrName, bridge?.lookup);
      // A call invoked by the initial state is created inside createActor, before the host attached
      // its bridge: it gets its ID here, at start, still while its creating input is applied.
      if (bridge && snap.callId === undefined) snap.callId = bridge.nextId();
      if (bridge && snap.callId !== undefined) {
        bridge.register({ id: snap.callId, name, input: snap.input as Json, target }, scope.self);
        return;
      }
      // Plain xstate: no log, run it now, like fromPromise.
      const self = scope.self;
      target.call(snap.input, { idempotencyKey: crypto.randomUUID() }).then(
        (output) => {
          if ((self.getSnapshot() as CallSnapshot).status === 'active') self.send({ type: RESULT, call: '', ok: true, output });
        },
        (err: unknown) => {
          if ((self.getSnapshot() as CallSnapshot).status === 'active') self.send({ type: RESULT, call: '', ok: false, error: callErrorOf(err) });
        },
      );
    },
    transition: (snap: CallSnapshot, event: { type: string; ok?: boolean; output?: unknown; error?: unknown }, scope: { self: unknown }): CallSnapshot => {
      if (snap.status !== 'active') return snap;
      if (event.type === RESULT) {
        return event.ok ? { ...snap, status: 'done', output: event.output, input: undefined } : { ...snap, status: 'error', error: event.error, input: undefined };
      }
      if (event.type === 'xstate.stop') {
        if (snap.callId !== undefined) bridgeOf(scope.self)?.forget(snap.callId);
        return { ...snap, status: 'stopped', input: undefined };
      }
      return snap;
    },
    getPersistedSnapshot: (snap: CallSnapshot): CallSnapshot => snap,
    restoreSnapshot: (snap: CallSnapshot): CallSnapshot => snap,
  };
  return logic as unknown as PromiseActorLogic<O, I>;
}
