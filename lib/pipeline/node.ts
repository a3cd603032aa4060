/**
 * `startNode`: runs a pipeline in this process under a supervision tree:
 *
 *   node (one-for-one)
 *   └─ <stage> (one-for-one), one per stage
 *      └─ partition-<n> (actor group): the partition's worker and its keyed actors
 *
 * A partition worker that fails with a retryable error (an escalation of its actors' restarts,
 * a store outage) or is killed is restarted by its stage supervisor with backoff, from its last
 * checkpoint. One that fails with a non-retryable error (fenced by a newer owner, a truncated
 * log) stays down (actor-group invariant 2). Restarts beyond a supervisor's intensity escalate up
 * the tree; a root that gives up calls `onFatal` and `done()` rejects.
 *
 * Invariants:
 *  1. Every partition of every stage has at most one live worker; a restarted worker takes a
 *     new epoch, fencing its predecessor.
 *  2. `stop()` ends every worker gracefully (final checkpoint), stages in reverse order, and
 *     restarts nothing after.
 *  3. `done()` resolves when the node was stopped and rejects when its tree gave up: a process
 *     that awaits it never lives on with a dead pipeline.
 */
import type { PartitionWorker, PartitionWorkerOptions, WorkerStats } from '../worker/worker.js';
import type { WorkerEvent } from '../worker/events.js';
import type { CallLookup } from '../actor/calls.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { sleep, type Clock } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import { partitionOf } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { actorGroup, type PartitionDown } from './actor-group.js';
import { createSupervisor } from '../supervision/supervisor.js';
import type { BackoffOptions, SupervisionEvent, Supervisor, TreeNode } from '../supervision/types.js';
import type { PubAck, Transport } from '../transport/transport.js';
import type { Pipeline } from './define-pipeline.js';
import { compileNodeOptions } from './node-options.js';
import { createProducer, type IngestInput } from './producer.js';
import { readKeyStateFrom, type KeyState } from './read-state.js';

/** Events a node reports: its workers' events and its supervision tree's. */
export type NodeEvent = WorkerEvent | SupervisionEvent | PartitionDownEvent;

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
}

export type { IngestInput } from './producer.js';

