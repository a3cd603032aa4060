/**
 * Durable timers of ActorHost (lib/actor/timers.ts): delayed events are pending timers named by
 * the log point that armed them, carried by persisted(), and delivered only by fireTimer.
 */
import test from 'ava';
import { assign, cancel, createActor, emit, raise, sendParent, sendTo, setup } from 'xstate';
import { ActorHost, type EmittedEvent, type LogPoint } from '../../lib/actor/actor-host.js';
import { defineActor, type ActorDefinition } from '../../lib/actor/define-actor.js';
import { migrated } from '../../lib/worker/replay.js';
import { joinPersisted, splitPersisted, TIMERS_FIELD, type PersistedTimer } from '../../lib/actor/timers.js';
import { SimulatedClock, type Clock } from '../../lib/core/clock.js';
import type { Json } from '../../lib/core/envelope.js';
import { ActorCrashedError, WardenError } from '../../lib/core/errors.js';
import { definePipeline } from '../../lib/pipeline/define-pipeline.js';

/** A clock that fails the test if the host (or xstate) reads it or arms a timeout on it. */
const strictClock: Clock = {
  now: () => {
    throw new Error('clock.now() called');
  },
  setTimeout: () => {
    throw new Error('clock.setTimeout() called');
  },
  clearTimeout: () => {
    throw new Error('clock.clearTimeout() called');
  },
};

const at = (seq: number, timeMs: number): LogPoint => ({ seq, timeMs });
const json = (v: Json): Json => JSON.parse(JSON.stringify(v)) as Json;
const timersOf = (v: Json): unknown => (v as Record<string, unknown>)[TIMERS_FIELD];

function code(err: unknown): string | undefined {
  return err instanceof WardenError ? err.code : undefined;
}

// --- machines --------------------------------------------------------------------------------

class Boom extends Error {}

/**
 * `waiting` arms a 1000 ms `after` on entry (initial state); `leave` exits it before it fires.
 * `arm` enters `double`, arming two timers in one input; `snooze` raises a delayed `ring`, and
 * `remind`/`forget` arm and cancel a delayed raise with an explicit id.
 */
const alarm = defineActor({
  name: 'alarm',
  machine: setup({
    types: {
      context: {} as { rings: number },
      events: {} as { type: 'leave' } | { type: 'arm' } | { type: 'snooze'; ms: number } | { type: 'ring' } | { type: 'remind' } | { type: 'forget' } | { type: 'reminded' },
      emitted: {} as { type: 'ready' } | { type: 'left' } | { type: 'fast' } | { type: 'slow' } | { type: 'rang'; rings: number } | { type: 'reminder' },
    },
  }).createMachine({
    context: { rings: 0 },
    initial: 'waiting',
    on: {
      snooze: { actions: raise({ type: 'ring' }, { delay: ({ event }) => event.ms }) },
      ring: { actions: [assign({ rings: ({ context }) => context.rings + 1 }), emit(({ context }) => ({ type: 'rang' as const, rings: context.rings }))] },
      remind: { actions: raise({ type: 'reminded' }, { id: 'reminder', delay: 300 }) },
      forget: { actions: cancel('reminder') },
      reminded: { actions: emit({ type: 'reminder' as const }) },
    },
    states: {
      waiting: {
        after: { 1000: { target: 'ready', actions: emit({ type: 'ready' as const }) } },
        on: { leave: { target: 'left', actions: emit({ type: 'left' as const }) } },
      },
      ready: { on: { arm: 'double' } },
      left: { on: { arm: 'double' } },
      double: {
        after: {
          100: { actions: emit({ type: 'fast' as const }) },
          200: { target: 'ready', actions: emit({ type: 'slow' as const }) },
        },
      },
    },
  }),
});

/** An invoked child `kid` with its own `after`, receiving a delayed sendTo and answering with a delayed sendParent. */
const kid = setup({
  types: { events: {} as { type: 'nudge' } },
}).createMachine({
  initial: 'idle',
  states: {
    idle: {
      after: { 500: 'bored' },
      on: { nudge: { actions: sendParent({ type: 'nudged' }, { delay: 20 }) } },
    },
    bored: { entry: sendParent({ type: 'kidBored' }) },
  },
});

