import test from 'ava';
import { assign, createActor, fromPromise, setup, type AnyStateMachine } from 'xstate';
import { defineActor, isStandardSchema, type StandardSchemaV1 } from '../../lib/actor/define-actor.js';
import { validateInput } from '../../lib/actor/validate.js';
import type { Envelope } from '../../lib/core/envelope.js';
import { ConfigError, ValidationError, WardenError } from '../../lib/core/errors.js';

function env(type: string, payload: Record<string, unknown> = {}): Envelope {
  return { id: `m-${type}`, key: 'k', type, payload, headers: {}, ts: 0, seq: 1 };
}

/** A machine that handles `add` and `finish` at the top level and `pause` in a nested state. */
const plainMachine = setup({
  types: { events: {} as { type: 'add'; amount: number } | { type: 'finish' } | { type: 'pause' } },
}).createMachine({
  initial: 'running',
  on: { add: { actions: () => undefined } },
  states: {
    running: { initial: 'inner', states: { inner: { on: { pause: '#paused' } } }, on: { finish: 'done' } },
    paused: { id: 'paused' },
    done: { type: 'final' },
  },
});

const plain = defineActor({ name: 'plain', machine: plainMachine });

function validationError(fn: () => void): ValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

/** A synchronous Standard Schema accepting objects whose `n` is a number. */
const numberN: StandardSchemaV1 = {
  '~standard': {
    version: 1,
    validate: (v: unknown) => {
      const n = (v as { n?: unknown }).n;
      return typeof n === 'number' ? { value: v } : { issues: [{ message: 'n must be a number' }, { message: `got ${typeof n}` }] };
    },
  },
};

// --- events derived from the machine ---------------------------------------------------------

test('events derived from the machine: every handled type, top-level and nested, with no schema', (t) => {
  t.deepEqual([...plain.schemas.keys()].sort(), ['add', 'finish', 'pause']);
  t.true([...plain.schemas.values()].every((s) => s === null));
  t.false(plain.acceptsAny);
  t.deepEqual(plain.acceptedPrefixes, []);
  for (const type of ['add', 'finish', 'pause']) t.notThrows(() => validateInput(plain, env(type), 10));
});

test('an unknown event type is refused with reason unknown-event naming the type, the actor and the known types', (t) => {
  const err = validationError(() => validateInput(plain, env('subtract'), 10));
  t.is(err.code, 'VALIDATION');
  t.is(err.reason, 'unknown-event');
  t.true(err.nonRetryable);
  t.regex(err.message, /'subtract'/);
  t.regex(err.message, /actor plain\b/);
  t.regex(err.message, /known: .*add/);
  t.like(err.details, { reason: 'unknown-event', type: 'subtract' });
});

test('type matching is exact: a prefix, suffix or case variant of a known type is unknown', (t) => {
  for (const type of ['ad', 'add2', 'Add', 'add.more', '']) {
    t.is(validationError(() => validateInput(plain, env(type), 1)).reason, 'unknown-event', type);
  }
});

// --- size ------------------------------------------------------------------------------------

test('an input over maxPayloadBytes is refused with reason too-large; exactly the limit passes', (t) => {
  const small = defineActor({ name: 'small', machine: plainMachine, maxPayloadBytes: 100 });
  t.is(small.maxPayloadBytes, 100);
  t.notThrows(() => validateInput(small, env('add'), 100));
  const err = validationError(() => validateInput(small, env('add'), 101));
  t.is(err.reason, 'too-large');
  t.regex(err.message, /101 bytes/);
  t.regex(err.message, /maxPayloadBytes 100/);
  t.like(err.details, { reason: 'too-large', sizeBytes: 101, maxPayloadBytes: 100 });
});

test('size is checked before the type: an oversized unknown event is too-large', (t) => {
  const small = defineActor({ name: 'small', machine: plainMachine, maxPayloadBytes: 10 });
  t.is(validationError(() => validateInput(small, env('nope'), 11)).reason, 'too-large');
});

test('the default maxPayloadBytes is 65536', (t) => {
  t.is(plain.maxPayloadBytes, 65_536);
  t.notThrows(() => validateInput(plain, env('add'), 65_536));
  t.is(validationError(() => validateInput(plain, env('add'), 65_537)).reason, 'too-large');
});

// --- schemas ---------------------------------------------------------------------------------

test('a function schema returning a string refuses the input with reason schema and that string', (t) => {
  const def = defineActor({
    name: 'fn-schema',
    machine: plainMachine,
    events: { add: (p) => (typeof p.amount === 'number' ? true : `amount must be a number, got ${JSON.stringify(p.amount)}`) },
  });
  t.notThrows(() => validateInput(def, env('add', { amount: 3 }), 10));
  const err = validationError(() => validateInput(def, env('add', { amount: 'three' }), 10));
  t.is(err.reason, 'schema');
  t.regex(err.message, /amount must be a number, got "three"/);
  t.regex(err.message, /fn-schema/);
});

