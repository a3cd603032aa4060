import test from 'ava';
import { SimulatedClock } from '../../lib/core/clock.js';
import type { Json } from '../../lib/core/envelope.js';
import { CheckpointFencedError, WardenError } from '../../lib/core/errors.js';
import type { CheckpointScope, CheckpointWrite, OutboxEntry } from '../../lib/checkpoint/checkpoint-store.js';
import { scopeId } from '../../lib/checkpoint/checkpoint-store.js';
import { InMemoryCheckpointStore } from '../../lib/checkpoint/in-memory-checkpoint-store.js';
import { checksumOf, openEntry, sealEntry } from '../../lib/checkpoint/codec.js';

const scope: Readonly<CheckpointScope> = Object.freeze({ operator: 'sessions', partition: 0 });
const otherScope: Readonly<CheckpointScope> = Object.freeze({ operator: 'sessions', partition: 1 });

function cp(overrides: Partial<CheckpointWrite> = {}): CheckpointWrite {
  return { scope: { ...scope }, seq: 10, epoch: 1, machineVersion: '1', actors: {}, outbox: [], ...overrides };
}

function setup(): { clock: SimulatedClock; store: InMemoryCheckpointStore } {
  const clock = new SimulatedClock(5_000);
  return { clock, store: new InMemoryCheckpointStore({ clock }) };
}

function code(err: unknown): string | undefined {
  return err instanceof WardenError ? err.code : undefined;
}

/** Everything a reader can see of a scope, for before/after comparisons. */
async function visible(store: InMemoryCheckpointStore, s: CheckpointScope = scope): Promise<unknown> {
  const meta = await store.readMeta(s);
  const actors = (await store.readActors(s)).sort((a, b) => a.key.localeCompare(b.key));
  return { meta, actors };
}

// --- codec -----------------------------------------------------------------------------------

test('codec: sealEntry prefixes the JSON with its 40-hex SHA-1 and openEntry reverses it', (t) => {
  const value = { a: 1, b: ['x', null, true] };
  const sealed = sealEntry(value);
  const body = JSON.stringify(value);
  t.is(sealed, checksumOf(body) + body);
  t.regex(sealed.slice(0, 40), /^[0-9a-f]{40}$/);
  t.deepEqual(openEntry(sealed, 'w'), value);
});

