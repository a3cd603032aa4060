/**
 * `PartitionWorker` driven directly, on a `SimulatedClock` shared by the transport, the store and
 * the worker: checkpoint policy, fencing, kills, the outbox, machine versions, dedupe and corrupt
 * checkpoints. Titles cite the invariants of lib/actor/partition-worker.ts ("worker invariant N")
 * and lib/actor/replay.ts ("replay invariant N").
 */
import test from 'ava';
import {
  WardenError,
  defineActor,
  type CheckpointPolicyOptions,
  type Json,
} from '../../lib/index.js';
import { counterMachine, crashOn } from '../helpers/counter.js';
import { ctxOf, counterPipeline, dec, FaultyTransport, ofType, Rig, settle, SpyStore, type CounterCtx } from '../helpers/worker-rig.js';

// ---------------------------------------------------------------------------------------------
// Checkpoint policy
// ---------------------------------------------------------------------------------------------

test('checkpoint policy: everyEvents 5 cuts at seq 5 and 10; the last 2 inputs wait for intervalMs (seq 12)', async (t) => {
  const rig = await Rig.create('cp-policy', { checkpoint: { everyEvents: 5, intervalMs: 1000 } });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  t.is(rig.store.writes, 0, 'claiming the partition writes no checkpoint (worker invariant 5)');
  for (let i = 1; i <= 12; i++) {
    await rig.add(i % 2 === 1 ? 'a' : 'b', i);
    // A write in flight merges the requests made meanwhile (checkpointer invariant 2): let each land.
    if (i % 5 === 0) await settle();
  }
  await settle();

  t.is(worker.stats().appliedSeq, 12);
  t.is(worker.stats().applied, 12);
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), [5, 10]);
  t.is((await rig.store.readMeta(rig.scope))?.seq, 10);
  t.is(worker.stats().checkpointSeq, 10);
  t.is(rig.store.writes, 2);
  // The cut at 10 holds exactly the inputs <= 10 (worker invariant 3).
  t.deepEqual((await rig.entry('a'))?.context.seen, [1, 3, 5, 7, 9]);
  t.deepEqual((await rig.entry('b'))?.context.seen, [2, 4, 6, 8, 10]);

  await rig.clock.advanceAsync(999);
  await settle();
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), [5, 10], 'nothing before intervalMs');
  t.is((await rig.store.readMeta(rig.scope))?.seq, 10);
  t.is(rig.store.writes, 2);

  await rig.clock.advanceAsync(1);
  await settle();
  t.deepEqual(ofType(events, 'checkpoint').map((e) => e.seq), [5, 10, 12]);
  t.is((await rig.store.readMeta(rig.scope))?.seq, 12);
  t.is(worker.stats().checkpointSeq, 12);
  t.deepEqual((await rig.entry('a'))?.context.seen, [1, 3, 5, 7, 9, 11]);
  t.deepEqual((await rig.entry('b'))?.context.seen, [2, 4, 6, 8, 10, 12]);
  t.is((await rig.entry('b'))?.seq, 12);
  t.is(rig.store.writes, 3);

  // No changes: the interval timer keeps firing but writes nothing.
  await rig.clock.advanceAsync(5000);
  await settle();
  t.is(rig.store.writes, 3);
  t.is(worker.stats().checkpoints, 3);

  await worker.stop();
  t.is(ofType(events, 'stopped')[0]?.seq, 12);
});

// ---------------------------------------------------------------------------------------------
// Fencing
// ---------------------------------------------------------------------------------------------

