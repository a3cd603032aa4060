/**
 * The demo scenario on the real servers (JetStream on 127.0.0.1:4222, Redis on 6379): what runs
 * on the embedded default runs the same on NATS and Redis, kills and actor crash included.
 */
import test from 'ava';
import { openBackends } from '../../lib/cli/backends.js';
import { runClickstream } from '../../scenarios/clickstream/run.js';

test.serial('clickstream with two operator kills and an actor crash on JetStream + Redis loses and duplicates nothing', async (t) => {
  const backends = await openBackends({ nats: 'nats://127.0.0.1:4222', redis: 'redis://127.0.0.1:6379' });
  t.teardown(() => backends.close());
  const name = `it-clicks-${Math.random().toString(36).slice(2, 8)}`;
  const r = await runClickstream({
    events: 2000,
    name,
    seed: 3,
    cleanup: true,
    ...(backends.transport ? { transport: backends.transport } : {}),
    ...(backends.checkpointStore ? { checkpointStore: backends.checkpointStore } : {}),
  });
  t.is(r.sent, 2000);
  t.is(r.applied, 2000);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.outOfOrder, 0);
  t.is(r.deadLettered, r.badInputs);
  t.is(r.actorCrashes, 1);
  t.true(r.workerRestarts >= 6);
  // cleanup: the run's streams are gone from the shared server
  await t.throwsAsync(backends.transport!.streamInfo(`${name}-parse`));
});
