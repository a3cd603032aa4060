/**
 * Nodes of one cluster in one process: the embedded log, checkpoint store and lease bucket shared,
 * real time with short leases. What runs on separate processes and real servers is in
 * test/e2e/cluster-*.test.ts. Titles cite lib/cluster/coordinator.ts and lib/worker/worker.ts.
 */
import test from 'ava';
import {
  InMemoryCheckpointStore,
  InMemoryLeaseStore,
  InMemoryTransport,
  definePipeline,
  silentLogger,
  startNode,
  type NodeEvent,
  type WardenNode,
  type LeaseStore,
} from '../../lib/index.js';
import { counter, tally } from '../helpers/counter.js';
import { DelegatingTransport } from '../helpers/delegating-transport.js';
import { WardenError } from '../../lib/core/errors.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The embedded log, whose stream infos time out while `down` says so (a stream electing a leader). */
class ElectingTransport extends DelegatingTransport {
  down: (stream: string) => boolean = () => false;
  override streamInfo(stream: string): ReturnType<InMemoryTransport['streamInfo']> {
    return this.down(stream) ? Promise.reject(new WardenError('TIMEOUT', `streamInfo of ${stream}: no answer`)) : super.streamInfo(stream);
  }
}

/** `ttlMs`: short, so takeovers are quick; a test that must see no lease run out under a loaded machine takes a longer one. */
function setup(name: string, ttlMs = 400) {
  const transport = new ElectingTransport(new InMemoryTransport());
  const checkpointStore = new InMemoryCheckpointStore();
  const leases = new InMemoryLeaseStore({ ttlMs });
  const pipeline = definePipeline({ name, stages: [{ actor: counter, partitions: 6, to: 'tally', checkpoint: { everyEvents: 10, intervalMs: 100 } }, { actor: tally, partitions: 2 }] });
  const start = (nodeId: string, events: NodeEvent[] = []): Promise<WardenNode> =>
    startNode({ pipeline, transport, checkpointStore, logger: silentLogger, onEvent: (e) => events.push(e), cluster: { leases, nodeId } });
  return { transport, checkpointStore, leases, pipeline, start };
}

/** Owners of every partition, from the nodes' status: exactly one running node each. */
async function runningOwners(nodes: WardenNode[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const node of nodes) for (const p of await node.status()) if (p.running) out.set(`${p.stage}/${p.partition}`, (out.get(`${p.stage}/${p.partition}`) ?? 0) + 1);
  return out;
}

test('three nodes share the partitions: each runs its share, every partition runs once, and together they apply every input once', async (t) => {
  const { start, pipeline } = setup('cl-share');
  const nodes = [await start('n1'), await start('n2'), await start('n3')];
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  await sleep(500);
  const owners = await runningOwners(nodes);
  t.is(owners.size, 8);
  t.true([...owners.values()].every((n) => n === 1));
  for (let i = 0; i < 60; i++) await nodes[i % 3]!.ingest({ key: `k${i % 12}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` });
  await Promise.all(nodes.map((n) => n.whenCaughtUp({ timeoutMs: 10_000 })));
  const totals = await Promise.all(Array.from({ length: 12 }, (_, k) => nodes[0]!.readState('counter', `k${k}`)));
  t.deepEqual(totals.map((s) => (s?.context as { count: number }).count), Array(12).fill(5));
  const status = (await nodes[0]!.status()).find((p) => p.stage === 'counter' && p.partition === 0)!;
  t.truthy(status.owner, 'status names the owner of every partition');
  t.is(pipeline.name, 'cl-share');
  // The owner's epoch is the running worker's fencing epoch, and renewals do not move it.
  await sleep(300);
  const again = (await nodes[0]!.status()).find((p) => p.stage === 'counter' && p.partition === 0)!;
  t.is(again.owner?.epoch, status.owner?.epoch, 'renewals do not change the owner epoch');
  const runner = nodes.find((n) => n.nodeId === status.owner?.node)!;
  const own = (await runner.status()).find((p) => p.stage === 'counter' && p.partition === 0)!;
  t.is(status.owner?.epoch, own.epoch, "the owner epoch is the running worker's epoch");
});

