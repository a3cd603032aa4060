/**
 * The BreakerStateStore contract (`test/contract/breaker-state.contract.ts`) against the
 * in-memory twin, delivering on microtasks and on a clock; then what only the twin shows: a
 * simulated clock holds deliveries until it is advanced, and buckets are separate worlds. Also
 * the NATS KV key mapping (`breakerKey`, pure, no server) and the shared codec.
 */
import test from 'ava';
import { SimulatedClock, SystemClock, flushMicrotasks } from '../../lib/core/clock.js';
import { WardenError } from '../../lib/core/errors.js';
import type { SharedBreakerState } from '../../lib/resilience/breaker-state.js';
import { decodeSharedState, encodeSharedState, MAX_BREAKER_NAME_LENGTH } from '../../lib/resilience/breaker-state-codec.js';
import { InMemoryBreakerBucket, InMemoryBreakerStateStore, type InMemoryBreakerStateStoreOptions } from '../../lib/resilience/in-memory-breaker-state.js';
import { breakerKey } from '../../lib/adapters/nats/kv-breaker-state.js';
import { breakerStateContract } from '../contract/breaker-state.contract.js';

function inMemorySubject(extra: InMemoryBreakerStateStoreOptions = {}) {
  return () => {
    const bucket = new InMemoryBreakerBucket();
    const stores: InMemoryBreakerStateStore[] = [];
    return Promise.resolve({
      node: (o: { onError?: (e: WardenError) => void } = {}) => {
        const store = new InMemoryBreakerStateStore({ ...extra, ...o, bucket });
        stores.push(store);
        return Promise.resolve(store);
      },
      writeRaw: (name: string, text: string) => {
        bucket.putRaw(name, text);
        return Promise.resolve();
      },
      everyChange: true,
      cleanup: async () => {
        for (const s of stores) await s.close();
      },
    });
  };
}

breakerStateContract('in-memory', inMemorySubject());
breakerStateContract('in-memory, 3 ms delivery delay', inMemorySubject({ clock: new SystemClock(), deliveryDelayMs: 3 }));

// --- only the twin --------------------------------------------------------------------------

const open = (node: string, atMs: number): Omit<SharedBreakerState, 'revision'> => ({ state: 'open', node, atMs });

test('in-memory: with deliveryDelayMs on a simulated clock, nothing is told until the clock reaches the delay, then all in publish order', async (t) => {
  const clock = new SimulatedClock(0);
  const bucket = new InMemoryBreakerBucket();
  const a = new InMemoryBreakerStateStore({ bucket, clock, deliveryDelayMs: 50 });
  const b = new InMemoryBreakerStateStore({ bucket, clock, deliveryDelayMs: 50 });
  const seen: SharedBreakerState[] = [];
  b.watch('payments', (s) => seen.push(s));
  await a.publish('payments', open('a', 1));
  clock.advance(30);
  await b.publish('payments', { state: 'closed', node: 'b', atMs: 2 });
  await flushMicrotasks();
  t.deepEqual(seen, []);
  clock.advance(20);
  t.deepEqual(seen.map((s) => [s.node, s.revision]), [['a', 1]]);
  clock.advance(30);
  t.deepEqual(seen.map((s) => [s.node, s.revision]), [['a', 1], ['b', 2]]);
  await a.close();
  await b.close();
  t.is(clock.pending, 0);
});

test('in-memory: unsubscribe and close cancel the clock timers of pending deliveries', async (t) => {
  const clock = new SimulatedClock(0);
  const store = new InMemoryBreakerStateStore({ clock, deliveryDelayMs: 10 });
  const seen: SharedBreakerState[] = [];
  const off = store.watch('x', (s) => seen.push(s));
  store.watch('y', (s) => seen.push(s));
  await store.publish('x', open('a', 1));
  await store.publish('y', open('a', 1));
  t.is(clock.pending, 2);
  off();
  t.is(clock.pending, 1);
  await store.close();
  t.is(clock.pending, 0);
  clock.advance(100);
  t.deepEqual(seen, []);
});

test('in-memory: stores on different buckets never see each other; a store without a bucket has its own', async (t) => {
  const a = new InMemoryBreakerStateStore();
  const b = new InMemoryBreakerStateStore();
  t.not(a.bucket, b.bucket);
  const seen: SharedBreakerState[] = [];
  b.watch('payments', (s) => seen.push(s));
  await a.publish('payments', open('a', 1));
  await flushMicrotasks();
  t.deepEqual(seen, []);
  await a.close();
  await b.close();
});

