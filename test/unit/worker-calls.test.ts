/**
 * Guarded calls from machines, through the log (worker invariant 12, lib/actor/calls.ts): the
 * worker runs a call a machine invokes with `fromCall`, appends its result to the partition's
 * stream, and the machine sees it when that record is applied. A replay never re-issues a call
 * whose result is in the log; a call cut short by a crash is issued again with the same
 * idempotency key.
 */
import test from 'ava';
import { assign, createActor, emit, setup, toPromise } from 'xstate';
import { defineActor, fromCall, type CallTarget } from '../../lib/index.js';
import { ctxOf, ofType, records, Rig, settle } from '../helpers/worker-rig.js';

/** A call the test settles by hand; it records every issue with its key and whether it was aborted. */
class ManualCall implements CallTarget<{ amount: number }, { receipt: string }> {
  readonly name = 'charge';
  readonly issues: Array<{ key: string; input: { amount: number }; aborted: () => boolean; resolve: (v: { receipt: string }) => void; reject: (e: Error) => void }> = [];
  call(input: { amount: number }, options: { idempotencyKey: string; signal?: AbortSignal }): Promise<{ receipt: string }> {
    return new Promise((resolve, reject) => {
      this.issues.push({ key: options.idempotencyKey, input, aborted: () => options.signal?.aborted ?? false, resolve, reject });
    });
  }
  get keys(): string[] {
    return this.issues.map((i) => i.key);
  }
}

interface Ctx {
  paid: number;
  failed: string[];
  receipts: string[];
}

/** Named `counter` to sit in the rig's first stage: `add` pays `amount` through the call; `cancel` gives up. */
function payer(charge: CallTarget<{ amount: number }, { receipt: string }>) {
  return defineActor({
    name: 'counter',
    events: { add: null, cancel: null },
    machine: setup({
      types: {
        context: {} as Ctx,
        events: {} as { type: 'add'; amount: number } | { type: 'cancel' },
        emitted: {} as { type: 'added'; count: number; total: number },
      },
      actors: { charge: fromCall(charge) },
    }).createMachine({
      id: 'payer',
      initial: 'idle',
      context: { paid: 0, failed: [], receipts: [] },
      states: {
        idle: { on: { add: 'paying' } },
        paying: {
          invoke: {
            id: 'charge',
            src: 'charge',
            input: ({ event }) => ({ amount: (event as { amount: number }).amount }),
            onDone: {
              target: 'idle',
              actions: [
                assign({ paid: ({ context }) => context.paid + 1, receipts: ({ context, event }) => [...context.receipts, event.output.receipt] }),
                emit(({ context }) => ({ type: 'added' as const, count: context.paid, total: 0 })),
              ],
            },
            onError: { target: 'idle', actions: assign({ failed: ({ context, event }) => [...context.failed, (event.error as { message: string }).message] }) },
          },
          on: { cancel: 'idle' },
        },
      },
    }),
  });
}

async function callRig(name: string, charge: ManualCall): Promise<Rig> {
  return Rig.create(name, { actor: payer(charge), checkpoint: { everyEvents: 1000, intervalMs: 60_000 } });
}


test('worker invariant 12: a call a machine invokes is run with a deterministic idempotency key, and its result reaches the machine through the log', async (t) => {
  const charge = new ManualCall();
  const rig = await callRig('call-ok', charge);
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  t.deepEqual(charge.keys, ['counter:a:1.0']);
  t.deepEqual(charge.issues[0]!.input, { amount: 5 });
  t.like(worker.stats(), { callsPending: 1, callsIssued: 1 });
  t.deepEqual(records(await rig.messages('counter'), 'warden.call'), [], 'nothing in the log while the call runs');

  charge.issues[0]!.resolve({ receipt: 'r-1' });
  await settle();
  t.deepEqual(records(await rig.messages('counter'), 'warden.call'), [{ seq: 2, msgId: 'counter:a:c1.0:e1', payload: { call: '1.0', ok: true, output: { receipt: 'r-1' } } }]);
  t.deepEqual(ctxOf(worker, 'a') as unknown, { paid: 1, failed: [], receipts: ['r-1'] });
  t.is(worker.stats().callsPending, 0);
  // The output is dated by the record: a replay regenerates the same ID.
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:a:2:0']);
  t.is(ofType(events, 'dead-letter').length, 0);
});

