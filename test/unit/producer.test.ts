/**
 * `createProducer` and `node.ingest` (one code path, producer invariant 1): every bad input is a
 * rejected promise naming the field and publishes nothing (invariant 2); a producer creates and
 * claims nothing (invariant 3).
 */
import test from 'ava';
import {
  ConfigError,
  InMemoryCheckpointStore,
  InMemoryTransport,
  ValidationError,
  WardenError,
  createProducer,
  definePipeline,
  silentLogger,
  startNode,
  type IngestInput,
  type Transport,
  type WardenNode,
} from '../../lib/index.js';
import { partitionOf } from '../../lib/testing/index.js';
import { counter, tally } from '../helpers/counter.js';

const dec = (b: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(b));

async function stored(transport: Transport, stream: string): Promise<Array<{ subject: string; msgId: string | undefined; body: unknown }>> {
  const reader = transport.openReader(stream);
  const out = [];
  for (let batch = await reader.next(100, 0); batch.length > 0; batch = await reader.next(100, 0)) {
    out.push(...batch.map((m) => ({ subject: m.subject, msgId: m.msgId, body: dec(m.data) })));
  }
  await reader.close();
  return out;
}

/** A node of a two-stage pipeline (counter with `partitions`, then tally) on its own transport. */
async function nodeOf(t: { teardown(fn: () => Promise<void>): void }, name: string, partitions: number): Promise<{ node: WardenNode; transport: InMemoryTransport }> {
  const transport = new InMemoryTransport();
  const pipeline = definePipeline({ name, stages: [{ actor: counter, partitions, to: 'tally' }, { actor: tally }] });
  const node = await startNode({ pipeline, transport, logger: silentLogger });
  t.teardown(async () => {
    await node.stop();
    await transport.close();
  });
  return { node, transport };
}

/** Calls `send` and checks it returned a promise (no synchronous throw); resolves with its rejection. */
async function rejection(t: { notThrows(fn: () => void, message?: string): void; throwsAsync: (p: Promise<unknown>) => Promise<unknown> }, send: () => Promise<unknown>): Promise<WardenError> {
  let pending: Promise<unknown> | undefined;
  t.notThrows(() => {
    pending = send();
  }, 'a bad input is a rejected promise, never a synchronous throw');
  return (await t.throwsAsync(pending!)) as WardenError;
}

test('ingest of a cyclic payload rejects with a ValidationError and publishes nothing', async (t) => {
  const { node, transport } = await nodeOf(t, 'prod-cycle', 1);
  const payload: Record<string, unknown> = { amount: 1, nested: {} };
  (payload.nested as Record<string, unknown>).back = payload;
  const err = await rejection(t, () => node.ingest({ key: 'a', type: 'add', payload }));
  t.true(err instanceof ValidationError);
  t.is(err.details.field, 'input.payload.nested.back');
  t.regex(err.message, /^input\.payload\.nested\.back refers back .*cycle/);
  t.is((await transport.streamInfo(node.pipeline.stages[0]!.stream)).lastSeq, 0);
});

test('ingest of a BigInt payload rejects with a ValidationError naming the field, for one and several partitions', async (t) => {
  for (const partitions of [1, 4]) {
    const { node, transport } = await nodeOf(t, `prod-bigint-${partitions}`, partitions);
    const err = await rejection(t, () => node.ingest({ key: 'a', type: 'add', payload: { amount: 10n } }));
    t.true(err instanceof ValidationError);
    t.is(err.details.field, 'input.payload.amount');
    t.regex(err.message, /BigInt/);
    t.is((await transport.streamInfo(node.pipeline.stages[0]!.stream)).lastSeq, 0);
  }
});

test('ingest without a key rejects with a ValidationError naming input.key, whatever the partition count', async (t) => {
  for (const partitions of [1, 3]) {
    const { node, transport } = await nodeOf(t, `prod-nokey-${partitions}`, partitions);
    for (const key of [undefined, '', 42, null, { id: 'a' }]) {
      const err = await rejection(t, () => node.ingest({ key, type: 'add', payload: { amount: 1 } } as unknown as IngestInput));
      t.true(err instanceof ValidationError, JSON.stringify(key) ?? 'undefined');
      t.is(err.details.field, 'input.key');
    }
    t.is((await transport.streamInfo(node.pipeline.stages[0]!.stream)).lastSeq, 0);
  }
});

