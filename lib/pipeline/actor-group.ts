/**
 * `actorGroup`: one partition of a stage as a supervised child. Its keyed actors are spawned on
 * demand and restored from their checkpoint (OTP's simple_one_for_one); it restarts them by the
 * stage's `supervision` policy and fails to its supervisor when their restarts exceed the
 * stage's intensity. To its supervisor it is a child of kind 'actors'.
 *
 * Invariants:
 *  1. A worker that fails with a retryable error (an escalation, a kill, a store or log outage at
 *     start) ends the child abnormally: its supervisor restarts it with backoff, from the last
 *     checkpoint, under a new epoch.
 *  2. A worker that fails with a non-retryable error stays down: a newer owner fenced it
 *     (`CHECKPOINT_FENCED`), its log lost inputs (`LOG_TRUNCATED`), its checkpoint cannot be
 *     restored under `onUnusable: 'fail'`, or its configuration is wrong. Restarting it would fight
 *     the new owner or meet the same error, so the child ends normally (restart type `transient`:
 *     not restarted), `onDown` is told the reason, and the partition stays down until something
 *     decides otherwise (its node restarted, or the cluster placing it again).
 */
import { WardenError, describeError } from '../core/errors.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Transport } from '../transport/transport.js';
import type { ActorGroupChildSpec, BackoffOptions, ChildHandle, RestartType, Shutdown, TreeNode } from '../supervision/types.js';
import type { WorkerEvent } from '../worker/events.js';
import type { CallLookup, PartitionWorkerOptions } from '../worker/options.js';
import { PartitionWorker } from '../worker/worker.js';
import type { Pipeline, ResolvedStage } from './define-pipeline.js';

/** Why a partition stays down (invariant 2). */
export interface PartitionDown {
  code: string;
  error: string;
}

/** Options of `actorGroup`. */
export interface ActorGroupOptions {
  pipeline: Pipeline;
  stage: ResolvedStage;
  partition: number;
  transport: Transport;
  checkpointStore: CheckpointStore;
  /** @default `partition-<n>` */
  id?: string;
  /** Restart type of the group itself. @default 'transient' (invariant 2) */
  restart?: RestartType;
  /** Graceful stop: finish the input in hand, write a final checkpoint. @default 10_000 */
  shutdown?: Shutdown;
  /** Backoff of restarts of the whole group. @default the supervisor's */
  backoff?: BackoffOptions;
  /** Keyed actors listed in `tree()`, restarted ones first. @default 50 */
  treeLimit?: number;
  onEvent?: (event: WorkerEvent) => void;
  /** Called with each new incarnation's worker (status, inspection). */
  onWorker?: (worker: PartitionWorker) => void;
  /** Invariant 2: the partition stays down, for this reason. */
  /** `err`: the error itself (`down.error` is its one-line description), for the log. */
  onDown?: (down: PartitionDown, err: WardenError) => void;
  /** Finds guarded calls by name for `fromCall('name')`. @default the process-wide registry */
  calls?: CallLookup;
  /** The epoch of each new incarnation (a cluster renews the partition's lease for it). @default the store's next epoch */
  epoch?: () => Promise<number>;
  /** Further options of each worker (failpoints, batch and outbox sizes, the lease check). */
  workerOptions?: Pick<PartitionWorkerOptions, 'failpoint' | 'batchSize' | 'maxOutboxSize' | 'random' | 'deadLetterBodyBytes' | 'leaseValid' | 'latency' | 'yieldEvery'>;
}

/** Invariant 2: the failures a restart cannot cure. */
export function keepsPartitionDown(err: unknown): err is WardenError {
  return err instanceof WardenError && err.nonRetryable;
}

/**
 * @example
 * const sup = createSupervisor({ children: [
 *   actorGroup({ pipeline, stage: pipeline.stage('sessions'), partition: 0, transport, checkpointStore }),
 * ] });
 */
export function actorGroup(options: ActorGroupOptions): ActorGroupChildSpec {
  const { pipeline, stage, partition } = options;
  const down = (err: WardenError): void => {
    options.onDown?.({ code: err.code, error: describeError(err) }, err);
  };
  const spec: ActorGroupChildSpec = {
    kind: 'actors',
    id: options.id ?? `partition-${partition}`,
    restart: options.restart ?? 'transient',
    shutdown: options.shutdown ?? 10_000,
    async start(ctx): Promise<ChildHandle> {
      let epoch: number | undefined;
      try {
        epoch = options.epoch ? await options.epoch() : undefined;
      } catch (err) {
        if (!keepsPartitionDown(err)) throw err;
        down(err);
        return { stop: () => Promise.resolve(), done: Promise.resolve() }; // not ours any more: ends normally, not restarted
      }
      const worker = new PartitionWorker({
        ...(epoch === undefined ? {} : { epoch }),
        stage,
        routing: pipeline.routing(stage.name),
        partition,
        transport: options.transport,
        store: options.checkpointStore,
        clock: ctx.clock,
        logger: ctx.logger.child({ stage: stage.name, partition }),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
        ...(options.calls ? { calls: options.calls } : {}),
        ...options.workerOptions,
      });
      options.onWorker?.(worker);
      try {
        await worker.start();
      } catch (err) {
        if (!keepsPartitionDown(err)) throw err;
        down(err);
        return { stop: () => Promise.resolve(), done: Promise.resolve() }; // ends normally at once: not restarted
      }
      const done = worker.done().catch((err: unknown) => {
        if (!keepsPartitionDown(err)) throw err;
        down(err);
      });
      return {
        info: () => {
          const s = worker.stats();
          return { appliedSeq: s.appliedSeq, checkpointSeq: s.checkpointSeq, actors: s.actors, outbox: s.outbox, crashes: s.crashes, deadLettered: s.deadLettered, epoch: s.epoch };
        },
        stop: () => worker.stop(),
        kill: () => worker.kill(),
        done,
        describe: (): TreeNode[] =>
          worker.describeActors(options.treeLimit ?? 50).map((a) => ({
            id: a.key,
            path: `${ctx.path}/${a.key}`,
            kind: 'actor',
            status: a.status === 'error' ? 'failed' : a.status === 'active' ? 'running' : 'stopped',
            restarts: a.restarts,
            uptimeMs: a.uptimeMs,
            info: { state: a.state },
          })),
      };
    },
  };
  if (options.backoff) spec.backoff = options.backoff;
  return spec;
}
