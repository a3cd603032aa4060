/**
 * Worker invariant 20 (lib/worker/batch.ts): the checkpoint entries of the keys a
 * read batch names are read together, not one awaited round trip per key; what is applied is
 * unchanged.
 */
import test from 'ava';
import { definePipeline, InMemoryCheckpointStore, InMemoryTransport, silentLogger, startNode, type CheckpointStore } from '../../lib/index.js';
import { encodeEnvelope } from '../../lib/core/envelope.js';
import { counter } from '../helpers/counter.js';

/** A store whose entry reads take `delayMs` each, counting how many are in flight at once. */
class SlowReads extends InMemoryCheckpointStore {
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  reads = 0;
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
}

test('worker invariant 20: a batch of inputs for 60 keys not in memory reads their entries at once, and applies every input', async (t) => {
  const transport = new InMemoryTransport();
  const checkpointStore = new SlowReads();
  const pipeline = definePipeline({ name: 'batch-load', stages: [{ actor: counter, partitions: 1, checkpoint: { everyEvents: 1000, intervalMs: 50 } }] });
  // A first node writes one input per key and a checkpoint, then stops: every key has an entry.
  const first = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  for (let k = 0; k < 60; k++) await first.ingest({ key: `k${k}`, type: 'add', payload: { amount: 1 } });
  await first.whenCaughtUp();
  await first.stop();
  // Inputs wait in the log while no node runs; the next node reads them in one batch.
  for (let k = 0; k < 60; k++) await transport.publish('batch-load.counter.0', encodeEnvelope({ id: `second-${k}`, key: `k${k}`, type: 'add', payload: { amount: 2 }, headers: {}, ts: 0 }), { msgId: `second-${k}` });
  checkpointStore.delayMs = 20;
  checkpointStore.maxInFlight = 0;
  checkpointStore.reads = 0;
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
