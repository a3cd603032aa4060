/**
 * `supervise(fn)`: puts an existing async service or loop under supervision in one line. The
 * function runs as the one worker child of a new one-for-one supervisor: its promise resolving
 * is a normal exit, rejecting a crash; stopping the child aborts `ctx.signal` and awaits it.
 */
import { withBackoffDefaults } from './backoff.js';
import type { Clock } from '../core/clock.js';
import { ConfigError, describeValue, WardenError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createSupervisor } from './supervisor.js';
import type { BackoffOptions, ChildContext, ChildHandle, RestartType, Shutdown, Supervisor, SupervisorOptions } from './types.js';

/** Options of `supervise`. */
export interface SuperviseOptions {
  /** Id of the supervised child (the supervisor is `root`). @default 'service' */
  id?: string;
  /** `permanent` restarts `fn` even after it returns; `transient` only after it throws. @default 'permanent' */
  restart?: RestartType;
  /** @default { minBackoffMs: 100, maxBackoffMs: 30_000 } (the other fields as in `BackoffOptions`) */
  backoff?: BackoffOptions;
  /** @default 5 */
  intensity?: number;
  /** @default 60_000 */
  periodMs?: number;
  /** How long `stop()` waits for `fn` to return after the abort. @default 5_000 */
  shutdown?: Shutdown;
  /** @default new SystemClock() */
  clock?: Clock;
  /** @default silent */
  logger?: Logger;
  /** Called when restarts exceed `intensity` within `periodMs` and supervision gives up. */
  onFatal?: (error: Error) => void;
}

/**
 * Runs `fn` under a started supervisor and returns it. `fn` must end when `ctx.signal` aborts.
 *
 * @example
 * const sup = await supervise(async ({ signal }) => {
 *   while (!signal.aborted) await pollOnce(signal); // a throw here is a crash: restarted with backoff
 * }, { id: 'poller', onFatal: () => process.exit(1) });
 * // later
 * await sup.stop();
 */
export async function supervise(fn: (ctx: ChildContext) => Promise<void>, options: SuperviseOptions = {}): Promise<Supervisor> {
  if (typeof fn !== 'function') throw new ConfigError('fn', `must be the async function to supervise, got ${describeValue(fn)}`);
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', `must be an object, got ${describeValue(options)}`);
  const config: SupervisorOptions = {
    strategy: 'one-for-one',
    intensity: options.intensity ?? 5,
    periodMs: options.periodMs ?? 60_000,
    backoff: withBackoffDefaults(options.backoff, { minBackoffMs: 100, maxBackoffMs: 30_000 }),
    children: [
      {
        id: options.id ?? 'service',
        restart: options.restart ?? 'permanent',
        ...(options.shutdown !== undefined ? { shutdown: options.shutdown } : {}),
        start: (ctx) => Promise.resolve(runService(fn, ctx)),
      },
    ],
  };
  if (options.clock) config.clock = options.clock;
  if (options.logger) config.logger = options.logger;
  if (options.onFatal) config.onFatal = options.onFatal;
  const supervisor = createSupervisor(config);
  await supervisor.start();
  return supervisor;
}

/** One run of `fn`, with a signal that both the supervisor and the handle's `stop()` abort. */
function runService(fn: (ctx: ChildContext) => Promise<void>, ctx: ChildContext): ChildHandle {
  const controller = new AbortController();
  const forward = (): void => controller.abort(ctx.signal.reason);
  if (ctx.signal.aborted) forward();
  else ctx.signal.addEventListener('abort', forward, { once: true });
  let running: Promise<void>;
  try {
    running = Promise.resolve(fn({ ...ctx, signal: controller.signal }));
  } catch (err) {
    running = Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
  running.catch(() => undefined); // reported through `done`
  return {
    done: running,
    async stop() {
      if (!controller.signal.aborted) controller.abort(new WardenError('STOPPED', `${ctx.path} stopped`));
      await running.catch(() => undefined);
    },
  };
}
