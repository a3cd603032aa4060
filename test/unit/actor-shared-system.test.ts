/**
 * The keyed actors of a partition run in one xstate actor system (lib/actor/actor-system.ts):
 * an actor behaves the same there as in its own system (ActorHost invariant 7), and what a
 * machine sees of its system (`systemId`s, timers, calls, crashes) stays its own key's.
 */
import test from 'ava';
import { assign, emit, sendParent, sendTo, setup, type AnyActorRef } from 'xstate';
import { ActorHost } from '../../lib/actor/actor-host.js';
import { SharedActorSystem } from '../../lib/actor/actor-system.js';
import { SimulatedClock } from '../../lib/core/clock.js';
import { defineActor, type CallTarget } from '../../lib/index.js';
import { payer } from '../helpers/payer.js';

/** Counts `tick`s; `arm` arms a 1 s `after` that emits `rang` and ends (`rung` is final); `boom` throws. */
const bell = defineActor({
  name: 'bell',
  events: { tick: null, arm: null, boom: null },
  machine: setup({
    types: { context: {} as { n: number }, events: {} as { type: 'tick' } | { type: 'arm' } | { type: 'boom' }, emitted: {} as { type: 'ticked'; n: number } | { type: 'rang' } },
  }).createMachine({
    id: 'bell',
    initial: 'idle',
    context: { n: 0 },
    on: {
      tick: { actions: [assign({ n: ({ context }) => context.n + 1 }), emit(({ context }) => ({ type: 'ticked' as const, n: context.n }))] },
      boom: { actions: () => { throw new Error('boom'); } },
    },
    states: {
      idle: { on: { arm: 'armed' } },
      armed: { after: { 1000: { target: 'rung', actions: emit({ type: 'rang' as const }) } } },
      rung: { type: 'final' },
    },
  }),
});

test('an actor in a shared system gives the same outputs, timers and persisted snapshots as one in its own', (t) => {
  const clock = new SimulatedClock(1_000);
  const system = new SharedActorSystem(clock);
  const shared = new ActorHost(bell, 'a', { clock, system });
  const own = new ActorHost(bell, 'a', { clock });
  const script: Array<{ type: string }> = [{ type: 'tick' }, { type: 'arm' }, { type: 'tick' }];
  script.forEach((ev, i) => t.deepEqual(shared.handle(ev, { seq: i + 1, timeMs: 1_000 + i }), own.handle(ev, { seq: i + 1, timeMs: 1_000 + i })));
  t.deepEqual(shared.timers(), own.timers());
  t.deepEqual(shared.timers(), [{ id: '2.0', dueMs: 2_001 }]);
  t.deepEqual(shared.persisted(), own.persisted());
  // Restored from each other's snapshot, each fires the timer the same way.
  const back = new ActorHost(bell, 'a', { clock, system, snapshot: own.persisted() });
  t.deepEqual(back.fireTimer('2.0', { seq: 4, timeMs: 2_001 }), [{ type: 'rang' }]);
  t.deepEqual(shared.fireTimer('2.0', { seq: 4, timeMs: 2_001 }), [{ type: 'rang' }]);
  t.deepEqual(back.persisted(), shared.persisted());
  t.deepEqual(shared.timers(), []);
});

test('timers of two keys in one system are each their own key\'s', (t) => {
  const clock = new SimulatedClock(0);
  const system = new SharedActorSystem(clock);
  const a = new ActorHost(bell, 'a', { clock, system });
  const b = new ActorHost(bell, 'b', { clock, system });
  a.handle({ type: 'arm' }, { seq: 1, timeMs: 0 });
  b.handle({ type: 'arm' }, { seq: 7, timeMs: 500 });
  t.deepEqual(a.timers(), [{ id: '1.0', dueMs: 1_000 }]);
  t.deepEqual(b.timers(), [{ id: '7.0', dueMs: 1_500 }]);
  b.stop();
  t.deepEqual(a.timers(), [{ id: '1.0', dueMs: 1_000 }], 'stopping b cancels nothing of a');
  t.deepEqual(a.fireTimer('1.0', { seq: 8, timeMs: 1_000 }), [{ type: 'rang' }]);
  t.is(b.status, 'stopped');
  t.deepEqual(b.timers(), []);
});

