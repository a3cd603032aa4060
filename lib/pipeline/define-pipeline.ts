/**
 * `definePipeline`: operators wired into a pipeline. A pipeline is pure data; `startNode`
 * runs it. Every stage reads its own stream, split into partitions by key; a stage's emitted
 * events are published to the stage its `to` names.
 */
import type { ActorDefinition } from '../actor/define-actor.js';
import type { EmittedEvent } from '../actor/actor-host.js';
import { ConfigError } from '../core/errors.js';

/** Flink-style checkpoint policy of a stage. */
export interface CheckpointPolicyOptions {
  /** Checkpoint after this many applied inputs in a partition. @default 1000 */
  everyEvents?: number;
  /** Checkpoint at least this often while there are changes, in ms. @default 1000 */
  intervalMs?: number;
}

/** One operator of a pipeline. */
export interface StageOptions {
  actor: ActorDefinition;
  /** Number of partitions of the stage's stream; keys are hashed onto them. @default 1 */
  partitions?: number;
  /**
   * Where emitted events go: the name of another stage, or a function choosing one per event
   * (returning `undefined` sends the event nowhere, on purpose). Without `to` the stage is a sink.
   */
  to?: string | ((event: EmittedEvent) => string | undefined);
  /** Key of an emitted event in the next stage. @default the key of the input that produced it */
  keyBy?: (event: EmittedEvent, inputKey: string) => string;
  checkpoint?: CheckpointPolicyOptions;
  /** Times one input may crash its actor before it is dead-lettered. @default 3 */
  maxCrashesPerInput?: number;
}

/** Options of `definePipeline`. */
export interface PipelineOptions {
  /** Pipeline name: lower-case letters, digits, '-'; prefixes streams and subjects. */
  name: string;
  /** Stages; the first one receives what `node.ingest` sends. */
  stages: StageOptions[];
}

/** A stage with every option resolved and validated. */
export interface ResolvedStage {
  name: string;
  actor: ActorDefinition;
  partitions: number;
  route: (event: EmittedEvent) => string | undefined;
  keyBy: (event: EmittedEvent, inputKey: string) => string;
  everyEvents: number;
  intervalMs: number;
  maxCrashesPerInput: number;
  stream: string;
  /** Subject of partition `p`: `<pipeline>.<stage>.<p>`. */
  subjectOf: (partition: number) => string;
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
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(field, `must be a positive integer, got ${String(v)}`);
  return v;
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
    names.add(s.actor.name);
  }
  const stages = options.stages.map((s, i): ResolvedStage => {
    const at = `stages[${i}] (${s.actor.name})`;
    if (typeof s.to === 'string' && !names.has(s.to)) {
      throw new ConfigError(`${at}.to`, `names no stage: '${s.to}' (stages: ${[...names].join(', ')})`);
    }
    if (s.to === s.actor.name) throw new ConfigError(`${at}.to`, 'must not route a stage to itself');
    const to = s.to;
    const route =
      to === undefined ? () => undefined : typeof to === 'string' ? () => to : (ev: EmittedEvent) => to(ev);
    const name = s.actor.name;
    return {
      name,
      actor: s.actor,
      partitions: positiveInt(`${at}.partitions`, s.partitions, 1),
      route,
      keyBy: s.keyBy ?? ((_ev, inputKey) => inputKey),
      everyEvents: positiveInt(`${at}.checkpoint.everyEvents`, s.checkpoint?.everyEvents, 1000),
      intervalMs: positiveInt(`${at}.checkpoint.intervalMs`, s.checkpoint?.intervalMs, 1000),
      maxCrashesPerInput: positiveInt(`${at}.maxCrashesPerInput`, s.maxCrashesPerInput, 3),
      stream: `${options.name}-${name}`,
      subjectOf: (p) => `${options.name}.${name}.${p}`,
    };
  });
  const byName = new Map(stages.map((s) => [s.name, s]));
  return {
    kind: 'warden.pipeline',
    name: options.name,
    stages,
    deadLetterStream: `${options.name}-dlq`,
    deadLetterSubject: (stage) => `${options.name}.dlq.${stage}`,
    stage(name) {
      const s = byName.get(name);
      if (!s) throw new ConfigError('stage', `'${name}' is not a stage of pipeline ${options.name}`);
      return s;
    },
  };
}