test('invariant 5 (codec): a body that does not match its checksum raises CHECKPOINT_CORRUPT naming what', (t) => {
  const sealed = sealEntry({ n: 1 });
  const tampered = sealed.replace('"n":1', '"n":2');
  const err = t.throws(() => openEntry<unknown>(tampered, 'ops/3#bob'));
  t.is(code(err), 'CHECKPOINT_CORRUPT');
  t.regex(err.message, /ops\/3#bob/);
  t.deepEqual((err as WardenError).details, { what: 'ops/3#bob' });
  t.true((err as WardenError).nonRetryable);
});

// --- round trip ------------------------------------------------------------------------------

test('a never-written scope reads as undefined meta, no actors', async (t) => {
  const { store } = setup();
  t.is(await store.readMeta(scope), undefined);
  t.is(await store.readActor(scope, 'alice'), undefined);
  t.deepEqual(await store.readActors(scope), []);
});

test('invariant 1: write then readMeta/readActor/readActors round-trips every field, all at the written seq', async (t) => {
  const { store } = setup();
  const outbox: OutboxEntry[] = [{ subject: 'out.sessions', msgId: 'sessions:alice:9:0', body: '{"id":"x"}' }];
  const alice: Json = { value: 'active', context: { n: 3, tags: ['a', 'b'] }, status: 'active' };
  const bob: Json = { value: { nested: 'deep' }, context: { n: 0 }, status: 'active' };
  const res = await store.write(cp({ seq: 42, epoch: 3, machineVersion: 'v7', actors: { alice, bob }, outbox }));
  t.is(res.seq, 42);
  t.is(res.epoch, 3);
  const expectedBytes =
    sealEntry({ key: 'alice', snapshot: alice, machineVersion: 'v7', seq: 42 }).length +
    sealEntry({ key: 'bob', snapshot: bob, machineVersion: 'v7', seq: 42 }).length;
  t.true(res.bytes > expectedBytes, 'bytes counts the actor entries and the meta');

  t.deepEqual(await store.readMeta(scope), {
    scope: { operator: 'sessions', partition: 0 },
    seq: 42,
    epoch: 3,
    machineVersion: 'v7',
    outbox,
    timers: [],
    calls: [],
    actorCount: 2,
    writtenAtMs: 5_000,
  });
  t.deepEqual(await store.readActor(scope, 'alice'), { key: 'alice', snapshot: alice, machineVersion: 'v7', seq: 42 });
  const all = (await store.readActors(scope)).sort((a, b) => a.key.localeCompare(b.key));
  t.deepEqual(all, [
    { key: 'alice', snapshot: alice, machineVersion: 'v7', seq: 42 },
    { key: 'bob', snapshot: bob, machineVersion: 'v7', seq: 42 },
  ]);
  t.is(store.writes, 1);
});

test('invariant 1: stored copies are not shared by reference with the written or the read objects', async (t) => {
  const { store } = setup();
  const context = { n: 1, list: [1, 2] };
  const snapshot = { value: 'a', context };
  const outbox: OutboxEntry[] = [{ subject: 's', msgId: 'm', body: 'b' }];
  const write = cp({ actors: { alice: snapshot }, outbox });
  await store.write(write);

  // Mutating what was written does not reach the store.
  context.n = 99;
  context.list.push(3);
  outbox.push({ subject: 's2', msgId: 'm2', body: 'b2' });
  write.scope.partition = 7;
  const entry = await store.readActor(scope, 'alice');
  t.deepEqual(entry?.snapshot, { value: 'a', context: { n: 1, list: [1, 2] } });
  const meta = await store.readMeta(scope);
  t.deepEqual(meta?.outbox, [{ subject: 's', msgId: 'm', body: 'b' }]);
  t.deepEqual(meta?.scope, { operator: 'sessions', partition: 0 });

  // Mutating what was read does not reach the store either; each read is a fresh copy.
  (entry!.snapshot as { context: { n: number } }).context.n = -1;
  meta!.outbox.length = 0;
  const again = await store.readActor(scope, 'alice');
  t.not(again, entry);
  t.deepEqual(again?.snapshot, { value: 'a', context: { n: 1, list: [1, 2] } });
  t.is((await store.readMeta(scope))?.outbox.length, 1);
  const listed = await store.readActors(scope);
  t.not(listed[0]?.snapshot, again?.snapshot);
});

test('writtenAtMs is the store clock time of each write', async (t) => {
  const { clock, store } = setup();
  await store.write(cp({ seq: 1 }));
  t.is((await store.readMeta(scope))?.writtenAtMs, 5_000);
  clock.advance(250);
  await store.write(cp({ seq: 2 }));
  t.is((await store.readMeta(scope))?.writtenAtMs, 5_250);
});

test('scopes are independent: a write to one partition is invisible in another', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 100, epoch: 5, actors: { alice: 1 } }));
  t.is(await store.readMeta(otherScope), undefined);
  t.deepEqual(await store.readActors(otherScope), []);
  // Fencing is per scope: a low epoch/seq is fine in a fresh scope.
  await store.write(cp({ scope: { ...otherScope }, seq: 1, epoch: 1, actors: { bob: 2 } }));
  t.is((await store.readMeta(otherScope))?.seq, 1);
  t.is((await store.readMeta(scope))?.seq, 100);
  t.is(await store.readActor(scope, 'bob'), undefined);
  t.is(scopeId(otherScope), 'sessions/1');
});

// --- fencing ---------------------------------------------------------------------------------

test('invariant 2: a write with an older epoch is refused with CHECKPOINT_FENCED and changes nothing', async (t) => {
  const { store, clock } = setup();
  await store.write(cp({ seq: 10, epoch: 2, machineVersion: '1', actors: { alice: { n: 1 } }, outbox: [{ subject: 's', msgId: 'm', body: 'b' }] }));
  const before = await visible(store);
  clock.advance(10);
  // Even with a later seq, an older epoch (a zombie owner) may not write.
  const err = await t.throwsAsync(
    store.write(cp({ seq: 20, epoch: 1, machineVersion: '2', actors: { alice: { n: 666 }, carol: { n: 1 } }, removed: [], outbox: [] })),
  );
  t.true(err instanceof CheckpointFencedError);
  t.is(code(err), 'CHECKPOINT_FENCED');
  t.true((err as WardenError).nonRetryable);
  t.regex(err.message, /sessions\/0/);
  t.like((err as WardenError).details, { scope: 'sessions/0', epoch: 1, storedEpoch: 2 });
  t.deepEqual(await visible(store), before);
  t.is(store.writes, 1);
});

test('invariant 2: a write with an older epoch may not remove entries either', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 10, epoch: 2, actors: { alice: 1, bob: 2 } }));
  await t.throwsAsync(store.write(cp({ seq: 11, epoch: 1, removed: ['alice'] })), { instanceOf: CheckpointFencedError });
  t.deepEqual(await store.readActor(scope, 'alice'), { key: 'alice', snapshot: 1, machineVersion: '1', seq: 10 });
  t.is((await store.readMeta(scope))?.actorCount, 2);
});