test('worker invariant 5: a second worker on the partition fences the first; its next checkpoint is refused and it fails', async (t) => {
  const rig = await Rig.create('fence', { checkpoint: { everyEvents: 3, intervalMs: 1000 } });
  const a = rig.worker();
  t.teardown(() => a.worker.kill());
  await a.worker.start();
  t.is(ofType(a.events, 'restored')[0]?.epoch, 1);
  for (let i = 1; i <= 4; i++) await rig.add('k', i);
  await settle();
  t.deepEqual(ofType(a.events, 'checkpoint').map((e) => e.seq), [3]);
  t.like(await rig.store.readMeta(rig.scope), { seq: 3, epoch: 1 });

  const b = rig.worker();
  t.teardown(() => b.worker.kill());
  await b.worker.start();
  t.like(ofType(b.events, 'restored')[0], { seq: 3, epoch: 2 });
  t.is(b.worker.stats().epoch, 2);
  t.like(await rig.store.readMeta(rig.scope), { seq: 3, epoch: 1 }, "B's claim writes no checkpoint: A's cut stays until B's first");

  await rig.add('k', 5);
  await rig.add('k', 6);
  await settle();

  // A reached its next cut (seq 6) and was refused.
  t.deepEqual(a.events.map((e) => e.type), ['restored', 'first-input', 'checkpoint', 'checkpoint-failed', 'failed']);
  const refused = ofType(a.events, 'checkpoint-failed')[0];
  t.is(refused?.seq, 6);
  t.regex(refused?.error ?? '', /epoch 1 is older than stored epoch 2/);
  t.regex(ofType(a.events, 'failed')[0]?.error ?? '', /epoch 1 is older than stored epoch 2/);
  const err = await t.throwsAsync<WardenError>(a.worker.done(), { instanceOf: WardenError });
  t.is(err?.code, 'CHECKPOINT_FENCED');
  t.like(err?.details, { epoch: 1, storedEpoch: 2 });
  t.like(a.worker.stats(), { checkpoints: 1, checkpointFailures: 1, checkpointSeq: 3, epoch: 1 });
  t.false(a.worker.running);

  // The store holds B's cut.
  t.is(ofType(b.events, 'first-input')[0]?.seq, 4);
  t.deepEqual(ofType(b.events, 'checkpoint').map((e) => e.seq), [6]);
  t.like(await rig.store.readMeta(rig.scope), { seq: 6, epoch: 2 });
  t.like(await rig.entry('k'), { seq: 6, context: { count: 6, total: 21, seen: [1, 2, 3, 4, 5, 6] } });
  t.deepEqual((await rig.entry('k'))?.context, ctxOf(b.worker, 'k'));
  t.is(rig.store.writes, 2, 'cut 3 (A), cut 6 (B); claims are not checkpoint writes');

  // A applies nothing more; B goes on.
  await rig.add('k', 7);
  await settle();
  t.is(a.worker.stats().appliedSeq, 6);
  t.is(b.worker.stats().appliedSeq, 7);

  // An explicit epoch older than the stored one cannot even claim.
  const c = rig.worker({ epoch: 1 });
  const startErr = await t.throwsAsync<WardenError>(c.worker.start(), { instanceOf: WardenError });
  t.is(startErr?.code, 'CHECKPOINT_FENCED');
  t.like(startErr?.details, { epoch: 1, storedEpoch: 2 });
  t.deepEqual(c.events, []);
  t.like(await rig.store.readMeta(rig.scope), { seq: 6, epoch: 2 });

  await b.worker.stop();
  t.like(await rig.store.readMeta(rig.scope), { seq: 7, epoch: 2 });
});

// ---------------------------------------------------------------------------------------------
// Kill and restore
// ---------------------------------------------------------------------------------------------