test('in-memory: a bad deliveryDelayMs is a ConfigError naming the field', (t) => {
  for (const deliveryDelayMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new InMemoryBreakerStateStore({ deliveryDelayMs }), { instanceOf: WardenError, code: 'CONFIG', message: /^deliveryDelayMs / });
  }
});

test('in-memory: without onError a malformed value is logged (warn) with the breaker and revision', async (t) => {
  const lines: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
  const logger = {
    debug: () => undefined, info: () => undefined, error: () => undefined,
    warn: (obj: object, msg?: string) => lines.push({ obj: obj as Record<string, unknown>, msg }),
    child: () => logger,
  };
  const store = new InMemoryBreakerStateStore({ logger });
  store.watch('p', () => t.fail('no state to tell'));
  const revision = store.bucket.putRaw('p', '[]');
  await flushMicrotasks();
  t.is(lines.length, 1);
  t.like(lines[0], { msg: 'malformed breaker state ignored', obj: { breaker: 'p', revision } });
  await store.close();
});

// --- the KV key mapping and the stored form ---------------------------------------------------

test('breakerKey keeps letters, digits, "-", "/" and inner "_", escapes everything else (and a leading "_") as =XX per UTF-8 byte', (t) => {
  t.is(breakerKey('payments-api'), 'payments-api');
  t.is(breakerKey('Payments_API/v2'), 'Payments_API/v2');
  t.is(breakerKey('db.orders:eu'), 'db=2Eorders=3Aeu');
  t.is(breakerKey('a=b'), 'a=3Db');
  t.is(breakerKey('_kv'), '=5Fkv');
  t.is(breakerKey('a b'), 'a=20b');
  t.is(breakerKey('café'), 'caf=C3=A9');
  t.is(breakerKey('\u{1F600}'), '=F0=9F=98=80');
  t.is(breakerKey('.'), '=2E');
});

test('breakerKey is injective over tricky names, and every key is a valid single-token KV key', (t) => {
  const names = ['a.b', 'a=2Eb', 'a=2eb', 'a_b', '_a_b', '=5Fa_b', 'a b', 'a+b', 'é', 'e\u0301', '=', '==', '=3D', 'A', 'a', '/', '//', '-', '_', '__'];
  const keys = names.map(breakerKey);
  t.is(new Set(keys).size, names.length, JSON.stringify(keys));
  for (const k of keys) {
    t.regex(k, /^[-/=\w]+$/);
    t.false(k.includes('.'));
    t.false(k.startsWith('_'));
  }
  const longest = breakerKey('\u4e16'.repeat(MAX_BREAKER_NAME_LENGTH));
  t.is(longest.length, MAX_BREAKER_NAME_LENGTH * 9, 'at most 9 key characters per name character');
});

test('breakerKey refuses names no key can stand for with a ConfigError on breaker.name', (t) => {
  for (const bad of ['', '\uD800', 'a\uDFFFb', 'x'.repeat(MAX_BREAKER_NAME_LENGTH + 1), 42 as unknown as string]) {
    t.throws(() => breakerKey(bad), { instanceOf: WardenError, code: 'CONFIG', message: /^breaker\.name / });
  }
  t.notThrows(() => breakerKey('x'.repeat(MAX_BREAKER_NAME_LENGTH)));
  t.notThrows(() => breakerKey('\u{1F600}'), 'a well-formed surrogate pair is fine');
});

test('the stored form round-trips, drops unknown fields, and is decoded as strictly as it is encoded', (t) => {
  const text = encodeSharedState('p', { state: 'half-open', node: 'n1', atMs: 12.5, revision: 9, extra: true } as unknown as Omit<SharedBreakerState, 'revision'>);
  t.deepEqual(JSON.parse(text), { v: 1, state: 'half-open', node: 'n1', atMs: 12.5 });
  t.deepEqual(decodeSharedState('p', text), { state: 'half-open', node: 'n1', atMs: 12.5 });
  const cases: Array<[string, string]> = [
    ['', 'undecodable'], ['{', 'undecodable'], ['null', 'schema'], ['[]', 'schema'], ['"open"', 'schema'],
    ['{"v":1,"state":"open","node":"n","atMs":"1"}', 'schema'], ['{"state":"open","node":"n","atMs":1}', 'schema'],
    ['{"v":2,"state":"open","node":"n","atMs":1}', 'schema'], ['{"v":1,"state":"OPEN","node":"n","atMs":1}', 'schema'],
  ];
  for (const [bad, reason] of cases) {
    const err = t.throws(() => decodeSharedState('p', bad), { instanceOf: WardenError, code: 'VALIDATION' }, bad);
    t.like(err?.details, { reason, breaker: 'p' }, bad);
  }
});
