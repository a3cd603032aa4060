/**
 * Suite `embedded`: events/s through warden's `ActorHost` (input validation, apply, output
 * collection, a checkpoint of the actor every 1000 events into the in-memory store) versus a
 * bare xstate `actor.send` loop on the same machine, in the same run. Also reports the whole
 * in-process path (log read, decode, validate, apply, publish outputs, partition checkpoints)
 * through a `PartitionWorker` on the in-memory transport.
 */
import { assign, createActor, emit, setup } from 'xstate';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  SystemClock,
  defineActor,
  definePipeline,
  silentLogger,
  startNode,
} from '../../../lib/index.js';
import { ActorHost } from '../../../lib/actor/actor-host.js';
import { validateInput } from '../../../lib/actor/validate.js';
import { encodeEnvelope, inputEvent, type Envelope } from '../../../lib/core/envelope.js';
import { fmt, median, type Suite } from '../suite.js';

const machine = setup({
  types: {
    context: {} as { count: number; total: number },
    events: {} as { type: 'add'; amount: number },
    emitted: {} as { type: 'added'; count: number },
  },
}).createMachine({
  context: { count: 0, total: 0 },
  on: {
    add: {
      actions: [
        assign({ count: ({ context }) => context.count + 1, total: ({ context, event }) => context.total + event.amount }),
        emit(({ context }) => ({ type: 'added' as const, count: context.count })),
      ],
    },
  },
});
const counter = defineActor({ name: 'counter', machine });
const N = 200_000;
const ROUNDS = 5;

function bare(): number {
  const actor = createActor(machine).start();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) actor.send({ type: 'add', amount: i & 7 });
  const ms = performance.now() - t0;
  actor.stop();
  return N / (ms / 1000);
}

async function host(): Promise<number> {
  const clock = new SystemClock();
  const store = new InMemoryCheckpointStore({ clock });
  const h = new ActorHost(counter, 'k', { clock });
  const env: Envelope = { id: 'x', key: 'k', type: 'add', payload: { amount: 0 }, headers: {}, ts: 0, seq: 0 };
  let outputs = 0;
  const t0 = performance.now();
  for (let i = 1; i <= N; i++) {
    env.seq = i;
    env.payload.amount = i & 7;
    validateInput(counter, env, 64);
    outputs += h.handle(inputEvent(env), i).length;
    if (i % 1000 === 0) {
      await store.write({ scope: { operator: 'counter', partition: 0 }, seq: i, epoch: 1, machineVersion: '1', actors: { k: h.persisted() }, outbox: [] });
    }
  }
  const ms = performance.now() - t0;
  if (outputs !== N) throw new Error(`expected ${N} outputs, got ${outputs}`);
  h.stop();
  return N / (ms / 1000);
}

async function worker(events: number): Promise<number> {
  const clock = new SystemClock();
  const transport = new InMemoryTransport({ clock });
  const pipeline = definePipeline({ name: 'bench', stages: [{ actor: counter, partitions: 1, checkpoint: { everyEvents: 1000, intervalMs: 1000 } }] });
  await transport.ensureStream({ name: 'bench-counter', subjects: ['bench.counter.*'] });
  for (let i = 0; i < events; i++) {
    const key = `k${i % 1000}`;
    await transport.publish('bench.counter.0', encodeEnvelope({ id: `e${i}`, key, type: 'add', payload: { amount: i & 7 }, headers: {}, ts: 0 }), { msgId: `e${i}` });
  }
  const t0 = performance.now();
  const node = await startNode({ pipeline, transport, checkpointStore: new InMemoryCheckpointStore({ clock }), clock, logger: silentLogger });
  await node.whenCaughtUp({ timeoutMs: 120_000, pollMs: 1 });
  const ms = performance.now() - t0;
  await node.stop();
  return events / (ms / 1000);
}

export const embedded: Suite = {
  async run(log) {
    log(`embedded: ${N} events per round, ${ROUNDS} rounds, alternating (median reported)`);
    bare();
    await host(); // warm-up
    const b: number[] = [];
    const h: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      b.push(bare());
      h.push(await host());
      log(`  round ${r + 1}: bare ${fmt(b.at(-1)!)}/s  ActorHost ${fmt(h.at(-1)!)}/s`);
    }
    const w = await worker(50_000);
    const bareEps = median(b);
    const hostEps = median(h);
    const ratio = hostEps / bareEps;
    return {
      rows: [
        ['bare xstate actor.send, events/s', fmt(bareEps)],
        ['warden ActorHost (validate + apply + checkpoint/1000), events/s', fmt(hostEps)],
        ['ratio (goal >= 0.85)', ratio.toFixed(3)],
        ['warden PartitionWorker on InMemoryTransport, 1000 keys, events/s', fmt(w)],
      ],
      figures: { eventsPerSec: Math.round(hostEps), bareXstateEventsPerSec: Math.round(bareEps), ratio: Number(ratio.toFixed(3)), workerEventsPerSec: Math.round(w) },
    };
  },
};
