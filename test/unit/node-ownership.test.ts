/**
 * Who owns a partition, seen from nodes: two nodes of one pipeline at once, a node whose tree gave
 * up, and what "caught up" means with held outputs. Embedded runtime, real clock. Titles cite
 * lib/pipeline/node.ts ("node invariant N") and lib/pipeline/actor-group.ts ("partition invariant N").
 */
import test from 'ava';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  WardenError,
  definePipeline,
  silentLogger,
  startNode,
  type CheckpointScope,
  type CheckpointStore,
  type NodeEvent,
} from '../../lib/index.js';
import { counter, tally } from '../helpers/counter.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('partition invariant 2: two nodes of one pipeline at once do not fight: the fenced partitions stay down, the newer node owns them all, nothing is lost or doubled', async (t) => {
  const transport = new InMemoryTransport();
  const checkpointStore = new InMemoryCheckpointStore();
  const pipeline = definePipeline({ name: 'overlap', stages: [{ actor: counter, partitions: 4, checkpoint: { everyEvents: 20, intervalMs: 200 } }] });
  const eventsA: NodeEvent[] = [];
  const eventsB: NodeEvent[] = [];
  const a = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger, onEvent: (e) => eventsA.push(e) });
  t.teardown(() => a.stop());
  const totals = new Map<string, number>();
  let sent = 0;
  const send = async (): Promise<void> => {
    const key = `k${sent % 8}`;
    const amount = 1 + (sent % 5);
    totals.set(key, (totals.get(key) ?? 0) + amount);
    sent++;
    await a.ingest({ key, type: 'add', payload: { amount }, id: `in-${sent}` });
  };
  for (let i = 0; i < 30; i++) await send();
  const b = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger, onEvent: (e) => eventsB.push(e) });
  t.teardown(() => b.stop());
  for (let i = 0; i < 60; i++) {
    await send();
    await sleep(10);
  }
  await b.whenCaughtUp({ timeoutMs: 20_000 });
  await sleep(600); // every partition of A has met a refused write by now

  const statusA = await a.status();
  t.true(statusA.every((p) => !p.running && p.down?.code === 'CHECKPOINT_FENCED'), JSON.stringify(statusA.map((p) => p.down)));
  t.is(eventsA.filter((e) => e.type === 'child-restarting').length, 0, 'a fenced partition is not restarted');
  t.is(eventsA.filter((e) => e.type === 'partition-down').length, 4);
  t.is(eventsB.filter((e) => e.type === 'child-restarting' || e.type === 'escalated').length, 0);
  t.true((await b.status()).every((p) => p.running && p.lag === 0));
  const aDone = await Promise.race([a.done().then(() => 'resolved', () => 'rejected'), sleep(50).then(() => 'pending')]);
  t.is(aDone, 'pending', 'node A lives on with its partitions down; its tree did not give up');
  for (const [key, total] of totals) t.like(b.inspect('counter', key)?.context, { total }, key);
  t.is([...totals.keys()].reduce((n, key) => n + ((b.inspect('counter', key)?.context as { count: number }).count), 0), sent, 'every input applied once');
});

/** A store whose claims time out once it is `down` (an outage at every restart). */
class DownStore extends InMemoryCheckpointStore {
  down = false;
  override claim(scope: CheckpointScope, epoch?: number): ReturnType<CheckpointStore['claim']> {
    if (this.down) return Promise.reject(new WardenError('TIMEOUT', `claim of ${scope.operator} timed out`));
    return super.claim(scope, epoch);
  }
}

test('node invariant 3: when the tree gives up, done() rejects with the reason (and onFatal is called)', async (t) => {
  const pipeline = definePipeline({ name: 'doomed', stages: [{ actor: counter }] });
  const fatal: Error[] = [];
  const store = new DownStore();
  const node = await startNode({ pipeline, checkpointStore: store, logger: silentLogger, supervision: { intensity: 2, periodMs: 60_000, backoff: { minBackoffMs: 1, maxBackoffMs: 2 } }, onFatal: (err) => fatal.push(err) });
  t.teardown(() => node.stop());
  store.down = true;
  node.kill('counter'); // every restart now fails to claim
  const err = await t.throwsAsync(node.done());
  t.regex(err.message, /gave up/);
  t.is(fatal.length, 1);
  t.is(fatal[0], err);
});

test('node invariant 3: done() resolves once the node is stopped', async (t) => {
  const node = await startNode({ pipeline: definePipeline({ name: 'calm', stages: [{ actor: counter }] }), logger: silentLogger });
  await node.stop();
  await t.notThrowsAsync(node.done());
});

test("whenCaughtUp waits for outputs held until the checkpoint ('after-checkpoint'): the next stage has them when it resolves", async (t) => {
  const pipeline = definePipeline({
    name: 'held',
    stages: [
      { actor: counter, to: 'tally', outputs: 'after-checkpoint', checkpoint: { everyEvents: 1000, intervalMs: 300 } },
      { actor: tally },
    ],
  });
  const node = await startNode({ pipeline, logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'h', type: 'add', payload: { amount: 3 } });
  await node.whenCaughtUp({ timeoutMs: 10_000 });
  t.deepEqual(node.inspect('tally', 'h')?.context, { got: [[1, 3]] });
});
