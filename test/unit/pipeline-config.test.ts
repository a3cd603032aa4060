/** Configuration checks of `definePipeline` and `startNode` that name the field at fault. */
import test from 'ava';
import { ConfigError, InMemoryCheckpointStore, InMemoryLeaseStore, InMemoryTransport, WardenError, createProducer, defineActor, definePipeline, listDeadLetters, readKeyState, replayDeadLetters, silentLogger, startNode, teardownPipeline } from '../../lib/index.js';
import { partitionOf } from '../../lib/testing/index.js';
import { counter, counterMachine } from '../helpers/counter.js';

/** The counter operator under another name. */
const renamed = (_base: typeof counter, name: string) => defineActor({ name, machine: counterMachine });

test('a stage named dlq is refused at definePipeline: it would share the dead-letter stream and its subjects', (t) => {
  const dlq = defineActor({ name: 'dlq', machine: counterMachine });
  const err = t.throws(() => definePipeline({ name: 'shop', stages: [{ actor: counter, to: 'dlq' }, { actor: dlq }] }), { instanceOf: ConfigError });
  t.is(err?.field, 'stages[1].actor.name');
  t.regex(err?.message ?? '', /'dlq' is reserved: .*dead-letter stream <pipeline>-dlq/);
  // Names that only contain it are fine: their streams and subjects are their own.
  t.notThrows(() => definePipeline({ name: 'shop', stages: [{ actor: defineActor({ name: 'dlq-replay', machine: counterMachine }) }] }));
});

test('startNode refuses a NaN maxRecoveryMs, which disabled the duplicate-window check, with a ConfigError naming it', async (t) => {
  const pipeline = definePipeline({ name: 'cfg-nan', stages: [{ actor: counter }] });
  const transport = new InMemoryTransport();
  t.teardown(() => transport.close());
  // Before: NaN made `window < needed` false, so a 1 s window was accepted for exactly-once.
  const err = await t.throwsAsync(startNode({ pipeline, transport, logger: silentLogger, duplicateWindowMs: 1_000, maxRecoveryMs: Number.NaN }), { instanceOf: ConfigError });
  t.is(err.field, 'maxRecoveryMs');
  t.regex(err.message, /^maxRecoveryMs must be a finite number of ms >= 0, got NaN/);
  t.is((await t.throwsAsync(transport.streamInfo('cfg-nan-counter'), { instanceOf: WardenError })).code, 'STREAM_NOT_FOUND', 'nothing was created');
  // And a finite recovery bound gets the 1 s window refused, as it should be.
  await t.throwsAsync(startNode({ pipeline, transport, logger: silentLogger, duplicateWindowMs: 1_000, maxRecoveryMs: 0 }), { instanceOf: ConfigError, message: /^duplicateWindowMs 1000 ms is shorter/ });
});

test('startNode refuses a duplicateWindowMs or maxRecoveryMs that is not a finite number in range, naming the field', async (t) => {
  const pipeline = definePipeline({ name: 'cfg-bounds', stages: [{ actor: counter, guarantee: 'at-least-once' }] });
  const bad: Array<[string, Record<string, unknown>]> = [
    ['duplicateWindowMs', { duplicateWindowMs: Number.NaN }],
    ['duplicateWindowMs', { duplicateWindowMs: Number.POSITIVE_INFINITY }],
    ['duplicateWindowMs', { duplicateWindowMs: 0 }],
    ['duplicateWindowMs', { duplicateWindowMs: -5 }],
    ['duplicateWindowMs', { duplicateWindowMs: '120000' }],
    ['maxRecoveryMs', { maxRecoveryMs: Number.POSITIVE_INFINITY }],
    ['maxRecoveryMs', { maxRecoveryMs: -1 }],
    ['maxRecoveryMs', { maxRecoveryMs: '60s' }],
  ];
  for (const [field, options] of bad) {
    const err = await t.throwsAsync(startNode({ pipeline, logger: silentLogger, ...options }), { instanceOf: ConfigError }, JSON.stringify(options));
    t.is(err.field, field, JSON.stringify(options));
  }
  const node = await startNode({ pipeline, logger: silentLogger, duplicateWindowMs: 1, maxRecoveryMs: 0 }); // at-least-once needs no window
  await node.stop();
});

