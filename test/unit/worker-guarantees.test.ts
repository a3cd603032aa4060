/**
 * The partition worker's guarantees, checkpoint policy, held outputs, passivation and log-gap
 * reporting, driven directly on a `SimulatedClock`. Titles cite lib/actor/partition-worker.ts
 * ("worker invariant N").
 */
import test from 'ava';
import { startNode, silentLogger, WardenError, type CheckpointWrite, type WriteResult } from '../../lib/index.js';
import { ConfigError, ValidationError } from '../../lib/core/errors.js';
import { counter, tally } from '../helpers/counter.js';
import { ctxOf, FaultyTransport, ofType, Rig, settle, SpyStore } from '../helpers/worker-rig.js';
import { definePipeline } from '../../lib/index.js';

// ---------------------------------------------------------------------------------------------
// Guarantees (worker invariant 8)
// ---------------------------------------------------------------------------------------------

test('worker invariant 8, exactly-once: outputs carry deterministic IDs and an unacknowledged one rides in the cut', async (t) => {
  const rig = await Rig.create('eo', { checkpoint: { everyEvents: 2, intervalMs: 1000 } });
  const transport = new FaultyTransport(rig.transport, (s) => s.startsWith('eo.tally.'));
  const { worker } = rig.worker({ transport });
  t.teardown(() => worker.kill());
  await worker.start();
  transport.hold = true;
  await rig.add('a', 1);
  await rig.add('a', 2);
  await settle();
  const meta = await rig.store.readMeta(rig.scope);
  t.is(meta?.seq, 2);
  t.deepEqual(meta?.outbox.map((e) => e.msgId), ['counter:a:1:0', 'counter:a:2:0']);
  t.deepEqual(transport.hung, ['counter:a:1:0', 'counter:a:2:0']);
});

test('worker invariant 8, at-least-once: outputs go without IDs and a cut waits until they are acknowledged', async (t) => {
  const rig = await Rig.create('alo', { checkpoint: { everyEvents: 2, intervalMs: 1000 }, stage: { guarantee: 'at-least-once' } });
  const transport = new FaultyTransport(rig.transport, (s) => s.startsWith('alo.tally.'));
  const { worker, events } = rig.worker({ transport });
  t.teardown(() => worker.kill());
  await worker.start();
  transport.reject = true;
  await rig.add('a', 1);
  await rig.add('a', 2);
  await settle();
  // (Once a publish has failed, the outputs after it wait behind it: outbox invariant 2.)
  t.true(transport.attempts.length >= 1 && transport.attempts.every((a) => a === '?'), `published without a message ID: ${transport.attempts.join()}`);
  t.is(ofType(events, 'checkpoint').length, 0, 'no cut while its outputs are unacknowledged');
  t.is(await rig.store.readMeta(rig.scope), undefined, 'nothing written yet');
  t.is(worker.stats().appliedSeq, 2, 'processing goes on meanwhile');

  // Once the log takes them (the retry after a failed publish), the cut is written, without an outbox.
  transport.reject = false;
  rig.clock.advance(20);
  await settle();
  rig.clock.advance(20);
  await settle();
  const meta = await rig.store.readMeta(rig.scope);
  t.is(meta?.seq, 2);
  t.deepEqual(meta?.outbox, []);
});

test('worker invariant 8, at-most-once: the position is committed before a batch is applied; a restart skips it', async (t) => {
  const rig = await Rig.create('amo', { checkpoint: { everyEvents: 1000, intervalMs: 60_000 }, stage: { guarantee: 'at-most-once' } });
  const spy = new SpyStore(rig.store);
  for (let i = 1; i <= 3; i++) await rig.add('a', i);
  const seen: number[] = [];
  const { worker } = rig.worker({
    store: spy,
    failpoint: (point, info) => {
      if (point === 'after-publish') {
        seen.push(info.seq);
        if (info.seq === 2) worker.kill(); // crash in the middle of the batch
      }
    },
  });
  await worker.start();
  await settle();
  t.deepEqual(seen, [1, 2]);
  // The cut written before applying the batch already says "up to 3".
  t.deepEqual(spy.written.map((w) => w.seq), [3]);
  t.is(spy.written[0]!.actors.a, undefined, 'written before any of the batch was applied');

  const again = rig.worker();
  t.teardown(() => again.worker.kill());
  await again.worker.start();
  await rig.add('a', 4);
  await settle();
  // Inputs 1..3 were committed but their effects died with the worker: lost, never applied twice.
  t.deepEqual(ctxOf(again.worker, 'a')?.seen, [4]);
});

