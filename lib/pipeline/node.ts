/**
 * `startNode`: runs a pipeline in this process. It creates the streams, starts one
 * `PartitionWorker` per partition of every stage, and restarts a worker that fails or is
 * killed (a minimal restart with exponential backoff; the supervision tree replaces it).
 *
 * Invariants:
 *  1. Every partition of every stage has exactly one live worker while the node runs; a
 *     restarted worker takes a new epoch, fencing its predecessor.
 *  2. `stop()` ends every worker gracefully (final checkpoint) and restarts nothing after.
 */
import { PartitionWorker, type WorkerStats } from '../actor/partition-worker.js';
import type { WorkerEvent } from '../actor/worker-events.js';
import { InMemoryCheckpointStore } from '../checkpoint/in-memory-checkpoint-store.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { SystemClock, sleep, type Clock } from '../core/clock.js';
import { encodeEnvelope } from '../core/envelope.js';
import { ConfigError, describeError, WardenError } from '../core/errors.js';
import { partitionOf } from '../core/ids.js';
import { createLogger, type Logger } from '../core/logger.js';
import { InMemoryTransport } from '../transport/in-memory-transport.js';
import type { PubAck, Transport } from '../transport/transport.js';
import type { Pipeline, ResolvedStage } from './define-pipeline.js';

/** Events a node reports: its workers' events plus restarts. */
export type NodeEvent =
  | WorkerEvent
  | { type: 'worker-restarting'; stage: string; partition: number; attempt: number; delayMs: number; reason: string };

/** Options of `startNode`. */
export interface NodeOptions {
  pipeline: Pipeline;
  /** The log. @default new InMemoryTransport() (embedded) */
  transport?: Transport;
  /** Checkpoint storage. @default new InMemoryCheckpointStore() (embedded) */
  checkpointStore?: CheckpointStore;
  /** @default new SystemClock() */
  clock?: Clock;
  /** @default createLogger() */
  logger?: Logger;
  /** Duplicate window of the streams the node creates. @default 120_000 */
  duplicateWindowMs?: number;
  /** Backoff of worker restarts. @default { minBackoffMs: 10, maxBackoffMs: 5_000 } */
  restart?: { minBackoffMs?: number; maxBackoffMs?: number };
  onEvent?: (event: NodeEvent) => void;
}

/** An input for the first stage. */
export interface IngestInput {
  key: string;
  type: string;
  payload?: Record<string, unknown>;
  /** Message ID, for dedupe of re-sent inputs. @default a random UUID */
  id?: string;
  headers?: Record<string, string>;
  /** Event time. @default clock.now() */
  ts?: number;
}

/** One partition's status. */
export interface PartitionStatus extends WorkerStats {
  stage: string;
  partition: number;
  running: boolean;
  restarts: number;
  /** Inputs in the log not yet applied. */
  lag: number;
}

/** A running pipeline. */
export interface WardenNode {
  readonly pipeline: Pipeline;
  readonly transport: Transport;
  readonly checkpointStore: CheckpointStore;
  /** Publishes an input to the first stage (or to `stage`). */
  ingest(input: IngestInput, stage?: string): Promise<PubAck>;
  /** Chaos: kills the workers of `stage` (one partition, or all) abruptly, as a crash would. */
  kill(stage: string, partition?: number): void;
  status(): Promise<PartitionStatus[]>;
  /** Resolves when every partition has applied all of its log and published all its outputs. */
  whenCaughtUp(options?: { timeoutMs?: number; pollMs?: number }): Promise<void>;
  /** Live state of an actor in memory. */
  inspect(stage: string, key: string): { value: unknown; context: unknown; status: string } | undefined;
  /** Adds a listener; returns its remover. */
  on(listener: (event: NodeEvent) => void): () => void;
  stop(): Promise<void>;
}

interface Slot {
  stage: ResolvedStage;
  partition: number;
  worker: PartitionWorker | undefined;
  restarts: number;
}

/**
 * Starts a pipeline on this process, on the embedded in-memory transport and checkpoint
 * store unless others are given.
 *
 * @example
 * const node = await startNode({ pipeline });
 * await node.ingest({ key: 'alice', type: 'click', payload: { page: '/' } });
 * await node.whenCaughtUp();
 * await node.stop();
 */
