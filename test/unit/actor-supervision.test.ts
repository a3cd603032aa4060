/**
 * Supervision of keyed actors inside a partition (the stage's `supervision` policy):
 * restart from checkpoint or initial state, safe states, intensity, backoff.
 * Titles cite lib/actor/partition-worker.ts ("worker invariant N") and lib/actor/key-restarts.ts.
 */
import test from 'ava';
import { assign, setup } from 'xstate';
import { KeyRestarts } from '../../lib/worker/key-restarts.js';
import { SimulatedClock } from '../../lib/testing/index.js';
import { ConfigError, defineActor, definePipeline, silentLogger, startNode, type NodeEvent } from '../../lib/index.js';
import type { ResolvedActorSupervision } from '../../lib/pipeline/define-pipeline.js';

const crashes = new Map<string, number>(); // key -> crashes still to throw on 'boom'

/** cart -> paying -> paid; `boom` crashes an actor while it is paying (as armed per key). */
const checkout = defineActor({
  name: 'checkout',
  machine: setup({
    types: { context: {} as { items: number; log: string[] }, events: {} as { type: 'add' } | { type: 'pay' } | { type: 'confirm' } | { type: 'boom'; key: string } },
    actions: {
      explode: ({ event }) => {
        if (event.type !== 'boom') return;
        const left = crashes.get(event.key) ?? 0;
        if (left > 0) {
          crashes.set(event.key, left - 1);
          throw new Error(`payment provider state lost for ${event.key}`);
        }
      },
    },
  }).createMachine({
    initial: 'cart',
    context: { items: 0, log: [] },
    states: {
      cart: { on: { add: { actions: assign(({ context }) => ({ items: context.items + 1, log: [...context.log, 'add'] })) }, pay: 'paying' } },
      paying: { on: { confirm: 'paid', boom: { actions: ['explode', assign(({ context }) => ({ log: [...context.log, 'boom'] }))] } } },
      paid: { type: 'final' },
    },
  }),
});

function pipeline(name: string, supervision: Parameters<typeof definePipeline>[0]['stages'][0]['supervision']) {
  return definePipeline({ name, stages: [{ actor: checkout, supervision: supervision ?? {} }] });
}

async function drive(name: string, supervision: Parameters<typeof pipeline>[1], inputs: Array<{ type: string; payload?: Record<string, unknown> }>) {
  const events: NodeEvent[] = [];
  const node = await startNode({ pipeline: pipeline(name, supervision), logger: silentLogger, onEvent: (e) => events.push(e) });
  for (const [i, input] of inputs.entries()) await node.ingest({ id: `${name}:${i}`, key: 'c1', type: input.type, payload: input.payload ?? {} });
  await node.whenCaughtUp();
  const state = node.inspect('checkout', 'c1');
  await node.stop();
  return { events, state };
}

test.serial('worker invariant 6: restartFrom checkpoint keeps the state built so far', async (t) => {
  crashes.set('c1', 1);
  const { events, state } = await drive('keep', {}, [{ type: 'add' }, { type: 'add' }, { type: 'pay' }, { type: 'boom', payload: { key: 'c1' } }]);
  t.deepEqual(state?.value, 'paying');
  t.deepEqual((state?.context as { items: number; log: string[] }).log, ['add', 'add', 'boom']);
  const restarted = events.filter((e) => e.type === 'actor-restarted');
  t.is(restarted.length, 1);
  t.like(restarted[0], { from: 'checkpoint', replayed: 3 });
});

test.serial('worker invariant 6: restartFrom initial drops the state and retries the input on a fresh actor', async (t) => {
  crashes.set('c1', 1);
  const { events, state } = await drive('fresh', { restartFrom: 'initial' }, [{ type: 'add' }, { type: 'pay' }, { type: 'boom', payload: { key: 'c1' } }, { type: 'add' }]);
  t.is(state?.value, 'cart');
  t.deepEqual((state?.context as { log: string[] }).log, ['add'], 'only the input after the restart');
  t.like(events.find((e) => e.type === 'actor-restarted'), { from: 'initial', replayed: 0 });
});

test.serial('worker invariant 6: an actor rebuilt into a state not in safeStates restarts from its initial state, and says so', async (t) => {
  crashes.set('c1', 1);
  const { events, state } = await drive('safe', { safeStates: ['cart', 'paid'] }, [{ type: 'add' }, { type: 'pay' }, { type: 'boom', payload: { key: 'c1' } }]);
  t.is(state?.value, 'cart', 'not resumed in paying');
  t.is((state?.context as { items: number }).items, 0);
  const reset = events.find((e) => e.type === 'actor-reset');
  t.truthy(reset);
  t.like(reset, { key: 'c1', state: 'paying', reason: 'state paying is not in safeStates' }, 'the state by its name, not as JSON');
  t.like(events.find((e) => e.type === 'actor-restarted'), { from: 'initial' });
  t.is(events.filter((e) => e.type === 'dead-letter').length, 0, "the retried boom is ignored in 'cart', not dead-lettered");
});