const family = defineActor({
  name: 'family',
  machine: setup({
    types: {
      events: {} as { type: 'poke' } | { type: 'nudged' } | { type: 'kidBored' } | { type: 'home' },
      emitted: {} as { type: 'kid-nudged' } | { type: 'kid-bored' },
    },
    actors: { kid },
  }).createMachine({
    initial: 'out',
    states: {
      out: {
        invoke: { id: 'kid', src: 'kid' },
        on: {
          poke: { actions: sendTo('kid', { type: 'nudge' }, { delay: 30 }) },
          nudged: { actions: emit({ type: 'kid-nudged' as const }) },
          kidBored: { actions: emit({ type: 'kid-bored' as const }) },
          home: 'home',
        },
      },
      home: {},
    },
  }),
});

/** A timer-triggered transition emits, then an action throws. */
const fuse = defineActor({
  name: 'fuse',
  machine: setup({
    types: { events: {} as { type: 'light' }, emitted: {} as { type: 'hiss' } | { type: 'lit' } },
    actions: {
      boom: () => {
        throw new Boom('bang');
      },
    },
  }).createMachine({
    initial: 'idle',
    states: {
      idle: { on: { light: { target: 'burning', actions: emit({ type: 'lit' as const }) } } },
      burning: { after: { 100: { target: 'gone', actions: [emit({ type: 'hiss' as const }), 'boom'] } } },
      gone: {},
    },
  }),
});

function host(def: ActorDefinition, created: LogPoint, snapshot?: Json): ActorHost {
  return new ActorHost(def, 'k', snapshot === undefined ? { clock: strictClock, at: created } : { clock: strictClock, at: created, snapshot });
}

// --- arming ----------------------------------------------------------------------------------

test('an after in the initial state is a pending timer named by the creating log point, due at its time plus the delay', (t) => {
  const h = host(alarm, at(7, 10_000));
  t.deepEqual(h.timers(), [{ id: '7.0', dueMs: 11_000 }]);
  t.is(h.snapshot().value, 'waiting');
});

test('fireTimer delivers the delayed event: the machine transitions and its emits are returned', (t) => {
  const h = host(alarm, at(7, 10_000));
  t.deepEqual(h.fireTimer('7.0', at(9, 11_002)), [{ type: 'ready' }]);
  t.is(h.snapshot().value, 'ready');
  t.deepEqual(h.timers(), []);
});

test('arming a timer reads neither the clock nor Math.random, even for a delayed raise without an id', (t) => {
  const random = Math.random;
  Math.random = () => {
    throw new Error('Math.random() called');
  };
  try {
    const h = host(alarm, at(1, 0)); // strictClock throws on every call
    h.handle({ type: 'snooze', ms: 50 }, at(2, 10));
    h.handle({ type: 'leave' }, at(3, 20));
    t.deepEqual(h.fireTimer('2.0', at(4, 60)), [{ type: 'rang', rings: 1 }]);
    t.deepEqual(h.timers(), []);
    t.is(timersOf(h.persisted()), undefined);
  } finally {
    Math.random = random;
  }
});

test('a timer cancelled by leaving its state before it fires: gone from timers(); fireTimer returns [] and changes nothing', (t) => {
  const h = host(alarm, at(1, 0));
  t.deepEqual(h.handle({ type: 'leave' }, at(2, 500)), [{ type: 'left' }]);
  t.deepEqual(h.timers(), []);
  const before = h.persisted();
  t.deepEqual(h.fireTimer('1.0', at(3, 1000)), []);
  t.is(h.snapshot().value, 'left');
  t.deepEqual(h.persisted(), before);
  t.is(timersOf(before), undefined, 'no warden field without pending timers');
});

test('two timers armed by one input are numbered .0 and .1, and timers() lists them by deadline', (t) => {
  const h = host(alarm, at(1, 0));
  h.handle({ type: 'leave' }, at(2, 10));
  h.handle({ type: 'arm' }, at(5, 1_000));
  t.deepEqual(h.timers(), [
    { id: '5.0', dueMs: 1_100 },
    { id: '5.1', dueMs: 1_200 },
  ]);
  t.deepEqual(h.fireTimer('5.0', at(6, 1_100)), [{ type: 'fast' }]);
  t.deepEqual(h.timers(), [{ id: '5.1', dueMs: 1_200 }]);
  t.deepEqual(h.fireTimer('5.1', at(7, 1_200)), [{ type: 'slow' }]);
  t.is(h.snapshot().value, 'ready');
  t.deepEqual(h.timers(), []);
});