test('a function schema returning undefined accepts; one that throws is a schema failure with the error as cause', (t) => {
  const thrown = new Error('validator exploded');
  const def = defineActor({
    name: 'fn-schema',
    machine: plainMachine,
    events: {
      add: () => undefined,
      finish: () => {
        throw thrown;
      },
    },
  });
  t.notThrows(() => validateInput(def, env('add'), 10));
  const err = validationError(() => validateInput(def, env('finish'), 10));
  t.is(err.reason, 'schema');
  t.is(err.cause, thrown);
  t.regex(err.message, /validator exploded/);
});

test('when events are given, only those types are accepted, even ones the machine handles', (t) => {
  const def = defineActor({ name: 'narrow', machine: plainMachine, events: { add: null } });
  t.deepEqual([...def.schemas.keys()], ['add']);
  t.notThrows(() => validateInput(def, env('add'), 1));
  const err = validationError(() => validateInput(def, env('finish'), 1));
  t.is(err.reason, 'unknown-event');
  t.regex(err.message, /known: add\)/);
});

test('a Standard Schema with issues refuses the input, listing every issue message', (t) => {
  t.true(isStandardSchema(numberN));
  const def = defineActor({ name: 'std', machine: plainMachine, events: { add: numberN } });
  t.notThrows(() => validateInput(def, env('add', { n: 1 }), 10));
  const err = validationError(() => validateInput(def, env('add', { n: 'x' }), 10));
  t.is(err.reason, 'schema');
  t.regex(err.message, /n must be a number; got string/);
  t.regex(err.message, /add to std/);
});

test('a Standard Schema returning an empty issues array accepts', (t) => {
  const empty: StandardSchemaV1 = { '~standard': { version: 1, validate: () => ({ issues: [] }) } };
  const def = defineActor({ name: 'std', machine: plainMachine, events: { add: empty } });
  t.notThrows(() => validateInput(def, env('add'), 10));
});

test('an asynchronous Standard Schema is refused (reason schema) rather than awaited', (t) => {
  let called = 0;
  const asyncSchema: StandardSchemaV1 = {
    '~standard': {
      version: 1,
      validate: (v: unknown) => {
        called++;
        return Promise.resolve({ value: v });
      },
    },
  };
  const def = defineActor({ name: 'async-std', machine: plainMachine, events: { add: asyncSchema } });
  const err = validationError(() => validateInput(def, env('add', { n: 1 }), 10));
  t.is(err.reason, 'schema');
  t.regex(err.message, /asynchronous/);
  t.regex(err.message, /async-std/);
  t.is(called, 1);
});

// --- wildcards -------------------------------------------------------------------------------

test('a machine with a * wildcard transition accepts any event type', (t) => {
  const def = defineActor({
    name: 'wild',
    machine: setup({}).createMachine({ on: { '*': { actions: () => undefined }, known: { actions: () => undefined } } }),
  });
  t.true(def.acceptsAny);
  for (const type of ['known', 'anything', 'a.b.c', 'UPPER']) t.notThrows(() => validateInput(def, env(type), 1), type);
  // Size still applies.
  t.is(validationError(() => validateInput(def, env('anything'), 65_537)).reason, 'too-large');
});

test('a partial wildcard order.* accepts order.<anything> and nothing outside the prefix', (t) => {
  const def = defineActor({
    name: 'orders',
    machine: setup({}).createMachine({ on: { 'order.*': { actions: () => undefined }, ping: { actions: () => undefined } } }),
  });
  t.false(def.acceptsAny);
  t.deepEqual(def.acceptedPrefixes, ['order']);
  t.deepEqual([...def.schemas.keys()], ['ping']);
  for (const type of ['order.created', 'order.item.added', 'ping']) t.notThrows(() => validateInput(def, env(type), 1), type);
  for (const type of ['orders.created', 'orderx', 'reorder.created', 'Order.created', 'pong']) {
    t.is(validationError(() => validateInput(def, env(type), 1)).reason, 'unknown-event', type);
  }
});

test('events given explicitly override a * wildcard machine: only the listed types pass', (t) => {
  const def = defineActor({
    name: 'wild',
    machine: setup({}).createMachine({ on: { '*': { actions: () => undefined } } }),
    events: { known: null },
  });
  t.false(def.acceptsAny);
  t.notThrows(() => validateInput(def, env('known'), 1));
  t.is(validationError(() => validateInput(def, env('other'), 1)).reason, 'unknown-event');
});

