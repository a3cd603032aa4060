/**
 * The live view's stream of snapshots (lib/observe/live.ts): at once, after every change the node
 * reports, every `refreshMs`, and never two closer than `minGapMs` (invariant 1), on a simulated clock.
 */
import test from 'ava';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { definePipeline, silentLogger, startNode, type NodeEvent } from '../../lib/index.js';
import { liveView } from '../../lib/observe/live.js';
import { flushMicrotasks, SimulatedClock } from '../../lib/testing/index.js';
import { counter } from '../helpers/counter.js';

/** A response that records when each snapshot was written. */
function recorder(clock: SimulatedClock): { req: IncomingMessage; res: ServerResponse; at: number[] } {
  const at: number[] = [];
  const req = new EventEmitter() as unknown as IncomingMessage;
  const res = { writeHead: () => res, write: () => (at.push(clock.now()), true), end: () => undefined } as unknown as ServerResponse;
  return { req, res, at };
}

test('the periodic snapshot keeps the minimum gap: no two snapshots within minGapMs, however events and the refresh meet', async (t) => {
  const clock = new SimulatedClock(0);
  const node = await startNode({ pipeline: definePipeline({ name: 'live-gap', stages: [{ actor: counter }] }), logger: silentLogger });
  t.teardown(() => node.stop());
  let emit: (e: NodeEvent) => void = () => undefined;
  const spy = { ...node, on: (l: (e: NodeEvent) => void) => ((emit = l), () => undefined) };
  const view = liveView(spy, { clock, refreshMs: 1_000, minGapMs: 100 });
  t.teardown(() => view.close());
  const { req, res, at } = recorder(clock);
  view.stream(req, res);
  await flushMicrotasks();
  for (const step of [960, 30, 5, 20, 990, 3, 40]) {
    await clock.advanceAsync(step);
    emit({ type: 'checkpoint', stage: 'counter', partition: 0, seq: 1, bytes: 1, actors: 1, durationMs: 1 });
    await flushMicrotasks();
  }
  await clock.advanceAsync(2_000);
  await flushMicrotasks();
  t.true(at.length >= 4, `snapshots at ${at.join(', ')}`);
  for (let i = 1; i < at.length; i++) t.true(at[i]! - at[i - 1]! >= 100, `snapshots at ${at.join(', ')}`);
});
