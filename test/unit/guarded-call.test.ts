/**
 * defineCall on the simulated clock: timeouts that abort, retries and their delays, terminal
 * errors, Retry-After, the time budget, idempotency keys, fallback, alerts, caller aborts,
 * close, the registry and option validation. Titles cite the invariants of
 * lib/resilience/guarded-call.ts ("guard invariant N") and lib/resilience/attempt.ts
 * ("attempt invariant N"). Breaker behaviour is in guarded-call-breaker.test.ts.
 */
import test, { type ExecutionContext } from 'ava';
import { createActor, toPromise } from 'xstate';
import { fromCall } from '../../lib/actor/calls.js';
import { SimulatedClock, sleep } from '../../lib/core/clock.js';
import { ConfigError, TerminalError, WardenError } from '../../lib/core/errors.js';
import { defineCall } from '../../lib/resilience/guarded-call.js';
import { getCall, listCalls } from '../../lib/resilience/registry.js';
import type { CallAlert, CallContext, CallEvent, GuardedCallOptions } from '../../lib/resilience/types.js';

let seq = 0;

/** A guarded call with a unique name on a simulated clock, closed after the test; records its events. */
function guard<I, O>(t: ExecutionContext, fn: (input: I, ctx: CallContext) => Promise<O>, options: GuardedCallOptions<I, O> = {}) {
  const clock = (options.clock as SimulatedClock | undefined) ?? new SimulatedClock(0);
  const call = defineCall(`test.${++seq}`, fn, { random: () => 0.5, ...options, clock });
  const events: CallEvent[] = [];
  call.on((e) => events.push(e));
  t.teardown(() => call.close());
  const of = <T extends CallEvent['type']>(type: T) => events.filter((e): e is Extract<CallEvent, { type: T }> => e.type === type);
  return { call, clock, events, of };
}

/** Settles `p` into a value so a test can advance the clock before looking. */
function outcome<T>(p: Promise<T>): { done: () => boolean; result: Promise<{ ok: true; value: T } | { ok: false; error: unknown }> } {
  let settled = false;
  const result = p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  void result.then(() => (settled = true));
  return { done: () => settled, result };
}

async function failure(t: ExecutionContext, p: Promise<unknown>): Promise<WardenError> {
  const err = await t.throwsAsync(p, { instanceOf: WardenError });
  return err;
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/** A guarded function written synchronously: what it throws becomes a rejection. */
const sync =
  <I, O>(f: (input: I, ctx: CallContext) => O): ((input: I, ctx: CallContext) => Promise<O>) =>
  (input, ctx) =>
    new Promise<O>((resolve) => resolve(f(input, ctx)));

// ---- timeout ----

test('attempt invariants 1-2: a timeout aborts the signal with TIMEOUT naming the call and the ms, and the call fails', async (t) => {
  let seen: AbortSignal | undefined;
  const { call, clock, of } = guard<number, number>(
    t,
    (_x, { signal }) => {
      seen = signal;
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('request aborted'))));
    },
    { timeoutMs: 100, retry: { retries: 0 } },
  );
  const o = outcome(call.call(1));
  await clock.advanceAsync(99);
  t.false(o.done(), 'still running 1 ms before the deadline');
  t.false(seen!.aborted);
  await clock.advanceAsync(1);
  const r = await o.result;
  t.false(r.ok);
  const err = (r as { error: WardenError }).error;
  t.is(err.code, 'CALL_FAILED');
  t.true(seen!.aborted, 'the function’s signal is aborted');
  const reason = seen!.reason as WardenError;
  t.is(reason.code, 'TIMEOUT');
  t.regex(reason.message, new RegExp(`call ${call.name} timed out after 100 ms`));
  t.is(err.cause, reason, 'the TIMEOUT is the cause of the call’s failure');
  t.deepEqual(of('timeout'), [{ type: 'timeout', call: call.name, attempt: 1, timeoutMs: 100 }]);
  t.is(call.metrics().failures.timeout, 1);
});

