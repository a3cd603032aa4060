/**
 * `teardownPipeline` (lib/pipeline/teardown.ts) on the embedded backends: it refuses while the
 * pipeline's streams have consumers (invariant 1), clears checkpoints before deleting streams
 * (invariant 2), and reports streams that do not exist (invariant 3).
 */
import test from 'ava';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  WardenError,
  definePipeline,
  silentLogger,
  startNode,
  teardownPipeline,
  type CheckpointStore,
  type Pipeline,
} from '../../lib/index.js';
import { counter, tally } from '../helpers/counter.js';

function setup(t: { teardown(fn: () => Promise<void>): void }, name: string): { transport: InMemoryTransport; store: InMemoryCheckpointStore; pipeline: Pipeline } {
  const transport = new InMemoryTransport();
  const store = new InMemoryCheckpointStore();
  t.teardown(async () => {
    await transport.close();
    await store.close();
  });
  const pipeline = definePipeline({ name, stages: [{ actor: counter, partitions: 3, to: 'tally' }, { actor: tally, partitions: 2 }] });
  return { transport, store, pipeline };
}

/** Partitions with anything in the store: a claim or a checkpoint. */
async function checkpointed(store: CheckpointStore, pipeline: Pipeline): Promise<number> {
  const scopes = pipeline.stages.flatMap((s) => Array.from({ length: s.partitions }, (_, p) => s.scopeOf(p)));
  const held = await Promise.all(scopes.map(async (scope) => (await store.readClaim(scope)) !== undefined || (await store.readMeta(scope)) !== undefined));
  return held.filter(Boolean).length;
}

test('teardown refuses with IN_USE naming every stream while a node runs, and deletes nothing', async (t) => {
  const { transport, store, pipeline } = setup(t, 'td-busy');
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  const err = await t.throwsAsync(teardownPipeline({ pipeline, transport, checkpointStore: store, waitMs: 50 }), { instanceOf: WardenError });
  t.is(err.code, 'IN_USE');
  t.regex(err.message, /pipeline td-busy is in use: stream td-busy-counter has 3 consumers, stream td-busy-tally has 2 consumers\. A running node reads every partition/);
  t.deepEqual(err.details.streams, [{ name: 'td-busy-counter', consumers: 3 }, { name: 'td-busy-tally', consumers: 2 }]);
  t.is((await transport.streamInfo('td-busy-counter')).lastSeq, 1, 'nothing deleted');
  t.is(await checkpointed(store, pipeline), 5, 'every partition still has its checkpoint');
});

test('after the nodes stop, teardown deletes every stage stream, the dead-letter stream and every partition checkpoint', async (t) => {
  const { transport, store, pipeline } = setup(t, 'td-done');
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  for (let i = 0; i < 20; i++) await node.ingest({ key: `k${i}`, type: i === 7 ? 'nope' : 'add', payload: { amount: i } });
  await node.whenCaughtUp();
  await node.stop();
  t.is(await checkpointed(store, pipeline), 5);
  const report = await teardownPipeline({ pipeline, transport, checkpointStore: store });
  t.true(report.deleted);
  t.deepEqual(report.streams.map((s) => s.name), ['td-done-counter', 'td-done-tally', 'td-done-dlq']);
  t.like(report.streams[2], { messages: 1, consumers: 0 });
  t.deepEqual(report.missing, []);
  t.deepEqual(report.checkpoints.map((c) => `${c.operator}/${c.partition}`), ['td-done.counter/0', 'td-done.counter/1', 'td-done.counter/2', 'td-done.tally/0', 'td-done.tally/1']);
  for (const stream of ['td-done-counter', 'td-done-tally', 'td-done-dlq']) {
    t.is((await t.throwsAsync(transport.streamInfo(stream), { instanceOf: WardenError })).code, 'STREAM_NOT_FOUND', stream);
  }
  t.is(await checkpointed(store, pipeline), 0);
  // The pipeline starts again from nothing.
  const again = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => again.stop());
  await again.ingest({ key: 'k3', type: 'add', payload: { amount: 100 } });
  await again.whenCaughtUp();
  t.like(again.inspect('counter', 'k3')?.context, { count: 1, total: 100 });
});

test('a teardown run again, or on a pipeline that never ran, reports its streams missing and succeeds', async (t) => {
  const { transport, store, pipeline } = setup(t, 'td-none');
  const report = await teardownPipeline({ pipeline, transport, checkpointStore: store });
  t.deepEqual(report.streams, []);
  t.deepEqual(report.missing, ['td-none-counter', 'td-none-tally', 'td-none-dlq']);
  t.true(report.deleted);
});

test('a dry run reports streams with their messages and consumers and the checkpoints, deletes nothing and refuses nothing', async (t) => {
  const { transport, store, pipeline } = setup(t, 'td-dry');
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  const report = await teardownPipeline({ pipeline, transport, checkpointStore: store, dryRun: true });
  t.false(report.deleted);
  t.deepEqual(report.streams, [
    { name: 'td-dry-counter', messages: 1, consumers: 3 },
    { name: 'td-dry-tally', messages: 1, consumers: 2 },
    { name: 'td-dry-dlq', messages: 0, consumers: 0 },
  ]);
  t.is(report.checkpoints.length, 5);
  t.is(await checkpointed(store, pipeline), 5);
});

test('a durable consumer on the dead-letter stream makes teardown refuse; force deletes anyway', async (t) => {
  const { transport, store, pipeline } = setup(t, 'td-force');
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  await node.stop();
  await (await transport.consumer('td-force-dlq', { name: 'reprocess' })).close(); // a durable outlives its handle
  const err = await t.throwsAsync(teardownPipeline({ pipeline, transport, checkpointStore: store, waitMs: 0 }), { instanceOf: WardenError });
  t.is(err.code, 'IN_USE');
  t.regex(err.message, /stream td-force-dlq has 1 consumer\b/);
  const report = await teardownPipeline({ pipeline, transport, checkpointStore: store, force: true });
  t.true(report.deleted);
  t.is((await t.throwsAsync(transport.streamInfo('td-force-dlq'), { instanceOf: WardenError })).code, 'STREAM_NOT_FOUND');
});

test('teardown refuses a pipeline not made by definePipeline and a bad waitMs with a ConfigError', async (t) => {
  const { transport, store, pipeline } = setup(t, 'td-cfg');
  await t.throwsAsync(teardownPipeline({ pipeline: {} as Pipeline, transport, checkpointStore: store }), { message: /^pipeline / });
  await t.throwsAsync(teardownPipeline({ pipeline, transport, checkpointStore: store, waitMs: -1 }), { message: /^waitMs / });
});
