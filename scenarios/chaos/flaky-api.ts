/** Every order charges an external API through a guarded call; the API turns flaky, then down, then slow. */
import { defineScenario } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'flaky-api',
  description: 'orders charge a loopback API through guarded calls (retries, breaker, idempotency keys); it fails half its requests, then goes down, then turns slow',
  nodes: 3,
  pipeline: 'payments',
  workload: { ratePerSec: 60, keys: 24 },
  faults: ({ rng, durationMs }) => [
    { atMs: rng.between(0.1, 0.2) * durationMs, fault: { kind: 'api', mode: 'flaky', rate: 0.5, forMs: 6_000 } },
    { atMs: rng.between(0.45, 0.5) * durationMs, fault: { kind: 'api', mode: 'down', forMs: 4_000 } },
    { atMs: rng.between(0.7, 0.75) * durationMs, fault: { kind: 'api', mode: 'slow', latencyMs: 1_500, forMs: 3_000 } },
  ],
});
