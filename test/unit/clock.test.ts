import test from 'ava';
import { TimerWheel } from '../../lib/worker/timer-wheel.js';
import { MAX_TIMER_MS, SimulatedClock, SystemClock, sleep, type TimerHandle } from '../../lib/core/clock.js';

test('SimulatedClock fires timers in deadline order, ties in creation order', (t) => {
  const clock = new SimulatedClock(1000);
  const fired: string[] = [];
  clock.setTimeout(() => fired.push('b@20'), 20);
  clock.setTimeout(() => fired.push('a@10'), 10);
  clock.setTimeout(() => fired.push('c@20'), 20);
  clock.advance(15);
  t.deepEqual(fired, ['a@10']);
  t.is(clock.now(), 1015);
  clock.advance(5);
  t.deepEqual(fired, ['a@10', 'b@20', 'c@20']);
});

test('SimulatedClock: a timer set by a firing timer fires in the same advance when due', (t) => {
  const clock = new SimulatedClock(0);
  const at: number[] = [];
  clock.setTimeout(() => {
    at.push(clock.now());
    clock.setTimeout(() => at.push(clock.now()), 10);
  }, 10);
  clock.advance(25);
  t.deepEqual(at, [10, 20]);
});

test('SimulatedClock: cleared timers never fire', (t) => {
  const clock = new SimulatedClock(0);
  let fired = false;
  const h = clock.setTimeout(() => (fired = true), 5);
  clock.clearTimeout(h);
  clock.advance(10);
  t.false(fired);
  t.is(clock.pending, 0);
});

test('sleep on the simulated clock resolves on advanceAsync and rejects on abort', async (t) => {
  const clock = new SimulatedClock(0);
  let done = false;
  const p = sleep(clock, 100).then(() => (done = true));
  await clock.advanceAsync(99);
  t.false(done);
  await clock.advanceAsync(1);
  await p;
  t.true(done);
  const ac = new AbortController();
  const q = sleep(clock, 100, ac.signal);
  ac.abort(new Error('stop'));
  await t.throwsAsync(q, { message: 'stop' });
});

test('SystemClock: a 0 ms timer runs soon (not clamped to 1 ms) and can be cleared', async (t) => {
  const clock = new SystemClock();
  const order: string[] = [];
  clock.setTimeout(() => order.push('zero'), 0);
  const cleared = clock.setTimeout(() => order.push('cleared'), 0);
  clock.clearTimeout(cleared);
  const timed = clock.setTimeout(() => order.push('timed'), 5);
  clock.clearTimeout(timed);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(order, ['zero']);
});

// ---- waits longer than a Node timer can hold (2^31-1 ms, about 24.8 days) ----

const DAY = 86_400_000;

test.serial('SimulatedClock: a timeout longer than 24.8 days fires once, at its deadline, with no warning', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    const clock = new SimulatedClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 30 * DAY);
    const cleared = clock.setTimeout(() => fired.push(-1), 40 * DAY);
    clock.advance(MAX_TIMER_MS + 1);
    t.deepEqual(fired, [], 'not at the 24.8-day mark');
    clock.advance(30 * DAY - (MAX_TIMER_MS + 1) - 1);
    t.deepEqual(fired, []);
    clock.advance(1);
    t.deepEqual(fired, [30 * DAY]);
    clock.clearTimeout(cleared);
    clock.setTimeout(() => fired.push(-2), Number.POSITIVE_INFINITY);
    clock.advance(365 * DAY);
    t.deepEqual(fired, [30 * DAY], 'fired once; a cleared one never; Infinity never');
    await new Promise((resolve) => setImmediate(resolve));
    t.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
  }
});

test.serial('SystemClock: a timeout longer than 24.8 days fires once, at its deadline, with no warning (no TimeoutOverflowWarning, not run after a short real wait)', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    const clock = new SystemClock();
    let runs = 0;
    const handles = [30 * DAY, MAX_TIMER_MS + 1, Number.POSITIVE_INFINITY].map((ms) => clock.setTimeout(() => runs++, ms));
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.is(runs, 0, 'Node would have clamped each to 1 ms and run it at once');
    t.deepEqual(warnings.map((w) => w.name), []);
    for (const h of handles) clock.clearTimeout(h);
  } finally {
    process.off('warning', onWarning);
  }
});

