/**
 * The counters behind `GuardedCall.metrics()`: plain numbers bumped on the hot path (no
 * allocation, no Date), copied into a `CallMetrics` snapshot on demand.
 */
import { LATENCY_BUCKETS_MS, type AttemptFailureKind, type BreakerState, type CallMetrics } from './types.js';

/**
 * @example
 * const stats = new CallStats('fx.quote');
 * stats.calls++;
 * stats.observeLatency(12);
 * stats.snapshot('closed').latencyMs.counts; // [0, 0, 0, 0, 1, 0, ...]
 */
export class CallStats {
  calls = 0;
  successes = 0;
  failedCalls = 0;
  attempts = 0;
  retries = 0;
  fallbacks = 0;
  alerts = 0;
  consecutiveFailures = 0;
  opened = 0;
  halfOpened = 0;
  closed = 0;
  readonly failures = { timeout: 0, error: 0, terminal: 0, breakerOpen: 0, aborted: 0 };
  private readonly counts = new Float64Array(LATENCY_BUCKETS_MS.length + 1);
  private latencySum = 0;
  private latencyCount = 0;

  constructor(readonly call: string) {}

  failure(kind: AttemptFailureKind): void {
    if (kind === 'breaker-open') this.failures.breakerOpen++;
    else this.failures[kind]++;
  }

  transition(to: BreakerState): void {
    if (to === 'open') this.opened++;
    else if (to === 'half-open') this.halfOpened++;
    else this.closed++;
  }

  observeLatency(ms: number): void {
    const bounds = LATENCY_BUCKETS_MS;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]!) i++;
    this.counts[i]!++;
    this.latencySum += ms;
    this.latencyCount++;
  }

  snapshot(state: BreakerState): CallMetrics {
    return {
      call: this.call,
      calls: this.calls,
      successes: this.successes,
      failedCalls: this.failedCalls,
      attempts: this.attempts,
      failures: { ...this.failures },
      retries: this.retries,
      fallbacks: this.fallbacks,
      alerts: this.alerts,
      consecutiveFailures: this.consecutiveFailures,
      breaker: { state, opened: this.opened, halfOpened: this.halfOpened, closed: this.closed },
      latencyMs: { bucketsMs: LATENCY_BUCKETS_MS, counts: Array.from(this.counts), sum: this.latencySum, count: this.latencyCount },
    };
  }
}
