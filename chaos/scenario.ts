/**
 * A chaos scenario: a pipeline, how many node processes run it, the workload, the faults (a
 * schedule drawn from a seed, so the same seed gives the same faults), and the bounds the
 * invariants are checked against. `warden chaos <scenario>` runs one and reports.
 *
 * @example
 * // my-scenario.ts: three nodes of my pipeline, one SIGKILLed a third of the way in
 * import { defineScenario } from 'warden/chaos';
 * export default defineScenario({
 *   name: 'kill-one',
 *   nodes: 3,
 *   pipeline: { module: './pipeline.js', observe: { stage: 'ledger', seqs: (ctx) => ctx.seqs } },
 *   workload: { ratePerSec: 100, keys: 24 },
 *   faults: ({ durationMs, rng }) => [{ atMs: durationMs / 3, fault: { kind: 'kill-node', node: rng.int(3) } }],
 * });
 */
import { ConfigError, describeValue } from '../lib/core/errors.js';
import { seededRandom } from '../lib/core/random.js';

/** A seeded source of choices (the same seed, the same choices). */
export interface Rng {
  /** A number in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** A number in [min, max). */
  between(min: number, max: number): number;
  /** One of `items`. */
  pick<T>(items: readonly T[]): T;
}

/** A seeded generator (mulberry32): deterministic for a seed. */
export function rngOf(seed: number): Rng {
  const next = seededRandom(seed);
  return {
    next,
    int: (n) => Math.floor(next() * n),
    between: (min, max) => min + next() * (max - min),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

/** A fault the runner can inject. Nodes are numbered 0..nodes-1; NATS servers 0..2 on a 3-server log. */
export type Fault =
  | { kind: 'kill-node'; node: number }
  | { kind: 'pause-node'; node: number; forMs: number }
  | { kind: 'stop-node'; node: number }
  | { kind: 'rolling-restart'; gapMs?: number }
  | { kind: 'kill-nats-server'; server?: number; downMs?: number }
  | { kind: 'kill-nats-leader'; downMs?: number }
  | { kind: 'restart-nats-all' }
  | { kind: 'kill-redis'; downMs: number }
  | { kind: 'stall-redis'; forMs: number }
  | { kind: 'slow-redis'; latencyMs: number; forMs: number }
  | { kind: 'network'; target: 'nats' | 'redis'; forMs: number; latencyMs?: number; jitterMs?: number; reset?: boolean; blackhole?: boolean }
  | { kind: 'api'; mode: 'slow' | 'flaky' | 'down'; forMs: number; latencyMs?: number; rate?: number };

/** One step of a schedule. */
export interface ScheduledFault {
  /** Ms after the workload starts. */
  atMs: number;
  fault: Fault;
}

/** The pipeline under test: the built-in audit pipeline, or a module of your own. */
export type ScenarioPipeline =
  | 'audit'
  | 'payments'
  | {
      /**
       * Module exporting the pipeline (named `pipeline`, default, or a function returning one);
       * node processes load it. A relative path is resolved from the scenario file's folder
       * (`warden chaos`) or `RunOptions.baseDir`; a `file:` URL is taken as it is.
       */
      module: string;
      /** Where effects are read back: the stage, and the input sequences a key's actor applied, in order, from its context. */
      observe: {
        stage: string;
        seqs: (context: unknown) => readonly number[];
        /**
         * The stage whose input log tells when each input's effect happened: by default the
         * observed stage's own input log (when the input reached it); name the stage after it when
         * the observed stage emits one event per input it applied, to time the effect itself.
         */
        arrivals?: string;
        /** The input sequence an event of that log carries. @default `payload.seq` */
        seqOf?: (payload: Record<string, unknown>) => number | undefined;
      };
      /** The input for workload event `seq` of `key` (the built-in one sends `{ type: 'order', payload: { seq } }`). */
      input?: (key: string, seq: number) => { type: string; payload: Record<string, unknown> };
      /** Start the run's loopback API (for `api` faults); node processes find its URL in `WARDEN_CHAOS_API_URL`. @default false */
      api?: boolean;
      /** Each input's effect is observed exactly once (all its stages exactly-once). @default true */
      exactlyOnce?: boolean;
      /** Effects of one key are observed in the order sent. @default true */
      ordered?: boolean;
    };

/** What a scenario module exports. */
export interface ScenarioOptions {
  name: string;
  description?: string;
  pipeline?: ScenarioPipeline;
  /** Node processes. @default 3 */
  nodes?: number;
  /** NATS servers of the run's own log: 1, or a 3-server cluster (streams with 3 replicas). @default 1 */
  natsServers?: 1 | 3;
  /** Lease TTL of the nodes. @default 2_000 */
  leaseTtlMs?: number;
  /** How long the workload runs (`--duration` overrides). @default 30_000 */
  durationMs?: number;
  /** Inputs per second, spread round-robin over `keys` keys; `count` stops it early after that many inputs. @default { ratePerSec: 100, keys: 24 } */
  workload?: { ratePerSec?: number; keys?: number; count?: number };
  /** The faults, drawn from the seed's `rng`. */
  faults: (ctx: { rng: Rng; durationMs: number; nodes: number; natsServers: number }) => ScheduledFault[];
  /** Once the workload has ended and every fault is lifted, every input must be delivered within this. @default 60_000 */
  livenessMs?: number;
  /** An input is late (delayed by a fault) when its effect takes longer than this to reach the observed stage. @default 1_000 */
  lateAfterMs?: number;
  /** When set, the recovery-time invariant also fails if any fault took longer than this to recover. */
  recoveryBoundMs?: number;
}

/** A scenario with defaults applied. */
export type Scenario = Required<Omit<ScenarioOptions, 'recoveryBoundMs' | 'workload'>> & {
  workload: { ratePerSec: number; keys: number; count: number | undefined };
  recoveryBoundMs: number | undefined;
  kind: 'warden.scenario';
};

/**
 * Validates a scenario (bad values throw a `ConfigError` naming the field).
 *
 * @example export default defineScenario({ name: 'mine', faults: () => [] });
 */
export function defineScenario(o: ScenarioOptions): Scenario {
  if (typeof o?.name !== 'string' || !/^[a-z][a-z0-9-]{0,40}$/.test(o.name)) throw new ConfigError('scenario.name', `must match /^[a-z][a-z0-9-]{0,40}$/, got ${JSON.stringify(o?.name)}`);
  if (typeof o.faults !== 'function') throw new ConfigError('scenario.faults', 'must be a function of ({ rng, durationMs, nodes, natsServers }) returning the schedule');
  const nodes = orDefault(o.nodes, 3);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) throw new ConfigError('scenario.nodes', `must be an integer in 1..16, got ${String(nodes)}`);
  const natsServers = orDefault(o.natsServers, 1);
  if (natsServers !== 1 && natsServers !== 3) throw new ConfigError('scenario.natsServers', `must be 1 or 3, got ${String(natsServers)}`);
  const positive = (field: string, v: number): number => {
    if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`scenario.${field}`, `must be a finite number > 0, got ${String(v)}`);
    return v;
  };
  const positiveInt = (field: string, v: number): number => {
    if (!Number.isSafeInteger(v) || v <= 0) throw new ConfigError(`scenario.${field}`, `must be a positive integer, got ${String(v)}`);
    return v;
  };
  if (o.description !== undefined && typeof o.description !== 'string') throw new ConfigError('scenario.description', `must be a string, got ${typeof o.description}`);
  const pipeline = o.pipeline === undefined ? 'audit' : o.pipeline;
  if (pipeline !== 'audit' && pipeline !== 'payments' && (typeof pipeline !== 'object' || pipeline === null)) {
    throw new ConfigError('scenario.pipeline', `must be 'audit', 'payments', or { module, observe: { stage, seqs(context) } }, got ${describeValue(pipeline)}`);
  }
  if (typeof pipeline === 'object') checkPipelineModule(pipeline);
  if (o.workload !== undefined && (typeof o.workload !== 'object' || o.workload === null)) {
    throw new ConfigError('scenario.workload', `must be an object { ratePerSec?, keys?, count? }, got ${describeValue(o.workload)}`);
  }
  return {
    kind: 'warden.scenario',
    name: o.name,
    description: o.description ?? '',
    pipeline,
    nodes,
    natsServers,
    leaseTtlMs: positive('leaseTtlMs', orDefault(o.leaseTtlMs, 2_000)),
    durationMs: positive('durationMs', orDefault(o.durationMs, 30_000)),
    workload: {
      ratePerSec: positive('workload.ratePerSec', orDefault(o.workload?.ratePerSec, 100)),
      keys: positiveInt('workload.keys', orDefault(o.workload?.keys, 24)),
      count: o.workload?.count === undefined ? undefined : positiveInt('workload.count', o.workload.count),
    },
    faults: o.faults,
    livenessMs: positive('livenessMs', orDefault(o.livenessMs, 60_000)),
    lateAfterMs: positive('lateAfterMs', orDefault(o.lateAfterMs, 1_000)),
    recoveryBoundMs: o.recoveryBoundMs === undefined ? undefined : positive('recoveryBoundMs', o.recoveryBoundMs),
  };
}