test('a node that stops hands its partitions to the others at once; nothing is lost or applied twice', async (t) => {
  const { start } = setup('cl-handoff', 2_000);
  const events: NodeEvent[] = [];
  const a = await start('a');
  const b = await start('b', events);
  t.teardown(() => b.stop());
  await sleep(500);
  for (let i = 0; i < 40; i++) await b.ingest({ key: `k${i % 8}`, type: 'add', payload: { amount: i }, id: `in-${i}` });
  await a.stop();
  for (let i = 40; i < 80; i++) await b.ingest({ key: `k${i % 8}`, type: 'add', payload: { amount: i }, id: `in-${i}` });
  await b.whenCaughtUp({ timeoutMs: 10_000 });
  const owners = await runningOwners([b]);
  t.is(owners.size, 8, 'b runs every partition');
  for (let k = 0; k < 8; k++) {
    const s = (await b.readState('counter', `k${k}`))?.context as { count: number; total: number };
    const amounts = Array.from({ length: 10 }, (_, j) => k + 8 * j);
    t.deepEqual({ count: s.count, total: s.total }, { count: 10, total: amounts.reduce((x, y) => x + y, 0) }, `k${k}`);
  }
  t.false(events.some((e) => e.type === 'lease-lost'));
});

test('coordinator invariant 1, worker invariant 17: a node whose lease store is cut stops writing; the others take over after the TTL and apply everything once', async (t) => {
  const { start, leases } = setup('cl-cut');
  const original = leases.renew.bind(leases);
  const cut: { node?: string } = {};
  leases.renew = (lease) => (lease.owner === cut.node ? Promise.reject(new Error('link down')) : original(lease));
  const eventsA: NodeEvent[] = [];
  const a = await start('a', eventsA);
  const b = await start('b');
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await sleep(300);
  for (let i = 0; i < 30; i++) await b.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` });
  await Promise.all([a.whenCaughtUp({ timeoutMs: 5_000 }), b.whenCaughtUp({ timeoutMs: 5_000 })]);
  cut.node = 'a'; // a can no longer renew: its leases run out
  await sleep(1_500);
  for (let i = 30; i < 60; i++) await b.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` });
  await b.whenCaughtUp({ timeoutMs: 10_000 });
  t.true(eventsA.some((e) => e.type === 'lease-lost'), 'a noticed');
  t.is((await runningOwners([a])).size, 0, 'a runs nothing');
  t.is((await runningOwners([b])).size, 8, 'b runs everything');
  for (let k = 0; k < 6; k++) t.is(((await b.readState('counter', `k${k}`))?.context as { count: number }).count, 10, `k${k}`);
});

