/**
 * One operation at a time, in call order: a supervisor handles exits, restarts, API calls and
 * `stop()` like OTP's supervisor handles its mailbox. A failed operation rejects its own promise
 * only; the next one still runs.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `op` after every operation queued before it. */
  run<T>(op: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(op);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
