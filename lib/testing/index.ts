/**
 * `warden/testing`: what tests of warden pipelines need: the simulated clock, the in-memory
 * ports and breaker state, the partition a key lands on (to kill it), the failpoint names, the
 * semantics checker and the determinism check.
 *
 * @example
 * import { SimulatedClock, InMemoryTransport, partitionOf } from 'warden/testing';
 */
export { SimulatedClock, flushMicrotasks } from '../core/clock.js';
export { partitionOf } from '../core/ids.js';
export { InMemoryTransport } from '../transport/in-memory-transport.js';
export { InMemoryCheckpointStore } from '../checkpoint/in-memory-checkpoint-store.js';
export { InMemoryBreakerBucket, InMemoryBreakerStateStore, type InMemoryBreakerStateStoreOptions } from '../resilience/in-memory-breaker-state.js';
export type { Failpoint } from '../worker/options.js';
export { SemanticsChecker, type SemanticsReport } from './semantics-checker.js';
export { checkDeterminism, type DeterminismInput, type DeterminismReport, type Divergence } from './determinism.js';
