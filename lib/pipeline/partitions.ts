/**
 * The partitions of one node: their supervision tree, their current workers, their status.
 *
 *   node (one-for-one)
 *   └─ <stage> (one-for-one), one per stage
 *      └─ partition-<n> (actor group): the partition's worker and its keyed actors
 *
 * Alone, a node runs every partition from the start. With an ownership (a cluster), the stage
 * supervisors start empty and a partition's actor group is added when the node gains it and
 * removed when it loses it.
 *
 * Invariants:
 *  1. At most one actor group per partition in the tree; `gain` of a partition the node runs, or
 *     `lose` of one it does not, changes nothing.
 *  2. Under an ownership, every incarnation of a partition's worker takes its epoch from it and
 *     checks it before every write (`valid`); a worker that outlived its lease writes nothing.
 *  3. A partition's `totals` only grow while the node runs: when an incarnation ends (a restart, a
 *     partition lost) its counts are added to those before it, so a restart never resets them.
 *  4. Each stage has one latency histogram and one checkpoint-duration histogram on the node,
 *     shared by its partitions' workers across incarnations.
 *  5. Each lifecycle event of a worker (restored, stopped, killed, failed, log truncated,
 *     checkpoint unusable) is one log line with stage, partition and epoch (`logLifecycle`).
 */
import type { WorkerStats, PartitionWorker } from '../worker/worker.js';
import type { WorkerEvent } from '../worker/events.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { CHECKPOINT_BOUNDS_MS, Histogram, LATENCY_BOUNDS_MS } from '../core/histogram.js';
import { createSupervisor } from '../supervision/supervisor.js';
import type { Supervisor } from '../supervision/types.js';
import type { Transport } from '../transport/transport.js';
import { actorGroup, type PartitionDown } from './actor-group.js';
import type { Pipeline } from './define-pipeline.js';
import type { CompiledNodeOptions } from './node-options.js';
import type { NodeEvent, NodeOptions, PartitionStatus, PartitionTotals, StageMetrics } from './node-types.js';
import type { PartitionOwner } from './ownership.js';

interface Slot {
  stage: string;
  partition: number;
  worker: PartitionWorker | undefined;
  /** Invariant 3: counts of the incarnations before the current one. */
  before: PartitionTotals;
  /** Dead letters by reason, every incarnation on this node. */
  deadLetters: Map<string, number>;
  incarnations: number;
  /** When this node began running the partition (created, or gained under an ownership). */
  sinceMs: number;
  /** When a checkpoint of the partition last landed on this node, any incarnation; 0 before the first since `sinceMs`. */
  lastCheckpointAtMs: number;
  down: PartitionDown | undefined;
  /** In the tree now (always, without an ownership). */
  held: boolean;
}

const NO_STATS: WorkerStats = {
  appliedSeq: 0, checkpointSeq: 0, applied: 0, deadLettered: 0, crashes: 0, checkpoints: 0, checkpointFailures: 0, checkpointTimeouts: 0,
  lastCheckpointAtMs: 0, lastCheckpointDurationMs: 0, lastCheckpointBytes: 0, outbox: 0, published: 0, held: 0, actors: 0, passivated: 0, compact: 0, compacted: 0, timers: 0, timersFired: 0, callsPending: 0, callsIssued: 0, epoch: 0,
};

const TOTAL_FIELDS = ['applied', 'published', 'deadLettered', 'crashes', 'checkpoints', 'checkpointFailures', 'checkpointTimeouts', 'passivated', 'compacted', 'timersFired', 'callsIssued'] as const;

function zeroTotals(): PartitionTotals {
  return { applied: 0, published: 0, deadLettered: 0, crashes: 0, checkpoints: 0, checkpointFailures: 0, checkpointTimeouts: 0, passivated: 0, compacted: 0, timersFired: 0, callsIssued: 0 };
}

/** What the partitions need of their node. */
export interface PartitionsContext {
  pipeline: Pipeline;
  options: NodeOptions;
  compiled: CompiledNodeOptions;
  transport: Transport;
  store: CheckpointStore;
  clock: Clock;
  logger: Logger;
  emit: (e: NodeEvent) => void;
  onFatal: (err: Error) => void;
}

export class NodePartitions {
  readonly supervisor: Supervisor;
  private readonly slots = new Map<string, Slot>();
  /** Invariant 4. */
  private readonly stageMetrics = new Map<string, { latency: Histogram; checkpointDuration: Histogram }>();

