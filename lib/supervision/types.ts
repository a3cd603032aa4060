/**
 * The supervision vocabulary: Erlang/OTP's supervisor semantics (strategies, restart types,
 * intensity, shutdown) with Akka's backoff on top. See docs/supervision.md.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';

/** Which children restart when one of them terminates and must be restarted (OTP names). */
export type Strategy = 'one-for-one' | 'one-for-all' | 'rest-for-one';

/**
 * When a terminated child is restarted (OTP):
 * - `permanent`: always;
 * - `transient`: only after an abnormal exit (a crash), not after a normal one;
 * - `temporary`: never; its spec is deleted when it terminates.
 */
export type RestartType = 'permanent' | 'transient' | 'temporary';

/** How a child is stopped: a graceful-stop timeout in ms (then killed), or `'brutal-kill'` at once. */
export type Shutdown = number | 'brutal-kill' | 'infinity';

/** Akka-style exponential backoff between restarts of one child. */
export interface BackoffOptions {
  /** Delay before the first restart. @default 0 (OTP: restart at once) */
  minBackoffMs?: number;
  /** Upper bound of the delay. @default 30_000 */
  maxBackoffMs?: number;
  /** Jitter: the delay is multiplied by `1 + random() * randomFactor`. @default 0.2 */
  randomFactor?: number;
  /** A child that stayed up this long has its backoff reset to `minBackoffMs`. @default maxBackoffMs */
  resetBackoffAfterMs?: number;
}

/** What a started child gives its supervisor. */
export interface ChildHandle {
  /** Graceful stop; the supervisor waits up to the child's `shutdown` time. */
  stop(): Promise<void>;
  /** Abrupt stop: after the shutdown timeout, or at once for `'brutal-kill'`. Without it the child is abandoned. */
  kill?(): void;
  /**
   * Settles when the child ends by itself: resolves for a normal exit, rejects with the error
   * for a crash. A child without `done` only ends when stopped.
   */
  done?: Promise<void>;
  /** The child's own subtree, for `tree()` (nested supervisors, actor groups). */
  describe?(): TreeNode[];
  /** Details shown on the child's `tree()` node (a partition's position, lag...). */
  info?(): Record<string, unknown>;
}

/** What a child's `start` receives. */
export interface ChildContext {
  /** The child's id. */
  id: string;
  /** Path from the root supervisor: `root/stage-a/worker-1`. */
  path: string;
  /** Aborted when the supervisor stops this incarnation of the child. */
  signal: AbortSignal;
  /** Restart attempt: 0 for the first start. */
  attempt: number;
  clock: Clock;
  logger: Logger;
}

/** Fields every child spec has. */
interface ChildSpecBase {
  /** Unique among the supervisor's children. */
  id: string;
  /** @default 'permanent' */
  restart?: RestartType;
  /** @default 5_000 for workers, 'infinity' for supervisors */
  shutdown?: Shutdown;
  /** @default the supervisor's `backoff` */
  backoff?: BackoffOptions;
}

/** A plain worker: any async service or loop. */
export interface WorkerChildSpec extends ChildSpecBase {
  kind?: 'worker';
  start(ctx: ChildContext): Promise<ChildHandle>;
}

/** A nested supervisor. */
export interface SupervisorChildSpec extends ChildSpecBase {
  kind: 'supervisor';
  supervisor: SupervisorOptions;
}

/**
 * A keyed actor group (OTP's simple_one_for_one): instances spawned on demand per key, each
 * restored from its checkpoint. Built by `actorGroup(...)`; to the supervisor it is a child
 * whose handle supervises its own keyed instances and fails when their restarts exceed the
 * group's intensity.
 */
export interface ActorGroupChildSpec extends ChildSpecBase {
  kind: 'actors';
  start(ctx: ChildContext): Promise<ChildHandle>;
}

export type ChildSpec = WorkerChildSpec | SupervisorChildSpec | ActorGroupChildSpec;

/** Options of `createSupervisor`. */
export interface SupervisorOptions {
  /** Name of this supervisor in paths and events. @default 'root' */
  id?: string;
  /** @default 'one-for-one' */
  strategy?: Strategy;
  /** Restarts allowed within `periodMs`; one more and the supervisor gives up. @default 1 (OTP) */
  intensity?: number;
  /** @default 5_000 */
  periodMs?: number;
  /** Children, started in this order and stopped in reverse. @default [] */
  children?: ChildSpec[];
  /** Default backoff of the children. */
  backoff?: BackoffOptions;
  /** @default new SystemClock() (inherited by nested supervisors) */
  clock?: Clock;
  /** @default silent (inherited) */
  logger?: Logger;
  /** Source of jitter. @default Math.random */
  random?: () => number;
  /**
   * A root supervisor that gives up calls this (the CLI exits non-zero; an embedding host decides).
   * Only the root's is ever called: on a nested supervisor's options it is a `ConfigError`, since a
   * nested supervisor that gives up is a crashed child of its parent (watch it with `on`, event
   * `escalated`).
   */
  onFatal?: (error: Error) => void;
}

/** The state of a child as `whichChildren` reports it. */
export type ChildStatus = 'running' | 'restarting' | 'terminated';

/** One row of `whichChildren()`. */
export interface ChildInfo {
  id: string;
  kind: 'worker' | 'supervisor' | 'actors';
  status: ChildStatus;
  restart: RestartType;
}

/** `countChildren()` (OTP's count_children). */
export interface ChildCounts {
  specs: number;
  active: number;
  supervisors: number;
  workers: number;
}