test('a pipeline whose stream name another pipeline already uses (a + b-c vs a-b + c) is refused at start, and the other keeps its stream', async (t) => {
  const transport = new InMemoryTransport();
  const first = await startNode({ pipeline: definePipeline({ name: 'a', stages: [{ actor: renamed(counter, 'b-c') }] }), transport, logger: silentLogger });
  t.teardown(() => first.stop());
  const err = await t.throwsAsync(startNode({ pipeline: definePipeline({ name: 'a-b', stages: [{ actor: renamed(counter, 'c') }] }), transport, logger: silentLogger }), { instanceOf: ConfigError });
  t.regex(err.message, /stream a-b-c exists with subjects a\.b-c\.\*, not a-b\.c\.\*: it belongs to another pipeline/);
  t.deepEqual((await transport.streamInfo('a-b-c')).subjects, ['a.b-c.*']);
});

test('startNode refuses a yieldEvery that is not a positive integer, naming the field; a valid one runs', async (t) => {
  const pipeline = definePipeline({ name: 'yields', stages: [{ actor: counter }] });
  for (const [yieldEvery, field] of [[{ inputs: 0 }, 'yieldEvery.inputs'], [{ ms: -1 }, 'yieldEvery.ms'], [{ inputs: 1.5 }, 'yieldEvery.inputs'], [{ ms: Number.NaN }, 'yieldEvery.ms']] as const) {
    const err = await t.throwsAsync(startNode({ pipeline, transport: new InMemoryTransport(), logger: silentLogger, yieldEvery }), { instanceOf: ConfigError });
    t.is(err.field, field);
  }
  const node = await startNode({ pipeline, transport: new InMemoryTransport(), logger: silentLogger, yieldEvery: { inputs: 1, ms: 1 } });
  t.teardown(() => node.stop());
  for (let i = 0; i < 10; i++) await node.ingest({ key: 'k', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  t.like(node.inspect('counter', 'k')?.context, { count: 10 });
});

test('definePipeline refuses a to, keyBy or actor supervision value of the wrong kind, naming the field', (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ to: 42 }, /\.to$/],
    [{ to: { stage: 'x' } }, /\.to$/],
    [{ keyBy: 'customer' }, /\.keyBy$/],
    [{ supervision: { resetBackoffAfterMs: -1 } }, /\.supervision\.resetBackoffAfterMs$/],
    [{ supervision: { resetBackoffAfterMs: 'soon' } }, /\.supervision\.resetBackoffAfterMs$/],
    [{ supervision: { minBackoffMs: Number.POSITIVE_INFINITY, maxBackoffMs: Number.POSITIVE_INFINITY } }, /\.supervision\.minBackoffMs$/],
    [{ supervision: { randomFactor: Number.NaN } }, /\.supervision\.randomFactor$/],
  ];
  for (const [stage, field] of cases) {
    const err = t.throws(() => definePipeline({ name: 'bad-stage', stages: [{ actor: counter, ...stage }] }), { instanceOf: ConfigError }, JSON.stringify(stage));
    t.regex(err?.field ?? '', field, err?.message);
  }
});

test('startNode names a bad supervision.backoff field with its full path', async (t) => {
  const pipeline = definePipeline({ name: 'bad-node-backoff', stages: [{ actor: counter }] });
  for (const [backoff, field] of [[{ minBackoffMs: -1 }, 'supervision.backoff.minBackoffMs'], [{ randomFactor: Number.NaN }, 'supervision.backoff.randomFactor'], [{ minBackoffMs: 50, maxBackoffMs: 5 }, 'supervision.backoff.minBackoffMs']] as const) {
    const err = await t.throwsAsync(startNode({ pipeline, logger: silentLogger, supervision: { backoff } }), { instanceOf: ConfigError });
    t.is(err?.field, field, err?.message);
  }
});

