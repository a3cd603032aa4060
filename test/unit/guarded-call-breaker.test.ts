/**
 * The circuit breaker of a guarded call: opening at the threshold, failing fast, half-open
 * probes, fallback while open, what does and does not count, and breaker state shared between
 * nodes through a `BreakerStateStore` (a small in-memory fake of the port here; the real twin
 * and the NATS KV store have their own contract suite). opossum's reset timer runs on real
 * time, so these tests use resetTimeoutMs of 50 ms. Titles cite lib/resilience/breaker.ts
 * ("breaker invariant N") and lib/resilience/guarded-call.ts ("guard invariant N").
 */
import test, { type ExecutionContext } from 'ava';
import { setTimeout as wait } from 'node:timers/promises';
import { SimulatedClock } from '../../lib/core/clock.js';
import { TerminalError, WardenError } from '../../lib/core/errors.js';
import type { BreakerStateStore, SharedBreakerState } from '../../lib/resilience/breaker-state.js';
import { defineCall } from '../../lib/resilience/guarded-call.js';
import type { CallContext, CallEvent, GuardedCallOptions } from '../../lib/resilience/types.js';

let seq = 0;

function guard<I, O>(t: ExecutionContext, fn: (input: I, ctx: CallContext) => Promise<O>, options: GuardedCallOptions<I, O> = {}, name = `breaker.${++seq}`) {
  const call = defineCall(name, fn, { retry: { retries: 0 }, ...options });
  const events: CallEvent[] = [];
  call.on((e) => events.push(e));
  t.teardown(() => call.close());
  const types = (prefix = 'breaker-') => events.filter((e) => e.type.startsWith(prefix)).map((e) => e.type);
  return { call, events, types };
}

/** A dependency the test switches between up and down, counting the calls that reach it. */
function dependency() {
  const dep = {
    up: false,
    hits: 0,
    fn: (x: number): Promise<number> => {
      dep.hits++;
      return dep.up ? Promise.resolve(x) : Promise.reject(new Error('503 from upstream'));
    },
  };
  return dep;
}

const fast = { volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeoutMs: 50 };

test('breaker: opens at volumeThreshold failures, then fails fast with BREAKER_OPEN without calling', async (t) => {
  const dep = dependency();
  const { call, types } = guard(t, dep.fn, { breaker: fast });
  for (let i = 0; i < 4; i++) await t.throwsAsync(call.call(i), { instanceOf: WardenError, message: /failed after 1 attempt/ });
  t.is(call.breakerState, 'closed', 'below the volume threshold the breaker stays closed');
  await t.throwsAsync(call.call(4));
  t.is(call.breakerState, 'open');
  t.deepEqual(types(), ['breaker-open']);
  const err = await t.throwsAsync(call.call(5), { instanceOf: WardenError });
  t.is(err?.code, 'BREAKER_OPEN');
  t.false(err?.nonRetryable, 'the pipeline may try again later');
  t.is(err?.cause, undefined, 'refused at its first attempt: no error of the dependency in this call');
  t.is(dep.hits, 5, 'the open breaker did not call the dependency');
  const m = call.metrics();
  t.is(m.failures.breakerOpen, 1);
  t.is(m.attempts, 5);
  t.deepEqual(m.breaker, { state: 'open', opened: 1, halfOpened: 0, closed: 0 });
});

test('guard invariant 2: BREAKER_OPEN is not retried', async (t) => {
  const dep = dependency();
  const { call, events } = guard(t, dep.fn, { breaker: { ...fast, volumeThreshold: 1, resetTimeoutMs: 10_000 }, retry: { retries: 5, minTimeoutMs: 1 } });
  const err = await t.throwsAsync(call.call(1), { instanceOf: WardenError });
  // attempt 1 fails and opens the breaker; retry 1 is refused: no more attempts.
  t.is(err?.code, 'BREAKER_OPEN');
  t.is(dep.hits, 1);
  t.deepEqual(events.filter((e) => e.type === 'retry').length, 1);
  t.is((err?.cause as Error).message, '503 from upstream', 'the refusal carries the dependency’s last error');
});

test('breaker: half-open after resetTimeoutMs; a successful probe closes it', async (t) => {
  const dep = dependency();
  const { call, types } = guard(t, dep.fn, { breaker: fast });
  for (let i = 0; i < 5; i++) await t.throwsAsync(call.call(i));
  t.is(call.breakerState, 'open');
  await wait(150);
  t.is(call.breakerState, 'half-open');
  dep.up = true;
  t.is(await call.call(42), 42);
  t.is(call.breakerState, 'closed');
  t.deepEqual(types(), ['breaker-open', 'breaker-half-open', 'breaker-closed']);
  t.deepEqual(call.metrics().breaker, { state: 'closed', opened: 1, halfOpened: 1, closed: 1 });
});

