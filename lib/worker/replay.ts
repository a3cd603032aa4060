/**
 * Restoring actors: from their checkpoint entry (migrated if another machine version wrote
 * it) and, after a crash, by replaying their inputs from the log.
 *
 * Invariants:
 *  1. A restored actor's state is the state after exactly the inputs its entry covers
 *     (seq <= entry.seq); a rebuild then re-applies, in order, exactly its own inputs with
 *     max(entry.seq, floorSeq) < seq < the crashing input, skipping inputs that were
 *     dead-lettered (and records that fail their MAC). `floorSeq` is the position the worker
 *     restored: an at-most-once worker never applies an input at or below it, even one its
 *     predecessor committed past without applying.
 *  2. An entry of another machine version is migrated by the definition's `migrate`, or
 *     never restored blindly: `CHECKPOINT_VERSION` names both versions.
 *  3. Outputs regenerated during a rebuild are not published again: the originals are either
 *     acknowledged by the log or still in the worker's outbox.
 *  4. An unusable entry (failed checksum, unknown version) is never restored: by the stage's
 *     `checkpoint.onUnusable` the actor is rebuilt from the whole log (which must still start
 *     at sequence 1, else `LOG_TRUNCATED`), or the error stops the partition.
 */
import { ActorHost, type LogPoint } from '../actor/actor-host.js';
import type { SharedActorSystem } from '../actor/actor-system.js';
import { joinPersisted, splitPersisted } from '../actor/timers.js';
import { validateCallRecord, validateInput, validateTimerRecord } from '../actor/validate.js';
import type { CallResult } from '../actor/calls.js';
import type { Clock } from '../core/clock.js';
import { decodeEnvelope, inputEvent, type Envelope, type Json } from '../core/envelope.js';
import { ActorCrashedError, describeError, WardenError } from '../core/errors.js';
import { CALL_EVENT, TIMER_EVENT } from '../core/ids.js';
import type { ActorEntry, CheckpointScope, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Transport } from '../transport/transport.js';
import type { CallLookup } from './options.js';
import type { WorkerStage } from './stage.js';

/** What restoring needs to know. */
export interface RestoreContext {
  stage: WorkerStage;
  scope: CheckpointScope;
  store: CheckpointStore;
  transport: Transport;
  clock: Clock;
  /** Subject of the partition in the stage's stream. */
  subject: string;
  /** Told about every unusable checkpoint entry before the actor is rebuilt from the log. */
  onUnusable?: (key: string | undefined, error: unknown) => void;
  /** Called when a rebuild starts and after each replayed input (a failpoint); returning false abandons the replay. */
  onReplayed?: (seq: number) => boolean;
  /** Throws for a timer or call record its partition's owner did not write (records invariant 2). @default accepts all */
  verifyRecord?: (env: Envelope) => void;
  /** Invariant 1: inputs at or below it are never replayed into an entry. @default 0 */
  floorSeq?: number;
  /** Finds guarded calls by name for the hosts built here. */
  calls?: CallLookup | undefined;
  /** The actor system the hosts built here run in (the partition's). @default each its own */
  system?: SharedActorSystem | undefined;
}

/** What a worker lends to build its restore context. */
export interface RestoreOwner {
  readonly c: { stage: WorkerStage; store: CheckpointStore; transport: Transport; clock: Clock; subject: string; calls: CallLookup | undefined; partition: number; emit: (e: { type: 'checkpoint-unusable'; key?: string; error: string }) => void; logger: { error(o: object, msg: string): void } };
  readonly scope: CheckpointScope;
  readonly restoredSeq: number;
  /** The partition's actor system. */
  readonly actorSystem: SharedActorSystem;
  readonly dead: boolean;
  readonly records: { verify(env: Envelope): void };
  failpoint(point: 'during-replay', seq: number): void;
}