test('invariant 2: a newer epoch is accepted and then fences the previous one', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 10, epoch: 1, actors: { alice: 1 } }));
  const res = await store.write(cp({ seq: 12, epoch: 2, actors: { alice: 2 } }));
  t.deepEqual({ seq: res.seq, epoch: res.epoch }, { seq: 12, epoch: 2 });
  t.like(await store.readMeta(scope), { seq: 12, epoch: 2 });
  t.is((await store.readActor(scope, 'alice'))?.snapshot, 2);
  const err = await t.throwsAsync(store.write(cp({ seq: 13, epoch: 1, actors: { alice: 3 } })));
  t.is(code(err), 'CHECKPOINT_FENCED');
  t.is((await store.readActor(scope, 'alice'))?.snapshot, 2);
});

test('invariant 3: a backwards seq is refused with CHECKPOINT_FENCED and changes nothing', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 10, epoch: 1, actors: { alice: { n: 1 } } }));
  const before = await visible(store);
  const err = await t.throwsAsync(store.write(cp({ seq: 9, epoch: 1, actors: { alice: { n: 2 }, bob: 0 } })));
  t.true(err instanceof CheckpointFencedError);
  t.is(code(err), 'CHECKPOINT_FENCED');
  t.like((err as WardenError).details, { scope: 'sessions/0', seq: 9, storedSeq: 10 });
  t.regex(err.message, /seq 9/);
  t.deepEqual(await visible(store), before);
});

test('invariant 3: a backwards seq is refused even under a newer epoch', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 10, epoch: 1, actors: { alice: 1 } }));
  const before = await visible(store);
  const err = await t.throwsAsync(store.write(cp({ seq: 5, epoch: 2, actors: { alice: 2 } })));
  t.is(code(err), 'CHECKPOINT_FENCED');
  t.deepEqual(await visible(store), before);
  t.is((await store.readMeta(scope))?.epoch, 1);
});

test('invariant 3: an equal seq with the same epoch is accepted (idempotent re-write)', async (t) => {
  const { store, clock } = setup();
  await store.write(cp({ seq: 10, epoch: 1, actors: { alice: { n: 1 } } }));
  clock.advance(5);
  const res = await store.write(cp({ seq: 10, epoch: 1, actors: { alice: { n: 2 } } }));
  t.is(res.seq, 10);
  t.like(await store.readMeta(scope), { seq: 10, epoch: 1, writtenAtMs: 5_005, actorCount: 1 });
  t.deepEqual((await store.readActor(scope, 'alice'))?.snapshot, { n: 2 });
  t.is(store.writes, 2);
});

// --- partial writes --------------------------------------------------------------------------

test('invariant 4: actors not named in a write keep their last value and the seq that wrote them', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 10, machineVersion: '1', actors: { alice: { n: 1 }, bob: { n: 1 } } }));
  await store.write(cp({ seq: 20, machineVersion: '1', actors: { alice: { n: 2 } } }));
  t.deepEqual(await store.readActor(scope, 'alice'), { key: 'alice', snapshot: { n: 2 }, machineVersion: '1', seq: 20 });
  t.deepEqual(await store.readActor(scope, 'bob'), { key: 'bob', snapshot: { n: 1 }, machineVersion: '1', seq: 10 });
  t.like(await store.readMeta(scope), { seq: 20, actorCount: 2 });
  // An empty write moves the position and keeps every entry.
  await store.write(cp({ seq: 30 }));
  t.deepEqual((await store.readActors(scope)).map((e) => [e.key, e.seq]).sort(), [['alice', 20], ['bob', 10]]);
  t.like(await store.readMeta(scope), { seq: 30, actorCount: 2 });
});

test('invariant 4: removed keys are deleted in the same write, and actorCount follows', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 1, actors: { alice: 1, bob: 2, carol: 3 } }));
  t.is((await store.readMeta(scope))?.actorCount, 3);
  await store.write(cp({ seq: 2, actors: { dave: 4 }, removed: ['alice', 'carol', 'never-existed'] }));
  t.is(await store.readActor(scope, 'alice'), undefined);
  t.is(await store.readActor(scope, 'carol'), undefined);
  t.deepEqual((await store.readActors(scope)).map((e) => e.key).sort(), ['bob', 'dave']);
  t.like(await store.readMeta(scope), { seq: 2, actorCount: 2 });
});

test('invariant 1: a write that fails part-way (unserialisable snapshot) leaves the stored checkpoint unchanged', async (t) => {
  // BUG: InMemoryCheckpointStore.write seals actor entries straight into the live map of the
  // existing partition; when a later entry fails to serialise, the earlier ones are already
  // visible while the meta still names the old seq (and write throws synchronously).
  const { store } = setup();
  await store.write(cp({ seq: 1, actors: { alice: { n: 1 } } }));
  const before = await visible(store);
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  await t.throwsAsync(async () => store.write(cp({ seq: 2, actors: { alice: { n: 2 }, bob: circular as unknown as Json } })));
  t.deepEqual(await visible(store), before);
});

