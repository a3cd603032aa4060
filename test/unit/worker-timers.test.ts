/**
 * Durable, log-driven timers in the partition worker (worker invariants 9 and 11): a due timer
 * becomes a `warden.timer` record in the partition's stream and fires when that record is
 * applied; it survives crashes, restarts and passivation, keeps its deadline, and never fires twice.
 */
import test from 'ava';
import { assign, emit, setup } from 'xstate';
import { defineActor, type StoredMessage } from '../../lib/index.js';
import { ctxOf, ofType, records, Rig, settle, type PipelineOptions } from '../helpers/worker-rig.js';

interface Ctx {
  opened: number;
  expired: number;
}

/**
 * Named `counter` to sit in the rig's first stage: `add` opens (or re-opens) a 5 s window; when it
 * expires the actor counts it and emits `added` to the tally. `close` ends its life.
 */
const windowed = defineActor({
  name: 'counter',
  events: { add: null, close: null },
  machine: setup({
    types: {
      context: {} as Ctx,
      events: {} as { type: 'add' } | { type: 'close' },
      emitted: {} as { type: 'added'; count: number; total: number },
    },
  }).createMachine({
    initial: 'idle',
    context: { opened: 0, expired: 0 },
    states: {
      idle: { on: { add: { target: 'open', actions: assign({ opened: ({ context }) => context.opened + 1 }) }, close: 'closed' } },
      open: {
        after: {
          5000: {
            target: 'idle',
            actions: [assign({ expired: ({ context }) => context.expired + 1 }), emit(({ context }) => ({ type: 'added' as const, count: context.expired, total: 0 }))],
          },
        },
        on: { add: { target: 'open', reenter: true, actions: assign({ opened: ({ context }) => context.opened + 1 }) }, close: 'closed' },
      },
      closed: { type: 'final' },
    },
  }),
});

async function timerRig(name: string, o: PipelineOptions = {}): Promise<Rig> {
  return Rig.create(name, { actor: windowed, checkpoint: { everyEvents: 1000, intervalMs: 60_000 }, ...o });
}

/** The timer records among `msgs`: where, under which ID, for which timer. */
function timerRecords(msgs: StoredMessage[]): Array<{ seq: number; msgId: string | undefined; timer: unknown }> {
  return records(msgs, 'warden.timer').map(({ seq, msgId, payload }) => ({ seq, msgId, timer: payload.timer }));
}

/** Advances the simulated clock in steps, letting the worker run between them. */
async function advance(rig: Rig, ms: number, step = 250): Promise<void> {
  for (let left = ms; left > 0; left -= step) {
    await rig.clock.advanceAsync(Math.min(step, left));
    await settle();
  }
}

test('worker invariant 9: a due timer is appended to the log as a warden.timer record, and fires when that record is applied', async (t) => {
  const rig = await timerRig('tmr-log');
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  t.is(worker.stats().timers, 1);
  t.deepEqual(ctxOf(worker, 'a') as unknown, { opened: 1, expired: 0 });

  await advance(rig, 4999);
  t.deepEqual(timerRecords(await rig.messages('counter')), [], 'not yet due');
  await advance(rig, 1);
  // The record names the timer by the input that armed it (seq 1, first timer).
  t.deepEqual(timerRecords(await rig.messages('counter')), [{ seq: 2, msgId: 'counter:a:t1.0:e1', timer: '1.0' }]);
  t.deepEqual(ctxOf(worker, 'a') as unknown, { opened: 1, expired: 1 });
  t.is(worker.stats().timers, 0);
  t.is(worker.stats().timersFired, 1);
  // Its output is dated by the record: a replay regenerates the same ID.
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:a:2:0']);
  t.is(ofType(events, 'dead-letter').length, 0);
});

test('worker invariant 9: re-entering the state cancels the timer and arms a new one; the old one never fires', async (t) => {
  const rig = await timerRig('tmr-reenter');
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await advance(rig, 3000);
  await rig.send('a', 'add', {}, 'in-2'); // log time 3000: the new deadline is 8000
  await settle();
  await advance(rig, 4000); // t = 7000
  t.deepEqual(timerRecords(await rig.messages('counter')), []);
  await advance(rig, 1000); // t = 8000
  t.deepEqual(timerRecords(await rig.messages('counter')).map((r) => r.timer), ['2.0']);
  t.deepEqual(ctxOf(worker, 'a') as unknown, { opened: 2, expired: 1 });
});