test('timers() orders by deadline, then by id (seq, then n, numerically)', (t) => {
  const h = host(alarm, at(1, 0)); // 1.0 due 1000
  h.handle({ type: 'snooze', ms: 990 }, at(10, 10)); // 10.0 due 1000
  h.handle({ type: 'snooze', ms: 993 }, at(9, 5)); // 9.0 due 998
  h.handle({ type: 'snooze', ms: 500 }, at(2, 500)); // 2.0 due 1000
  t.deepEqual(h.timers(), [
    { id: '9.0', dueMs: 998 },
    { id: '1.0', dueMs: 1000 },
    { id: '2.0', dueMs: 1000 },
    { id: '10.0', dueMs: 1000 },
  ]);
});

test('a timer fires once: a second fireTimer with the same id returns [] and changes nothing', (t) => {
  const h = host(alarm, at(1, 0));
  h.handle({ type: 'snooze', ms: 5 }, at(2, 100));
  t.deepEqual(h.fireTimer('2.0', at(3, 105)), [{ type: 'rang', rings: 1 }]);
  const after = h.persisted();
  t.deepEqual(h.fireTimer('2.0', at(4, 106)), []);
  t.deepEqual(h.persisted(), after);
  t.deepEqual(h.snapshot().context, { rings: 1 });
  t.deepEqual(h.fireTimer('no.such', at(5, 107)), []);
});

test('a delayed raise with an id is cancelled by cancel(id) of the same actor', (t) => {
  const h = host(alarm, at(1, 0));
  h.handle({ type: 'remind' }, at(2, 100));
  t.deepEqual(h.timers(), [{ id: '2.0', dueMs: 400 }, { id: '1.0', dueMs: 1000 }]);
  t.deepEqual(h.handle({ type: 'forget' }, at(3, 200)), []);
  t.deepEqual(h.timers(), [{ id: '1.0', dueMs: 1000 }], 'only the reminder is cancelled');
  t.deepEqual(h.fireTimer('2.0', at(4, 400)), []);
  h.handle({ type: 'remind' }, at(5, 500));
  t.deepEqual(h.fireTimer('5.0', at(6, 800)), [{ type: 'reminder' }]);
});

test('handle(event, seq) dates timers by clock.now(); without a log point numbering continues under the last seq', (t) => {
  const sim = new SimulatedClock(50);
  const h = new ActorHost(alarm, 'k', { clock: sim });
  t.deepEqual(h.timers(), [{ id: '0.0', dueMs: 1_050 }], 'created without `at`: seq 0 at clock.now()');
  sim.advance(100);
  h.handle({ type: 'snooze', ms: 10 }, 4);
  h.handle({ type: 'snooze', ms: 20 });
  t.deepEqual(h.timers(), [
    { id: '4.0', dueMs: 160 },
    { id: '4.1', dueMs: 170 },
    { id: '0.0', dueMs: 1_050 },
  ]);
  t.is(sim.pending, 0, 'no timeout is armed on the clock');
  sim.advance(5_000);
  t.is(h.snapshot().value, 'waiting', 'the clock never fires a machine timer');
});

test('handle(event, seq) reads the clock only for an input that arms a timer, and dates it from that input', (t) => {
  const sim = new SimulatedClock(0);
  let reads = 0;
  const counting: Clock = { now: () => (reads++, sim.now()), setTimeout: (fn, ms) => sim.setTimeout(fn, ms), clearTimeout: (h) => sim.clearTimeout(h) };
  const h = new ActorHost(alarm, 'k', { clock: counting, at: at(1, 0) });
  h.handle({ type: 'leave' }, 2);
  h.handle({ type: 'forget' }, 3);
  sim.advance(200);
  h.handle({ type: 'forget' }, 4);
  t.is(reads, 0, 'inputs that arm no timer do not read the clock');
  sim.advance(300);
  h.handle({ type: 'arm' }, 5);
  t.is(reads, 1, 'one read for the input that armed two timers');
  t.deepEqual(h.timers(), [
    { id: '5.0', dueMs: 600 },
    { id: '5.1', dueMs: 700 },
  ], 'dated from the clock at the arming input, not at an earlier one');
});