test('worker invariant 7: a killed worker applies and writes nothing more; a new worker restores and replays to the same state', async (t) => {
  const inputs = Array.from({ length: 10 }, (_, i) => ({ key: i % 3 === 0 ? 'a' : 'b', amount: (i + 1) * 10 }));
  const rig = await Rig.create('kill', { checkpoint: { everyEvents: 5, intervalMs: 1000 } });
  const first = rig.worker();
  t.teardown(() => first.worker.kill());
  await first.worker.start();
  for (const { key, amount } of inputs.slice(0, 7)) await rig.add(key, amount);
  await settle();
  t.deepEqual(ofType(first.events, 'checkpoint').map((e) => e.seq), [5]);
  t.is(first.worker.stats().appliedSeq, 7);

  first.worker.kill();
  t.is(ofType(first.events, 'killed')[0]?.seq, 7);
  t.false(first.worker.running);
  const writes = rig.store.writes;
  const eventCount = first.events.length;
  for (const { key, amount } of inputs.slice(7)) await rig.add(key, amount);
  await settle();
  await rig.clock.advanceAsync(5000);
  await settle();
  t.is(rig.store.writes, writes, 'no checkpoint after the kill');
  t.is((await rig.store.readMeta(rig.scope))?.seq, 5);
  t.like(first.worker.stats(), { appliedSeq: 7, applied: 7, checkpointSeq: 5 });
  t.is(first.events.length, eventCount, 'no event after killed');
  const killed = await t.throwsAsync<WardenError>(first.worker.done(), { instanceOf: WardenError });
  t.is(killed?.code, 'KILLED', 'done() reports the abnormal exit');

  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await settle();
  t.like(ofType(second.events, 'restored')[0], { seq: 5, epoch: 2 });
  t.is(ofType(second.events, 'first-input')[0]?.seq, 6);
  t.like(second.worker.stats(), { appliedSeq: 10, applied: 5 });

  // A worker that never died, on its own log and store.
  const ref = await Rig.create('kill', { checkpoint: { everyEvents: 5, intervalMs: 1000 } });
  const clean = ref.worker();
  t.teardown(() => clean.worker.kill());
  await clean.worker.start();
  for (const { key, amount } of inputs) await ref.add(key, amount);
  await settle();
  for (const key of ['a', 'b']) t.deepEqual(ctxOf(second.worker, key), ctxOf(clean.worker, key), key);
  t.deepEqual(ctxOf(second.worker, 'a'), { count: 4, total: 10 + 40 + 70 + 100, seen: [10, 40, 70, 100] });
  t.deepEqual(ctxOf(second.worker, 'b'), { count: 6, total: 20 + 30 + 50 + 60 + 80 + 90, seen: [20, 30, 50, 60, 80, 90] });

  await second.worker.stop();
  await clean.worker.stop();
  t.deepEqual(await rig.store.readActors(rig.scope), await ref.store.readActors(rig.scope));
  // Worker invariant 4: the replayed outputs of seq 6 and 7 were dropped as duplicates.
  t.is((await rig.messages('tally')).length, 10);
});

// ---------------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------------

test('worker invariant 3: a checkpoint carries the unacknowledged outputs; a successor republishes them and the log holds each once', async (t) => {
  const rig = await Rig.create('outbox', { checkpoint: { everyEvents: 3, intervalMs: 1000 } });
  const tallySubject = rig.pipeline.stage('tally').subjectOf(0);
  const faulty = new FaultyTransport(rig.transport, (s) => s === tallySubject);
  const a = rig.worker({ transport: faulty });
  t.teardown(() => a.worker.kill());
  await a.worker.start();

  await rig.add('k', 1);
  await settle();
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:k:1:0']);

  faulty.hold = true;
  await rig.add('k', 2);
  await rig.add('k', 3);
  await settle();
  t.deepEqual(faulty.hung, ['counter:k:2:0', 'counter:k:3:0']);
  t.deepEqual(ofType(a.events, 'checkpoint').map((e) => e.seq), [3]);
  const meta = await rig.store.readMeta(rig.scope);
  t.is(meta?.seq, 3);
  t.deepEqual(meta?.outbox.map(({ subject, msgId }) => ({ subject, msgId })), [
    { subject: tallySubject, msgId: 'counter:k:2:0' },
    { subject: tallySubject, msgId: 'counter:k:3:0' },
  ]);
  t.like(JSON.parse(meta?.outbox[1]?.body ?? '{}'), { id: 'counter:k:3:0', key: 'k', type: 'added', payload: { count: 3, total: 6 } });
  t.is(a.worker.stats().outbox, 2);

  // Later outputs go through; the held ones stay in the outbox.
  faulty.hold = false;
  await rig.add('k', 4);
  await rig.add('k', 5);
  await settle();
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:k:1:0', 'counter:k:4:0', 'counter:k:5:0']);
  t.is(a.worker.stats().outbox, 2);

  a.worker.kill(); // the hung publishes are never released

  const b = rig.worker();
  t.teardown(() => b.worker.kill());
  await b.worker.start();
  t.like(ofType(b.events, 'restored')[0], { seq: 3, outbox: 2 });
  await settle();
  t.is(b.worker.stats().appliedSeq, 5);
  t.is(b.worker.stats().outbox, 0);

  const tallyMsgs = await rig.messages('tally');
  t.deepEqual(tallyMsgs.map((m) => m.msgId).sort(), ['counter:k:1:0', 'counter:k:2:0', 'counter:k:3:0', 'counter:k:4:0', 'counter:k:5:0']);
  const payloads = tallyMsgs
    .map((m) => JSON.parse(dec.decode(m.data)) as { payload: { count: number; total: number } })
    .map((e) => e.payload)
    .sort((x, y) => x.count - y.count);
  t.deepEqual(payloads, [
    { count: 1, total: 1 },
    { count: 2, total: 3 },
    { count: 3, total: 6 },
    { count: 4, total: 10 },
    { count: 5, total: 15 },
  ]);

  await b.worker.stop();
  t.deepEqual((await rig.store.readMeta(rig.scope))?.outbox, [], 'acknowledged outputs leave the outbox');
});

