import test, { type ExecutionContext } from 'ava';
import { assign, emit, raise, setup } from 'xstate';
import { ActorHost, type EmittedEvent } from '../../lib/actor/actor-host.js';
import { defineActor } from '../../lib/actor/define-actor.js';
import { SimulatedClock, SystemClock } from '../../lib/core/clock.js';
import type { Json } from '../../lib/core/envelope.js';
import { ActorCrashedError, WardenError } from '../../lib/core/errors.js';

const clock = new SystemClock();

function code(err: unknown): string | undefined {
  return err instanceof WardenError ? err.code : undefined;
}

// --- machines --------------------------------------------------------------------------------

/** Emits in exit, transition and entry actions, several per step, and through a raised event. */
const tracer = defineActor({
  name: 'tracer',
  machine: setup({
    types: {
      context: {} as { n: number },
      events: {} as { type: 'go' } | { type: 'back' } | { type: 'burst'; count: number } | { type: 'chain' } | { type: 'inner' } | { type: 'quiet' },
      emitted: {} as { type: 'step'; at: string; n: number },
    },
  }).createMachine({
    context: { n: 0 },
    initial: 'a',
    states: {
      a: {
        exit: emit(({ context }) => ({ type: 'step' as const, at: 'exit-a', n: context.n })),
        on: {
          go: {
            target: 'b',
            actions: [
              assign({ n: ({ context }) => context.n + 1 }),
              emit(({ context }) => ({ type: 'step' as const, at: 'go', n: context.n })),
            ],
          },
          burst: {
            actions: [
              assign({ n: ({ context, event }) => context.n + event.count }),
              emit(({ context }) => ({ type: 'step' as const, at: 'burst-1', n: context.n })),
              emit(({ context }) => ({ type: 'step' as const, at: 'burst-2', n: context.n })),
              emit(({ context }) => ({ type: 'step' as const, at: 'burst-3', n: context.n })),
            ],
          },
          chain: { actions: [emit({ type: 'step' as const, at: 'chain', n: -1 }), raise({ type: 'inner' })] },
          inner: { actions: emit({ type: 'step' as const, at: 'inner', n: -2 }) },
          quiet: { actions: assign({ n: ({ context }) => context.n * 10 }) },
        },
      },
      b: {
        entry: emit(({ context }) => ({ type: 'step' as const, at: 'enter-b', n: context.n })),
        on: { back: 'a' },
      },
    },
  }),
});

class Boom extends Error {}

/** Crashes on `explode` after emitting twice; `poisonEntry` crashes in an entry action reached via `always`. */
const fragile = defineActor({
  name: 'fragile',
  machine: setup({
    types: {
      context: {} as { n: number },
      events: {} as { type: 'ok' } | { type: 'explode'; why: string } | { type: 'poisonEntry' },
      emitted: {} as { type: 'out'; n: number },
    },
    actions: {
      blowUp: ({ event }) => {
        throw new Boom(event.type === 'explode' ? event.why : 'entry');
      },
    },
  }).createMachine({
    context: { n: 0 },
    initial: 'idle',
    states: {
      idle: {
        on: {
          ok: { actions: [assign({ n: ({ context }) => context.n + 1 }), emit(({ context }) => ({ type: 'out' as const, n: context.n }))] },
          explode: {
            actions: [
              emit({ type: 'out' as const, n: 100 }),
              assign({ n: 1000 }),
              emit({ type: 'out' as const, n: 101 }),
              'blowUp',
            ],
          },
          poisonEntry: { target: 'passing', actions: emit({ type: 'out' as const, n: 200 }) },
        },
      },
      passing: { entry: emit({ type: 'out' as const, n: 201 }), always: 'doomed' },
      doomed: { entry: 'blowUp' },
    },
  }),
});

type ShopEvent =
  | { type: 'add'; item: string; price: number }
  | { type: 'remove'; item: string }
  | { type: 'checkout' }
  | { type: 'pay'; amount: number }
  | { type: 'decline' }
  | { type: 'retry' }
  | { type: 'ship' }
  | { type: 'reset' };