test('attempt invariant 1: the deadline rejects even when the function ignores its signal; a signal read late is already aborted', async (t) => {
  let ctx: CallContext | undefined;
  const { call, clock } = guard<number, number>(
    t,
    (_x, c) => {
      ctx = c;
      return never();
    },
    { timeoutMs: 50, retry: { retries: 0 } },
  );
  const o = outcome(call.call(1));
  await clock.advanceAsync(50);
  const r = await o.result;
  t.false(r.ok);
  t.is(((r as { error: WardenError }).error.cause as WardenError).code, 'TIMEOUT');
  t.true(ctx!.signal.aborted, 'a signal first read after the timeout is aborted');
  t.is((ctx!.signal.reason as WardenError).code, 'TIMEOUT');
});

test('timeoutMs Infinity: no deadline, no timer', async (t) => {
  let release: (v: number) => void = () => undefined;
  const { call, clock } = guard<number, number>(t, () => new Promise((resolve) => (release = resolve)), { timeoutMs: Infinity });
  const o = outcome(call.call(1));
  await clock.advanceAsync(3_600_000);
  t.false(o.done());
  t.is(clock.pending, 0);
  release(7);
  t.deepEqual(await o.result, { ok: true, value: 7 });
});

// ---- retries ----

test('guard invariant 3: failures are retried with growing delays on the clock, then the call succeeds', async (t) => {
  const at: number[] = [];
  const { call, clock, of } = guard<number, string>(
    t,
    sync((x, { attempt }) => {
      at.push(clock.now());
      if (attempt < 4) throw new Error(`boom ${attempt}`);
      return `ok ${x}`;
    }),
    { retry: { retries: 3, minTimeoutMs: 100, factor: 2, randomize: true } },
  );
  const o = outcome(call.callDetailed(1));
  await clock.advanceAsync(10_000);
  const r = await o.result;
  t.deepEqual(r, { ok: true, value: { value: 'ok 1', fallback: false, attempts: 4, idempotencyKey: (r as { value: { idempotencyKey: string } }).value.idempotencyKey } });
  // random() = 0.5: r = 1.5; delays 150, 300, 600.
  t.deepEqual(of('retry').map((e) => [e.attempt, e.delayMs]), [[2, 150], [3, 300], [4, 600]]);
  t.deepEqual(at, [0, 150, 450, 1050]);
  t.deepEqual(of('attempt-failed').map((e) => [e.attempt, e.kind, e.error]), [[1, 'error', 'boom 1'], [2, 'error', 'boom 2'], [3, 'error', 'boom 3']]);
  const m = call.metrics();
  t.is(m.attempts, 4);
  t.is(m.retries, 3);
  t.is(m.successes, 1);
  t.is(m.failures.error, 3);
});

test('guard invariant 3: delays are capped by maxTimeoutMs; without randomize they are exact', async (t) => {
  const { call, clock, of } = guard<number, number>(t, () => Promise.reject(new Error('down')), {
    retry: { retries: 4, minTimeoutMs: 100, factor: 3, maxTimeoutMs: 500, randomize: false },
  });
  const o = outcome(call.call(1));
  await clock.advanceAsync(60_000);
  t.false((await o.result).ok);
  t.deepEqual(of('retry').map((e) => e.delayMs), [100, 300, 500, 500]);
});

test('guard invariant 5: after the last retry the call fails with CALL_FAILED, the last error as cause and the attempt count', async (t) => {
  const { call, clock, of } = guard<number, number>(t, (_x, { attempt }) => Promise.reject(new Error(`failure ${attempt}`)), {
    retry: { retries: 2, minTimeoutMs: 10 },
  });
  const o = outcome(call.call(1));
  await clock.advanceAsync(1_000);
  const err = (await o.result) as { ok: false; error: WardenError };
  t.is(err.error.code, 'CALL_FAILED');
  t.false(err.error.nonRetryable, 'a dependency failure may be retried later by the caller');
  t.is((err.error.cause as Error).message, 'failure 3');
  t.is(err.error.details.attempts, 3);
  t.is(err.error.details.kind, 'error');
  t.regex(err.error.message, /failed after 3 attempts/);
  t.deepEqual(of('call-failed').map((e) => [e.attempts, e.kind]), [[3, 'error']]);
  t.is(call.metrics().failedCalls, 1);
});

