/**
 * Durable state of a key (lib/pipeline/read-state.ts): `readKeyState` and `node.readState` read a
 * key's checkpoint entry plus a replay of its log since, for keys a node does not hold in memory,
 * and never write, publish or call anything (read-state invariants 1-4).
 */
import test from 'ava';
import { assign, setup } from 'xstate';
import {
  ConfigError,
  InMemoryCheckpointStore,
  InMemoryTransport,
  WardenError,
  createProducer,
  defineActor,
  definePipeline,
  fromCall,
  readKeyState,
  silentLogger,
  startNode,
  type CallTarget,
  type CheckpointStore,
  type Pipeline,
} from '../../lib/index.js';
import { counter, counterMachine, tally } from '../helpers/counter.js';
import { FlakyCheckpoints } from '../helpers/flaky-checkpoints.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function backends(t: { teardown(fn: () => Promise<void>): void }): { transport: InMemoryTransport; store: InMemoryCheckpointStore } {
  const transport = new InMemoryTransport();
  const store = new InMemoryCheckpointStore();
  t.teardown(async () => {
    await transport.close();
    await store.close();
  });
  return { transport, store };
}

/** A store that counts what would change it. */
function countingStore(inner: CheckpointStore): CheckpointStore & { writes: number; clears: number } {
  const counted = {
    writes: 0,
    clears: 0,
    write: (cp: Parameters<CheckpointStore['write']>[0]) => {
      counted.writes++;
      return inner.write(cp);
    },
    clear: (scope: Parameters<CheckpointStore['clear']>[0]) => {
      counted.clears++;
      return inner.clear(scope);
    },
    claim: inner.claim.bind(inner),
    readClaim: inner.readClaim.bind(inner),
    drop: inner.drop.bind(inner),
    readMeta: inner.readMeta.bind(inner),
    readActor: inner.readActor.bind(inner),
    readActors: inner.readActors.bind(inner),
    close: () => Promise.resolve(),
  };
  return counted;
}

test('after a node restart, readState returns the checkpointed state plus the inputs logged since, where inspect returns undefined', async (t) => {
  const { transport, store } = backends(t);
  const pipeline = definePipeline({ name: 'rs-restart', stages: [{ actor: counter, partitions: 3, checkpoint: { everyEvents: 1_000, intervalMs: 30_000 } }] });
  const first = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  for (const amount of [1, 2, 3]) await first.ingest({ key: 'alice', type: 'add', payload: { amount } });
  await first.whenCaughtUp();
  await first.stop(); // final checkpoint: alice at total 6
  // Two more inputs reach the log while no node runs.
  const producer = createProducer({ pipeline, transport });
  await producer.send({ key: 'alice', type: 'add', payload: { amount: 10 } });
  await producer.send({ key: 'alice', type: 'add', payload: { amount: 20 } });

  const standalone = await readKeyState({ pipeline, transport, checkpointStore: store, stage: 'counter', key: 'alice' });
  const stage = pipeline.stage('counter');
  const lastSeq = await transport.lastSeqOf(stage.stream, stage.subjectOf(standalone!.partition));
  t.like(standalone, { stage: 'counter', key: 'alice', status: 'active', source: 'durable', checkpointSeq: 3, replayed: 2, seq: lastSeq });
  t.like(standalone!.context, { count: 5, total: 36 });

  const second = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => second.stop());
  await second.whenCaughtUp();
  await producer.send({ key: 'bob', type: 'add', payload: { amount: 1 } });
  await second.whenCaughtUp();
  // The restarted node applied alice's two inputs, then checkpointed nothing yet; it holds alice in memory.
  const fromNode = await second.readState('counter', 'alice');
  t.like(fromNode, { source: 'memory', status: 'active' });
  t.like(fromNode!.context, { count: 5, total: 36 });
  t.is(second.inspect('counter', 'carol'), undefined);
  t.is(await second.readState('counter', 'carol'), undefined, 'a key that never existed has no state');
});

test('readState of a passivated key returns its state from the checkpoint; inspect does not see it', async (t) => {
  const { transport, store } = backends(t);
  const pipeline = definePipeline({ name: 'rs-idle', stages: [{ actor: counter, idleMs: 20, checkpoint: { intervalMs: 10 } }] });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 4 } });
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 5 } });
  await node.whenCaughtUp();
  for (let i = 0; i < 200 && node.inspect('counter', 'a') !== undefined; i++) await sleep(10);
  t.is(node.inspect('counter', 'a'), undefined, 'passivated');
  const state = await node.readState('counter', 'a');
  t.like(state, { source: 'durable', status: 'active', checkpointSeq: 2, replayed: 0, seq: 2 });
  t.like(state!.context, { count: 2, total: 9 });
  t.is(node.inspect('counter', 'a'), undefined, 'reading does not load the actor into the node');
});