test('worker invariant 7: a killed worker does not retry a failed publish after the kill', async (t) => {
  const rig = await Rig.create('kill-retry', { checkpoint: { everyEvents: 1000, intervalMs: 60_000 } });
  const tallySubject = rig.pipeline.stage('tally').subjectOf(0);
  const faulty = new FaultyTransport(rig.transport, (s) => s === tallySubject);
  const { worker } = rig.worker({ transport: faulty });
  t.teardown(() => worker.kill());
  await worker.start();

  faulty.reject = true;
  await rig.add('k', 1);
  await settle();
  t.deepEqual(faulty.attempts, ['counter:k:1:0']);
  t.is(worker.stats().outbox, 1);

  worker.kill();
  faulty.reject = false; // the log is reachable again
  await rig.clock.advanceAsync(1000); // past the 10 ms retry backoff
  await settle();
  t.deepEqual(faulty.attempts, ['counter:k:1:0'], 'no publish after the kill');
  t.is((await rig.messages('tally')).length, 0);
});

test('worker invariant 3: a checkpoint asked for while a crashed actor is being rebuilt is cut after that input, and holds the actor', async (t) => {
  const rig = await Rig.create('cut-rebuild', { checkpoint: { everyEvents: 1000, intervalMs: 1000 } });
  const spy = new SpyStore(rig.store);
  const a = rig.worker({ store: spy });
  t.teardown(() => a.worker.kill());
  await a.worker.start();
  await rig.add('k', 1);
  await rig.add('k', 2);
  await settle();
  t.deepEqual(ctxOf(a.worker, 'k')?.seen, [1, 2]);

  crashOn.add(4242); // one crash; the rebuild's read of the checkpoint is slow
  spy.holdReads = true;
  await rig.add('k', 4242);
  await settle();
  t.is(ofType(a.events, 'actor-crashed').length, 1);
  t.is(spy.heldReads, 1, 'the rebuild is waiting for the store');

  const writesBefore = spy.written.length;
  await rig.clock.advanceAsync(1000); // the interval checkpoint comes due during the rebuild
  await settle();
  t.is(spy.written.length, writesBefore, 'no cut is taken while an input is being applied');

  spy.releaseReads();
  await settle();
  const cut = spy.written.at(-1)!;
  t.is(cut.seq, 3, 'the deferred cut is taken right after the input in hand');
  t.deepEqual((cut.actors.k as { context: { seen: number[] } }).context.seen, [1, 2, 4242]);
  a.worker.kill();

  const b = rig.worker();
  t.teardown(() => b.worker.kill());
  await b.worker.start();
  await rig.add('k', 5);
  await settle();
  t.deepEqual(ctxOf(b.worker, 'k')?.seen, [1, 2, 4242, 5]);
});

test('worker invariant 3: every cut at seq S holds exactly the inputs <= S, also when a store write takes a few ticks', async (t) => {
  const rig = await Rig.create('cut-latency', { checkpoint: { everyEvents: 1, intervalMs: 60_000 } });
  const spy = new SpyStore(rig.store);
  spy.writeDelayTicks = 2;
  const { worker } = rig.worker({ store: spy });
  t.teardown(() => worker.kill());
  await worker.start();
  for (let amount = 1; amount <= 20; amount++) await rig.add('k', amount);
  await settle();
  t.is(worker.stats().appliedSeq, 20);

  // The cuts as written, in order: the entry of 'k' in force after each one must be inputs 1..seq.
  let seen: number[] = [];
  const wrong: string[] = [];
  for (const cut of spy.written) {
    const snap = cut.actors.k as unknown as { context: CounterCtx } | undefined;
    if (snap) seen = snap.context.seen;
    const expected = Array.from({ length: cut.seq }, (_, i) => i + 1);
    if (JSON.stringify(seen) !== JSON.stringify(expected)) wrong.push(`cut at seq ${cut.seq} holds inputs [${seen.join(',')}]`);
  }
  t.deepEqual(wrong, []);
});

