/**
 * `startNode`: runs a pipeline in this process under a supervision tree (partitions.ts), alone or,
 * with an ownership, as one node of a cluster.
 *
 * A partition worker that fails with a retryable error (an escalation of its actors' restarts,
 * a store outage) or is killed is restarted by its stage supervisor with backoff, from its last
 * checkpoint. One that fails with a non-retryable error (fenced by a newer owner, a truncated
 * log, a lost lease) stays down (actor-group invariant 2). Restarts beyond a supervisor's
 * intensity escalate up the tree; a root that gives up calls `onFatal` and `done()` rejects.
 *
 * Invariants:
 *  1. Every partition of every stage has at most one live worker in the node; a restarted worker
 *     takes a new epoch, fencing its predecessor.
 *  2. `stop()` hands the node's partitions over (a cluster: graceful stop, then the leases are
 *     released), ends every worker gracefully (final checkpoint), stages in reverse order, and
 *     restarts nothing after.
 *  3. `done()` resolves when the node was stopped and rejects when its tree gave up: a process
 *     that awaits it never lives on with a dead pipeline.
 *  4. After `stop()`, `status()` and `metrics()` still answer (`stopped: true`): a node that owned
 *     its transport (the embedded default) and closed it with itself answers with the partitions
 *     as they were when it stopped.
 */
import { hostname } from 'node:os';
import { sleep } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import { partitionOf } from '../core/ids.js';
import type { Transport } from '../transport/transport.js';
import type { Pipeline } from './define-pipeline.js';
import { compileNodeOptions, finiteMs } from './node-options.js';
import type { NodeEvent, NodeOptions, PartitionStatus, WardenNode } from './node-types.js';
import { NodePartitions } from './partitions.js';
import { createProducer } from './producer.js';
import { readKeyStateFrom } from './read-state.js';

export type { NodeEvent, NodeOptions, NodeSupervisionOptions, PartitionDownEvent, PartitionStatus, WardenNode, IngestInput } from './node-types.js';

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
  const { pipeline, ownership } = options;
  const { clock, transport, checkpointStore: store, logger, duplicateWindowMs, maxRecoveryMs } = o;
  checkDuplicateWindow(pipeline, duplicateWindowMs, maxRecoveryMs);
  const producer = createProducer({ pipeline, transport, clock });
  const listeners = new Set<(e: NodeEvent) => void>();
  const leases = { acquired: 0, released: 0, lost: 0, renewFailures: 0 };
  listeners.add((e) => {
    if (e.type === 'lease-acquired') leases.acquired++;
    else if (e.type === 'lease-released') leases.released++;
    else if (e.type === 'lease-lost') leases.lost++;
    else if (e.type === 'lease-renew-failed') leases.renewFailures++;
  });
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

  let fatal: Error | undefined;
  let stopped = false;
  /** The partitions as they were when `stop()` closed a transport the node owned (invariant 4). */
  let finalStatus: PartitionStatus[] | undefined;
  const statusNow = async (owners?: Parameters<typeof parts.status>[0]): Promise<PartitionStatus[]> => finalStatus ?? parts.status(owners);
  const parts = new NodePartitions({
    pipeline, options, compiled: o, transport, store, clock, logger, emit,
    onFatal: (err) => {
      fatal = err;
      if (options.onFatal) options.onFatal(err);
      else logger.error({ err }, 'pipeline supervision gave up');
    },
  });
  const { supervisor } = parts;
  supervisor.on(emit);
  await supervisor.start();
  const done = supervisor.done.then(
    () => undefined,
    (err: unknown) => {
      throw err instanceof Error ? err : new WardenError('STOPPED', String(err));
    },
  );
  done.catch(() => undefined); // reported through onFatal and done()
  if (ownership) {
    try {
      await ownership.start({ gain: (stage, p) => parts.gain(stage, p), lose: (stage, p) => parts.lose(stage, p), report: emit });
    } catch (err) {
      await supervisor.stop();
      throw err;
    }
  }

  const node: WardenNode = {
    pipeline,
    transport,
    checkpointStore: store,
    supervisor,
    ingest: (input, stageName) => producer.send(input, stageName),
    kill(stageName, partition) {
      const stage = pipeline.stage(stageName); // throws for an unknown stage
      if (partition !== undefined && (!Number.isSafeInteger(partition) || partition < 0 || partition >= stage.partitions)) {
        throw new ConfigError('partition', `must be an integer in 0..${stage.partitions - 1} for stage ${stage.name}, got ${String(partition)}`);
      }
      parts.kill(stageName, partition);
    },
    async status() {
      return statusNow(ownership && !finalStatus ? await ownership.owners() : undefined);
    },
    nodeId: ownership?.nodeId ?? `${hostname()}-${process.pid}`,
    async metrics() {
      const partitions = (await statusNow()).filter((p) => p.local || p.totals.applied > 0 || p.restarts > 0);
      return {
        node: node.nodeId,
        partitions,
        stages: parts.stageHistograms(),
        ...(ownership ? { leases: { held: partitions.filter((p) => p.local).length, ...leases } } : {}),
        stopped: stopped || fatal !== undefined,
        ...(fatal ? { fatal: fatal.message } : {}),
      };
    },
    get alive() {
      return !stopped && fatal === undefined;
    },
    async whenCaughtUp(options = {}) {
      const timeoutMs = finiteMs('timeoutMs', options.timeoutMs, 30_000, 'non-negative');
      const pollMs = finiteMs('pollMs', options.pollMs, 5, 'non-negative');
      const deadline = clock.now() + timeoutMs;
      let quiet = 0;
      while (quiet < 2) {
        if (fatal) throw new WardenError('STOPPED', `pipeline ${pipeline.name} has stopped: ${fatal.message}`, { cause: fatal });
        if (stopped) throw new WardenError('STOPPED', `pipeline ${pipeline.name} was stopped`);
        // In a cluster, the partitions this node runs; alone, all of them.
        const all = (await statusNow()).filter((p) => !ownership || parts.runs(p.stage, p.partition)); // no owners: no lease or claim reads per poll
        // In a cluster, a partition down because its lease ran out is being handed over (the
        // coordinator stops it here, the placement runs it again): not caught up yet, not a failure.
        const down = all.find((p) => p.down && !(ownership && p.down.code === 'LEASE_LOST'));
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
      return parts.worker(stage.name, partitionOf(key, stage.partitions))?.inspect(key);
    },
    readState: (stageName, key) =>
      readKeyStateFrom({ pipeline, transport, checkpointStore: store, stage: stageName, key, clock }, (stage, partition) => parts.worker(stage, partition)),
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    tree: () => supervisor.tree(),
    async stop() {
      stopped = true;
      await ownership?.stop();
      await supervisor.stop();
      if (o.ownsTransport) {
        finalStatus ??= await parts.status(undefined).catch(() => undefined);
        await transport.close();
      }
      if (o.ownsCheckpointStore) await store.close();
    },
    done: () => done,
  };
  return node;
}