test('a timer in a checkpoint is re-armed by a restarted worker with its deadline kept, and fires once', async (t) => {
  const rig = await timerRig('tmr-restore');
  const first = rig.worker();
  await first.worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await first.worker.stop(); // the cut carries the timer
  t.deepEqual((await rig.store.readMeta(rig.scope))?.timers, [{ key: 'a', id: '1.0', dueMs: 0 + 5000 }]);

  await advance(rig, 2000);
  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  t.like(ofType(second.events, 'restored')[0], { timers: 1 });
  t.is(second.worker.stats().actors, 0, 'the timer is armed without loading its actor');
  await advance(rig, 2999);
  t.deepEqual(timerRecords(await rig.messages('counter')), []);
  await advance(rig, 1);
  t.deepEqual(timerRecords(await rig.messages('counter')).map((r) => r.timer), ['1.0']);
  t.deepEqual(ctxOf(second.worker, 'a') as unknown, { opened: 1, expired: 1 });
});

test('a deadline that passed while the partition was down fires at once on restore', async (t) => {
  const rig = await timerRig('tmr-late');
  const first = rig.worker();
  await first.worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  first.worker.kill(); // no checkpoint: the timer is rebuilt from the log
  await advance(rig, 9000);
  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await settle();
  t.is(second.worker.stats().timers, 1, 'replaying the input re-armed it, dated by the log');
  await advance(rig, 1);
  t.deepEqual(timerRecords(await rig.messages('counter')).map((r) => r.timer), ['1.0']);
  t.deepEqual(ctxOf(second.worker, 'a') as unknown, { opened: 1, expired: 1 });
});

test('a timer that fired before a crash is not fired again by the replay, nor appended twice', async (t) => {
  const rig = await timerRig('tmr-once');
  const first = rig.worker();
  await first.worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await first.worker.stop(); // cut at seq 1 with the timer pending
  const second = rig.worker();
  await second.worker.start();
  await advance(rig, 5000);
  t.deepEqual(ctxOf(second.worker, 'a') as unknown, { opened: 1, expired: 1 });
  second.worker.kill(); // fired, but no cut after it: a successor restores the timer as pending

  const third = rig.worker();
  t.teardown(() => third.worker.kill());
  await third.worker.start();
  await advance(rig, 500);
  // The successor re-sent the firing (same message ID, dropped by the stream) and replayed the
  // original record: one record, one firing, one output.
  t.is(timerRecords(await rig.messages('counter')).length, 1);
  t.deepEqual(ctxOf(third.worker, 'a') as unknown, { opened: 1, expired: 1 });
  t.is(third.worker.stats().timers, 0);
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:a:2:0']);
});

test('worker invariant 11: a passivated actor keeps its timer armed; the firing loads it back', async (t) => {
  const rig = await timerRig('tmr-passive', { checkpoint: { everyEvents: 1000, intervalMs: 250 }, stage: { idleMs: 1000 } });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await advance(rig, 2000);
  t.is(worker.stats().actors, 0, 'dropped from memory');
  t.is(worker.stats().passivated, 1);
  t.is(worker.stats().timers, 1);
  await advance(rig, 3000);
  t.deepEqual(ctxOf(worker, 'a') as unknown, { opened: 1, expired: 1 });
});

test('a stale timer record of an actor that has finished fires nothing and creates no actor', async (t) => {
  const rig = await timerRig('tmr-stale');
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await rig.send('a', 'close', {}, 'in-2');
  await rig.sendRecord(worker, 'b', 'warden.timer', { timer: '1.0' }, 'stray'); // a record for a key that never lived
  await settle();
  await rig.sendRecord(worker, 'a', 'warden.timer', { timer: '1.0' }, 'late');
  await settle();
  t.is(worker.inspect('b'), undefined);
  t.is(ofType(events, 'dead-letter').length, 0);
  t.is((await rig.messages('tally')).length, 0);
  t.is(worker.stats().timersFired, 0);
});
