/**
 * Cluster coordinators of one process on one in-memory lease bucket and a simulated clock. Titles
 * cite the invariants of lib/cluster/coordinator.ts ("coordinator invariant N") and
 * lib/cluster/placement.ts ("placement invariant N").
 */
import test from 'ava';
import { Coordinator, type PlacedPartition } from '../../lib/cluster/coordinator.js';
import { InMemoryLeaseStore } from '../../lib/cluster/in-memory-leases.js';
import type { Lease, LeaseChange, LeaseEntry, LeaseStore } from '../../lib/cluster/leases.js';
import { assign } from '../../lib/cluster/placement.js';
import { SimulatedClock, flushMicrotasks } from '../../lib/core/clock.js';
import { WardenError } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/logger.js';

const TTL = 1_000;
const partitions: PlacedPartition[] = Array.from({ length: 8 }, (_, i) => ({ id: `shop.orders.${i}`, stage: 'orders', partition: i }));

/** A lease store a node reaches through a link that can be cut (the node loses NATS). */
class Link implements LeaseStore {
  cut = false;
  constructor(private readonly inner: LeaseStore) {}
  get ttlMs(): number {
    return this.inner.ttlMs;
  }
  private gate<T>(fn: () => Promise<T>): Promise<T> {
    return this.cut ? Promise.reject(new WardenError('TRANSPORT_CLOSED', 'link cut')) : fn();
  }
  acquire(key: string, owner: string): Promise<Lease | undefined> {
    return this.gate(() => this.inner.acquire(key, owner));
  }
  renew(lease: Lease): Promise<Lease> {
    return this.gate(() => this.inner.renew(lease));
  }
  release(lease: Lease): Promise<void> {
    return this.gate(() => this.inner.release(lease));
  }
  revoke(key: string, owner?: string): Promise<boolean> {
    return this.gate(() => this.inner.revoke(key, owner));
  }
  get(key: string): Promise<LeaseEntry | undefined> {
    return this.gate(() => this.inner.get(key));
  }
  list(prefix: string): Promise<LeaseEntry[]> {
    return this.gate(() => this.inner.list(prefix));
  }
  watch(prefix: string, onChange: (c: LeaseChange) => void): () => void {
    return this.inner.watch(prefix, (c) => {
      if (!this.cut) onChange(c);
    });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

interface TestNode {
  id: string;
  c: Coordinator;
  link: Link;
  running: Set<string>;
  log: string[];
}

function cluster() {
  const clock = new SimulatedClock(1_000_000);
  const leases = new InMemoryLeaseStore({ ttlMs: TTL, clock });
  const nodes: TestNode[] = [];
  /** `failStart(p)` true: that start of `p` fails (its stream had no leader, say); `startMs(p)`: how long it takes. */
  const node = (id: string, failStart: (p: PlacedPartition) => boolean = () => false, startMs: (p: PlacedPartition) => number = () => 0): TestNode => {
    const link = new Link(leases);
    const running = new Set<string>();
    const log: string[] = [];
    const c = new Coordinator({
      cluster: 'shop', nodeId: id, leases: link, clock, logger: silentLogger, partitions,
      onGain: async (p) => {
        const ms = startMs(p);
        if (ms > 0) await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
        if (failStart(p)) {
          log.push(`!${p.partition}`);
          throw new WardenError('TIMEOUT', `streamInfo of ${p.id} timed out`);
        }
        running.add(p.id);
        log.push(`+${p.partition}`);
      },
      onLose: (p, how) => {
        running.delete(p.id);
        log.push(`-${p.partition}:${how}`);
        return Promise.resolve();
      },
    });
    const n = { id, c, link, running, log };
    nodes.push(n);
    return n;
  };
  const settle = async (ms = 0): Promise<void> => {
    for (let i = 0; i < 10; i++) await flushMicrotasks();
    if (ms > 0) await clock.advanceAsync(ms);
    for (let i = 0; i < 10; i++) await flushMicrotasks();
  };
  return { clock, leases, node, nodes, settle };
}

/** Every partition is run by exactly one live node. */
function owners(nodes: TestNode[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of nodes) for (const id of n.running) out.set(id, [...(out.get(id) ?? []), n.id]);
  return out;
}

test('placement invariants 1 and 2: the same members in any order give the same fair assignment', (t) => {
  const ids = partitions.map((p) => p.id);
  const a = assign(['n1', 'n2', 'n3'], ids);
  t.deepEqual(assign(['n3', 'n1', 'n2'], [...ids].reverse()), a);
  const load = new Map<string, number>();
  for (const n of a.values()) load.set(n, (load.get(n) ?? 0) + 1);
  t.true([...load.values()].every((l) => l <= 3), JSON.stringify([...load]));
  t.is(assign([], ids).size, 0);
});

test('placement invariant 3: when a fourth node joins, only about its fair share moves', (t) => {
  const ids = Array.from({ length: 64 }, (_, i) => `p.${i}`);
  const before = assign(['n1', 'n2', 'n3'], ids);
  const after = assign(['n1', 'n2', 'n3', 'n4'], ids);
  const moved = ids.filter((p) => before.get(p) !== after.get(p));
  t.true(moved.length <= 24, `moved ${moved.length} of 64 (a fair share is 16)`);
  t.true(moved.filter((p) => after.get(p) !== 'n4').length <= 8, 'few move between the old nodes');
});

test('coordinator invariants 1 and 3: nodes joining one by one end with every partition run by exactly one node, fairly', async (t) => {
  const { node, nodes, settle } = cluster();
  for (const id of ['a', 'b', 'c']) {
    await node(id).c.start();
    await settle();
    await settle(TTL / 2); // a poll: partitions handed over are taken
  }
  const o = owners(nodes);
  t.is(o.size, 8);
  t.true([...o.values()].every((ns) => ns.length === 1), JSON.stringify([...o]));
  t.true(nodes.every((n) => n.running.size >= 2 && n.running.size <= 3), nodes.map((n) => `${n.id}:${n.running.size}`).join(' '));
  t.true(nodes[0]!.log.some((l) => l.endsWith(':handoff')), 'the first node handed partitions over as the others joined');
});

test('coordinator invariant 1: leases are renewed across many TTLs while a node lives', async (t) => {
  const { node, settle } = cluster();
  const a = node('a');
  await a.c.start();
  await settle();
  const epochs = a.c.ownedPartitions().map((p) => p.id);
  for (let i = 0; i < 10; i++) await settle(TTL / 2);
  t.is(a.running.size, 8);
  t.deepEqual(a.c.ownedPartitions().map((p) => p.id), epochs);
  t.true(a.c.ownedPartitions().every((p) => a.c.valid(p.id)));
});

test('coordinator invariant 1: a node cut off from the lease bucket stops its partitions once their leases run out, and the others take them over with higher epochs', async (t) => {
  const { node, nodes, settle } = cluster();
  const a = node('a');
  const b = node('b');
  await a.c.start();
  await b.c.start();
  await settle();
  await settle(TTL / 2);
  const aHad = [...a.running];
  t.true(aHad.length > 0);
  const epochsBefore = new Map(a.c.ownedPartitions().map((p) => [p.id, p.epoch]));
  a.link.cut = true;
  await settle(TTL * 0.8);
  t.true(aHad.every((id) => !a.c.valid(id)), 'past validUntil nothing may be written');
  for (let i = 0; i < 8; i++) await settle(TTL / 2);
  t.is(a.running.size, 0, 'a stopped every partition');
  t.true(a.log.filter((l) => l.endsWith(':lost')).length === aHad.length);
  t.is(b.running.size, 8, 'b runs them all');
  for (const p of b.c.ownedPartitions()) if (epochsBefore.has(p.id)) t.true(p.epoch > epochsBefore.get(p.id)!, p.id);
  t.true([...owners(nodes).values()].every((ns) => ns.length === 1));
});

test('coordinator invariant 1: a lease taken away (revoked) stops its partition at the next renewal', async (t) => {
  const { node, leases, settle } = cluster();
  const a = node('a');
  await a.c.start();
  await settle();
  await leases.revoke('shop.parts.shop.orders.3');
  await settle(TTL / 3 + 1);
  t.true(a.log.includes('-3:lost'));
  await settle(TTL / 2);
  t.true(a.running.has('shop.orders.3'), 'taken again by the placement: it is still this node’s');
});

test('coordinator invariant 1: a partition whose worker failed to start is started by the next reconcile, under the lease it holds', async (t) => {
  const { node, settle } = cluster();
  let failures = 2;
  const a = node('a', (p) => p.partition === 3 && failures-- > 0);
  await a.c.start();
  await settle();
  t.false(a.running.has('shop.orders.3'), 'its first start failed');
  t.is(a.running.size, 7);
  t.true(a.c.valid('shop.orders.3'), 'the lease is still held');
  for (let i = 0; i < 2; i++) await settle(TTL / 2); // two polls: a second failure, then a start
  t.true(a.running.has('shop.orders.3'));
  t.deepEqual(a.log.filter((l) => l.endsWith('3')), ['!3', '!3', '+3'], 'never given up meanwhile');
  t.true(a.c.valid('shop.orders.3'), 'renewed all along');
});

test('coordinator invariant 4: a slow first start does not hold the renewals back: no lease runs out meanwhile', async (t) => {
  const { node, settle } = cluster();
  const a = node('a', () => false, (p) => (p.partition === 7 ? 3 * TTL : 0));
  const started = a.c.start();
  await settle();
  for (let i = 0; i < 5; i++) await settle(TTL / 2); // 2.5 TTLs while partition 7 is still starting
  t.is(a.running.size, 7);
  t.true(a.c.ownedPartitions().every((p) => a.c.valid(p.id)), 'every lease renewed meanwhile');
  await settle(TTL);
  await started;
  t.is(a.running.size, 8);
  t.true(a.c.ownedPartitions().every((p) => a.c.valid(p.id)));
});

test('coordinator invariant 2: every epochFor is a fresh, higher epoch; a partition not held is LEASE_LOST', async (t) => {
  const { node, settle } = cluster();
  const a = node('a');
  await a.c.start();
  await settle();
  const e1 = await a.c.epochFor('shop.orders.0');
  const e2 = await a.c.epochFor('shop.orders.0');
  t.true(e2 > e1);
  const err = await t.throwsAsync(a.c.epochFor('shop.orders.99'));
  t.is((err as WardenError).code, 'LEASE_LOST');
});

test('coordinator invariant 5: a node that stops hands its partitions over at once; the others take them before any TTL', async (t) => {
  const { node, settle } = cluster();
  const a = node('a');
  const b = node('b');
  await a.c.start();
  await b.c.start();
  await settle();
  await settle(TTL / 2);
  await a.c.stop();
  await settle();
  await settle(10);
  t.is(a.running.size, 0);
  t.true(a.log.every((l) => !l.endsWith(':lost')));
  t.is(b.running.size, 8, 'within 10 ms, far below the TTL');
});

test('a node id already live in the cluster is refused', async (t) => {
  const { node, settle } = cluster();
  await node('a').c.start();
  await settle();
  await t.throwsAsync(node('a').c.start(), { message: /"a" is already a live member of cluster shop/ });
});