test('guard invariant 1: the first attempt runs at once, and a success never schedules anything', async (t) => {
  let runs = 0;
  const { call, clock } = guard<number, number>(
    t,
    sync((x) => {
      runs++;
      return x + 1;
    }),
  );
  t.is(await call.call(1), 2);
  t.is(runs, 1);
  t.is(call.metrics().retries, 0);
  t.true(clock.pending <= 1, 'at most the shared deadline timer');
});

test('guard invariant 3: no retry starts at or after maxRetryTimeMs', async (t) => {
  const { call, clock, of } = guard<number, number>(t, () => Promise.reject(new Error('down')), {
    retry: { retries: 10, minTimeoutMs: 100, randomize: false, maxRetryTimeMs: 250 },
  });
  const o = outcome(call.call(1));
  await clock.advanceAsync(10_000);
  const err = ((await o.result) as { error: WardenError }).error;
  t.is(err.code, 'CALL_FAILED');
  // Attempt 1 at 0, retry after 100 (at 100), the next would wait 200 (until 300 >= 250): stop.
  t.deepEqual(of('retry').map((e) => e.delayMs), [100]);
  t.is(err.details.attempts, 2);
});

// ---- terminal errors ----

for (const [what, make, options] of [
  ['a TerminalError', () => new TerminalError('card declined'), {}],
  ['an error with nonRetryable: true', () => Object.assign(new Error('card declined'), { nonRetryable: true }), {}],
  ['an error isRetryable rejects', () => Object.assign(new Error('card declined'), { status: 402 }), { isRetryable: (e: unknown) => (e as { status?: number }).status !== 402 }],
] as const) {
  test(`guard invariant 2: ${what} is not retried and surfaces as a non-retryable CALL_FAILED`, async (t) => {
    let runs = 0;
    const thrown = make();
    const { call, clock, of } = guard<number, number>(
      t,
      () => {
        runs++;
        return Promise.reject(thrown);
      },
      { retry: { retries: 5, minTimeoutMs: 1 }, ...options },
    );
    const o = outcome(call.call(1));
    await clock.advanceAsync(1_000);
    const err = ((await o.result) as { error: WardenError }).error;
    t.is(runs, 1);
    t.is(err.code, 'CALL_FAILED');
    t.true(err.nonRetryable);
    t.is(err.cause, thrown);
    t.is(err.details.kind, 'terminal');
    t.is(of('retry').length, 0);
    t.is(call.metrics().failures.terminal, 1);
  });
}

test('guard invariant 2: a TypeError that is not a network error (a bug) is not retried, as in p-retry', async (t) => {
  let runs = 0;
  const { call, clock } = guard<number, number>(t, () => {
    runs++;
    return Promise.reject(new TypeError('x.y is not a function'));
  });
  const o = outcome(call.call(1));
  await clock.advanceAsync(10_000);
  t.is(((await o.result) as { error: WardenError }).error.code, 'CALL_FAILED');
  t.is(runs, 1);
});

// ---- Retry-After ----

test('guard invariant 3: an error with retryAfterMs makes the next attempt wait at least that long', async (t) => {
  const at: number[] = [];
  const { call, clock, of } = guard<number, number>(
    t,
    sync((_x, { attempt }) => {
      at.push(clock.now());
      if (attempt === 1) throw Object.assign(new Error('HTTP 429'), { retryAfterMs: 1_000 });
      if (attempt === 2) throw new WardenError('TIMEOUT', 'wrapped', { cause: Object.assign(new Error('HTTP 503'), { retryAfterMs: 5 }) });
      return 1;
    }),
    { retry: { minTimeoutMs: 10, randomize: false } },
  );
  const o = outcome(call.call(1));
  await clock.advanceAsync(999);
  t.deepEqual(at, [0], 'no retry before the server’s Retry-After');
  await clock.advanceAsync(1_000);
  t.deepEqual(await o.result, { ok: true, value: 1 });
  t.deepEqual(at, [0, 1_000, 1_020], 'a Retry-After below the backoff leaves the backoff (20 ms)');
  t.deepEqual(
    of('retry').map((e) => [e.delayMs, e.retryAfterMs]),
    [
      [1_000, 1_000],
      [20, 5],
    ],
  );
});