test('ingest to an unknown stage rejects with a ConfigError naming the stage', async (t) => {
  const { node } = await nodeOf(t, 'prod-stage', 2);
  const err = await rejection(t, () => node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } }, 'nope'));
  t.true(err instanceof ConfigError);
  t.is((err as ConfigError).field, 'stage');
  t.regex(err.message, /"nope".*stages: counter, tally/);
});

test('ingest refuses every malformed field with a ValidationError naming it, and publishes none of them', async (t) => {
  const { node, transport } = await nodeOf(t, 'prod-fields', 2);
  class Money {
    constructor(readonly cents: number) {}
  }
  const cases: Array<[unknown, string]> = [
    [null, 'input'],
    ['add', 'input'],
    [{ key: 'a' }, 'input.type'],
    [{ key: 'a', type: '' }, 'input.type'],
    [{ key: 'a', type: 'warden.timer' }, 'input.type'],
    [{ key: 'a', type: 'xstate.stop' }, 'input.type'],
    [{ key: 'a', type: 'add', payload: null }, 'input.payload'],
    [{ key: 'a', type: 'add', payload: [1, 2] }, 'input.payload'],
    [{ key: 'a', type: 'add', payload: new Money(5) }, 'input.payload'],
    [{ key: 'a', type: 'add', payload: { at: new Date(0) } }, 'input.payload.at'],
    [{ key: 'a', type: 'add', payload: { amount: Number.NaN } }, 'input.payload.amount'],
    [{ key: 'a', type: 'add', payload: { items: [1, undefined] } }, 'input.payload.items[1]'],
    // eslint-disable-next-line no-sparse-arrays -- a hole, which JSON would turn into null
    [{ key: 'a', type: 'add', payload: { items: [1, , 3] } }, 'input.payload.items[1]'],
    [{ key: 'a', type: 'add', payload: { rows: [{ ok: true }, { cells: [0, { v: Number.NaN }] }] } }, 'input.payload.rows[1].cells[1].v'],
    [{ key: 'a', type: 'add', payload: { f: () => 1 } }, 'input.payload.f'],
    [{ key: 'a', type: 'add', payload: { deep: [{ n: 1n }] } }, 'input.payload.deep[0].n'],
    [{ key: 'a', type: 'add', headers: { trace: 7 } }, 'input.headers.trace'],
    [{ key: 'a', type: 'add', headers: 'x' }, 'input.headers'],
    [{ key: 'a', type: 'add', id: '' }, 'input.id'],
    [{ key: 'a', type: 'add', id: 'a\nb' }, 'input.id'],
    [{ key: 'a', type: 'add', ts: Number.POSITIVE_INFINITY }, 'input.ts'],
  ];
  for (const [input, field] of cases) {
    const err = await rejection(t, () => node.ingest(input as IngestInput));
    t.true(err instanceof ValidationError, `${field}: ${err.message}`);
    t.is(err.details.field, field, err.message);
  }
  t.is((await transport.streamInfo(node.pipeline.stages[0]!.stream)).lastSeq, 0);
});

test('a producer publishes exactly what ingest publishes: same subject, partition, message ID and envelope', async (t) => {
  const { node, transport } = await nodeOf(t, 'prod-same', 4);
  const producer = createProducer({ pipeline: node.pipeline, transport });
  const input = { key: 'user-42', type: 'add', payload: { amount: 3, tags: ['x'], skipped: undefined }, id: 'in-1', headers: { trace: 't1' }, ts: 1_000 };
  const fromIngest = await node.ingest(input);
  const fromProducer = await producer.send({ ...input, id: 'in-2' });
  t.false(fromIngest.duplicate);
  const [a, b] = await stored(transport, 'prod-same-counter');
  const stage = node.pipeline.stage('counter');
  t.is(a!.subject, stage.subjectOf(partitionOf('user-42', 4)));
  t.is(b!.subject, a!.subject);
  t.is(a!.msgId, 'in-1');
  t.is(b!.msgId, 'in-2');
  t.deepEqual(a!.body, { id: 'in-1', key: 'user-42', type: 'add', payload: { amount: 3, tags: ['x'] }, headers: { trace: 't1' }, ts: 1_000 });
  t.deepEqual(b!.body, { ...(a!.body as object), id: 'in-2' });
  t.is(fromProducer.seq, fromIngest.seq + 1);
  // The same id again is a duplicate, from either.
  t.true((await producer.send(input)).duplicate);
});

