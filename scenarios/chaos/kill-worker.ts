/** Three nodes under load; two of them SIGKILLed at times drawn from the seed (and restarted). */
import { defineScenario } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'kill-worker',
  description: 'three node processes under load; two are SIGKILLed (and restarted) at seeded times',
  nodes: 3,
  faults: ({ rng, durationMs, nodes }) => {
    const first = rng.int(nodes);
    return [
      { atMs: rng.between(0.2, 0.35) * durationMs, fault: { kind: 'kill-node', node: first } },
      { atMs: rng.between(0.5, 0.65) * durationMs, fault: { kind: 'kill-node', node: (first + 1 + rng.int(nodes - 1)) % nodes } },
    ];
  },
});
