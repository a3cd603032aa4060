/**
 * The types of a node: its options, its events, the status of its partitions, and the node itself.
 */
import type { PartitionWorkerOptions, WorkerStats } from '../worker/worker.js';
import type { WorkerEvent } from '../worker/events.js';
import type { CallLookup } from '../actor/calls.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { HistogramSnapshot } from '../core/histogram.js';
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
   * Observe each applied input's processing latency for `node.metrics()` and
   * `warden_processing_latency_seconds` (one histogram observation per input); false leaves the
   * histogram empty. Every other figure is read from counters the node keeps anyway. @default true
   */
  metrics?: boolean;
  /**
   * How often a partition applying a backlog yields to the event loop, so acknowledgements and
   * checkpoint replies are read meanwhile: after `inputs` inputs or `ms` milliseconds, whichever
   * comes first. The `ms` rule is not applied after the last input of a read that emptied the
   * reader's buffer (the next read waits for the event loop anyway). Fewer yields: a little more
   * throughput, later replies. @default { inputs: 64, ms: 2 }
   */
  yieldEvery?: { inputs?: number; ms?: number };
  /**
   * Which partitions this node runs, and under which epochs (a cluster decides through leases:
   * `startNode({ cluster })`). @default the node runs every partition
   */
  ownership?: PartitionOwnership;
}

export type { IngestInput } from './producer.js';

/**
 * Counts of a partition on this node since the node started, every incarnation of its worker
 * included (a restart does not reset them; a partition another node runs now keeps what this
 * node counted while it ran it).
 */
export interface PartitionTotals {
  /** Inputs applied (dead-lettered ones included). */
  applied: number;
  /** Outputs, dead letters and timer and call records the log acknowledged. */
  published: number;
  deadLettered: number;
  /** Actor crashes (each restarted from its checkpoint entry, or its input dead-lettered). */
  crashes: number;
  checkpoints: number;
  checkpointFailures: number;
  /** Checkpoint writes that outlasted `checkpoint.timeoutMs` (also counted in `checkpointFailures`). */
  checkpointTimeouts: number;
  /** Actors dropped from memory after `idleMs`. */
  passivated: number;
  /** Live actors replaced by their persisted snapshot in memory (the compact tier). */
  compacted: number;
  timersFired: number;
  callsIssued: number;
}

/** A stage's histograms on this node, all its partitions together. */
export interface StageMetrics {
  stage: string;
  /** Processing latency: from the log storing an input to the end of its apply (replays included). */
  latency: HistogramSnapshot;
  /** Duration of each successful checkpoint write. */
  checkpointDuration: HistogramSnapshot;
}

/** What `node.metrics()` returns: the figures the Prometheus exporter and the ops endpoints read. */
export interface NodeMetrics {
  /** The node's id: its cluster node id, or `<host>-<pid>` alone. */
  node: string;
  /** The partitions this node runs now or ran since it started (`local` says which). */
  partitions: PartitionStatus[];
  stages: StageMetrics[];
  /** In a cluster: lease counts since the node started. */
  leases?: { held: number; acquired: number; released: number; lost: number; renewFailures: number };
  /** The node was stopped, or its supervision tree gave up. */
  stopped: boolean;
  fatal?: string;
}

/** One partition's status. */
export interface PartitionStatus extends WorkerStats {
  stage: string;
  partition: number;
  running: boolean;
  /** This node runs the partition (alone: always; in a cluster: it holds its lease). */
  local: boolean;
  /** Counts on this node across incarnations (the `WorkerStats` fields are the current incarnation's). */
  totals: PartitionTotals;
  /** Dead letters on this node by reason. */
  deadLettersByReason: Record<string, number>;
  /** In a cluster: the node that owns the partition now, and the fencing epoch its worker runs under (undefined: nobody). */
  owner?: { node: string; epoch: number };
  /** Set when the partition stays down after a non-retryable failure (fenced, truncated log): why. */
  down?: PartitionDown;
  restarts: number;
  /** Inputs in the log not yet applied. */
  lag: number;
  /**
   * Time since the partition's last successful checkpoint on this node, whichever incarnation wrote it
   * (since the node began running the partition, before the first): a restart does not reset it.
   */
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
  /**
   * Chaos: kills the workers of `stage` (one partition, or all) abruptly, as a crash would. An
   * unknown stage, or a partition that is not an integer in `0..partitions-1`, throws a
   * `ConfigError`; a partition this node does not run now (a cluster) is left alone.
   */
  kill(stage: string, partition?: number): void;
  status(): Promise<PartitionStatus[]>;
  /** The node's id: its cluster node id, or `<host>-<pid>` for a node alone. */
  readonly nodeId: string;
  /**
   * The figures metrics are made of: the partitions this node has run (status with cumulative
   * totals), each stage's latency and checkpoint histograms, lease counts in a cluster.
   */
  metrics(): Promise<NodeMetrics>;
  /** Live (the tree runs) and not stopped. */
  readonly alive: boolean;
  /**
   * Resolves when every partition has applied all of its log and published all its outputs (held
   * ones included). Rejects with `STOPPED` when the node stopped or gave up, or a partition is down;
   * in a cluster, a partition down because its lease ran out (`LEASE_LOST`) is being handed over
   * and only delays the answer. Caught up means two polls in a row (`pollMs` apart, default 5)
   * found nothing left, so it takes at least one poll; past `timeoutMs` (default 30 000) it rejects
   * with `TIMEOUT`. A `timeoutMs` or `pollMs` that is not a finite number >= 0 rejects with a
   * `ConfigError` naming it.
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

