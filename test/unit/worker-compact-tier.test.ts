/**
 * Worker invariant 22 (lib/worker/keyed-actors.ts): idle actors are kept in memory as their
 * persisted snapshot (the compact tier) and come back from it on their next input, with their
 * state, their timers and their place in the next checkpoint; what is applied is unchanged.
 */
import test from 'ava';
import { assign, emit, setup } from 'xstate';
import { ConfigError, defineActor, definePipeline, InMemoryCheckpointStore, InMemoryTransport, silentLogger, startNode, type CheckpointStore, type PartitionStatus, type StageOptions, type WardenNode } from '../../lib/index.js';
import { counter } from '../helpers/counter.js';

/** A store counting the entries it reads, one at a time or many at once (a compact actor comes back without one). */
class CountingReads extends InMemoryCheckpointStore {
  reads = 0;
  override async readActor(...args: Parameters<CheckpointStore['readActor']>): ReturnType<CheckpointStore['readActor']> {
    this.reads++;
    return super.readActor(...args);
  }
  override async readActorsOf(...args: Parameters<NonNullable<CheckpointStore['readActorsOf']>>): ReturnType<NonNullable<CheckpointStore['readActorsOf']>> {
    this.reads += args[1].length;
    return super.readActorsOf(...args);
  }
}

async function until(node: WardenNode, what: string, ok: (p: PartitionStatus) => boolean, timeoutMs = 10_000): Promise<PartitionStatus> {
  const t0 = Date.now();
  for (;;) {
    const p = (await node.status())[0]!;
    if (ok(p)) return p;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ actors: p.actors, compact: p.compact, compacted: p.compacted, passivated: p.passivated })}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pipelineOf(name: string, stage: Partial<StageOptions> = {}): ReturnType<typeof definePipeline> {
  return definePipeline({ name, stages: [{ actor: counter, partitions: 1, checkpoint: { everyEvents: 100_000, intervalMs: 20 }, ...stage }] });
}

test('worker invariant 22: an actor idle for compactMs is kept compact, and its next input continues from its state with no checkpoint read', async (t) => {
  const checkpointStore = new CountingReads();
  const node = await startNode({ pipeline: pipelineOf('compact-idle', { compactMs: 50 }), transport: new InMemoryTransport(), checkpointStore, logger: silentLogger });
  t.teardown(() => node.stop());
  for (let k = 0; k < 20; k++) await node.ingest({ key: `k${k}`, type: 'add', payload: { amount: k } });
  await node.whenCaughtUp();
  const compacted = await until(node, 'every actor compact', (p) => p.compact === 20 && p.actors === 0);
  t.is(compacted.compacted, 20);
  t.is(compacted.totals.compacted, 20);
  t.like(node.inspect('counter', 'k7')?.context, { count: 1, total: 7 }, 'inspect sees a compact actor');
  const reads = checkpointStore.reads;
  for (let k = 0; k < 20; k++) await node.ingest({ key: `k${k}`, type: 'add', payload: { amount: 100 } });
  await node.whenCaughtUp();
  t.is(checkpointStore.reads, reads, 'no entry was read: the actors came back from memory');
  for (const k of [0, 7, 19]) t.like(node.inspect('counter', `k${k}`)?.context, { count: 2, total: k + 100 });
  const after = (await node.status())[0]!;
  t.true(after.actors >= 1, 'the actors are live again');
});

test('worker invariant 22: beyond maxLiveActors the least recently active are compacted; the state of every key is kept', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('compact-max', { maxLiveActors: 5 }), transport: new InMemoryTransport(), logger: silentLogger });
  t.teardown(() => node.stop());
  for (let k = 0; k < 40; k++) await node.ingest({ key: `k${k}`, type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  const p = await until(node, 'at most 5 live actors', (s) => s.actors <= 5);
  t.is(p.actors + p.compact, 40);
  t.true(p.compact >= 35);
  t.truthy(node.inspect('counter', 'k39'), 'the most recent key is in memory');
  for (let k = 0; k < 40; k++) await node.ingest({ key: `k${k}`, type: 'add', payload: { amount: 2 } });
  await node.whenCaughtUp();
  for (let k = 0; k < 40; k++) t.like(node.inspect('counter', `k${k}`)?.context, { count: 2, total: 3 }, `k${k}`);
});

