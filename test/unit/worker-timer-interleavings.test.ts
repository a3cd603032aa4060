/**
 * Review of lib/actor/partition-worker.ts (invariants 1-12) with its timers, calls, outbox and
 * replay: adversarial interleavings of checkpoints, crashes, restarts, passivation, stop() and
 * retention, against docs/guarantees.md and docs/guarded-calls.md.
 *
 * Tests marked `test.failing` are open bugs: each comment says what goes wrong and where. When a
 * bug is fixed, ava flags the unexpected pass and `.failing` must go. The plain tests pin tricky
 * behaviour that was checked and is correct.
 *
 * Everything runs on the rig's `SimulatedClock` (test/helpers/worker-rig.ts).
 */
import test from 'ava';
import { assign, emit, raise, setup } from 'xstate';
import { defineActor, fromCall, type CallTarget, type CheckpointWrite, type Transport, type WriteResult } from '../../lib/index.js';
import { DelegatingTransport } from '../helpers/delegating-transport.js';
import { ctxOf, FaultyTransport, ofType, records, Rig, settle, SpyStore, type PipelineOptions } from '../helpers/worker-rig.js';

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

/** A switch per test (tests of a file run concurrently): `arm()` makes the next `boom` input crash its actor, once. */
class Boom {
  private armed = false;
  arm(): void {
    this.armed = true;
  }
  readonly action = (): void => {
    if (this.armed) {
      this.armed = false;
      throw new Error('boom');
    }
  };
}

/**
 * `counter` whose INITIAL state arms a 5 s timer: `poke` creates it, the timer moves it to
 * `expired` and emits one output. `boom` may crash it (Boom).
 */
