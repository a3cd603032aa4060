/**
 * The types the keyed actors share with their worker: what became of an input sent to its actor,
 * what the keyed actors need of their worker, and what a cut takes of them (keyed-actors.ts).
 */
import type { ActorHost } from '../actor/actor-host.js';
import type { Json } from '../core/envelope.js';
import { WardenError } from '../core/errors.js';
import type { RestoreContext } from './replay.js';

/**
 * Thrown by a step to refuse its own result (its outputs cannot be routed): the step is rolled
 * back (the actor rebuilt to before the input) and reported `rejected`.
 */
export class RejectedStep extends Error {
  constructor(readonly reason: unknown) {
    super('step rejected', { cause: reason });
  }
}

/**
 * Thrown by a key's load that was waiting for the checkpoint store when the worker was asked to
 * stop gracefully (keyed-actors invariant 23): the input in hand is left in the log for the next
 * owner, and the worker stops rather than fails.
 */
export class StoreWaitAbandoned extends WardenError {
  constructor(key: string, where: string, cause: unknown) {
    super('STOPPED', `${where} stopped while waiting for the checkpoint store to read key ${JSON.stringify(key)}; the input stays in the log`, { cause });
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
  /** A graceful stop was asked for: a wait for the store gives up (keyed-actors invariant 23). */
  readonly stopping: boolean;
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
  /**
   * The persisted snapshot of each dirty actor as it was when the cut was taken, built when called
   * (`ActorHost.capture`), so the cut builds them in chunks off the path of the inputs.
   */
  snapshots: Array<[key: string, persist: () => Json]>;
  /** Keys whose actor reached a final state. */
  removed: string[];
  /** Every key taken (to mark dirty again if the cut fails). */
  keys: string[];
}
