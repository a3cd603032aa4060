/**
 * A checkpoint store that does not answer while a partition needs a key's entry (keyed-actors
 * invariant 23): the partition waits for it, keeps the actors it holds, and goes on once the
 * store answers again; it does not fail and restart.
 */
import test from 'ava';
import { InMemoryCheckpointStore, silentLogger, startNode, WardenError, definePipeline, type CheckpointStore } from '../../lib/index.js';
import { counter } from '../helpers/counter.js';

/** An embedded store whose reads of actor entries fail (the server does not answer) while `down` is set. */
class ReadOutage extends InMemoryCheckpointStore {
  down = false;
  reads = 0;
  private refuse(): Promise<never> {
    this.reads++;
    return Promise.reject(new WardenError('TRANSPORT_CLOSED', 'checkpoint store does not answer'));
  }
  override readActor(...args: Parameters<CheckpointStore['readActor']>): ReturnType<CheckpointStore['readActor']> {
    return this.down ? this.refuse() : super.readActor(...args);
  }
  override readActorsOf(...args: Parameters<NonNullable<CheckpointStore['readActorsOf']>>): ReturnType<NonNullable<CheckpointStore['readActorsOf']>> {
    return this.down ? this.refuse() : super.readActorsOf(...args);
  }
  override write(...args: Parameters<CheckpointStore['write']>): ReturnType<CheckpointStore['write']> {
    return this.down ? this.refuse() : super.write(...args);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('a key whose entry cannot be read while the store is down: the partition waits, keeps its actors, and goes on when the store answers', async (t) => {
  const store = new ReadOutage();
  const node = await startNode({ pipeline: definePipeline({ name: 'outage-read', stages: [{ actor: counter, checkpoint: { everyEvents: 1_000, intervalMs: 30_000 } }] }), checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'old', type: 'add', payload: { amount: 5 } });
  await node.whenCaughtUp();
  store.down = true;
  await node.ingest({ key: 'new', type: 'add', payload: { amount: 1 } });
  await node.ingest({ key: 'old', type: 'add', payload: { amount: 2 } });
  await sleep(300);
  const [waiting] = await node.status();
  t.true(store.reads >= 2, `the entry was asked for again (${store.reads} reads)`);
  t.like(waiting, { running: true, restarts: 0, lag: 2 }, 'waiting on the new key, not failed');
  t.like(node.inspect('counter', 'old')?.context, { total: 5 }, 'the actor it held is still in memory');
  store.down = false;
  await node.whenCaughtUp({ timeoutMs: 5_000 });
  t.like(node.inspect('counter', 'old')?.context, { total: 7 });
  t.like(node.inspect('counter', 'new')?.context, { total: 1 });
  t.is((await node.status())[0]!.restarts, 0);
});

test('a graceful stop while a partition waits for the store ends the wait: the worker stops (not fails) at once, the input left in the log', async (t) => {
  const store = new ReadOutage();
  const events: string[] = [];
  const node = await startNode({
    pipeline: definePipeline({ name: 'outage-stop', stages: [{ actor: counter }] }), checkpointStore: store, logger: silentLogger,
    onEvent: (e) => void events.push(e.type),
  });
  await node.ingest({ key: 'old', type: 'add', payload: { amount: 5 } });
  await node.whenCaughtUp();
  store.down = true;
  await node.ingest({ key: 'new', type: 'add', payload: { amount: 1 } });
  await sleep(100);
  const t0 = performance.now();
  await node.stop();
  t.true(performance.now() - t0 < 5_000, `stop took ${Math.round(performance.now() - t0)} ms (the worker's shutdown bound is 10 s)`);
  t.true(events.includes('stopped'), events.join(','));
  t.false(events.includes('failed'), events.join(','));
  t.is(node.inspect('counter', 'new'), undefined, 'the input was not applied');
});
