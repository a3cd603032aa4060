/**
 * Guarded calls of the partition worker under adversarial interleavings: a call invoked by an
 * initial state, a takeover by a worker that dies before its first cut, leaving the invoking
 * state, passivation and stop() while a call is in flight.
 *
 * What holds throughout (worker invariant 12, call-runner invariants 1-4): the worker issues each
 * pending call at most once per incarnation under a deterministic idempotency key, its result
 * reaches the actor only through a `warden.call` record, and every cut lists the calls still
 * pending, so a successor issues them again under the same key.
 *
 * Everything runs on the rig's `SimulatedClock` (test/helpers/worker-rig.ts).
 */
import test from 'ava';
import { assign, setup } from 'xstate';
import { defineActor, fromCall, type CallTarget } from '../../lib/index.js';
import { advance, rareCuts } from '../helpers/interleaving.js';
import { payer } from '../helpers/payer.js';
import { ctxOf, records, Rig, settle } from '../helpers/worker-rig.js';

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/** A call the test settles by hand; records every issue with its idempotency key and signal. */
class ManualCall implements CallTarget<{ amount: number }, { receipt: string }> {
  readonly name = 'charge';
  readonly issues: Array<{ key: string; aborted: () => boolean; resolve: (v: { receipt: string }) => void }> = [];
  call(_input: { amount: number }, options: { idempotencyKey: string; signal?: AbortSignal }): Promise<{ receipt: string }> {
    return new Promise((resolve) => {
      this.issues.push({ key: options.idempotencyKey, aborted: () => options.signal?.aborted ?? false, resolve });
    });
  }
  get keys(): string[] {
    return this.issues.map((i) => i.key);
  }
}

/** `counter` whose INITIAL state invokes the call. */
function initialCaller(charge: CallTarget<{ amount: number }, { receipt: string }>) {
  return defineActor({
    name: 'counter',
    events: { poke: null },
    machine: setup({
      types: { context: {} as { receipts: string[] }, events: {} as { type: 'poke' } },
      actors: { charge: fromCall(charge) },
    }).createMachine({
      id: 'ic',
      initial: 'paying',
      context: { receipts: [] },
      states: {
        paying: {
          invoke: { id: 'charge', src: 'charge', input: { amount: 1 }, onDone: { target: 'paid', actions: assign({ receipts: ({ context, event }) => [...context.receipts, event.output.receipt] }) } },
          on: { poke: {} },
        },
        paid: { on: { poke: {} } },
      },
    }),
  });
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/*
 * xstate creates the children an initial state invokes while the actor itself is created, before
 * any input. Such a call is still the worker's: it gets a call id from the log point of the input
 * that created the actor ('1.0'), the worker issues it with the idempotency key derived from that
 * id, and its result reaches the actor through a `warden.call` record. Run by the actor directly,
 * it would carry a random key (a replay would charge twice) and change state outside the log.
 */
test('worker invariant 12: a call invoked by the initial state is run by the worker, with a deterministic idempotency key, and its result goes through the log', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('init-call', { actor: initialCaller(charge), checkpoint: rareCuts });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'poke', {}, 'in-1'); // the host is created here, in `paying`
  await settle();
  t.is(charge.issues.length, 1);
  t.is(worker.stats().callsPending, 1, 'the worker knows about the call');
  charge.issues[0]!.resolve({ receipt: 'r-1' });
  await settle();
  t.is(records(await rig.messages('counter'), 'warden.call').length, 1, 'the result went through the log as a warden.call record');
  t.deepEqual(charge.keys, ['counter:a:1.0'], 'issued with the idempotency key of call 1.0');
});

/*
 * Claiming a partition takes a new epoch and leaves the checkpoint as its predecessor wrote it:
 * the meta keeps its list of pending calls. A worker that claims the partition and dies before
 * its first own cut therefore hands the same list to its successor, which loads the actor and
 * issues the call again (call-runner invariant 4). Had the claim rewritten the meta without the
 * list, the actor would wait in `paying` until an unrelated input for its key happened to load it.
 */
test('worker invariant 5, call-runner invariant 4: a claim keeps the pending calls of the checkpoint; a successor of a worker that died before its first cut issues the call again', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('claim-calls', { actor: payer(charge), checkpoint: rareCuts });
  const first = rig.worker();
  await first.worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  await first.worker.stop(); // cut at seq 1 lists the call
  t.deepEqual((await rig.store.readMeta(rig.scope))?.calls, [{ key: 'a', id: '1.0' }]);

  const second = rig.worker();
  await second.worker.start(); // claim
  const callsAfterClaim = (await rig.store.readMeta(rig.scope))?.calls;
  await settle();
  second.worker.kill(); // dies before any cut of its own
  t.is(charge.issues.length, 2);

  const third = rig.worker();
  t.teardown(() => third.worker.kill());
  await third.worker.start();
  await settle();
  t.deepEqual(callsAfterClaim, [{ key: 'a', id: '1.0' }], 'the claim keeps the pending calls of the meta');
  t.is(charge.issues.length, 3, 'the third owner issues the pending call again');
});

/*
 * docs/guarantees.md: "Leaving the state stops the call (its signal is aborted)". The call is not
 * only dropped from the worker's list of pending calls: its AbortSignal fires, so a guarded call
 * stops its retries and backoff, and a charge the user cancelled does not go through.
 */
test('call-runner invariant 3: leaving the state that invoked a call aborts the call signal', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('abort', { actor: payer(charge), checkpoint: rareCuts });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  await rig.send('a', 'cancel', {}, 'in-2');
  await settle();
  t.is(worker.stats().callsPending, 0);
  t.true(charge.issues[0]!.aborted(), 'the call signal is aborted');
});

/*
 * An actor waiting for a call result is idle, so it may be passivated once a cut holds its
 * state; the call stays pending in the worker (call-runner invariant 4). Its result record then
 * loads the actor back from its entry and is delivered; the call is not issued a second time.
 */
test('worker invariant 11: a pending call survives passivation: its result loads the actor back, and it is not issued twice', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('passive-call', { actor: payer(charge), checkpoint: { everyEvents: 1000, intervalMs: 100 }, stage: { idleMs: 200 } });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  await advance(rig, 1000, 100);
  t.is(worker.stats().actors, 0, 'passivated with its call in flight');
  t.is(worker.stats().callsPending, 1);
  charge.issues[0]!.resolve({ receipt: 'r-1' });
  await settle();
  t.deepEqual((ctxOf(worker, 'a') as unknown as { receipts: string[] }).receipts, ['r-1']);
  t.is(charge.issues.length, 1);
  t.is(worker.stats().callsPending, 0);
});

/*
 * stop() ends the incarnation that issued the call: its final cut lists the call as pending (the
 * successor issues it again under the same idempotency key), the signal is aborted, and a result
 * that arrives afterwards is not appended (records invariant 3), since the successor owns the
 * partition's log from now on.
 */
test('call-runner invariant 4: stop() with a call in flight lists it in the final cut, aborts its signal, and appends no late result', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('stop-call', { actor: payer(charge), checkpoint: rareCuts });
  const { worker } = rig.worker();
  await worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  await worker.stop();
  t.true(charge.issues[0]!.aborted());
  charge.issues[0]!.resolve({ receipt: 'late' });
  await settle();
  t.deepEqual(records(await rig.messages('counter'), 'warden.call'), []);
  t.deepEqual((await rig.store.readMeta(rig.scope))?.calls, [{ key: 'a', id: '1.0' }]);
});
