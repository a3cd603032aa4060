/**
 * OTP's maximum restart intensity: a supervisor may restart at most `intensity` times within
 * any window of `periodMs`; one restart more and it gives up.
 */

/**
 * A sliding window of restart times (clock ms). A restart at `t` counts while `now - t < periodMs`.
 *
 * @example
 * const window = new RestartIntensity(1, 5_000);
 * window.record(0);     // { count: 1, exceeded: false }
 * window.record(4_999); // { count: 2, exceeded: true }
 */
export class RestartIntensity {
  private times: number[] = [];

  constructor(
    readonly intensity: number,
    readonly periodMs: number,
  ) {}

  /** Records a restart at `now`; `exceeded` when the restarts in the window are now more than `intensity`. */
  record(now: number): { count: number; exceeded: boolean } {
    this.prune(now);
    this.times.push(now);
    const count = this.times.length;
    return { count, exceeded: count > this.intensity };
  }

  /** Restarts within the window ending at `now`. */
  count(now: number): number {
    this.prune(now);
    return this.times.length;
  }

  private prune(now: number): void {
    this.times = this.times.filter((t) => now - t < this.periodMs);
  }
}