test('readKeyState is the state a live node holds, for every key, across kills and periodic checkpoints', async (t) => {
  const { transport, store } = backends(t);
  const pipeline = definePipeline({
    name: 'rs-same',
    stages: [{ actor: counter, partitions: 2, to: 'tally', checkpoint: { everyEvents: 7, intervalMs: 30_000 } }, { actor: tally, partitions: 2, checkpoint: { everyEvents: 5, intervalMs: 30_000 } }],
  });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  for (let i = 0; i < 60; i++) {
    await node.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: i } });
    if (i === 25) node.kill('counter');
    if (i === 40) node.kill('tally', 1);
  }
  await node.whenCaughtUp();
  for (const stage of ['counter', 'tally']) {
    for (let k = 0; k < 6; k++) {
      const live = node.inspect(stage, `k${k}`);
      const durable = await readKeyState({ pipeline, transport, checkpointStore: store, stage, key: `k${k}` });
      t.truthy(live, `${stage} k${k} is in memory`);
      t.like(durable, { source: 'durable', status: live!.status });
      t.deepEqual(durable!.context, live!.context, `${stage} k${k}`);
      t.deepEqual(durable!.value, live!.value);
    }
  }
});

test('readKeyState writes nothing, publishes nothing and issues no call, even for a key with a call pending', async (t) => {
  const { transport, store } = backends(t);
  let issued = 0;
  const charge: CallTarget<{ amount: number }, { ok: boolean }> = {
    name: 'rs-charge',
    call: () => {
      issued++;
      return new Promise(() => undefined); // never settles: the call stays pending
    },
  };
  const payer = defineActor({
    name: 'payer',
    events: { pay: null },
    machine: setup({ types: { context: {} as { asked: number }, events: {} as { type: 'pay'; amount: number } }, actors: { charge: fromCall(charge) } }).createMachine({
      initial: 'idle',
      context: { asked: 0 },
      states: {
        idle: { on: { pay: { target: 'paying', actions: assign({ asked: ({ context }) => context.asked + 1 }) } } },
        paying: { invoke: { src: 'charge', input: ({ event }) => ({ amount: (event as { amount: number }).amount }), onDone: 'idle' } },
      },
    }),
  });
  const pipeline = definePipeline({ name: 'rs-pure', stages: [{ actor: payer }] });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  await node.ingest({ key: 'a', type: 'pay', payload: { amount: 3 } });
  await node.whenCaughtUp();
  t.is(issued, 1);
  await node.stop(); // the pending call is in the checkpoint
  const counted = countingStore(store);
  const before = await transport.streamInfo('rs-pure-payer');
  const state = await readKeyState({ pipeline, transport, checkpointStore: counted, stage: 'payer', key: 'a' });
  t.like(state, { value: 'paying', context: { asked: 1 } });
  t.is(issued, 1, 'no call issued');
  t.is(counted.writes + counted.clears, 0, 'nothing written');
  t.deepEqual(await transport.streamInfo('rs-pure-payer'), before, 'nothing published');
});

test('readKeyState of a key whose actor finished before the checkpoint resolves undefined; one that finishes in the replay says done', async (t) => {
  const { transport, store } = backends(t);
  const pipeline = definePipeline({ name: 'rs-done', stages: [{ actor: counter }] });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.ingest({ key: 'a', type: 'finish' });
  await node.ingest({ key: 'b', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  await node.stop();
  await createProducer({ pipeline, transport }).send({ key: 'b', type: 'finish' });
  const read = (key: string) => readKeyState({ pipeline, transport, checkpointStore: store, stage: 'counter', key });
  t.is(await read('a'), undefined, 'finished and removed before the checkpoint: its next input starts a new life');
  t.like(await read('b'), { status: 'done', replayed: 1 });
});

test('node.readState of a finished actor the node still holds: done until a checkpoint removes it, then undefined, as readKeyState says', async (t) => {
  const transport = new InMemoryTransport();
  const store = new FlakyCheckpoints();
  const pipeline = definePipeline({ name: 'rs-done-live', stages: [{ actor: counter, checkpoint: { everyEvents: 1, intervalMs: 20 } }] });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  store.failing = true; // no checkpoint lands for now
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.ingest({ key: 'a', type: 'finish' });
  await node.whenCaughtUp();
  t.like(await node.readState('counter', 'a'), { status: 'done', source: 'memory' }, 'finished, not yet checkpointed');
  const landed = new Promise<void>((resolve) => node.on((e) => e.type === 'checkpoint' && resolve()));
  store.failing = false;
  await landed;
  t.is(node.inspect('counter', 'a')?.status, 'done', 'the node still holds the finished actor');
  t.is(await node.readState('counter', 'a'), undefined, 'a checkpoint removed it: no state');
  t.is(await readKeyState({ pipeline, transport, checkpointStore: store, stage: 'counter', key: 'a' }), undefined);
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 5 } });
  await node.whenCaughtUp();
  t.like(await node.readState('counter', 'a'), { status: 'active', context: { total: 5 } }, 'its next input starts a new life');
});

