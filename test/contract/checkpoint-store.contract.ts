/**
 * The `CheckpointStore` contract: one suite of ava tests that every implementation must pass
 * (`checkpoint-store-in-memory.test.ts`, `checkpoint-store-redis.test.ts`). It checks the numbered
 * invariants of `lib/checkpoint/checkpoint-store.ts`:
 *
 *  1. Atomic writes: a write is seen whole or not at all, including a write that fails part-way
 *     on the client (an unserialisable snapshot) and reads racing writes.
 *  2. An older epoch is refused (`CHECKPOINT_FENCED`, details { scope, epoch, storedEpoch }) and
 *     changes nothing.
 *  3. A backwards seq is refused (details { scope, seq, storedSeq }); an equal seq is accepted.
 *  4. Entries not named keep their value and seq; removed keys go; `actorCount` follows.
 *  5. A damaged entry rejects with `CHECKPOINT_CORRUPT` naming scope and key (when the store has
 *     a `corrupt` test hook), always as a rejected promise.
 *  6. Claims are atomic and strictly increasing, fence older owners at once, and keep one record
 *     key per scope.
 *  7. `clear` keeps the claimed epoch; `drop` removes everything.
 *
 * and the behaviour the invariants combine into: racing writers from two epochs always leave a
 * state equal to replaying the accepted writes in order; 5,000-actor checkpoints round-trip;
 * entries are byte-for-byte what the shared codec seals (so they verify across implementations).
 *
 * Every test uses its own operator name (a random suffix) and clears its scopes when done.
 */
import { prng } from '../../scenarios/clickstream/generate.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import type { SimulatedClock } from '../../lib/core/clock.js';
import type { Json } from '../../lib/core/envelope.js';
import { CheckpointFencedError, WardenError } from '../../lib/core/errors.js';
import {
  scopeId,
  type ActorEntry,
  type CheckpointMeta,
  type CheckpointScope,
  type CheckpointStore,
  type CheckpointWrite,
  type OutboxEntry,
} from '../../lib/checkpoint/checkpoint-store.js';
import { sealEntry } from '../../lib/checkpoint/codec.js';

/**
 * A store under contract, with the optional corruption hook of the test doubles.
 *
 * @example
 * const store: ContractStore = new InMemoryCheckpointStore();
 */
export type ContractStore = CheckpointStore & { corrupt?(scope: CheckpointScope, key?: string): void | Promise<void> };

/**
 * What `make` returns: a fresh store, how to dispose of it, and its clock if simulated.
 *
 * @example
 * const subject: ContractSubject = { store, clock, cleanup: () => store.close() };
 */
export interface ContractSubject {
  store: ContractStore;
  cleanup: () => Promise<void>;
  /** The store's clock, when the test may drive it (then `writtenAtMs` is checked exactly). */
  clock?: SimulatedClock;
}

interface Fixture {
  store: ContractStore;
  clock: SimulatedClock | undefined;
  /** A scope of this test's own operator. */
  scope: (partition?: number) => CheckpointScope;
  /** A write to `scope()` with defaults, overridden by `o`. */
  cp: (o?: Partial<CheckpointWrite>) => CheckpointWrite;
}

function code(err: unknown): string | undefined {
  return err instanceof WardenError ? err.code : undefined;
}