test.serial('worker invariant 6: an actor rebuilt into a safe state resumes there', async (t) => {
  crashes.set('c1', 1);
  const { events, state } = await drive('safe-ok', { safeStates: ['paying'] }, [{ type: 'pay' }, { type: 'boom', payload: { key: 'c1' } }]);
  t.is(state?.value, 'paying');
  t.is(events.filter((e) => e.type === 'actor-reset').length, 0);
});

test.serial('worker invariants 6 and 15: an input that pushes the restarts past the intensity is dead-lettered, then the worker fails and is restarted past it', async (t) => {
  crashes.set('c1', 2);
  const { events, state } = await drive('escalate', { intensity: 1, periodMs: 60_000 }, [{ type: 'pay' }, { type: 'boom', payload: { key: 'c1' } }, { type: 'boom', payload: { key: 'c1' } }]);
  const failed = events.find((e) => e.type === 'failed');
  t.truthy(failed, 'the partition worker failed');
  t.regex((failed as { error: string }).error, /2 actor restarts within 60000 ms exceed intensity 1/);
  const letter = events.find((e) => e.type === 'dead-letter');
  t.like(letter, { reason: 'crashed' });
  t.regex((letter as { error: string }).error, /past its restart intensity/);
  t.truthy(events.find((e) => e.type === 'child-restarting'));
  // The new incarnation starts from the cut written before the failure: the first boom is behind it.
  t.is(state?.value, 'paying');
  t.deepEqual((state?.context as { log: string[] }).log, ['boom'], 'only the second boom applied');
  t.is(events.filter((e) => e.type === 'actor-crashed').length, 2, 'the successor never met the first boom again');
  t.is(events.filter((e) => e.type === 'dead-letter').length, 1);
});

const policy = (o: Partial<ResolvedActorSupervision>): ResolvedActorSupervision => ({
  restartFrom: 'checkpoint', safeStates: undefined, intensity: 100, periodMs: 10_000, minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0, resetBackoffAfterMs: 5_000, ...o,
});

test('key-restarts invariant 2: backoff doubles per consecutive restart of a key, is capped, and resets after resetBackoffAfterMs', (t) => {
  const clock = new SimulatedClock(0);
  const r = new KeyRestarts(policy({}), clock, () => 0);
  t.deepEqual([1, 2, 3, 4, 5].map(() => r.record('a', 'p')), [100, 200, 400, 800, 1000]);
  t.is(r.record('b', 'p'), 100, 'backoff is per key');
  clock.advance(5_000);
  t.is(r.record('a', 'p'), 100, 'reset after running 5 s');
  t.is(r.counts.get('a'), 6);
});

test('key-restarts invariant 2: jitter stays within [1, 1 + randomFactor] times the base and under the cap', (t) => {
  const clock = new SimulatedClock(0);
  const r = new KeyRestarts(policy({ randomFactor: 0.5, resetBackoffAfterMs: 1 }), clock, () => 0.999);
  t.is(r.record('a', 'p'), 150, '100 * (1 + 0.999 * 0.5), rounded to whole ms');
  const capped = new KeyRestarts(policy({ randomFactor: 0.5, minBackoffMs: 1_000 }), clock, () => 0.999);
  t.is(capped.record('a', 'p'), 1_000);
});

test('key-restarts invariant 1: restarts beyond the intensity within the period escalate; older ones fall out of the window', (t) => {
  const clock = new SimulatedClock(0);
  const r = new KeyRestarts(policy({ intensity: 2, periodMs: 1_000, minBackoffMs: 0 }), clock);
  r.record('a', 'p');
  clock.advance(500);
  r.record('b', 'p');
  const err = t.throws(() => r.record('c', 'p'));
  t.is((err as { code?: string }).code, 'ESCALATED');
  clock.advance(1_000);
  t.notThrows(() => r.record('d', 'p'), 'the earlier restarts left the 1 s window');
});

test('bad stage supervision options throw a ConfigError naming the field', (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ restartFrom: 'scratch' }, /supervision\.restartFrom/],
    [{ safeStates: 'cart' }, /supervision\.safeStates/],
    [{ intensity: -1 }, /supervision\.intensity/],
    [{ minBackoffMs: 10, maxBackoffMs: 5 }, /supervision\.maxBackoffMs/],
    [{ periodMs: 0 }, /supervision\.periodMs/],
  ];
  for (const [supervision, field] of bad) {
    const err = t.throws(() => pipeline('bad', supervision as never), { instanceOf: ConfigError });
    t.regex(err.message, field);
  }
});
