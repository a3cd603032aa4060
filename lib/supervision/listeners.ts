/**
 * The listeners of a supervisor's events.
 *
 * Invariants:
 *  1. Every listener gets every event, in the order emitted; one that throws is logged and the
 *     others still get it (a listener's bug never fails a supervisor).
 *  2. A listener removed (by the function `add` returned) while an event is being delivered
 *     still gets that event, and no later one.
 */
import type { Logger } from '../core/logger.js';

/**
 * @example
 * const listeners = new Listeners<SupervisionEvent>(logger, 'root');
 * const off = listeners.add((e) => console.log(e.type));
 * listeners.emit({ type: 'supervisor-stopped', path: 'root' });
 * off();
 */
export class Listeners<E extends { type: string }> {
  private readonly set = new Set<(event: E) => void>();

  constructor(
    private readonly logger: Logger,
    private readonly path: string,
  ) {}

  add(listener: (event: E) => void): () => void {
    this.set.add(listener);
    return () => {
      this.set.delete(listener);
    };
  }

  emit(event: E): void {
    for (const listener of [...this.set]) {
      try {
        listener(event);
      } catch (err) {
        this.logger.warn({ path: this.path, event: event.type, err: err }, 'supervision listener threw');
      }
    }
  }
}
