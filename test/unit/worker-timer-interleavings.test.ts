/**
 * Log-driven timers of the partition worker under adversarial interleavings: actor crashes and
 * rebuilds (with and without a checkpoint entry), worker crashes between a timer record and the
 * cut, slow starts, at-most-once commits, dead-lettered firings, simultaneous deadlines and very
 * large restored timer lists.
 *
 * What holds throughout (worker invariant 9, actor-host invariant 5): a timer fires only when its
 * `warden.timer` record is applied, its id and deadline come from the log point of the input that
 * armed it, so every replay and rebuild arms the same timer, and it fires once.
 *
 * Everything runs on the rig's `SimulatedClock` (test/helpers/worker-rig.ts).
 */
import test from 'ava';
import { assign, emit, raise, setup } from 'xstate';
import { defineActor, type Transport } from '../../lib/index.js';
import { DelegatingTransport } from '../helpers/delegating-transport.js';
import { advance, rareCuts } from '../helpers/interleaving.js';
import { ctxOf, ofType, records, Rig, settle } from '../helpers/worker-rig.js';

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

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

/** `add` opens a 5 s window; when it expires the actor counts it and emits (as in worker-timers.test.ts). */
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

/** `arm` raises a `tick` carrying its label 1 s later; `tick` records the label. */
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

/** A transport whose `lastSeqOf` takes 1 ms of simulated time, as a network round trip does. */
class SlowLastSeq extends DelegatingTransport {
  constructor(inner: Transport, private readonly rig: Rig) {
    super(inner);
  }
  override async lastSeqOf(stream: string, subject: string): Promise<number> {
    this.rig.clock.advance(1); // the round trip takes time
    return this.inner.lastSeqOf(stream, subject);
  }
}

// ---------------------------------------------------------------------------------------------
// Actor crashes and rebuilds
// ---------------------------------------------------------------------------------------------

/*
 * An actor created in this incarnation has no checkpoint entry yet, so a crash rebuilds it from
 * its initial state plus the replay of its own inputs. The rebuilt host must be created at the
 * log point of the actor's first input, as the original was: then the timer its initial state
 * arms gets the same id ('1.0') and the same deadline, the replayed `warden.timer` record for
 * '1.0' fires it again in the rebuild, and nothing is left pending. A host dated by the rebuild
 * (seq 0, the clock of the crash) would arm another timer that fires a second time: a duplicated
 * output, and a state no later replay would reach.
 */
test('worker invariant 9: a crashed actor rebuilt without a checkpoint entry keeps the timer ids and deadlines of its initial state; the timer fires once', async (t) => {
  const boom = new Boom();
  const rig = await Rig.create('init-timer', { actor: initialTimer(boom), checkpoint: rareCuts });
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
  t.deepEqual({ state, pending, outputs }, { state: 'expired', pending: 0, outputs: 1 }, 'the rebuild replays the firing of 1.0: still expired, no timer pending, one output');
});

/*
 * The same crash once the actor has a checkpoint entry: it is rebuilt from the entry, whose
 * persisted snapshot carries its pending timer, so the timer keeps its id and its original
 * deadline (not re-dated by the restart or the rebuild) and fires once.
 */
