/**
 * Cuts and outputs of the partition worker under adversarial interleavings: stop() while the log
 * does not acknowledge, a full outbox or held list, checkpoint writes that time out and land late,
 * passivation during a write, and an actor crash in the middle of an at-most-once batch.
 *
 * What holds throughout (worker invariants 3, 8 and 10): a cut never claims more than what is
 * applied and, by the stage's guarantee, safely published; outputs are bounded; and the position
 * each guarantee commits is the one its promise needs.
 *
 * Everything runs on the rig's `SimulatedClock` (test/helpers/worker-rig.ts).
 */
import test from 'ava';
import type { CheckpointWrite, WriteResult } from '../../lib/index.js';
import { advance, rareCuts } from '../helpers/interleaving.js';
import { ctxOf, FaultyTransport, ofType, Rig, settle, SpyStore } from '../helpers/worker-rig.js';

/** A store whose writes take `delayMs` of simulated time (a slow Redis). */
class SlowStore extends SpyStore {
  delayMs = 0;
  constructor(inner: SpyStore['inner'], private readonly rig: Rig) {
    super(inner);
  }
  override write(cp: CheckpointWrite): Promise<WriteResult> {
    if (this.delayMs === 0 || cp.seq === 0) return super.write(cp);
    this.written.push(structuredClone(cp));
    const ms = this.delayMs;
    return new Promise((resolve, reject) => {
      this.rig.clock.setTimeout(() => void this.inner.write(cp).then(resolve, reject), ms);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// stop() and the outputs the log has not acknowledged
// ---------------------------------------------------------------------------------------------

/*
 * At-least-once outputs go without message IDs and are not carried by the cut, so a cut may only
 * cover inputs whose outputs the log acknowledged. When stop()'s final cut times out waiting for
 * them, stop() goes on and closes the outbox, but the timed-out cut is never written afterwards:
 * the stored position stays before input 1, and the successor applies it again and publishes its
 * output. A cut written at that point would say "applied through seq 1" for an output that never
 * landed and never will: lost, where at-least-once promises nothing is.
 */
test('worker invariant 8, at-least-once: a final cut that timed out waiting for unacknowledged outputs is never written; the successor publishes them', async (t) => {
  const rig = await Rig.create('alo-stop', { checkpoint: { everyEvents: 1000, intervalMs: 60_000, timeoutMs: 300 }, stage: { guarantee: 'at-least-once' } });
  const transport = new FaultyTransport(rig.transport, (s) => s.startsWith('alo-stop.tally.'));
  const first = rig.worker({ transport });
  await first.worker.start();
  transport.reject = true;
  await rig.add('a', 1);
  await settle();
  const stopping = first.worker.stop();
  await advance(rig, 300, 50);
  await stopping;
  t.is(ofType(first.events, 'checkpoint-failed').length, 1, 'the final cut timed out');
  await settle();
  transport.reject = false;

  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await settle();
  const cutSeq = (await rig.store.readMeta(rig.scope))?.seq;
  await advance(rig, 1000);
  // At-least-once: the output of input 1 reaches the next stream, at least once.
  const outputs = (await rig.messages('tally')).length;
  t.true(outputs >= 1, `output lost: a cut at seq ${cutSeq} covers input 1 although its output was never acknowledged`);
});

/*
 * With the outbox full, the run loop waits for the log to acknowledge before it reads on. When
 * the next stream is down, that wait lasts as long as the outage; stop() must not: it wakes the
 * loop, finishes the input in hand, and writes a final cut that carries the unacknowledged
 * outputs (exactly-once: under their deterministic IDs), so the successor republishes them.
 */
test('worker invariant 3: stop() returns while the outbox is full and the log does not acknowledge; the final cut carries the outbox', async (t) => {
  const rig = await Rig.create('stop-full', { checkpoint: rareCuts });
  const transport = new FaultyTransport(rig.transport, (s) => s.startsWith('stop-full.tally.'));
  const { worker } = rig.worker({ transport, maxOutboxSize: 2 });
  t.teardown(() => worker.kill());
  await worker.start();
  transport.hold = true;
  for (let i = 1; i <= 3; i++) await rig.add('a', i);
  await settle();
  let stopped = false;
  void worker.stop().then(() => (stopped = true));
  await advance(rig, 30_000, 1000);
  t.true(stopped, 'stop() returned');
  t.deepEqual((await rig.store.readMeta(rig.scope))?.outbox.map((e) => e.msgId), ['counter:a:1:0', 'counter:a:2:0']);
});

/*
 * With outputs 'after-checkpoint', outputs are held until a cut covering them is written (worker
 * invariant 10), and the held list is bounded by maxOutboxSize like the outbox: a full list forces
 * a cut. The request comes while an input is being applied, so the cut is collected right after
 * it (checkpointer invariant 1) and keeps its force; a forced cut is taken even with periodic
 * checkpoints off (checkpointer invariant 5). Otherwise nothing would ever be published while the
 * worker runs, and the list would grow without bound.
 */
test("worker invariant 10: with outputs 'after-checkpoint' and periodic cuts off, a full held list forces a cut: held stays bounded and outputs are published", async (t) => {
  const rig = await Rig.create('held-full', { checkpoint: { enabled: false }, stage: { outputs: 'after-checkpoint' } });
  const { worker } = rig.worker({ maxOutboxSize: 2 });
  t.teardown(() => worker.kill());
  await worker.start();
  for (let i = 1; i <= 5; i++) await rig.add('a', i);
  await advance(rig, 5000);
  t.is(worker.stats().appliedSeq, 5);
  t.true(worker.stats().held < 2, `held grew to ${worker.stats().held} past maxOutboxSize 2`);
  t.true((await rig.messages('tally')).length >= 4, 'the held outputs were published');
});

// ---------------------------------------------------------------------------------------------
// Slow and failing checkpoint writes
// ---------------------------------------------------------------------------------------------

/*
 * An idle actor is dropped from memory only when a written cut holds its latest state (worker
 * invariant 11). A cut that timed out may still land later, but the worker cannot know it did:
 * it treats the cut as failed (checkpointer invariant 4), keeps the actor dirty and in memory,
 * and passivates it only after a cut it saw written. The state then comes back from the store.
 */
test('worker invariant 11: passivation never drops an actor while a cut is in flight; a timed-out write that lands late keeps it dirty', async (t) => {
  const rig = await Rig.create('passive-race', { checkpoint: { everyEvents: 1000, intervalMs: 100, timeoutMs: 150 }, stage: { idleMs: 100 } });
  const store = new SlowStore(rig.store, rig);
  const { worker, events } = rig.worker({ store });
  t.teardown(() => worker.kill());
  await worker.start();
  store.delayMs = 400; // longer than timeoutMs: every cut times out, then lands
  await rig.add('a', 1);
  await settle();
  await advance(rig, 1000, 50);
  t.true(ofType(events, 'checkpoint-failed').length > 0);
  t.is(worker.stats().passivated, 0, 'a key whose cut the worker saw fail is never dropped');
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1]);
  store.delayMs = 0;
  await advance(rig, 500, 50);
  t.is(worker.stats().passivated, 1);
  t.deepEqual((await rig.entry('a'))?.context.seen, [1]);
  await rig.add('a', 2);
  await settle();
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1, 2]);
});