  constructor(private readonly x: PartitionsContext) {
    const { pipeline, compiled, clock, logger } = x;
    const dynamic = x.options.ownership !== undefined;
    for (const stage of pipeline.stages) {
      this.stageMetrics.set(stage.name, { latency: new Histogram(LATENCY_BOUNDS_MS), checkpointDuration: new Histogram(CHECKPOINT_BOUNDS_MS) });
      for (let partition = 0; partition < stage.partitions; partition++) {
        this.slots.set(`${stage.name}/${partition}`, { stage: stage.name, partition, worker: undefined, before: zeroTotals(), deadLetters: new Map(), incarnations: 0, sinceMs: clock.now(), lastCheckpointAtMs: 0, down: undefined, held: !dynamic });
      }
    }
    const { intensity, periodMs, backoff } = compiled.supervision;
    this.supervisor = createSupervisor({
      id: pipeline.name,
      strategy: 'one-for-one',
      intensity,
      periodMs,
      backoff,
      clock,
      logger,
      ...(x.options.random ? { random: x.options.random } : {}),
      onFatal: (err) => x.onFatal(err),
      children: pipeline.stages.map((stage) => ({
        kind: 'supervisor' as const,
        id: stage.name,
        supervisor: {
          strategy: 'one-for-one' as const,
          backoff,
          intensity,
          periodMs,
          children: dynamic ? [] : Array.from({ length: stage.partitions }, (_, partition) => this.groupOf(stage.name, partition)),
        },
      })),
    });
  }

  /** The actor group of a partition (invariant 2 under an ownership). */
  private groupOf(stageName: string, partition: number): ReturnType<typeof actorGroup> {
    const { pipeline, options, clock, logger, emit } = this.x;
    const stage = pipeline.stage(stageName);
    const ownership = options.ownership;
    const slot = this.slots.get(`${stageName}/${partition}`)!;
    const metrics = this.stageMetrics.get(stageName)!;
    return actorGroup({
      pipeline, stage, partition, transport: this.x.transport, checkpointStore: this.x.store,
      onEvent: (e) => {
        if (e.type === 'checkpoint') {
          metrics.checkpointDuration.observe(e.durationMs);
          slot.lastCheckpointAtMs = clock.now(); // kept across incarnations: a restart does not make the partition's state younger
        }
        else if (e.type === 'dead-letter') slot.deadLetters.set(e.reason, (slot.deadLetters.get(e.reason) ?? 0) + 1);
        logLifecycle(logger, e, slot.worker?.epoch ?? 0, slot.worker?.failedWith);
        emit(e);
      },
      ...(options.calls ? { calls: options.calls } : {}),
      ...(ownership ? { epoch: () => ownership.epochFor(stageName, partition) } : {}),
      workerOptions: {
        ...(options.failpoint ? { failpoint: options.failpoint } : {}),
        ...(options.random ? { random: options.random } : {}),
        ...(ownership ? { leaseValid: () => ownership.valid(stageName, partition) } : {}),
        ...(options.metrics === false ? {} : { latency: metrics.latency }),
        ...(options.yieldEvery ? { yieldEvery: options.yieldEvery } : {}),
      },
      onWorker: (worker) => {
        retire(slot);
        slot.worker = worker;
        slot.incarnations++;
        slot.down = undefined;
      },
      onDown: (down, err) => {
        slot.down = down;
        if (down.code === 'LEASE_LOST' && ownership?.lapsed) {
          // Coordinator invariant 6: not for good; the ownership places it again under a new epoch.
          logger.warn({ stage: stageName, partition, code: down.code, err }, 'partition stopped: its lease ran out');
          emit({ type: 'partition-down', stage: stageName, partition, ...down });
          ownership.lapsed(stageName, partition);
          return;
        }
        logger.error({ stage: stageName, partition, code: down.code, err }, 'partition stays down');
        emit({ type: 'partition-down', stage: stageName, partition, ...down });
      },
    });
  }

  /** Invariant 1: the node starts running a partition it gained. */
  async gain(stageName: string, partition: number): Promise<void> {
    const slot = this.slots.get(`${stageName}/${partition}`);
    if (!slot || slot.held) return;
    slot.held = true;
    slot.down = undefined;
    slot.sinceMs = this.x.clock.now();
    slot.lastCheckpointAtMs = 0;
    try {
      await this.supervisor.supervisorOf(stageName).startChild(this.groupOf(stageName, partition));
    } catch (err) {
      slot.held = false; // not in the tree: a later gain tries again (invariant 1)
      throw err;
    }
  }

  /** Invariant 1: the node stops running a partition (graceful stop, then the child is removed). */
  async lose(stageName: string, partition: number): Promise<void> {
    const slot = this.slots.get(`${stageName}/${partition}`);
    if (!slot?.held) return;
    slot.held = false;
    const stageSup = this.supervisor.supervisorOf(stageName);
    await stageSup.terminateChild(`partition-${partition}`).catch(() => undefined);
    await stageSup.deleteChild(`partition-${partition}`).catch(() => undefined);
    retire(slot);
    slot.down = undefined;
  }

  /** Chaos: kills the workers of `stage` (one partition, or all) this node runs. */
  kill(stageName: string, partition?: number): void {
    for (const slot of this.slots.values()) {
      if (slot.stage !== stageName || (partition !== undefined && slot.partition !== partition)) continue;
      slot.worker?.kill(); // its supervisor sees an abnormal exit and restarts it
    }
  }