test('worker invariant 12: a failed call reaches onError as a JSON error with its message and code', async (t) => {
  const charge = new ManualCall();
  const rig = await callRig('call-err', charge);
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  charge.issues[0]!.reject(Object.assign(new Error('card declined'), { name: 'TerminalError' }));
  await settle();
  const [record] = records(await rig.messages('counter'), 'warden.call');
  t.like(record?.payload, { call: '1.0', ok: false, error: { name: 'TerminalError', message: 'card declined' } });
  t.deepEqual((ctxOf(worker, 'a') as unknown as Ctx).failed, ['card declined']);
});

test('a call cut short by a crash is issued again after the restore, with the same idempotency key', async (t) => {
  const charge = new ManualCall();
  const rig = await callRig('call-crash', charge);
  const first = rig.worker();
  await first.worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  await first.worker.stop(); // the cut carries the pending call...
  t.deepEqual((await rig.store.readMeta(rig.scope))?.calls, [{ key: 'a', id: '1.0' }]);
  t.true(charge.issues[0]!.aborted(), '... and the stopped worker aborted it');

  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await settle();
  // The actor was not in memory: the worker loaded it because the cut listed its call.
  t.deepEqual(charge.keys, ['counter:a:1.0', 'counter:a:1.0'], 'the callee sees the same key twice');
  charge.issues[1]!.resolve({ receipt: 'r-2' });
  await settle();
  t.deepEqual((ctxOf(second.worker, 'a') as unknown as Ctx).receipts, ['r-2']);
  t.is(records(await rig.messages('counter'), 'warden.call').length, 1);
});

test('a result already in the log is not asked for again: a replay delivers it instead of re-issuing the call', async (t) => {
  const charge = new ManualCall();
  const rig = await callRig('call-replay', charge);
  const first = rig.worker();
  await first.worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  await first.worker.stop(); // cut at seq 1, the call pending
  const second = rig.worker();
  await second.worker.start();
  await settle();
  charge.issues[1]!.resolve({ receipt: 'r-1' }); // the result lands in the log at seq 2...
  await settle();
  second.worker.kill(); // ... and the worker dies before any cut after it

  const third = rig.worker();
  t.teardown(() => third.worker.kill());
  await third.worker.start();
  await settle();
  t.is(charge.issues.length, 2, 'not issued a third time: its result was in the log');
  t.deepEqual((ctxOf(third.worker, 'a') as unknown as Ctx).receipts, ['r-1']);
  t.is(records(await rig.messages('counter'), 'warden.call').length, 1);
});

test('leaving the state stops the call; its late result changes nothing', async (t) => {
  const charge = new ManualCall();
  const rig = await callRig('call-cancel', charge);
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await rig.send('a', 'cancel', {}, 'in-2');
  await settle();
  t.is(worker.stats().callsPending, 0);
  charge.issues[0]!.resolve({ receipt: 'late' });
  await settle();
  t.is(records(await rig.messages('counter'), 'warden.call').length, 1, 'the result is still recorded ...');
  t.deepEqual(ctxOf(worker, 'a') as unknown, { paid: 0, failed: [], receipts: [] }, '... and ignored');
});

test('outside a worker, fromCall runs the call directly, like fromPromise', async (t) => {
  const charge: CallTarget<{ amount: number }, { receipt: string }> = { name: 'charge', call: (input) => Promise.resolve({ receipt: `r-${input.amount}` }) };
  const machine = setup({ types: { context: {} as { receipt: string }, output: {} as string }, actors: { charge: fromCall(charge) } }).createMachine({
    initial: 'paying',
    context: { receipt: '' },
    states: {
      paying: { invoke: { src: 'charge', input: { amount: 7 }, onDone: { target: 'done', actions: assign({ receipt: ({ event }) => (event.output).receipt }) } } },
      done: { type: 'final' },
    },
    output: ({ context }) => context.receipt,
  });
  t.is(await toPromise(createActor(machine).start()), 'r-7');
});