/** `v`, or `fallback` when it was left out: a `null` is a value, refused as any other bad one. */
function orDefault<T>(v: T | undefined, fallback: T): T {
  return v === undefined ? fallback : v;
}

/** A pipeline module's fields, each refused by its own name. */
function checkPipelineModule(p: Extract<ScenarioOptions['pipeline'], object>): void {
  const at = 'scenario.pipeline';
  if (typeof p.module !== 'string' || p.module.length === 0) throw new ConfigError(`${at}.module`, `must be a non-empty path or file: URL, got ${describeValue(p.module)}`);
  const observe = p.observe as unknown;
  if (typeof observe !== 'object' || observe === null) throw new ConfigError(`${at}.observe`, `must be an object { stage, seqs(context) }, got ${describeValue(observe)}`);
  if (typeof p.observe.stage !== 'string' || p.observe.stage.length === 0) throw new ConfigError(`${at}.observe.stage`, `must be the name of the stage to observe, got ${describeValue(p.observe.stage)}`);
  if (typeof p.observe.seqs !== 'function') throw new ConfigError(`${at}.observe.seqs`, `must be a function (context) => the input seqs it reflects, got ${describeValue(p.observe.seqs)}`);
  if (p.observe.arrivals !== undefined && typeof p.observe.arrivals !== 'string') throw new ConfigError(`${at}.observe.arrivals`, `must be a stage name, got ${describeValue(p.observe.arrivals)}`);
  const rec = p as unknown as Record<string, unknown>;
  for (const field of ['api', 'exactlyOnce', 'ordered']) {
    if (rec[field] !== undefined && typeof rec[field] !== 'boolean') throw new ConfigError(`${at}.${field}`, `must be true or false, got ${JSON.stringify(rec[field])}`);
  }
  if (rec.input !== undefined && typeof rec.input !== 'function') throw new ConfigError(`${at}.input`, `must be a function (key, seq) => input, got ${typeof rec.input}`);
  const seqOf = (p.observe as unknown as Record<string, unknown>).seqOf;
  if (seqOf !== undefined && typeof seqOf !== 'function') throw new ConfigError(`${at}.observe.seqOf`, `must be a function (payload) => seq, got ${typeof seqOf}`);
}

