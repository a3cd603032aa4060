/**
 * Setup requests to JetStream (create a stream, open the lease bucket) are asked again while
 * JetStream does not answer, for a bounded time; any other failure is reported at once.
 */
import test from 'ava';
import { SimulatedClock } from 'warden/testing';
import { silentLogger } from 'warden';
import { ConfigError, WardenError } from '../../lib/core/errors.js';
import { retrySetup } from '../../lib/adapters/nats/setup-retry.js';

const timeout = (): WardenError => new WardenError('TIMEOUT', 'no responders');

test('a setup request JetStream does not answer yet is asked again until it is answered', async (t) => {
  const clock = new SimulatedClock();
  let calls = 0;
  const done = retrySetup(() => {
    calls++;
    return calls < 4 ? Promise.reject(timeout()) : Promise.resolve('created');
  }, { withinMs: 30_000, clock, logger: silentLogger, what: 'ensureStream orders' });
  await clock.advanceAsync(10_000);
  t.is(await done, 'created');
  t.is(calls, 4);
});

test('a setup request that fails otherwise is not asked again', async (t) => {
  const clock = new SimulatedClock();
  let calls = 0;
  const err = await t.throwsAsync(retrySetup(() => {
    calls++;
    return Promise.reject(new ConfigError('subjects', 'overlap with stream other'));
  }, { withinMs: 30_000, clock, logger: silentLogger, what: 'ensureStream orders' }));
  t.true(err instanceof ConfigError);
  t.is(calls, 1);
});

test('a setup request still unanswered after the bound fails with TIMEOUT naming what, how long and how often', async (t) => {
  const clock = new SimulatedClock();
  let calls = 0;
  const done = retrySetup(() => {
    calls++;
    return Promise.reject(timeout());
  }, { withinMs: 5_000, clock, logger: silentLogger, what: 'open lease bucket warden-leases' });
  const failed = t.throwsAsync(done, { instanceOf: WardenError });
  await clock.advanceAsync(10_000);
  const err = await failed;
  t.is(err.code, 'TIMEOUT');
  t.regex(err.message, /^open lease bucket warden-leases: JetStream did not answer in \d+ ms \(\d+ attempts\): no responders$/);
  t.true(calls > 3 && calls < 20, `${calls} attempts in 5 s`);
});

test('a bound of 0 asks once', async (t) => {
  const clock = new SimulatedClock();
  let calls = 0;
  await t.throwsAsync(retrySetup(() => {
    calls++;
    return Promise.reject(timeout());
  }, { withinMs: 0, clock, logger: silentLogger, what: 'x' }), { message: 'no responders' });
  t.is(calls, 1);
});