// --- persistence -----------------------------------------------------------------------------

test('persisted() carries the pending timers; a host restored from it lists the same timers and fires them', (t) => {
  const a = host(alarm, at(1, 0));
  a.handle({ type: 'snooze', ms: 40 }, at(3, 100));
  const saved = json(a.persisted());
  t.deepEqual(timersOf(saved), [
    { id: '3.0', dueMs: 140, delay: 40, event: { type: 'ring' }, source: '', target: '', xid: null },
    { id: '1.0', dueMs: 1000, delay: 1000, event: { type: 'xstate.after.1000.(machine).waiting' }, source: '', target: '', xid: 'xstate.after.1000.(machine).waiting' },
  ]);
  const b = host(alarm, at(4, 150), saved);
  t.deepEqual(b.timers(), a.timers());
  t.deepEqual(b.persisted(), a.persisted());
  t.deepEqual(b.fireTimer('3.0', at(5, 140)), [{ type: 'rang', rings: 1 }]);
  t.deepEqual(b.fireTimer('1.0', at(6, 1000)), [{ type: 'ready' }]);
  t.is(b.snapshot().value, 'ready');
  // The restored actor cancels restored timers as well.
  const c = host(alarm, at(4, 150), saved);
  c.handle({ type: 'leave' }, at(5, 160));
  t.deepEqual(c.timers(), [{ id: '3.0', dueMs: 140 }]);
});

test('replay determinism: hosts fed the same inputs at the same log points have identical timers and persisted state', (t) => {
  const script: Array<[EmittedEvent, LogPoint] | ['fire', string, LogPoint]> = [
    [{ type: 'snooze', ms: 70 }, at(2, 100)],
    [{ type: 'remind' }, at(3, 120)],
    ['fire', '2.0', at(4, 170)],
    [{ type: 'snooze', ms: 5 }, at(5, 200)],
    [{ type: 'snooze', ms: 5 }, at(6, 201)],
    [{ type: 'leave' }, at(7, 300)],
    [{ type: 'arm' }, at(8, 400)],
    ['fire', '8.0', at(9, 500)],
  ];
  const play = (h: ActorHost, steps: typeof script): EmittedEvent[][] =>
    steps.map((s) => (s[0] === 'fire' ? h.fireTimer(s[1], s[2]) : h.handle(s[0], s[1])));
  const a = host(alarm, at(1, 0));
  const b = host(alarm, at(1, 0));
  const outA = play(a, script);
  const outB = play(b, script);
  t.deepEqual(outB, outA);
  t.deepEqual(b.timers(), a.timers());
  t.deepEqual(b.persisted(), a.persisted());
  t.deepEqual(a.timers().map((x) => x.id), ['5.0', '6.0', '3.0', '8.1']);
  // Restored halfway and fed the rest: the same again.
  for (const k of [0, 3, 5, 7]) {
    const first = host(alarm, at(1, 0));
    play(first, script.slice(0, k));
    const resumed = host(alarm, at(99, 9_999), json(first.persisted()));
    t.deepEqual(play(resumed, script.slice(k)), outA.slice(k), `outputs after restore at ${k}`);
    t.deepEqual(resumed.persisted(), a.persisted(), `persisted after restore at ${k}`);
  }
});

