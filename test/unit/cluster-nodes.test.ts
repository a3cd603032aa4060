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

function setup(name: string) {
  const transport = new ElectingTransport(new InMemoryTransport());
  const checkpointStore = new InMemoryCheckpointStore();
  const leases = new InMemoryLeaseStore({ ttlMs: 400 });
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
});

test('a node that stops hands its partitions to the others at once; nothing is lost or applied twice', async (t) => {
  const { start } = setup('cl-handoff');
  const events: NodeEvent[] = [];
  const a = await start('a');
  const b = await start('b', events);
  t.teardown(() => b.stop());
  await sleep(300);
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