test('breaker: a failed probe opens it again', async (t) => {
  const dep = dependency();
  const { call, types } = guard(t, dep.fn, { breaker: fast });
  for (let i = 0; i < 5; i++) await t.throwsAsync(call.call(i));
  await wait(150);
  await t.throwsAsync(call.call(1), { message: /failed after 1 attempt/ });
  t.is(call.breakerState, 'open');
  t.deepEqual(types(), ['breaker-open', 'breaker-half-open', 'breaker-open']);
});

test('guard invariant 5: while open the fallback answers, reported as such', async (t) => {
  const dep = dependency();
  const { call, events } = guard(t, dep.fn, { breaker: fast, fallback: (x) => -x });
  for (let i = 0; i < 5; i++) await call.call(i);
  t.is(call.breakerState, 'open');
  const r = await call.callDetailed(7);
  t.deepEqual(r, { value: -7, fallback: true, attempts: 0, idempotencyKey: r.idempotencyKey });
  const fb = events.filter((e): e is Extract<CallEvent, { type: 'fallback' }> => e.type === 'fallback');
  t.is(fb.length, 6);
  t.regex(fb[5]!.error, /circuit breaker is open/);
  t.is(call.metrics().fallbacks, 6);
});

test('guard invariant 4: terminal errors do not trip the breaker', async (t) => {
  const { call } = guard(t, () => Promise.reject(new TerminalError('400 bad request')), { breaker: fast });
  for (let i = 0; i < 20; i++) await t.throwsAsync(call.call(i));
  t.is(call.breakerState, 'closed');
  t.is(call.metrics().breaker.opened, 0);
});

test('guard invariant 4: terminalTripsBreaker counts them', async (t) => {
  const { call } = guard(t, () => Promise.reject(new TerminalError('400 bad request')), { breaker: fast, terminalTripsBreaker: true });
  for (let i = 0; i < 5; i++) await t.throwsAsync(call.call(i));
  t.is(call.breakerState, 'open');
});

test('guard invariant 4: timeouts count as breaker failures', async (t) => {
  const { call } = guard(t, (_x: number, { signal }) => new Promise<number>((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error))), {
    breaker: fast,
    timeoutMs: 5,
  });
  for (let i = 0; i < 5; i++) await t.throwsAsync(call.call(i));
  t.is(call.breakerState, 'open');
  t.is(call.metrics().failures.timeout, 5);
});

// ---- shared state ----

/** The smallest BreakerStateStore: synchronous delivery, revisions, current state on watch. */
class FakeStore implements BreakerStateStore {
  readonly published: SharedBreakerState[] = [];
  private readonly states = new Map<string, SharedBreakerState>();
  private readonly watchers = new Map<string, Set<(s: SharedBreakerState) => void>>();
  private revision = 0;

  publish(name: string, state: Omit<SharedBreakerState, 'revision'>): Promise<void> {
    const s = { ...state, revision: ++this.revision };
    this.states.set(name, s);
    this.published.push(s);
    for (const w of [...(this.watchers.get(name) ?? [])]) w(s);
    return Promise.resolve();
  }

  watch(name: string, onChange: (s: SharedBreakerState) => void): () => void {
    const set = this.watchers.get(name) ?? new Set();
    this.watchers.set(name, set);
    set.add(onChange);
    const current = this.states.get(name);
    if (current) onChange(current);
    return () => set.delete(onChange);
  }

  watcherCount(name: string): number {
    return this.watchers.get(name)?.size ?? 0;
  }

  close(): Promise<void> {
    this.watchers.clear();
    return Promise.resolve();
  }
}

const shared = (store: BreakerStateStore, node: string, clock: SimulatedClock) => ({
  breaker: { ...fast, resetTimeoutMs: 10_000, shared: store, node },
  clock,
});

test('breaker invariant 4: an open state from another node opens the local breaker; closed closes it', async (t) => {
  const store = new FakeStore();
  const clock = new SimulatedClock(1_000);
  const dep = dependency();
  dep.up = true;
  const { call, events } = guard(t, dep.fn, shared(store, 'node-a', clock));
  await store.publish(call.name, { state: 'open', node: 'node-b', atMs: clock.now() });
  t.is(call.breakerState, 'open');
  t.deepEqual(events.at(-1), { type: 'breaker-open', call: call.name, source: 'remote', node: 'node-b' });
  const err = await t.throwsAsync(call.call(1), { instanceOf: WardenError });
  t.is(err?.code, 'BREAKER_OPEN');
  t.is(dep.hits, 0, 'the remote state protected this node before it saw any failure');
  await store.publish(call.name, { state: 'closed', node: 'node-b', atMs: clock.now() });
  t.is(call.breakerState, 'closed');
  t.is(await call.call(5), 5);
  t.deepEqual(
    store.published.map((s) => [s.state, s.node]),
    [
      ['open', 'node-b'],
      ['closed', 'node-b'],
    ],
    'breaker invariant 3: changes applied from a remote state are not published again',
  );
});

