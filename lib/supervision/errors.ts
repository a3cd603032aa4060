/**
 * The errors a supervisor reports. A call it refuses (`startChild`, `terminateChild`,
 * `restartChild`, `deleteChild`, `child`, `supervisorOf`, and the same calls through a
 * `SupervisorRef`) is a `SupervisorRefusedError` whose `code` says why, as OTP's `{error, Reason}`
 * does; a child that failed to start, and a supervisor whose start was cut short or that gave up,
 * are `STOPPED`.
 */
import { describeError, WardenError, type WardenErrorCode } from '../core/errors.js';
import type { ChildRecord } from './child.js';

/**
 * Why a supervisor refused a call (OTP's reasons, spelled out):
 * - `not found`: no child with that id (`CHILD_NOT_FOUND`);
 * - `not a supervisor`: `supervisorOf(id)` on a worker or an actor group (`CHILD_NOT_FOUND`);
 * - `already started` / `already present`: `startChild` with the id of a running / a stopped
 *   child (`CHILD_EXISTS`);
 * - `running`: `restartChild` or `deleteChild` of a running child (`CHILD_RUNNING`);
 * - `restarting`: `restartChild` or `deleteChild` of a child waiting for its restart (`CHILD_RESTARTING`);
 * - `not running`: the supervisor is stopped, failed, not started yet, or (for a nested one) between
 *   incarnations (`SUPERVISOR_NOT_RUNNING`).
 */
export type RefusalReason = 'not found' | 'not a supervisor' | 'already started' | 'already present' | 'running' | 'restarting' | 'not running';

const CODES: Readonly<Record<RefusalReason, WardenErrorCode>> = {
  'not found': 'CHILD_NOT_FOUND',
  'not a supervisor': 'CHILD_NOT_FOUND',
  'already started': 'CHILD_EXISTS',
  'already present': 'CHILD_EXISTS',
  running: 'CHILD_RUNNING',
  restarting: 'CHILD_RESTARTING',
  'not running': 'SUPERVISOR_NOT_RUNNING',
};

/**
 * A call a supervisor refused; `code` is the one to switch on, `reason` the OTP word for it, and
 * `details` name the supervisor (`path`), the child (`id`) and, when not running, its `state`.
 *
 * @example
 * try { await sup.restartChild('poller') } catch (err) {
 *   if (err instanceof WardenError && err.code === 'CHILD_RUNNING') return; // already up
 *   throw err;
 * }
 */
export class SupervisorRefusedError extends WardenError {
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string, details: { path: string; id?: string; state?: string; op?: string }) {
    super(CODES[reason], message, { details: { ...details, reason } });
    this.reason = reason;
  }
}

/** A call on a child refused: `child "a" running (supervisor root)`. */
export function adminError(path: string, id: string, reason: Exclude<RefusalReason, 'not running'>): SupervisorRefusedError {
  return new SupervisorRefusedError(reason, `child ${JSON.stringify(id)} ${reason} (supervisor ${path})`, { id, path });
}

/** `startChild` with an id that exists: 'already started' when it runs, else 'already present' (OTP). */
export function existsError(path: string, rec: ChildRecord): SupervisorRefusedError {
  return adminError(path, rec.spec.id, rec.current !== undefined ? 'already started' : 'already present');
}

/** A call on a supervisor that is not running (stopped, failed, not started, or a nested one between incarnations). */
export function notRunningError(path: string, state: string, op: string, id?: string): SupervisorRefusedError {
  return new SupervisorRefusedError('not running', `supervisor ${path} is not running (${state}): ${op} refused`, { path, state, op, ...(id === undefined ? {} : { id }) });
}

/** A child that failed to start, naming it; the child's error is the cause. */
export function childError(path: string, id: string, what: string, cause: unknown): WardenError {
  return new WardenError('STOPPED', `supervisor ${path} ${what} child ${id}: ${describeError(cause)}`, {
    cause,
    details: { reason: 'start-failed', path, child: id },
  });
}

/** `start()` cut short because the supervisor was stopped meanwhile. */
export function startCutShortError(path: string, state: string): WardenError {
  return new WardenError('STOPPED', `supervisor ${path} is not running (${state}): start refused`, { details: { reason: 'not-running', path, state } });
}
