/**
 * In-process fault injection for actors. A machine action calls `faults.check(point, key)`;
 * a scenario arms a point to throw a number of times. Unarmed, `check` costs one map lookup.
 *
 * A fault fires at most as many times as armed, so an input that crashed an actor succeeds on
 * retry: this models a transient crash (a bug hit by timing, a lost connection), not a poison
 * input.
 */

/** Thrown by an armed fault. */
export class InjectedFault extends Error {
  constructor(point: string, key: string) {
    super(`injected fault at ${point} (key ${key})`);
    this.name = 'InjectedFault';
  }
}

interface Arming {
  times: number;
  key: string | undefined;
}

class Faults {
  private readonly armed = new Map<string, Arming>();
  /** Faults fired, by point. */
  readonly fired = new Map<string, number>();

  /** Arms `point` to throw the next `times` times it is checked (for `key` only, if given). */
  arm(point: string, options: { times?: number; key?: string } = {}): void {
    this.armed.set(point, { times: options.times ?? 1, key: options.key });
  }

  disarm(point?: string): void {
    if (point === undefined) this.armed.clear();
    else this.armed.delete(point);
  }

  /** Throws `InjectedFault` if `point` is armed (for this key). */
  check(point: string, key: string): void {
    const a = this.armed.get(point);
    if (!a || (a.key !== undefined && a.key !== key)) return;
    if (--a.times <= 0) this.armed.delete(point);
    this.fired.set(point, (this.fired.get(point) ?? 0) + 1);
    throw new InjectedFault(point, key);
  }
}

/** The process-wide fault injector. */
export const faults = new Faults();
