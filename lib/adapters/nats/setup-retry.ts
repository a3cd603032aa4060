/**
 * Setup requests (create or update a stream, open a KV bucket) made again while JetStream cannot
 * answer yet: a cluster electing a leader for a new replicated stream, a server restarting. A node
 * that starts in that moment waits instead of failing.
 *
 * Invariants:
 *  1. Only `TIMEOUT` (no answer, no responders, 408/503 from the API) is retried; any other error
 *     (a bad config, a name in use with another config) is thrown at once.
 *  2. Attempts are spaced by the shared exponential backoff (100 ms doubling to 2 s) and stop once
 *     `withinMs` has passed since the first: the last `TIMEOUT` is thrown then, naming how long
 *     and how many times it tried. `withinMs` 0 tries once.
 */
import { exponentialBackoff } from '../../core/backoff.js';
import { sleep, type Clock } from '../../core/clock.js';
import { WardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

const schedule = exponentialBackoff({ minMs: 100, maxMs: 2_000, randomFactor: 0.2 });

/**
 * Runs `fn`, again while it fails with a `TIMEOUT` `WardenError`, for up to `withinMs`.
 *
 * @example const info = await retrySetup(() => add(cfg), { withinMs: 30_000, clock, logger, what: 'stream orders' });
 */
export async function retrySetup<T>(fn: () => Promise<T>, o: { withinMs: number; clock: Clock; logger: Logger; what: string }): Promise<T> {
  const started = o.clock.now();
  for (let failures = 0; ; failures++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof WardenError) || err.code !== 'TIMEOUT') throw err;
      const elapsed = o.clock.now() - started;
      const wait = schedule.delay(failures);
      if (elapsed + wait > o.withinMs) {
        if (failures === 0) throw err;
        throw new WardenError('TIMEOUT', `${o.what}: JetStream did not answer in ${Math.round(elapsed)} ms (${failures + 1} attempts): ${err.message}`, { cause: err, details: err.details });
      }
      o.logger.warn({ what: o.what, attempt: failures + 1, retryInMs: wait }, 'JetStream did not answer a setup request; trying again');
      await sleep(o.clock, wait);
    }
  }
}