/** The restore context of a worker's incarnation: its settings, its record key, its failpoints. */
export function restoreContextOf(w: RestoreOwner): RestoreContext {
  const { c } = w;
  return {
    stage: c.stage, scope: w.scope, store: c.store, transport: c.transport, clock: c.clock, subject: c.subject, calls: c.calls, floorSeq: w.restoredSeq, system: w.actorSystem,
    verifyRecord: (env) => w.records.verify(env),
    onUnusable: (key, error) => {
      c.emit({ type: 'checkpoint-unusable', ...(key === undefined ? {} : { key }), error: describeError(error) });
      c.logger.error({ stage: c.stage.name, partition: c.partition, key, err: error }, 'unusable checkpoint; rebuilding from the log');
    },
    onReplayed: (seq) => {
      w.failpoint('during-replay', seq);
      return !w.dead;
    },
  };
}

/** The options of a host built while restoring. */
function hostOptions(ctx: RestoreContext, o: { at?: LogPoint; snapshot?: Json }): ConstructorParameters<typeof ActorHost>[2] {
  return { clock: ctx.clock, ...o, ...(ctx.calls ? { calls: ctx.calls } : {}), ...(ctx.system ? { system: ctx.system } : {}) };
}

/** A checkpoint that may not be restored: it fails its checksum, or no `migrate` takes its version. */
export function isUnusableCheckpoint(err: unknown): boolean {
  return err instanceof WardenError && (err.code === 'CHECKPOINT_CORRUPT' || err.code === 'CHECKPOINT_VERSION');
}

/**
 * Invariant 4: decides what an unusable checkpoint leads to. Returns when the log can replace it
 * (policy 'rebuild' and the stream still starts at sequence 1); throws otherwise.
 */
export async function fallBackToLog(ctx: RestoreContext, key: string | undefined, err: unknown): Promise<void> {
  if (ctx.stage.onUnusableCheckpoint === 'fail') throw err;
  const info = await ctx.transport.streamInfo(ctx.stage.stream);
  const what = `${ctx.stage.name}/${ctx.scope.partition}${key === undefined ? '' : `[${key}]`}`;
  if (info.firstSeq > 1) {
    throw new WardenError(
      'LOG_TRUNCATED',
      `checkpoint of ${what} is unusable and the log cannot replace it: stream ${ctx.stage.stream} starts at seq ${info.firstSeq}, not 1 (retention removed older inputs)`,
      { cause: err, nonRetryable: true, details: { stream: ctx.stage.stream, firstSeq: info.firstSeq } },
    );
  }
  ctx.onUnusable?.(key, err);
}

/** The snapshot of `entry`, migrated to the stage's machine version (invariant 2). */
export function migrated(stage: WorkerStage, entry: ActorEntry): Json {
  const def = stage.actor;
  if (entry.machineVersion === def.version) return entry.snapshot;
  if (!def.migrate) {
    throw new WardenError(
      'CHECKPOINT_VERSION',
      `checkpoint of ${stage.name}[${entry.key}] was written by machine version ${entry.machineVersion}; this is version ${def.version} and defines no migrate()`,
      { nonRetryable: true, details: { key: entry.key, storedVersion: entry.machineVersion, version: def.version } },
    );
  }
  // `migrate` sees xstate's snapshot only; the pending timers are carried over as they are.
  const { snapshot, timers } = splitPersisted(entry.snapshot);
  let upgraded: Json;
  try {
    upgraded = def.migrate(snapshot, entry.machineVersion);
  } catch (err) {
    // The actor cannot be restored: a crash of its own (dead-lettered after maxCrashesPerInput), not the partition's.
    throw new ActorCrashedError(def.name, entry.key, err, { phase: 'migrate', storedVersion: entry.machineVersion });
  }
  return joinPersisted(upgraded, timers);
}

/**
 * Builds the host for `key` from its checkpoint entry (read now, or the read `ahead` of it),
 * or a fresh one if it has none (created at log point `at`, which dates the timers of its
 * initial state).
 */
export async function loadActor(ctx: RestoreContext, key: string, at?: LogPoint, ahead?: Promise<ActorEntry | undefined>): Promise<{ host: ActorHost; entry: ActorEntry | undefined }> {
  const entry = await (ahead ?? ctx.store.readActor(ctx.scope, key));
  if (!entry) return { host: new ActorHost(ctx.stage.actor, key, hostOptions(ctx, at ? { at } : {})), entry };
  return { host: new ActorHost(ctx.stage.actor, key, hostOptions(ctx, { snapshot: migrated(ctx.stage, entry) })), entry };
}

