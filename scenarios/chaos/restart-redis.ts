/** The checkpoint store dies and comes back (Redis with AOF), then turns slow, then stalls. */
import { defineScenario } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'restart-redis',
  description: 'Redis is SIGKILLed and restarted 3 s later (AOF), later answers 200 ms late, later stalls for 3 s',
  nodes: 3,
  faults: ({ rng, durationMs }) => [
    { atMs: rng.between(0.15, 0.25) * durationMs, fault: { kind: 'kill-redis', downMs: 3_000 } },
    { atMs: rng.between(0.4, 0.5) * durationMs, fault: { kind: 'slow-redis', latencyMs: 200, forMs: 4_000 } },
    { atMs: rng.between(0.65, 0.7) * durationMs, fault: { kind: 'stall-redis', forMs: 3_000 } },
  ],
});
