/**
 * `createSupervisor`: Erlang/OTP's supervisor (strategies, restart types, restart intensity,
 * shutdown, dynamic children) with Akka's backoff between restarts, on the injected clock.
 *
 * Invariants:
 *  1. Children start in spec order (dynamic children after, in the order added) and stop in
 *     reverse start order, one at a time, each by its `shutdown`.
 *  2. Exits, restarts, API calls and `stop()` run one at a time in one queue, as OTP's
 *     supervisor handles one message at a time. The exit of an incarnation the supervisor has
 *     already stopped or replaced is ignored: exits the supervisor causes are not crashes and
 *     trigger nothing.
 *  3. A child that ends by itself is restarted by its type: permanent always, transient only
 *     after a crash (`done` rejected), temporary never (its spec is deleted). A child that needs
 *     no restart does not disturb its siblings.
 *  4. A restart restarts a group by the strategy: one-for-one the child; one-for-all every child
 *     whose spec is kept; rest-for-one the child and the kept children after it. The running rest
 *     of the group is stopped first (reverse order), temporaries among them are deleted, and the
 *     group starts again in spec order, a transient child that had exited normally included (OTP
 *     `restart_multiple_children`). Children terminated through `terminateChild` stay terminated.
 *  5. Each restart decision counts once toward the intensity (a group restart once); a restart
 *     whose `start` fails counts as another one. More than `intensity` restarts within `periodMs`
 *     and the supervisor gives up: it emits `escalated`, cancels pending restarts, stops all
 *     children in reverse order and `done` rejects (WardenError 'STOPPED', the last failure as
 *     cause); a root also emits `fatal` and calls `onFatal`, while for a parent a nested
 *     supervisor that gave up is a crashed child, so escalation climbs the tree.
 *  6. A restart waits for its trigger child's backoff on the clock (even 0 ms: never
 *     synchronously). A failed restart is retried with the next backoff (rest-for-one: from the
 *     failed child on; one-for-all: the whole group), so a child whose start always fails
 *     never spins, and ends in escalation or `stop()`.
 *  7. `start()` that fails on a child stops the children already started, in reverse order, and
 *     rejects with a WardenError naming the child (cause kept); `done` rejects with it too.
 *  8. `stop()` cancels pending restarts and aborts starts in flight (a hanging restart loop can
 *     always be shut down), stops the children in reverse order, emits `supervisor-stopped` and
 *     resolves `done`. After `stop()` or an escalation nothing restarts and none of the
 *     supervisor's timers is left on the clock.
 *  9. `done` never surfaces as an unhandled rejection; events of nested supervisors reach the
 *     listeners of every supervisor above them.
 * 10. A call that names a child or needs a running supervisor and cannot be made is refused with a
 *     `SupervisorRefusedError` whose code says why (errors.ts) and changes nothing.
 *     `startChild`, `child` and `supervisorOf` hand out references (child-ref.ts) that look the
 *     child up at each call; a nested supervisor is reached through the handle of its incarnation.
 */
import { describeError, errorChain, WardenError } from '../core/errors.js';
import { childInfo, supervisorNode, ChildTable, countChildren, killOrAbandon, newChildRecord, shutdownIncarnation, startIncarnation, type ChildExit, type ChildRecord, type Incarnation, type RestartPlan } from './child.js';
import { childRef, type RefHost } from './child-ref.js';
import { adminError, childError, existsError, notRunningError, startCutShortError } from './errors.js';
import { resolveChildSpec, resolveSupervisorOptions, type ResolvedChildSpec, type ResolvedSupervisorOptions } from './options.js';
import { RestartIntensity } from './restart-intensity.js';
import { restartGroup, RestartPlans } from './restart-plan.js';
import { Listeners } from './listeners.js';
import { SerialQueue } from './serial-queue.js';
import type { ActorGroupChildSpec, ChildContext, ChildCounts, ChildHandle, ChildInfo, ChildRef, ChildSpec, SupervisionEvent, Supervisor, SupervisorChildSpec, SupervisorOptions, SupervisorRef, TreeNode, WorkerChildSpec, WorkerRef } from './types.js';

type State = 'idle' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Where a supervisor sits: its path, and its parent's event sink when nested. */
interface Placement {
  path: string;
  parentEmit: ((event: SupervisionEvent) => void) | undefined;
}

