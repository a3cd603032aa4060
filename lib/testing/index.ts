/**
 * `warden/testing`: what tests of warden pipelines need: the simulated clock, the in-memory
 * ports, and the semantics checker.
 */
export { SimulatedClock, flushMicrotasks } from '../core/clock.js';
export { InMemoryTransport } from '../transport/in-memory-transport.js';
export { InMemoryCheckpointStore } from '../checkpoint/in-memory-checkpoint-store.js';
export { SemanticsChecker, type SemanticsReport } from './semantics-checker.js';
export { checkDeterminism, type DeterminismInput, type DeterminismReport, type Divergence } from './determinism.js';