test("readKeyState with a corrupt entry rebuilds from the log under onUnusable 'rebuild', and rejects under 'fail'", async (t) => {
  for (const onUnusable of ['rebuild', 'fail'] as const) {
    const { transport, store } = backends(t);
    const pipeline: Pipeline = definePipeline({ name: `rs-corrupt-${onUnusable}`, stages: [{ actor: counter, checkpoint: { onUnusable } }] });
    const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
    for (const amount of [2, 3]) await node.ingest({ key: 'a', type: 'add', payload: { amount } });
    await node.whenCaughtUp();
    await node.stop();
    store.corrupt(pipeline.stage('counter').scopeOf(0), 'a');
    const reading = readKeyState({ pipeline, transport, checkpointStore: store, stage: 'counter', key: 'a' });
    if (onUnusable === 'rebuild') {
      const state = await reading;
      t.like(state, { checkpointSeq: 0, replayed: 2 });
      t.like(state!.context, { count: 2, total: 5 });
    } else {
      t.is((await t.throwsAsync(reading, { instanceOf: WardenError })).code, 'CHECKPOINT_CORRUPT');
    }
  }
});

test('readKeyState of a key whose entry has a machine version no migrate takes is rebuilt from the whole log and says checkpointSeq 0', async (t) => {
  const { transport, store } = backends(t);
  const at = (version: number): Pipeline =>
    definePipeline({ name: 'rs-version', stages: [{ actor: defineActor({ name: 'counter', machine: counterMachine, version }), checkpoint: { everyEvents: 1 } }] });
  const node = await startNode({ pipeline: at(1), transport, checkpointStore: store, logger: silentLogger });
  for (const amount of [2, 3]) await node.ingest({ key: 'a', type: 'add', payload: { amount } });
  await node.whenCaughtUp();
  await node.stop();
  const same = await readKeyState({ pipeline: at(1), transport, checkpointStore: store, stage: 'counter', key: 'a' });
  t.like(same, { checkpointSeq: 2, replayed: 0 });
  const rebuilt = await readKeyState({ pipeline: at(2), transport, checkpointStore: store, stage: 'counter', key: 'a' });
  t.like(rebuilt, { checkpointSeq: 0, replayed: 2, seq: 2 }, 'the state does not start from the version-1 checkpoint');
  t.like(rebuilt!.context, { count: 2, total: 5 });
});

test('readKeyState and node.readState reject, never throw, for an unknown stage or an empty key', async (t) => {
  const { transport, store } = backends(t);
  const pipeline = definePipeline({ name: 'rs-args', stages: [{ actor: counter }] });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  let pending: Array<Promise<unknown>> = [];
  t.notThrows(() => {
    pending = [
      node.readState('nope', 'a'),
      node.readState('counter', ''),
      readKeyState({ pipeline, transport, checkpointStore: store, stage: 'nope', key: 'a' }),
    ];
  });
  const [stage, key, standalone] = await Promise.all(pending.map((p) => t.throwsAsync(p, { instanceOf: ConfigError })));
  t.is(stage?.field, 'stage');
  t.is(key?.field, 'key');
  t.is(standalone?.field, 'stage');
});

test('readKeyState of a pipeline whose streams do not exist rejects with STREAM_NOT_FOUND naming the stream', async (t) => {
  const { transport, store } = backends(t);
  const pipeline = definePipeline({ name: 'rs-nostream', stages: [{ actor: counter }] });
  const err = await t.throwsAsync(readKeyState({ pipeline, transport, checkpointStore: store, stage: 'counter', key: 'a' }), { instanceOf: WardenError });
  t.is(err.code, 'STREAM_NOT_FOUND');
  t.regex(err.message, /^stream rs-nostream-counter of stage counter does not exist: no node of the pipeline has run/);
});

test('node.inspect and node.readState give the documented fields, the same for a live and a durable read', async (t) => {
  const { transport, store } = backends(t);
  const pipeline = definePipeline({ name: 'rs-shape', stages: [{ actor: counter, compactMs: 0 }] });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  t.deepEqual(Object.keys(node.inspect('counter', 'a') ?? {}).sort(), ['context', 'status', 'value']);
  const fields = ['checkpointSeq', 'context', 'key', 'partition', 'replayed', 'seq', 'source', 'stage', 'status', 'value'];
  t.deepEqual(Object.keys((await node.readState('counter', 'a')) ?? {}).sort(), fields, 'live');
  await node.stop();
  const durable = await readKeyState({ pipeline, transport, checkpointStore: store, stage: 'counter', key: 'a' });
  t.deepEqual(Object.keys(durable ?? {}).sort(), fields, 'durable');
  t.like(durable, { source: 'durable', status: 'active', context: { total: 1 } });
});