test('invoked child: delayed sendTo to it, its delayed sendParent and its own after are timers named by path, and work after restores', (t) => {
  const h = host(family, at(1, 1_000));
  t.deepEqual(h.timers(), [{ id: '1.0', dueMs: 1_500 }], "the child's initial after, armed while the host starts");
  h.handle({ type: 'poke' }, at(2, 1_100));
  const saved = json(h.persisted());
  t.deepEqual(timersOf(saved), [
    { id: '2.0', dueMs: 1_130, delay: 30, event: { type: 'nudge' }, source: '', target: 'kid', xid: null },
    { id: '1.0', dueMs: 1_500, delay: 500, event: { type: 'xstate.after.500.(machine).idle' }, source: 'kid', target: 'kid', xid: 'xstate.after.500.(machine).idle' },
  ]);

  const r1 = host(family, at(3, 1_120), saved);
  t.deepEqual(r1.timers(), h.timers());
  t.deepEqual(r1.fireTimer('2.0', at(3, 1_130)), [], 'the nudge reaches the child, which answers later');
  t.deepEqual(r1.timers(), [{ id: '3.0', dueMs: 1_150 }, { id: '1.0', dueMs: 1_500 }]);
  t.like(timersOf(r1.persisted()), [{ id: '3.0', source: 'kid', target: '' }]);

  const r2 = host(family, at(4, 1_140), json(r1.persisted()));
  t.deepEqual(r2.fireTimer('3.0', at(4, 1_150)), [{ type: 'kid-nudged' }]);
  t.deepEqual(r2.fireTimer('1.0', at(5, 1_500)), [{ type: 'kid-bored' }]);
  const kid = (r2.persisted() as { children?: { kid?: { snapshot: { value: unknown } } } }).children?.kid;
  t.is(kid?.snapshot.value, 'bored');
  t.deepEqual(r2.timers(), []);
});

test("a child's timers are cancelled when the child stops with the state that invoked it", (t) => {
  const h = host(family, at(1, 0));
  h.handle({ type: 'poke' }, at(2, 10)); // parent -> kid, source ''
  h.handle({ type: 'nudged' }, at(3, 20));
  h.fireTimer('2.0', at(4, 40)); // kid arms its sendParent (source 'kid')
  t.deepEqual(h.timers().map((x) => x.id), ['4.0', '1.0']);
  h.handle({ type: 'home' }, at(5, 50));
  t.deepEqual(h.timers(), [], "the kid's after and its delayed sendParent leave with it");
  t.deepEqual(h.fireTimer('4.0', at(6, 60)), []);
});

test('a delayed sendTo whose target child is gone is consumed and delivered to nobody', (t) => {
  const h = host(family, at(1, 0));
  h.handle({ type: 'poke' }, at(2, 10));
  h.handle({ type: 'home' }, at(3, 20));
  t.deepEqual(h.timers(), [{ id: '2.0', dueMs: 40 }], 'armed by the parent, which is still there');
  t.deepEqual(h.fireTimer('2.0', at(4, 40)), []);
  t.deepEqual(h.timers(), []);
  t.is(h.snapshot().value, 'home');
});

test('a delayed sendTo to an actor outside the tree cannot be made durable: the step crashes with CONFIG', (t) => {
  const outsider = createActor(setup({}).createMachine({})).start();
  const def = defineActor({
    name: 'leaky',
    machine: setup({ types: { events: {} as { type: 'go' } } }).createMachine({
      on: { go: { actions: sendTo(() => outsider, { type: 'hi' }, { delay: 10 }) } },
    }),
  });
  const h = host(def, at(1, 0));
  const err = t.throws(() => h.handle({ type: 'go' }, at(2, 0)));
  t.true(err instanceof ActorCrashedError);
  t.is(code(err.cause), 'CONFIG');
  outsider.stop();
});

test('migrate() receives the snapshot without the warden field; the timers are re-attached to its result', (t) => {
  const seen: Json[] = [];
  const v2 = defineActor({
    name: 'alarm',
    version: 2,
    machine: alarm.machine,
    migrate: (snapshot) => {
      seen.push(snapshot);
      return { ...(snapshot as Record<string, Json>), context: { rings: 42 } };
    },
  });
  const stage = definePipeline({ name: 'p', stages: [{ actor: v2 }] }).stages[0]!;
  const old = host(alarm, at(1, 0));
  old.handle({ type: 'snooze', ms: 10 }, at(2, 5));
  const entry = { key: 'k', snapshot: json(old.persisted()), machineVersion: '1', seq: 2 };
  const before = json(entry.snapshot);
  const out = migrated(stage, entry);
  t.is(seen.length, 1);
  t.false(TIMERS_FIELD in (seen[0] as Record<string, unknown>), 'migrate does not see the warden field');
  t.deepEqual(entry.snapshot, before, 'the entry is not modified');
  t.deepEqual(timersOf(out), timersOf(before));
  const h = host(v2, at(3, 6), out);
  t.deepEqual(h.snapshot().context, { rings: 42 });
  t.deepEqual(h.fireTimer('2.0', at(4, 15)), [{ type: 'rang', rings: 43 }]);
});