test('coordinator invariant 1: partitions whose workers failed to start (their stream had no leader) start once it answers; nothing is lost', async (t) => {
  const { start, transport } = setup('cl-electing');
  let electing = true;
  let asked = 0;
  // The node's own check of its streams (the first ask) answers; the workers' starts then time out.
  transport.down = (stream) => electing && stream === 'cl-electing-counter' && ++asked > 1;
  const events: NodeEvent[] = [];
  const a = await start('a', events);
  t.teardown(() => a.stop());
  await sleep(300);
  t.is((await runningOwners([a])).size, 2, 'only the tally partitions run: every counter start failed');
  t.true(events.some((e) => e.type === 'lease-acquired' && e.partition.includes('.counter.')), 'the counter leases are held');
  electing = false;
  await sleep(600); // the next polls (every TTL / 2) start them
  t.is((await runningOwners([a])).size, 8, 'every partition runs');
  for (let i = 0; i < 24; i++) await a.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` });
  await a.whenCaughtUp({ timeoutMs: 10_000 });
  for (let k = 0; k < 6; k++) t.is(((await a.readState('counter', `k${k}`))?.context as { count: number }).count, 4, `k${k}`);
});

test.serial('a partition down because its lease ran out does not make whenCaughtUp reject: it is handed over, and the node catches up', async (t) => {
  const { pipeline, transport, checkpointStore, leases } = setup('cl-lease-gap');
  // Renewals answer slowly once `slow` is set, so a worker refused for its expired lease stays down a while before its partition is handed over.
  let slow = false;
  const slowLeases: LeaseStore = Object.assign(Object.create(leases) as LeaseStore, {
    renew: async (lease: Parameters<LeaseStore['renew']>[0]) => {
      if (slow) await sleep(400);
      return leases.renew(lease);
    },
  });
  const events: NodeEvent[] = [];
  const a = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger, onEvent: (e) => events.push(e), cluster: { leases: slowLeases, nodeId: 'a' } });
  t.teardown(() => a.stop());
  await sleep(300);
  for (let i = 0; i < 12; i++) await a.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` });
  await a.whenCaughtUp({ timeoutMs: 10_000 });
  // The loop is starved past the lease TTL (400 ms): no renewal runs, every lease's validUntil passes.
  slow = true;
  const until = Date.now() + 700;
  while (Date.now() < until) { /* a long GC pause, a stalled VM */ }
  for (let i = 12; i < 24; i++) await a.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` }); // refused writes: LEASE_LOST
  const caughtUp = a.whenCaughtUp({ timeoutMs: 10_000 });
  await sleep(100);
  slow = false;
  await caughtUp; // did not reject while partitions were down with LEASE_LOST
  t.true(events.some((e) => e.type === 'partition-down' && e.code === 'LEASE_LOST'), 'a partition went down with LEASE_LOST meanwhile');
  for (let i = 0; i < 100 && (await runningOwners([a])).size < 8; i++) await sleep(50); // the next reconciles take them again
  t.is((await runningOwners([a])).size, 8, 'every partition runs again');
  await a.whenCaughtUp({ timeoutMs: 10_000 });
  for (let k = 0; k < 6; k++) t.is(((await a.readState('counter', `k${k}`))?.context as { count: number }).count, 4, `k${k}`);
});

test.serial('coordinator invariant 6: a partition whose worker found its lease run out, though the renewal after the stall succeeded, runs again instead of staying down', async (t) => {
  const { pipeline, transport, checkpointStore } = setup('cl-lapsed');
  // The store keeps a lease 3 s after its last write, but a node may only count on 600 ms of it
  // (a large safety margin): a renewal that hangs 800 ms lets the workers' validity lapse while
  // the lease is still alive in the store, so the renewal, once it answers, succeeds.
  const leases = new InMemoryLeaseStore({ ttlMs: 3_000, safetyMarginMs: 2_400 });
  let gate: Promise<void> | undefined;
  const gated: LeaseStore = Object.assign(Object.create(leases) as LeaseStore, {
    renew: async (lease: Parameters<LeaseStore['renew']>[0]) => {
      if (gate) await gate;
      return leases.renew(lease);
    },
  });
  const events: NodeEvent[] = [];
  const a = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger, onEvent: (e) => events.push(e), cluster: { leases: gated, nodeId: 'a', renewEveryMs: 100 } });
  t.teardown(() => a.stop());
  await sleep(300);
  for (let i = 0; i < 12; i++) await a.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` });
  await a.whenCaughtUp({ timeoutMs: 10_000 });
  let open!: () => void;
  gate = new Promise((resolve) => (open = resolve));
  await sleep(800); // renewals hang: every worker's validity lapses
  for (let i = 12; i < 24; i++) await a.ingest({ key: `k${i % 6}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` }); // refused: LEASE_LOST
  for (let i = 0; i < 40 && !events.some((e) => e.type === 'partition-down' && e.code === 'LEASE_LOST'); i++) await sleep(25);
  gate = undefined;
  open(); // the renewals answer, and succeed
  for (let i = 0; i < 100 && ((await runningOwners([a])).size < 8 || (await a.status()).some((p) => p.down)); i++) await sleep(50);
  t.true(events.some((e) => e.type === 'partition-down' && e.code === 'LEASE_LOST'), 'workers stopped for their lapsed validity');
  t.deepEqual((await a.status()).filter((p) => p.down).map((p) => `${p.stage}/${p.partition}`), [], 'no partition stays down');
  t.is((await runningOwners([a])).size, 8, 'every partition runs again');
  await a.whenCaughtUp({ timeoutMs: 10_000 });
  for (let k = 0; k < 6; k++) t.is(((await a.readState('counter', `k${k}`))?.context as { count: number }).count, 4, `k${k}`);
});

test('coordinator invariant 5: a cluster node that stops writes each partition\'s final checkpoint before it releases the lease', async (t) => {
  const transport = new InMemoryTransport();
  const checkpointStore = new InMemoryCheckpointStore();
  const leases = new InMemoryLeaseStore({ ttlMs: 5_000 });
  // No checkpoint but the final one: whatever the stop writes is the handoff's.
  const pipeline = definePipeline({ name: 'cl-final', stages: [{ actor: counter, partitions: 2, checkpoint: { everyEvents: 1_000_000, intervalMs: 30_000 } }] });
  const events: NodeEvent[] = [];
  const a = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger, onEvent: (e) => events.push(e), cluster: { leases, nodeId: 'a' } });
  for (let i = 0; i < 10; i++) await a.ingest({ key: `k${i}`, type: 'add', payload: { amount: 1 } });
  await a.whenCaughtUp();
  const stage = pipeline.stage('counter');
  const logged = await Promise.all([0, 1].map((p) => transport.lastSeqOf(stage.stream, stage.subjectOf(p))));
  await a.stop();
  for (const p of [0, 1]) t.is((await checkpointStore.readMeta(stage.scopeOf(p)))?.seq, logged[p], `partition ${p}: the final checkpoint covers its log`);
  t.is(events.filter((e) => e.type === 'checkpoint').length, 2);
  t.false(events.some((e) => e.type === 'failed' || e.type === 'checkpoint-failed'), 'no worker failed its final checkpoint');
});
