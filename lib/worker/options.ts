/**
 * Options of a `PartitionWorker`, and their compiled form: every default applied and every
 * policy built once (`compileWorkerOptions`), so no collaborator writes `x ?? default` again.
 */
import { exponentialBackoff, type Backoff } from '../core/backoff.js';
import { nextTurn, type Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Histogram } from '../core/histogram.js';
import type { CallLookup } from '../actor/calls.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Transport } from '../transport/transport.js';
import type { WorkerEvent, WorkerEventBody } from './events.js';
import type { StageRouting, WorkerStage } from './stage.js';

/**
 * Points in a worker's life where a chaos test may crash it (by killing the worker from the
 * hook). Each is named for what has happened and what has not.
 */
export type Failpoint =
  | 'before-checkpoint-write'
  | 'after-checkpoint-write'
  | 'after-publish'
  | 'during-replay'
  | 'during-restore';

export type { CallLookup };

/** What a worker needs. */
export interface PartitionWorkerOptions {
  stage: WorkerStage;
  routing: StageRouting;
  partition: number;
  transport: Transport;
  store: CheckpointStore;
  clock: Clock;
  logger: Logger;
  /** Fencing epoch to claim; it must be newer than any claimed before. @default the store's next epoch */
  epoch?: number;
  /**
   * May the worker still write (publish, checkpoint)? Checked before every write; once it says no
   * the worker fails with `LEASE_LOST` and writes nothing more (a node paused past its lease).
   * @default always
   */
  leaseValid?: () => boolean;
  /** Messages read per batch. @default 256 */
  batchSize?: number;
  /** Outputs awaiting acknowledgement before the worker waits. @default 4096 */
  maxOutboxSize?: number;
  /** Largest original body a dead letter carries; a larger one is cut and marked. @default 65_536 */
  deadLetterBodyBytes?: number;
  /** Source of backoff jitter. @default Math.random */
  random?: () => number;
  /** Finds calls by name for `fromCall('name')`. @default the process-wide registry of `defineCall` */
  calls?: CallLookup;
  onEvent?: (event: WorkerEvent) => void;
  /** Chaos testing: called at each failpoint; kill the worker from it to crash there. */
  failpoint?: (point: Failpoint, info: { stage: string; partition: number; seq: number }) => void;
  /**
   * Observes each applied input's processing latency: from the log storing it to the end of its
   * apply (worker invariant 18). Shared by a stage's partitions on a node. @default none
   */
  latency?: Histogram;
  /**
   * How often the run loop yields to the event loop while it applies a backlog (worker invariant
   * 21): after `inputs` inputs or `ms` of clock time, whichever comes first; `yield` is how.
   * @default { inputs: 64, ms: 2, yield: setImmediate }
   */
  yieldEvery?: { inputs?: number; ms?: number; yield?: () => Promise<void> };
}

/** The worker's options, compiled once. */
export interface WorkerConfig {
  stage: WorkerStage;
  routing: StageRouting;
  partition: number;
  transport: Transport;
  store: CheckpointStore;
  clock: Clock;
  logger: Logger;
  epoch: number | undefined;
  leaseValid: (() => boolean) | undefined;
  batchSize: number;
  maxOutboxSize: number;
  deadLetterBodyBytes: number;
  random: () => number;
  calls: CallLookup | undefined;
  /** Reports an event of this worker (its stage and partition added). */
  emit: (event: WorkerEventBody) => void;
  failpoint: PartitionWorkerOptions['failpoint'];
  latency: Histogram | undefined;
  yieldEvery: { inputs: number; ms: number; yield: () => Promise<void> };
  /** `<stage>/<partition>`, for messages. */
  where: string;
  subject: string;
  /** The guarantee, as the three switches the worker acts on (invariant 8 of the worker). */
  persistOutputs: boolean;
  settleBeforeCut: boolean;
  commitBeforeApply: boolean;
  /** Retries of an at-most-once commit ahead of a batch. */
  commitRetry: Backoff;
  /** Rounds of retries while the log refuses publishes (outbox invariant 2: one probe per round). */
  publishRetry: Backoff;
}

function positiveInt(field: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new ConfigError(field, `must be a positive integer, got ${String(v)}`);
  return v;
}

/**
 * Applies the defaults and validates; a bad value throws a `ConfigError` naming the field.
 *
 * @example
 * const config = compileWorkerOptions({ stage, routing, partition: 0, transport, store, clock, logger });
 */
export function compileWorkerOptions(o: PartitionWorkerOptions): WorkerConfig {
  const { stage } = o;
  if (!Number.isSafeInteger(o.partition) || o.partition < 0 || o.partition >= stage.partitions) {
    throw new ConfigError('partition', `must be an integer in 0..${stage.partitions - 1} for stage ${stage.name}, got ${String(o.partition)}`);
  }
  if (o.epoch !== undefined) positiveInt('epoch', o.epoch);
  const onEvent = o.onEvent;
  const persistOutputs = stage.guarantee === 'exactly-once' || stage.outputs === 'after-checkpoint';
  return {
    stage,
    routing: o.routing,
    partition: o.partition,
    transport: o.transport,
    store: o.store,
    clock: o.clock,
    logger: o.logger,
    epoch: o.epoch,
    leaseValid: o.leaseValid,
    batchSize: positiveInt('batchSize', o.batchSize ?? 256),
    maxOutboxSize: positiveInt('maxOutboxSize', o.maxOutboxSize ?? 4096),
    deadLetterBodyBytes: positiveInt('deadLetterBodyBytes', o.deadLetterBodyBytes ?? 65_536),
    random: o.random ?? Math.random,
    calls: o.calls,
    emit: onEvent ? (e) => onEvent({ ...e, stage: stage.name, partition: o.partition }) : () => undefined,
    failpoint: o.failpoint,
    latency: o.latency,
    yieldEvery: {
      inputs: positiveInt('yieldEvery.inputs', o.yieldEvery?.inputs ?? 64),
      ms: positiveInt('yieldEvery.ms', o.yieldEvery?.ms ?? 2),
      yield: o.yieldEvery?.yield ?? nextTurn,
    },
    where: `${stage.name}/${o.partition}`,
    subject: stage.subjectOf(o.partition),
    persistOutputs,
    settleBeforeCut: stage.guarantee === 'at-least-once' && !persistOutputs,
    commitBeforeApply: stage.guarantee === 'at-most-once',
    commitRetry: exponentialBackoff({ minMs: 10, maxMs: 1000 }),
    publishRetry: exponentialBackoff({ minMs: 10, maxMs: 1000 }),
  };
}
