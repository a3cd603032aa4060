/**
 * Resilience: guarded calls to the outside world (timeout that cancels, retries with backoff,
 * circuit breaker shared between nodes, idempotency keys, fallback, alerts, metrics).
 */
export { defineCall } from './guarded-call.js';
export { getCall, listCalls } from './registry.js';
export { retryAfterFrom, retryAfterOf, type RetryAfterSource, type HeadersLike } from './retry-after.js';
export { registerCallMetrics, type CallMetricsOptions, type MetricsRegistry } from './prometheus.js';
export { resolveCallOptions, DEFAULT_RETRY, DEFAULT_BREAKER, DEFAULT_TIMEOUT_MS, type ResolvedCallOptions, type ResolvedRetry, type ResolvedBreaker } from './options.js';
export { LATENCY_BUCKETS_MS } from './types.js';
export type {
  GuardedCall,
  GuardedCallOptions,
  CallFn,
  CallContext,
  CallOptions,
  CallOutcome,
  RetryOptions,
  BreakerOptions,
  BreakerState,
  AttemptFailureKind,
  CallAlert,
  CallEvent,
  CallMetrics,
} from './types.js';
export type { BreakerStateStore, SharedBreakerState } from './breaker-state.js';
