/**
 * One child of a supervisor: its record, starting an incarnation (the `ChildHandle` its `start`
 * returns), watching its `done`, and shutting it down by its `shutdown` (graceful stop with a
 * timeout on the clock, then kill, or abandon).
 *
 * Invariants:
 *  1. Every `done` and every `stop()` promise gets a handler: a child's failure never surfaces as
 *     an unhandled rejection.
 *  2. An incarnation reports its exit at most once, and never after the supervisor began to stop
 *     it (`ended`).
 *  3. A start that is still pending when its signal is aborted rejects at once; the handle it
 *     yields later is killed (or stopped) and dropped.
 *  4. A shutdown leaves no timer on the clock.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError, describeError, WardenError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { adminError } from './errors.js';
import type { ResolvedChildSpec } from './options.js';
import type { ChildContext, ChildCounts, ChildHandle, ChildInfo, ChildStatus, Shutdown, TreeNode } from './types.js';

/** A pending (group) restart: its members start in order when the timer fires. */
export interface RestartPlan {
  /** The child whose failure scheduled it (its backoff set the delay). */
  trigger: string;
  members: ChildRecord[];
  /** Undefined when fired or cancelled. */
  timer: TimerHandle;
}

/** One started incarnation of a child. */
export interface Incarnation {
  handle: ChildHandle;
  controller: AbortController;
  startedAt: number;
  /** Set once the incarnation exited or its supervisor began to stop it. */
  ended: boolean;
  /**
   * Set while `shutdownIncarnation` waits for its graceful stop: ends that wait (its timer cleared,
   * no second kill) when the supervisor is killed and kills the incarnation itself.
   */
  cutShutdown?: () => void;
}

/** How a child ended by itself. */
export type ChildExit = { kind: 'normal' } | { kind: 'crash'; error: unknown };

/** What a supervisor keeps per child spec. */
export interface ChildRecord {
  spec: ResolvedChildSpec;
  path: string;
  status: ChildStatus;
  current: Incarnation | undefined;
  /** Aborts the start in flight, if any. */
  starting: AbortController | undefined;
  /** Start attempts so far; the next start's `ctx.attempt`. */
  startAttempts: number;
  /** Restarts scheduled since the supervisor started (`tree().restarts`). */
  restarts: number;
  /** Consecutive restarts, for the backoff; reset after `resetBackoffAfterMs` of uptime. */
  consecutive: number;
  plan: RestartPlan | undefined;
  /** Stopped through `terminateChild`: stays down, group restarts included, until started again. */
  held: boolean;
}

/** A fresh record (status 'terminated' until started). */
export function newChildRecord(spec: ResolvedChildSpec, supervisorPath: string): ChildRecord {
  return { spec, path: `${supervisorPath}/${spec.id}`, status: 'terminated', current: undefined, starting: undefined, startAttempts: 0, restarts: 0, consecutive: 0, plan: undefined, held: false };
}

/**
 * Starts one incarnation of `rec` with `start` and watches its `done`: `onExit` is called once
 * when it ends by itself (invariant 2). Rejects when `start` throws, returns something that is
 * not a `ChildHandle`, or its signal is aborted first (invariant 3).
 */
export async function startIncarnation(
  rec: ChildRecord,
  start: (ctx: ChildContext) => Promise<ChildHandle>,
  env: { clock: Clock; logger: Logger },
  onExit: (inc: Incarnation, exit: ChildExit) => void,
): Promise<Incarnation> {
  const controller = new AbortController();
  rec.starting = controller;
  const ctx: ChildContext = {
    id: rec.spec.id,
    path: rec.path,
    signal: controller.signal,
    attempt: rec.startAttempts++,
    clock: env.clock,
    logger: env.logger.child({ child: rec.path }),
  };
  try {
    const handle = await startAbortable(start, ctx, controller.signal, env.logger);
    try {
      checkHandle(rec, handle);
    } catch (err) {
      // The child did start: end what can be ended of it before reporting the bad handle.
      const h = handle as Partial<ChildHandle> | null;
      try {
        if (typeof h?.kill === 'function') h.kill();
        else if (typeof h?.stop === 'function') void Promise.resolve(h.stop()).catch(() => undefined);
      } catch {
        // nothing more can be done with it
      }
      throw err;
    }
    const inc: Incarnation = { handle, controller, startedAt: env.clock.now(), ended: false };
    watch(inc, onExit);
    return inc;
  } finally {
    if (rec.starting === controller) rec.starting = undefined;
  }
}

