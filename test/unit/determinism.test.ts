/**
 * `checkDeterminism` (lib/testing/determinism.ts): a machine that is a pure function of its log
 * passes; one that reads the wall clock or randomness in an action is caught at the first step
 * where a restored run parts from a straight one.
 */
import test from 'ava';
import { assign, emit, setup } from 'xstate';
import { defineActor } from '../../lib/index.js';
import { checkDeterminism, type DeterminismInput } from '../../lib/testing/index.js';
import { counter } from '../helpers/counter.js';

const adds: DeterminismInput[] = [1, 2, 3, 4, 5].map((amount, i) => ({ key: i % 2 ? 'a' : 'b', type: 'add', payload: { amount } }));

function stamping(read: () => number) {
  return defineActor({
    name: 'stamping',
    events: { add: null },
    machine: setup({ types: { context: {} as { n: number; stamp: number }, events: {} as { type: 'add' } } }).createMachine({
      context: { n: 0, stamp: 0 },
      on: { add: { actions: [assign({ n: ({ context }) => context.n + 1, stamp: () => read() }), emit(({ context }) => ({ type: 'stamped', n: context.n }))] } },
    }),
  });
}

test('determinism invariant 1: a pure machine passes, with timers firing between inputs', (t) => {
  const report = checkDeterminism(counter, adds);
  t.deepEqual(report, { ok: true, steps: 5 });
  const windowed = defineActor({
    name: 'windowed',
    events: { ping: null },
    machine: setup({ types: { context: {} as { expired: number }, events: {} as { type: 'ping' } } }).createMachine({
      initial: 'idle',
      context: { expired: 0 },
      states: {
        idle: { on: { ping: 'open' } },
        open: { after: { 1500: { target: 'idle', actions: assign({ expired: ({ context }) => context.expired + 1 }) } }, on: { ping: { target: 'open', reenter: true } } },
      },
    }),
  });
  const pings: DeterminismInput[] = [0, 1000, 5000, 9000].map((timeMs) => ({ key: 'k', type: 'ping', timeMs }));
  const r = checkDeterminism(windowed, pings, { restoreEvery: 1 });
  t.true(r.ok, JSON.stringify(r.divergence));
  t.is(r.steps, 4 + 3, 'three expiries fired between and after the pings');
});

test('an action reading Date.now() is caught at the first input, on the state', (t) => {
  const report = checkDeterminism(stamping(() => Date.now()), adds);
  t.false(report.ok);
  t.like(report.divergence, { step: 0, key: 'b', applied: 'add', what: 'state' });
});

test('an action reading Math.random() is caught, and the globals are restored afterwards', (t) => {
  const now = Date.now;
  const random = Math.random;
  const report = checkDeterminism(stamping(() => Math.random()), adds);
  t.false(report.ok);
  t.is(report.divergence?.what, 'state');
  t.is(Date.now, now);
  t.is(Math.random, random);
});

test('an action reading new Date() is caught too, and Date is restored afterwards (with its arguments, Date still works)', (t) => {
  const RealDate = Date;
  const report = checkDeterminism(stamping(() => new Date().getTime()), adds);
  t.false(report.ok);
  t.like(report.divergence, { step: 0, what: 'state' });
  t.is(globalThis.Date, RealDate);
  t.true(checkDeterminism(stamping(() => new Date(1_700_000_000_000).getTime()), adds).ok, 'a date built from a value is not a clock read');
});

test('outputs that differ are reported as outputs when the state does not show it', (t) => {
  const leaky = defineActor({
    name: 'leaky',
    events: { add: null },
    machine: setup({ types: { events: {} as { type: 'add' } } }).createMachine({
      on: { add: { actions: emit(() => ({ type: 'rolled', value: Math.random() })) } },
    }),
  });
  const report = checkDeterminism(leaky, adds);
  t.like(report, { ok: false, divergence: { step: 0, what: 'outputs' } });
});

test('the clickstream operators are pure functions of their logs (each fed what the previous one emits)', async (t) => {
  const { generateClicks } = await import('../../scenarios/clickstream/generate.js');
  const { parse } = await import('../../actors/clickstream/parse.js');
  const { sessions } = await import('../../actors/clickstream/sessions.js');
  const { pages } = await import('../../actors/clickstream/pages.js');
  const { ActorHost } = await import('../../lib/actor/actor-host.js');
  const { SimulatedClock } = await import('../../lib/core/clock.js');
  const clicks = generateClicks(300, { users: 20, pages: 6, seed: 7 });
  const raw: DeterminismInput[] = clicks.map((c) => ({ key: c.user, type: 'raw', payload: { line: c.line } }));
  /** What `actor` emits for `inputs`, as the next operator's inputs keyed by `keyOf`. */
  const downstream = (actor: typeof parse, inputs: DeterminismInput[], keyOf: (e: Record<string, unknown>, key: string) => string): DeterminismInput[] => {
    const clock = new SimulatedClock(0);
    const hosts = new Map<string, InstanceType<typeof ActorHost>>();
    const out: DeterminismInput[] = [];
    for (const [i, input] of inputs.entries()) {
      let host = hosts.get(input.key);
      if (!host) hosts.set(input.key, (host = new ActorHost(actor, input.key, { clock, at: { seq: i + 1, timeMs: i * 1000 } })));
      for (const { type, ...payload } of host.handle({ ...input.payload, type: input.type }, { seq: i + 1, timeMs: i * 1000 })) {
        out.push({ key: keyOf(payload, input.key), type, payload });
      }
    }
    return out;
  };
  const views = downstream(parse, raw, (_e, key) => key);
  const sessionViews = downstream(sessions as unknown as typeof parse, views, (e) => String(e.page)).filter((e) => e.type === 'session-view');
  t.true(views.length > 200 && sessionViews.length > 200, `${views.length} views, ${sessionViews.length} session views`);
  for (const [name, actor, inputs] of [['parse', parse, raw], ['sessions', sessions, views], ['pages', pages, sessionViews]] as const) {
    const report = checkDeterminism(actor as typeof parse, inputs, { restoreEvery: 7 });
    t.true(report.ok, `${name}: ${JSON.stringify(report.divergence)}`);
  }
});