// --- corruption ------------------------------------------------------------------------------

test('invariant 5: a corrupted meta raises CHECKPOINT_CORRUPT naming the scope and "meta"', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 3, actors: { alice: 1 } }));
  store.corrupt(scope);
  const err = await t.throwsAsync(async () => store.readMeta(scope));
  t.is(code(err), 'CHECKPOINT_CORRUPT');
  t.regex(err.message, /sessions\/0#meta/);
  t.deepEqual((err as WardenError).details, { what: 'sessions/0#meta' });
  // The actor entries are intact and still readable.
  t.is((await store.readActor(scope, 'alice'))?.snapshot, 1);
});

test('invariant 5: a corrupted actor entry raises CHECKPOINT_CORRUPT naming the scope and key, on readActor and readActors', async (t) => {
  const { store } = setup();
  await store.write(cp({ scope: { operator: 'orders', partition: 3 }, seq: 3, actors: { alice: { n: 1 }, bob: { n: 2 } } }));
  const s = { operator: 'orders', partition: 3 };
  store.corrupt(s, 'bob');
  const one = await t.throwsAsync(async () => store.readActor(s, 'bob'));
  t.is(code(one), 'CHECKPOINT_CORRUPT');
  t.regex(one.message, /orders\/3#bob/);
  t.deepEqual((one as WardenError).details, { what: 'orders/3#bob' });
  const all = await t.throwsAsync(async () => store.readActors(s));
  t.is(code(all), 'CHECKPOINT_CORRUPT');
  t.regex(all.message, /orders\/3#bob/);
  // Other entries and the meta are unaffected.
  t.deepEqual((await store.readActor(s, 'alice'))?.snapshot, { n: 1 });
  t.is((await store.readMeta(s))?.seq, 3);
});

test('invariant 5: a re-write of a corrupted entry replaces it with a good one', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 3, actors: { alice: 1 } }));
  store.corrupt(scope, 'alice');
  await t.throwsAsync(async () => store.readActor(scope, 'alice'), { message: /sessions\/0#alice/ });
  await store.write(cp({ seq: 4, actors: { alice: 2 } }));
  t.is((await store.readActor(scope, 'alice'))?.snapshot, 2);
});

test('invariant 5: read methods report corruption as a rejected promise, never a synchronous throw', async (t) => {
  // BUG: readMeta/readActor/readActors call openEntry while building the argument of
  // Promise.resolve(...), so a checksum mismatch is thrown synchronously from a method typed as
  // returning a Promise: `store.readMeta(scope).catch(handle)` never reaches `handle`.
  const { store } = setup();
  await store.write(cp({ seq: 3, actors: { alice: 1 } }));
  store.corrupt(scope);
  store.corrupt(scope, 'alice');
  const calls: Array<() => Promise<unknown>> = [
    () => store.readMeta(scope),
    () => store.readActor(scope, 'alice'),
    () => store.readActors(scope),
  ];
  for (const call of calls) {
    let pending: Promise<unknown> | undefined;
    t.notThrows(() => {
      pending = call();
    });
    if (pending) await t.throwsAsync(pending, { message: /fails its checksum/ });
  }
});

// --- clear -----------------------------------------------------------------------------------

test('clear removes the partition checkpoint and its position, but a cleared partition stays fenced against older owners', async (t) => {
  const { store } = setup();
  await store.write(cp({ seq: 50, epoch: 4, actors: { alice: 1, bob: 2 } }));
  await store.write(cp({ scope: { ...otherScope }, seq: 7, epoch: 1, actors: { carol: 3 } }));
  await store.clear(scope);
  t.is(await store.readMeta(scope), undefined);
  t.is(await store.readActor(scope, 'alice'), undefined);
  t.deepEqual(await store.readActors(scope), []);
  // Other scopes survive.
  t.is((await store.readActor(otherScope, 'carol'))?.snapshot, 3);
  // An owner older than the cleared checkpoint stays fenced; a current one may write from scratch.
  await t.throwsAsync(store.write(cp({ seq: 1, epoch: 3, actors: { zed: 0 } })), { message: /epoch 3 is older than stored epoch 4/ });
  await store.write(cp({ seq: 1, epoch: 4, actors: { zed: 0 } }));
  t.like(await store.readMeta(scope), { seq: 1, epoch: 4, actorCount: 1 });
  t.deepEqual((await store.readActors(scope)).map((e) => e.key), ['zed']);
  await store.close();
});