test('worker invariant 22: a compact actor with changes not yet checkpointed is in the next cut, and a new node restores it', async (t) => {
  const transport = new InMemoryTransport();
  const checkpointStore = new InMemoryCheckpointStore();
  // Periodic cuts every 10 s: the actors are compacted long before a cut holds their changes.
  const pipeline = definePipeline({ name: 'compact-dirty', stages: [{ actor: counter, partitions: 1, compactMs: 30, checkpoint: { everyEvents: 100_000, intervalMs: 10_000 } }] });
  const first = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  for (let k = 0; k < 10; k++) await first.ingest({ key: `k${k}`, type: 'add', payload: { amount: 5 } });
  await first.whenCaughtUp();
  // The tick that compacts runs every intervalMs; inputs to one key trigger compaction of the others at the loop's yields.
  for (let i = 0; i < 200 && (await first.status())[0]!.compact < 9; i++) {
    await new Promise((r) => setTimeout(r, 40));
    await first.ingest({ key: 'busy', type: 'add', payload: { amount: 1 } });
    await first.whenCaughtUp();
  }
  const p = (await first.status())[0]!;
  t.true(p.compact >= 9, `compact actors: ${p.compact}`);
  t.is(p.checkpoints, 0, 'no periodic cut was written yet');
  await first.stop(); // the final cut writes the compact actors' state
  const second = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  t.teardown(() => second.stop());
  for (let k = 0; k < 10; k++) t.like((await second.readState('counter', `k${k}`))?.context, { count: 1, total: 5 });
});

test('worker invariant 22: a compact actor keeps its pending timer, which fires and reaches it', async (t) => {
  const reminder = defineActor({
    name: 'reminder',
    machine: setup({ types: { context: {} as { armed: number; fired: number }, emitted: {} as { type: 'fired' } } }).createMachine({
      initial: 'idle',
      context: { armed: 0, fired: 0 },
      states: {
        idle: { on: { arm: { target: 'waiting', actions: assign({ armed: ({ context }) => context.armed + 1 }) } } },
        waiting: { after: { 300: { target: 'idle', actions: [assign({ fired: ({ context }) => context.fired + 1 }), emit({ type: 'fired' as const })] } } },
      },
    }),
    events: { arm: null },
  });
  const pipeline = definePipeline({ name: 'compact-timer', stages: [{ actor: reminder, partitions: 1, compactMs: 30, checkpoint: { intervalMs: 20 } }] });
  const node = await startNode({ pipeline, transport: new InMemoryTransport(), logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'r1', type: 'arm', payload: {} });
  await node.whenCaughtUp();
  await until(node, 'the actor compact with its timer pending', (p) => p.compact === 1 && p.timers === 1);
  t.like(node.inspect('reminder', 'r1'), { value: 'waiting' });
  await until(node, 'the timer fired', (p) => p.timersFired === 1);
  await node.whenCaughtUp();
  t.like(node.inspect('reminder', 'r1'), { value: 'idle', context: { armed: 1, fired: 1 } });
});

test('worker invariant 22: with idleMs, a compact actor is passivated in turn, and its next input loads it from the checkpoint', async (t) => {
  const checkpointStore = new CountingReads();
  const node = await startNode({ pipeline: pipelineOf('compact-passivate', { compactMs: 20, idleMs: 200 }), transport: new InMemoryTransport(), checkpointStore, logger: silentLogger });
  t.teardown(() => node.stop());
  for (let k = 0; k < 5; k++) await node.ingest({ key: `k${k}`, type: 'add', payload: { amount: 3 } });
  await node.whenCaughtUp();
  await until(node, 'compacted', (p) => p.compacted === 5);
  const gone = await until(node, 'passivated', (p) => p.passivated === 5 && p.compact === 0 && p.actors === 0);
  t.is(gone.compacted, 5);
  t.is(node.inspect('counter', 'k1'), undefined, 'a passivated key is not in memory');
  const reads = checkpointStore.reads;
  await node.ingest({ key: 'k1', type: 'add', payload: { amount: 4 } });
  await node.whenCaughtUp();
  t.is(checkpointStore.reads, reads + 1, 'loaded from its entry');
  t.like(node.inspect('counter', 'k1')?.context, { count: 2, total: 7 });
});

test('compactMs: 0 turns the tier off; bad compactMs and maxLiveActors throw a ConfigError naming the field', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('compact-off', { compactMs: 0, maxLiveActors: 2 }), transport: new InMemoryTransport(), logger: silentLogger });
  t.teardown(() => node.stop());
  for (let k = 0; k < 6; k++) await node.ingest({ key: `k${k}`, type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  await new Promise((r) => setTimeout(r, 100));
  t.like((await node.status())[0], { actors: 6, compact: 0, compacted: 0 });
  for (const [stage, field] of [[{ compactMs: -1 }, 'compactMs'], [{ compactMs: Number.NaN }, 'compactMs'], [{ maxLiveActors: 0 }, 'maxLiveActors'], [{ maxLiveActors: 1.5 }, 'maxLiveActors']] as const) {
    const err = t.throws(() => pipelineOf('bad', stage), { instanceOf: ConfigError });
    t.regex(err.message, new RegExp(field), JSON.stringify(stage));
  }
});
