/**
 * The cluster on a replicated log, as in production: a 3-server NATS JetStream cluster of the
 * test's own (streams and the lease bucket with 3 replicas; chaos/nats-cluster.ts) and the shared
 * Redis, with node processes. A NATS server dies and comes back under load: nothing is lost or
 * applied twice.
 */
import test from 'ava';
import { startNatsCluster } from '../../chaos/nats-cluster.js';
import { ClusterRig } from '../helpers/cluster-procs.js';

const expectedCounts = (count: number, keys = 12): number[] => Array.from({ length: keys }, (_, k) => Math.floor(count / keys) + (k < count % keys ? 1 : 0));

test.serial('one server of a 3-server NATS cluster killed and restarted under load: nothing is lost or applied twice', async (t) => {
  const nats = await startNatsCluster({ size: 3 });
  t.teardown(() => nats.destroy());
  const rig = await ClusterRig.create(t, { ttlMs: 3_000, nats: nats.urls.join(','), replicas: 3 });
  await Promise.all(['n1', 'n2', 'n3'].map((id) => rig.start(id, ['--replicas', '3'])));
  await rig.waitBalanced(['n1', 'n2', 'n3'], 1_000, 90_000);
  const victim = nats.servers[1]!;
  await rig.load(600, {
    perSec: 100,
    during: async (i) => {
      if (i === 200) await victim.kill();
      if (i === 400) await victim.restart();
    },
  });
  const r = await rig.waitApplied(600, 12, 120_000);
  t.deepEqual(r.counts, expectedCounts(600), 'every input applied once');
  t.is(r.sinkOutputs, 600, 'every output reached the sink once');
  t.is((await rig.staleOutputs()).stale, 0);
});
