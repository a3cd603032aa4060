/**
 * Supervision: Erlang/OTP supervisors (strategies, restart types, intensity, shutdown, dynamic
 * children, nested trees) with Akka backoff, and `supervise` for a single async service.
 */
export { createSupervisor } from './supervisor.js';
export { supervise, type SuperviseOptions } from './supervise.js';
export { backoffDelay, withBackoffDefaults, resolveBackoff, type ResolvedBackoff } from './backoff.js';
export { resolveSupervisorOptions, type ResolvedSupervisorOptions, type ResolvedChildSpec } from './options.js';
export { SupervisorRefusedError, type RefusalReason } from './errors.js';
export type {
  Strategy,
  RestartType,
  Shutdown,
  BackoffOptions,
  ChildHandle,
  ChildContext,
  WorkerChildSpec,
  SupervisorChildSpec,
  ActorGroupChildSpec,
  ChildSpec,
  SupervisorOptions,
  ChildStatus,
  ChildInfo,
  ChildCounts,
  TreeNode,
  SupervisionEvent,
  Supervisor,
  SupervisorAdmin,
  ChildRef,
  WorkerRef,
  SupervisorRef,
} from './types.js';