// ---------------------------------------------------------------------------------------------
// Machine versions
// ---------------------------------------------------------------------------------------------

/** A rig whose store holds key 'k' (inputs 10 and 20) checkpointed at seq 2 by machine version '1'. */
async function versionOneRig(name: string): Promise<Rig> {
  const rig = await Rig.create(name, { checkpoint: { everyEvents: 2, intervalMs: 1000 } });
  const { worker } = rig.worker();
  await worker.start();
  await rig.add('k', 10);
  await rig.add('k', 20);
  await settle();
  await worker.stop();
  return rig;
}

test("replay invariant 2: with onUnusable 'fail', a checkpoint of machine version 1 is never restored blindly by version 2 (CHECKPOINT_VERSION)", async (t) => {
  const rig = await versionOneRig('version-no-migrate');
  t.like(await rig.entry('k'), { seq: 2, machineVersion: '1', context: { total: 30 } });
  const v2 = counterPipeline('version-no-migrate', {
    actor: defineActor({ name: 'counter', machine: counterMachine, version: '2' }),
    checkpoint: { everyEvents: 1000, intervalMs: 1000, onUnusable: 'fail' },
  });
  const { worker, events } = rig.worker({ pipeline: v2 });
  t.teardown(() => worker.kill());
  await worker.start();
  t.like(ofType(events, 'restored')[0], { seq: 2 });

  await rig.add('fresh', 1); // seq 3: a key without a checkpoint entry is fine
  await rig.add('k', 5); // seq 4: the checkpointed key
  await settle();

  t.deepEqual(ctxOf(worker, 'fresh'), { count: 1, total: 1, seen: [1] });
  const failed = ofType(events, 'failed');
  t.is(failed.length, 1);
  t.is(failed[0]?.seq, 3);
  t.regex(failed[0]?.error ?? '', /counter\[k\] was written by machine version 1; this is version 2 and defines no migrate\(\)/);
  const err = await t.throwsAsync<WardenError>(worker.done(), { instanceOf: WardenError });
  t.is(err?.code, 'CHECKPOINT_VERSION');
  t.deepEqual(err?.details, { key: 'k', storedVersion: '1', version: '2' });
  t.like(worker.stats(), { appliedSeq: 3, applied: 1 });
  t.is(worker.inspect('k'), undefined, 'the old snapshot was not restored');
  t.like(await rig.entry('k'), { seq: 2, machineVersion: '1', context: { total: 30 } });
});

test('replay invariant 4: by default, a checkpoint of a version without migrate() is rebuilt from the log under the new version', async (t) => {
  const rig = await versionOneRig('version-rebuild');
  const v2 = counterPipeline('version-rebuild', { actor: defineActor({ name: 'counter', machine: counterMachine, version: '2' }) });
  const { worker, events } = rig.worker({ pipeline: v2 });
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('k', 5);
  await settle();
  t.deepEqual(ctxOf(worker, 'k'), { count: 3, total: 35, seen: [10, 20, 5] }, 'inputs 1 and 2 replayed from the log, then 3');
  t.like(ofType(events, 'checkpoint-unusable')[0], { key: 'k' });
  t.regex(ofType(events, 'checkpoint-unusable')[0]?.error ?? '', /machine version 1; this is version 2/);
  t.deepEqual(ofType(events, 'failed'), []);
  await worker.stop();
  t.like(await rig.entry('k'), { seq: 3, machineVersion: '2', context: { total: 35 } }, 'the unusable entry was overwritten');
});

test('a migrate() that throws is a crash of its key: the input is dead-lettered as crashed and the partition goes on with the other keys', async (t) => {
  const rig = await versionOneRig('version-migrate-throws');
  const v2 = defineActor({ name: 'counter', machine: counterMachine, version: '2', migrate: () => { throw new Error('cannot migrate'); } });
  const { worker, events } = rig.worker({ pipeline: counterPipeline('version-migrate-throws', { actor: v2, stage: { maxCrashesPerInput: 1 } }) });
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('k', 5);
  await rig.add('j', 7);
  await settle();
  t.true(worker.running, 'the partition did not fail');
  t.deepEqual(ofType(events, 'dead-letter').map((e) => e.reason), ['crashed']);
  t.regex(ofType(events, 'dead-letter')[0]!.error, /cannot migrate/);
  t.like(ctxOf(worker, 'j'), { total: 7 }, 'the next key was applied');
});

