/**
 * A node cut off from one of its backends, through a TCP proxy of the test's own
 * (chaos/tcp-proxy.ts) between that node and the shared NATS or Redis. What happens is what
 * docs/deployment.md says: no split brain, no stale write accepted, nothing lost or applied twice.
 */
import test from 'ava';
import { startTcpProxy } from '../../chaos/tcp-proxy.js';
import { ClusterRig, NATS, REDIS } from '../helpers/cluster-procs.js';

const expectedCounts = (count: number, keys = 12): number[] => Array.from({ length: keys }, (_, k) => Math.floor(count / keys) + (k < count % keys ? 1 : 0));
const portOf = (url: string): number => Number(new URL(url).port);

test.serial('a node that loses NATS but not Redis stops writing once its leases run out; the other takes over; nothing is lost or applied twice', async (t) => {
  const proxy = await startTcpProxy({ target: { port: portOf(NATS) } });
  t.teardown(() => proxy.close());
  const rig = await ClusterRig.create(t, { ttlMs: 2_000 });
  const cut = await rig.start('cut', ['--nats', proxy.url('nats')]);
  await rig.start('ok');
  await rig.waitBalanced(['cut', 'ok']);
  const hadCut = [...(await rig.owners())].filter(([, o]) => o.owner === 'cut').length;
  t.true(hadCut > 0);
  let takenOver: Promise<number> | undefined;
  await rig.load(700, {
    perSec: 120,
    during: (i) => {
      if (i === 150) {
        proxy.blackhole(true); // NATS unreachable for 'cut'; Redis still is
        takenOver = rig.waitOwned(['ok']);
      }
    },
  });
  const takeoverMs = await takenOver!;
  const r = await rig.waitApplied(700);
  t.deepEqual(r.counts, expectedCounts(700));
  t.is(r.sinkOutputs, 700);
  t.is((await rig.staleOutputs()).stale, 0, 'no write of the cut node was accepted after the takeover');
  const claims = await Promise.all(Array.from({ length: 6 }, (_, p) => rig.store.readClaim(rig.pipeline.stage('counter').scopeOf(p))));
  const metas = await Promise.all(Array.from({ length: 6 }, (_, p) => rig.store.readMeta(rig.pipeline.stage('counter').scopeOf(p))));
  t.true(metas.every((m, p) => !m || m.epoch === claims[p]!.epoch), 'every checkpoint is the latest owner’s: Redis took no write from the cut node after the takeover');
  t.log(`the other node owned everything ${Math.round(takeoverMs)} ms after the cut (lease TTL ${rig.ttlMs} ms); the cut node had ${hadCut} partitions`);
  proxy.blackhole(false);
  cut.signal('SIGTERM');
  await cut.exited;
});

test.serial('a node that loses Redis but not NATS keeps its partitions and goes on from the log; its checkpoints resume when Redis returns; nothing is lost or applied twice', async (t) => {
  const proxy = await startTcpProxy({ target: { port: portOf(REDIS) } });
  t.teardown(() => proxy.close());
  const rig = await ClusterRig.create(t, { ttlMs: 2_000 });
  const cut = await rig.start('cut', ['--redis', proxy.url('redis')]);
  await rig.start('ok');
  await rig.waitBalanced(['cut', 'ok']);
  const ownersBefore = await rig.owners();
  await rig.load(700, {
    perSec: 120,
    during: (i) => {
      if (i === 150) proxy.blackhole(true);
      if (i === 550) proxy.blackhole(false);
    },
  });
  const r = await rig.waitApplied(700);
  t.deepEqual(r.counts, expectedCounts(700));
  t.is(r.sinkOutputs, 700);
  t.is((await rig.staleOutputs()).stale, 0);
  const ownersAfter = await rig.owners();
  t.deepEqual([...ownersAfter].map(([p, o]) => [p, o.owner]).sort(), [...ownersBefore].map(([p, o]) => [p, o.owner]).sort(), 'no partition changed hands: the leases are on NATS');
  t.false(cut.lines.some((l) => l.event === 'lease-lost'));
  // Its checkpoints resumed: each of its partitions' checkpoint reaches the end of its log.
  const mine = [...ownersAfter].filter(([p, o]) => o.owner === 'cut' && p.startsWith('counter.')).map(([p]) => Number(p.split('.')[1]));
  const stage = rig.pipeline.stage('counter');
  let behind = mine;
  for (let i = 0; i < 100 && behind.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const checks = await Promise.all(mine.map(async (p) => ((await rig.store.readMeta(stage.scopeOf(p)))?.seq ?? 0) >= (await rig.transport.lastSeqOf(stage.stream, stage.subjectOf(p)))));
    behind = mine.filter((_, i2) => !checks[i2]);
  }
  t.deepEqual(behind, [], 'the checkpoints of the node that lost Redis caught up with the log once Redis was back');
});
