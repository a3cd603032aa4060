/**
 * Worker invariant 20 (lib/worker/batch.ts): the checkpoint entries of the keys a
 * read batch names are read together, not one awaited round trip per key; what is applied is
 * unchanged.
 */
import test from 'ava';
import { definePipeline, InMemoryCheckpointStore, InMemoryTransport, silentLogger, startNode, type CheckpointStore } from '../../lib/index.js';
import { encodeEnvelope } from '../../lib/core/envelope.js';
import { counter } from '../helpers/counter.js';

/**
 * A store whose entry reads take `delayMs` each, counting how many are in flight at once; with
 * `batched` false it has no `readActorsOf` (a store that reads one key at a time).
 */
class SlowReads extends InMemoryCheckpointStore {
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  reads = 0;
  /** Keys asked of each `readActorsOf` request. */
  batches: number[] = [];

  constructor(batched: boolean) {
    super();
    if (!batched) Object.defineProperty(this, 'readActorsOf', { value: undefined });
  }

  override async readActor(...args: Parameters<CheckpointStore['readActor']>): ReturnType<CheckpointStore['readActor']> {
    this.reads++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      return await super.readActor(...args);
    } finally {
      this.inFlight--;
    }
  }

  override async readActorsOf(...args: Parameters<NonNullable<CheckpointStore['readActorsOf']>>): ReturnType<NonNullable<CheckpointStore['readActorsOf']>> {
    this.batches.push(args[1].length);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    return super.readActorsOf(...args);
  }
}

/** A first node writes one input per key and a checkpoint, then stops; 60 more inputs wait in the log. */
async function sixtyKeysWithEntries(checkpointStore: SlowReads, name: string): Promise<{ transport: InMemoryTransport; pipeline: ReturnType<typeof definePipeline> }> {
  const transport = new InMemoryTransport();
  const pipeline = definePipeline({ name, stages: [{ actor: counter, partitions: 1, checkpoint: { everyEvents: 1000, intervalMs: 50 } }] });
  const first = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  for (let k = 0; k < 60; k++) await first.ingest({ key: `k${k}`, type: 'add', payload: { amount: 1 } });
  await first.whenCaughtUp();
  await first.stop();
  for (let k = 0; k < 60; k++) await transport.publish(`${name}.counter.0`, encodeEnvelope({ id: `second-${k}`, key: `k${k}`, type: 'add', payload: { amount: 2 }, headers: {}, ts: 0 }), { msgId: `second-${k}` });
  checkpointStore.delayMs = 20;
  checkpointStore.maxInFlight = 0;
  checkpointStore.reads = 0;
  checkpointStore.batches = [];
  return { transport, pipeline };
}

test('a batch of inputs for 60 keys not in memory reads their entries in one request of a store that reads many keys at once', async (t) => {
  const checkpointStore = new SlowReads(true);
  const { transport, pipeline } = await sixtyKeysWithEntries(checkpointStore, 'batch-load-many');
  const second = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  t.teardown(() => second.stop());
  await second.whenCaughtUp({ timeoutMs: 20_000 });
  t.deepEqual(checkpointStore.batches, [60], 'one request naming every key of the batch');
  t.is(checkpointStore.reads, 0, 'no key read on its own');
  for (const k of [0, 17, 59]) t.like((await second.readState('counter', `k${k}`))?.context, { count: 2, total: 3 });
});

test('a corrupt entry read with its batch fails its own key only, and that key is rebuilt from the log', async (t) => {
  const checkpointStore = new SlowReads(true);
  const { transport, pipeline } = await sixtyKeysWithEntries(checkpointStore, 'batch-load-corrupt');
  checkpointStore.delayMs = 0;
  const partitions = (checkpointStore as unknown as { partitions: Map<string, { actors: Map<string, string> }> }).partitions;
  t.is(partitions.size, 1);
  const [id, partition] = [...partitions][0]!;
  const scope = { operator: id.slice(0, id.lastIndexOf('/')), partition: 0 };
  const [bad, good] = await checkpointStore.readActorsOf(scope, ['k3', 'k4']);
  t.is(good?.status, 'fulfilled');
  t.is(bad?.status, 'fulfilled');
  // Corrupt k3's entry in place: its checksum no longer matches.
  const entries = partition.actors;
  entries.set('k3', entries.get('k3')!.replace('"count":1', '"count":9'));
  const results = await checkpointStore.readActorsOf(scope, ['k3', 'k4', 'nobody']);
  t.is(results[0]?.status, 'rejected');
  t.is(((results[0] as PromiseRejectedResult).reason as { code?: string }).code, 'CHECKPOINT_CORRUPT');
  t.like(results[1], { status: 'fulfilled', value: { key: 'k4' } });
  t.deepEqual(results[2], { status: 'fulfilled', value: undefined });
  const second = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  t.teardown(() => second.stop());
  await second.whenCaughtUp({ timeoutMs: 20_000 });
  // The others load from their entries; k3 is rebuilt from the log (the stage's default onUnusableCheckpoint).
  for (const k of [0, 3, 4, 59]) t.like((await second.readState('counter', `k${k}`))?.context, { count: 2, total: 3 });
});

test('a store that reads one key at a time gets every request of a batch at once, and every input is applied', async (t) => {
  const checkpointStore = new SlowReads(false);
  const { transport, pipeline } = await sixtyKeysWithEntries(checkpointStore, 'batch-load');
  const t0 = performance.now();
  const second = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  t.teardown(() => second.stop());
  await second.whenCaughtUp({ timeoutMs: 20_000 });
  const elapsed = performance.now() - t0;
  t.true(checkpointStore.maxInFlight >= 30, `entry reads in flight at once: ${checkpointStore.maxInFlight}`);
  t.is(checkpointStore.reads, 60, 'each key read once');
  t.true(elapsed < 60 * 20, `applied in ${Math.round(elapsed)} ms, less than 60 reads one after the other (${60 * 20} ms)`);
  for (const k of [0, 17, 59]) t.like((await second.readState('counter', `k${k}`))?.context, { count: 2, total: 3 });
});
