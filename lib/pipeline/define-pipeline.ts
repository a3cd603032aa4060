/**
 * `definePipeline`: operators wired into a pipeline. A pipeline is pure data; `startNode`
 * runs it. Every stage reads its own stream, split into partitions by key; a stage's emitted
 * events are published to the stage its `to` names.
 */
import type { ActorDefinition } from '../actor/define-actor.js';
import type { EmittedEvent } from '../actor/actor-host.js';
import { ConfigError, describeError, describeValue } from '../core/errors.js';
import { partitionOf } from '../core/ids.js';
import type { Guarantee, ResolvedActorSupervision, StageRouting, WorkerStage } from '../worker/stage.js';

export type { Guarantee, ResolvedActorSupervision } from '../worker/stage.js';

/** Flink-style checkpoint policy of a stage. */
export interface CheckpointPolicyOptions {
  /** Checkpoint after this many applied inputs in a partition. @default 1000 */
  everyEvents?: number;
  /** Checkpoint at least this often while there are changes, in ms. @default 1000 */
  intervalMs?: number;
  /**
   * Least time between the end of one checkpoint and the start of the next, in ms: bounds the
   * share of time spent checkpointing when writes are slow. @default 0
   */
  minPauseMs?: number;
  /**
   * A checkpoint write that takes longer fails (counted, reported) and is retried at the next
   * trigger; the actors keep their state and stay dirty. @default 10_000
   */
  timeoutMs?: number;
  /**
   * `false` turns periodic checkpoints off: the partition is written only when it starts and
   * stops, so a crash replays its whole log since. For benchmarks and replay-only stages. @default true
   */
  enabled?: boolean;
  /**
   * What to do with a checkpoint that fails its checksum, or was written by a machine version
   * this one cannot `migrate`: rebuild from the log (needs the log from sequence 1), or stop
   * the partition with the error. @default 'rebuild'
   */
  onUnusable?: 'rebuild' | 'fail';
  /**
   * What a worker does when the log no longer holds every input after its checkpoint (retention
   * removed inputs that were never applied): stop with `LOG_TRUNCATED`, or report the gap (a
   * `log-truncated` event and an error log) and go on without them. @default 'fail' ('skip' for at-most-once)
   */
  onTruncatedLog?: 'fail' | 'skip';
}

/** One operator of a pipeline. */
export interface StageOptions {
  actor: ActorDefinition;
  /**
   * - `'exactly-once'`: every input affects state once and every output reaches the next stage
   *   once, through any crash (state, position and outbox are one atomic cut; outputs carry
   *   deterministic IDs the next stream deduplicates).
   * - `'at-least-once'`: nothing is lost; after a crash, outputs of replayed inputs are sent again
   *   (without dedupe IDs), so the next stage may see them twice.
   * - `'at-most-once'`: the position is committed before inputs are applied; after a crash the
   *   inputs since the last checkpoint are skipped, never applied twice.
   * @default 'exactly-once'
   */
  guarantee?: Guarantee;
  /**
   * When outputs are published: `'at-once'` (lowest latency; a replay regenerates the same IDs and
   * the stream drops the copies) or `'after-checkpoint'` (held until the checkpoint that covers
   * their input is written, for sinks that must never see an output of an input a crash could
   * roll back). @default 'at-once'
   */
  outputs?: 'at-once' | 'after-checkpoint';
  /**
   * Passivation: a keyed actor that received no input for this long is checkpointed and dropped
   * from memory; its next input loads it back. Pending timers stay armed. @default 0 (never)
   */
  idleMs?: number;
  /**
   * The compact tier: a keyed actor that received no input for this long is kept in memory as its
   * persisted snapshot (a few hundred bytes) instead of a live machine (a few kilobytes); its next
   * input rebuilds it from that, in tens of microseconds, with no checkpoint read. `0` turns the
   * tier off. @default 30_000
   */
  compactMs?: number;
  /**
   * Live actors per partition: beyond this many, the least recently active are compacted (as after
   * `compactMs`), whatever their idle time. Applies while `compactMs` is not 0. @default 50_000
   */
  maxLiveActors?: number;
  /** Number of partitions of the stage's stream; keys are hashed onto them. @default 1 */
  partitions?: number;
  /**
   * Where emitted events go: the name of a stage, or a function choosing one per event (returning
   * `undefined` sends the event nowhere, on purpose). Without `to` the stage is a sink. Any stage
   * may be named, this one and earlier ones included (a cycle: two accounts of one ledger stage
   * transferring to each other); outputs keep their exactly-once IDs. A cycle that never stops
   * emitting is an endless loop of messages.
   */
  to?: string | ((event: EmittedEvent) => string | undefined);
  /** Key of an emitted event in the next stage. @default the key of the input that produced it */
  keyBy?: (event: EmittedEvent, inputKey: string) => string;
  checkpoint?: CheckpointPolicyOptions;
  /** Times one input may crash its actor before it is dead-lettered. @default 3 */
  maxCrashesPerInput?: number;
  /** How crashed keyed actors of this stage are restarted (the stage is their supervisor). */
  supervision?: ActorSupervisionOptions;
}

