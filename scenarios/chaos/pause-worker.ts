/** A node paused (SIGSTOP) past its lease while the others take over, then resumed: a zombie that must write nothing. */
import { defineScenario } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'pause-worker',
  description: 'a node is paused (SIGSTOP) for three lease TTLs and resumed: the others take over and the zombie writes nothing',
  nodes: 3,
  leaseTtlMs: 2_000,
  faults: ({ rng, durationMs, nodes }) => [{ atMs: rng.between(0.2, 0.4) * durationMs, fault: { kind: 'pause-node', node: rng.int(nodes), forMs: 6_000 } }],
});