test('startNode refuses an onFatal, onEvent or random that is not a function, naming it; createProducer refuses a missing options object', async (t) => {
  const pipeline = definePipeline({ name: 'bad-node-hooks', stages: [{ actor: counter }] });
  for (const field of ['onFatal', 'onEvent', 'random'] as const) {
    const err = await t.throwsAsync(startNode({ pipeline, logger: silentLogger, [field]: 5 }), { instanceOf: ConfigError });
    t.is(err?.field, field);
  }
  t.throws(() => createProducer(undefined as unknown as Parameters<typeof createProducer>[0]), { instanceOf: ConfigError });
});

test('defineActor refuses an input or migrate that is not a function, a version that is not a string or number, and events that are not an object; a stage checkpoint must be an object', (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ input: 5 }, 'actor counter: input'],
    [{ migrate: 'x' }, 'actor counter: migrate'],
    [{ version: {} }, 'actor counter: version'],
    [{ events: [] }, 'actor counter: events'],
  ];
  for (const [options, field] of cases) {
    const err = t.throws(() => defineActor({ name: 'counter', machine: counterMachine, ...options } as Parameters<typeof defineActor>[0]), { instanceOf: ConfigError }, JSON.stringify(options));
    t.is(err?.field, field);
  }
  t.is(defineActor({ name: 'counter', machine: counterMachine, version: 2 }).version, '2', 'a number is a version');
  const err = t.throws(() => definePipeline({ name: 'bad-cp', stages: [{ actor: counter, checkpoint: 'often' as never }] }), { instanceOf: ConfigError });
  t.regex(err?.field ?? '', /\.checkpoint$/);
});

test('startNode refuses a transport, checkpoint store, clock or lease store without its methods, and options that are not an object, with a rejected ConfigError naming the field', async (t) => {
  const pipeline = definePipeline({ name: 'cfg-ports', stages: [{ actor: counter }] });
  const refused = async (options: unknown, field: string, message: RegExp): Promise<void> => {
    let promise: Promise<unknown> | undefined;
    t.notThrows(() => (promise = startNode(options as Parameters<typeof startNode>[0])), `${field}: rejects, never throws synchronously`);
    const err = await t.throwsAsync(promise!, { instanceOf: ConfigError });
    t.is(err.field, field);
    t.regex(err.message, message);
  };
  await refused({ pipeline, checkpointStore: {} }, 'checkpointStore', /^checkpointStore must be a CheckpointStore .*: it has no claim, readClaim, write/);
  await refused({ pipeline, transport: { publish: () => undefined } }, 'transport', /^transport must be a Transport .*: it has no ensureStream, streamInfo, openReader, deleteStream, close methods$/);
  await refused({ pipeline, clock: { now: () => 0 } }, 'clock', /^clock must be a Clock .*: it has no setTimeout, clearTimeout methods$/);
  await refused({ pipeline, cluster: {} }, 'cluster.leases', /^cluster\.leases must be a LeaseStore .*, got undefined$/);
  await refused({ pipeline, cluster: { leases: {}, name: 'not a name!' } }, 'cluster.leases', /it has no acquire/);
  await refused({ pipeline, cluster: 'yes' }, 'cluster', /^cluster must be an object/);
  await refused(undefined, 'options', /^options must be an object with at least a pipeline, got undefined$/);
  await refused({ pipeline: {}, cluster: { leases: {} } }, 'pipeline', /must be made by definePipeline/);
});