/**
 * Creates a supervisor (not yet started). Options are validated at once: bad values throw a
 * `ConfigError` naming the field.
 *
 * @example
 * const sup = createSupervisor({
 *   strategy: 'one-for-one', intensity: 3, periodMs: 10_000,
 *   children: [{ id: 'poller', start: async (ctx) => startPoller(ctx.signal) }],
 *   onFatal: (err) => { console.error(err); process.exitCode = 1; },
 * });
 * await sup.start();
 */
export function createSupervisor(options: SupervisorOptions = {}): Supervisor {
  const resolved = resolveSupervisorOptions(options);
  return new SupervisorCore(resolved, { path: resolved.id, parentEmit: undefined });
}

class SupervisorCore implements Supervisor, RefHost {
  readonly id: string;
  readonly done: Promise<void>;
  private readonly children: ChildTable;
  /** The nested supervisor behind each handle `startFnOf` made (one per incarnation). */
  private readonly nested = new WeakMap<ChildHandle, SupervisorCore>();
  /** Incarnations whose stop is under way (`stopChild`), so a kill reaches them too. */
  private readonly inStop = new Map<ChildRecord, Incarnation>();
  private readonly listeners: Listeners<SupervisionEvent>;
  private readonly window: RestartIntensity;
  private readonly plans: RestartPlans;
  /** Children whose start is in flight (`stop()` aborts them). */
  private readonly launching = new Set<ChildRecord>();
  private state: State = 'idle';
  private startedAt = 0;
  private readonly queue = new SerialQueue();
  private stopping: Promise<void> | undefined;
  private settle: { resolve: () => void; reject: (error: Error) => void } = { resolve: () => undefined, reject: () => undefined };

  constructor(
    private readonly opts: ResolvedSupervisorOptions,
    private readonly placement: Placement,
  ) {
    this.id = opts.id;
    this.children = new ChildTable(opts.children, placement.path);
    this.window = new RestartIntensity(opts.intensity, opts.periodMs);
    this.plans = new RestartPlans(opts.clock);
    this.listeners = new Listeners(opts.logger, placement.path);
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.done.catch(() => undefined); // invariant 9: a failure is reported, never unhandled
  }

  get path(): string {
    return this.placement.path;
  }

  start(): Promise<void> {
    if (this.state !== 'idle') {
      return Promise.reject(new WardenError(this.state === 'running' ? 'CONFIG' : 'STOPPED', `supervisor ${this.path} cannot start: it is ${this.state}`));
    }
    this.state = 'running';
    this.startedAt = this.opts.clock.now();
    return this.serial(() => this.startAll());
  }

