/** The one backoff schedule (lib/core/backoff.ts); tests cite its invariants. */
import test from 'ava';
import { exponentialBackoff } from '../../lib/core/backoff.js';
import { ConfigError } from '../../lib/core/errors.js';

test('invariant 1: delays double from minMs and stop at maxMs', (t) => {
  const b = exponentialBackoff({ minMs: 10, maxMs: 1_000 });
  t.deepEqual([0, 1, 2, 3, 6, 7, 30].map((n) => b.delay(n)), [10, 20, 40, 80, 640, 1000, 1000]);
});

test('invariant 1: jitter adds up to randomFactor of the delay, never past maxMs', (t) => {
  const b = exponentialBackoff({ minMs: 100, maxMs: 250, randomFactor: 0.5 });
  t.is(b.delay(0, () => 0), 100);
  t.is(b.delay(0, () => 0.999), 150);
  t.is(b.delay(1, () => 0.999), 250); // 200 * 1.5 capped at 250
  t.is(b.delay(5, () => 0), 250);
});

test('invariant 1: another factor', (t) => {
  const b = exponentialBackoff({ minMs: 1, maxMs: 1e6, factor: 3 });
  t.deepEqual([0, 1, 2, 3].map((n) => b.delay(n)), [1, 3, 9, 27]);
});

test('invariant 2: huge, negative, fractional and NaN attempt counts give finite delays', (t) => {
  const b = exponentialBackoff({ minMs: 5, maxMs: 60_000 });
  t.is(b.delay(1e9), 60_000);
  t.is(b.delay(Infinity), 60_000);
  t.is(b.delay(Number.NaN), 60_000);
  t.is(b.delay(-3), 5);
  t.is(b.delay(2.9), 20);
});

test('invariant 3: a schedule is frozen', (t) => {
  const b = exponentialBackoff({ minMs: 5, maxMs: 50 });
  t.true(Object.isFrozen(b));
});

test('invariant 4: minMs 0 retries at once', (t) => {
  const b = exponentialBackoff({ minMs: 0, maxMs: 50, randomFactor: 1 });
  t.is(b.delay(10, () => 0.9), 0);
});

test('bad options throw a ConfigError naming the field', (t) => {
  t.is(t.throws(() => exponentialBackoff({ minMs: 100, maxMs: 10 }, 'retry'), { instanceOf: ConfigError }).message, 'retry.minMs must be <= maxMs (100 > 10)');
  t.regex(t.throws(() => exponentialBackoff({ minMs: -1, maxMs: 10 }), { instanceOf: ConfigError }).message, /^backoff\.minMs must be a finite number >= 0/);
  t.regex(t.throws(() => exponentialBackoff({ minMs: 1, maxMs: Number.NaN }), { instanceOf: ConfigError }).message, /^backoff\.maxMs/);
  t.regex(t.throws(() => exponentialBackoff({ minMs: 1, maxMs: 10, factor: 0.5 }), { instanceOf: ConfigError }).message, /^backoff\.factor must be a finite number >= 1/);
  t.regex(t.throws(() => exponentialBackoff({ minMs: 1, maxMs: 10, randomFactor: -1 }), { instanceOf: ConfigError }).message, /^backoff\.randomFactor/);
});