function initialTimer(boom: Boom) {
  return defineActor({
  name: 'counter',
  events: { poke: null, boom: null },
  machine: setup({
    types: { context: {} as { expired: number }, events: {} as { type: 'poke' } | { type: 'boom' }, emitted: {} as { type: 'added'; count: number; total: number } },
    actions: { boom: boom.action },
  }).createMachine({
    id: 'it',
    initial: 'waiting',
    context: { expired: 0 },
    on: { boom: { actions: 'boom' } },
    states: {
      waiting: {
        after: {
          5000: {
            target: 'expired',
            actions: [assign({ expired: ({ context }) => context.expired + 1 }), emit(({ context }) => ({ type: 'added' as const, count: context.expired, total: 0 }))],
          },
        },
        on: { poke: {} },
      },
      expired: { on: { poke: {} } },
    },
  }),
  });
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

/** `add` pays through the call; `cancel` leaves the state (as in worker-calls.test.ts). */
function payer(charge: CallTarget<{ amount: number }, { receipt: string }>) {
  return defineActor({
    name: 'counter',
    events: { add: null, cancel: null },
    machine: setup({
      types: { context: {} as { receipts: string[] }, events: {} as { type: 'add'; amount: number } | { type: 'cancel' } },
      actors: { charge: fromCall(charge) },
    }).createMachine({
      id: 'payer',
      initial: 'idle',
      context: { receipts: [] },
      states: {
        idle: { on: { add: 'paying' } },
        paying: {
          invoke: {
            id: 'charge',
            src: 'charge',
            input: ({ event }) => ({ amount: (event as { amount: number }).amount }),
            onDone: { target: 'idle', actions: assign({ receipts: ({ context, event }) => [...context.receipts, event.output.receipt] }) },
          },
          on: { cancel: 'idle' },
        },
      },
    }),
  });
}

/** `add` opens a 5 s window; when it expires the actor counts it and emits (worker-timers.test.ts). */
function windowed(crashOnExpiry = false) {
  return defineActor({
    name: 'counter',
    events: { add: null },
    machine: setup({
      types: { context: {} as { opened: number; expired: number }, events: {} as { type: 'add' }, emitted: {} as { type: 'added'; count: number; total: number } },
      actions: {
        expire: () => {
          if (crashOnExpiry) throw new Error('cannot expire');
        },
      },
    }).createMachine({
      id: 'win',
      initial: 'idle',
      context: { opened: 0, expired: 0 },
      states: {
        idle: { on: { add: { target: 'open', actions: assign({ opened: ({ context }) => context.opened + 1 }) } } },
        open: {
          after: {
            5000: {
              target: 'idle',
              actions: ['expire', assign({ expired: ({ context }) => context.expired + 1 }), emit(({ context }) => ({ type: 'added' as const, count: context.expired, total: 0 }))],
            },
          },
          on: { add: { target: 'open', reenter: true, actions: assign({ opened: ({ context }) => context.opened + 1 }) } },
        },
      },
    }),
  });
}

/** Advances the simulated clock in steps, letting the worker run between them. */
async function advance(rig: Rig, ms: number, step = 250): Promise<void> {
  for (let left = ms; left > 0; left -= step) {
    await rig.clock.advanceAsync(Math.min(step, left));
    await settle();
  }
}

const slow: PipelineOptions['checkpoint'] = { everyEvents: 1000, intervalMs: 60_000 };

// ---------------------------------------------------------------------------------------------
// Bugs (open)
// ---------------------------------------------------------------------------------------------

/*
 * BUG 1 (replay.ts:115 `loadActor(ctx, key)` without `at`, so loadActor:89 creates the host at
 * seq 0; same at replay.ts:112 for a rebuild from the whole log).
 * A crashed actor that has no checkpoint entry yet (created in this incarnation, or rebuilt from
 * the log after an unusable entry) is rebuilt from a host created at LogPoint { seq: 0,
 * timeMs: clock.now() }, whereas the original was created at the log point of its first input
 * (partition-worker.ts load() -> loadActor(ctx, key, at)). Timers armed by the initial state get
 * id '0.0' (not '1.0') and a deadline dated by the rebuild's wall clock. Replaying the original
 * `warden.timer` record for '1.0' then does nothing, so the rebuilt actor is back in the state
 * before the timer fired, and its '0.0' timer fires a second time: the effect and the output are
 * duplicated (exactly-once broken), and the state diverges from any later replay.
 */
test('fixed (review): rebuilding a crashed actor without a checkpoint entry re-dates the timers of its initial state; the timer fires twice', async (t) => {
  const boom = new Boom();
  const rig = await Rig.create('rv-init-timer', { actor: initialTimer(boom), checkpoint: slow });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'poke', {}, 'in-1'); // seq 1, t=0: the host is created here; timer '1.0' due 5000
  await settle();
  await advance(rig, 5000); // record at seq 2 fires it
  t.deepEqual(worker.inspect('a')?.value, 'expired');
  t.is((await rig.messages('tally')).length, 1);

  boom.arm();
  await rig.send('a', 'boom', {}, 'in-3'); // crashes once; rebuilt from the log (no entry yet)
  await settle();
  t.is(ofType(events, 'actor-restarted').length, 1);
  const pending = worker.stats().timers;
  const state = worker.inspect('a')?.value;
  await advance(rig, 10_000);
  const outputs = (await rig.messages('tally')).length;
  // Should be: still 'expired' with no timer pending, and one output.
  t.deepEqual({ state, pending, outputs }, { state: 'expired', pending: 0, outputs: 1 }, 'the replay skipped the firing of 1.0 and re-armed the timer as 0.0, which fired again');
});

/*
 * BUG 2 (actor-host.ts:88 createActor before :95 new CallBridge; calls.ts:198 getInitialSnapshot
 * and :208-214 start). xstate creates the children invoked by the INITIAL state inside
 * createActor(), so fromCall's getInitialSnapshot runs before the host attaches its CallBridge
 * to the system: the call gets no callId, and start() takes the "plain xstate" branch. The call
 * is run directly by the actor with a random UUID as idempotency key, not by the worker; its
 * result is sent to the actor in memory, not through a `warden.call` record. The state change
 * happens outside any input (not dirty, not in the log), a replay or rebuild runs the call again
 * under a new UUID (the callee cannot dedupe: a double charge), and the cut lists no call.
 * Fix: attach the bridge before createActor (e.g. via a system-level hook or createActor's
 * `systemId`/inspect, or number calls lazily in start()).
 */