// ---------------------------------------------------------------------------------------------
// Checkpoint policy
// ---------------------------------------------------------------------------------------------

test('checkpoint policy: minPauseMs keeps the next cut at least that long after the previous one ended', async (t) => {
  const rig = await Rig.create('pause', { checkpoint: { everyEvents: 1, intervalMs: 10_000, minPauseMs: 500 } });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  for (let i = 1; i <= 5; i++) await rig.add('a', i);
  await settle();
  // The claim ended at t=0: nothing may start before t=500, then one cut covers all five inputs.
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), []);
  rig.clock.advance(499);
  await settle();
  t.is(ofType(events, 'checkpoint').length, 0);
  rig.clock.advance(1);
  await settle();
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), [5]);
  await rig.add('a', 6);
  await settle();
  rig.clock.advance(499);
  await settle();
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), [5]);
  rig.clock.advance(1);
  await settle();
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), [5, 6]);
});

/** A store whose writes hang while `hang` is set (a store that stopped answering). */
class HangingStore extends SpyStore {
  hang = false;
  override write(cp: CheckpointWrite): Promise<WriteResult> {
    if (this.hang && cp.seq > 0) {
      this.written.push(structuredClone(cp));
      return new Promise<WriteResult>(() => undefined);
    }
    return super.write(cp);
  }
}

test('checkpoint policy: a write slower than timeoutMs fails with TIMEOUT, the actors keep their state, and a later cut succeeds', async (t) => {
  const rig = await Rig.create('cp-timeout', { checkpoint: { everyEvents: 2, intervalMs: 1000, timeoutMs: 300 } });
  const store = new HangingStore(rig.store);
  const { worker, events } = rig.worker({ store });
  t.teardown(() => worker.kill());
  await worker.start();
  store.hang = true;
  await rig.add('a', 1);
  await rig.add('a', 2);
  await settle();
  rig.clock.advance(300);
  await settle();
  const failed = ofType(events, 'checkpoint-failed');
  t.is(failed.length, 1);
  t.regex(failed[0]!.error, /took longer than 300 ms/);
  t.is(failed[0]!.code, 'TIMEOUT', 'the event carries the failure code');
  t.like(worker.stats(), { checkpointFailures: 1, checkpointTimeouts: 1, checkpoints: 0 });
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1, 2]);

  store.hang = false;
  await rig.clock.advanceAsync(700); // the interval (t=1000) retries
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), [2]);
  const entry = await rig.entry('a');
  t.deepEqual(entry?.context.seen, [1, 2], 'the dirty actor was written by the retry');
  t.like(worker.stats(), { checkpoints: 1, lastCheckpointAtMs: rig.clock.now() });
  t.true(worker.stats().lastCheckpointBytes > 0);
});

test('checkpoint metrics: node status reports counts, duration, size and the age of the last good checkpoint', async (t) => {
  const pipeline = definePipeline({ name: 'cp-metrics', stages: [{ actor: counter, checkpoint: { everyEvents: 2, intervalMs: 50 } }] });
  const node = await startNode({ pipeline, logger: silentLogger });
  t.teardown(() => node.stop());
  for (let i = 1; i <= 4; i++) await node.ingest({ key: 'a', type: 'add', payload: { amount: i } });
  await node.whenCaughtUp();
  const [p] = await node.status();
  t.true(p!.checkpoints >= 2);
  t.is(p!.checkpointFailures, 0);
  t.true(p!.lastCheckpointAtMs > 0);
  t.true(p!.lastCheckpointBytes > 0);
  t.true(p!.checkpointAgeMs >= 0 && p!.checkpointAgeMs < 60_000);
});

// ---------------------------------------------------------------------------------------------
// Held outputs (worker invariant 10)
// ---------------------------------------------------------------------------------------------

