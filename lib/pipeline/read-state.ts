/**
 * Reading the durable state of one key: its checkpoint entry plus a replay of its inputs from
 * the log since, computed in this process. For a node that does not hold the actor in memory
 * (after a restart, a passivated key, another process, the CLI).
 *
 * Invariants:
 *  1. A read writes nothing, publishes nothing and issues no call: the checkpoint store is seen
 *     through a read-only view, the actor is rebuilt in a host that only records the calls and
 *     timers a machine starts, and is stopped after the read.
 *  2. The state is what a worker restoring the partition now would reach for the key: the key's
 *     entry as of the partition's checkpoint at seq C, then the key's inputs (and timer and call
 *     records) with C < seq <= S, where S is the newest sequence of the partition read at the start;
 *     `seq` says S. Inputs the stage dead-letters are skipped, as the stage skips them.
 *  3. The entry and the partition's meta come from one checkpoint: the meta is read before and
 *     after the entry, and the read starts over when a checkpoint was written in between.
 *  4. An unusable checkpoint (checksum, unknown machine version) is handled as the stage's
 *     `checkpoint.onUnusable` says: 'rebuild' reads the key's whole log (which must still start at
 *     sequence 1, else `LOG_TRUNCATED`), 'fail' rejects with the error.
 */
import { SystemClock, type Clock } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import { checkPort } from '../core/ports.js';
import { partitionOf } from '../core/ids.js';
import { fallBackToLog, isUnusableCheckpoint, rebuildActor, type RestoreContext } from '../worker/replay.js';
import type { ActorEntry, CheckpointMeta, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { verifyRecord } from '../worker/records.js';
import type { Transport } from '../transport/transport.js';
import type { Pipeline, ResolvedStage } from './define-pipeline.js';

/** The state of one key of a stage, and how current it is. */
export interface KeyState {
  stage: string;
  key: string;
  partition: number;
  /** The machine's state value (`'open'`, `{ checkout: 'cart' }`). */
  value: unknown;
  context: unknown;
  /** `'active'`, `'done'` (reached a final state: its next input starts a new life) or `'error'`. */
  status: string;
  /**
   * The stream sequence (of the stage's stream) the state is current to: every input of the
   * key's partition stored at or below it is reflected, none above.
   */
  seq: number;
  /** `'memory'`: the live actor of a running node; `'durable'`: rebuilt from the checkpoint and the log. */
  source: 'memory' | 'durable';
  /** Sequence of the partition checkpoint the state starts from (0: none, or one that could not be used). */
  checkpointSeq: number;
  /** Inputs, timer and call records of the key replayed from the log after the checkpoint (0 from memory). */
  replayed: number;
}

/** Options of `readKeyState`. */
export interface ReadKeyStateOptions {
  pipeline: Pipeline;
  /** The log the pipeline runs on. */
  transport: Transport;
  /** The checkpoint store the pipeline's nodes write. */
  checkpointStore: CheckpointStore;
  /** Name of the stage. */
  stage: string;
  key: string;
  /** Clock of the rebuilt actor. @default new SystemClock() */
  clock?: Clock;
}

/** The running worker of a partition, as far as a read needs it. */
export interface LiveWorker {
  readonly running: boolean;
  /** The key's in-memory state as a read sees it (none for a finished actor a committed checkpoint removed). */
  readableState(key: string): { value: unknown; context: unknown; status: string } | undefined;
  /** Does the worker hold the key in memory at all? */
  inspect(key: string): { value: unknown; context: unknown; status: string } | undefined;
  stats(): { appliedSeq: number; checkpointSeq: number };
}

/**
 * The durable state of `key` in `stage`: its checkpoint entry plus a replay of its inputs from the
 * log since (see the file comment). Resolves `undefined` for a key with no state: one that never
 * received an input, or whose actor reached a final state before the last checkpoint (its entry
 * is removed; its next input starts a new life). Writes, publishes and calls nothing, so it is
 * safe against a running pipeline, from any process.
 *
 * @example
 * const state = await readKeyState({ pipeline, transport, checkpointStore, stage: 'accounts', key: 'acct-1' });
 * if (state) console.log(state.context, `as of seq ${state.seq}`);
 */
export function readKeyState(options: ReadKeyStateOptions): Promise<KeyState | undefined> {
  return readKeyStateFrom(options, undefined);
}

/**
 * `readKeyState`, looking first at the live actor of a running worker (`node.readState`): the
 * in-memory state when the worker holds the actor, the durable state otherwise.
 */
export async function readKeyStateFrom(options: ReadKeyStateOptions, live: ((stage: string, partition: number) => LiveWorker | undefined) | undefined): Promise<KeyState | undefined> {
  const { pipeline, transport, checkpointStore: store, key } = options;
  if (pipeline?.kind !== 'warden.pipeline') throw new ConfigError('pipeline', 'must be made by definePipeline()');
  if (typeof options.stage !== 'string' || !pipeline.stages.some((s) => s.name === options.stage)) {
    throw new ConfigError('stage', `names no stage of pipeline ${pipeline.name}: ${JSON.stringify(options.stage)} (stages: ${pipeline.stages.map((s) => s.name).join(', ')})`);
  }
  if (typeof key !== 'string' || key.length === 0) throw new ConfigError('key', `must be a non-empty string, got ${JSON.stringify(key) ?? 'undefined'}`);
  checkPort('transport', 'transport', transport);
  checkPort('checkpointStore', 'checkpointStore', store);
  const stage = pipeline.stage(options.stage);
  const partition = partitionOf(key, stage.partitions);
  const worker = live?.(stage.name, partition);
  if (worker?.running && worker.inspect(key) !== undefined) {
    const snap = worker.readableState(key);
    if (snap === undefined) return undefined; // finished, and a checkpoint removed it: no state, as a durable read says
    const stats = worker.stats();
    return { stage: stage.name, key, partition, ...snap, seq: stats.appliedSeq, source: 'memory', checkpointSeq: stats.checkpointSeq, replayed: 0 };
  }
  return readDurable(stage, partition, key, transport, store, options.clock ?? new SystemClock());
}

async function readDurable(stage: ResolvedStage, partition: number, key: string, transport: Transport, store: CheckpointStore, clock: Clock): Promise<KeyState | undefined> {
  const scope = stage.scopeOf(partition);
  const subject = stage.subjectOf(partition);
  const recordKey = (await store.readClaim(scope))?.recordKey;
  const where = `${stage.name}/${partition}`;
  const ctx: RestoreContext = { stage, scope, store, transport, clock, subject, verifyRecord: (env) => verifyRecord(recordKey, env, where) };
  const cut = await readCut(ctx, key);
  let lastSeq: number;
  try {
    lastSeq = await transport.lastSeqOf(stage.stream, subject);
  } catch (err) {
    if (!(err instanceof WardenError && err.code === 'STREAM_NOT_FOUND')) throw err;
    throw new WardenError('STREAM_NOT_FOUND', `stream ${stage.stream} of stage ${stage.name} does not exist: no node of the pipeline has run on this transport, or the pipeline was torn down`, {
      cause: err, details: { stream: stage.stream },
    });
  }
  const from = cut.meta?.seq ?? 0;
  const entry = cut.entry;
  const view = readOnlyView(store, () => {
    if (entry instanceof Error) return Promise.reject(entry);
    // Invariant 2: the entry as of the partition's checkpoint (a stage applies nothing of the key in between).
    return Promise.resolve(entry && entry.seq < from ? { ...entry, seq: from } : entry);
  });
  const { host, replayed, fromLog } = await rebuildActor({ ...ctx, store: view, floorSeq: from }, key, from, { seq: lastSeq + 1, timeMs: clock.now() }, new Set());
  try {
    const hadEntry = entry !== undefined && !(entry instanceof Error);
    if (!hadEntry && replayed === 0) return undefined; // never received an input, or finished before the checkpoint
    return {
      stage: stage.name,
      key,
      partition,
      ...host.snapshot(),
      seq: Math.max(lastSeq, from),
      source: 'durable',
      checkpointSeq: entry instanceof Error || fromLog ? 0 : from, // 0: rebuilt from the whole log
      replayed,
    };
  } finally {
    host.stop();
  }
}

/**
 * Invariant 3: the partition's meta and the key's entry from one checkpoint. An unusable entry is
 * returned as its error (the replay decides, invariant 4); an unusable meta is replaced by the log.
 */
async function readCut(ctx: RestoreContext, key: string): Promise<{ meta: CheckpointMeta | undefined; entry: ActorEntry | Error | undefined }> {
  for (let attempt = 0; ; attempt++) {
    let meta: CheckpointMeta | undefined;
    try {
      meta = await ctx.store.readMeta(ctx.scope);
    } catch (err) {
      if (!isUnusableCheckpoint(err)) throw err;
      await fallBackToLog(ctx, undefined, err); // throws unless the stage rebuilds from the log
      return { meta: undefined, entry: undefined };
    }
    let entry: ActorEntry | Error | undefined;
    try {
      entry = await ctx.store.readActor(ctx.scope, key);
    } catch (err) {
      if (!isUnusableCheckpoint(err)) throw err;
      entry = err as Error;
    }
    const again = await ctx.store.readMeta(ctx.scope).catch(() => undefined);
    if (sameCheckpoint(meta, again)) return { meta, entry };
    if (attempt >= 20) {
      throw new WardenError('TIMEOUT', `the checkpoint of ${ctx.stage.name}/${ctx.scope.partition} changed during each of ${attempt + 1} reads; try again`, { details: { stage: ctx.stage.name, partition: ctx.scope.partition } });
    }
  }
}

function sameCheckpoint(a: CheckpointMeta | undefined, b: CheckpointMeta | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.seq === b.seq && a.epoch === b.epoch && a.writtenAtMs === b.writtenAtMs;
}

/** Invariant 1: a store that answers the key's entry from `entryOf` and refuses every write. */
function readOnlyView(store: CheckpointStore, entryOf: () => Promise<ActorEntry | undefined>): CheckpointStore {
  const refuse = (): Promise<never> => Promise.reject(new WardenError('STOPPED', 'a state read never writes the checkpoint store', { nonRetryable: true }));
  return {
    claim: refuse,
    readClaim: (scope) => store.readClaim(scope),
    write: refuse,
    clear: refuse,
    drop: refuse,
    close: () => Promise.resolve(),
    readMeta: (scope) => store.readMeta(scope),
    readActors: (scope) => store.readActors(scope),
    readActor: () => entryOf(),
  };
}