test('SystemClock: a timeout longer than 24.8 days is armed in pieces of at most 2^31-1 ms under one handle, fires once at its deadline, and clearTimeout stops the chain', (t) => {
  // Node's timers and the monotonic clock replaced by a hand-driven model, for this synchronous test only.
  let now = 0;
  const armed = new Map<number, { fn: () => void; at: number; ms: number }>();
  let next = 1;
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
  globalThis.setTimeout = ((fn: () => void, ms: number) => {
    armed.set(next, { fn, at: now + ms, ms });
    return next++;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((id: number) => void armed.delete(id)) as unknown as typeof clearTimeout;
  (performance as { now: () => number }).now = () => now;
  const runDue = (to: number): void => {
    for (;;) {
      const due = [...armed].filter(([, a]) => a.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      armed.delete(due[0]);
      now = due[1].at;
      due[1].fn();
    }
    now = to;
  };
  try {
    const clock = new SystemClock();
    const fired: number[] = [];
    const pieces: number[] = [];
    const observe = (): void => {
      for (const a of armed.values()) if (!pieces.includes(a.at)) pieces.push(a.at);
    };
    clock.setTimeout(() => fired.push(now), 60 * DAY);
    observe();
    for (let day = 1; day <= 70; day++) {
      runDue(day * DAY);
      observe();
    }
    t.deepEqual(fired, [60 * DAY]);
    t.true([...pieces.keys()].every((i) => i === 0 || pieces[i]! - pieces[i - 1]! <= MAX_TIMER_MS), 'no piece longer than a Node timer can hold');
    t.is(pieces.length, 3, '24.8 + 24.8 + 10.4 days');
    t.is(armed.size, 0);

    const handle = clock.setTimeout(() => fired.push(-1), 60 * DAY);
    runDue(now + 30 * DAY); // past the first piece: the second is armed
    t.is(armed.size, 1);
    clock.clearTimeout(handle);
    t.is(armed.size, 0, 'the piece armed now is cleared');
    runDue(now + 60 * DAY);
    t.deepEqual(fired, [60 * DAY]);

    const short = clock.setTimeout(() => fired.push(now), 1_000);
    t.is([...armed.values()][0]?.ms, 1_000, 'a wait that fits is one plain timer');
    clock.clearTimeout(short);
  } finally {
    globalThis.setTimeout = real.setTimeout;
    globalThis.clearTimeout = real.clearTimeout;
    delete (performance as { now?: unknown }).now;
  }
});

test('SimulatedClock: a NaN delay fires at the next advance, as Node runs it after 1 ms', (t) => {
  const clock = new SimulatedClock(0);
  let fired = false;
  clock.setTimeout(() => (fired = true), Number.NaN);
  clock.advance(0);
  t.true(fired);
});

test.serial('SystemClock: a durable timer 30 days out arms the timer wheel once instead of waking it every millisecond', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  const armed: number[] = [];
  class CountingClock extends SystemClock {
    override setTimeout(fn: () => void, ms: number): TimerHandle {
      armed.push(ms);
      return super.setTimeout(fn, ms);
    }
  }
  const clock = new CountingClock();
  const due: string[] = [];
  const wheel = new TimerWheel(clock, (key, id) => due.push(`${key}/${id}`));
  try {
    wheel.sync('alice', [{ id: 'reminder', dueMs: clock.now() + 30 * DAY }]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.deepEqual(due, []);
    t.is(armed.length, 1, `armed ${armed.length} times in 100 ms (Node's 1 ms clamp would re-arm it about 100 times)`);
    t.deepEqual(warnings, []);
  } finally {
    wheel.close();
    process.off('warning', onWarning);
  }
});

test('SimulatedClock refuses to move back, to NaN or to Infinity, and to start anywhere but a finite time: an Infinity timer never fires', async (t) => {
  const clock = new SimulatedClock(100);
  let fired = false;
  clock.setTimeout(() => (fired = true), Number.POSITIVE_INFINITY);
  for (const ms of [-50, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => clock.advance(ms), { instanceOf: RangeError, message: /advance: ms must be a finite number >= 0/ });
    await t.throwsAsync(clock.advanceAsync(ms), { instanceOf: RangeError, message: /advanceAsync: ms must be a finite number >= 0/ });
  }
  t.is(clock.now(), 100, 'time did not move');
  clock.advance(Number.MAX_SAFE_INTEGER);
  t.false(fired);
  t.throws(() => new SimulatedClock(Number.NaN), { instanceOf: RangeError, message: /startMs must be a finite number/ });
});