test('fixed (review): a call invoked by the initial state bypasses the log: random idempotency key, no warden.call record', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('rv-init-call', { actor: initialCaller(charge), checkpoint: slow });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'poke', {}, 'in-1'); // the host is created here, in `paying`
  await settle();
  t.is(charge.issues.length, 1);
  t.is(worker.stats().callsPending, 1, 'the worker does not know about the call');
  charge.issues[0]!.resolve({ receipt: 'r-1' });
  await settle();
  t.is(records(await rig.messages('counter'), 'warden.call').length, 1, 'the result did not go through the log');
  t.deepEqual(charge.keys, ['counter:a:1.0'], 'issued with a random idempotency key');
});

/*
 * BUG 3 (partition-worker.ts claim(), the store.write at lines 340-348): the claim re-writes the
 * meta with its outbox and timers but without `calls`, so the store's call index is reset to [].
 * The new owner keeps the list in memory, but if it dies before its first own cut, the next
 * successor reads `calls: []`, never reloads the actor, and never re-issues the call: the actor
 * waits in `paying` forever (until some unrelated input for that key happens to load it).
 */
test('fixed (review): the start claim drops the pending-call index; a successor of a worker that died before its first cut never re-issues the call', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('rv-claim-calls', { actor: payer(charge), checkpoint: slow });
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
  t.deepEqual(callsAfterClaim, [{ key: 'a', id: '1.0' }], 'the claim wrote calls: []');
  t.is(charge.issues.length, 3, 'the third owner never re-issued the pending call');
});

/*
 * BUG 4 (partition-worker.ts stop() lines 264-277 + checkpoint() write() lines 797-803; outbox.ts:109
 * close() resolving settled()). At-least-once: stop()'s final cut waits for the outputs to be
 * acknowledged; if they are not within timeoutMs it fails with TIMEOUT and stop() goes on:
 * clearTimers() closes the outbox (no more retries), and Outbox.close() resolves every pending
 * settled(). The timed-out write() was still awaiting it, sees a worker that is 'stopped' (not
 * `dead`), and writes the cut anyway. The store now says "applied through seq 1" although the
 * output of input 1 was never acknowledged and never will be: the successor skips input 1 and
 * the output is lost. At-least-once promises nothing is lost.
 */
test('fixed (review): at-least-once stop() with unacknowledged outputs: the timed-out final cut lands after the outbox closes, and the outputs are lost', async (t) => {
  const rig = await Rig.create('rv-alo-stop', { checkpoint: { everyEvents: 1000, intervalMs: 60_000, timeoutMs: 300 }, stage: { guarantee: 'at-least-once' } });
  const transport = new FaultyTransport(rig.transport, (s) => s.startsWith('rv-alo-stop.tally.'));
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
  t.true(outputs >= 1, `output lost: a cut at seq ${cutSeq} landed after stop() although its output was never acknowledged`);
});

/*
 * BUG 5 (partition-worker.ts start(): wheel.load at line 218, `await lastSeqOf` at 225, 'running'
 * at 227; appendTimerFiring's state check at 702; timer-wheel.ts fire() sets `reported`). The wheel is loaded
 * (and its clock timeout armed) while the worker is still 'starting', before `await lastSeqOf`.
 * An overdue restored timer's timeout fires during that await on a real clock (a 0 ms timer is a
 * setImmediate; JetStream's lastSeqOf is a network round trip): the wheel marks it reported, and
 * appendTimerFiring drops it because the state is not 'running' yet. A slot is reported once per
 * arming and `sync` keeps the flag, so the timer never fires in this incarnation, even when its
 * actor is loaded. Modelled here by a transport whose lastSeqOf takes 1 ms of simulated time.
 */
