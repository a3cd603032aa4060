/** One server of a 3-server NATS JetStream cluster killed and restarted under load (streams and leases with 3 replicas). */
import { defineScenario } from '../../chaos/scenario.js';

export default defineScenario({
  name: 'kill-nats-server',
  description: 'a server of the 3-server NATS cluster is SIGKILLed and restarted 5 s later; then the leader of the source stream',
  nodes: 3,
  natsServers: 3,
  leaseTtlMs: 4_000,
  faults: ({ rng, durationMs }) => [
    { atMs: rng.between(0.15, 0.3) * durationMs, fault: { kind: 'kill-nats-server', server: rng.int(3), downMs: 5_000 } },
    { atMs: rng.between(0.55, 0.65) * durationMs, fault: { kind: 'kill-nats-leader', downMs: 3_000 } },
  ],
});
