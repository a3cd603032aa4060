/**
 * `warden worker --http`: node processes on the shared NATS and Redis serve their operations
 * endpoints, as a Prometheus server and a load balancer would read them: /metrics counts the
 * inputs each node applied and the leases it took over when the other died; /ready and /health
 * answer.
 */
import test from 'ava';
import { ClusterRig } from '../helpers/cluster-procs.js';
import { total } from '../helpers/prom-text.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('two worker processes serve /metrics, /health and /ready; when one is SIGKILLed the other counts the leases it took and is ready again', async (t) => {
  t.timeout(120_000);
  const rig = await ClusterRig.create(t, { ttlMs: 1_500 });
  const [n1, n2] = await Promise.all([rig.start('n1', ['--http', '0', '--ready-lag', '0']), rig.start('n2', ['--http', '0'])]);
  const url = (p: typeof n1): string => String(p.lines.find((l) => l.ready === true)!.http);
  t.regex(url(n1), /^http:\/\/127\.0\.0\.1:\d+$/);
  await rig.waitBalanced(['n1', 'n2']);
  await rig.load(120, { perSec: 400 });
  await rig.waitApplied(120);
  const page = async (p: typeof n1): Promise<string> => (await fetch(`${url(p)}/metrics`)).text();
  const [p1, p2] = await Promise.all([page(n1), page(n2)]);
  t.is(total(p1, 'warden_inputs_applied_total', { stage: 'counter' }) + total(p2, 'warden_inputs_applied_total', { stage: 'counter' }), 120, 'the two nodes together applied every input once');
  const held1 = total(p1, 'warden_leases_held');
  t.true(held1 > 0 && held1 + total(p2, 'warden_leases_held') === rig.partitionCount, 'every partition lease held by one of them');
  t.is((await fetch(`${url(n1)}/health`)).status, 200);
  const acquiredBefore = total(p1, 'warden_lease_acquisitions_total');

  n2.signal('SIGKILL');
  await rig.waitOwned(['n1']);
  let ready: Response | undefined;
  for (let i = 0; i < 100; i++) {
    ready = await fetch(`${url(n1)}/ready`);
    if (ready.status === 200) break;
    await sleep(100);
  }
  t.is(ready?.status, 200, 'n1 is ready once it has restored and caught up on what it took over');
  const after = await page(n1);
  t.is(total(after, 'warden_leases_held'), rig.partitionCount);
  t.true(total(after, 'warden_lease_acquisitions_total') > acquiredBefore, 'the takeover shows as lease acquisitions');
  t.is(total(after, 'warden_lag_inputs'), 0);
});