/** A deterministic machine with nested states, history-free but deep, and a rich context. */
const shop = defineActor({
  name: 'shop',
  input: (key: string) => ({ owner: key }),
  machine: setup({
    types: {
      input: {} as { owner: string },
      context: {} as { owner: string; items: Record<string, number>; total: number; paid: number; attempts: number; log: string[] },
      events: {} as ShopEvent,
      emitted: {} as { type: 'cart'; total: number; count: number } | { type: 'paid'; amount: number; attempts: number } | { type: 'declined'; attempts: number } | { type: 'shipped'; owner: string; log: string[] },
    },
    guards: {
      hasItems: ({ context }) => Object.keys(context.items).length > 0,
      coversTotal: ({ context, event }) => event.type === 'pay' && context.paid + event.amount >= context.total,
      tooManyAttempts: ({ context }) => context.attempts >= 3,
    },
  }).createMachine({
    id: 'shop',
    context: ({ input }) => ({ owner: input.owner, items: {}, total: 0, paid: 0, attempts: 0, log: [] }),
    initial: 'shopping',
    states: {
      shopping: {
        initial: 'empty',
        on: {
          add: {
            target: '.filled',
            actions: [
              assign(({ context, event }) => ({
                items: { ...context.items, [event.item]: (context.items[event.item] ?? 0) + 1 },
                total: context.total + event.price,
                log: [...context.log, `+${event.item}`],
              })),
              emit(({ context }) => ({ type: 'cart' as const, total: context.total, count: Object.keys(context.items).length })),
            ],
          },
        },
        states: {
          empty: {},
          filled: {
            on: {
              remove: {
                actions: [
                  assign(({ context, event }) => {
                    const items = { ...context.items };
                    delete items[event.item];
                    return { items, log: [...context.log, `-${event.item}`] };
                  }),
                  emit(({ context }) => ({ type: 'cart' as const, total: context.total, count: Object.keys(context.items).length })),
                ],
              },
              checkout: { guard: 'hasItems', target: '#shop.checkout' },
            },
          },
        },
      },
      checkout: {
        initial: 'awaiting',
        entry: assign(({ context }) => ({ log: [...context.log, 'checkout'] })),
        states: {
          awaiting: {
            on: {
              pay: [
                {
                  guard: 'coversTotal',
                  target: '#shop.fulfilment',
                  actions: [
                    assign(({ context, event }) => ({ paid: context.paid + event.amount, attempts: context.attempts + 1 })),
                    emit(({ context }) => ({ type: 'paid' as const, amount: context.paid, attempts: context.attempts })),
                  ],
                },
                { actions: assign(({ context, event }) => ({ paid: context.paid + event.amount, log: [...context.log, `partial ${event.amount}`] })) },
              ],
              decline: {
                target: 'declined',
                actions: [assign({ attempts: ({ context }) => context.attempts + 1 }), emit(({ context }) => ({ type: 'declined' as const, attempts: context.attempts }))],
              },
            },
          },
          declined: {
            always: { guard: 'tooManyAttempts', target: '#shop.shopping.empty', actions: assign({ items: {}, total: 0, paid: 0, attempts: 0 }) },
            on: { retry: 'awaiting' },
          },
        },
      },
      fulfilment: {
        initial: 'packing',
        states: {
          packing: { on: { ship: 'shipped' } },
          shipped: {
            type: 'final',
            entry: emit(({ context }) => ({ type: 'shipped' as const, owner: context.owner, log: context.log })),
          },
        },
        onDone: 'done',
      },
      done: { on: { reset: { target: 'shopping', actions: assign({ items: {}, total: 0, paid: 0, attempts: 0, log: [] }) } } },
    },
  }),
});

/** A long, varied input script for the shop, including inputs the current state ignores. */
const shopScript: ShopEvent[] = [
  { type: 'checkout' }, // ignored: empty cart
  { type: 'add', item: 'tea', price: 4 },
  { type: 'add', item: 'cup', price: 6 },
  { type: 'add', item: 'tea', price: 4 },
  { type: 'remove', item: 'cup' },
  { type: 'checkout' },
  { type: 'add', item: 'pot', price: 20 }, // ignored in checkout
  { type: 'pay', amount: 5 },
  { type: 'decline' },
  { type: 'retry' },
  { type: 'decline' },
  { type: 'retry' },
  { type: 'decline' }, // third attempt: back to an empty cart via `always`
  { type: 'add', item: 'mug', price: 9 },
  { type: 'checkout' },
  { type: 'pay', amount: 3 },
  { type: 'pay', amount: 7 },
  { type: 'ship' },
  { type: 'reset' },
  { type: 'add', item: 'jam', price: 2 },
  { type: 'checkout' },
  { type: 'pay', amount: 2 },
  { type: 'ship' },
  { type: 'reset' }, // `done` is not final: the actor stays active and can start over
  { type: 'add', item: 'oat', price: 1 },
];