test('a producer creates no stream and claims no partition: before any node, a send fails naming the stream and saying a node creates it', async (t) => {
  const transport = new InMemoryTransport();
  const store = new InMemoryCheckpointStore();
  t.teardown(() => transport.close());
  const pipeline = definePipeline({ name: 'prod-first', stages: [{ actor: counter, partitions: 2 }] });
  const producer = createProducer({ pipeline, transport });
  const err = await t.throwsAsync(producer.send({ key: 'a', type: 'add', payload: { amount: 1 } }), { instanceOf: WardenError });
  t.is(err.code, 'NO_STREAM_FOR_SUBJECT');
  t.regex(err.message, /stream prod-first-counter of stage counter .*does not exist: a node creates/);
  t.false(err.nonRetryable, 'retryable: it works once a node has started');
  t.is((await t.throwsAsync(transport.streamInfo('prod-first-counter'), { instanceOf: WardenError })).code, 'STREAM_NOT_FOUND');
  // Once a node runs, the same producer feeds it, and the node is the only one that claimed anything.
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(() => node.stop());
  await producer.send({ key: 'a', type: 'add', payload: { amount: 5 } });
  await producer.send({ key: 'a', type: 'add', payload: { amount: 7 } });
  await node.whenCaughtUp();
  t.like(node.inspect('counter', 'a')?.context, { count: 2, total: 12 });
  const claims = await Promise.all([0, 1].map((p) => store.readClaim(pipeline.stage('counter').scopeOf(p))));
  t.deepEqual(claims.map((c) => c?.epoch), [1, 1], 'each partition claimed once, by the node');
});

test('sendMany checks every input first: one bad input publishes nothing and names its index', async (t) => {
  const { node, transport } = await nodeOf(t, 'prod-many-bad', 2);
  const producer = createProducer({ pipeline: node.pipeline, transport });
  const inputs: IngestInput[] = [
    { key: 'a', type: 'add', payload: { amount: 1 } },
    { key: 'b', type: 'add', payload: { amount: 2 } },
    { key: '', type: 'add', payload: { amount: 3 } },
  ];
  let pending: Promise<unknown> | undefined;
  t.notThrows(() => {
    pending = producer.sendMany(inputs);
  });
  const err = await t.throwsAsync(pending!, { instanceOf: ValidationError });
  t.is(err.details.field, 'inputs[2].key');
  t.is((await transport.streamInfo('prod-many-bad-counter')).lastSeq, 0);
  await t.throwsAsync(producer.sendMany('nope' as unknown as IngestInput[]), { instanceOf: ValidationError });
  await t.throwsAsync(producer.sendMany(inputs.slice(0, 2), 'missing'), { instanceOf: ConfigError });
});

test('sendMany publishes in order and resolves every acknowledgement; the node applies them all', async (t) => {
  const { node, transport } = await nodeOf(t, 'prod-many', 3);
  const producer = createProducer({ pipeline: node.pipeline, transport });
  const inputs = Array.from({ length: 50 }, (_, i) => ({ key: `k${i % 7}`, type: 'add', payload: { amount: i } }));
  const acks = await producer.sendMany(inputs);
  t.deepEqual(acks.map((a) => a.seq), inputs.map((_, i) => i + 1));
  await node.whenCaughtUp();
  let total = 0;
  for (let k = 0; k < 7; k++) total += (node.inspect('counter', `k${k}`)?.context as { total: number }).total;
  t.is(total, (49 * 50) / 2);
});

test('a producer sends to a named stage, and any non-empty string is a key (spaces, unicode, a line break)', async (t) => {
  const { node, transport } = await nodeOf(t, 'prod-keys', 2);
  const producer = createProducer({ pipeline: node.pipeline, transport });
  for (const key of ['a b', 'ключ', 'line\nbreak', ':', '.']) {
    const ack = await producer.send({ key, type: 'added', payload: { count: 1, total: 1 } }, 'tally');
    t.is(ack.stream, 'prod-keys-tally');
  }
  const keys = (await stored(transport, 'prod-keys-tally')).map((m) => (m.body as { key: string }).key);
  t.deepEqual(keys, ['a b', 'ключ', 'line\nbreak', ':', '.']);
});

test('createProducer refuses a missing pipeline or transport with a ConfigError', (t) => {
  t.throws(() => createProducer({ pipeline: {} as never, transport: new InMemoryTransport() }), { instanceOf: ConfigError, message: /^pipeline / });
  const pipeline = definePipeline({ name: 'prod-cfg', stages: [{ actor: counter }] });
  t.throws(() => createProducer({ pipeline, transport: undefined as never }), { instanceOf: ConfigError, message: /^transport / });
});