test('worker invariant 6: a crashed actor rebuilt from its checkpoint entry keeps its timer ids and deadlines; the timer fires once', async (t) => {
  const boom = new Boom();
  const rig = await Rig.create('entry-timer', { actor: initialTimer(boom), checkpoint: rareCuts });
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

/*
 * A `warden.timer` record that crashes its actor maxCrashesPerInput times is dead-lettered like
 * any other input. The actor left in place is the one rebuilt up to before the record, in which
 * the timer is still pending; the dead letter takes it from there, as a delivered firing would.
 * A timer left pending would never be reported again by the wheel in this incarnation
 * (timer-wheel invariant 2), would ride in every cut, and would fire, and crash, again after a
 * restart.
 */
test('worker invariant 2: a timer firing dead-lettered after crashing its actor consumes the timer: no longer pending, so no cut carries it', async (t) => {
  const rig = await Rig.create('dl-timer', {
    actor: windowed(true),
    checkpoint: rareCuts,
    stage: { maxCrashesPerInput: 2, supervision: { minBackoffMs: 0, maxBackoffMs: 0 } },
  });
  const { worker, events } = rig.worker();
  t.teardown(() => worker.kill());
  await worker.start();
  await rig.send('a', 'add', {}, 'in-1');
  await settle();
  await advance(rig, 5000);
  t.is(ofType(events, 'dead-letter').length, 1, 'the firing was dead-lettered');
  t.is(worker.stats().timers, 0, 'the dead-lettered timer is no longer pending');
});

// ---------------------------------------------------------------------------------------------
// Worker crashes, restarts and slow starts
// ---------------------------------------------------------------------------------------------

/*
 * Exactly-once, worker killed after the `warden.timer` record (seq 2) was applied and published
 * but before any cut: the successor restores the last cut, from before seq 1, and replays seqs 1
 * and 2. The replayed record delivers the firing, so the timer is taken (timers invariant 3:
 * delivered at most once) and the wheel has nothing left to report; the output of the firing
 * keeps its deterministic ID and reaches the next stream once.
 */
test('worker invariant 9, exactly-once: a crash after a timer record was applied but before the cut fires the timer once: the replay delivers the record', async (t) => {
  const rig = await Rig.create('eo-timer', { actor: windowed(), checkpoint: rareCuts });
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

/*
 * At-most-once commits the cut for a batch before applying it, so a cut may list a timer as
 * pending although its `warden.timer` record is in the batch it covers. If the worker dies before
 * applying that record, the successor never applies it (it is at or below the restored position)
 * and reports the timer again. Its new record carries the successor's epoch in its ID (records
 * invariant 2), so the stream's duplicate window does not drop it as a copy of the first one,
 * and the timer fires, once. An actor waiting on a timer never hangs.
 */
test('records invariant 2, at-most-once: a timer whose record was committed but not applied before a crash is sent again under the new epoch and fires once', async (t) => {
  const rig = await Rig.create('amo-timer', { actor: windowed(), checkpoint: rareCuts, stage: { guarantee: 'at-most-once' } });
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
 * A timer restored from the cut whose deadline passed while the partition was down is due at
 * once. The wheel reports a timer once per arming (timer-wheel invariant 2) and the worker
 * appends firings only while it runs (records invariant 3), so the restored timers are loaded
 * into the wheel only once the start is complete. Here the start takes time (a `lastSeqOf` round
 * trip of 1 ms of simulated time), and the overdue timer still fires, once.
 */
test('worker invariant 9: a timer restored overdue fires once the worker runs, however long its start takes', async (t) => {
  const rig = await Rig.create('start-timer', { actor: windowed(), checkpoint: rareCuts });
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
  t.is(records(await rig.messages('counter'), 'warden.timer').length, 1, 'the firing is appended once');
  t.deepEqual(ctxOf(second.worker, 'a') as unknown, { opened: 1, expired: 1 });
});

// ---------------------------------------------------------------------------------------------
// Order and scale
// ---------------------------------------------------------------------------------------------

/*
 * Timers of one key due at the same moment fire in the order they were armed: by the sequence of
 * the arming input, then by their count within it (timer '9.0' before '10.0'), as xstate fires
 * them and as `checkDeterminism` (lib/testing) assumes. Compared as strings, '10.0' would come
 * first, and a machine that passes the determinism check would behave differently in a worker.
 */
test('timers of one key due at the same moment fire in the order they were armed (9.0 before 10.0), as xstate fires them', async (t) => {
  const rig = await Rig.create('tick-order', { actor: ticker, checkpoint: rareCuts });
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

/*
 * Passivation lets a partition hold far more keys than it keeps in memory, each with its pending
 * timers, and the cut carries them all. Restoring such a list must not depend on its size: no
 * spread of the list into one call (V8 overflows its stack beyond ~120k arguments), or the
 * partition could never start again.
 */
test('a cut with 200,000 pending timers is restored, every timer pending', async (t) => {
  const rig = await Rig.create('many-timers', { actor: windowed(), checkpoint: rareCuts });
  const timers = Array.from({ length: 200_000 }, (_, i) => ({ key: `k${i}`, id: '1.0', dueMs: 1_000_000 + i }));
  await rig.store.write({ scope: rig.scope, seq: 0, epoch: 1, machineVersion: rig.pipeline.stage('counter').actor.version, actors: {}, outbox: [], timers });
  const { worker } = rig.worker();
  t.teardown(() => worker.kill());
  await t.notThrowsAsync(worker.start());
  t.is(worker.stats().timers, 200_000);
});