function run(host: ActorHost, events: readonly EmittedEvent[]): EmittedEvent[][] {
  return events.map((e) => host.handle(e));
}

// --- invariant 2: outputs --------------------------------------------------------------------

test('invariant 2: outputs are exactly the emitted events, in exit -> transition -> entry order', (t) => {
  const host = new ActorHost(tracer, 'k1', { clock });
  t.deepEqual(host.handle({ type: 'go' }), [
    { type: 'step', at: 'exit-a', n: 0 },
    { type: 'step', at: 'go', n: 1 },
    { type: 'step', at: 'enter-b', n: 1 },
  ]);
  // The next input returns only its own outputs.
  t.deepEqual(host.handle({ type: 'back' }), []);
  t.deepEqual(host.handle({ type: 'burst', count: 5 }), [
    { type: 'step', at: 'burst-1', n: 6 },
    { type: 'step', at: 'burst-2', n: 6 },
    { type: 'step', at: 'burst-3', n: 6 },
  ]);
});

test('invariant 2: an input that emits nothing, or is ignored, yields no outputs', (t) => {
  const host = new ActorHost(tracer, 'k1', { clock });
  t.deepEqual(host.handle({ type: 'quiet' }), []);
  t.deepEqual(host.handle({ type: 'back' }), []); // not handled in state a
  t.deepEqual(host.handle({ type: 'nobody-knows' }), []);
  t.deepEqual(host.snapshot().value, 'a');
  t.deepEqual(host.snapshot().context, { n: 0 });
});

test('invariant 1: a raised event is processed within the same handle call, its emits after the raiser', (t) => {
  const host = new ActorHost(tracer, 'k1', { clock });
  t.deepEqual(host.handle({ type: 'chain' }), [
    { type: 'step', at: 'chain', n: -1 },
    { type: 'step', at: 'inner', n: -2 },
  ]);
  t.deepEqual(host.handle({ type: 'quiet' }), []);
});

// --- invariant 3: crashes --------------------------------------------------------------------

test('invariant 3: an action that throws gives ActorCrashedError with the thrown error as cause', (t) => {
  const host = new ActorHost(fragile, 'alice', { clock });
  t.deepEqual(host.handle({ type: 'ok' }), [{ type: 'out', n: 1 }]);
  const err = t.throws(() => host.handle({ type: 'explode', why: 'kaboom' }, 77));
  t.true(err instanceof ActorCrashedError);
  t.is(code(err), 'ACTOR_CRASHED');
  t.true(err.cause instanceof Boom);
  t.is((err.cause as Error).message, 'kaboom');
  t.is(err.message, 'actor fragile[alice] crashed: kaboom');
  t.deepEqual((err as WardenError).details, { actor: 'fragile', key: 'alice', type: 'explode', seq: 77 });
  t.is<unknown, unknown>(host.crashed, err);
  t.is(host.status, 'error');
});

test('invariant 3: after a crash the host refuses every further input with the same error', (t) => {
  const host = new ActorHost(fragile, 'alice', { clock });
  const first = t.throws(() => host.handle({ type: 'explode', why: 'x' }));
  const second = t.throws(() => host.handle({ type: 'ok' }));
  t.is(second, first);
  t.is(code(second), 'ACTOR_CRASHED');
  const third = t.throws(() => host.handle({ type: 'ok' }));
  t.is(third, first);
  // Its state may not be persisted either.
  const p = t.throws(() => host.persisted());
  t.is(code(p), 'ACTOR_CRASHED');
  t.is(p.cause, first);
});

test('invariant 2: an input that emits and then throws in a later action yields no outputs', (t) => {
  const host = new ActorHost(fragile, 'bob', { clock });
  let outputs: EmittedEvent[] | undefined;
  t.throws(() => {
    outputs = host.handle({ type: 'explode', why: 'late' });
  }, { instanceOf: ActorCrashedError });
  t.is(outputs, undefined);
  // Nothing of the half-applied event leaks into a later call either: the host is crashed.
  t.throws(() => host.handle({ type: 'ok' }), { instanceOf: ActorCrashedError });
});

