/**
 * What a partition worker knows of its stage: the stage's resolved configuration and a small
 * routing port. The pipeline (a layer above) builds both; the worker never sees the pipeline, so
 * it cannot reach another stage except through `StageRouting`.
 */
import type { ActorDefinition } from '../actor/define-actor.js';
import type { EmittedEvent } from '../actor/actor-host.js';
import type { CheckpointScope } from '../checkpoint/checkpoint-store.js';

/** What an operator promises about the effect of each input (see docs/guarantees.md). */
export type Guarantee = 'at-most-once' | 'at-least-once' | 'exactly-once';

/** Supervision of a stage's keyed actors, with every default applied. */
export interface ResolvedActorSupervision {
  restartFrom: 'checkpoint' | 'initial';
  safeStates: readonly string[] | undefined;
  intensity: number;
  periodMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  randomFactor: number;
  resetBackoffAfterMs: number;
}

/** A stage with every option resolved and validated (what a worker runs). */
export interface WorkerStage {
  name: string;
  actor: ActorDefinition;
  partitions: number;
  guarantee: Guarantee;
  outputs: 'at-once' | 'after-checkpoint';
  /** 0 = never passivate. */
  idleMs: number;
  /** 0 = no compact tier (worker invariant 22). */
  compactMs: number;
  /** Live actors kept per partition before the least recently active are compacted. */
  maxLiveActors: number;
  everyEvents: number;
  intervalMs: number;
  minPauseMs: number;
  timeoutMs: number;
  checkpointsEnabled: boolean;
  onUnusableCheckpoint: 'rebuild' | 'fail';
  onTruncatedLog: 'fail' | 'skip';
  maxCrashesPerInput: number;
  supervision: ResolvedActorSupervision;
  stream: string;
  /** Subject of partition `p`: `<pipeline>.<stage>.<p>`. */
  subjectOf: (partition: number) => string;
  /** Checkpoint scope of partition `p`. */
  scopeOf: (partition: number) => CheckpointScope;
}

/** Where one emitted event goes. */
export interface Route {
  /** Subject of the receiving partition. */
  subject: string;
  /** Key of the event in the receiving stage. */
  key: string;
}

/**
 * The routing port a worker is handed: where a stage's outputs and dead letters go.
 *
 * Invariants:
 *  1. `route` returns `undefined` for an event the stage sends nowhere on purpose, and throws a
 *     `ConfigError` for an event it cannot route (a `to` naming no stage, a `keyBy` or `to` that
 *     threw or returned something that is not a non-empty string). It is a pure function.
 */
export interface StageRouting {
  route(event: EmittedEvent, inputKey: string): Route | undefined;
  /** Subject of the stage's dead letters. */
  readonly deadLetterSubject: string;
}