/** One partition's status. */
export interface PartitionStatus extends WorkerStats {
  stage: string;
  partition: number;
  running: boolean;
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

const NO_STATS: WorkerStats = {
  appliedSeq: 0, checkpointSeq: 0, applied: 0, deadLettered: 0, crashes: 0, checkpoints: 0, checkpointFailures: 0, checkpointTimeouts: 0,
  lastCheckpointAtMs: 0, lastCheckpointDurationMs: 0, lastCheckpointBytes: 0, outbox: 0, held: 0, actors: 0, passivated: 0, timers: 0, timersFired: 0, callsPending: 0, callsIssued: 0, epoch: 0,
};

/**
 * Exactly-once outputs are published at once and a replay re-sends them: the next stream's
 * duplicate window must outlast the oldest input a replay can start from.
 */
function checkDuplicateWindow(pipeline: Pipeline, duplicateWindowMs: number, maxRecoveryMs: number): void {
  for (const stage of pipeline.stages) {
    if (stage.guarantee !== 'exactly-once' && stage.outputs !== 'after-checkpoint') continue;
    if (!stage.checkpointsEnabled) continue; // a replay-only stage: documented, nothing to bound
    const needed = stage.intervalMs + stage.timeoutMs + maxRecoveryMs;
    if (duplicateWindowMs < needed) {
      throw new ConfigError(
        'duplicateWindowMs',
        `${duplicateWindowMs} ms is shorter than the worst-case replay of stage ${stage.name} ` +
          `(checkpoint.intervalMs ${stage.intervalMs} + checkpoint.timeoutMs ${stage.timeoutMs} + maxRecoveryMs ${maxRecoveryMs} = ${needed} ms): ` +
          'copies re-sent by a replay would no longer be dropped. Lengthen the window or shorten those.',
      );
    }
  }
}

/**
 * Creates (or updates) a stream of `pipeline`, refusing one that exists with other subjects: it
 * belongs to another pipeline whose name and stage names join to the same stream name (pipeline
 * `a` with stage `b-c`, pipeline `a-b` with stage `c`), and updating it would take that pipeline's
 * stream over.
 */
async function ensureOwnStream(transport: Transport, pipeline: Pipeline, stream: { name: string; subjects: string[] }, duplicateWindowMs: number): Promise<void> {
  const existing = await transport.streamInfo(stream.name).catch((err: unknown) => {
    if (err instanceof WardenError && err.code === 'STREAM_NOT_FOUND') return undefined;
    throw err;
  });
  if (existing && existing.subjects.join(' ') !== stream.subjects.join(' ')) {
    throw new ConfigError(
      'pipeline.name',
      `${JSON.stringify(pipeline.name)}: stream ${stream.name} exists with subjects ${existing.subjects.join(', ')}, not ${stream.subjects.join(', ')}: ` +
        'it belongs to another pipeline whose name and stage names join to the same stream name. Rename a pipeline or a stage',
      { details: { stream: stream.name, subjects: existing.subjects } },
    );
  }
  await transport.ensureStream({ ...stream, duplicateWindowMs });
}

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

interface Slot {
  stage: string;
  partition: number;
  worker: PartitionWorker | undefined;
  incarnations: number;
  startedAtMs: number;
  down: PartitionDown | undefined;
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
  const o = compileNodeOptions(options);
  const { pipeline } = options;
  const { clock, transport, checkpointStore: store, logger, duplicateWindowMs, maxRecoveryMs } = o;
  checkDuplicateWindow(pipeline, duplicateWindowMs, maxRecoveryMs);
  const producer = createProducer({ pipeline, transport, clock });
  const listeners = new Set<(e: NodeEvent) => void>();
  if (options.onEvent) listeners.add(options.onEvent);
  const emit = (e: NodeEvent): void => {
    for (const l of listeners) {
      try {
        l(e);
      } catch (err) {
        // A listener's bug must not fail a partition or surface as an unhandled rejection.
        logger.error({ err, event: e.type }, 'node event listener threw');
      }
    }
  };

  const streams = [
    ...pipeline.stages.map((stage) => ({ name: stage.stream, subjects: [`${pipeline.name}.${stage.name}.*`] })),
    { name: pipeline.deadLetterStream, subjects: [`${pipeline.name}.dlq.>`] },
  ];
  for (const stream of streams) await ensureOwnStream(transport, pipeline, stream, duplicateWindowMs);

  const slots = new Map<string, Slot>();
  for (const stage of pipeline.stages) {
    for (let partition = 0; partition < stage.partitions; partition++) {
      slots.set(`${stage.name}/${partition}`, { stage: stage.name, partition, worker: undefined, incarnations: 0, startedAtMs: clock.now(), down: undefined });
    }
  }
  const { intensity, periodMs, backoff } = o.supervision;
  let fatal: Error | undefined;
  let stopped = false;
  const supervisor = createSupervisor({
    id: pipeline.name,
    strategy: 'one-for-one',
    intensity,
    periodMs,
    backoff,
    clock,
    logger,
    ...(options.random ? { random: options.random } : {}),
    onFatal: (err) => {
      fatal = err;
      if (options.onFatal) options.onFatal(err);
      else logger.error({ err }, 'pipeline supervision gave up');
    },
    children: pipeline.stages.map((stage) => ({
      kind: 'supervisor' as const,
      id: stage.name,
      supervisor: {
        strategy: 'one-for-one' as const,
        backoff,
        intensity,
        periodMs,
        children: Array.from({ length: stage.partitions }, (_, partition) =>
          actorGroup({
            pipeline, stage, partition, transport, checkpointStore: store, onEvent: emit,
            ...(options.calls ? { calls: options.calls } : {}),
            workerOptions: { ...(options.failpoint ? { failpoint: options.failpoint } : {}), ...(options.random ? { random: options.random } : {}) },
            onWorker: (worker) => {
              const slot = slots.get(`${stage.name}/${partition}`)!;
              slot.worker = worker;
              slot.incarnations++;
              slot.startedAtMs = clock.now();
              slot.down = undefined;
            },
            onDown: (down) => {
              slots.get(`${stage.name}/${partition}`)!.down = down;
              logger.error({ stage: stage.name, partition, code: down.code, err: down.error }, 'partition stays down');
              emit({ type: 'partition-down', stage: stage.name, partition, ...down });
            },
          }),
        ),
      },
    })),
  });
  supervisor.on(emit);
  await supervisor.start();
  const done = supervisor.done.then(
    () => undefined,
    (err: unknown) => {
      throw err instanceof Error ? err : new WardenError('STOPPED', String(err));
    },
  );
  done.catch(() => undefined); // reported through onFatal and done()

