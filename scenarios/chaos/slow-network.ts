/** The network between the nodes and NATS and Redis turns slow and jittery, then resets every connection. */
import { defineScenario } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'slow-network',
  description: '40 ms +/- 30 ms to NATS and Redis for 8 s; later every connection to NATS is reset',
  nodes: 3,
  faults: ({ rng, durationMs }) => [
    { atMs: rng.between(0.15, 0.25) * durationMs, fault: { kind: 'network', target: 'nats', latencyMs: 40, jitterMs: 30, forMs: 8_000 } },
    { atMs: rng.between(0.15, 0.25) * durationMs + 100, fault: { kind: 'network', target: 'redis', latencyMs: 40, jitterMs: 30, forMs: 8_000 } },
    { atMs: rng.between(0.6, 0.7) * durationMs, fault: { kind: 'network', target: 'nats', reset: true, forMs: 500 } },
  ],
});
