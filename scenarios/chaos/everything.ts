/** Random faults of every kind, drawn from the seed, on a 3-server NATS cluster with the payments pipeline. */
import { defineScenario, type Fault } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'everything',
  description: 'six faults of random kinds at random times, from the seed: nodes killed, paused, stopped; NATS servers and Redis killed; a slow or cut network; a flaky API',
  nodes: 3,
  natsServers: 3,
  pipeline: 'payments',
  leaseTtlMs: 4_000,
  durationMs: 45_000,
  workload: { ratePerSec: 50, keys: 24 },
  faults: ({ rng, durationMs, nodes }) => {
    const kinds: Array<() => Fault> = [
      () => ({ kind: 'kill-node', node: rng.int(nodes) }),
      () => ({ kind: 'pause-node', node: rng.int(nodes), forMs: rng.between(2_000, 10_000) }),
      () => ({ kind: 'stop-node', node: rng.int(nodes) }),
      () => ({ kind: 'kill-nats-server', server: rng.int(3), downMs: rng.between(1_000, 5_000) }),
      () => ({ kind: 'kill-redis', downMs: rng.between(1_000, 4_000) }),
      () => ({ kind: 'network', target: rng.pick(['nats', 'redis'] as const), latencyMs: rng.between(10, 80), jitterMs: 20, forMs: rng.between(2_000, 6_000) }),
      () => ({ kind: 'api', mode: rng.pick(['slow', 'flaky', 'down'] as const), forMs: rng.between(2_000, 5_000), rate: 0.5, latencyMs: 1_000 }),
    ];
    return Array.from({ length: 6 }, (_, i) => ({ atMs: ((i + rng.between(0.1, 0.9)) / 7) * durationMs * 0.85, fault: rng.pick(kinds)() }));
  },
});
