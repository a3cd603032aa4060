/**
 * The parts of a guard that can be checked alone: `retryAfterFrom`, the shared deadline queue
 * (lib/resilience/deadlines.ts, "deadlines invariant N"), the Prometheus exporter, and the
 * guide's code excerpts.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { SimulatedClock } from '../../lib/core/clock.js';
import { ConfigError } from '../../lib/core/errors.js';
import { DeadlineQueue, type DeadlineEntry } from '../../lib/resilience/deadlines.js';
import { defineCall } from '../../lib/resilience/guarded-call.js';
import { registerCallMetrics } from '../../lib/resilience/prometheus.js';
import { retryAfterFrom, retryAfterOf } from '../../lib/resilience/retry-after.js';

// ---- retryAfterFrom ----

test('retryAfterFrom: delta-seconds, an HTTP date, and what does not parse', (t) => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  t.is(retryAfterFrom('1'), 1_000);
  t.is(retryAfterFrom(' 120 '), 120_000);
  t.is(retryAfterFrom('1.5'), 1_500);
  t.is(retryAfterFrom('0'), 0);
  t.is(retryAfterFrom('Wed, 21 Oct 2015 07:28:30 GMT', now), 30_000);
  t.is(retryAfterFrom('Wed, 21 Oct 2015 07:27:00 GMT', now), 0, 'a date in the past means now');
  t.is(retryAfterFrom('soon'), undefined);
  t.is(retryAfterFrom('-5'), undefined);
  t.is(retryAfterFrom(''), undefined);
  t.is(retryAfterFrom(undefined), undefined);
  t.is(retryAfterFrom(2), 2_000, 'a number is seconds');
  t.is(retryAfterFrom(0.25), 250);
  t.is(retryAfterFrom(-5), undefined);
  t.is(retryAfterFrom(Number.NaN), undefined);
  t.is(retryAfterFrom(true as never), undefined, 'anything else reads as no header, never a throw');
});

test('retryAfterFrom: a fetch Response, Headers, and node:http header records', (t) => {
  t.is(retryAfterFrom(new Response(null, { status: 429, headers: { 'Retry-After': '2' } })), 2_000);
  t.is(retryAfterFrom(new Response(null, { status: 503 })), undefined);
  t.is(retryAfterFrom(new Headers({ 'retry-after': '3' })), 3_000);
  t.is(retryAfterFrom({ 'retry-after': '4' }), 4_000);
  t.is(retryAfterFrom({ 'retry-after': ['5', '6'] }), 5_000);
  t.is(retryAfterFrom({ 'content-type': 'text/plain' }), undefined);
});

test('retryAfterOf: an error’s retryAfterMs, or the first one down its cause chain', (t) => {
  t.is(retryAfterOf(Object.assign(new Error('429'), { retryAfterMs: 1_000 })), 1_000);
  t.is(retryAfterOf(new Error('wrapped', { cause: Object.assign(new Error('503'), { retryAfterMs: 7 }) })), 7);
  t.is(retryAfterOf(Object.assign(new Error('x'), { retryAfterMs: -1 })), undefined);
  t.is(retryAfterOf(new Error('plain')), undefined);
  t.is(retryAfterOf('not an error'), undefined);
});

// ---- DeadlineQueue ----

function entry(log: string[], name: string): DeadlineEntry {
  return { deadline: 0, prevEntry: undefined, nextEntry: undefined, queued: false, onDeadline: () => log.push(`${name}@`) };
}

test('deadlines invariants 2-3: many entries share one timer and expire in order at their deadlines', (t) => {
  const clock = new SimulatedClock(0);
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  const stamp = (e: DeadlineEntry): DeadlineEntry => ({ ...e, onDeadline: () => log.push(`${(e as unknown as { n: string }).n}@${clock.now()}`) });
  const entries = ['a', 'b', 'c'].map((n) => stamp(Object.assign(entry(log, n), { n })));
  q.add(entries[0]!, 100);
  clock.advance(10);
  q.add(entries[1]!, 110);
  clock.advance(10);
  q.add(entries[2]!, 120);
  t.is(clock.pending, 1, 'one timer for three deadlines');
  clock.advance(200);
  t.deepEqual(log, ['a@100', 'b@110', 'c@120']);
  t.true(q.empty);
  t.is(clock.pending, 0);
});

test('deadlines invariants 3-4: a removed entry never expires; an idle queue drops its timer once it fires', (t) => {
  const clock = new SimulatedClock(0);
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  const a = entry(log, 'a');
  const b = entry(log, 'b');
  q.add(a, 100);
  q.add(b, 150);
  q.remove(a);
  q.remove(a); // twice is harmless
  clock.advance(100);
  t.deepEqual(log, []);
  t.is(clock.pending, 1, 're-armed for b');
  q.remove(b);
  clock.advance(100);
  t.deepEqual(log, []);
  t.is(clock.pending, 0, 'the timer found nothing and was not re-armed');
});

test('deadlines invariant 1: a clock stepping back never puts a deadline before its predecessor', (t) => {
  const clock = new SimulatedClock(0);
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  const a = entry(log, 'a');
  const b = entry(log, 'b');
  q.add(a, 1_000);
  q.add(b, 500);
  t.is(b.deadline, 1_000);
  clock.advance(1_000);
  t.deepEqual(log, ['a@', 'b@']);
});

test('deadlines invariants 4-5: close() clears the timer; drain hands every entry over; Infinity is never armed', (t) => {
  const clock = new SimulatedClock(0);
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  q.add(entry(log, 'forever'), Infinity);
  t.is(clock.pending, 0);
  q.add(entry(log, 'a'), 100);
  t.is(clock.pending, 0, 'an infinite head arms nothing and later entries inherit it');
  const q2 = new DeadlineQueue(clock);
  q2.add(entry(log, 'x'), 100);
  t.is(clock.pending, 1);
  q2.close();
  t.is(clock.pending, 0);
  const drained: DeadlineEntry[] = [];
  q.drain((e) => drained.push(e));
  t.is(drained.length, 2);
  t.true(q.empty);
  t.deepEqual(log, []);
});

test('deadlines: a deadline past Node’s timer limit is armed in steps', (t) => {
  const clock = new SimulatedClock(0);
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  const far = 3 * 2 ** 31;
  q.add(entry(log, 'far'), far);
  clock.advance(2 ** 31);
  t.deepEqual(log, []);
  t.is(clock.pending, 1);
  clock.advance(far);
  t.deepEqual(log, ['far@']);
});

// ---- Prometheus ----

test('registerCallMetrics: counters, breaker state, and the latency histogram with a call label', async (t) => {
  const clock = new SimulatedClock(0);
  let healthy = true;
  const call = defineCall(
    `prom.${Date.now()}`,
    (x: number) => (healthy ? Promise.resolve(x) : Promise.reject(new Error('down'))),
    { clock, retry: { retries: 1, minTimeoutMs: 2, randomize: false } },
  );
  t.teardown(() => call.close());
  const registry = new Registry();
  const unregister = registerCallMetrics(registry, [call]);
  await call.call(1);
  await call.call(2);
  healthy = false;
  const failing = call.call(3).catch(() => undefined);
  await clock.advanceAsync(2);
  await failing;
  const text = await registry.metrics();
  const label = `call="${call.name}"`;
  t.true(text.includes(`warden_call_calls_total{${label}} 3`), text);
  t.true(text.includes(`warden_call_successes_total{${label}} 2`));
  t.true(text.includes(`warden_call_failed_calls_total{${label}} 1`));
  t.true(text.includes(`warden_call_attempts_total{${label}} 4`));
  t.true(text.includes(`warden_call_retries_total{${label}} 1`));
  t.true(text.includes(`warden_call_attempt_failures_total{${label},kind="error"} 2`));
  t.true(text.includes(`warden_call_attempt_failures_total{${label},kind="breaker-open"} 0`));
  t.true(text.includes(`warden_call_breaker_state{${label},state="closed"} 1`));
  t.true(text.includes(`warden_call_breaker_state{${label},state="open"} 0`));
  t.true(text.includes(`warden_call_consecutive_failures{${label}} 1`));
  t.true(text.includes('# TYPE warden_call_duration_seconds histogram'));
  t.true(text.includes(`warden_call_duration_seconds_bucket{${label},le="0.001"} 2`), 'two instant calls in the first bucket');
  t.true(text.includes(`warden_call_duration_seconds_bucket{${label},le="0.002"} 3`), 'the failed call took 2 ms; counts are cumulative');
  t.true(text.includes(`warden_call_duration_seconds_bucket{${label},le="+Inf"} 3`));
  t.true(text.includes(`warden_call_duration_seconds_count{${label}} 3`));
  t.true(text.includes(`warden_call_duration_seconds_sum{${label}} 0.002`));
  const json = await registry.getMetricsAsJSON();
  t.true(json.some((m) => m.name === 'warden_call_duration_seconds' && m.values.length === 18));
  t.throws(() => registerCallMetrics(registry, [call]), { instanceOf: ConfigError, message: /already has a metric named warden_call_calls_total/ });
  unregister();
  t.is(await registry.metrics(), '\n');
});

test('registerCallMetrics: without a list it exports the calls registered at scrape time', async (t) => {
  const registry = new Registry();
  const unregister = registerCallMetrics(registry, undefined, { prefix: 'svc_' });
  t.teardown(unregister);
  const name = `prom.late.${Date.now()}`;
  const call = defineCall(name, (x: number) => Promise.resolve(x));
  await call.call(1);
  t.true((await registry.metrics()).includes(`svc_calls_total{call="${name}"} 1`));
  await call.close();
  t.false((await registry.metrics()).includes(`call="${name}"`), 'a closed call leaves the registry, and the export');
  t.throws(() => registerCallMetrics(new Registry(), undefined, { prefix: 'bad prefix' }), { instanceOf: ConfigError });
});

// ---- docs ----

test('docs/guarded-calls.md: every excerpt is word for word in the type-checked file it names', (t) => {
  const doc = readFileSync('docs/guarded-calls.md', 'utf8');
  const blocks = [...doc.matchAll(/<!-- excerpt: (\S+) -->\n```ts\n([\s\S]*?)\n```/g)];
  t.true(blocks.length > 0);
  for (const [, file, code] of blocks) t.true(readFileSync(file!, 'utf8').includes(code!), `${file} no longer contains the excerpt`);
});