test('a crash or a final state of one key leaves the other keys and the system running', (t) => {
  const clock = new SimulatedClock(0);
  const system = new SharedActorSystem(clock);
  const a = new ActorHost(bell, 'a', { clock, system });
  const b = new ActorHost(bell, 'b', { clock, system });
  t.throws(() => a.handle({ type: 'boom' }, 1), { code: 'ACTOR_CRASHED' });
  t.is(a.status, 'error');
  t.deepEqual(b.handle({ type: 'tick' }, 2), [{ type: 'ticked', n: 1 }]);
  b.handle({ type: 'arm' }, { seq: 3, timeMs: 0 });
  t.deepEqual(b.fireTimer('3.0', { seq: 4, timeMs: 1_000 }), [{ type: 'rang' }]);
  t.is(b.status, 'done');
  const c = new ActorHost(bell, 'c', { clock, system });
  t.deepEqual(c.handle({ type: 'tick' }, 5), [{ type: 'ticked', n: 1 }]);
  t.deepEqual(c.handle({ type: 'arm' }, { seq: 6, timeMs: 0 }), []);
  t.deepEqual(c.timers(), [{ id: '6.0', dueMs: 1_000 }]);
});

/** A parent whose child has `systemId: 'helper'`; `ping` goes to `system.get('helper')`, which counts it. */
const withHelper = defineActor({
  name: 'with-helper',
  events: { ping: null },
  machine: setup({
    types: { events: {} as { type: 'ping' } },
    actors: {
      helper: setup({ types: { context: {} as { pings: number }, events: {} as { type: 'ping' } } }).createMachine({
        context: { pings: 0 },
        on: { ping: { actions: assign({ pings: ({ context }) => context.pings + 1 }) } },
      }),
    },
  }).createMachine({
    id: 'parent',
    invoke: { id: 'helper', systemId: 'helper', src: 'helper' },
    on: { ping: { actions: sendTo(({ system }) => system.get('helper') as AnyActorRef, { type: 'ping' }) } },
  }),
});

function pingsOf(host: ActorHost): unknown {
  return (host.persisted() as { children: { helper: { snapshot: { context: { pings: number } } } } }).children.helper.snapshot.context.pings;
}

test('two keys may each have a child with the same systemId, and system.get finds the key\'s own', (t) => {
  const clock = new SimulatedClock(0);
  const system = new SharedActorSystem(clock);
  const a = new ActorHost(withHelper, 'a', { clock, system });
  const b = new ActorHost(withHelper, 'b', { clock, system });
  a.handle({ type: 'ping' }, 1);
  a.handle({ type: 'ping' }, 2);
  b.handle({ type: 'ping' }, 3);
  t.is(pingsOf(a), 2);
  t.is(pingsOf(b), 1);
  // A key restored from a snapshot registers its child's systemId again, in its own namespace.
  const a2 = new ActorHost(withHelper, 'a', { clock, system, snapshot: a.persisted() });
  a.stop();
  a2.handle({ type: 'ping' }, 4);
  t.is(pingsOf(a2), 3);
  t.is(pingsOf(b), 1);
});

test('system.get outside a step of the key finds nothing, even through a system captured in another key\'s step', (t) => {
  const clock = new SimulatedClock(0);
  const system = new SharedActorSystem(clock);
  let captured: { get(id: string): unknown } | undefined;
  const capturing = defineActor({
    name: 'capturing',
    events: { ping: null },
    machine: setup({
      types: { events: {} as { type: 'ping' } },
      actors: { helper: setup({}).createMachine({}) },
      actions: { keep: ({ system: s }) => void (captured = s) },
    }).createMachine({ invoke: { id: 'helper', systemId: 'helper', src: 'helper' }, on: { ping: { actions: 'keep' } } }),
  });
  const a = new ActorHost(capturing, 'a', { clock, system });
  const b = new ActorHost(withHelper, 'b', { clock, system });
  a.handle({ type: 'ping' }, 1);
  t.is(captured?.get('helper'), undefined, 'after a\'s step: no key is being stepped');
  b.handle({ type: 'ping' }, 2);
  t.is(captured?.get('helper'), undefined, 'a system captured in a\'s step does not reach b\'s helper');
  t.is(pingsOf(b), 1, 'b\'s own step still found its helper');
  a.stop();
  b.stop();
});