/** The fields each fault kind cannot do without (a run would not know what to do). */
const REQUIRED: Partial<Record<Fault['kind'], readonly string[]>> = {
  'kill-node': ['node'],
  'pause-node': ['node', 'forMs'],
  'stop-node': ['node'],
  'kill-redis': ['downMs'],
  'stall-redis': ['forMs'],
  'slow-redis': ['latencyMs', 'forMs'],
  network: ['target', 'forMs'],
  api: ['mode', 'forMs'],
};

const FAULT_KINDS = new Set<Fault['kind']>(['kill-node', 'pause-node', 'stop-node', 'rolling-restart', 'kill-nats-server', 'kill-nats-leader', 'restart-nats-all', 'kill-redis', 'stall-redis', 'slow-redis', 'network', 'api']);

/** The scenario's run uses the loopback API (the payments pipeline, or a module that asks for it). */
export function usesApi(scenario: Scenario): boolean {
  return scenario.pipeline === 'payments' || (typeof scenario.pipeline === 'object' && scenario.pipeline.api === true);
}

/**
 * The scenario's fault schedule for `seed`, in time order: the same seed, the same schedule. A step
 * the run could not carry out throws a `ConfigError` naming it, before anything is started.
 */
export function scheduleOf(scenario: Scenario, seed: number, durationMs = scenario?.durationMs): ScheduledFault[] {
  if (scenario?.kind !== 'warden.scenario') throw new ConfigError('scenario', `must be made by defineScenario(), got ${describeValue(scenario)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ConfigError('seed', `must be an integer >= 0, got ${describeValue(seed)}`);
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs <= 0) throw new ConfigError('durationMs', `must be a finite number of ms > 0, got ${describeValue(durationMs)}`);
  const steps = scenario.faults({ rng: rngOf(seed), durationMs, nodes: scenario.nodes, natsServers: scenario.natsServers });
  if (!Array.isArray(steps)) throw new ConfigError('scenario.faults', `must return an array of { atMs, fault }, got ${typeof steps}`);
  steps.forEach((step, i) => {
    const where = `scenario.faults()[${i}]`;
    if (!Number.isFinite(step?.atMs) || step.atMs < 0) throw new ConfigError(`${where}.atMs`, `must be a finite number >= 0, got ${String(step?.atMs)}`);
    const f = step.fault as Fault | undefined;
    if (!f || !FAULT_KINDS.has(f.kind)) throw new ConfigError(`${where}.fault.kind`, `must be one of ${[...FAULT_KINDS].join(', ')}, got ${JSON.stringify(f?.kind)}`);
    for (const field of REQUIRED[f.kind] ?? []) {
      if ((f as Record<string, unknown>)[field] === undefined) throw new ConfigError(`${where}.fault.${field}`, `is required for a ${f.kind} fault`);
    }
    const durations = Object.entries(f).filter(([k]) => k.endsWith('Ms'));
    for (const [k, v] of durations) if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`${where}.fault.${k}`, `must be a finite number >= 0, got ${String(v)}`);
    if ('node' in f && (!Number.isInteger(f.node) || f.node < 0 || f.node >= scenario.nodes)) throw new ConfigError(`${where}.fault.node`, `must be an integer in 0..${scenario.nodes - 1}, got ${String(f.node)}`);
    if (f.kind === 'kill-nats-leader' && scenario.natsServers !== 3) throw new ConfigError(`${where}.fault`, 'kill-nats-leader needs natsServers: 3');
    if (f.kind === 'kill-nats-server' && f.server !== undefined && (!Number.isInteger(f.server) || f.server < 0 || f.server >= scenario.natsServers)) {
      throw new ConfigError(`${where}.fault.server`, `must be an integer in 0..${scenario.natsServers - 1}, got ${String(f.server)}`);
    }
    if (f.kind === 'api' && !usesApi(scenario)) throw new ConfigError(`${where}.fault`, "an api fault needs pipeline 'payments' or a pipeline module with api: true");
    if (f.kind === 'api' && !['slow', 'flaky', 'down'].includes(f.mode)) throw new ConfigError(`${where}.fault.mode`, `must be slow, flaky or down, got ${JSON.stringify(f.mode)}`);
    if (f.kind === 'network' && f.target !== 'nats' && f.target !== 'redis') throw new ConfigError(`${where}.fault.target`, `must be nats or redis, got ${JSON.stringify(f.target)}`);
    if (f.kind === 'network') {
      for (const flag of ['reset', 'blackhole'] as const) if (f[flag] !== undefined && typeof f[flag] !== 'boolean') throw new ConfigError(`${where}.fault.${flag}`, `must be true or false, got ${describeValue(f[flag])}`);
    }
    if (f.kind === 'api' && f.rate !== undefined && (typeof f.rate !== 'number' || !(f.rate >= 0 && f.rate <= 1))) throw new ConfigError(`${where}.fault.rate`, `must be a number in 0..1, got ${describeValue(f.rate)}`);
  });
  return [...steps].sort((a, b) => a.atMs - b.atMs);
}