test('replay invariant 2: with migrate(), a version-1 snapshot is migrated and the actor continues from the result', async (t) => {
  const rig = await versionOneRig('version-migrate');
  const stored = await rig.store.readActor(rig.scope, 'k');
  const calls: Array<{ snapshot: Json; from: string }> = [];
  const v2 = defineActor({
    name: 'counter',
    machine: counterMachine,
    version: '2',
    migrate: (snapshot, from) => {
      calls.push({ snapshot: structuredClone(snapshot), from });
      const s = snapshot as unknown as { context: CounterCtx };
      return { ...s, context: { ...s.context, total: s.context.total + 100 } };
    },
  });
  const { worker, events } = rig.worker({ pipeline: counterPipeline('version-migrate', { actor: v2 }) });
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('k', 5);
  await settle();

  t.is(calls.length, 1);
  t.is(calls[0]?.from, '1');
  t.deepEqual(calls[0]?.snapshot, stored?.snapshot);
  t.deepEqual(ctxOf(worker, 'k'), { count: 3, total: 30 + 100 + 5, seen: [10, 20, 5] });
  t.deepEqual(ofType(events, 'failed'), []);

  await worker.stop();
  t.like(await rig.entry('k'), { seq: 3, machineVersion: '2', context: { count: 3, total: 135, seen: [10, 20, 5] } });
  t.is((await rig.store.readMeta(rig.scope))?.machineVersion, '2');
});

// ---------------------------------------------------------------------------------------------
// Dedupe and positions
// ---------------------------------------------------------------------------------------------

test('worker invariant 1: an input re-published with the same msgId is dropped by the stream and applied once', async (t) => {
  const rig = await Rig.create('dedupe');
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();

  t.deepEqual(await rig.add('k', 1, 'in-1'), { stream: 'dedupe-counter', seq: 1, duplicate: false });
  t.deepEqual(await rig.add('k', 1, 'in-1'), { stream: 'dedupe-counter', seq: 1, duplicate: true });
  await settle();
  t.deepEqual(await rig.add('k', 1, 'in-1'), { stream: 'dedupe-counter', seq: 1, duplicate: true }, 'also after it was applied');
  t.deepEqual(await rig.add('k', 2, 'in-2'), { stream: 'dedupe-counter', seq: 2, duplicate: false });
  await settle();

  t.is((await rig.messages('counter')).length, 2);
  t.like(worker.stats(), { applied: 2, appliedSeq: 2 });
  t.deepEqual(ctxOf(worker, 'k'), { count: 2, total: 3, seen: [1, 2] });
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:k:1:0', 'counter:k:2:0']);
});

test('worker invariant 1: a worker restored at seq N skips the inputs <= N', async (t) => {
  const rig = await Rig.create('skip');
  for (let seq = 1; seq <= 5; seq++) await rig.add('k', seq);
  await rig.store.write({ scope: rig.scope, seq: 3, epoch: 4, machineVersion: '1', actors: {}, outbox: [] });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await settle();

  t.like(ofType(events, 'restored')[0], { seq: 3, epoch: 5, outbox: 0 });
  t.is(ofType(events, 'first-input')[0]?.seq, 4);
  t.like(worker.stats(), { applied: 2, appliedSeq: 5 });
  t.deepEqual(ctxOf(worker, 'k'), { count: 2, total: 9, seen: [4, 5] });
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:k:4:0', 'counter:k:5:0']);
});

// ---------------------------------------------------------------------------------------------
// Corrupt checkpoints
// ---------------------------------------------------------------------------------------------

/** Two keys checkpointed at seq 2, then the entry of `k` damaged. */
async function corruptRig(name: string, checkpoint: CheckpointPolicyOptions): Promise<Rig> {
  const rig = await Rig.create(name, { checkpoint });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('k', 1);
  await rig.add('other', 2);
  await settle();
  await first.worker.stop();
  rig.store.corrupt(rig.scope, 'k');
  return rig;
}

test('replay invariant 4: a corrupt actor entry is reported and the actor rebuilt from the log', async (t) => {
  const rig = await corruptRig('corrupt-rebuild', { everyEvents: 2, intervalMs: 1000 });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('k', 4);
  await settle();
  t.deepEqual(ctxOf(worker, 'k'), { count: 2, total: 5, seen: [1, 4] });
  t.like(ofType(events, 'checkpoint-unusable')[0], { key: 'k' });
  t.regex(ofType(events, 'checkpoint-unusable')[0]?.error ?? '', /fails its checksum/);
  t.deepEqual(ofType(events, 'failed'), []);
  await worker.stop();
  t.like(await rig.entry('k'), { seq: 3, context: { seen: [1, 4] } }, 'a sound entry replaced the damaged one');
});