test('invariant 2: emits from the source transition and entry before a crashing entry action reached via always are dropped', (t) => {
  const host = new ActorHost(fragile, 'bob', { clock });
  t.deepEqual(host.handle({ type: 'ok' }), [{ type: 'out', n: 1 }]);
  const err = t.throws(() => host.handle({ type: 'poisonEntry' }));
  t.is(code(err), 'ACTOR_CRASHED');
  t.is((err.cause as Error).message, 'entry');
  t.deepEqual((err as WardenError).details, { actor: 'fragile', key: 'bob', type: 'poisonEntry' });
});

test('a crash while starting (an initial entry action throws) surfaces from the constructor', (t) => {
  const def = defineActor({
    name: 'bad-start',
    machine: setup({ actions: { fail: () => { throw new Error('no start'); } } }).createMachine({ entry: 'fail' }),
  });
  const err = t.throws(() => new ActorHost(def, 'k', { clock }));
  t.true(err instanceof ActorCrashedError);
  t.is((err.cause as Error).message, 'no start');
  t.like((err as WardenError).details, { actor: 'bad-start', key: 'k', phase: 'start' });
});

test('restoring from a snapshot the machine cannot resolve raises ACTOR_CRASHED at construction', (t) => {
  const bogus: Json = { status: 'active', value: 'no-such-state', context: { n: 0 }, children: {}, historyValue: {} };
  const err = t.throws(() => new ActorHost(tracer, 'k', { clock, snapshot: bogus }));
  t.is(code(err), 'ACTOR_CRASHED');
  t.regex(err.message, /^actor tracer\[k\] crashed: /);
});

// --- status ----------------------------------------------------------------------------------

test('status becomes done on a top-level final state, with the final step\'s outputs returned', (t) => {
  const def = defineActor({
    name: 'ticket',
    machine: setup({
      types: { events: {} as { type: 'close'; by: string } | { type: 'poke' }, emitted: {} as { type: 'closed'; by: string } | { type: 'bye' } },
    }).createMachine({
      initial: 'open',
      states: {
        open: { on: { close: { target: 'closed', actions: emit(({ event }) => ({ type: 'closed' as const, by: event.by })) } } },
        closed: { type: 'final', entry: emit({ type: 'bye' as const }) },
      },
    }),
  });
  const host = new ActorHost(def, 't-1', { clock });
  t.is(host.status, 'active');
  t.deepEqual(host.handle({ type: 'close', by: 'ann' }), [{ type: 'closed', by: 'ann' }, { type: 'bye' }]);
  t.is(host.status, 'done');
  t.is(host.snapshot().status, 'done');
  t.is(host.snapshot().value, 'closed');
  t.is(host.crashed, undefined);
});

test('a nested final state completes its parent (onDone) but does not finish the actor', (t) => {
  const host = new ActorHost(shop, 'ann', { clock });
  run(host, [{ type: 'add', item: 'x', price: 1 }, { type: 'checkout' }, { type: 'pay', amount: 1 }]);
  t.deepEqual(host.snapshot().value, { fulfilment: 'packing' });
  const out = host.handle({ type: 'ship' });
  t.deepEqual(out, [{ type: 'shipped', owner: 'ann', log: ['+x', 'checkout'] }]);
  t.is(host.snapshot().value, 'done');
  t.is(host.status, 'active');
});

// --- input -----------------------------------------------------------------------------------

test('the input option gives each fresh actor its own per-key input', (t) => {
  const alice = new ActorHost(shop, 'alice', { clock });
  const bob = new ActorHost(shop, 'bob', { clock });
  t.is((alice.snapshot().context as { owner: string }).owner, 'alice');
  t.is((bob.snapshot().context as { owner: string }).owner, 'bob');
  t.deepEqual(alice.snapshot().value, { shopping: 'empty' });
});

test('a host restored from a snapshot keeps the snapshot\'s context rather than re-running input for its key', (t) => {
  const alice = new ActorHost(shop, 'alice', { clock });
  alice.handle({ type: 'add', item: 'tea', price: 4 });
  const restored = new ActorHost(shop, 'alice-copy', { clock, snapshot: JSON.parse(JSON.stringify(alice.persisted())) as Json });
  t.like(restored.snapshot().context, { owner: 'alice', total: 4, items: { tea: 1 } });
  t.deepEqual(restored.snapshot().value, { shopping: 'filled' });
});

// --- invariant 4: restore + replay -----------------------------------------------------------