  /** The worker of a partition this node runs now. */
  worker(stageName: string, partition: number): PartitionWorker | undefined {
    const slot = this.slots.get(`${stageName}/${partition}`);
    return slot?.held ? slot.worker : undefined;
  }

  /**
   * Every partition's status; `owners` (a cluster's) fills `owner`, and partitions run elsewhere are
   * marked so. An owner's epoch is its worker's fencing epoch: this node's worker's own, or for a
   * partition another node runs, the epoch its latest incarnation claimed in the checkpoint store.
   */
  async status(owners: PartitionOwner[] | undefined): Promise<PartitionStatus[]> {
    const { pipeline, transport, clock } = this.x;
    const ownerOf = new Map((owners ?? []).map((o) => [`${o.stage}/${o.partition}`, o]));
    return Promise.all(
      [...this.slots.values()].map(async (slot): Promise<PartitionStatus> => {
        const stage = pipeline.stage(slot.stage);
        const stats = slot.held ? slot.worker?.stats() : undefined;
        const last = await transport.lastSeqOf(stage.stream, stage.subjectOf(slot.partition));
        const base: WorkerStats = stats ?? NO_STATS;
        const owner = ownerOf.get(`${slot.stage}/${slot.partition}`);
        const ownerEpoch = !owner ? 0 : slot.held && stats ? stats.epoch : ((await this.x.store.readClaim(stage.scopeOf(slot.partition)).catch(() => undefined))?.epoch ?? owner.epoch);
        return {
          ...base,
          stage: slot.stage,
          partition: slot.partition,
          running: (slot.held && slot.worker?.running) ?? false,
          ...(owner ? { owner: { node: owner.node, epoch: ownerEpoch } } : {}),
          ...(slot.down ? { down: slot.down } : {}),
          restarts: Math.max(0, slot.incarnations - 1),
          local: slot.held,
          totals: totalsOf(slot, stats),
          deadLettersByReason: Object.fromEntries(slot.deadLetters),
          lag: stats ? Math.max(0, last - stats.appliedSeq) : last,
          checkpointAgeMs: clock.now() - (slot.lastCheckpointAtMs || slot.sinceMs),
        };
      }),
    );
  }

  /** Invariant 4: each stage's histograms on this node. */
  stageHistograms(): StageMetrics[] {
    return [...this.stageMetrics].map(([stage, m]) => ({ stage, latency: m.latency.snapshot(), checkpointDuration: m.checkpointDuration.snapshot() }));
  }

  /** Does this node run the partition now? */
  runs(stageName: string, partition: number): boolean {
    return this.slots.get(`${stageName}/${partition}`)?.held ?? false;
  }
}

/**
 * Invariant 5: one log line per lifecycle event of a partition's worker, with its stage,
 * partition and epoch, and the error chain of a failure (its crashes and dead letters are logged
 * where they happen, checkpoints at debug).
 */
function logLifecycle(logger: Logger, e: WorkerEvent, epoch: number, failure?: unknown): void {
  const at = { stage: e.stage, partition: e.partition, epoch };
  switch (e.type) {
    case 'restored':
      logger.info({ ...at, epoch: e.epoch, seq: e.seq, outbox: e.outbox, timers: e.timers, durationMs: e.durationMs }, 'partition restored');
      break;
    case 'first-input':
      logger.debug({ ...at, seq: e.seq }, 'partition applied its first input');
      break;
    case 'checkpoint':
      logger.debug({ ...at, seq: e.seq, bytes: e.bytes, actors: e.actors, durationMs: e.durationMs }, 'checkpoint written');
      break;
    case 'stopped':
      logger.info({ ...at, seq: e.seq }, 'partition stopped');
      break;
    case 'killed':
      logger.warn({ ...at, seq: e.seq }, 'partition worker killed');
      break;
    case 'failed':
      logger.error({ ...at, seq: e.seq, err: failure ?? e.error }, 'partition worker failed');
      break;
    case 'log-truncated':
      logger.error({ ...at, checkpointSeq: e.checkpointSeq, firstSeq: e.firstSeq }, 'the log no longer holds what the checkpoint needs');
      break;
    case 'checkpoint-unusable':
      logger.error({ ...at, err: e.error }, 'checkpoint unusable');
      break;
    default:
      break; // crashes, restarts, dead letters and failed checkpoints are logged where they happen
  }
}

/** Invariant 3: the slot's current incarnation ends; its counts join those before it. */
function retire(slot: Slot): void {
  if (slot.worker) slot.before = totalsOf(slot, slot.worker.stats());
  slot.worker = undefined;
}

function totalsOf(slot: Slot, stats: WorkerStats | undefined): PartitionTotals {
  const out = { ...slot.before };
  if (stats) for (const f of TOTAL_FIELDS) out[f] += stats[f];
  return out;
}
