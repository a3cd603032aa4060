/**
 * Worker invariant 21: the run loop lets the event loop read replies between inputs, after
 * `yieldEvery.inputs` inputs or `yieldEvery.ms` of clock time, and never pays for a turn the next
 * read takes anyway (after the last input of a batch that emptied the reader's buffer).
 */
import test from 'ava';
import { Rig, ctxOf, settle } from '../helpers/worker-rig.js';
import { nextTurn } from '../../lib/core/clock.js';

/** A worker whose yields are counted: each records how many inputs were applied by then. */
async function countingYields(name: string, yieldEvery: { inputs: number; ms: number }, batchSize = 100) {
  const rig = await Rig.create(name, { checkpoint: { everyEvents: 100_000, intervalMs: 3_600_000 } });
  const yields: number[] = [];
  const { worker } = rig.worker({
    batchSize,
    yieldEvery: {
      ...yieldEvery,
      yield: () => {
        yields.push(worker.appliedSeq);
        return nextTurn();
      },
    },
  });
  await worker.start();
  return { rig, worker, yields };
}

test('a backlog yields to the event loop every yieldEvery.inputs inputs, the last of a batch included', async (t) => {
  const { rig, worker, yields } = await countingYields('yield-count', { inputs: 3, ms: 3_600_000 });
  t.teardown(() => worker.kill());
  for (let i = 1; i <= 10; i++) await rig.add('k', i, `in-${i}`);
  while (worker.appliedSeq < 10) await settle();
  t.deepEqual(yields, [3, 6, 9]);
  t.is(ctxOf(worker, 'k')?.total, 55);
});

test('an input read alone is not followed by a yield for time: the next read waits for the event loop anyway', async (t) => {
  const { rig, worker, yields } = await countingYields('yield-drained', { inputs: 1000, ms: 5 });
  t.teardown(() => worker.kill());
  for (let i = 1; i <= 4; i++) {
    rig.clock.advance(10); // well past yieldEvery.ms since the last yield
    await rig.add('k', i, `in-${i}`);
    while (worker.appliedSeq < i) await settle();
  }
  t.deepEqual(yields, [], 'each batch of one emptied the buffer');
  t.is(ctxOf(worker, 'k')?.total, 10);
});

test('the time rule still applies inside a batch', async (t) => {
  const { rig, worker, yields } = await countingYields('yield-time', { inputs: 1000, ms: 5 }, 2);
  t.teardown(() => worker.kill());
  rig.clock.advance(10);
  // Three inputs: a full batch of two (more remain in the buffer), then a batch of one.
  await Promise.all([rig.add('k', 1, 'in-1'), rig.add('k', 2, 'in-2'), rig.add('k', 3, 'in-3')]);
  while (worker.appliedSeq < 3) await settle();
  t.deepEqual(yields, [1], 'after the first input (time is past); not after the second (no time passed since) nor the third (it emptied the buffer)');
});

test('the time rule applies after the last input of a full batch (the buffer may hold more)', async (t) => {
  const { rig, worker, yields } = await countingYields('yield-full', { inputs: 1000, ms: 5 }, 1);
  t.teardown(() => worker.kill());
  for (let i = 1; i <= 2; i++) {
    rig.clock.advance(10);
    await rig.add('k', i, `in-${i}`);
    while (worker.appliedSeq < i) await settle();
  }
  t.deepEqual(yields, [1, 2]);
});
