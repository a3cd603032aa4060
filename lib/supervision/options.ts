/**
 * `resolveSupervisorOptions` / `resolveChildSpec`: the supervisor's options and child specs,
 * defaults applied and validated once. Bad values throw a `ConfigError` naming the field
 * (`intensity`, `children[2].shutdown`, `children[0].supervisor.periodMs`...). A nested
 * supervisor's options are resolved with its spec, once; an `onFatal` among them is refused
 * (`children[0].supervisor.onFatal`): as in OTP, only the root's exit reaches the application.
 */
import type { Backoff } from '../core/backoff.js';
import { SystemClock, type Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { resolveBackoff, restartSchedule, type ResolvedBackoff } from './backoff.js';
import type { BackoffOptions, ChildContext, ChildHandle, ChildSpec, RestartType, Shutdown, Strategy, SupervisorOptions } from './types.js';

const STRATEGIES: readonly Strategy[] = ['one-for-one', 'one-for-all', 'rest-for-one'];
const RESTART_TYPES: readonly RestartType[] = ['permanent', 'transient', 'temporary'];

/** Default graceful-stop time of a worker (OTP: 5000). */
export const DEFAULT_WORKER_SHUTDOWN_MS = 5_000;

interface ResolvedChildBase {
  id: string;
  restart: RestartType;
  shutdown: Shutdown;
  /** The backoff options, resolved (the supervisor's merged under the child's own). */
  backoff: ResolvedBackoff;
  /** The restart delays of `backoff`, built once when the spec is resolved. */
  schedule: Backoff;
}

/** A child spec with its defaults applied; a nested supervisor's options are resolved with it, once. */
export type ResolvedChildSpec = ResolvedChildBase &
  (
    | { kind: 'worker' | 'actors'; start: (ctx: ChildContext) => Promise<ChildHandle> }
    | { kind: 'supervisor'; supervisor: ResolvedSupervisorOptions }
  );

/** `SupervisorOptions` with defaults applied and validated. */
export interface ResolvedSupervisorOptions {
  id: string;
  strategy: Strategy;
  intensity: number;
  periodMs: number;
  children: ResolvedChildSpec[];
  /** The supervisor's `backoff` as given: children's own backoff is merged over it field by field. */
  backoff: BackoffOptions;
  clock: Clock;
  logger: Logger;
  random: () => number;
  onFatal: ((error: Error) => void) | undefined;
}

/** What a nested supervisor inherits from its parent unless its options say otherwise. */
export interface InheritedOptions {
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

/**
 * Applies the defaults of `SupervisorOptions` (strategy one-for-one, intensity 1 per 5000 ms,
 * no children) and validates every field, nested supervisors' options included.
 *
 * @example
 * const resolved = resolveSupervisorOptions({ strategy: 'one-for-all', intensity: 3 });
 */
export function resolveSupervisorOptions(options: SupervisorOptions = {}, inherited: InheritedOptions = {}, prefix = ''): ResolvedSupervisorOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError(prefix || 'options', 'must be an object');
  const id = options.id ?? 'root';
  checkId(`${prefix}id`, id);
  const strategy = options.strategy ?? 'one-for-one';
  if (!STRATEGIES.includes(strategy)) throw new ConfigError(`${prefix}strategy`, `must be one of ${STRATEGIES.join(', ')} (got ${String(strategy)})`);
  const intensity = options.intensity ?? 1;
  if (!Number.isInteger(intensity) || intensity < 0) throw new ConfigError(`${prefix}intensity`, `must be an integer >= 0 (got ${String(intensity)})`);
  const periodMs = options.periodMs ?? 5_000;
  if (typeof periodMs !== 'number' || !Number.isFinite(periodMs) || periodMs <= 0) {
    throw new ConfigError(`${prefix}periodMs`, `must be a finite number > 0 (got ${String(periodMs)})`);
  }
  const backoff = options.backoff ?? {};
  resolveBackoff(backoff, {}, `${prefix}backoff`);
  const clock = options.clock ?? inherited.clock ?? new SystemClock();
  if (typeof clock?.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw new ConfigError(`${prefix}clock`, 'must implement now, setTimeout and clearTimeout');
  }
  const logger = options.logger ?? inherited.logger ?? silentLogger;
  const random = options.random ?? inherited.random ?? Math.random;
  if (typeof random !== 'function') throw new ConfigError(`${prefix}random`, 'must be a function');
  if (options.onFatal !== undefined && typeof options.onFatal !== 'function') throw new ConfigError(`${prefix}onFatal`, 'must be a function');
  const specs = options.children ?? [];
  if (!Array.isArray(specs)) throw new ConfigError(`${prefix}children`, 'must be an array');
  const children: ResolvedChildSpec[] = [];
  const seen = new Set<string>();
  specs.forEach((spec, i) => {
    const child = resolveChildSpec(spec, backoff, { clock, logger, random }, `${prefix}children[${i}]`);
    if (seen.has(child.id)) throw new ConfigError(`${prefix}children[${i}].id`, `duplicates the id of another child (${child.id})`, { details: { id: child.id } });
    seen.add(child.id);
    children.push(child);
  });
  return { id, strategy, intensity, periodMs, children, backoff, clock, logger, random, onFatal: options.onFatal };
}

/**
 * Applies the defaults of a child spec (restart permanent, shutdown 5000 ms for workers and
 * 'infinity' for supervisors, the supervisor's backoff) and validates it.
 */
export function resolveChildSpec(spec: ChildSpec, supervisorBackoff: BackoffOptions, inherited: InheritedOptions, field: string): ResolvedChildSpec {
  if (typeof spec !== 'object' || spec === null) throw new ConfigError(field, 'must be a child spec object');
  checkId(`${field}.id`, spec.id);
  const restart = spec.restart ?? 'permanent';
  if (!RESTART_TYPES.includes(restart)) throw new ConfigError(`${field}.restart`, `must be one of ${RESTART_TYPES.join(', ')} (got ${String(restart)})`);
  const backoff = resolveBackoff(spec.backoff, supervisorBackoff, `${field}.backoff`);
  const schedule = restartSchedule(backoff);
  const kind = spec.kind ?? 'worker';
  if (kind === 'supervisor') {
    const nested = (spec as { supervisor?: unknown }).supervisor as SupervisorOptions | undefined;
    if (typeof nested !== 'object' || nested === null) throw new ConfigError(`${field}.supervisor`, 'must be the nested supervisor options');
    if (nested.onFatal !== undefined) {
      throw new ConfigError(
        `${field}.supervisor.onFatal`,
        "is not called on a nested supervisor: only the root's onFatal is (one that gives up is a crashed child of its parent; watch its 'escalated' event with on())",
      );
    }
    const supervisor = resolveSupervisorOptions({ ...nested, id: nested.id ?? spec.id }, inherited, `${field}.supervisor.`);
    const shutdown = checkShutdown(`${field}.shutdown`, spec.shutdown ?? 'infinity');
    return { id: spec.id, restart, shutdown, backoff, schedule, kind, supervisor };
  }
  if (kind !== 'worker' && kind !== 'actors') throw new ConfigError(`${field}.kind`, `must be 'worker', 'supervisor' or 'actors' (got ${String(kind)})`);
  const start = (spec as { start?: unknown }).start;
  if (typeof start !== 'function') throw new ConfigError(`${field}.start`, 'must be a function returning a ChildHandle');
  const shutdown = checkShutdown(`${field}.shutdown`, spec.shutdown ?? DEFAULT_WORKER_SHUTDOWN_MS);
  return { id: spec.id, restart, shutdown, backoff, schedule, kind, start: start as (ctx: ChildContext) => Promise<ChildHandle> };
}

function checkId(field: string, id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.includes('/')) {
    throw new ConfigError(field, `must be a non-empty string without '/' (got ${JSON.stringify(id) ?? String(id)})`);
  }
}

function checkShutdown(field: string, shutdown: unknown): Shutdown {
  if (shutdown === 'brutal-kill' || shutdown === 'infinity') return shutdown;
  if (typeof shutdown === 'number' && Number.isFinite(shutdown) && shutdown >= 0) return shutdown;
  throw new ConfigError(field, `must be a number of ms >= 0, 'brutal-kill' or 'infinity' (got ${JSON.stringify(shutdown) ?? String(shutdown)})`);
}
