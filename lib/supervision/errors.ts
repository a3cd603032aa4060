/**
 * The errors a supervisor reports. They reuse the codes of `WardenError`: refused calls on
 * children are `ConfigError`s naming the `id`; a child that failed to start, and a supervisor
 * that is not running or gave up, are `STOPPED`.
 */
import { ConfigError, describeError, WardenError } from '../core/errors.js';
import type { ChildRecord } from './child.js';

/** Why `startChild`, `terminateChild`, `restartChild` or `deleteChild` refused. */
export type AdminRefusal = 'not found' | 'running' | 'restarting' | 'already started' | 'already present';

/** A call on a child refused: `id "a" running (supervisor root)`. */
export function adminError(path: string, id: string, reason: AdminRefusal): ConfigError {
  return new ConfigError('id', `${JSON.stringify(id)} ${reason} (supervisor ${path})`, { details: { id, path, reason } });
}

/** `startChild` with an id that exists: 'already started' when it runs, else 'already present' (OTP). */
export function existsError(path: string, rec: ChildRecord): ConfigError {
  return adminError(path, rec.spec.id, rec.current !== undefined ? 'already started' : 'already present');
}

/** A child that failed to start, naming it; the child's error is the cause. */
export function childError(path: string, id: string, what: string, cause: unknown): WardenError {
  return new WardenError('STOPPED', `supervisor ${path} ${what} child ${id}: ${describeError(cause)}`, {
    cause,
    details: { reason: 'start-failed', path, child: id },
  });
}

/** A call on a supervisor that is not running. */
export function notRunningError(path: string, state: string, op: string): WardenError {
  return new WardenError('STOPPED', `supervisor ${path} is not running (${state}): ${op} refused`, { details: { reason: 'not-running', path, state } });
}