  const node: WardenNode = {
    pipeline,
    transport,
    checkpointStore: store,
    supervisor,
    ingest: (input, stageName) => producer.send(input, stageName),
    kill(stageName, partition) {
      pipeline.stage(stageName); // throws for an unknown stage
      for (const slot of slots.values()) {
        if (slot.stage !== stageName || (partition !== undefined && slot.partition !== partition)) continue;
        slot.worker?.kill(); // its supervisor sees an abnormal exit and restarts it
      }
    },
    async status() {
      return Promise.all(
        [...slots.values()].map(async (slot): Promise<PartitionStatus> => {
          const stage = pipeline.stage(slot.stage);
          const stats = slot.worker?.stats();
          const last = await transport.lastSeqOf(stage.stream, stage.subjectOf(slot.partition));
          const base: WorkerStats = stats ?? NO_STATS;
          return {
            ...base,
            stage: slot.stage,
            partition: slot.partition,
            running: slot.worker?.running ?? false,
            ...(slot.down ? { down: slot.down } : {}),
            restarts: Math.max(0, slot.incarnations - 1),
            lag: stats ? Math.max(0, last - stats.appliedSeq) : last,
            checkpointAgeMs: clock.now() - (base.lastCheckpointAtMs || slot.startedAtMs),
          };
        }),
      );
    },
    async whenCaughtUp({ timeoutMs = 30_000, pollMs = 5 } = {}) {
      const deadline = clock.now() + timeoutMs;
      let quiet = 0;
      while (quiet < 2) {
        if (fatal) throw new WardenError('STOPPED', `pipeline ${pipeline.name} has stopped: ${fatal.message}`, { cause: fatal });
        if (stopped) throw new WardenError('STOPPED', `pipeline ${pipeline.name} was stopped`);
        const all = await node.status();
        const down = all.find((p) => p.down);
        if (down?.down) throw new WardenError('STOPPED', `partition ${down.stage}/${down.partition} of pipeline ${pipeline.name} is down: ${down.down.error}`, { details: { stage: down.stage, partition: down.partition, code: down.down.code } });
        quiet = all.every((p) => p.running && p.lag === 0 && p.outbox === 0 && p.held === 0) ? quiet + 1 : 0;
        if (clock.now() > deadline) {
          throw new WardenError('TIMEOUT', `pipeline ${pipeline.name} did not catch up within ${timeoutMs} ms`, { details: { status: all } });
        }
        await sleep(clock, pollMs);
      }
    },
    inspect(stageName, key) {
      const stage = pipeline.stage(stageName);
      return slots.get(`${stage.name}/${partitionOf(key, stage.partitions)}`)?.worker?.inspect(key);
    },
    readState: (stageName, key) =>
      readKeyStateFrom({ pipeline, transport, checkpointStore: store, stage: stageName, key, clock }, (stage, partition) => slots.get(`${stage}/${partition}`)?.worker),
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    tree: () => supervisor.tree(),
    async stop() {
      stopped = true;
      await supervisor.stop();
      if (o.ownsTransport) await transport.close();
      if (o.ownsCheckpointStore) await store.close();
    },
    done: () => done,
  };
  return node;
}