class SlowLastSeq extends DelegatingTransport {
  constructor(inner: Transport, private readonly rig: Rig) {
    super(inner);
  }
  override async lastSeqOf(stream: string, subject: string): Promise<number> {
    this.rig.clock.advance(1); // the round trip takes time
    return this.inner.lastSeqOf(stream, subject);
  }
}

test('fixed (review): an overdue timer restored at start is lost if the wheel fires while the worker is still starting', async (t) => {
  const rig = await Rig.create('rv-start-timer', { actor: windowed(), checkpoint: slow });
  const first = rig.worker();
  await first.worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await first.worker.stop(); // the cut lists timer 1.0, due 5000
  await advance(rig, 9000); // the partition is down past the deadline

  const second = rig.worker({ transport: new SlowLastSeq(rig.transport, rig) });
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await advance(rig, 10_000);
  t.is(records(await rig.messages('counter'), 'warden.timer').length, 1, 'the firing was never appended');
  t.deepEqual(ctxOf(second.worker, 'a') as unknown, { opened: 1, expired: 1 });
});

/*
 * BUG 6 (partition-worker.ts syncCalls(), lines 623-634): docs/guarantees.md says "Leaving the
 * state stops the call (its signal is aborted)". The worker only drops the call from its index;
 * the AbortController in `issued` is aborted only by kill/fail/stop. The guarded call keeps
 * running (with its retries and backoff) after the machine gave it up: e.g. a charge the user
 * cancelled still goes through.
 */
test('fixed (review): leaving the state that invoked a call does not abort the call signal', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('rv-abort', { actor: payer(charge), checkpoint: slow });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', { amount: 5 }, 'in-1');
  await settle();
  await rig.send('a', 'cancel', {}, 'in-2');
  await settle();
  t.is(worker.stats().callsPending, 0);
  t.true(charge.issues[0]!.aborted(), 'the call is still running');
});

/*
 * BUG 7 (partition-worker.ts checkLogCoversCheckpoint(), line 364; same stream-wide test in
 * replay.ts:57 fallBackToLog). The check compares the checkpoint's seq with the STREAM's firstSeq, but a
 * stage's stream holds every partition (subjects `<pipeline>.<stage>.<p>`) and retention is
 * stream-wide. A partition that had no input while the others went on (idle partition + maxAgeMs
 * or maxMsgs) sees firstSeq pass its checkpoint although none of ITS inputs were removed: with
 * the default onTruncatedLog 'fail' it can never be restarted (LOG_TRUNCATED), with 'skip' it
 * logs a false loss. Fix: check the partition's own subject (e.g. the first seq of the filtered
 * subject, or the reader's cursor recorded in the cut).
 */
test('fixed (review): log-truncation false positive: retention of OTHER partitions\' messages makes an idle partition refuse to start', async (t) => {
  const rig = await Rig.create('rv-trunc-fp', { checkpoint: { everyEvents: 1, intervalMs: 1000 }, counterStream: { maxMsgs: 3 } });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('a', 1); // seq 1, partition 0
  await settle();
  await first.worker.stop(); // cut at seq 1
  // Partition 1 of the same stage gets traffic: seqs 2..6; retention keeps 4..6.
  for (let i = 0; i < 5; i++) {
    await rig.transport.publish('rv-trunc-fp.counter.1', new TextEncoder().encode('{}'), { msgId: `p1-${i}` });
  }
  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await t.notThrowsAsync(second.worker.start(), 'partition 0 lost nothing');
  t.is(ofType(second.events, 'log-truncated').length, 0);
});