test('guard invariant 3: a Retry-After beyond the time budget ends the call at once', async (t) => {
  let runs = 0;
  const { call, clock } = guard<number, number>(
    t,
    () => {
      runs++;
      return Promise.reject(Object.assign(new Error('HTTP 503'), { retryAfterMs: 60_000 }));
    },
    { retry: { maxRetryTimeMs: 5_000 } },
  );
  const o = outcome(call.call(1));
  await clock.advanceAsync(0);
  t.true(o.done());
  t.is(((await o.result) as { error: WardenError }).error.code, 'CALL_FAILED');
  t.is(runs, 1);
});

// ---- idempotency keys ----

test('attempt invariant 3: every attempt of a call sees the same idempotency key; calls get different ones', async (t) => {
  const keys: string[] = [];
  const { call, clock } = guard<number, number>(
    t,
    sync((_x, { attempt, idempotencyKey }) => {
      keys.push(idempotencyKey);
      if (attempt < 3) throw new Error('flaky');
      return 1;
    }),
    { retry: { minTimeoutMs: 1 } },
  );
  const o = outcome(call.callDetailed(1));
  await clock.advanceAsync(100);
  const r = (await o.result) as { ok: true; value: { idempotencyKey: string } };
  t.is(keys.length, 3);
  t.true(keys.every((k) => k === keys[0]));
  t.regex(keys[0]!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.is(r.value.idempotencyKey, keys[0]!);
  const second = outcome(call.call(2));
  await clock.advanceAsync(100);
  await second.result;
  t.not(keys[3], keys[0], 'a new call draws a new key');
});

test('idempotency keys: the caller’s key wins over the idempotencyKey option, which wins over a UUID', async (t) => {
  const keys: string[] = [];
  const { call } = guard<{ orderId: string }, number>(
    t,
    sync((_x, { idempotencyKey }) => {
      keys.push(idempotencyKey);
      return 1;
    }),
    { idempotencyKey: (input) => `order:${input.orderId}` },
  );
  await call.call({ orderId: 'o-1' });
  await call.call({ orderId: 'o-1' }, { idempotencyKey: 'payments:u1:7.0' });
  t.deepEqual(keys, ['order:o-1', 'payments:u1:7.0']);
  await t.throwsAsync(call.call({ orderId: 'o-2' }, { idempotencyKey: '' }), { instanceOf: ConfigError, message: /idempotencyKey/ });
});

// ---- fallback ----

test('guard invariant 5: when retries run out the fallback answers, and says so', async (t) => {
  const fallbackErrors: WardenError[] = [];
  const { call, clock, of } = guard<number, string>(t, () => Promise.reject(new Error('down')), {
    retry: { retries: 1, minTimeoutMs: 1 },
    fallback: (x, error) => {
      fallbackErrors.push(error);
      return `cached ${x}`;
    },
  });
  const o = outcome(call.callDetailed(3));
  await clock.advanceAsync(10);
  const r = (await o.result) as { ok: true; value: { value: string; fallback: boolean; attempts: number } };
  t.like(r.value, { value: 'cached 3', fallback: true, attempts: 2 });
  t.is(fallbackErrors[0]?.code, 'CALL_FAILED');
  t.deepEqual(of('fallback').map((e) => e.type), ['fallback']);
  t.like(call.metrics(), { fallbacks: 1, failedCalls: 1, successes: 0 });
  // plain call() returns the value too
  const o2 = outcome(call.call(4));
  await clock.advanceAsync(10);
  t.deepEqual(await o2.result, { ok: true, value: 'cached 4' });
});

test('guard invariant 5: no fallback for a terminal error; a fallback that throws is FALLBACK_FAILED, one that rethrows declines', async (t) => {
  let mode: 'terminal' | 'down' = 'terminal';
  let fb: 'throw' | 'decline' = 'throw';
  const { call, clock } = guard<number, string>(t, () => Promise.reject(mode === 'terminal' ? new TerminalError('bad request') : new Error('down')), {
    retry: { retries: 0 },
    fallback: (_x, error) => {
      if (fb === 'decline') throw error;
      throw new Error('cache empty');
    },
  });
  const terminal = await failure(t, call.call(1));
  t.is(terminal.code, 'CALL_FAILED');
  t.true(terminal.nonRetryable);
  mode = 'down';
  const failed = await failure(t, call.call(1));
  t.is(failed.code, 'FALLBACK_FAILED');
  t.is((failed.cause as Error).message, 'cache empty');
  fb = 'decline';
  const declined = await failure(t, call.call(1));
  t.is(declined.code, 'CALL_FAILED');
  t.is(call.metrics().fallbacks, 0, 'only a fallback that answered counts');
  await clock.advanceAsync(0);
});

// ---- alerts ----

test('guard invariant 6: an alert after alertAfter consecutive failed calls, once per episode; recovered on the next success', async (t) => {
  let healthy = false;
  const alerts: CallAlert[] = [];
  const { call, clock, of } = guard<number, number>(
    t,
    sync(() => {
      if (!healthy) throw new Error('db down', { cause: new Error('ECONNREFUSED') });
      return 1;
    }),
    { retry: { retries: 0 }, alertAfter: 3, onAlert: (a) => alerts.push(a), breaker: { volumeThreshold: 1_000 } },
  );
  const fail = async (): Promise<void> => {
    await t.throwsAsync(call.call(1));
  };
  await clock.advanceAsync(5);
  await fail();
  await clock.advanceAsync(5);
  await fail();
  t.is(alerts.length, 0);
  await fail();
  t.is(alerts.length, 1);
  t.like(alerts[0], { call: call.name, consecutiveFailures: 3, sinceMs: 5 });
  t.is(alerts[0]!.error, `call ${call.name} failed after 1 attempt (error) (caused by db down (caused by ECONNREFUSED))`);
  t.deepEqual(alerts[0]!.chain.map((c) => c.message), [`call ${call.name} failed after 1 attempt (error)`, 'db down', 'ECONNREFUSED']);
  await fail();
  await fail();
  t.is(alerts.length, 1, 'one alert per episode');
  t.is(of('alert').length, 1);
  await clock.advanceAsync(100);
  healthy = true;
  await call.call(1);
  t.deepEqual(of('recovered'), [{ type: 'recovered', call: call.name, failedCalls: 5, downForMs: 105 }]);
  healthy = false;
  for (let i = 0; i < 3; i++) await fail();
  t.is(alerts.length, 2, 'a new episode alerts again');
  t.is(call.metrics().alerts, 2);
});

test('guard invariant 6: terminal errors neither count toward an alert nor end an episode', async (t) => {
  let mode: 'down' | 'terminal' | 'ok' = 'down';
  const { call, of } = guard<number, number>(
    t,
    sync(() => {
      if (mode === 'down') throw new Error('down');
      if (mode === 'terminal') throw new TerminalError('bad input');
      return 1;
    }),
    { retry: { retries: 0 }, alertAfter: 2 },
  );
  await t.throwsAsync(call.call(1));
  mode = 'terminal';
  await t.throwsAsync(call.call(1));
  await t.throwsAsync(call.call(1));
  t.is(of('alert').length, 0);
  mode = 'down';
  await t.throwsAsync(call.call(1));
  t.is(of('alert').length, 1);
  t.is(call.metrics().consecutiveFailures, 2);
  mode = 'ok';
  await call.call(1);
  t.is(of('recovered').length, 1);
});

// ---- caller abort ----

test('a caller abort during an attempt aborts the function’s signal with the caller’s reason; no retry', async (t) => {
  let seen: AbortSignal | undefined;
  let runs = 0;
  const { call, clock } = guard<number, number>(t, (_x, { signal }) => {
    runs++;
    seen = signal;
    return never();
  });
  const ac = new AbortController();
  const o = outcome(call.call(1, { signal: ac.signal }));
  await clock.advanceAsync(10);
  const reason = new Error('client went away');
  ac.abort(reason);
  const r = await o.result;
  t.deepEqual(r, { ok: false, error: reason });
  t.is(seen!.reason, reason);
  await clock.advanceAsync(60_000);
  t.is(runs, 1);
  t.is(call.metrics().failures.aborted, 1);
});

test('a caller abort during a backoff sleep ends the call without another attempt', async (t) => {
  let runs = 0;
  const { call, clock } = guard<number, number>(t, () => {
    runs++;
    return Promise.reject(new Error('down'));
  }, { retry: { minTimeoutMs: 1_000 } });
  const ac = new AbortController();
  const o = outcome(call.call(1, { signal: ac.signal }));
  await clock.advanceAsync(500);
  ac.abort(new Error('shutdown'));
  const r = await o.result;
  t.is(((r as { error: Error }).error).message, 'shutdown');
  await clock.advanceAsync(60_000);
  t.is(runs, 1);
  t.is(clock.pending, 0, 'the backoff timer is gone');
});

test('an already aborted signal rejects at once without running', async (t) => {
  let runs = 0;
  const { call } = guard<number, number>(t, () => Promise.resolve(++runs));
  await t.throwsAsync(call.call(1, { signal: AbortSignal.abort(new Error('too late')) }), { message: 'too late' });
  t.is(runs, 0);
  t.is(call.metrics().calls, 0);
});

// ---- close ----

test('guard invariant 7: close() rejects calls in flight and in backoff with STOPPED, aborts their signals, and leaves no timer', async (t) => {
  let seen: AbortSignal | undefined;
  const clock = new SimulatedClock(0);
  const hanging = defineCall(`test.${++seq}`, (_x: number, { signal }) => {
    seen = signal;
    return never<number>();
  }, { clock });
  const flaky = defineCall(`test.${++seq}`, () => Promise.reject(new Error('down')), { clock, retry: { minTimeoutMs: 5_000 } });
  const a = outcome(hanging.call(1));
  const b = outcome(flaky.call(1));
  await clock.advanceAsync(10);
  await hanging.close();
  await flaky.close();
  const [ra, rb] = await Promise.all([a.result, b.result]);
  t.is(((ra as { error: WardenError }).error).code, 'STOPPED');
  t.is(((rb as { error: WardenError }).error).code, 'STOPPED');
  t.is((seen!.reason as WardenError).code, 'STOPPED');
  t.is(clock.pending, 0);
  t.true(hanging.closed);
  await t.throwsAsync(hanging.call(1), { instanceOf: WardenError, message: /is closed/ });
});

test.serial('guard invariant 7: close() clears opossum’s rolling-window interval', async (t) => {
  // opossum unrefs its interval, so it is invisible to getActiveResourcesInfo(): watch the globals.
  const made: unknown[] = [];
  const cleared: unknown[] = [];
  const { setInterval: realSet, clearInterval: realClear } = globalThis;
  const spySet = (fn: () => void, ms?: number): ReturnType<typeof setInterval> => {
    const handle = realSet(fn, ms);
    made.push(handle);
    return handle;
  };
  globalThis.setInterval = spySet;
  globalThis.clearInterval = (handle: Parameters<typeof clearInterval>[0]): void => {
    cleared.push(handle);
    realClear(handle);
  };
  try {
    const call = defineCall(`test.${++seq}`, (x: number) => Promise.resolve(x), { clock: new SimulatedClock(0) });
    t.is(made.length, 1, 'one interval while the guard lives (no snapshot interval)');
    t.deepEqual(cleared, []);
    await call.close();
    t.deepEqual(cleared, made);
  } finally {
    globalThis.setInterval = realSet;
    globalThis.clearInterval = realClear;
  }
});

// ---- registry ----

test('registry invariants 1-2: one call per name, replace: true, getCall and listCalls; close frees the name', async (t) => {
  const name = `test.registry.${++seq}`;
  const first = defineCall(name, (x: number) => Promise.resolve(x));
  t.is(getCall<number, number>(name), first);
  t.true(listCalls().includes(first));
  const err = t.throws(() => defineCall(name, (x: number) => Promise.resolve(x)), { instanceOf: ConfigError });
  t.is(err?.field, 'name');
  const second = defineCall(name, (x: number) => Promise.resolve(x + 1), { replace: true });
  t.is(getCall(name), second);
  await first.close();
  t.is(getCall(name), second, 'closing a replaced call does not unregister its successor');
  await second.close();
  t.is(getCall(name), undefined);
  const third = defineCall(name, (x: number) => Promise.resolve(x));
  await third.close();
});

test('registry invariant 3: fromCall(name) finds the call registered under that name', async (t) => {
  const name = `test.from-call.${++seq}`;
  const keys: string[] = [];
  const call = defineCall(name, (x: number, { idempotencyKey }) => {
    keys.push(idempotencyKey);
    return Promise.resolve(x * 2);
  });
  t.teardown(() => call.close());
  const actor = createActor(fromCall<number, number>(name), { input: 21 });
  actor.start();
  t.is(await toPromise(actor), 42);
  t.is(keys.length, 1, 'it ran through the guard');
  t.is(call.metrics().successes, 1);
});

// ---- configuration ----

const bad: Array<[string, GuardedCallOptions<unknown, unknown>]> = [
  ['timeoutMs', { timeoutMs: 0 }],
  ['timeoutMs', { timeoutMs: Number.NaN }],
  ['retry', { retry: 3 as never }],
  ['retry.retries', { retry: { retries: -1 } }],
  ['retry.retries', { retry: { retries: 1.5 } }],
  ['retry.factor', { retry: { factor: 0 } }],
  ['retry.minTimeoutMs', { retry: { minTimeoutMs: 500, maxTimeoutMs: 100 } }],
  ['retry.randomize', { retry: { randomize: 'yes' as never } }],
  ['retry.maxRetryTimeMs', { retry: { maxRetryTimeMs: 0 } }],
  ['breaker.errorThresholdPercentage', { breaker: { errorThresholdPercentage: 100 } }],
  ['breaker.volumeThreshold', { breaker: { volumeThreshold: -1 } }],
  ['breaker.resetTimeoutMs', { breaker: { resetTimeoutMs: 0 } }],
  ['breaker.resetTimeoutMs', { breaker: { resetTimeoutMs: 2 ** 31 } }],
  ['breaker.rollingCountBuckets', { breaker: { rollingCountBuckets: 0 } }],
  ['breaker.rollingCountBuckets', { breaker: { rollingCountTimeoutMs: 5, rollingCountBuckets: 10 } }],
  ['breaker.shared', { breaker: { shared: {} as never } }],
  ['breaker.node', { breaker: { node: '' } }],
  ['fallback', { fallback: 'cached' as never }],
  ['isRetryable', { isRetryable: true as never }],
  ['terminalTripsBreaker', { terminalTripsBreaker: 1 as never }],
  ['alertAfter', { alertAfter: 0 }],
  ['clock', { clock: {} as never }],
];
for (const [field, options] of bad) {
  test(`config: ${JSON.stringify(options, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))} throws ConfigError naming ${field}`, (t) => {
    const name = `test.config.${++seq}`;
    const err = t.throws(() => defineCall(name, () => Promise.resolve(1), options), { instanceOf: ConfigError });
    t.is(err?.field, field);
    t.is(getCall(name), undefined, 'nothing is registered');
  });
}

test('config: a missing function or an empty name throws ConfigError naming it', (t) => {
  t.is(t.throws(() => defineCall('x', 'nope' as never), { instanceOf: ConfigError })?.field, 'fn');
  t.is(t.throws(() => defineCall('', () => Promise.resolve(1)), { instanceOf: ConfigError })?.field, 'name');
});

test('the success path reports latency on the clock', async (t) => {
  const { call, clock } = guard<number, number>(t, async (x) => {
    await sleep(clock, 30);
    return x;
  });
  const o = outcome(call.call(1));
  await clock.advanceAsync(30);
  t.deepEqual(await o.result, { ok: true, value: 1 });
  const { latencyMs } = call.metrics();
  t.is(latencyMs.count, 1);
  t.is(latencyMs.sum, 30);
  t.is(latencyMs.counts[latencyMs.bucketsMs.indexOf(50)], 1, '30 ms falls in the (25, 50] bucket');
});
