/**
 * Every retry and restart schedule is the one backoff value of lib/core/backoff.ts, built once,
 * and keeps the delays it had before: supervision restarts, Redis reconnects, the JetStream
 * reader's consumer recreation, PubAck retries and NATS KV watcher restarts. The old formulas are
 * spelled out here as the reference.
 */
import test from 'ava';
import { ConfigError } from '../../lib/core/errors.js';
import { READER_RETRY } from '../../lib/adapters/nats/jetstream-reader.js';
import { watchRetryBackoff } from '../../lib/adapters/nats/kv-breaker-state.js';
import { resolveStoreOptions } from '../../lib/adapters/nats/kv-breaker-options.js';
import { publishRetryBackoff } from '../../lib/adapters/nats/puback-collector.js';
import { backoff as redisRetryStrategy } from '../../lib/adapters/redis/redis-checkpoint-store.js';
import { resolveSupervisorOptions } from '../../lib/supervision/options.js';
import { backoffDelay } from '../../lib/supervision/backoff.js';

const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test('a child spec resolves its backoff options once into a schedule that gives the documented restart delays', (t) => {
  const start = () => Promise.reject(new Error('unused'));
  const resolved = resolveSupervisorOptions({
    backoff: { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0.5 },
    children: [{ id: 'a', start }, { id: 'b', start, backoff: { randomFactor: 0 } }],
  });
  const [a, b] = resolved.children;
  t.like(a?.schedule, { minMs: 100, maxMs: 1_000, factor: 2, randomFactor: 0.5 });
  t.true(Object.isFrozen(a?.schedule), 'an immutable value');
  t.deepEqual(upTo(6).map((n) => b?.schedule.delay(n)), [100, 200, 400, 800, 1_000, 1_000], 'the child\'s own randomFactor over the supervisor\'s');
  for (const n of upTo(8)) {
    for (const r of [0, 0.3, 0.999]) t.is(a?.schedule.delay(n, () => r), backoffDelay(n, { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0.5 }, () => r));
  }
});

test('a nested supervisor spec is resolved once, with the child id as its default id', (t) => {
  const resolved = resolveSupervisorOptions({ children: [{ kind: 'supervisor', id: 'ingest', supervisor: { strategy: 'rest-for-one' } }] });
  const child = resolved.children[0];
  t.is(child?.kind, 'supervisor');
  if (child?.kind !== 'supervisor') return;
  t.like(child.supervisor, { id: 'ingest', strategy: 'rest-for-one', intensity: 1, periodMs: 5_000 });
  t.is(child.supervisor.clock, resolved.clock, 'the clock is inherited');
});

test('Redis reconnects keep their delays: doubling from minDelayMs, up to 10 % jitter, never past maxDelayMs', (t) => {
  const strategy = redisRetryStrategy({ minDelayMs: 50, maxDelayMs: 2_000, maxAttempts: 10 });
  const random = Math.random;
  try {
    for (const r of [0, 0.5, 0.999999]) {
      Math.random = () => r;
      const old = (times: number): number => {
        const base = Math.min(2_000, 50 * 2 ** Math.min(30, Math.max(0, times - 1)));
        return Math.round(base + r * base * 0.1);
      };
      // Below the cap the delays are the old ones to the millisecond ...
      for (const times of [1, 2, 3, 4, 5, 6]) t.is(strategy(times), old(times), `attempt ${times}, random ${r}`);
      // ... at the cap the jitter no longer goes past maxDelayMs (it used to reach 2,200 ms).
      for (const times of [7, 8, 10]) t.is(strategy(times), 2_000);
    }
  } finally {
    Math.random = random;
  }
  t.is(strategy(11), null, 'gives up after maxAttempts');
  t.is(redisRetryStrategy({ maxAttempts: 0 })(1), null);
  t.is(redisRetryStrategy({ minDelayMs: 500, maxDelayMs: 100 })(1), 100, 'a minimum above the maximum waits the maximum');
  t.is(t.throws(() => redisRetryStrategy({ minDelayMs: -1 }), { instanceOf: ConfigError })?.field, 'retry.minDelayMs');
  t.is(t.throws(() => redisRetryStrategy({ maxDelayMs: Number.NaN }), { instanceOf: ConfigError })?.field, 'retry.maxDelayMs');
});

test('the JetStream reader recreates a failed consumer after 200 ms doubling to 1 s (reader invariant 6)', (t) => {
  const old = (failures: number): number => Math.min(1_000, 100 * 2 ** Math.min(failures, 10));
  for (const failures of upTo(40).map((i) => i + 1)) t.is(READER_RETRY.delay(failures - 1), old(failures));
  t.true(Object.isFrozen(READER_RETRY));
});

test('PubAck retries keep their delays: initialMs doubling to maxMs, and a maximum below the initial delay waits the maximum', (t) => {
  for (const [initialMs, maxMs] of [[100, 5_000], [1, 60_000], [250, 250], [1_000, 300]] as const) {
    const schedule = publishRetryBackoff(initialMs, maxMs);
    const old = (attempts: number): number => Math.min(maxMs, initialMs * 2 ** Math.min(30, attempts - 1));
    for (const attempts of upTo(40).map((i) => i + 1)) t.is(schedule.delay(attempts - 1), old(attempts), `${initialMs}/${maxMs} attempt ${attempts}`);
  }
});

test('NATS KV watcher restarts keep their delays: watchRetry.initialMs doubling to watchRetry.maxMs', (t) => {
  for (const watchRetry of [{}, { initialMs: 10, maxMs: 100_000 }, { initialMs: 1_000, maxMs: 10 }]) {
    const s = resolveStoreOptions({ watchRetry });
    const schedule = watchRetryBackoff(s);
    const old = (failures: number): number => Math.min(s.retryMaxMs, s.retryInitialMs * 2 ** Math.min(failures, 20));
    for (const failures of upTo(21)) t.is(schedule.delay(failures), old(failures), `${JSON.stringify(watchRetry)} after ${failures} failures`);
  }
  t.is(watchRetryBackoff(resolveStoreOptions({})).delay(0), 250);
});