function startAbortable(start: (ctx: ChildContext) => Promise<ChildHandle>, ctx: ChildContext, signal: AbortSignal, logger: Logger): Promise<ChildHandle> {
  let started: Promise<ChildHandle>;
  try {
    started = Promise.resolve(start(ctx));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(describeError(err)));
  }
  return new Promise<ChildHandle>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason instanceof Error ? signal.reason : new WardenError('STOPPED', `start of ${ctx.path} aborted`));
      started.then((late) => discard(late, logger), () => undefined);
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    started.then(
      (handle) => {
        signal.removeEventListener('abort', onAbort);
        resolve(handle);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(describeError(err)));
      },
    );
  });
}

function checkHandle(rec: ChildRecord, handle: unknown): asserts handle is ChildHandle {
  const h = handle as Partial<ChildHandle> | null;
  if (typeof h !== 'object' || h === null || typeof h.stop !== 'function') {
    throw new ConfigError('start', `of ${rec.path} must resolve to a ChildHandle with a stop() method`);
  }
  if (h.done !== undefined && typeof (h.done as { then?: unknown }).then !== 'function') {
    throw new ConfigError('start', `of ${rec.path} returned a handle whose done is not a promise`);
  }
}

/** A handle that arrived after its start was aborted: killed, or stopped in the background. */
function discard(handle: ChildHandle, logger: Logger): void {
  if (typeof handle?.stop !== 'function') return;
  if (handle.done) Promise.resolve(handle.done).catch(() => undefined);
  if (typeof handle.kill === 'function') {
    safeKill(handle, logger);
    return;
  }
  Promise.resolve()
    .then(() => handle.stop())
    .catch((err: unknown) => logger.warn({ err: err }, 'late child stop failed'));
}

function watch(inc: Incarnation, onExit: (inc: Incarnation, exit: ChildExit) => void): void {
  const { done } = inc.handle;
  if (!done) return;
  const report = (exit: ChildExit): void => {
    if (inc.ended) return;
    inc.ended = true;
    onExit(inc, exit);
  };
  Promise.resolve(done).then(
    () => report({ kind: 'normal' }),
    (error: unknown) => report({ kind: 'crash', error }),
  );
}

/**
 * Stops an incarnation by `shutdown`: aborts its signal, then
 * - a number: `stop()`, and `kill()` (or abandon) if it has not settled after that many ms;
 * - `'infinity'`: `stop()`, waited for without limit;
 * - `'brutal-kill'`: `kill()` at once, or abandon.
 * A `stop()` that rejects still counts as stopped (the error is logged).
 */
export async function shutdownIncarnation(inc: Incarnation, shutdown: Shutdown, clock: Clock, logger: Logger): Promise<'graceful' | 'killed' | 'abandoned'> {
  inc.ended = true;
  if (!inc.controller.signal.aborted) inc.controller.abort(new WardenError('STOPPED', 'stopped by its supervisor'));
  if (shutdown === 'brutal-kill') return killOrAbandon(inc.handle, logger);
  const stopped = Promise.resolve()
    .then(() => inc.handle.stop())
    .catch((err: unknown) => logger.warn({ err: err }, 'child stop() failed'));
  if (shutdown === 'infinity') {
    await stopped;
    return 'graceful';
  }
  let timer: TimerHandle;
  const timedOut = new Promise<'timeout' | 'cut'>((resolve) => {
    timer = clock.setTimeout(() => resolve('timeout'), shutdown);
    inc.cutShutdown = () => resolve('cut');
  });
  const winner = await Promise.race([stopped.then(() => 'stopped' as const), timedOut]);
  clock.clearTimeout(timer);
  delete inc.cutShutdown;
  if (winner === 'cut') return 'killed'; // killed with its supervisor, which reported it
  return winner === 'stopped' ? 'graceful' : killOrAbandon(inc.handle, logger);
}