export async function startNode(options: NodeOptions): Promise<WardenNode> {
  const { pipeline } = options;
  if (pipeline?.kind !== 'warden.pipeline') throw new ConfigError('pipeline', 'must be made by definePipeline()');
  const clock = options.clock ?? new SystemClock();
  const transport = options.transport ?? new InMemoryTransport({ clock });
  const store = options.checkpointStore ?? new InMemoryCheckpointStore({ clock });
  const logger = (options.logger ?? createLogger()).child({ pipeline: pipeline.name });
  const minBackoffMs = options.restart?.minBackoffMs ?? 10;
  const maxBackoffMs = options.restart?.maxBackoffMs ?? 5_000;
  if (!(minBackoffMs >= 0 && maxBackoffMs >= minBackoffMs)) throw new ConfigError('restart', 'needs 0 <= minBackoffMs <= maxBackoffMs');
  const duplicateWindowMs = options.duplicateWindowMs ?? 120_000;
  const listeners = new Set<(e: NodeEvent) => void>();
  if (options.onEvent) listeners.add(options.onEvent);
  const emit = (e: NodeEvent): void => {
    for (const l of listeners) l(e);
  };

  for (const stage of pipeline.stages) {
    await transport.ensureStream({ name: stage.stream, subjects: [`${pipeline.name}.${stage.name}.*`], duplicateWindowMs });
  }
  await transport.ensureStream({ name: pipeline.deadLetterStream, subjects: [`${pipeline.name}.dlq.>`], duplicateWindowMs });

  const slots: Slot[] = pipeline.stages.flatMap((stage) =>
    Array.from({ length: stage.partitions }, (_, partition): Slot => ({ stage, partition, worker: undefined, restarts: 0 })),
  );
  let stopping = false;

  const launch = async (slot: Slot): Promise<void> => {
    const worker = new PartitionWorker({ pipeline, stage: slot.stage, partition: slot.partition, transport, store, clock, logger, onEvent: emit });
    slot.worker = worker;
    await worker.start();
    worker.done().then(
      () => undefined,
      (err: unknown) => {
        if (slot.worker === worker) scheduleRestart(slot, describeError(err));
      },
    );
  };

  const scheduleRestart = (slot: Slot, reason: string): void => {
    if (stopping) return;
    const attempt = ++slot.restarts;
    const delayMs = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(attempt - 1, 20));
    emit({ type: 'worker-restarting', stage: slot.stage.name, partition: slot.partition, attempt, delayMs, reason });
    logger.warn({ stage: slot.stage.name, partition: slot.partition, attempt, delayMs, reason }, 'restarting partition worker');
    slot.worker = undefined;
    void sleep(clock, delayMs)
      .then(() => (stopping ? undefined : launch(slot)))
      .catch((err: unknown) => {
        logger.error({ stage: slot.stage.name, partition: slot.partition, err }, 'partition worker failed to start');
        scheduleRestart(slot, describeError(err));
      });
  };

  await Promise.all(slots.map(launch));

  const node: WardenNode = {
    pipeline,
    transport,
    checkpointStore: store,
    ingest(input, stageName) {
      const stage = stageName ? pipeline.stage(stageName) : pipeline.stages[0]!;
      const id = input.id ?? crypto.randomUUID();
      const body = encodeEnvelope({ id, key: input.key, type: input.type, payload: input.payload ?? {}, headers: input.headers ?? {}, ts: input.ts ?? clock.now() });
      return transport.publish(stage.subjectOf(partitionOf(input.key, stage.partitions)), body, { msgId: id });
    },
    kill(stageName, partition) {
      const stage = pipeline.stage(stageName);
      for (const slot of slots) {
        if (slot.stage !== stage || (partition !== undefined && slot.partition !== partition) || !slot.worker) continue;
        slot.worker.kill();
        scheduleRestart(slot, 'killed');
      }
    },
    async status() {
      return Promise.all(
        slots.map(async (slot): Promise<PartitionStatus> => {
          const stats = slot.worker?.stats();
          const last = await transport.lastSeqOf(slot.stage.stream, slot.stage.subjectOf(slot.partition));
          const base: WorkerStats = stats ?? { appliedSeq: 0, checkpointSeq: 0, applied: 0, deadLettered: 0, crashes: 0, checkpoints: 0, checkpointFailures: 0, outbox: 0, actors: 0, epoch: 0 };
          return {
            ...base,
            stage: slot.stage.name,
            partition: slot.partition,
            running: slot.worker?.running ?? false,
            restarts: slot.restarts,
            lag: stats ? Math.max(0, last - stats.appliedSeq) : last,
          };
        }),
      );
    },
    async whenCaughtUp({ timeoutMs = 30_000, pollMs = 5 } = {}) {
      const deadline = clock.now() + timeoutMs;
      let quiet = 0;
      while (quiet < 2) {
        const all = await node.status();
        quiet = all.every((p) => p.running && p.lag === 0 && p.outbox === 0) ? quiet + 1 : 0;
        if (clock.now() > deadline) {
          throw new WardenError('TIMEOUT', `pipeline ${pipeline.name} did not catch up within ${timeoutMs} ms`, { details: { status: all } });
        }
        await sleep(clock, pollMs);
      }
    },
    inspect(stageName, key) {
      const stage = pipeline.stage(stageName);
      const slot = slots.find((s) => s.stage === stage && s.partition === partitionOf(key, stage.partitions));
      return slot?.worker?.inspect(key);
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      stopping = true;
      await Promise.all(slots.map(async (s) => { await s.worker?.stop(); }));
      if (!options.transport) await transport.close();
      if (!options.checkpointStore) await store.close();
    },
  };
  return node;
}
