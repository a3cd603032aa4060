/**
 * A partition worker's life around its edges, driven on a `SimulatedClock`: concurrent claims,
 * stop() during start, and what a failed worker may still do. Titles cite the invariants of
 * lib/worker/worker.ts and lib/worker/claim.ts ("worker invariant N") and the checkpoint port.
 */
import test from 'ava';
import type { CheckpointScope } from '../../lib/index.js';
import { crashOn } from '../helpers/counter.js';
import { ctxOf, ofType, Rig, settle, SpyStore } from '../helpers/worker-rig.js';

/** A store whose claims wait until `open()`. */
class GatedClaims extends SpyStore {
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  closeGate(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  open(): void {
    this.openGate?.();
    this.gate = undefined;
  }
  override async claim(scope: CheckpointScope, epoch?: number): ReturnType<SpyStore['claim']> {
    await this.gate;
    return this.inner.claim(scope, epoch);
  }
}

test('worker invariant 5: two workers started at the same moment for one partition claim different epochs; only the newer one writes', async (t) => {
  const rig = await Rig.create('claim-race', { checkpoint: { everyEvents: 1, intervalMs: 1000 } });
  const a = rig.worker();
  const b = rig.worker();
  t.teardown(() => {
    a.worker.kill();
    b.worker.kill();
  });
  await Promise.all([a.worker.start(), b.worker.start()]);
  const epochs = [a.worker.stats().epoch, b.worker.stats().epoch].sort();
  t.deepEqual(epochs, [1, 2]);
  const [older, newer] = a.worker.stats().epoch === 1 ? [a, b] : [b, a];
  await rig.add('k', 1);
  await settle();
  t.false(older.worker.running, 'the older owner is fenced at its first write');
  t.like(ofType(older.events, 'failed')[0], { error: 'checkpoint claim-race.counter/0 refused: epoch 1 is older than stored epoch 2' });
  t.true(newer.worker.running);
  t.like(await rig.store.readMeta(rig.scope), { seq: 1, epoch: 2 });
});

test('worker invariant 16: stop() while the worker is starting waits for the start, then stops it: it never runs afterwards', async (t) => {
  const rig = await Rig.create('stop-starting', { checkpoint: { everyEvents: 1, intervalMs: 1000 } });
  const store = new GatedClaims(rig.store);
  store.closeGate();
  const { worker, events } = rig.worker({ store });
  t.teardown(() => worker.kill());
  const started = worker.start();
  const stopped = worker.stop();
  await settle();
  t.deepEqual(events, [], 'still claiming');
  store.open();
  await started;
  await stopped;
  t.false(worker.running);
  t.deepEqual(events.map((e) => e.type), ['restored', 'checkpoint', 'stopped'], 'started, final cut, stopped');
  await rig.add('k', 1);
  await settle();
  t.is(ctxOf(worker, 'k'), undefined, 'nothing is applied after the stop');
  await worker.done();
});

test('worker invariant 7: a worker that failed during an actor restart backoff rebuilds nothing and dead-letters nothing afterwards', async (t) => {
  const rig = await Rig.create('fail-in-backoff', { checkpoint: { everyEvents: 1000, intervalMs: 60_000 }, stage: { maxCrashesPerInput: 1, supervision: { minBackoffMs: 1000, maxBackoffMs: 1000 } } });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  crashOn.add(41);
  await rig.add('k', 41);
  await settle();
  t.is(ofType(events, 'actor-crashed').length, 1, 'waiting out the backoff');
  worker.fail(new Error('the owner went away'));
  await rig.clock.advanceAsync(2000);
  await settle();
  t.deepEqual(ofType(events, 'actor-restarted'), []);
  t.deepEqual(ofType(events, 'dead-letter'), []);
  t.deepEqual(await rig.messages('tally'), []);
  await t.throwsAsync(worker.done(), { message: 'the owner went away' });
});

test('a worker whose reader is closed under it (its stream deleted) fails instead of spinning', async (t) => {
  const rig = await Rig.create('reader-gone');
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.transport.deleteStream(rig.pipeline.stage('counter').stream);
  const err = await t.throwsAsync(worker.done());
  t.like(err, { code: 'TRANSPORT_CLOSED' });
  t.is(ofType(events, 'failed').length, 1);
});
