/**
 * Listeners of a node (`startNode({ onEvent })`, `node.on`) are the caller's code, called from
 * inside the partition workers: a listener that throws is logged and isolated, so it never fails
 * a partition, never reaches `onFatal`, and never surfaces as an unhandled rejection (which ends a
 * Node process by default).
 *
 * Everything runs on a `SimulatedClock` shared by the node, its transport and its store.
 */
import test from 'ava';
import { add, counterToTally, drive, nodeRig, ofType } from '../helpers/node-rig.js';

/*
 * A listener that throws on a 'checkpoint' event: the event is reported from the worker's
 * checkpoint path, which the worker runs in the background. Unguarded, the error would reject
 * that floating promise: an unhandled rejection. Unhandled rejections are collected here for the
 * length of this (serial) test, so that one shows as an assertion instead of failing the file.
 */
test.serial('a node listener that throws on a checkpoint event is isolated: no unhandled rejection, and the partition keeps running', async (t) => {
  const unhandled: unknown[] = [];
  const saved = process.listeners('unhandledRejection');
  process.removeAllListeners('unhandledRejection');
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const { clock, events, node } = await nodeRig(t, counterToTally('throwing-listener', { checkpoint: { everyEvents: 1, intervalMs: 1_000 } }));
    let armed = true;
    node.on((e) => {
      if (armed && e.type === 'checkpoint') throw new Error('listener bug');
    });
    await add(node, 'a', 1);
    await clock.advanceAsync(10);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    armed = false;
    await drive(clock, node.stop(), { stepMs: 1, maxMs: 100 });
    await new Promise((resolve) => setImmediate(resolve));
    t.deepEqual(unhandled.map(String), []);
    t.is(ofType(events, 'failed').length, 0);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    for (const listener of saved) process.on('unhandledRejection', listener);
  }
});

/*
 * A listener that throws on 'first-input', an event the worker reports while it applies an input.
 * Were the error to escape into the worker, it would fail the partition, and every new
 * incarnation would fail the same way on its replay until the stage and then the root gave up:
 * one bad listener would take the whole node to onFatal.
 */
test('a node listener that throws on a worker event does not fail the partition, nor take the node to onFatal', async (t) => {
  const fatal: Error[] = [];
  const { clock, events, node } = await nodeRig(t, counterToTally('throwing-listener-2'), { onFatal: (e) => fatal.push(e) });
  node.on((e) => {
    if (e.type === 'first-input') throw new Error('listener bug');
  });
  await add(node, 'a', 1);
  await clock.advanceAsync(2_000);
  t.is(ofType(events, 'failed').length, 0);
  t.deepEqual(fatal, []);
});
