/**
 * Suite `guards`: the per-call overhead of a guarded call (`defineCall` with its defaults:
 * deadline, circuit breaker, retry wrapper, metrics; success path) over the bare async function,
 * 1M sequential awaited calls per round, rounds alternating, medians reported. Also measures
 * the parts a guard is built from, or avoids, in the same run: opossum's `fire`, p-retry's
 * success path, a `setTimeout` + `clearTimeout` per call (the per-call timer the shared deadline
 * queue replaces), and an AbortSignal per call (why a guard creates it only when the function
 * reads `ctx.signal`). docs/guarded-calls.md explains the figures.
 */
import pRetry from 'p-retry';
import CircuitBreaker from 'opossum';
import { defineCall, type GuardedCall } from '../../../lib/index.js';
import { fmt, median, type Suite } from '../suite.js';

const CALLS = 1_000_000;
const PART_CALLS = 200_000;
const ROUNDS = 5;

// A plain async function is the baseline: what a caller would await without a guard.
// eslint-disable-next-line @typescript-eslint/require-await
const bare = async (x: number): Promise<number> => x + 1;

/** ns per call of `n` sequential awaited calls of `f`. */
async function nsPerCall(f: (i: number) => Promise<number>, n: number): Promise<number> {
  let sum = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sum += await f(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (sum < n) throw new Error('bench function returned wrong values');
  return ns;
}

/** Median ns per call of each function, measured in alternating rounds. */
async function alternate(fns: Record<string, (i: number) => Promise<number>>, n: number, rounds: number, log: (line: string) => void, label: string): Promise<Record<string, number>> {
  for (const f of Object.values(fns)) await nsPerCall(f, Math.min(n, 100_000)); // warm-up (JIT)
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    const line: string[] = [];
    for (const [name, f] of Object.entries(fns)) {
      const ns = await nsPerCall(f, n);
      samples[name]!.push(ns);
      line.push(`${name} ${ns.toFixed(0)} ns`);
    }
    log(`  ${label} round ${r + 1}: ${line.join('  ')}`);
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}

export const guards: Suite = {
  async run(log) {
    log(`guards: ${fmt(CALLS)} sequential awaited calls per round (parts: ${fmt(PART_CALLS)}), ${ROUNDS} rounds alternating (median reported)`);
    const guarded: GuardedCall<number, number> = defineCall('bench.guarded', bare, { replace: true });
    const withSignal: GuardedCall<number, number> = defineCall('bench.guarded-signal', (x: number, { signal }) => bare(signal.aborted ? -1 : x), { replace: true });
    const breaker = new CircuitBreaker<[number], number>(bare, { timeout: false, rollingPercentilesEnabled: false, enableSnapshots: false });
    try {
      const main = await alternate({ bare, guarded: (i) => guarded.call(i) }, CALLS, ROUNDS, log, 'main');
      const parts = await alternate(
        {
          bare,
          opossum: (i) => breaker.fire(i),
          timerPerCall: (i) => {
            clearTimeout(setTimeout(() => undefined, 10_000));
            return bare(i);
          },
          abortSignalPerCall: (i) => (new AbortController().signal.aborted ? Promise.resolve(0) : bare(i)),
          guardedReadingSignal: (i) => withSignal.call(i),
        },
        PART_CALLS,
        3,
        log,
        'parts',
      );
      const retry = await alternate({ bare, pRetry: (i) => pRetry(() => bare(i), { retries: 3 }) }, PART_CALLS / 2, 3, log, 'p-retry');
      const overhead = main.guarded! - main.bare!;
      const m = guarded.metrics();
      if (m.successes < CALLS * ROUNDS || m.failedCalls !== 0) throw new Error(`unexpected metrics: ${JSON.stringify(m)}`);
      const part = (k: string): number => parts[k]! - parts.bare!;
      return {
        rows: [
          ['bare async function, ns/call', main.bare!.toFixed(0)],
          ['guarded call (defaults), ns/call', main.guarded!.toFixed(0)],
          ['guard overhead, ns/call (goal < 2000)', overhead.toFixed(0)],
          ['  of which opossum fire alone, ns/call', part('opossum').toFixed(0)],
          ['avoided: setTimeout + clearTimeout per call, ns/call', part('timerPerCall').toFixed(0)],
          ['avoided: AbortSignal per call, ns/call', part('abortSignalPerCall').toFixed(0)],
          ['guarded call whose fn reads ctx.signal, overhead ns/call', part('guardedReadingSignal').toFixed(0)],
          ['avoided: p-retry success path, overhead ns/call', (retry.pRetry! - retry.bare!).toFixed(0)],
        ],
        figures: {
          bareNsPerCall: Math.round(main.bare!),
          guardedNsPerCall: Math.round(main.guarded!),
          overheadNsPerCall: Math.round(overhead),
          opossumOverheadNsPerCall: Math.round(part('opossum')),
          timerPerCallNs: Math.round(part('timerPerCall')),
          abortSignalPerCallNs: Math.round(part('abortSignalPerCall')),
          guardedReadingSignalOverheadNsPerCall: Math.round(part('guardedReadingSignal')),
          pRetryOverheadNsPerCall: Math.round(retry.pRetry! - retry.bare!),
        },
      };
    } finally {
      breaker.shutdown();
      await guarded.close();
      await withSignal.close();
    }
  },
};