// --- crashes ---------------------------------------------------------------------------------

test('an action that throws in a timer-triggered transition: fireTimer throws ActorCrashedError and returns no outputs', (t) => {
  const h = host(fuse, at(1, 0));
  t.deepEqual(h.handle({ type: 'light' }, at(2, 10)), [{ type: 'lit' }]);
  t.deepEqual(h.timers(), [{ id: '2.0', dueMs: 110 }]);
  let outputs: EmittedEvent[] | undefined;
  const err = t.throws(() => {
    outputs = h.fireTimer('2.0', at(3, 110));
  });
  t.true(err instanceof ActorCrashedError);
  t.is(code(err), 'ACTOR_CRASHED');
  t.true(err.cause instanceof Boom);
  t.like((err as WardenError).details, { actor: 'fuse', key: 'k', seq: 3, timer: '2.0', type: 'xstate.after.100.(machine).burning' });
  t.is(outputs, undefined);
  t.is(h.status, 'error');
  t.deepEqual(h.timers(), []);
  t.is(t.throws(() => h.fireTimer('2.0', at(4, 120))), err, 'a crashed host refuses timers like inputs');
  t.is(t.throws(() => h.handle({ type: 'light' }, at(5, 130))), err);
});

test('a host that reaches a final state has no pending timers', (t) => {
  const def = defineActor({
    name: 'brief',
    machine: setup({ types: { events: {} as { type: 'end' } }, actors: { kid } }).createMachine({
      initial: 'on',
      invoke: { id: 'kid', src: 'kid' },
      states: { on: { after: { 100: 'on' }, on: { end: 'over' } }, over: { type: 'final' } },
    }),
  });
  const h = host(def, at(1, 0));
  t.is(h.timers().length, 2);
  h.handle({ type: 'end' }, at(2, 10));
  t.is(h.status, 'done');
  t.deepEqual(h.timers(), []);
  t.is(timersOf(h.persisted()), undefined);
});

// --- helpers ---------------------------------------------------------------------------------

const sample: PersistedTimer = { id: '3.0', dueMs: 140, delay: 40, event: { type: 'ring', n: 1 }, source: '', target: 'a/b%2Fc', xid: null };

test('joinPersisted and splitPersisted are pure and inverse of each other', (t) => {
  const snap: Json = { status: 'active', value: 'x', context: {}, children: {} };
  const joined = joinPersisted(snap, [sample]);
  t.deepEqual(snap, { status: 'active', value: 'x', context: {}, children: {} });
  t.deepEqual(timersOf(joined), [sample]);
  const split = splitPersisted(joined);
  t.deepEqual(split, { snapshot: snap, timers: [sample] });
  t.true(TIMERS_FIELD in (joined as Record<string, unknown>), 'split does not modify its argument');
  t.is(joinPersisted(snap, []), snap, 'no field without timers');
  t.deepEqual(splitPersisted(snap), { snapshot: snap, timers: [] });
});

test('a malformed warden:timers field is CHECKPOINT_CORRUPT; a host restored from it crashes at construction', (t) => {
  const bad: Json = { status: 'active', value: 'waiting', context: { rings: 0 }, children: {}, [TIMERS_FIELD]: [{ id: 1 }] };
  t.is(code(t.throws(() => splitPersisted(bad))), 'CHECKPOINT_CORRUPT');
  const dup = { status: 'active', [TIMERS_FIELD]: [{ ...sample }, { ...sample }] } as unknown as Json;
  t.is(code(t.throws(() => splitPersisted(dup))), 'CHECKPOINT_CORRUPT');
  const err = t.throws(() => host(alarm, at(1, 0), bad));
  t.true(err instanceof ActorCrashedError);
  t.is(code(err.cause), 'CHECKPOINT_CORRUPT');
  t.like((err as WardenError).details, { phase: 'restore' });
});