/*
 * BUG 8 (at-most-once + timer records; partition-worker.ts commitAhead (397-404) +
 * appendTimerFiring (701-706), ids.ts timerRecordId). An at-most-once worker commits the cut for a batch before applying it; the cut
 * still lists the batch's timers as pending. If the batch holds the `warden.timer` record and the
 * worker dies before applying it, the successor re-reports the timer, but its record has the SAME
 * message ID and the stream drops it as a duplicate, while the original record is at or below
 * the restored position and is skipped. The timer stays pending forever (fires only if a restart
 * comes after the duplicate window); an actor waiting on it hangs. Same for `warden.call`
 * records: the call is re-issued, its result record is dropped, the machine waits forever.
 * Duplicate timer/call records are harmless (TimerTable.take / CallBridge.deliver are no-ops for
 * a settled id), so the re-report of a restored timer could carry a per-incarnation ID.
 */
test('fixed (review): at-most-once: a timer whose record was committed but not applied before a crash never fires again', async (t) => {
  const rig = await Rig.create('rv-amo-timer', { actor: windowed(), checkpoint: slow, stage: { guarantee: 'at-most-once' } });
  const first = rig.worker({
    failpoint: (point, info) => {
      if (point === 'after-publish' && info.seq === 2) first.worker.kill();
    },
  });
  await first.worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await advance(rig, 5000); // record at seq 2; its batch is committed (cut at 2, timer pending), then the worker dies
  t.is((await rig.store.readMeta(rig.scope))?.seq, 2);
  t.deepEqual((await rig.store.readMeta(rig.scope))?.timers.map((x) => x.id), ['1.0']);

  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await advance(rig, 10_000);
  // The successor re-sends the firing under its own epoch's ID, so the stream keeps it and the timer fires.
  t.deepEqual(records(await rig.messages('counter'), 'warden.timer').map((r) => r.msgId), ['counter:a:t1.0:e1', 'counter:a:t1.0:e2']);
  t.is(second.worker.stats().timers, 0);
  t.is(second.worker.stats().timersFired, 1);
});

/*
 * BUG 9 (partition-worker.ts run() lines 379-393 + transport reader invariant 3): the retention check runs
 * only at start. A RUNNING worker that falls behind retention (slow store, backoff, a stuck
 * load) reads on past the removed inputs without a word: no 'log-truncated' event, no failure,
 * whatever onTruncatedLog says. The loss is silent. Fix: compare each batch's first seq with
 * appliedSeq + 1 against the partition's own subject (or check streamInfo when a gap is seen).
 */
