/**
 * A timer firing or a call result whose outputs cannot be routed is dead-lettered `unroutable` and
 * the actor rolled back to before it; the timer or call is consumed, as one that crashed its actor
 * is: it neither waits for ever nor fires, or is issued, again after a restart.
 */
import test from 'ava';
import { assign, emit, setup } from 'xstate';
import { defineActor, defineCall, definePipeline, fromCall, InMemoryCheckpointStore, InMemoryTransport, silentLogger, startNode, type NodeEvent, type Pipeline } from '../../lib/index.js';
import { flushMicrotasks, SimulatedClock } from '../../lib/testing/index.js';

function backends() {
  const clock = new SimulatedClock(1_000_000);
  return { clock, transport: new InMemoryTransport({ clock }), checkpointStore: new InMemoryCheckpointStore({ clock }) };
}

async function pump(clock: SimulatedClock, ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 50) {
    await clock.advanceAsync(Math.min(50, left));
    await flushMicrotasks();
  }
}

async function run(b: ReturnType<typeof backends>, pipeline: Pipeline, events: NodeEvent[]) {
  return startNode({ pipeline, ...b, logger: silentLogger, onEvent: (e) => void events.push(e) });
}

test('a timer firing dead-lettered as unroutable consumes the timer: no timer left pending, and a restart fires nothing again', async (t) => {
  const machine = setup({ types: { context: {} as { n: number } } }).createMachine({
    initial: 'idle', context: { n: 0 },
    states: {
      idle: { on: { arm: 'armed' } },
      armed: { after: { 1_000: { target: 'idle', actions: [assign({ n: ({ context }) => context.n + 1 }), emit({ type: 'out' })] } } },
    },
  });
  const pipeline = definePipeline({ name: 'ur-timer', stages: [{ actor: defineActor({ name: 'alarm', machine }), to: () => 'nowhere', checkpoint: { intervalMs: 500 } }] });
  const b = backends();
  const events: NodeEvent[] = [];
  let node = await run(b, pipeline, events);
  await node.ingest({ key: 'k', type: 'arm', payload: {} });
  await pump(b.clock, 2_000);
  const letters = () => events.filter((e) => e.type === 'dead-letter');
  t.deepEqual(letters().map((e) => (e as { reason: string }).reason), ['unroutable']);
  t.like((await node.status())[0], { timers: 0 });
  t.like(node.inspect('alarm', 'k'), { value: 'armed', context: { n: 0 } }, 'rolled back to before the firing');
  await pump(b.clock, 5_000);
  await node.stop();
  node = await run(b, pipeline, events);
  await pump(b.clock, 3_000);
  t.is(letters().length, 1, 'the successor fires nothing again');
  await node.stop();
});

test('a call result dead-lettered as unroutable consumes the call: a restart does not issue it again', async (t) => {
  let issued = 0;
  defineCall('ur-call.pay', () => {
    issued++;
    return Promise.resolve({ ok: true });
  }, { retry: { retries: 0 } });
  const machine = setup({ actors: { pay: fromCall('ur-call.pay') } }).createMachine({
    initial: 'idle',
    states: {
      idle: { on: { go: 'calling' } },
      calling: { invoke: { id: 'pay', src: 'pay', input: {}, onDone: { target: 'idle', actions: emit({ type: 'paid' }) } } },
    },
  });
  const pipeline = definePipeline({ name: 'ur-call', stages: [{ actor: defineActor({ name: 'payer', machine }), to: () => 'nowhere', checkpoint: { intervalMs: 500 } }] });
  const b = backends();
  const events: NodeEvent[] = [];
  let node = await run(b, pipeline, events);
  await node.ingest({ key: 'k', type: 'go', payload: {} });
  await pump(b.clock, 2_000);
  t.is(issued, 1);
  t.deepEqual(events.filter((e) => e.type === 'dead-letter').map((e) => (e as { reason: string }).reason), ['unroutable']);
  t.like((await node.status())[0], { callsPending: 0 });
  await node.stop();
  node = await run(b, pipeline, events);
  await pump(b.clock, 3_000);
  t.is(issued, 1, 'not issued again by the successor');
  await node.stop();
});