function assertSameRun(t: ExecutionContext, k: number, viaJson: boolean): void {
  const all = shopScript;
  const straight = new ActorHost(shop, 'carol', { clock });
  const straightOut = run(straight, all);

  const first = new ActorHost(shop, 'carol', { clock });
  run(first, all.slice(0, k));
  const saved = first.persisted();
  const snapshot = viaJson ? (JSON.parse(JSON.stringify(saved)) as Json) : saved;
  first.stop();
  const resumed = new ActorHost(shop, 'carol', { clock, snapshot });
  const resumedOut = run(resumed, all.slice(k));

  t.deepEqual(resumedOut, straightOut.slice(k), `outputs after restore at K=${k}`);
  t.deepEqual(resumed.snapshot().value, straight.snapshot().value, `value at K=${k}`);
  t.deepEqual(resumed.snapshot().context, straight.snapshot().context, `context at K=${k}`);
  t.is(resumed.status, straight.status);
  t.deepEqual(resumed.persisted(), straight.persisted(), `persisted snapshot at K=${k}`);
}

test('invariant 4: the shop script itself exercises nested states, guards, always and emits', (t) => {
  // Guards against a script that silently stops exercising the machine.
  const host = new ActorHost(shop, 'carol', { clock });
  const out = run(host, shopScript);
  const flat = out.flat();
  t.deepEqual(flat.map((e) => e.type), [
    'cart', 'cart', 'cart', 'cart', // tea, cup, tea, -cup
    'declined', 'declined', 'declined',
    'cart', // mug
    'paid', 'shipped',
    'cart', // jam
    'paid', 'shipped',
    'cart', // oat
  ]);
  t.deepEqual(flat.find((e) => e.type === 'paid'), { type: 'paid', amount: 10, attempts: 1 });
  t.deepEqual(host.snapshot().value, { shopping: 'filled' });
  t.deepEqual(host.snapshot().context, { owner: 'carol', items: { oat: 1 }, total: 1, paid: 0, attempts: 0, log: ['+oat'] });
});

for (const k of [0, 1, 4, 6, 8, 12, 13, 17, 18, 19, shopScript.length - 1, shopScript.length]) {
  test(`invariant 4: restored at K=${k} of ${shopScript.length} (via JSON) reaches the same state and outputs`, (t) => {
    assertSameRun(t, k, true);
  });
}

for (const k of [3, 10, 18]) {
  test(`invariant 4: restored at K=${k} from the live persisted() value reaches the same state and outputs`, (t) => {
    assertSameRun(t, k, false);
  });
}

test('invariant 4: persisted() survives a JSON round trip, losing only undefined fields', (t) => {
  const host = new ActorHost(shop, 'dave', { clock });
  run(host, shopScript.slice(0, 9));
  const saved = host.persisted();
  const defined = Object.fromEntries(Object.entries(saved as Record<string, unknown>).filter(([, v]) => v !== undefined));
  t.deepEqual(JSON.parse(JSON.stringify(saved)), defined);
  t.like(saved, { status: 'active', value: { checkout: 'declined' } });
});

// --- clock -----------------------------------------------------------------------------------

test('delayed transitions never run on the clock: they wait, dated by it, until fireTimer delivers them', (t) => {
  // Durable timers (lib/actor/timers.ts; actor-timers.test.ts covers them in depth). Before
  // them, xstate armed this `after` on the host's clock and the clock fired it.
  const sim = new SimulatedClock(0);
  const def = defineActor({
    name: 'timer',
    machine: setup({ types: { events: {} as { type: 'arm' } } }).createMachine({
      initial: 'idle',
      states: { idle: { on: { arm: 'armed' } }, armed: { after: { 1000: 'fired' } }, fired: {} },
    }),
  });
  const host = new ActorHost(def, 'k', { clock: sim });
  t.deepEqual(host.timers(), []);
  sim.advance(20);
  host.handle({ type: 'arm' }, 3);
  t.is(sim.pending, 0);
  t.deepEqual(host.timers(), [{ id: '3.0', dueMs: 1020 }]);
  sim.advance(5000);
  t.is(host.snapshot().value, 'armed');
  t.deepEqual(host.fireTimer('3.0', { seq: 4, timeMs: 1020 }), []);
  t.is(host.snapshot().value, 'fired');
  t.deepEqual(host.timers(), []);
  host.stop();
});
