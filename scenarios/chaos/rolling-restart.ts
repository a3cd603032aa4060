/** Every node stopped gracefully (SIGTERM: handoff) and started again, one by one, under load. */
import { defineScenario } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'rolling-restart',
  description: 'every node is stopped gracefully and started again, one at a time, 1 s apart',
  nodes: 3,
  faults: ({ rng, durationMs }) => [{ atMs: rng.between(0.2, 0.3) * durationMs, fault: { kind: 'rolling-restart', gapMs: 1_000 } }],
});