  private async startAll(): Promise<void> {
    for (const rec of [...this.children.all]) {
      if (this.state !== 'running') throw startCutShortError(this.path, this.state);
      try {
        await this.launch(rec);
      } catch (err) {
        if (this.state !== 'running') throw startCutShortError(this.path, this.state);
        const error = childError(this.path, rec.spec.id, 'failed to start', err);
        this.opts.logger.error({ path: this.path, child: rec.spec.id, err: err }, 'supervisor failed to start a child');
        await this.stopAll();
        this.finish('failed', error);
        throw error;
      }
    }
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.state === 'stopped' || this.state === 'failed') return Promise.resolve();
    if (this.state === 'idle') {
      this.finish('stopped');
      return Promise.resolve();
    }
    if (this.state === 'running') this.state = 'stopping';
    this.plans.cancelAll();
    for (const rec of this.launching) rec.starting?.abort(new WardenError('STOPPED', `supervisor ${this.path} is stopping`));
    this.stopping = this.serial(async () => {
      if (this.state === 'failed' || this.state === 'stopped') return;
      await this.stopAll();
      this.finish('stopped');
    });
    return this.stopping;
  }

  /**
   * Kills the whole subtree at once (OTP's `exit(Sup, kill)`), as a parent does to a nested
   * supervisor whose `shutdown` ran out or is `'brutal-kill'`: pending restarts are dropped, and
   * every child, running or in the middle of its own stop, is killed in reverse start order (a
   * nested supervisor kills its own subtree; a child without `kill()` is abandoned). No child's
   * `stop()` is awaited; the supervisor ends stopped.
   */
  kill(): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'stopping';
    this.plans.cancelAll();
    for (const rec of this.launching) rec.starting?.abort(new WardenError('STOPPED', `supervisor ${this.path} is killed`));
    for (const rec of [...this.children.all].reverse()) {
      const inc = rec.current ?? this.inStop.get(rec);
      rec.current = undefined;
      rec.status = 'terminated';
      this.inStop.delete(rec);
      if (!inc) continue;
      inc.ended = true;
      inc.cutShutdown?.(); // a graceful stop in progress: its timer goes, and it kills nothing more
      if (!inc.controller.signal.aborted) inc.controller.abort(new WardenError('STOPPED', 'killed with its supervisor'));
      this.emit({ type: 'child-stopped', path: rec.path, id: rec.spec.id, how: killOrAbandon(inc.handle, this.opts.logger) });
    }
    this.finish('stopped');
  }

  /** Ends the supervisor: resolves `done`, or rejects it (and, at the root after escalation, goes fatal). */
  private finish(outcome: 'stopped' | 'failed', error?: Error, fatal = false): void {
    if (this.state === 'stopped' || this.state === 'failed') return; // killed meanwhile: it ended then
    this.state = outcome;
    if (outcome === 'stopped' || !error) {
      this.emit({ type: 'supervisor-stopped', path: this.path });
      this.settle.resolve();
      return;
    }
    if (fatal && !this.placement.parentEmit) {
      this.emit({ type: 'fatal', path: this.path, error: describeError(error) });
      this.opts.logger.error({ path: this.path, err: error }, 'root supervisor gave up');
      try {
        this.opts.onFatal?.(error);
      } catch (err) {
        this.opts.logger.error({ path: this.path, err: err }, 'onFatal threw');
      }
    }
    this.settle.reject(error);
  }

  private async launch(rec: ChildRecord): Promise<void> {
    const attempt = rec.startAttempts;
    this.launching.add(rec);
    try {
      const inc = await startIncarnation(rec, this.startFnOf(rec.spec), this.opts, (i, exit) => this.onExit(rec, i, exit));
      rec.current = inc;
      rec.status = 'running';
      rec.held = false;
      this.emit({ type: 'child-started', path: rec.path, id: rec.spec.id, attempt });
    } catch (err) {
      if (this.state === 'running') {
        this.emit({ type: 'child-start-failed', path: rec.path, id: rec.spec.id, attempt, error: describeError(err) });
        this.opts.logger.warn({ path: rec.path, attempt, err: err }, 'child failed to start');
      }
      throw err;
    } finally {
      this.launching.delete(rec);
    }
  }

  private startFnOf(spec: ResolvedChildSpec): (ctx: ChildContext) => Promise<ChildHandle> {
    if (spec.kind !== 'supervisor') return spec.start;
    return async (ctx) => {
      const child = new SupervisorCore(spec.supervisor, { path: ctx.path, parentEmit: (event) => this.emit(event) });
      ctx.signal.addEventListener('abort', () => void child.stop(), { once: true });
      await child.start();
      const handle: ChildHandle = { stop: () => child.stop(), kill: () => child.kill(), done: child.done, describe: () => child.tree().children ?? [] };
      this.nested.set(handle, child);
      return handle;
    };
  }

  private onExit(rec: ChildRecord, inc: Incarnation, exit: ChildExit): void {
    this.serial(() => this.handleExit(rec, inc, exit)).catch((err: unknown) => this.bug(err));
  }

  private async handleExit(rec: ChildRecord, inc: Incarnation, exit: ChildExit): Promise<void> {
    if (rec.current !== inc || this.state !== 'running') return; // invariant 2
    rec.current = undefined;
    rec.status = 'terminated';
    inc.controller.abort(new WardenError('STOPPED', `child ${rec.path} ended`));
    if (exit.kind === 'normal') {
      this.emit({ type: 'child-exited', path: rec.path, id: rec.spec.id, reason: 'normal' });
      this.opts.logger.info({ path: rec.path }, 'child exited');
    } else {
      this.emit({ type: 'child-crashed', path: rec.path, id: rec.spec.id, error: describeError(exit.error), errorChain: errorChain(exit.error) });
      this.opts.logger.warn({ path: rec.path, err: exit.error }, 'child crashed');
    }
    const { restart } = rec.spec;
    if (restart === 'temporary' || (restart === 'transient' && exit.kind === 'normal')) {
      if (restart === 'temporary') this.remove(rec);
      return;
    }
    if (this.opts.clock.now() - inc.startedAt >= rec.spec.backoff.resetBackoffAfterMs) rec.consecutive = 0;
    const reason = exit.kind === 'crash' ? exit.error : new WardenError('STOPPED', `child ${rec.path} exited`);
    await this.restart(rec, reason);
  }

  private async stopChild(rec: ChildRecord): Promise<void> {
    const inc = rec.current;
    rec.current = undefined;
    rec.status = 'terminated';
    if (!inc) return;
    this.inStop.set(rec, inc); // a kill of this supervisor meanwhile kills it too
    const how = await shutdownIncarnation(inc, rec.spec.shutdown, this.opts.clock, this.opts.logger);
    if (this.inStop.get(rec) !== inc) return; // killed with its supervisor, and reported then
    this.inStop.delete(rec);
    this.emit({ type: 'child-stopped', path: rec.path, id: rec.spec.id, how });
    if (how !== 'graceful') this.opts.logger.warn({ path: rec.path, how, shutdown: rec.spec.shutdown }, 'child did not stop in time');
  }

  /** Stops every child in reverse start order and forgets pending restarts. */
  private async stopAll(): Promise<void> {
    this.plans.cancelAll();
    for (const rec of [...this.children.all].reverse()) await this.stopChild(rec);
  }

  /** `trigger` failed (exit or failed restart) and must be restarted: invariants 4 to 6. */
  private async restart(trigger: ChildRecord, reason: unknown): Promise<void> {
    const { count, exceeded } = this.window.record(this.opts.clock.now());
    if (exceeded) return this.escalate(trigger, reason, count);
    const group = restartGroup(this.opts.strategy, this.children.all, trigger);
    // Already waiting in a plan: its restart was counted when that plan was made.
    const fresh = new Set(group.filter((rec) => rec === trigger || rec.status !== 'restarting'));
    for (const rec of [...group].reverse()) {
      if (rec === trigger || !rec.current) continue;
      // A sibling that ran resetBackoffAfterMs starts over too, whatever ended its run (Akka's reset on uptime).
      if (this.opts.clock.now() - rec.current.startedAt >= rec.spec.backoff.resetBackoffAfterMs) rec.consecutive = 0;
      await this.stopChild(rec);
    }
    if (this.state !== 'running') return;
    const members = group.filter((rec) => rec === trigger || rec.spec.restart !== 'temporary');
    for (const rec of group) if (!members.includes(rec)) this.remove(rec);
    for (const rec of members) if (fresh.has(rec)) rec.restarts++;
    const delayMs = trigger.spec.schedule.delay(trigger.consecutive++, this.opts.random);
    this.plans.schedule(trigger, members, delayMs, (plan) => {
      this.serial(() => this.runPlan(plan)).catch((err: unknown) => this.bug(err));
    });
    for (const rec of members) {
      this.emit({ type: 'child-restarting', path: rec.path, id: rec.spec.id, attempt: rec.startAttempts, delayMs });
    }
    this.opts.logger.info({ path: trigger.path, delayMs, group: members.map((r) => r.spec.id) }, 'restarting');
  }

  private async runPlan(plan: RestartPlan): Promise<void> {
    if (!this.plans.take(plan) || this.state !== 'running') return;
    for (const rec of [...plan.members]) {
      if (rec.plan !== plan) continue;
      rec.plan = undefined;
      try {
        await this.launch(rec);
      } catch (err) {
        // The rest of this plan is in the failed child's group: it moves to the next plan.
        if (this.state === 'running') await this.restart(rec, err);
        return;
      }
    }
  }

  private async escalate(trigger: ChildRecord, reason: unknown, count: number): Promise<void> {
    const { intensity, periodMs } = this.opts;
    const error = new WardenError(
      'STOPPED',
      `supervisor ${this.path} gave up: ${count} restarts within ${periodMs} ms exceed its intensity ${intensity} (last failure: ${trigger.path})`,
      { cause: reason, details: { reason: 'intensity', path: this.path, child: trigger.spec.id, restarts: count, intensity, periodMs } },
    );
    this.state = 'stopping';
    this.emit({ type: 'escalated', path: this.path, restarts: count, intensity, periodMs, error: describeError(error) });
    this.opts.logger.error({ path: this.path, child: trigger.spec.id, restarts: count, periodMs, err: reason }, 'restart intensity exceeded');
    await this.stopAll();
    this.finish('failed', error, true);
  }

  startChild(spec: SupervisorChildSpec): Promise<SupervisorRef>;
  startChild(spec: WorkerChildSpec | ActorGroupChildSpec): Promise<WorkerRef>;
  startChild(spec: ChildSpec): Promise<ChildRef>;
  async startChild(spec: ChildSpec): Promise<ChildRef> {
    const resolved = resolveChildSpec(spec, this.opts.backoff, this.opts, 'spec');
    await this.serial(async () => {
      this.assertRunning('startChild', resolved.id);
      const existing = this.children.find(resolved.id);
      if (existing) throw existsError(this.path, existing);
      const rec = newChildRecord(resolved, this.path);
      try {
        await this.launch(rec);
      } catch (err) {
        throw childError(this.path, rec.spec.id, 'failed to start', err);
      }
      this.children.add(rec);
    });
    return this.refTo(resolved.id, resolved.kind);
  }

  terminateChild(id: string): Promise<void> {
    return this.serial(async () => {
      this.assertRunning('terminateChild', id);
      const rec = this.children.get(id);
      this.plans.detach(rec);
      rec.held = true;
      await this.stopChild(rec);
      if (rec.spec.restart === 'temporary') this.remove(rec);
    });
  }

  restartChild(id: string): Promise<void> {
    return this.serial(async () => {
      this.assertRunning('restartChild', id);
      const rec = this.children.terminated(this.children.get(id));
      try {
        await this.launch(rec);
      } catch (err) {
        throw childError(this.path, id, 'failed to restart', err);
      }
    });
  }

  deleteChild(id: string): Promise<void> {
    return this.serial(() => {
      this.assertRunning('deleteChild', id);
      this.remove(this.children.terminated(this.children.get(id)));
    });
  }

  whichChildren(): ChildInfo[] {
    return this.children.all.map(childInfo);
  }

  countChildren(): ChildCounts {
    return countChildren(this.children.all);
  }

  tree(): TreeNode {
    const now = this.opts.clock.now();
    return supervisorNode({ id: this.id, path: this.path, state: this.state, startedAt: this.startedAt, now, records: this.children.all, opts: this.opts, restartsInPeriod: this.window.count(now) });
  }

  on(listener: (event: SupervisionEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  child(id: string): ChildRef {
    return this.refTo(id, this.children.get(id).spec.kind);
  }

  supervisorOf(id: string): SupervisorRef {
    if (this.children.get(id).spec.kind !== 'supervisor') throw adminError(this.path, id, 'not a supervisor');
    return this.refTo(id, 'supervisor') as SupervisorRef;
  }

  recordOf(id: string): ChildRecord | undefined {
    return this.children.find(id);
  }

  nestedOf(rec: ChildRecord): SupervisorCore | undefined {
    return rec.current ? this.nested.get(rec.current.handle) : undefined;
  }

  /** A reference held from this supervisor; its `on` listens here (a reference is made at the root, or by a `SupervisorRef`). */
  private refTo(id: string, kind: ChildSpec['kind']): ChildRef {
    return childRef(id, kind, () => this, this.path, (listener) => this.on(listener));
  }

  private serial<T>(op: () => T | Promise<T>): Promise<T> {
    return this.queue.run(op);
  }

  private emit(event: SupervisionEvent): void {
    this.listeners.emit(event);
    this.placement.parentEmit?.(event);
  }

  private remove(rec: ChildRecord): void {
    this.plans.detach(rec);
    this.children.delete(rec);
  }

  private assertRunning(op: string, id?: string): void {
    if (this.state !== 'running') throw notRunningError(this.path, this.state, op, id);
  }

  private bug(err: unknown): void {
    this.opts.logger.error({ path: this.path, err: err }, 'supervisor internal error');
  }
}
