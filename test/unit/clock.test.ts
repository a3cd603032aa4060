import test from 'ava';
import { SimulatedClock, SystemClock, sleep } from '../../lib/core/clock.js';

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