/**
 * Rebuilds the actor for `key` as it was just before input `beforeSeq`: restore its entry,
 * then replay its own inputs from the log (invariant 1). `freshFrom` is the sequence a key
 * without an entry starts from (the position it was created or removed at). An input that
 * crashes the actor during the replay is added to `poisoned` and the rebuild starts over
 * without it.
 */
export async function rebuildActor(
  ctx: RestoreContext,
  key: string,
  freshFrom: number,
  before: LogPoint,
  poisoned: Set<number>,
): Promise<{ host: ActorHost; replayed: number; fromLog: boolean }> {
  const beforeSeq = before.seq;
  let fromLog = false;
  for (;;) {
    // A key without an entry is created at its first replayed input (or at `before`), as it was
    // the first time: the timers its initial state arms are numbered and dated from there.
    let base: ActorHost | undefined;
    let entry: ActorEntry | undefined;
    if (!fromLog) {
      try {
        entry = await ctx.store.readActor(ctx.scope, key);
        if (entry) base = new ActorHost(ctx.stage.actor, key, hostOptions(ctx, { snapshot: migrated(ctx.stage, entry) }));
      } catch (err) {
        if (!isUnusableCheckpoint(err)) throw err;
        await fallBackToLog(ctx, key, err);
        fromLog = true;
        continue;
      }
    }
    const startSeq = fromLog ? 1 : Math.max(entry ? entry.seq : freshFrom, ctx.floorSeq ?? 0) + 1;
    let host = base;
    let replayed = 0;
    let crashedAt: number | undefined;
    // A failpoint at the start of every rebuild, and after each input replayed (below).
    if (ctx.onReplayed && !ctx.onReplayed(startSeq - 1)) return { host: base ?? new ActorHost(ctx.stage.actor, key, hostOptions(ctx, { at: before })), replayed: 0, fromLog };
    const reader = ctx.transport.openReader(ctx.stage.stream, { filterSubject: ctx.subject, startSeq });
    try {
      outer: for (;;) {
        const msgs = await reader.next(512, 0);
        if (msgs.length === 0) break;
        for (const msg of msgs) {
          if (msg.seq >= beforeSeq) break outer;
          if (poisoned.has(msg.seq)) continue;
          let env;
          try {
            env = decodeEnvelope(msg.data, msg.seq);
            if (env.key !== key) continue;
            if (env.type === TIMER_EVENT) validateTimerRecord(env);
            else if (env.type === CALL_EVENT) validateCallRecord(env);
            else validateInput(ctx.stage.actor, env, msg.data.length);
            if (env.type === TIMER_EVENT || env.type === CALL_EVENT) ctx.verifyRecord?.(env);
          } catch {
            continue; // it was dead-lettered when first read
          }
          const at = { seq: msg.seq, timeMs: msg.timestampMs };
          const timer = env.type === TIMER_EVENT ? (env.payload.timer as string) : undefined;
          const call = env.type === CALL_EVENT ? (env.payload as unknown as CallResult) : undefined;
          if ((!host || host.status === 'done') && (timer !== undefined || call !== undefined)) continue; // a timer or call of no live actor does nothing
          try {
            // A key that cannot be created at this input crashed on it, as the first time.
            if (!host || host.status === 'done') host = new ActorHost(ctx.stage.actor, key, hostOptions(ctx, { at }));
            // Outputs dropped (invariant 3); timer and call records act at the same point as the first time.
            if (timer !== undefined) host.fireTimer(timer, at);
            else if (call !== undefined) host.resolveCall(call, at);
            else host.handle(inputEvent(env), at);
            replayed++;
          } catch (err) {
            if (!(err instanceof ActorCrashedError)) throw err;
            crashedAt = msg.seq;
            break outer;
          }
          if (ctx.onReplayed && !ctx.onReplayed(msg.seq)) break outer;
        }
      }
    } finally {
      await reader.close();
    }
    if (crashedAt === undefined) return { host: host ?? new ActorHost(ctx.stage.actor, key, hostOptions(ctx, { at: before })), replayed, fromLog };
    host?.stop();
    poisoned.add(crashedAt);
  }
}
