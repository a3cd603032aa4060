/**
 * `teardownPipeline`: deletes what a pipeline keeps on its backends: the stream of every stage,
 * the dead-letter stream, and the checkpoint of every partition of every stage.
 *
 * Invariants:
 *  1. Nothing is deleted while a stream of the pipeline has consumers (a running node holds an
 *     ordered reader on every partition of every stage): the teardown fails with `IN_USE` naming
 *     the streams and their consumer counts, unless `force`. Consumers are looked at again for up
 *     to `waitMs`, so the readers of nodes that have just stopped have time to go away.
 *  2. Checkpoints are cleared before streams are deleted: a teardown cut short leaves streams
 *     without checkpoints (a node started on them replays its log from the start), never
 *     checkpoints without their log (a node started on them would fail with `LOG_TRUNCATED`).
 *  3. A stream that does not exist is reported as missing, not an error: a teardown can be run
 *     again after one cut short.
 *
 * Not atomic against a node that starts during the teardown; stop every node first.
 */
import { SystemClock, sleep, type Clock } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import { checkPort } from '../core/ports.js';
import type { CheckpointScope, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { StreamInfo, Transport } from '../transport/transport.js';
import type { Pipeline } from './define-pipeline.js';

/** Options of `teardownPipeline`. */
export interface TeardownOptions {
  pipeline: Pipeline;
  /** The log the pipeline runs on. */
  transport: Transport;
  /** The checkpoint store its nodes write. */
  checkpointStore: CheckpointStore;
  /**
   * Delete even while streams have consumers (running nodes, durable consumers). A node still
   * running loses its streams under it and cannot go on: stop nodes first. @default false
   */
  force?: boolean;
  /** Look at the pipeline's streams and report what would be deleted; delete nothing, refuse nothing. @default false */
  dryRun?: boolean;
  /** How long consumers may take to go away (the readers of nodes that just stopped) before the teardown refuses. @default 5_000 */
  waitMs?: number;
  /** @default new SystemClock() */
  clock?: Clock;
}

/** What a teardown deleted (or, for a dry run, would delete). */
export interface TeardownReport {
  /** The pipeline's streams that exist (stages, then dead letters), as they were before the teardown. */
  streams: Array<{ name: string; messages: number; consumers: number }>;
  /** Streams of the pipeline that did not exist. */
  missing: string[];
  /** The checkpoint scopes cleared: every partition of every stage, by the pipeline's partition counts. */
  checkpoints: CheckpointScope[];
  /** False for a dry run: nothing was deleted. */
  deleted: boolean;
}

/** Every stream of `pipeline`: one per stage, then the dead-letter stream. */
function streamsOf(pipeline: Pipeline): string[] {
  return [...pipeline.stages.map((s) => s.stream), pipeline.deadLetterStream];
}

async function infoOrMissing(transport: Transport, stream: string): Promise<StreamInfo | undefined> {
  try {
    return await transport.streamInfo(stream);
  } catch (err) {
    if (err instanceof WardenError && err.code === 'STREAM_NOT_FOUND') return undefined;
    throw err;
  }
}

/**
 * Deletes the pipeline's streams (stages and dead letters) and checkpoints (see the file comment
 * for its invariants). Refuses with `IN_USE` while nodes run, unless `force`.
 *
 * @example
 * await node.stop();
 * const report = await teardownPipeline({ pipeline, transport, checkpointStore });
 * console.log(`deleted ${report.streams.map((s) => s.name).join(', ')}`);
 */
export async function teardownPipeline(options: TeardownOptions): Promise<TeardownReport> {
  const { pipeline, transport, checkpointStore: store } = options;
  if (pipeline?.kind !== 'warden.pipeline') throw new ConfigError('pipeline', 'must be made by definePipeline()');
  checkPort('transport', 'transport', transport);
  checkPort('checkpointStore', 'checkpointStore', store);
  const waitMs = options.waitMs ?? 5_000;
  if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0) throw new ConfigError('waitMs', `must be a number >= 0, got ${String(waitMs)}`);
  const clock = options.clock ?? new SystemClock();
  const names = streamsOf(pipeline);
  const checkpoints = pipeline.stages.flatMap((s) => Array.from({ length: s.partitions }, (_, p) => s.scopeOf(p)));

  const look = async (): Promise<Array<[string, StreamInfo | undefined]>> =>
    Promise.all(names.map(async (name): Promise<[string, StreamInfo | undefined]> => [name, await infoOrMissing(transport, name)]));
  let infos = await look();
  const inUse = (): Array<{ name: string; consumers: number }> =>
    infos.flatMap(([name, info]) => (info && info.consumers > 0 ? [{ name, consumers: info.consumers }] : []));
  if (!options.dryRun && !options.force) {
    // Invariant 1: readers of nodes that just stopped may take a moment to be removed.
    for (const deadline = clock.now() + waitMs; inUse().length > 0 && clock.now() < deadline; ) {
      await sleep(clock, Math.min(250, Math.max(0, deadline - clock.now())));
      infos = await look();
    }
    const busy = inUse();
    if (busy.length > 0) {
      throw new WardenError(
        'IN_USE',
        `pipeline ${pipeline.name} is in use: ${busy.map((b) => `stream ${b.name} has ${b.consumers} consumer${b.consumers === 1 ? '' : 's'}`).join(', ')}. ` +
          'A running node reads every partition of every stage (stop it first; on NATS the readers of a node that died without stopping ' +
          'are dropped by the server after a few minutes), and durable consumers count too. Pass force: true to delete anyway',
        { nonRetryable: true, details: { pipeline: pipeline.name, streams: busy } },
      );
    }
  }
  const report: TeardownReport = {
    streams: infos.flatMap(([name, info]) => (info ? [{ name, messages: info.messages, consumers: info.consumers }] : [])),
    missing: infos.flatMap(([name, info]) => (info ? [] : [name])),
    checkpoints,
    deleted: false,
  };
  if (options.dryRun) return report;
  for (const scope of checkpoints) await store.drop(scope); // invariant 2: checkpoints (and their claims) first
  for (const { name } of report.streams) {
    try {
      await transport.deleteStream(name);
    } catch (err) {
      if (!(err instanceof WardenError && err.code === 'STREAM_NOT_FOUND')) throw err; // invariant 3
    }
  }
  report.deleted = true;
  return report;
}