/**
 * Supervision of a stage's keyed actors (OTP's simple_one_for_one, per partition). warden knows
 * the state machine, so it can say which states an actor may be restarted into.
 */
export interface ActorSupervisionOptions {
  /**
   * Where a crashed actor restarts from: its last checkpoint plus a replay of its inputs since
   * (state kept, exactly-once effect), or its initial state (state dropped). @default 'checkpoint'
   */
  restartFrom?: 'checkpoint' | 'initial';
  /**
   * States a restarted actor may resume in (`'idle'`, `'checkout.cart'`). An actor rebuilt into
   * any other state restarts from its initial state instead, and an `actor-reset` event says so.
   * @default every state is safe
   */
  safeStates?: string[];
  /** Actor restarts allowed in one partition within `periodMs`; one more fails the partition worker (escalation). @default 50 */
  intensity?: number;
  /** @default 10_000 */
  periodMs?: number;
  /** Delay before rebuilding a crashed actor; the partition waits, keeping input order. @default 0 (at once) */
  minBackoffMs?: number;
  /** @default 1_000 */
  maxBackoffMs?: number;
  /** @default 0.2 */
  randomFactor?: number;
  /** An actor that ran this long without crashing has its backoff reset. @default maxBackoffMs */
  resetBackoffAfterMs?: number;
}

/** Options of `definePipeline`. */
export interface PipelineOptions {
  /** Pipeline name: lower-case letters, digits, '-'; prefixes streams and subjects. */
  name: string;
  /** Stages; the first one receives what `node.ingest` sends. */
  stages: StageOptions[];
}

/** A stage with every option resolved and validated. */
export interface ResolvedStage extends WorkerStage {
  /** The stage an emitted event goes to (its `to`), or undefined. */
  route: (event: EmittedEvent) => string | undefined;
  keyBy: (event: EmittedEvent, inputKey: string) => string;
}