test("worker invariant 10: with outputs 'after-checkpoint', nothing reaches the next stream before the cut that covers it", async (t) => {
  const rig = await Rig.create('held', { checkpoint: { everyEvents: 3, intervalMs: 1000 }, stage: { outputs: 'after-checkpoint' } });
  const seenAtWrite: number[] = [];
  const { worker } = rig.worker({
    failpoint: (point) => {
      if (point === 'before-checkpoint-write') void rig.messages('tally').then((m) => seenAtWrite.push(m.length));
    },
  });
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('a', 1);
  await rig.add('a', 2);
  await settle();
  t.is((await rig.messages('tally')).length, 0);
  t.is(worker.stats().held, 2);
  await rig.add('a', 3);
  await settle();
  t.deepEqual(seenAtWrite, [0]);
  const meta = await rig.store.readMeta(rig.scope);
  t.deepEqual(meta?.outbox.map((e) => e.msgId), ['counter:a:1:0', 'counter:a:2:0', 'counter:a:3:0'], 'the cut carries them');
  const out = await rig.messages('tally');
  t.deepEqual(out.map((m) => m.msgId), ['counter:a:1:0', 'counter:a:2:0', 'counter:a:3:0']);
  t.is(worker.stats().held, 0);
});

test("worker invariant 10: held outputs of a crash before the write are regenerated by the replay, once", async (t) => {
  const rig = await Rig.create('held-crash', { checkpoint: { everyEvents: 2, intervalMs: 1000 }, stage: { outputs: 'after-checkpoint' } });
  let armed = true;
  const first = rig.worker({
    failpoint: (point) => {
      if (point === 'before-checkpoint-write' && armed) {
        armed = false;
        first.worker.kill();
      }
    },
  });
  await first.worker.start();
  await rig.add('a', 1);
  await rig.add('a', 2);
  await settle();
  t.is((await rig.messages('tally')).length, 0, 'nothing escaped the crashed worker');
  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await settle();
  const out = await rig.messages('tally');
  t.deepEqual(out.map((m) => m.msgId), ['counter:a:1:0', 'counter:a:2:0']);
});

// ---------------------------------------------------------------------------------------------
// Passivation (worker invariant 11)
// ---------------------------------------------------------------------------------------------

test('worker invariant 11: an idle actor is checkpointed, dropped from memory, and comes back with its state', async (t) => {
  const rig = await Rig.create('passivate', { checkpoint: { everyEvents: 1000, intervalMs: 100 }, stage: { idleMs: 250 } });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('a', 1);
  await rig.add('b', 2);
  await settle();
  t.is(worker.stats().actors, 2);
  for (let i = 0; i < 2; i++) {
    rig.clock.advance(100);
    await settle();
  }
  await rig.add('b', 3); // at t=200: b stays active
  await settle();
  rig.clock.advance(100); // t=300: a has been idle for 300 ms, b for 100 ms
  await settle();
  t.is(worker.inspect('a'), undefined, 'a was dropped');
  t.deepEqual(ctxOf(worker, 'b')?.seen, [2, 3], 'b is still in memory');
  t.is(worker.stats().passivated, 1);
  t.deepEqual((await rig.entry('a'))?.context.seen, [1], 'its state was written before it was dropped');

  await rig.add('a', 4);
  await settle();
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1, 4], 'loaded back on its next input');
});

test('config: idleMs needs checkpoints; after-checkpoint needs a guarantee that replays', (t) => {
  t.throws(() => definePipeline({ name: 'x', stages: [{ actor: counter, idleMs: 10, checkpoint: { enabled: false } }] }), { instanceOf: ConfigError, message: /idleMs/ });
  t.throws(() => definePipeline({ name: 'x', stages: [{ actor: counter, guarantee: 'at-most-once', outputs: 'after-checkpoint' }] }), { instanceOf: ConfigError, message: /outputs/ });
  t.throws(() => definePipeline({ name: 'x', stages: [{ actor: counter, guarantee: 'exactly' as 'exactly-once' }] }), { instanceOf: ConfigError, message: /guarantee must be one of .*got "exactly"/ });
  t.throws(() => definePipeline({ name: 'x', stages: [{ actor: counter, checkpoint: { minPauseMs: -1 } }] }), { instanceOf: ConfigError, message: /minPauseMs/ });
  t.throws(() => definePipeline({ name: 'x', stages: [{ actor: counter, checkpoint: { timeoutMs: 0 } }] }), { instanceOf: ConfigError, message: /timeoutMs/ });
});

