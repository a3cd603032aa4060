/**
 * The persisted snapshot built directly (lib/actor/persist.ts) is xstate's, field for field and
 * in the same key order, for every kind of machine snapshot; and a cut's snapshot is the state at
 * the cut, whatever the actor does after it (ActorHost.capture).
 */
import test, { type ExecutionContext } from 'ava';
import { assign, createActor, createMachine, fromPromise, setup, type AnyStateMachine } from 'xstate';
import { persistSnapshot } from '../../lib/actor/persist.js';
import { ActorHost } from '../../lib/actor/actor-host.js';
import { defineActor } from '../../lib/actor/define-actor.js';
import { SimulatedClock } from '../../lib/core/clock.js';

const counter = createMachine({ context: { n: 0, tags: ['a'], nested: { deep: { list: [1, { x: 2 }] } } }, initial: 'on', states: { on: { on: { inc: { actions: assign({ n: ({ context }) => context.n + 1 }) } } } } });

const nested = createMachine({
  initial: 'a',
  context: {},
  states: {
    a: { initial: 'a1', states: { a1: { on: { next: 'a2' } }, a2: { type: 'final' } }, onDone: 'b' },
    b: {
      type: 'parallel',
      states: {
        left: { initial: 'l1', states: { l1: { on: { go: 'l2' } }, l2: {} } },
        right: { initial: 'r1', states: { r1: {}, hist: { type: 'history' } } },
      },
      on: { finish: 'done' },
    },
    done: { type: 'final' },
  },
  output: { result: 42 },
});

const withHistory = createMachine({
  initial: 'outer',
  states: {
    outer: { initial: 'x', states: { x: { on: { toY: 'y' } }, y: {}, h: { type: 'history', history: 'shallow' } }, on: { leave: 'away' } },
    away: { on: { back: 'outer.h' } },
  },
});

const withChild = setup({ actors: { job: fromPromise(() => new Promise<number>(() => undefined)) } }).createMachine({
  initial: 'working',
  context: {},
  states: { working: { invoke: { src: 'job', id: 'job' } } },
});

const crashing = createMachine({ initial: 'on', states: { on: { on: { boom: { actions: () => { throw new Error('boom'); } } } } } });

function equalToXstate(t: ExecutionContext, machine: AnyStateMachine, events: Array<{ type: string }>): void {
  const actor = createActor(machine);
  actor.subscribe({ error: () => undefined });
  actor.start();
  const check = (): void => {
    const snap = actor.getSnapshot();
    const ours = persistSnapshot(machine, snap);
    const theirs = machine.getPersistedSnapshot(snap);
    t.deepEqual(ours, theirs as unknown);
    t.is(JSON.stringify(ours), JSON.stringify(theirs));
    t.deepEqual(Object.keys(ours as object), Object.keys(theirs as object));
  };
  check();
  for (const e of events) {
    actor.send(e);
    check();
  }
  actor.stop();
}

test('a flat machine with nested context persists as xstate persists it', (t) => {
  equalToXstate(t, counter, [{ type: 'inc' }, { type: 'inc' }]);
});

test('nested, parallel and final states with an output persist as xstate persists them', (t) => {
  equalToXstate(t, nested, [{ type: 'next' }, { type: 'go' }, { type: 'finish' }]);
});

test('a snapshot with a history value is left to xstate and is the same', (t) => {
  equalToXstate(t, withHistory, [{ type: 'toY' }, { type: 'leave' }, { type: 'back' }]);
});

test('a snapshot with an invoked child is left to xstate and is the same', (t) => {
  equalToXstate(t, withChild, []);
});

test('a crashed snapshot persists as xstate persists it', (t) => {
  equalToXstate(t, crashing, [{ type: 'boom' }]);
});

test('a captured snapshot is the state when it was captured, after later inputs and timers', (t) => {
  const def = defineActor({
    name: 'tally',
    machine: setup({ types: { context: {} as { n: number; items: string[] } }, delays: { later: 1000 } }).createMachine({
      context: { n: 0, items: [] },
      initial: 'on',
      states: { on: { on: { add: { actions: assign({ n: ({ context }) => context.n + 1, items: ({ context, event }) => [...context.items, (event as unknown as { item: string }).item] }) }, arm: { target: 'waiting' } } }, waiting: { after: { later: 'on' } } },
    }),
    events: { add: null, arm: null },
  });
  const host = new ActorHost(def, 'k', { clock: new SimulatedClock(0) });
  host.handle({ type: 'add', item: 'a' }, { seq: 1, timeMs: 0 });
  const before = host.persisted();
  const captured = host.capture();
  host.handle({ type: 'add', item: 'b' }, { seq: 2, timeMs: 10 });
  host.handle({ type: 'arm' }, { seq: 3, timeMs: 20 });
  t.deepEqual(captured(), before, 'later inputs do not reach a captured snapshot');
  t.is(host.timers().length, 1);
  const armed = host.capture();
  host.fireTimer(host.timers()[0]!.id, { seq: 4, timeMs: 2000 });
  t.deepEqual((armed() as { 'warden:timers'?: unknown[] })['warden:timers']?.length, 1, 'the timers pending at the capture stay in it');
  t.deepEqual((host.persisted() as { context: { n: number } }).context.n, 2);
});