/** A validated pipeline. */
export interface Pipeline {
  readonly kind: 'warden.pipeline';
  readonly name: string;
  readonly stages: readonly ResolvedStage[];
  readonly deadLetterStream: string;
  /** Subject of the dead letters of stage `stage`. */
  deadLetterSubject(stage: string): string;
  stage(name: string): ResolvedStage;
  /**
   * Where the outputs and dead letters of stage `name` go, for its partition workers: throws a
   * `ConfigError` for an output whose `to` names no stage, or whose `to` or `keyBy` throws or
   * gives no key.
   */
  routing(name: string): StageRouting;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Stage names whose stream or subjects warden uses for something else: `dlq` would get the
 * dead-letter stream `<pipeline>-dlq`, and its subjects `<pipeline>.dlq.<partition>` would fall
 * under the dead letters' `<pipeline>.dlq.>`.
 */
const RESERVED_STAGE_NAMES: ReadonlyMap<string, string> = new Map([['dlq', 'the dead-letter stream <pipeline>-dlq and its subjects <pipeline>.dlq.>']]);

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(field, `must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(field, `must be a finite number >= 0, got ${String(v)}`);
  return v;
}

function oneOf<T extends string>(field: string, value: T | undefined, allowed: readonly T[], fallback: T): T {
  const v = value ?? fallback;
  if (!allowed.includes(v)) throw new ConfigError(field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

function resolveActorSupervision(at: string, o: ActorSupervisionOptions): ResolvedActorSupervision {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError(at, `must be an object { restartFrom?, safeStates?, intensity?, ... }, got ${describeValue(o)}`);
  const restartFrom = o.restartFrom ?? 'checkpoint';
  if (restartFrom !== 'checkpoint' && restartFrom !== 'initial') {
    throw new ConfigError(`${at}.restartFrom`, `must be 'checkpoint' or 'initial', got ${JSON.stringify(restartFrom)}`);
  }
  if (o.safeStates !== undefined && (!Array.isArray(o.safeStates) || o.safeStates.some((s) => typeof s !== 'string' || s.length === 0))) {
    throw new ConfigError(`${at}.safeStates`, 'must be a list of state names');
  }
  const intensity = o.intensity ?? 50;
  if (!Number.isInteger(intensity) || intensity < 0) throw new ConfigError(`${at}.intensity`, `must be an integer >= 0, got ${String(intensity)}`);
  const minBackoffMs = nonNegative(`${at}.minBackoffMs`, o.minBackoffMs, 0);
  const maxBackoffMs = nonNegative(`${at}.maxBackoffMs`, o.maxBackoffMs, 1_000);
  if (maxBackoffMs < minBackoffMs) throw new ConfigError(`${at}.maxBackoffMs`, `must be >= minBackoffMs (${minBackoffMs}), got ${String(maxBackoffMs)}`);
  const randomFactor = nonNegative(`${at}.randomFactor`, o.randomFactor, 0.2);
  const resetBackoffAfterMs = nonNegative(`${at}.resetBackoffAfterMs`, o.resetBackoffAfterMs, maxBackoffMs);
  return {
    restartFrom,
    safeStates: o.safeStates ? [...o.safeStates] : undefined,
    intensity,
    periodMs: positiveInt(`${at}.periodMs`, o.periodMs, 10_000),
    minBackoffMs,
    maxBackoffMs,
    randomFactor,
    resetBackoffAfterMs,
  };
}

function checkpointsEnabled(field: string, value: boolean | undefined): boolean {
  if (value !== undefined && typeof value !== 'boolean') throw new ConfigError(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value ?? true;
}

/**
 * Validates and wires stages into a pipeline. Bad configuration throws a `ConfigError` naming
 * the field.
 *
 * @example
 * const pipeline = definePipeline({ name: 'clicks', stages: [
 *   { actor: parse, to: 'sessions', keyBy: (e) => String(e.user) },
 *   { actor: sessions, partitions: 4, to: 'pages', keyBy: (e) => String(e.page) },
 *   { actor: pages, partitions: 2 },
 * ] });
 */
export function definePipeline(options: PipelineOptions): Pipeline {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', `must be an object { name, stages }, got ${describeValue(options)}`);
  if (typeof options.name !== 'string' || !NAME.test(options.name)) {
    throw new ConfigError('pipeline.name', `must match ${NAME}, got ${JSON.stringify(options.name)}`);
  }
  if (!Array.isArray(options.stages) || options.stages.length === 0) {
    throw new ConfigError('pipeline.stages', 'must list at least one stage');
  }
  const names = new Set<string>();
  for (const [i, s] of options.stages.entries()) {
    if (s?.actor?.kind !== 'warden.actor') throw new ConfigError(`stages[${i}].actor`, 'must be made by defineActor()');
    if (names.has(s.actor.name)) throw new ConfigError(`stages[${i}].actor.name`, `'${s.actor.name}' is used by two stages`);
    const reserved = RESERVED_STAGE_NAMES.get(s.actor.name);
    if (reserved) throw new ConfigError(`stages[${i}].actor.name`, `'${s.actor.name}' is reserved: a stage of that name would share ${reserved}; rename the actor`);
    names.add(s.actor.name);
  }
  const stages = options.stages.map((s, i): ResolvedStage => {
    const at = `stages[${i}] (${s.actor.name})`;
    if (s.to !== undefined && typeof s.to !== 'string' && typeof s.to !== 'function') {
      throw new ConfigError(`${at}.to`, `must be a stage name or a function of the output, got ${describeValue(s.to)}`);
    }
    if (s.keyBy !== undefined && typeof s.keyBy !== 'function') {
      throw new ConfigError(`${at}.keyBy`, `must be a function of the output returning its key, got ${describeValue(s.keyBy)}`);
    }
    if (typeof s.to === 'string' && !names.has(s.to)) {
      throw new ConfigError(`${at}.to`, `names no stage: '${s.to}' (stages: ${[...names].join(', ')})`);
    }
    const to = s.to;
    const route =
      to === undefined ? () => undefined : typeof to === 'string' ? () => to : (ev: EmittedEvent) => to(ev);
    const name = s.actor.name;
    const guarantee = oneOf(`${at}.guarantee`, s.guarantee, ['at-most-once', 'at-least-once', 'exactly-once'] as const, 'exactly-once');
    const outputs = oneOf(`${at}.outputs`, s.outputs, ['at-once', 'after-checkpoint'] as const, 'at-once');
    if (guarantee === 'at-most-once' && outputs === 'after-checkpoint') {
      throw new ConfigError(`${at}.outputs`, "'after-checkpoint' holds outputs for a replay that at-most-once never does; use 'at-once' or another guarantee");
    }
    const idleMs = nonNegative(`${at}.idleMs`, s.idleMs, 0);
    if (s.checkpoint !== undefined && (typeof s.checkpoint !== 'object' || s.checkpoint === null || Array.isArray(s.checkpoint))) {
      throw new ConfigError(`${at}.checkpoint`, `must be an object of checkpoint options, got ${describeValue(s.checkpoint)}`);
    }
    const enabled = checkpointsEnabled(`${at}.checkpoint.enabled`, s.checkpoint?.enabled);
    if (idleMs > 0 && !enabled) throw new ConfigError(`${at}.idleMs`, 'passivation needs checkpoints (an actor is dropped only once its state is written); remove checkpoint.enabled: false');
    return {
      name,
      actor: s.actor,
      partitions: positiveInt(`${at}.partitions`, s.partitions, 1),
      route,
      keyBy: s.keyBy ?? ((_ev, inputKey) => inputKey),
      guarantee,
      outputs,
      idleMs,
      compactMs: nonNegative(`${at}.compactMs`, s.compactMs, 30_000),
      maxLiveActors: positiveInt(`${at}.maxLiveActors`, s.maxLiveActors, 50_000),
      everyEvents: positiveInt(`${at}.checkpoint.everyEvents`, s.checkpoint?.everyEvents, 1000),
      intervalMs: positiveInt(`${at}.checkpoint.intervalMs`, s.checkpoint?.intervalMs, 1000),
      minPauseMs: nonNegative(`${at}.checkpoint.minPauseMs`, s.checkpoint?.minPauseMs, 0),
      timeoutMs: positiveInt(`${at}.checkpoint.timeoutMs`, s.checkpoint?.timeoutMs, 10_000),
      checkpointsEnabled: enabled,
      onTruncatedLog: oneOf(`${at}.checkpoint.onTruncatedLog`, s.checkpoint?.onTruncatedLog, ['fail', 'skip'] as const, guarantee === 'at-most-once' ? 'skip' : 'fail'),
      onUnusableCheckpoint: oneOf(`${at}.checkpoint.onUnusable`, s.checkpoint?.onUnusable, ['rebuild', 'fail'] as const, 'rebuild'),
      maxCrashesPerInput: positiveInt(`${at}.maxCrashesPerInput`, s.maxCrashesPerInput, 3),
      supervision: resolveActorSupervision(`${at}.supervision`, s.supervision ?? {}),
      stream: `${options.name}-${name}`,
      subjectOf: (p) => `${options.name}.${name}.${p}`,
      scopeOf: (p) => ({ operator: `${options.name}.${name}`, partition: p }),
    };
  });
  const byName = new Map(stages.map((s) => [s.name, s]));
  const deadLetterSubject = (stage: string): string => `${options.name}.dlq.${stage}`;
  const routings = new Map(stages.map((s) => [s.name, routingOf(s, byName, deadLetterSubject(s.name))]));
  return {
    kind: 'warden.pipeline',
    name: options.name,
    stages,
    deadLetterStream: `${options.name}-dlq`,
    deadLetterSubject,
    stage(name) {
      const s = byName.get(name);
      if (!s) throw new ConfigError('stage', `'${name}' is not a stage of pipeline ${options.name}`);
      return s;
    },
    routing(name) {
      const r = routings.get(name);
      if (!r) throw new ConfigError('stage', `'${name}' is not a stage of pipeline ${options.name}`);
      return r;
    },
  };
}

/** The routing port of `stage` (stage routing invariant 1). */
function routingOf(stage: ResolvedStage, byName: ReadonlyMap<string, ResolvedStage>, deadLetterSubject: string): StageRouting {
  return {
    deadLetterSubject,
    route(ev, inputKey) {
      let target: unknown;
      try {
        target = stage.route(ev);
      } catch (err) {
        throw new ConfigError(`stages (${stage.name}).to`, `threw for ${JSON.stringify(ev.type)}: ${describeError(err)}`, { cause: err });
      }
      if (target === undefined) return undefined;
      const to = typeof target === 'string' ? byName.get(target) : undefined;
      if (!to) throw new ConfigError(`stages (${stage.name}).to`, `names no stage for ${JSON.stringify(ev.type)}: ${JSON.stringify(target)} (stages: ${[...byName.keys()].join(', ')})`);
      let key: unknown;
      try {
        key = stage.keyBy(ev, inputKey);
      } catch (err) {
        throw new ConfigError(`stages (${stage.name}).keyBy`, `threw for ${JSON.stringify(ev.type)}: ${describeError(err)}`, { cause: err });
      }
      if (typeof key !== 'string' || key.length === 0) {
        throw new ConfigError(`stages (${stage.name}).keyBy`, `must return a non-empty string key, got ${JSON.stringify(key) ?? String(key)} for ${JSON.stringify(ev.type)}`);
      }
      return { subject: to.subjectOf(partitionOf(key, to.partitions)), key };
    },
  };
}