test('guarded calls of two keys in one system are numbered and resolved per key', (t) => {
  const charge: CallTarget<{ amount: number }, { receipt: string }> = { name: 'charge', call: () => Promise.resolve({ receipt: 'never run here' }) };
  const payerOf = payer(charge);
  const clock = new SimulatedClock(0);
  const system = new SharedActorSystem(clock);
  const a = new ActorHost(payerOf, 'a', { clock, system });
  const b = new ActorHost(payerOf, 'b', { clock, system });
  a.handle({ type: 'add', amount: 5 }, 10);
  b.handle({ type: 'add', amount: 7 }, 11);
  const [ra] = a.takeCallRequests();
  const [rb] = b.takeCallRequests();
  t.like(ra, { id: '10.0', name: 'charge', input: { amount: 5 }, path: 'charge' });
  t.like(rb, { id: '11.0', name: 'charge', input: { amount: 7 }, path: 'charge' });
  a.resolveCall({ call: '10.0', ok: true, output: { receipt: 'r-a' } }, { seq: 12, timeMs: 0 });
  t.like(a.snapshot(), { value: 'idle', context: { receipts: ['r-a'] } });
  t.like(b.snapshot(), { value: 'paying', context: { receipts: [] } });
  t.deepEqual(a.resolveCall({ call: '11.0', ok: true, output: { receipt: 'wrong key' } }, { seq: 13, timeMs: 0 }), [], "a's host does not take b's call");
  b.resolveCall({ call: '11.0', ok: true, output: { receipt: 'r-b' } }, { seq: 14, timeMs: 0 });
  t.like(b.snapshot(), { value: 'idle', context: { receipts: ['r-b'] } });
});

test('sendParent from a keyed actor crashes it, in a shared system as in its own', (t) => {
  const orphan = defineActor({ name: 'orphan', events: { go: null }, machine: setup({}).createMachine({ on: { go: { actions: sendParent({ type: 'hello' }) } } }) });
  const clock = new SimulatedClock(0);
  const system = new SharedActorSystem(clock);
  for (const host of [new ActorHost(orphan, 'a', { clock, system }), new ActorHost(orphan, 'a', { clock })]) {
    t.throws(() => host.handle({ type: 'go' }, 1), { code: 'ACTOR_CRASHED' });
    t.is(host.status, 'error');
  }
  t.deepEqual(new ActorHost(bell, 'b', { clock, system }).handle({ type: 'tick' }, 2), [{ type: 'ticked', n: 1 }]);
});

test('each step returns only its own outputs, in an array later steps of any host leave alone', (t) => {
  const clock = new SimulatedClock(0);
  const system = new SharedActorSystem(clock);
  const a = new ActorHost(bell, 'a', { clock, system });
  const b = new ActorHost(bell, 'b', { clock });
  const first = a.handle({ type: 'tick' }, 1);
  t.deepEqual(first, [{ type: 'ticked', n: 1 }]);
  t.deepEqual(b.handle({ type: 'arm' }, { seq: 2, timeMs: 0 }), [], "b's step emitted nothing and returns nothing of a's");
  const second = a.handle({ type: 'tick' }, 3);
  t.deepEqual(b.fireTimer('2.0', { seq: 4, timeMs: 1_000 }), [{ type: 'rang' }]);
  t.throws(() => a.handle({ type: 'boom' }, 5), { code: 'ACTOR_CRASHED' });
  t.deepEqual(first, [{ type: 'ticked', n: 1 }], 'an earlier result is unchanged by later steps');
  t.deepEqual(second, [{ type: 'ticked', n: 2 }]);
  t.deepEqual(new ActorHost(bell, 'c', { clock, system }).handle({ type: 'tick' }, 6), [{ type: 'ticked', n: 1 }], 'a crashed step leaves no outputs behind');
});