function byKey(entries: ActorEntry[]): ActorEntry[] {
  return [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Everything a reader can see of a scope, for before/after comparisons. */
async function visible(store: CheckpointStore, scope: CheckpointScope): Promise<{ meta: CheckpointMeta | undefined; actors: ActorEntry[] }> {
  return { meta: await store.readMeta(scope), actors: byKey(await store.readActors(scope)) };
}

/** Calls `fn` and checks that it does not throw synchronously; returns its promise. */
function noSyncThrow<T>(t: ExecutionContext, fn: () => Promise<T>): Promise<T> {
  let p: Promise<T> | undefined;
  t.notThrows(() => {
    p = fn();
  }, 'fails by rejecting, never by a synchronous throw');
  return p ?? Promise.reject(new Error('threw synchronously'));
}

/**
 * Registers the contract's tests for one implementation.
 *
 * @example
 * checkpointStoreContract('in-memory', async () => {
 *   const clock = new SimulatedClock(5_000);
 *   return { store: new InMemoryCheckpointStore({ clock }), clock, cleanup: async () => {} };
 * });
 */
export function checkpointStoreContract(label: string, make: () => Promise<ContractSubject>): void {
  async function fixture(t: ExecutionContext): Promise<Fixture> {
    const subject = await make();
    const operator = `contract-${label}-${randomBytes(5).toString('hex')}`;
    const used = new Map<string, CheckpointScope>();
    t.teardown(async () => {
      for (const s of used.values()) await subject.store.drop(s).catch(() => undefined);
      await subject.cleanup();
    });
    const scope = (partition = 0): CheckpointScope => {
      const s = { operator, partition };
      used.set(scopeId(s), s);
      return { ...s };
    };
    return {
      store: subject.store,
      clock: subject.clock,
      scope,
      cp: (o = {}) => ({ scope: scope(), seq: 10, epoch: 1, machineVersion: '1', actors: {}, outbox: [], ...o }),
    };
  }

  const name = (s: string): string => `[${label}] ${s}`;

  // --- round trip ----------------------------------------------------------------------------

  test(name('a never-written scope reads as undefined meta and no actors'), async (t) => {
    const { store, scope } = await fixture(t);
    t.is(await store.readMeta(scope()), undefined);
    t.is(await store.readActor(scope(), 'alice'), undefined);
    t.deepEqual(await store.readActors(scope()), []);
  });

  test(name('round trip: write then readMeta / readActor / readActors return every field; bytes and encoding follow the shared codec'), async (t) => {
    const { store, scope, cp, clock } = await fixture(t);
    const outbox: OutboxEntry[] = [
      { subject: 'out.sessions.0', msgId: 'sessions:alice:41:0', body: '{"id":"x","note":"caf\u00e9 \u2603 \ud83d\ude00"}' },
      { subject: 'out.sessions.1', msgId: 'sessions:bob:41:1', body: '' },
    ];
    const alice: Json = { value: 'active', context: { n: 3, tags: ['a', 'b'], nil: null, f: 1.5, neg: -7 }, status: 'active' };
    const bob: Json = { value: { nested: { deep: 'x' } }, context: { text: 'multi\nline "quoted" \u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9 \ud83d\ude80' }, status: 'active' };
    const odd = 'key with spaces/and:colons{braces}#hash \u00e9';
    const timers = [{ key: 'alice', id: '40.0', dueMs: 1_700_000_000_500 }, { key: odd, id: '41.1', dueMs: 7 }];
    const calls = [{ key: 'bob', id: '41.0' }];
    const res = await store.write(cp({ seq: 42, epoch: 3, machineVersion: 'v7', actors: { alice, bob, [odd]: 0 }, outbox, timers, calls }));
    t.deepEqual({ seq: res.seq, epoch: res.epoch }, { seq: 42, epoch: 3 });

    const meta = await store.readMeta(scope());
    t.like(meta, { scope: scope(), seq: 42, epoch: 3, machineVersion: 'v7', outbox, actorCount: 3 });
    t.deepEqual(meta?.outbox, outbox);
    t.deepEqual(meta?.timers, timers);
    t.deepEqual(meta?.calls, calls);
    // The timer and call lists are replaced by each write, not merged; a write without them clears them.
    await store.write(cp({ seq: 43, epoch: 3, machineVersion: 'v7', actors: {}, outbox: [] }));
    t.like(await store.readMeta(scope()), { timers: [], calls: [] });
    await store.write(cp({ seq: 44, epoch: 3, machineVersion: 'v7', actors: {}, outbox, timers }));
    t.is(typeof meta?.writtenAtMs, 'number');
    if (clock) t.is(meta?.writtenAtMs, clock.now());
    const expected: ActorEntry[] = byKey([
      { key: 'alice', snapshot: alice, machineVersion: 'v7', seq: 42 },
      { key: 'bob', snapshot: bob, machineVersion: 'v7', seq: 42 },
      { key: odd, snapshot: 0, machineVersion: 'v7', seq: 42 },
    ]);
    t.deepEqual(await store.readActor(scope(), 'alice'), expected.find((e) => e.key === 'alice'));
    t.deepEqual(await store.readActor(scope(), odd), expected.find((e) => e.key === odd));
    t.is(await store.readActor(scope(), 'nobody'), undefined);
    t.deepEqual(byKey(await store.readActors(scope())), expected);
    if (store.readActorsOf) {
      // Many keys in one read: one settled result per key, in the order asked, undefined for a key with no entry.
      t.deepEqual(await store.readActorsOf(scope(), [odd, 'nobody', 'alice']), [
        { status: 'fulfilled', value: expected.find((e) => e.key === odd) },
        { status: 'fulfilled', value: undefined },
        { status: 'fulfilled', value: expected.find((e) => e.key === 'alice') },
      ]);
      t.deepEqual(await store.readActorsOf(scope(), []), []);
      t.deepEqual(await store.readActorsOf(scope(1), ['alice']), [{ status: 'fulfilled', value: undefined }], 'a never-written scope');
    }
    // bytes: the sealed entries plus the sealed meta, exactly as the shared codec seals them.
    const sealedBytes = expected.reduce((n, e) => n + sealEntry(e).length, 0) + sealEntry(meta).length;
    t.is(res.bytes, sealedBytes);
  });

  test(name('stored copies are not shared by reference with written or read objects'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    const context = { n: 1, list: [1, 2] };
    const outbox: OutboxEntry[] = [{ subject: 's', msgId: 'm', body: 'b' }];
    const write = cp({ actors: { alice: { value: 'a', context } }, outbox });
    await store.write(write);
    context.n = 99;
    context.list.push(3);
    outbox.push({ subject: 's2', msgId: 'm2', body: 'b2' });
    const entry = await store.readActor(scope(), 'alice');
    t.deepEqual(entry?.snapshot, { value: 'a', context: { n: 1, list: [1, 2] } });
    (entry!.snapshot as { context: { n: number } }).context.n = -1;
    t.deepEqual((await store.readActor(scope(), 'alice'))?.snapshot, { value: 'a', context: { n: 1, list: [1, 2] } });
    t.is((await store.readMeta(scope()))?.outbox.length, 1);
  });

  test(name('writtenAtMs is the store clock time of each write'), async (t) => {
    const { store, scope, cp, clock } = await fixture(t);
    if (!clock) {
      const before = Date.now();
      await store.write(cp({ seq: 1 }));
      const at = (await store.readMeta(scope()))?.writtenAtMs ?? 0;
      t.true(at >= before - 1000 && at <= Date.now() + 1000, `writtenAtMs ${at} is near the wall clock`);
      return;
    }
    await store.write(cp({ seq: 1 }));
    const first = clock.now();
    t.is((await store.readMeta(scope()))?.writtenAtMs, first);
    clock.advance(250);
    await store.write(cp({ seq: 2 }));
    t.is((await store.readMeta(scope()))?.writtenAtMs, first + 250);
  });

  test(name('scopes are independent, fencing included'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 100, epoch: 5, actors: { alice: 1 } }));
    t.is(await store.readMeta(scope(1)), undefined);
    t.deepEqual(await store.readActors(scope(1)), []);
    await store.write(cp({ scope: scope(1), seq: 1, epoch: 1, actors: { bob: 2 } }));
    t.like(await store.readMeta(scope(1)), { seq: 1, epoch: 1, actorCount: 1 });
    t.like(await store.readMeta(scope(0)), { seq: 100, epoch: 5, actorCount: 1 });
    t.is(await store.readActor(scope(0), 'bob'), undefined);
    t.is(await store.readActor(scope(1), 'alice'), undefined);
  });

  // --- invariant 1 ---------------------------------------------------------------------------

  test(name('invariant 1: a write that fails part-way (a circular snapshot after good ones) is a rejection and leaves the checkpoint unchanged'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 1, actors: { alice: { n: 1 }, bob: { n: 1 } } }));
    const before = await visible(store, scope());
    const circular: Record<string, unknown> = { n: 2 };
    circular.self = circular;
    const err = await t.throwsAsync(
      noSyncThrow(t, () => store.write(cp({ seq: 2, actors: { alice: { n: 2 }, carol: { n: 2 }, bob: circular as unknown as Json }, removed: ['alice'] }))),
    );
    t.is(code(err), 'VALIDATION');
    t.like((err as WardenError).details, { scope: scopeId(scope()), key: 'bob' });
    t.deepEqual(await visible(store, scope()), before);
    // An outbox that cannot be serialised fails the same way.
    const badOutbox = [{ subject: 's', msgId: 'm', body: 'b', extra: circular }] as unknown as OutboxEntry[];
    const err2 = await t.throwsAsync(noSyncThrow(t, () => store.write(cp({ seq: 3, actors: { alice: { n: 3 } }, outbox: badOutbox }))));
    t.is(code(err2), 'VALIDATION');
    t.deepEqual(await visible(store, scope()), before);
    // The store still accepts the next good write.
    await store.write(cp({ seq: 2, actors: { alice: { n: 2 } } }));
    t.like(await store.readMeta(scope()), { seq: 2, actorCount: 2 });
  });

  test(name('invariant 1: readActors racing writes never returns a mix of two writes'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    const KEYS = 1_500;
    const writeAll = (seq: number): Promise<unknown> => {
      const actors: Record<string, Json> = {};
      for (let k = 0; k < KEYS; k++) actors[`k${k}`] = { seq, pad: 'x'.repeat(20) };
      return store.write(cp({ seq, actors }));
    };
    await writeAll(1);
    // A writer rewrites every entry, one write after another, while two readers scan in loops.
    let writing = true;
    const writer = (async () => {
      for (let seq = 2; seq <= 16; seq++) await writeAll(seq);
      writing = false;
    })();
    const reads: ActorEntry[][] = [];
    const reader = async (): Promise<void> => {
      while (writing) reads.push(await store.readActors(scope()));
    };
    await Promise.all([writer, reader(), reader()]);
    reads.push(await store.readActors(scope()));
    t.true(reads.length >= 3);
    for (const entries of reads) {
      t.is(entries.length, KEYS);
      const seqs = new Set(entries.map((e) => e.seq));
      t.is(seqs.size, 1, `one write's entries, saw seqs ${[...seqs].join(',')}`);
      const seq = [...seqs][0];
      t.true(entries.every((e) => (e.snapshot as { seq: number }).seq === seq));
    }
  });

  // --- invariant 2 ---------------------------------------------------------------------------

  test(name('invariant 2: an older epoch is refused with CHECKPOINT_FENCED { scope, epoch, storedEpoch } and changes nothing'), async (t) => {
    const { store, scope, cp, clock } = await fixture(t);
    await store.write(cp({ seq: 10, epoch: 2, actors: { alice: { n: 1 }, bob: { n: 1 } }, outbox: [{ subject: 's', msgId: 'm', body: 'b' }] }));
    const before = await visible(store, scope());
    clock?.advance(10);
    // Even with a later seq, an older epoch (a zombie owner) may not write or remove.
    const err = await t.throwsAsync(
      noSyncThrow(t, () => store.write(cp({ seq: 20, epoch: 1, machineVersion: '2', actors: { alice: { n: 666 }, carol: { n: 1 } }, removed: ['bob'], outbox: [] }))),
    );
    t.true(err instanceof CheckpointFencedError);
    t.is(code(err), 'CHECKPOINT_FENCED');
    t.true((err as WardenError).nonRetryable);
    const id = scopeId(scope());
    t.is(err.message, `checkpoint ${id} refused: epoch 1 is older than stored epoch 2`);
    t.deepEqual((err as WardenError).details, { scope: id, epoch: 1, storedEpoch: 2 });
    t.deepEqual(await visible(store, scope()), before);
  });

  test(name('invariant 2: a newer epoch is accepted (an equal seq too: a claim) and then fences the previous one'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 10, epoch: 1, actors: { alice: 1 } }));
    const claim = await store.write(cp({ seq: 10, epoch: 2 }));
    t.deepEqual({ seq: claim.seq, epoch: claim.epoch }, { seq: 10, epoch: 2 });
    await store.write(cp({ seq: 12, epoch: 2, actors: { alice: 2 } }));
    t.like(await store.readMeta(scope()), { seq: 12, epoch: 2 });
    const err = await t.throwsAsync(store.write(cp({ seq: 13, epoch: 1, actors: { alice: 3 } })));
    t.is(code(err), 'CHECKPOINT_FENCED');
    t.like(await store.readActor(scope(), 'alice'), { snapshot: 2, seq: 12 });
  });

  // --- invariant 3 ---------------------------------------------------------------------------

  test(name('invariant 3: a backwards seq is refused with CHECKPOINT_FENCED { scope, seq, storedSeq }, even under a newer epoch'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 10, epoch: 1, actors: { alice: { n: 1 } } }));
    const before = await visible(store, scope());
    const id = scopeId(scope());
    const err = await t.throwsAsync(noSyncThrow(t, () => store.write(cp({ seq: 9, epoch: 1, actors: { alice: { n: 2 }, bob: 0 }, removed: ['alice'] }))));
    t.true(err instanceof CheckpointFencedError);
    t.is(err.message, `checkpoint ${id} refused: seq 9 goes backwards from stored seq 10`);
    t.deepEqual((err as WardenError).details, { scope: id, seq: 9, storedSeq: 10 });
    const newer = await t.throwsAsync(store.write(cp({ seq: 5, epoch: 2, actors: { alice: { n: 3 } } })));
    t.is(code(newer), 'CHECKPOINT_FENCED');
    t.like((newer as WardenError).details, { seq: 5, storedSeq: 10 });
    t.deepEqual(await visible(store, scope()), before);
  });

  test(name('invariant 3: an equal seq is accepted (idempotent re-write) and replaces the values'), async (t) => {
    const { store, scope, cp, clock } = await fixture(t);
    await store.write(cp({ seq: 10, epoch: 1, actors: { alice: { n: 1 } } }));
    clock?.advance(5);
    const res = await store.write(cp({ seq: 10, epoch: 1, actors: { alice: { n: 2 } } }));
    t.is(res.seq, 10);
    t.like(await store.readMeta(scope()), { seq: 10, epoch: 1, actorCount: 1 });
    if (clock) t.is((await store.readMeta(scope()))?.writtenAtMs, clock.now());
    t.deepEqual((await store.readActor(scope(), 'alice'))?.snapshot, { n: 2 });
  });

  test(name('epoch and seq must be non-negative integers: anything else is refused (VALIDATION) and changes nothing'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 10, epoch: 1, actors: { alice: 1 } }));
    const before = await visible(store, scope());
    for (const bad of [{ seq: Number.NaN }, { seq: 10.5 }, { seq: -1 }, { epoch: Number.NaN }, { epoch: Infinity }, { seq: '11' as unknown as number }]) {
      const err = await t.throwsAsync(noSyncThrow(t, () => store.write(cp({ seq: 11, epoch: 1, actors: { alice: 2 }, ...bad }))));
      t.is(code(err), 'VALIDATION', JSON.stringify(bad));
    }
    t.deepEqual(await visible(store, scope()), before);
    // Fencing still works afterwards (a NaN must not have slipped into the stored position).
    await t.throwsAsync(store.write(cp({ seq: 9, epoch: 1 })), { instanceOf: CheckpointFencedError });
  });

  // --- invariant 4 ---------------------------------------------------------------------------

  test(name('invariant 4: entries not named keep their value and seq; an empty write moves the position and keeps all'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 10, actors: { alice: { n: 1 }, bob: { n: 1 } } }));
    await store.write(cp({ seq: 20, actors: { alice: { n: 2 } } }));
    t.deepEqual(await store.readActor(scope(), 'alice'), { key: 'alice', snapshot: { n: 2 }, machineVersion: '1', seq: 20 });
    t.deepEqual(await store.readActor(scope(), 'bob'), { key: 'bob', snapshot: { n: 1 }, machineVersion: '1', seq: 10 });
    t.like(await store.readMeta(scope()), { seq: 20, actorCount: 2 });
    await store.write(cp({ seq: 30, machineVersion: '2' }));
    t.deepEqual(byKey(await store.readActors(scope())).map((e) => [e.key, e.seq, e.machineVersion]), [['alice', 20, '1'], ['bob', 10, '1']]);
    t.like(await store.readMeta(scope()), { seq: 30, machineVersion: '2', actorCount: 2 });
  });

  test(name('invariant 4: removed keys are deleted in the same write (a key both written and removed ends removed); actorCount follows'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 1, actors: { alice: 1, bob: 2, carol: 3 } }));
    t.is((await store.readMeta(scope()))?.actorCount, 3);
    await store.write(cp({ seq: 2, actors: { dave: 4, erin: 5 }, removed: ['alice', 'carol', 'never-existed', 'erin'] }));
    t.is(await store.readActor(scope(), 'alice'), undefined);
    t.is(await store.readActor(scope(), 'erin'), undefined);
    t.deepEqual(byKey(await store.readActors(scope())).map((e) => e.key), ['bob', 'dave']);
    t.like(await store.readMeta(scope()), { seq: 2, actorCount: 2 });
    await store.write(cp({ seq: 3, removed: ['bob', 'dave'] }));
    t.deepEqual(await store.readActors(scope()), []);
    t.like(await store.readMeta(scope()), { seq: 3, actorCount: 0 });
  });

  // --- invariant 5 ---------------------------------------------------------------------------

  test(name('invariant 5: a damaged meta or entry rejects with CHECKPOINT_CORRUPT naming scope and key; others stay readable; a re-write heals'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    if (!store.corrupt) {
      t.log('store has no corrupt() hook; corruption is covered by its own tests');
      t.pass();
      return;
    }
    const id = scopeId(scope());
    await store.write(cp({ seq: 3, actors: { alice: { n: 1 }, bob: { n: 2 } } }));
    await store.corrupt(scope());
    const m = await t.throwsAsync(noSyncThrow(t, () => store.readMeta(scope())));
    t.is(code(m), 'CHECKPOINT_CORRUPT');
    t.regex(m.message, new RegExp(`${id}#meta`));
    t.deepEqual((m as WardenError).details, { what: `${id}#meta` });
    t.deepEqual((await store.readActor(scope(), 'alice'))?.snapshot, { n: 1 });

    await store.corrupt(scope(), 'bob');
    const one = await t.throwsAsync(noSyncThrow(t, () => store.readActor(scope(), 'bob')));
    t.is(code(one), 'CHECKPOINT_CORRUPT');
    t.deepEqual((one as WardenError).details, { what: `${id}#bob` });
    const all = await t.throwsAsync(noSyncThrow(t, () => store.readActors(scope())));
    t.is(code(all), 'CHECKPOINT_CORRUPT');
    t.regex(all.message, new RegExp(`${id}#bob`));
    t.deepEqual((await store.readActor(scope(), 'alice'))?.snapshot, { n: 1 });

    // Corrupting what does not exist is a no-op.
    await store.corrupt(scope(), 'nobody');
    t.is(await store.readActor(scope(), 'nobody'), undefined);

    await store.write(cp({ seq: 4, actors: { bob: { n: 3 } } }));
    t.deepEqual((await store.readActor(scope(), 'bob'))?.snapshot, { n: 3 });
    t.like(await store.readMeta(scope()), { seq: 4, actorCount: 2 });
  });

  // --- races and size ------------------------------------------------------------------------

  test(name('racing writers from two epochs: refusals are CHECKPOINT_FENCED and the final state is the accepted writes replayed in order'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    const seed = Number.parseInt(randomBytes(4).toString('hex'), 16);
    t.log(`seed ${seed}`);
    const rnd = prng(seed);
    const KEYS = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const PER_WRITER = 80;
    const makeWrite = (epoch: number, seq: number): CheckpointWrite => {
      const shuffled = [...KEYS].sort(() => rnd() - 0.5);
      const actors: Record<string, Json> = {};
      for (const k of shuffled.slice(0, 1 + Math.floor(rnd() * 6))) actors[k] = { epoch, seq, k };
      const removed = shuffled.slice(8, 8 + Math.floor(rnd() * 3));
      return cp({ seq, epoch, actors, removed, machineVersion: `e${epoch}` });
    };
    // Writer A (epoch 1) writes odd seqs, writer B (epoch 2) even seqs, each increasing; B starts late.
    const queues = [
      Array.from({ length: PER_WRITER }, (_, i) => makeWrite(1, 2 * i + 1)),
      Array.from({ length: PER_WRITER }, (_, i) => makeWrite(2, 2 * i + 2 + 40)),
    ];
    const issued: Array<{ w: CheckpointWrite; p: Promise<unknown> }> = [];
    while (queues[0]!.length > 0 || queues[1]!.length > 0) {
      const pick = queues[0]!.length === 0 ? 1 : queues[1]!.length === 0 ? 0 : rnd() < 0.5 ? 0 : 1;
      const w = queues[pick]!.shift()!;
      issued.push({ w, p: store.write(w) });
      if (rnd() < 0.2) await new Promise((r) => setImmediate(r));
    }
    const settled = await Promise.allSettled(issued.map((i) => i.p));
    const accepted: CheckpointWrite[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') accepted.push(issued[i]!.w);
      else t.is(code(s.reason), 'CHECKPOINT_FENCED', String(s.reason));
    });
    t.true(accepted.length > 0);
    // Accepted writes form a chain: in seq order, epochs never go back.
    accepted.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < accepted.length; i++) t.true(accepted[i]!.epoch >= accepted[i - 1]!.epoch, 'an older epoch was accepted after a newer one');
    // Replaying them with the port's rules gives exactly the stored state.
    const model = new Map<string, ActorEntry>();
    for (const w of accepted) {
      for (const [key, snapshot] of Object.entries(w.actors)) model.set(key, { key, snapshot, machineVersion: w.machineVersion, seq: w.seq });
      for (const key of w.removed ?? []) model.delete(key);
    }
    const last = accepted.at(-1)!;
    t.like(await store.readMeta(scope()), { seq: last.seq, epoch: last.epoch, machineVersion: last.machineVersion, actorCount: model.size });
    const entries = byKey(await store.readActors(scope()));
    t.deepEqual(entries, byKey([...model.values()]));
    t.true(entries.every((e) => e.seq <= last.seq));
  });

  test(name('large checkpoints: 5,000 actors in one write round-trip, then half removed and some updated in one write'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    const N = 5_000;
    const actors: Record<string, Json> = {};
    for (let i = 0; i < N; i++) actors[`user-${i}`] = { value: 'active', context: { i, visits: [i, i + 1, i + 2], name: `name-${i}`.padEnd(60, '.') } };
    const res = await store.write(cp({ seq: 1, actors }));
    t.true(res.bytes > N * 100);
    t.like(await store.readMeta(scope()), { seq: 1, actorCount: N });
    const all = await store.readActors(scope());
    t.is(all.length, N);
    t.is(new Set(all.map((e) => e.key)).size, N);
    for (const e of all) t.deepEqual(e.snapshot, actors[e.key]);
    t.deepEqual((await store.readActor(scope(), 'user-4999'))?.snapshot, actors['user-4999']);

    const removed = Array.from({ length: N / 2 }, (_, i) => `user-${2 * i}`);
    const updates: Record<string, Json> = {};
    for (let i = 1; i < 200; i += 2) updates[`user-${i}`] = { updated: i };
    await store.write(cp({ seq: 2, actors: updates, removed }));
    t.like(await store.readMeta(scope()), { seq: 2, actorCount: N / 2 });
    const after = await store.readActors(scope());
    t.is(after.length, N / 2);
    for (const e of after) {
      const i = Number(e.key.slice(5));
      t.is(i % 2, 1);
      if (i < 200) t.deepEqual(e, { key: e.key, snapshot: { updated: i }, machineVersion: '1', seq: 2 });
      else t.is(e.seq, 1);
    }
  });

  // --- clear ---------------------------------------------------------------------------------

  test(name('invariant 7: clear removes the checkpoint and its position but keeps the fencing epoch; other scopes survive'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 50, epoch: 4, actors: { alice: 1, bob: 2 } }));
    await store.write(cp({ scope: scope(1), seq: 7, epoch: 1, actors: { carol: 3 } }));
    await store.clear(scope());
    t.is(await store.readMeta(scope()), undefined);
    t.is(await store.readActor(scope(), 'alice'), undefined);
    t.deepEqual(await store.readActors(scope()), []);
    t.is((await store.readActor(scope(1), 'carol'))?.snapshot, 3);
    const fenced = await t.throwsAsync(store.write(cp({ seq: 1, epoch: 3, actors: { zed: 0 } })));
    t.is(code(fenced), 'CHECKPOINT_FENCED', 'an owner older than the cleared checkpoint stays fenced');
    await store.write(cp({ seq: 1, epoch: 4, actors: { zed: 0 } })); // the position went with the checkpoint
    t.like(await store.readMeta(scope()), { seq: 1, epoch: 4, actorCount: 1 });
    t.deepEqual((await store.readActors(scope())).map((e) => e.key), ['zed']);
    t.is((await store.claim(scope())).epoch, 5, 'the next claim is above every epoch written before the clear');
    await store.clear(scope(5)); // clearing a never-written scope is fine
  });

  test(name('drop removes everything of the scope, its claim included'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    const first = await store.claim(scope());
    await store.write(cp({ seq: 9, epoch: first.epoch, actors: { alice: 1 } }));
    await store.drop(scope());
    t.is(await store.readMeta(scope()), undefined);
    t.deepEqual(await store.readActors(scope()), []);
    const again = await store.claim(scope());
    t.is(again.epoch, 1, 'a dropped scope starts over');
    t.not(again.recordKey, first.recordKey, 'with a new record key');
    await store.drop(scope(6)); // dropping a never-written scope is fine
  });

  // --- claims --------------------------------------------------------------------------------

  test(name('invariant 6: claims are strictly increasing and keep one record key per scope'), async (t) => {
    const { store, scope } = await fixture(t);
    const a = await store.claim(scope());
    const b = await store.claim(scope());
    t.is(a.epoch, 1);
    t.is(b.epoch, 2);
    t.is(typeof a.recordKey, 'string');
    t.true(a.recordKey.length >= 16, 'a record key long enough to be a secret');
    t.is(b.recordKey, a.recordKey);
    const other = await store.claim(scope(1));
    t.is(other.epoch, 1, 'scopes claim independently');
    t.not(other.recordKey, a.recordKey);
  });

  test(name('readClaim returns the last claim and changes nothing; undefined before the first'), async (t) => {
    const { store, scope } = await fixture(t);
    t.is(await store.readClaim(scope()), undefined);
    const claim = await store.claim(scope());
    t.deepEqual(await store.readClaim(scope()), claim);
    t.deepEqual(await store.readClaim(scope()), claim, 'reading twice claims nothing');
    t.is((await store.claim(scope())).epoch, 2);
  });

  test(name('invariant 6: concurrent claims never share an epoch'), async (t) => {
    const { store, scope } = await fixture(t);
    const claims = await Promise.all(Array.from({ length: 20 }, () => store.claim(scope())));
    const epochs = claims.map((c) => c.epoch).sort((x, y) => x - y);
    t.deepEqual(epochs, Array.from({ length: 20 }, (_, i) => i + 1));
    t.is(new Set(claims.map((c) => c.recordKey)).size, 1);
  });

  test(name('invariant 6: a claim fences the previous owner before the new one writes anything'), async (t) => {
    const { store, cp } = await fixture(t);
    const old = await store.claim(cp().scope);
    await store.write(cp({ seq: 3, epoch: old.epoch, actors: { a: 1 } }));
    const next = await store.claim(cp().scope);
    const err = await t.throwsAsync(store.write(cp({ seq: 4, epoch: old.epoch, actors: { a: 2 } })));
    t.is(code(err), 'CHECKPOINT_FENCED');
    t.like((err as WardenError).details, { epoch: old.epoch, storedEpoch: next.epoch });
    t.is((await store.readActor(cp().scope, 'a'))?.snapshot, 1, 'the refused write changed nothing');
  });

  test(name('invariant 6: a claim is above every epoch written without a claim; a given epoch must be newer'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 1, epoch: 7 }));
    t.is((await store.claim(scope())).epoch, 8);
    t.is((await store.claim(scope(), 20)).epoch, 20, 'a newer given epoch (a lease revision) is taken as it is');
    const err = await t.throwsAsync(store.claim(scope(), 20));
    t.is(code(err), 'CHECKPOINT_FENCED', 'an epoch not newer than the claimed one is refused');
    t.is(code(await t.throwsAsync(store.claim(scope(), 3))), 'CHECKPOINT_FENCED');
    t.is(code(await t.throwsAsync(noSyncThrow(t, () => store.claim(scope(), 0)))), 'VALIDATION');
    t.is(code(await t.throwsAsync(noSyncThrow(t, () => store.claim(scope(), 1.5)))), 'VALIDATION');
    t.is((await store.claim(scope())).epoch, 21);
  });

  // --- actorsSeq -----------------------------------------------------------------------------

  test(name('actorsSeq labels the written entries below the committed position; it may not exceed seq'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    await store.write(cp({ seq: 20, actorsSeq: 12, actors: { alice: 1 } }));
    t.like(await store.readMeta(scope()), { seq: 20 });
    t.is((await store.readActor(scope(), 'alice'))?.seq, 12);
    await store.write(cp({ seq: 25, actors: { bob: 2 } }));
    t.is((await store.readActor(scope(), 'bob'))?.seq, 25, 'without actorsSeq entries carry seq');
    t.is((await store.readActor(scope(), 'alice'))?.seq, 12, 'an entry not written keeps its label');
    const err = await t.throwsAsync(noSyncThrow(t, () => store.write(cp({ seq: 30, actorsSeq: 31, actors: { carol: 3 } }))));
    t.is(code(err), 'VALIDATION');
    t.like(await store.readMeta(scope()), { seq: 25 });
  });

  test(name('keys that are Object.prototype names round-trip as ordinary keys'), async (t) => {
    const { store, scope, cp } = await fixture(t);
    const actors: Record<string, Json> = Object.create(null) as Record<string, Json>;
    for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) actors[k] = { k };
    await store.write(cp({ seq: 2, actors }));
    for (const k of Object.keys(actors)) t.deepEqual((await store.readActor(scope(), k))?.snapshot, { k }, k);
    t.deepEqual(byKey(await store.readActors(scope())).map((e) => e.key), ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf']);
    t.like(await store.readMeta(scope()), { actorCount: 5 });
  });
}