/*
 * A store slower than timeoutMs fails every cut, and minPauseMs (longer than intervalMs here)
 * spaces the attempts. Neither starves the partition of checkpoints: attempts start at least
 * minPauseMs apart, and once the store answers in time a cut covering every applied input lands.
 */
test('checkpointer invariants 3 and 4: with minPauseMs longer than intervalMs and writes that time out, cuts start minPauseMs apart and one lands once the store answers', async (t) => {
  const rig = await Rig.create('pause', { checkpoint: { everyEvents: 1, intervalMs: 100, minPauseMs: 700, timeoutMs: 200 } });
  const store = new SlowStore(rig.store, rig);
  const { worker, events } = rig.worker({ store });
  t.teardown(() => worker.kill());
  await worker.start();
  store.delayMs = 300;
  for (let i = 1; i <= 3; i++) await rig.add('a', i);
  await advance(rig, 3000, 50);
  const failed = ofType(events, 'checkpoint-failed').length;
  t.true(failed >= 2);
  // Cuts start at least minPauseMs apart.
  const starts = store.written.filter((w) => w.seq > 0).length;
  t.true(starts <= Math.ceil(3000 / 700) + 1);
  store.delayMs = 0;
  await advance(rig, 2000, 50);
  t.is(worker.stats().checkpointSeq, 3);
  t.deepEqual((await rig.entry('a'))?.context.seen, [1, 2, 3]);
});

// ---------------------------------------------------------------------------------------------
// At-most-once batches
// ---------------------------------------------------------------------------------------------

/*
 * At-most-once writes a cut labelled with the batch's last sequence before applying the batch,
 * but labels the actor entries in it with the applied position (worker invariant 8, replay
 * invariant 1). When an actor then crashes on a later input of the batch, its rebuild replays
 * its inputs after the entry, including the earlier ones of the same batch, whose outputs were
 * already published. Entries labelled with the batch's last sequence would make the rebuild skip
 * them: their effect silently rolled back while the next stage saw it.
 */
test('worker invariant 8, at-most-once: an actor crash mid-batch keeps the effect of the earlier inputs of its batch', async (t) => {
  const { crashOn } = await import('../helpers/counter.js');
  const rig = await Rig.create('amo-rollback', { checkpoint: rareCuts, stage: { guarantee: 'at-most-once' } });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('a', 1);
  await settle();
  crashOn.add(7);
  await Promise.all([rig.add('a', 2), rig.add('a', 7)]); // one batch: [2, 3]
  await settle();
  t.is(ofType(events, 'actor-crashed').length, 1);
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1, 2, 7], 'input 2 was applied and published, and the rebuild keeps it');
});
