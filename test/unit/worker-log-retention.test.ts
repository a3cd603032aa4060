/**
 * The log must hold every input after the checkpoint (worker invariant 14, kept in
 * lib/worker/claim.ts): how a partition worker judges that at start and while running, against a
 * stage stream shared by every partition of the stage, recreated under it, or trimmed by retention
 * faster than the worker reads.
 *
 * A loss is never silent: it is reported (`log-truncated`) and stops the partition with
 * `LOG_TRUNCATED`, unless the stage accepts it (`checkpoint.onTruncatedLog: 'skip'`); and what is
 * no loss (other partitions' messages trimmed) is not reported as one.
 *
 * Everything runs on the rig's `SimulatedClock` (test/helpers/worker-rig.ts).
 */
import test from 'ava';
import { rareCuts } from '../helpers/interleaving.js';
import { ctxOf, ofType, Rig, settle, SpyStore } from '../helpers/worker-rig.js';

// ---------------------------------------------------------------------------------------------
// At start
// ---------------------------------------------------------------------------------------------

/*
 * A stage's stream holds every partition (subjects `<pipeline>.<stage>.<p>`) and retention is
 * stream-wide, so the stream's first sequence passing a partition's checkpoint proves nothing for
 * that partition: here partition 1's traffic is trimmed while idle partition 0 has nothing stored
 * after its checkpoint. The check is made against the partition's own subject, so partition 0
 * starts without a report; judged by the stream alone it could never start again (or, with
 * 'skip', would log a loss that did not happen).
 */
test("worker invariant 14: retention of other partitions' messages is no loss: an idle partition whose inputs are all kept starts without a report", async (t) => {
  const rig = await Rig.create('trunc-fp', { checkpoint: { everyEvents: 1, intervalMs: 1000 }, counterStream: { maxMsgs: 3 } });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('a', 1); // seq 1, partition 0
  await settle();
  await first.worker.stop(); // cut at seq 1
  // Partition 1 of the same stage gets traffic: seqs 2..6; retention keeps 4..6.
  for (let i = 0; i < 5; i++) {
    await rig.transport.publish('trunc-fp.counter.1', new TextEncoder().encode('{}'), { msgId: `p1-${i}` });
  }
  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await t.notThrowsAsync(second.worker.start(), 'partition 0 lost nothing');
  t.is(ofType(second.events, 'log-truncated').length, 0);
});

/*
 * A log that ends before the checkpoint (the stream was deleted and recreated, restored from an
 * older backup, or the worker points at the wrong stream) cannot be read from the checkpoint on:
 * the reader would start at checkpoint seq + 1 and skip every new input until the stream's
 * sequence caught up. The start reports it instead (it fails with LOG_TRUNCATED), or, at the
 * least, the new input is applied.
 */
test('worker invariant 14: a log that ends before the checkpoint (stream recreated) is reported; new inputs are never skipped silently', async (t) => {
  const rig = await Rig.create('trunc-ahead', { checkpoint: rareCuts });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('a', 1);
  await rig.add('a', 2);
  await settle();
  await first.worker.stop(); // cut at seq 2
  const stream = rig.pipeline.stage('counter').stream;
  await rig.transport.deleteStream(stream);
  await rig.transport.ensureStream({ name: stream, subjects: ['trunc-ahead.counter.*'] });
  await rig.add('a', 3); // seq 1 of the new stream

  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  const err: unknown = await second.worker.start().then(() => undefined, (e: unknown) => e);
  await settle();
  const reported = err !== undefined || ofType(second.events, 'log-truncated').length > 0;
  t.true(reported || (ctxOf(second.worker, 'a')?.seen ?? []).includes(3), 'input 3 was skipped without a report');
});

// ---------------------------------------------------------------------------------------------
// While running
// ---------------------------------------------------------------------------------------------

/*
 * A running worker can fall behind retention too: a slow store, a restart backoff or a stuck load
 * holds it while the stream is trimmed past what it has read. The reader then delivers the next
 * input it still has, so the gap must be noticed where the worker reads: it reports it and stops
 * before applying anything past the gap (by default), naming the sequences that may be lost.
 */
test('worker invariant 14: a running worker that falls behind retention reports it and stops (LOG_TRUNCATED) before applying past the gap', async (t) => {
  const rig = await Rig.create('trunc-live', { checkpoint: rareCuts, counterStream: { maxMsgs: 2 } });
  const store = new SpyStore(rig.store);
  const { worker, events } = rig.worker({ store });
  t.teardown(() => worker.kill());
  await worker.start();
  store.holdReads = true;
  await rig.add('a', 1);
  await settle();
  t.is(store.heldReads, 1); // stuck loading 'a'
  for (let i = 2; i <= 5; i++) await rig.add('a', i); // retention removes 1..3
  store.releaseReads();
  await settle();
  t.like(ofType(events, 'log-truncated')[0], { checkpointSeq: 1, firstSeq: 4 });
  const err = await t.throwsAsync(worker.done());
  t.like(err, { code: 'LOG_TRUNCATED' });
  t.regex(err.message, /inputs of the partition among 2\.\.3 may have been removed before they were read/);
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1], 'nothing past the gap was applied');
});

/* The same gap under onTruncatedLog 'skip': the loss is accepted, reported once (not at every tick), and the partition goes on. */
test("worker invariant 14: with onTruncatedLog 'skip' a running worker reports the gap once and goes on", async (t) => {
  const rig = await Rig.create('trunc-skip', { checkpoint: { ...rareCuts, onTruncatedLog: 'skip' }, counterStream: { maxMsgs: 2 } });
  const store = new SpyStore(rig.store);
  const { worker, events } = rig.worker({ store });
  t.teardown(() => worker.kill());
  await worker.start();
  store.holdReads = true;
  await rig.add('a', 1);
  await settle();
  for (let i = 2; i <= 5; i++) await rig.add('a', i);
  store.releaseReads();
  await settle();
  await rig.clock.advanceAsync(60_000);
  await settle();
  t.is(ofType(events, 'log-truncated').length, 1);
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1, 4, 5]);
  t.true(worker.running);
});
