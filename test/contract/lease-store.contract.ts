/**
 * The `LeaseStore` contract (lib/cluster/leases.ts): one suite run against every implementation
 * (`lease-store-in-memory.test.ts` on a simulated clock, `lease-store-kv.test.ts` on NATS KV).
 * Titles cite the port's invariants. Every test uses its own key prefix.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import type { Lease, LeaseChange, LeaseStore } from '../../lib/cluster/leases.js';
import { WardenError } from '../../lib/core/errors.js';

/** A store under contract, and how time passes for it. */
export interface LeaseSubject {
  store: LeaseStore;
  /** Lets at least `ms` of the store's time pass. */
  pass(ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

const code = (err: unknown): string | undefined => (err instanceof WardenError ? err.code : undefined);

export function leaseStoreContract(label: string, make: () => Promise<LeaseSubject>): void {
  const name = (s: string): string => `[${label}] ${s}`;
  async function fixture(t: ExecutionContext): Promise<LeaseSubject & { key: (s: string) => string; prefix: string }> {
    const subject = await make();
    t.teardown(() => subject.cleanup());
    const prefix = `t${randomBytes(4).toString('hex')}.`;
    return { ...subject, prefix, key: (s) => `${prefix}${s}` };
  }

  test(name('invariant 1: a key is acquired by one owner at a time; the epoch is the acquiring revision'), async (t) => {
    const { store, key } = await fixture(t);
    const a = await store.acquire(key('p0'), 'node-a');
    t.truthy(a);
    t.like(a, { key: key('p0'), owner: 'node-a' });
    t.is(a!.epoch, a!.revision);
    t.is(await store.acquire(key('p0'), 'node-b'), undefined);
    t.is(await store.acquire(key('p0'), 'node-a'), undefined, 'not even its owner acquires it twice');
    t.like(await store.get(key('p0')), { owner: 'node-a', epoch: a!.epoch });
  });

  test(name('invariant 1: of many concurrent acquires exactly one wins'), async (t) => {
    const { store, key } = await fixture(t);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.acquire(key('race'), `node-${i}`)));
    t.is(results.filter(Boolean).length, 1);
  });

  test(name('invariants 3 and 4: renew keeps the epoch and moves the revision; a renew on a stale revision is LEASE_LOST'), async (t) => {
    const { store, key } = await fixture(t);
    const a = (await store.acquire(key('p1'), 'node-a'))!;
    const r = await store.renew(a);
    t.is(r.epoch, a.epoch);
    t.true(r.revision > a.revision);
    t.true(r.validUntil >= a.validUntil);
    const err = await t.throwsAsync(store.renew(a));
    t.is(code(err), 'LEASE_LOST');
    t.like(await store.get(key('p1')), { owner: 'node-a', epoch: a.epoch, revision: r.revision });
  });

  test(name('invariants 2 and 4: a lease not renewed within its TTL is gone; the next owner has a higher epoch and the old one is LEASE_LOST'), async (t) => {
    const f = await fixture(t);
    const { store, key } = f;
    const a = (await store.acquire(key('p2'), 'node-a'))!;
    let b: Lease | undefined;
    for (let i = 0; i < 40 && !b; i++) {
      await f.pass(store.ttlMs / 4);
      b = await store.acquire(key('p2'), 'node-b');
    }
    if (!b) return t.fail('not acquired after 10 TTLs');
    t.true(b.epoch > a.epoch);
    t.is(code(await t.throwsAsync(store.renew(a))), 'LEASE_LOST');
  });

  test(name('invariant 3: release frees the key at once; releasing a lost lease does nothing'), async (t) => {
    const { store, key } = await fixture(t);
    const a = (await store.acquire(key('p3'), 'node-a'))!;
    await store.release(a);
    t.is(await store.get(key('p3')), undefined);
    const b = (await store.acquire(key('p3'), 'node-b'))!;
    t.true(b.epoch > a.epoch);
    await store.release(a); // stale: nothing happens
    t.like(await store.get(key('p3')), { owner: 'node-b' });
  });

  test(name('revoke removes a key whoever holds it, or only when the named owner holds it'), async (t) => {
    const { store, key } = await fixture(t);
    await store.acquire(key('p4'), 'node-a');
    t.false(await store.revoke(key('p4'), 'node-b'));
    t.truthy(await store.get(key('p4')));
    t.true(await store.revoke(key('p4'), 'node-a'));
    t.is(await store.get(key('p4')), undefined);
    await store.acquire(key('p4'), 'node-c');
    t.true(await store.revoke(key('p4')));
    t.false(await store.revoke(key('p4')));
  });

  test(name('list returns the live leases under a prefix, by key'), async (t) => {
    const { store, key, prefix } = await fixture(t);
    await store.acquire(key('b'), 'n1');
    await store.acquire(key('a'), 'n2');
    const c = (await store.acquire(key('c'), 'n3'))!;
    await store.release(c);
    t.deepEqual((await store.list(prefix)).map((e) => [e.key, e.owner]), [[key('a'), 'n2'], [key('b'), 'n1']]);
  });

  test(name('invariant 5: a watcher is told puts and deletes under its prefix'), async (t) => {
    const { store, key, prefix } = await fixture(t);
    const seen: LeaseChange[] = [];
    const stop = store.watch(prefix, (c) => seen.push(c));
    t.teardown(stop);
    await new Promise((r) => setTimeout(r, 200)); // a watcher on NATS needs a moment to subscribe
    const a = (await store.acquire(key('w'), 'node-a'))!;
    await store.renew(a).then((r) => store.release(r));
    for (let i = 0; i < 50 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(seen.map((c) => [c.key, c.entry?.owner ?? null]), [[key('w'), 'node-a'], [key('w'), 'node-a'], [key('w'), null]]);
    t.is(seen[0]!.entry!.epoch, a.epoch);
    t.is(seen[1]!.entry!.epoch, a.epoch, 'a renewal keeps the epoch');
  });
}