test('worker invariant 14: a running worker that falls behind retention reports it and stops (LOG_TRUNCATED) before applying past the gap', async (t) => {
  const rig = await Rig.create('rv-trunc-live', { checkpoint: slow, counterStream: { maxMsgs: 2 } });
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

test("worker invariant 14: with onTruncatedLog 'skip' a running worker reports the gap once and goes on", async (t) => {
  const rig = await Rig.create('rv-trunc-skip', { checkpoint: { ...slow, onTruncatedLog: 'skip' }, counterStream: { maxMsgs: 2 } });
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

/*
 * BUG 10 (partition-worker.ts applyToActor(), lines 486-491: rebuild, then dead-letter): when a `warden.timer` record crashes
 * its actor maxCrashesPerInput times, the record is dead-lettered, but the actor left in place is
 * the one just REBUILT up to before the record, so the timer is pending again. The wheel keeps it
 * as reported (it never fires in this incarnation), every cut carries it, and after a restart
 * beyond the duplicate window it fires, and crashes, again. A dead-lettered firing should consume
 * the timer (take it from the rebuilt host) like a delivered one.
 */
test('fixed (review): a timer firing that is dead-lettered stays pending in the actor and in every cut', async (t) => {
  const rig = await Rig.create('rv-dl-timer', {
    actor: windowed(true),
    checkpoint: slow,
    stage: { maxCrashesPerInput: 2, supervision: { minBackoffMs: 0, maxBackoffMs: 0 } },
  });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await advance(rig, 5000);
  t.is(ofType(events, 'dead-letter').length, 1, 'the firing was dead-lettered');
  t.is(worker.stats().timers, 0, 'the dead-lettered timer is still pending');
});

/*
 * BUG 11 (partition-worker.ts publishOutputs() line 619, and checkpoint() lines 761-764). With
 * outputs 'after-checkpoint', a full `held` list asks for checkpoint({ force: true }), but
 * publishOutputs runs while the input is being applied, so checkpoint() only sets cpDeferred and
 * the force is lost: advance() then calls checkpoint() without it. With checkpoint.enabled: false
 * (allowed together with 'after-checkpoint') nothing is ever published while the worker runs and
 * `held` grows without bound past maxOutboxSize; with minPauseMs the bound is exceeded until the
 * pause ends.
 */
test("fixed (review): outputs 'after-checkpoint' with checkpoints disabled: a full held list never forces a cut, nothing is published", async (t) => {
  const rig = await Rig.create('rv-held-full', { checkpoint: { enabled: false }, stage: { outputs: 'after-checkpoint' } });
  const { worker } = rig.worker({ maxOutboxSize: 2 });
  t.teardown(() => worker.kill());
  await worker.start();
  for (let i = 1; i <= 5; i++) await rig.add('a', i);
  await advance(rig, 5000);
  t.is(worker.stats().appliedSeq, 5);
  t.true(worker.stats().held < 2, `held grew to ${worker.stats().held} past maxOutboxSize 2`);
  t.true((await rig.messages('tally')).length >= 4, 'nothing was published');
});

/*
 * BUG 12 (partition-worker.ts run() line 391 `await this.outbox.drained()` + stop() lines 264-269). When the outbox is
 * full and the log does not acknowledge (the next stream is down), the loop waits in drained().
 * stop() closes the reader and awaits the loop, which only Outbox.close() would wake, and that is
 * called after the loop ends: stop() never returns. For exactly-once the final cut could simply
 * carry the outbox. Fix: wake the drained() waiter (or race it with the stop) in stop().
 */
test('fixed (review): stop() hangs forever while the outbox is full and the log does not acknowledge', async (t) => {
  const rig = await Rig.create('rv-stop-full', { checkpoint: slow });
  const transport = new FaultyTransport(rig.transport, (s) => s.startsWith('rv-stop-full.tally.'));
  const { worker } = rig.worker({ transport, maxOutboxSize: 2 });
  t.teardown(() => worker.kill());
  await worker.start();
  transport.hold = true;
  for (let i = 1; i <= 3; i++) await rig.add('a', i);
  await settle();
  let stopped = false;
  void worker.stop().then(() => (stopped = true));
  await advance(rig, 30_000, 1000);
  t.true(stopped, 'stop() did not return');
  t.deepEqual((await rig.store.readMeta(rig.scope))?.outbox.map((e) => e.msgId), ['counter:a:1:0', 'counter:a:2:0']);
});

/*
 * BUG 13 (partition-worker.ts checkLogCoversCheckpoint(), line 364): only "the log starts after
 * the checkpoint" is detected, never "the log is BEHIND the checkpoint" (info.lastSeq <
 * checkpoint seq: the stream was deleted and recreated, restored from an older backup, or the
 * worker points at the wrong stream). The reader then starts at checkpoint seq + 1 and silently
 * skips every new input until the stream's sequence catches up.
 */
test('fixed (review): a checkpoint ahead of the log (stream recreated) is not detected: new inputs are skipped silently', async (t) => {
  const rig = await Rig.create('rv-trunc-ahead', { checkpoint: slow });
  const first = rig.worker();
  await first.worker.start();
  await rig.add('a', 1);
  await rig.add('a', 2);
  await settle();
  await first.worker.stop(); // cut at seq 2
  const stream = rig.pipeline.stage('counter').stream;
  await rig.transport.deleteStream(stream);
  await rig.transport.ensureStream({ name: stream, subjects: ['rv-trunc-ahead.counter.*'] });
  await rig.add('a', 3); // seq 1 of the new stream

  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  const err: unknown = await second.worker.start().then(() => undefined, (e: unknown) => e);
  await settle();
  const reported = err !== undefined || ofType(second.events, 'log-truncated').length > 0;
  t.true(reported || (ctxOf(second.worker, 'a')?.seen ?? []).includes(3), 'input 3 was skipped without a report');
});

/*
 * BUG 14 (timer-wheel.ts load(), line 73: `Math.min(...entries.map(...))`). Spreading the
 * restored timer list into Math.min overflows the stack beyond ~120k arguments (V8), so a
 * partition with that many pending timers (docs: passivation lets a node hold millions of keys,
 * each with its timers) can never be restored: start() throws RangeError on every restart.
 */
test('fixed (review): a cut with 200k pending timers cannot be restored (RangeError: Maximum call stack size exceeded)', async (t) => {
  const rig = await Rig.create('rv-many-timers', { actor: windowed(), checkpoint: slow });
  const timers = Array.from({ length: 200_000 }, (_, i) => ({ key: `k${i}`, id: '1.0', dueMs: 1_000_000 + i }));
  await rig.store.write({ scope: rig.scope, seq: 0, epoch: 1, machineVersion: rig.pipeline.stage('counter').actor.version, actors: {}, outbox: [], timers });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await t.notThrowsAsync(worker.start());
  t.is(worker.stats().timers, 200_000);
});

/*
 * BUG 15 (partition-worker.ts commitAhead() line 400 -> checkpoint() line 780 labels the cut
 * `aheadSeq`; rebuild() -> replay.ts:123 replays from entry.seq + 1). At-most-once: the cut written before a batch labels every actor entry it
 * carries with the batch's LAST seq, although the state is from before the batch. When an actor
 * then crashes on a later input of that batch (an actor crash, not a worker crash), it is rebuilt
 * from that entry and replays nothing after the label: the effects of its earlier inputs of the
 * same batch, whose outputs were already published, are silently rolled back. The sink saw
 * count 2, then count 2 again. (Exactly-once labels entries with the applied seq and does not
 * lose them.) Fix: label entries with the applied position (or keep a per-key replay start).
 */
test('worker invariant 8: at-most-once: an actor crash mid-batch keeps the effect of the earlier inputs of its batch', async (t) => {
  const { crashOn } = await import('../helpers/counter.js');
  const rig = await Rig.create('rv-amo-rollback', { checkpoint: slow, stage: { guarantee: 'at-most-once' } });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.add('a', 1);
  await settle();
  crashOn.add(7);
  await Promise.all([rig.add('a', 2), rig.add('a', 7)]); // one batch: [2, 3]
  await settle();
  t.is(ofType(events, 'actor-crashed').length, 1);
  t.deepEqual(ctxOf(worker, 'a')?.seen, [1, 2, 7], 'input 2 was applied, published, then rolled back by the rebuild');
});

/*
 * BUG 16 (timer-wheel.ts fire(), line 116: ids compared as strings). Timers of one key due at
 * the same time are appended (so fire) in string order of their ids: '10.0' before '9.0'. The
 * TimerTable (compareTimers: seq then n, numerically), xstate (creation order) and
 * checkDeterminism (lib/testing) all fire '9.0' first, so a machine that passes the determinism
 * check behaves differently in the worker. Fix: sort with compareTimers.
 */
const ticker = defineActor({
  name: 'counter',
  events: { arm: null, noop: null },
  machine: setup({
    types: { context: {} as { order: string[] }, events: {} as { type: 'arm'; label: string } | { type: 'noop' } | { type: 'tick'; label: string } },
  }).createMachine({
    id: 'ticker',
    context: { order: [] },
    on: {
      arm: { actions: raise(({ event }) => ({ type: 'tick' as const, label: event.label }), { delay: 1000 }) },
      tick: { actions: assign({ order: ({ context, event }) => [...context.order, event.label] }) },
      noop: {},
    },
  }),
});

test('fixed (review): timers of one key due at the same time fire in string order of their ids (10.0 before 9.0)', async (t) => {
  const rig = await Rig.create('rv-tick-order', { actor: ticker, checkpoint: slow });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  for (let i = 1; i <= 8; i++) await rig.send('b', 'noop', {}, `fill-${i}`);
  await rig.send('a', 'arm', { label: 'first' }, 'in-9'); // timer 9.0, due 1000
  await rig.send('a', 'arm', { label: 'second' }, 'in-10'); // timer 10.0, due 1000
  await settle();
  await advance(rig, 1000);
  t.deepEqual((ctxOf(worker, 'a') as unknown as { order: string[] }).order, ['first', 'second']);
});

// ---------------------------------------------------------------------------------------------
// Checked and correct (coverage)
// ---------------------------------------------------------------------------------------------

test('a crashed actor WITH a checkpoint entry is rebuilt with its timer ids and deadlines kept; the timer fires once', async (t) => {
  const boom = new Boom();
  const rig = await Rig.create('rv-entry-timer', { actor: initialTimer(boom), checkpoint: slow });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'poke', {}, 'in-1');
  await settle();
  await advance(rig, 1000);
  await worker.stop(); // a cut: 'a' has an entry with timer 1.0 (due 5000) pending
  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  boom.arm();
  await rig.send('a', 'boom', {}, 'in-3'); // crash, rebuilt from its entry
  await settle();
  t.like(ofType(second.events, 'actor-restarted')[0], { key: 'a', from: 'checkpoint' });
  await advance(rig, 3999);
  t.deepEqual(second.worker.inspect('a')?.value, 'waiting');
  await advance(rig, 1); // t = 5000: the original deadline
  t.deepEqual(second.worker.inspect('a')?.value, 'expired');
  await advance(rig, 10_000);
  t.deepEqual(records(await rig.messages('counter'), 'warden.timer').map((r) => `${r.msgId ?? ''}`), ['counter:a:t1.0:e2']);
  t.deepEqual((await rig.messages('tally')).filter((m) => m.msgId?.startsWith('counter:a:')).length, 1);
});

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

test('passivation never drops an actor while a cut is in flight; a timed-out write that lands late keeps it dirty', async (t) => {
  const rig = await Rig.create('rv-passive-race', { checkpoint: { everyEvents: 1000, intervalMs: 100, timeoutMs: 150 }, stage: { idleMs: 100 } });
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

test('a pending call survives passivation: its result loads the actor back, and it is not issued twice', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('rv-passive-call', { actor: payer(charge), checkpoint: { everyEvents: 1000, intervalMs: 100 }, stage: { idleMs: 200 } });
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

test('stop() with a call in flight: the final cut lists it, the signal is aborted, and a late result is not appended', async (t) => {
  const charge = new ManualCall();
  const rig = await Rig.create('rv-stop-call', { actor: payer(charge), checkpoint: slow });
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

test('exactly-once: a crash after a timer record was applied but before the cut fires it once (the replay delivers it; the re-sent record is dropped)', async (t) => {
  const rig = await Rig.create('rv-eo-timer', { actor: windowed(), checkpoint: slow });
  const first = rig.worker({
    failpoint: (point, info) => {
      if (point === 'after-publish' && info.seq === 2) first.worker.kill();
    },
  });
  await first.worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await advance(rig, 5000);
  t.false(first.worker.running);
  const second = rig.worker();
  t.teardown(() => second.worker.kill());
  await second.worker.start();
  await advance(rig, 6000);
  t.deepEqual(ctxOf(second.worker, 'a') as unknown, { opened: 1, expired: 1 });
  t.is(second.worker.stats().timers, 0);
  t.deepEqual((await rig.messages('tally')).map((m) => m.msgId), ['counter:a:2:0']);
});

test('minPauseMs longer than intervalMs and timeoutMs failures do not starve cuts: a cut lands once the store answers', async (t) => {
  const rig = await Rig.create('rv-pause', { checkpoint: { everyEvents: 1, intervalMs: 100, minPauseMs: 700, timeoutMs: 200 } });
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
