/**
 * The types of a node: its options, its events, the status of its partitions, and the node itself.
 */
import type { PartitionWorkerOptions, WorkerStats } from '../worker/worker.js';
import type { WorkerEvent } from '../worker/events.js';
import type { CallLookup } from '../actor/calls.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { BackoffOptions, SupervisionEvent, Supervisor, TreeNode } from '../supervision/types.js';
import type { PubAck, Transport } from '../transport/transport.js';
import type { PartitionDown } from './actor-group.js';
import type { Pipeline } from './define-pipeline.js';
import type { OwnershipEvent, PartitionOwnership } from './ownership.js';
import type { IngestInput } from './producer.js';
import type { KeyState } from './read-state.js';

/** Events a node reports: its workers' events and its supervision tree's. */
export type NodeEvent = WorkerEvent | SupervisionEvent | PartitionDownEvent | OwnershipEvent;

/** Supervision of a node's tree. */
export interface NodeSupervisionOptions {
  /** Restarts of a stage's partition workers allowed within `periodMs` before the stage gives up. @default 10 */
  intensity?: number;
  /** @default 60_000 */
  periodMs?: number;
  /** Backoff between restarts of a partition worker. @default { minBackoffMs: 10, maxBackoffMs: 5_000 } */
  backoff?: BackoffOptions;
}

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
  /**
   * Duplicate window of the streams the node creates. For exactly-once it must cover the
   * worst-case replay: a stage's `checkpoint.intervalMs` + `checkpoint.timeoutMs` +
   * `maxRecoveryMs`; a shorter window is refused at start. A finite number > 0. @default 120_000
   */
  duplicateWindowMs?: number;
  /**
   * Longest time a partition may take to be restored after a crash (restart backoff, claim,
   * restore), which the duplicate window must cover. A finite number >= 0. @default 60_000
   */
  maxRecoveryMs?: number;
  /** Chaos testing: called at each worker failpoint; `node.kill(stage, partition)` from it crashes the worker there. */
  failpoint?: PartitionWorkerOptions['failpoint'];
  supervision?: NodeSupervisionOptions;
  /**
   * The tree gave up (restart intensity exceeded up to the root); `done()` rejects with the same
   * error. @default logs the error
   */
  onFatal?: (error: Error) => void;
  /** Finds guarded calls by name for `fromCall('name')`. @default the process-wide registry of `defineCall` */
  calls?: CallLookup;
  /** Source of backoff jitter. @default Math.random */
  random?: () => number;
  onEvent?: (event: NodeEvent) => void;
  /**
   * Which partitions this node runs, and under which epochs (a cluster decides through leases:
   * `startNode({ cluster })`). @default the node runs every partition
   */
  ownership?: PartitionOwnership;
}

export type { IngestInput } from './producer.js';

/** One partition's status. */
export interface PartitionStatus extends WorkerStats {
  stage: string;
  partition: number;
  running: boolean;
  /** In a cluster: the node that owns the partition now, and its epoch (undefined: nobody). */
  owner?: { node: string; epoch: number };
  /** Set when the partition stays down after a non-retryable failure (fenced, truncated log): why. */
  down?: PartitionDown;
  restarts: number;
  /** Inputs in the log not yet applied. */
  lag: number;
  /** Time since the last successful checkpoint of this incarnation (since its start before the first). */
  checkpointAgeMs: number;
}

/** Events of the node itself. */
export type PartitionDownEvent = { type: 'partition-down'; stage: string; partition: number } & PartitionDown;

/** A running pipeline. */
export interface WardenNode {
  readonly pipeline: Pipeline;
  readonly transport: Transport;
  readonly checkpointStore: CheckpointStore;
  /**
   * Publishes an input to the first stage (or to `stage`): `createProducer(...).send`, with the
   * same checks and IDs. A bad input or stage is a rejected promise (`ValidationError` /
   * `ConfigError` naming the field), never a synchronous throw.
   */
  ingest(input: IngestInput, stage?: string): Promise<PubAck>;
  /** Chaos: kills the workers of `stage` (one partition, or all) abruptly, as a crash would. */
  kill(stage: string, partition?: number): void;
  status(): Promise<PartitionStatus[]>;
  /**
   * Resolves when every partition has applied all of its log and published all its outputs (held
   * ones included). Rejects with `STOPPED` when the node stopped or gave up, or a partition is down.
   */
  whenCaughtUp(options?: { timeoutMs?: number; pollMs?: number }): Promise<void>;
  /**
   * Live state of an actor this node holds in memory; undefined for a key it does not hold (never
   * loaded, passivated, or on a node restarted since). `readState` reads any key.
   */
  inspect(stage: string, key: string): { value: unknown; context: unknown; status: string } | undefined;
  /**
   * The state of a key: the live actor if this node holds it in memory, else its checkpoint entry
   * plus a replay of its inputs from the log since (`readKeyState`); undefined for a key with no
   * state. Says which (`source`) and the stream sequence it is current to (`seq`). Writes,
   * publishes and calls nothing.
   */
  readState(stage: string, key: string): Promise<KeyState | undefined>;
  /** Adds a listener; returns its remover. */
  on(listener: (event: NodeEvent) => void): () => void;
  /** A snapshot of the supervision tree: stages, partitions (position, actors), restarted actors. */
  tree(): TreeNode;
  /** The node's root supervisor (dynamic children may be added to it). */
  readonly supervisor: Supervisor;
  stop(): Promise<void>;
  /** Invariant 3: resolves after `stop()`, rejects with the error when the tree gave up. */
  done(): Promise<void>;
}