test('the dead-letter, teardown and read tools refuse a missing pipeline, transport or checkpoint store with a ConfigError naming it; a bad seqs entry is named seqs', async (t) => {
  const pipeline = definePipeline({ name: 'cfg-tools', stages: [{ actor: counter }] });
  const transport = new InMemoryTransport();
  t.teardown(() => transport.close());
  const field = async (p: Promise<unknown>): Promise<string | undefined> => (await t.throwsAsync(p, { instanceOf: ConfigError })).field;
  const none = undefined as never;
  t.is(await field(listDeadLetters({ pipeline: none, transport })), 'pipeline');
  t.is(await field(listDeadLetters({ pipeline, transport: none })), 'transport');
  t.is(await field(listDeadLetters({ pipeline, transport, seqs: [0] })), 'seqs');
  t.is(await field(replayDeadLetters({ pipeline: none, transport })), 'pipeline');
  t.is(await field(teardownPipeline({ pipeline, transport, checkpointStore: none })), 'checkpointStore');
  t.is(await field(teardownPipeline({ pipeline, transport: none, checkpointStore: new InMemoryCheckpointStore() })), 'transport');
  t.is(await field(readKeyState({ pipeline, transport: none, checkpointStore: new InMemoryCheckpointStore(), stage: 'counter', key: 'k' })), 'transport');
  t.is(await field(readKeyState({ pipeline, transport, checkpointStore: none, stage: 'counter', key: 'k' })), 'checkpointStore');
});

test('whenCaughtUp refuses a timeoutMs or pollMs that is not a finite number >= 0, and kill a partition out of range, naming the field', async (t) => {
  const node = await startNode({ pipeline: definePipeline({ name: 'cfg-caught', stages: [{ actor: counter, partitions: 2 }] }), logger: silentLogger });
  t.teardown(() => node.stop());
  for (const timeoutMs of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
    t.is((await t.throwsAsync(node.whenCaughtUp({ timeoutMs }), { instanceOf: ConfigError })).field, 'timeoutMs', String(timeoutMs));
  }
  t.is((await t.throwsAsync(node.whenCaughtUp({ pollMs: Number.NaN }), { instanceOf: ConfigError })).field, 'pollMs');
  await t.notThrowsAsync(node.whenCaughtUp({ timeoutMs: 5_000, pollMs: 0 }), 'an idle node is caught up; pollMs 0 polls every turn');
  for (const partition of [2, -1, 0.5]) t.is(t.throws(() => node.kill('counter', partition), { instanceOf: ConfigError })?.field, 'partition', String(partition));
  t.throws(() => node.kill('nope'), { instanceOf: ConfigError });
  t.true(node.alive, 'nothing was killed');
});

test('a cluster node on a short lease TTL starts with its default renewal (a third of the TTL) and runs its partitions', async (t) => {
  const leases = new InMemoryLeaseStore({ ttlMs: 30 });
  const node = await startNode({ pipeline: definePipeline({ name: 'cfg-short-ttl', stages: [{ actor: counter }] }), logger: silentLogger, cluster: { leases, nodeId: 'n1' } });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 2 } });
  await node.whenCaughtUp({ timeoutMs: 5_000 });
  t.true((await node.status()).every((p) => p.local && p.owner?.node === 'n1'));
});

test('defineActor and definePipeline refuse options that are not an object, an event type in the reserved xstate. or warden. space, and a stage supervision that is not an object', (t) => {
  t.is(t.throws(() => defineActor(undefined as never), { instanceOf: ConfigError })?.field, 'options');
  t.is(t.throws(() => definePipeline(undefined as never), { instanceOf: ConfigError })?.field, 'options');
  for (const type of ['xstate.init', 'warden.timer']) {
    const err = t.throws(() => defineActor({ name: 'r', machine: counterMachine, events: { [type]: null } }), { instanceOf: ConfigError });
    t.regex(err?.message ?? '', /is reserved/, type);
  }
  t.is(t.throws(() => definePipeline({ name: 'sup-x', stages: [{ actor: counter, supervision: 'x' as never }] }), { instanceOf: ConfigError })?.field, 'stages[0] (counter).supervision');
});

test('partitionOf refuses a key that is not a string or a partition count that is not an integer >= 1', (t) => {
  for (const n of [0, -3, 2.5, Number.NaN]) t.is(t.throws(() => partitionOf('a', n), { instanceOf: ConfigError })?.field, 'partitions', String(n));
  t.is(t.throws(() => partitionOf(undefined as never, 4), { instanceOf: ConfigError })?.field, 'key');
  t.is(partitionOf('a', 1), 0);
});