test('replay invariant 4: when retention removed the start of the log, an unusable entry stops the partition with LOG_TRUNCATED', async (t) => {
  const rig = await corruptRig('corrupt-truncated', { everyEvents: 2, intervalMs: 1000 });
  await rig.add('other', 3);
  await rig.transport.ensureStream({ name: rig.pipeline.stage('counter').stream, subjects: ['corrupt-truncated.counter.*'], maxMsgs: 2 });
  t.is((await rig.transport.streamInfo(rig.pipeline.stage('counter').stream)).firstSeq, 2);
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('k', 4);
  await settle();
  const err = await t.throwsAsync<WardenError>(worker.done(), { instanceOf: WardenError });
  t.is(err?.code, 'LOG_TRUNCATED');
  t.regex(err?.message ?? "", /starts at seq 3, not 1/); // 4 inputs, the 2 newest kept
  t.is((err?.cause as WardenError | undefined)?.code, 'CHECKPOINT_CORRUPT');
});

test('replay invariant 4: a corrupt meta is reported, the checkpoint cleared, and the partition replayed from the log', async (t) => {
  const rig = await Rig.create('corrupt-meta-rebuild', { checkpoint: { everyEvents: 1, intervalMs: 1000 } });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('k', 1);
  await rig.add('k', 2);
  await settle();
  await first.worker.stop();
  rig.store.corrupt(rig.scope);
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await settle();
  t.like(ofType(events, 'restored')[0], { seq: 0 });
  t.is(ofType(events, 'checkpoint-unusable').length, 1);
  t.deepEqual(ctxOf(worker, 'k'), { count: 2, total: 3, seen: [1, 2] });
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:k:1:0', 'counter:k:2:0'], 'replayed outputs were deduplicated');
});

test("with onUnusable 'fail', a corrupt actor entry fails the worker with CHECKPOINT_CORRUPT on the first input of that key", async (t) => {
  const rig = await Rig.create('corrupt', { checkpoint: { everyEvents: 2, intervalMs: 1000, onUnusable: 'fail' } });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('k', 1);
  await rig.add('other', 2);
  await settle();
  await first.worker.stop();
  t.is((await rig.store.readActors(rig.scope)).length, 2);

  rig.store.corrupt(rig.scope, 'k');
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  t.like(ofType(events, 'restored')[0], { seq: 2 });
  await rig.add('other', 3); // seq 3: an intact entry restores
  await rig.add('k', 4); // seq 4: the damaged one
  await settle();

  t.deepEqual(ctxOf(worker, 'other'), { count: 2, total: 5, seen: [2, 3] });
  t.regex(ofType(events, 'failed')[0]?.error ?? '', /checkpoint entry [a-z-]+\.counter\/0#k fails its checksum/);
  const err = await t.throwsAsync<WardenError>(worker.done(), { instanceOf: WardenError });
  t.is(err?.code, 'CHECKPOINT_CORRUPT');
  t.deepEqual(err?.details, { what: 'corrupt.counter/0#k' });
  t.like(worker.stats(), { appliedSeq: 3, applied: 1 });
  t.is(worker.inspect('k'), undefined);
});

test("with onUnusable 'fail', a corrupt checkpoint meta makes start() reject with CHECKPOINT_CORRUPT", async (t) => {
  const rig = await Rig.create('corrupt-meta', { checkpoint: { everyEvents: 1, intervalMs: 1000, onUnusable: 'fail' } });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('k', 1);
  await settle();
  await first.worker.stop();
  const writes = rig.store.writes;

  rig.store.corrupt(rig.scope);
  const { worker, events } = rig.worker();
  const err = await t.throwsAsync<WardenError>(worker.start(), { instanceOf: WardenError });
  t.is(err?.code, 'CHECKPOINT_CORRUPT');
  t.deepEqual(err?.details, { what: 'corrupt-meta.counter/0#meta' });
  t.deepEqual(events, []);
  t.is(rig.store.writes, writes, 'no claim was written over the damaged meta');
});