test('breaker invariants 2-3: local transitions are published with this node’s name; a second node follows', async (t) => {
  const store = new FakeStore();
  const clock = new SimulatedClock(5_000);
  const depA = dependency();
  const depB = dependency();
  const name = `breaker.shared.${++seq}`;
  const a = guard(t, depA.fn, shared(store, 'node-a', clock), name);
  // Node B runs in another process; here it replaces A in this process' registry.
  const b = guard(t, depB.fn, { ...shared(store, 'node-b', clock), replace: true }, name);
  for (let i = 0; i < 5; i++) await t.throwsAsync(a.call.call(i));
  t.is(a.call.breakerState, 'open');
  t.deepEqual(store.published.map((s) => [s.state, s.node, s.atMs]), [['open', 'node-a', 5_000]]);
  t.is(b.call.breakerState, 'open');
  t.deepEqual(b.events.at(-1), { type: 'breaker-open', call: name, source: 'remote', node: 'node-a' });
  await t.throwsAsync(b.call.call(1), { message: /circuit breaker is open/ });
  t.is(depB.hits, 0);
});

test('breaker invariant 4: a state already open when watching starts opens a new guard; a stale one does not', async (t) => {
  const store = new FakeStore();
  const clock = new SimulatedClock(100_000);
  const fresh = `breaker.fresh.${++seq}`;
  const stale = `breaker.stale.${++seq}`;
  await store.publish(fresh, { state: 'open', node: 'node-b', atMs: 95_000 });
  await store.publish(stale, { state: 'open', node: 'node-b', atMs: 90_000 }); // resetTimeoutMs (10 s) ago
  const f = guard(t, dependency().fn, shared(store, 'node-a', clock), fresh);
  const s = guard(t, dependency().fn, shared(store, 'node-a', clock), stale);
  t.is(f.call.breakerState, 'open');
  t.is(s.call.breakerState, 'closed');
});

test('breaker invariants 3-4: this node’s own states, half-open states and older revisions change nothing', async (t) => {
  const store = new FakeStore();
  const clock = new SimulatedClock(0);
  const { call, types } = guard(t, dependency().fn, shared(store, 'node-a', clock));
  await store.publish(call.name, { state: 'open', node: 'node-a', atMs: 0 });
  t.is(call.breakerState, 'closed', 'own node ignored');
  await store.publish(call.name, { state: 'half-open', node: 'node-b', atMs: 0 });
  t.is(call.breakerState, 'closed', 'half-open ignored');
  // An out-of-order delivery: revision 1 after revision 2.
  const watchers = (store as unknown as { watchers: Map<string, Set<(s: SharedBreakerState) => void>> }).watchers.get(call.name)!;
  for (const w of watchers) w({ state: 'open', node: 'node-b', atMs: 0, revision: 1 });
  t.is(call.breakerState, 'closed', 'an older revision is ignored');
  t.deepEqual(types(), []);
});

test('breaker invariant 5: close() stops watching; later states change nothing', async (t) => {
  const store = new FakeStore();
  const clock = new SimulatedClock(0);
  const { call, events } = guard(t, dependency().fn, shared(store, 'node-a', clock));
  t.is(store.watcherCount(call.name), 1);
  await call.close();
  t.is(store.watcherCount(call.name), 0);
  await store.publish(call.name, { state: 'open', node: 'node-b', atMs: 0 });
  t.deepEqual(events, []);
});

test('breaker: a failing publish is logged, never fails the call', async (t) => {
  const warnings: string[] = [];
  const logger = { debug: () => undefined, info: () => undefined, warn: (_o: object, msg?: string) => void warnings.push(msg ?? ''), error: () => undefined, child: () => logger };
  const store: BreakerStateStore = { publish: () => Promise.reject(new Error('kv down')), watch: () => () => undefined, close: () => Promise.resolve() };
  const { call } = guard(t, dependency().fn, { breaker: { ...fast, shared: store, node: 'a' }, logger });
  for (let i = 0; i < 5; i++) await t.throwsAsync(call.call(i), { message: /failed after/ });
  t.is(call.breakerState, 'open');
  await call.close();
  t.deepEqual(warnings, [`circuit breaker of ${call.name} open`, 'could not share the breaker state']);
});