/** A node of `tree()`. */
export interface TreeNode {
  id: string;
  path: string;
  kind: 'worker' | 'supervisor' | 'actors' | 'actor';
  status: ChildStatus | 'stopped' | 'failed';
  /** Restarts of this child since its supervisor started. */
  restarts: number;
  /** Time since the current incarnation started, ms (0 when not running). */
  uptimeMs: number;
  children?: TreeNode[];
  /** Free-form details (a partition's position, an actor's state value...). */
  info?: Record<string, unknown>;
}

/** Everything a supervision tree reports. `path` names the child (or the supervisor itself). */
export type SupervisionEvent =
  | { type: 'child-started'; path: string; id: string; attempt: number }
  | { type: 'child-exited'; path: string; id: string; reason: 'normal' }
  | { type: 'child-crashed'; path: string; id: string; error: string; errorChain: Array<{ name: string; message: string; code?: string }> }
  | { type: 'child-restarting'; path: string; id: string; attempt: number; delayMs: number }
  | { type: 'child-start-failed'; path: string; id: string; attempt: number; error: string }
  | { type: 'child-stopped'; path: string; id: string; how: 'graceful' | 'killed' | 'abandoned' }
  | { type: 'escalated'; path: string; restarts: number; intensity: number; periodMs: number; error: string }
  | { type: 'supervisor-stopped'; path: string }
  | { type: 'fatal'; path: string; error: string };

/** What every reference to a child has. */
interface ChildRefBase {
  readonly id: string;
  /** Path from the root supervisor: `root/ingest/parser`. */
  readonly path: string;
  /** The child's row of its supervisor's `whichChildren()` now; undefined once its spec is gone. */
  info(): ChildInfo | undefined;
}

/**
 * A worker or actor group child, as `startChild` resolves it and `child(id)` returns it. It names
 * the child by id in its supervisor, so it follows the child across restarts.
 */
export interface WorkerRef extends ChildRefBase {
  readonly kind: 'worker' | 'actors';
  /** The handle its current incarnation's `start` returned (a new one after each restart); undefined while it is not running. */
  handle(): ChildHandle | undefined;
}

/**
 * A nested supervisor, reached through its parent (`startChild` of a supervisor spec,
 * `child(id)`, `supervisorOf(id)`): the calls of a `Supervisor` on its children, made on the
 * nested supervisor's current incarnation. Between incarnations (its parent restarting it) the
 * calls are refused with `SUPERVISOR_NOT_RUNNING`; `tree()` then shows its node as its parent sees
 * it. Children added with `startChild` belong to one incarnation: a restart of the nested
 * supervisor starts it again from its spec, as OTP's does. `on` survives restarts.
 */
export interface SupervisorRef extends ChildRefBase, SupervisorAdmin {
  readonly kind: 'supervisor';
}

/** A reference to one child: narrow on `kind`. */
export type ChildRef = WorkerRef | SupervisorRef;

/** The calls a supervisor answers about its children: on a `Supervisor`, and on a nested one through its `SupervisorRef`. */
export interface SupervisorAdmin {
  /**
   * Adds and starts a child; resolves to a reference to it (a `SupervisorRef` for a nested
   * supervisor). Rejects `CHILD_EXISTS` if the id is taken (`already started` / `already present`).
   */
  startChild(spec: SupervisorChildSpec): Promise<SupervisorRef>;
  startChild(spec: WorkerChildSpec | ActorGroupChildSpec): Promise<WorkerRef>;
  startChild(spec: ChildSpec): Promise<ChildRef>;
  /** Stops a child without restarting it; a temporary child's spec is deleted. Rejects `CHILD_NOT_FOUND`. */
  terminateChild(id: string): Promise<void>;
  /** Starts a terminated child again from its kept spec. Rejects `CHILD_RUNNING`, `CHILD_RESTARTING`, `CHILD_NOT_FOUND`. */
  restartChild(id: string): Promise<void>;
  /** Deletes a terminated child's spec. Rejects `CHILD_RUNNING`, `CHILD_RESTARTING`, `CHILD_NOT_FOUND`. */
  deleteChild(id: string): Promise<void>;
  whichChildren(): ChildInfo[];
  countChildren(): ChildCounts;
  /** A snapshot of the whole tree below this supervisor. */
  tree(): TreeNode;
  /** Adds a listener of every event in the tree below; returns its remover. */
  on(listener: (event: SupervisionEvent) => void): () => void;
  /** A reference to the child `id`, static or dynamic. Throws `CHILD_NOT_FOUND`. */
  child(id: string): ChildRef;
  /** A reference to the nested supervisor `id`. Throws `CHILD_NOT_FOUND` (reason `not a supervisor` for a worker). */
  supervisorOf(id: string): SupervisorRef;
}

/**
 * A running supervisor. Every call it refuses rejects (or throws) a `SupervisorRefusedError`
 * whose `code` says why; on a supervisor that is not running, `SUPERVISOR_NOT_RUNNING`.
 */
export interface Supervisor extends SupervisorAdmin {
  readonly id: string;
  /** Starts the children in order. If one fails to start, the started ones are stopped and this rejects. */
  start(): Promise<void>;
  /** Stops every child in reverse start order (each by its shutdown), cancels pending restarts. */
  stop(): Promise<void>;
  /** Settles when the supervisor ends: resolves after `stop()`, rejects when it gave up (intensity exceeded). */
  readonly done: Promise<void>;
}