test('xstate internal descriptors (after, onDone, invoke done/error) are not accepted input types', (t) => {
  const machine = setup({ actors: { job: fromPromise(() => Promise.resolve(1)) } }).createMachine({
    initial: 'waiting',
    states: {
      waiting: { after: { 1000: 'working' }, on: { go: 'working' } },
      working: {
        invoke: { src: 'job', onDone: 'phase', onError: 'failed' },
      },
      phase: { initial: 'a', states: { a: { on: { next: 'b' } }, b: { type: 'final' } }, onDone: 'finished' },
      failed: {},
      finished: {},
    },
  });
  const internal = machine.events.filter((d) => d.startsWith('xstate.'));
  t.true(internal.some((d) => d.startsWith('xstate.after.')), 'the machine has a delayed transition');
  t.true(internal.some((d) => d.startsWith('xstate.done.actor.')), 'the machine has an invoke onDone');
  t.true(internal.some((d) => d.startsWith('xstate.error.actor.')), 'the machine has an invoke onError');
  t.true(internal.some((d) => d.startsWith('xstate.done.state.')), 'the machine has a state onDone');
  const def = defineActor({ name: 'internal', machine });
  t.deepEqual([...def.schemas.keys()].sort(), ['go', 'next']);
  t.false(def.acceptsAny);
  t.deepEqual(def.acceptedPrefixes, []);
  for (const type of internal) {
    t.is(validationError(() => validateInput(def, env(type), 1)).reason, 'unknown-event', type);
  }
});

test('a partial wildcard order.* accepts the bare type order, as xstate itself does', (t) => {
  // BUG: defineActor turns `order.*` into the prefix `order.`, but xstate v5's wildcard matcher
  // also selects an `order.*` transition for the event `order` (tokens ['order'] vs
  // ['order', '*']). The machine handles `order`; validateInput refuses it as unknown-event,
  // contradicting "otherwise every event type the machine handles is [accepted]".
  const machine = setup({ types: { context: {} as { hits: string[] }, events: {} as { type: string } } }).createMachine({
    context: { hits: [] },
    on: { 'order.*': { actions: assign({ hits: ({ context, event }) => [...context.hits, event.type] }) } },
  });
  const actor = createActor(machine).start();
  actor.send({ type: 'order' });
  actor.send({ type: 'order.created' });
  t.deepEqual(actor.getSnapshot().context.hits, ['order', 'order.created'], 'xstate runs the order.* transition for `order`');
  actor.stop();
  const def = defineActor({ name: 'orders', machine });
  t.notThrows(() => validateInput(def, env('order.created'), 1));
  t.notThrows(() => validateInput(def, env('order'), 1));
});

// --- defineActor configuration errors --------------------------------------------------------

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

test('defineActor refuses a bad name with ConfigError naming the field', (t) => {
  for (const name of ['', 'Upper', '1abc', 'has space', 'under_score', 'a'.repeat(64), 'dot.ted']) {
    const err = configError(() => defineActor({ name, machine: plainMachine }));
    t.is(err.code, 'CONFIG', name);
    t.is(err.field, 'name');
    t.true(err.message.startsWith('name must match'), err.message);
    t.true(err.message.includes(JSON.stringify(name)), err.message);
    t.like(err.details, { field: 'name' });
    t.true(err.nonRetryable);
  }
  const notString = configError(() => defineActor({ name: 42 as unknown as string, machine: plainMachine }));
  t.is(notString.field, 'name');
  // The boundaries of the pattern are accepted.
  t.notThrows(() => defineActor({ name: 'a', machine: plainMachine }));
  t.notThrows(() => defineActor({ name: `a${'-9'.repeat(31)}`, machine: plainMachine }));
});

test('defineActor refuses something that is not an xstate machine, naming the field', (t) => {
  for (const machine of [undefined, null, {}, { root: {} }, 'machine', () => undefined]) {
    const err = configError(() => defineActor({ name: 'x', machine: machine as unknown as AnyStateMachine }));
    t.is(err.code, 'CONFIG');
    t.is(err.field, 'actor x: machine');
    t.regex(err.message, /^actor x: machine must be an xstate v5 machine/);
  }
});

test('defineActor refuses a maxPayloadBytes that is not a positive integer, naming the field and value', (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    const err = configError(() => defineActor({ name: 'x', machine: plainMachine, maxPayloadBytes: bad }));
    t.is(err.code, 'CONFIG');
    t.is(err.field, 'actor x: maxPayloadBytes');
    t.true(err.message.includes(`got ${String(bad)}`), err.message);
  }
});

test('defineActor refuses an events entry that is not a schema, function or null, naming the event', (t) => {
  for (const bad of [42, 'string', true, { validate: () => true }, undefined]) {
    const err = configError(() => defineActor({ name: 'x', machine: plainMachine, events: { add: bad as unknown as null } }));
    t.is(err.code, 'CONFIG');
    t.is(err.field, 'actor x: events.add');
    t.regex(err.message, /must be a Standard Schema, a validator function, or null/);
  }
});

test('defineActor records the version as a string and refuses an empty one', (t) => {
  t.is(defineActor({ name: 'x', machine: plainMachine }).version, '1');
  t.is(defineActor({ name: 'x', machine: plainMachine, version: 3 }).version, '3');
  const err = configError(() => defineActor({ name: 'x', machine: plainMachine, version: '' }));
  t.is(err.field, 'actor x: version');
  t.true(err instanceof WardenError);
});
