/**
 * `actorGroup`: one partition of a stage as a supervised child. Its keyed actors are spawned on
 * demand and restored from their checkpoint (OTP's simple_one_for_one); it restarts them by the
 * stage's `supervision` policy and fails to its supervisor when their restarts exceed the
 * stage's intensity. To its supervisor it is a child of kind 'actors'.
 */
import { PartitionWorker, type PartitionWorkerOptions } from '../actor/partition-worker.js';
import type { WorkerEvent } from '../actor/worker-events.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Pipeline, ResolvedStage } from '../pipeline/define-pipeline.js';
import type { Transport } from '../transport/transport.js';
import type { ActorGroupChildSpec, ChildHandle, RestartType, Shutdown, TreeNode, BackoffOptions } from './types.js';

/** Options of `actorGroup`. */
export interface ActorGroupOptions {
  pipeline: Pipeline;
  stage: ResolvedStage;
  partition: number;
  transport: Transport;
  checkpointStore: CheckpointStore;
  /** @default `partition-<n>` */
  id?: string;
  /** Restart type of the group itself. @default 'permanent' */
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
  /** Further options of each worker (failpoints, batch and outbox sizes). */
  workerOptions?: Pick<PartitionWorkerOptions, 'failpoint' | 'batchSize' | 'maxOutboxSize'>;
}

/**
 * @example
 * const sup = createSupervisor({ children: [
 *   actorGroup({ pipeline, stage: pipeline.stage('sessions'), partition: 0, transport, checkpointStore }),
 * ] });
 */
export function actorGroup(options: ActorGroupOptions): ActorGroupChildSpec {
  const spec: ActorGroupChildSpec = {
    kind: 'actors',
    id: options.id ?? `partition-${options.partition}`,
    restart: options.restart ?? 'permanent',
    shutdown: options.shutdown ?? 10_000,
    async start(ctx): Promise<ChildHandle> {
      const worker = new PartitionWorker({
        pipeline: options.pipeline,
        stage: options.stage,
        partition: options.partition,
        transport: options.transport,
        store: options.checkpointStore,
        clock: ctx.clock,
        logger: ctx.logger.child({ stage: options.stage.name, partition: options.partition }),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
        ...options.workerOptions,
      });
      options.onWorker?.(worker);
      await worker.start();
      return {
        info: () => {
          const s = worker.stats();
          return { appliedSeq: s.appliedSeq, checkpointSeq: s.checkpointSeq, actors: s.actors, outbox: s.outbox, crashes: s.crashes, deadLettered: s.deadLettered, epoch: s.epoch };
        },
        stop: () => worker.stop(),
        kill: () => worker.kill(),
        done: worker.done(),
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