/** Kills `handle` (its `kill()`), or abandons it when it has none. */
export function killOrAbandon(handle: ChildHandle, logger: Logger): 'killed' | 'abandoned' {
  if (typeof handle.kill !== 'function') return 'abandoned';
  safeKill(handle, logger);
  return 'killed';
}

function safeKill(handle: ChildHandle, logger: Logger): void {
  try {
    handle.kill?.();
  } catch (err) {
    logger.warn({ err: err }, 'child kill() failed');
  }
}

/** The `tree()` node of a child; a running handle with `describe()` lends its nodes as children. */
export function childNode(rec: ChildRecord, now: number): TreeNode {
  const node: TreeNode = {
    id: rec.spec.id,
    path: rec.path,
    kind: rec.spec.kind,
    status: rec.status,
    restarts: rec.restarts,
    uptimeMs: rec.current ? Math.max(0, now - rec.current.startedAt) : 0,
  };
  const handle = rec.current?.handle;
  if (handle && typeof handle.describe === 'function') {
    try {
      node.children = handle.describe();
    } catch (err) {
      node.info = { describeError: describeError(err) };
    }
  }
  if (handle && typeof handle.info === 'function') {
    try {
      node.info = { ...node.info, ...handle.info() };
    } catch (err) {
      node.info = { ...node.info, infoError: describeError(err) };
    }
  }
  return node;
}

/** One row of `whichChildren()`. */
export function childInfo(rec: ChildRecord): ChildInfo {
  return { id: rec.spec.id, kind: rec.spec.kind, status: rec.status, restart: rec.spec.restart };
}

/** OTP's count_children: actor groups count as workers; `active` are the running ones. */
export function countChildren(records: readonly ChildRecord[]): ChildCounts {
  const supervisors = records.filter((rec) => rec.spec.kind === 'supervisor').length;
  const active = records.filter((rec) => rec.current !== undefined).length;
  return { specs: records.length, active, supervisors, workers: records.length - supervisors };
}

/**
 * The children a supervisor keeps, in start order (OTP's child list): lookups by id, and the
 * refusals of the calls that name a child (`CHILD_NOT_FOUND`, `CHILD_RUNNING`, `CHILD_RESTARTING`).
 */
export class ChildTable {
  private readonly records: ChildRecord[];

  constructor(
    specs: readonly ResolvedChildSpec[],
    private readonly path: string,
  ) {
    this.records = specs.map((spec) => newChildRecord(spec, path));
  }

  /** Every record, in start order. */
  get all(): readonly ChildRecord[] {
    return this.records;
  }

  add(rec: ChildRecord): void {
    this.records.push(rec);
  }

  find(id: string): ChildRecord | undefined {
    return this.records.find((rec) => rec.spec.id === id);
  }

  /** The record of `id`, or `CHILD_NOT_FOUND`. */
  get(id: string): ChildRecord {
    const rec = this.find(id);
    if (!rec) throw adminError(this.path, id, 'not found');
    return rec;
  }

  /** `rec` if it is neither running (`CHILD_RUNNING`) nor waiting for a restart (`CHILD_RESTARTING`). */
  terminated(rec: ChildRecord): ChildRecord {
    if (rec.current !== undefined) throw adminError(this.path, rec.spec.id, 'running');
    if (rec.status === 'restarting') throw adminError(this.path, rec.spec.id, 'restarting');
    return rec;
  }

  delete(rec: ChildRecord): void {
    const i = this.records.indexOf(rec);
    if (i >= 0) this.records.splice(i, 1);
  }
}

/** The `tree()` node of a supervisor and its children. */
export function supervisorNode(o: {
  id: string;
  path: string;
  state: string;
  startedAt: number;
  now: number;
  records: readonly ChildRecord[];
  opts: { strategy: string; intensity: number; periodMs: number };
  restartsInPeriod: number;
}): TreeNode {
  return {
    id: o.id,
    path: o.path,
    kind: 'supervisor',
    status: o.state === 'running' || o.state === 'failed' ? o.state : 'stopped',
    restarts: 0,
    uptimeMs: o.state === 'running' ? Math.max(0, o.now - o.startedAt) : 0,
    children: o.records.map((rec) => childNode(rec, o.now)),
    info: { strategy: o.opts.strategy, intensity: o.opts.intensity, periodMs: o.opts.periodMs, restartsInPeriod: o.restartsInPeriod },
  };
}
