/**
 * A lab for supervisor tests: a simulated clock, controllable workers, and an ordered log of
 * what happened to them (`start:a`, `fail-start:a`, `stop:a`, `kill:a`).
 *
 * A worker's handle lets the test crash it (reject `done`), exit it normally (resolve `done`),
 * make its `start` fail or hang, and make its `stop()` hang until released. Stopping a worker
 * rejects its `done` (as an aborted loop would), so a supervisor that mistook its own stops for
 * crashes would show it.
 */
import { SimulatedClock } from '../../lib/core/clock.js';
import { createSupervisor } from '../../lib/supervision/supervisor.js';
import type { ChildContext, ChildHandle, SupervisionEvent, Supervisor, SupervisorOptions, WorkerChildSpec } from '../../lib/supervision/types.js';

/** One started incarnation of a test worker. */
export interface TestWorker {
  readonly id: string;
  readonly attempt: number;
  readonly signal: AbortSignal;
  /** Rejects `done` (a crash). */
  crash(error?: Error): void;
  /** Resolves `done` (a normal exit). */
  exit(): void;
}

export class Lab {
  readonly clock = new SimulatedClock(0);
  readonly log: string[] = [];
  readonly events: SupervisionEvent[] = [];
  readonly fatal: Error[] = [];
  /** The latest incarnation of each worker id. */
  readonly live = new Map<string, TestWorker>();
  /** Workers whose handle has no `kill()`. */
  readonly noKill = new Set<string>();
  /** Workers whose `start` never settles (until the signal aborts, which they ignore). */
  readonly hangStart = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly hangStops = new Set<string>();
  private readonly releases = new Map<string, () => void>();

  /** The next `times` starts of `id` throw (for ever by default). */
  failStarts(id: string, times = Number.POSITIVE_INFINITY): void {
    this.failures.set(id, times);
  }

  /** Starts of `id` succeed again. */
  fixStarts(id: string): void {
    this.failures.delete(id);
  }

  /** `stop()` of `id` hangs until `releaseStop(id)`. */
  hangStop(id: string): void {
    this.hangStops.add(id);
  }

  releaseStop(id: string): void {
    this.hangStops.delete(id);
    this.releases.get(id)?.();
  }

  /** A worker child spec; `extra` sets restart, shutdown, backoff... */
  worker(id: string, extra: Omit<WorkerChildSpec, 'id' | 'start'> = {}): WorkerChildSpec {
    return { ...extra, id, start: (ctx) => this.startWorker(id, ctx) };
  }

  /** A supervisor on the lab's clock, jitter fixed at random() = 0.5, fatal errors collected, events recorded. */
  supervisor(options: SupervisorOptions = {}): Supervisor {
    const sup = createSupervisor({ clock: this.clock, random: () => 0.5, onFatal: (e) => this.fatal.push(e), ...options });
    sup.on((e) => this.events.push(e));
    return sup;
  }

  /** The live incarnation of `id`. */
  w(id: string): TestWorker {
    const worker = this.live.get(id);
    if (!worker) throw new Error(`no worker ${id} was started`);
    return worker;
  }

  /** Lets pending promise callbacks and timers due within `ms` run. */
  async settle(ms = 0): Promise<void> {
    await this.clock.advanceAsync(ms);
  }

  /** Events of one type, narrowed. */
  eventsOf<T extends SupervisionEvent['type']>(type: T): Array<Extract<SupervisionEvent, { type: T }>> {
    return this.events.filter((e): e is Extract<SupervisionEvent, { type: T }> => e.type === type);
  }

  /** The log since `mark` (a previous `log.length`). */
  since(mark: number): string[] {
    return this.log.slice(mark);
  }

  private startWorker(id: string, ctx: ChildContext): Promise<ChildHandle> {
    if (this.hangStart.has(id)) {
      this.log.push(`hang-start:${id}`);
      return new Promise<ChildHandle>(() => undefined);
    }
    const failures = this.failures.get(id) ?? 0;
    if (failures > 0) {
      this.failures.set(id, failures - 1);
      this.log.push(`fail-start:${id}`);
      return Promise.reject(new Error(`${id} cannot start`));
    }
    this.log.push(`start:${id}`);
    let resolve: () => void = () => undefined;
    let reject: (e: Error) => void = () => undefined;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.live.set(id, { id, attempt: ctx.attempt, signal: ctx.signal, crash: (e = new Error(`${id} crashed`)) => reject(e), exit: () => resolve() });
    const handle: ChildHandle = {
      done,
      stop: () => {
        this.log.push(`stop:${id}`);
        if (this.hangStops.has(id)) {
          return new Promise<void>((release) => {
            this.releases.set(id, () => {
              reject(new Error(`${id} aborted`));
              release();
            });
          });
        }
        reject(new Error(`${id} aborted`));
        return Promise.resolve();
      },
    };
    if (!this.noKill.has(id)) {
      handle.kill = () => {
        this.log.push(`kill:${id}`);
        reject(new Error(`${id} killed`));
      };
    }
    return Promise.resolve(handle);
  }
}