test('config: a duplicate window shorter than the worst-case replay of an exactly-once stage is refused at start', async (t) => {
  const pipeline = definePipeline({ name: 'dupwin', stages: [{ actor: counter, to: 'tally', checkpoint: { intervalMs: 5_000, timeoutMs: 5_000 } }, { actor: tally }] });
  const err = await t.throwsAsync(startNode({ pipeline, logger: silentLogger, duplicateWindowMs: 30_000, maxRecoveryMs: 30_000 }), { instanceOf: ConfigError });
  t.regex(err.message, /duplicateWindowMs.*30000 ms is shorter than the worst-case replay of stage counter .*= 40000 ms/);
  // at-least-once sends copies by design: no window is needed.
  const alo = definePipeline({ name: 'dupwin2', stages: [{ actor: counter, to: 'tally', guarantee: 'at-least-once' }, { actor: tally, guarantee: 'at-least-once' }] });
  const node = await startNode({ pipeline: alo, logger: silentLogger, duplicateWindowMs: 1_000 });
  await node.stop();
});

test("ingest refuses warden's and xstate's reserved event types", async (t) => {
  const node = await startNode({ pipeline: definePipeline({ name: 'reserved', stages: [{ actor: counter }] }), logger: silentLogger });
  t.teardown(() => node.stop());
  await t.throwsAsync(node.ingest({ key: 'a', type: 'warden.timer', payload: { timer: '1.0' } }), { instanceOf: ValidationError, message: /input\.type .*reserved/ });
  await t.throwsAsync(node.ingest({ key: 'a', type: 'xstate.init' }), { instanceOf: ValidationError, message: /input\.type .*reserved/ });
});

// ---------------------------------------------------------------------------------------------
// Log retention
// ---------------------------------------------------------------------------------------------

test('a checkpoint older than the log retention is reported (log-truncated, LOG_TRUNCATED), not silently skipped', async (t) => {
  // Retention keeps one message: what the worker has read is gone, which is fine, until it stops.
  const rig = await Rig.create('trunc', { checkpoint: { everyEvents: 2, intervalMs: 1000 }, counterStream: { maxMsgs: 1 } });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('a', 1);
  await settle();
  await rig.add('a', 2);
  await settle();
  await first.worker.stop(); // checkpoint at seq 2
  for (let i = 3; i <= 6; i++) await rig.add('a', i); // retention removes 3..5 before anyone applied them

  const second = rig.worker();
  const err = await t.throwsAsync(second.worker.start(), { instanceOf: WardenError });
  t.is(err.code, 'LOG_TRUNCATED');
  t.regex(err.message, /checkpoint of counter\/0 is at seq 2 but stream .* now starts at seq 6: retention removed inputs 3\.\.5/);
  t.like(ofType(second.events, 'log-truncated')[0], { checkpointSeq: 2, firstSeq: 6 });

  // A stage that accepts the loss reports it and goes on.
  const skipping = Rig.sharing(rig, 'trunc', { checkpoint: { everyEvents: 2, intervalMs: 1000, onTruncatedLog: 'skip' } });
  const third = skipping.worker();
  t.teardown(() => third.worker.kill());
  await third.worker.start();
  await settle();
  t.is(ofType(third.events, 'log-truncated').length, 1);
  t.deepEqual(ctxOf(third.worker, 'a')?.seen, [1, 2, 6]);
});

test('two pipelines with a stage of the same name share one store without sharing checkpoints', async (t) => {
  const { InMemoryCheckpointStore } = await import('../../lib/index.js');
  const store = new InMemoryCheckpointStore();
  const nodes = await Promise.all(
    ['left', 'right'].map((name) => startNode({ pipeline: definePipeline({ name, stages: [{ actor: counter, checkpoint: { everyEvents: 1, intervalMs: 50 } }] }), checkpointStore: store, logger: silentLogger })),
  );
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  for (const [i, node] of nodes.entries()) {
    for (let n = 1; n <= 3 + i; n++) await node.ingest({ key: 'k', type: 'add', payload: { amount: n } });
  }
  await Promise.all(nodes.map((n) => n.whenCaughtUp()));
  const [left, right] = nodes.map((n) => n.pipeline.stage('counter').scopeOf(0));
  t.deepEqual([left!.operator, right!.operator], ['left.counter', 'right.counter']);
  t.like(await store.readMeta(left!), { seq: 3, epoch: 1 });
  t.like(await store.readMeta(right!), { seq: 4, epoch: 1 });
  t.deepEqual(nodes.map((n) => (n.inspect('counter', 'k')?.context as { seen: number[] }).seen), [[1, 2, 3], [1, 2, 3, 4]]);
});
