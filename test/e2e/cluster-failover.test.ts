/**
 * A cluster of node processes on the shared NATS and Redis (`warden worker` on the fixture
 * pipeline, exactly once: counter x6 -> tally). Each test runs its own pipeline and lease bucket.
 * Exactly-once is read back from the state: every key counted each of its inputs once, and the
 * sink received each output once (the stream's dedupe drops what a replay re-sends).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { ClusterRig } from '../helpers/cluster-procs.js';

/** `warden status` of the rig's pipeline, as JSON. */
function status(rig: ClusterRig, ...extra: string[]): { members: string[]; partitions: Array<{ stage: string; partition: number; owner?: string; epoch: number; lag: number }> } & { text?: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'status', 'test/fixtures/cluster-pipeline.ts', ...extra], {
    env: { ...process.env, WARDEN_TEST_PIPELINE: rig.name, WARDEN_LOG_LEVEL: 'silent' }, encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`warden status exited ${String(r.status)}: ${r.stderr}`);
  return extra.includes('--json') ? JSON.parse(r.stdout) as ReturnType<typeof status> : { members: [], partitions: [], text: r.stdout };
}

const expectedCounts = (count: number, keys = 12): number[] => Array.from({ length: keys }, (_, k) => Math.floor(count / keys) + (k < count % keys ? 1 : 0));

test.serial('three nodes under load; one is SIGKILLed: every partition is owned again and nothing is lost or applied twice', async (t) => {
  const rig = await ClusterRig.create(t, { ttlMs: 1_500 });
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => rig.start(id)));
  await rig.waitBalanced(['n1', 'n2', 'n3']);
  let ownedAgain: Promise<number> | undefined;
  await rig.load(600, {
    perSec: 150,
    during: (i) => {
      if (i === 300) {
        nodes[1]!.signal('SIGKILL');
        ownedAgain = rig.waitOwned(['n1', 'n3']); // measured from the kill, while the load goes on
      }
    },
  });
  const ownedAgainMs = await ownedAgain!;
  const r = await rig.waitApplied(600);
  t.deepEqual(r.counts, expectedCounts(600), 'every input applied once');
  t.is(r.sinkOutputs, 600, 'every output reached the sink once');
  t.log(`every partition of the killed node owned again ${Math.round(ownedAgainMs)} ms after the SIGKILL (lease TTL ${rig.ttlMs} ms)`);
  t.true(ownedAgainMs < rig.ttlMs + 10_000);
  // warden status shows it: the live nodes, every partition owned by one of them.
  const s = status(rig, '--json');
  t.deepEqual(s.members, ['n1', 'n3']);
  t.is(s.partitions.length, 7);
  t.true(s.partitions.every((p) => p.owner === 'n1' || p.owner === 'n3'), JSON.stringify(s.partitions));
  const table = status(rig).text!;
  t.regex(table, /2 nodes: n1, n3/);
  t.regex(table, /^stage\s+partition\s+owner\s+epoch\s+last seq\s+checkpoint\s+lag\s+checkpoint age$/m);
  t.is(table.trim().split('\n').length, 9, 'a header line, a column line and a line per partition');
});

test.serial('a node paused past its lease (SIGSTOP) is taken over; resumed (SIGCONT), it gets no write accepted and stops its partitions', async (t) => {
  const rig = await ClusterRig.create(t, { ttlMs: 1_500 });
  const [n1] = await Promise.all([rig.start('n1'), rig.start('n2')]);
  await rig.waitBalanced(['n1', 'n2']);
  const n1Had = [...(await rig.owners())].filter(([, o]) => o.owner === 'n1').map(([p]) => p);
  t.true(n1Had.length > 0, 'n1 owns some partitions');
  let takenOver: Promise<number> | undefined;
  await rig.load(900, {
    perSec: 150,
    during: async (i) => {
      if (i === 200) {
        n1.signal('SIGSTOP');
        takenOver = rig.waitOwned(['n2']);
      }
      if (i === 650) {
        await takenOver;
        n1.signal('SIGCONT'); // the zombie wakes up with inputs in hand and old leases
      }
    },
  });
  const takeoverMs = await takenOver!;
  const r = await rig.waitApplied(900);
  t.deepEqual(r.counts, expectedCounts(900), 'every input applied once');
  t.is(r.sinkOutputs, 900, 'every output reached the sink once');
  const { stale, epochsBySource } = await rig.staleOutputs();
  t.is(stale, 0, 'no output of a fenced epoch was stored after a newer one');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const lost = n1.lines.filter((l) => l.event === 'lease-lost').map((l) => l.partition);
  t.deepEqual([...new Set(lost)].sort(), n1Had.map((p) => `${rig.name}.${p}`).sort(), 'the zombie noticed every lease it lost and stopped those partitions');
  t.false(n1.lines.some((l) => l.event === 'lease-released' && n1Had.includes(String(l.partition).slice(rig.name.length + 1))), 'none was "handed over": there was nothing left to hand');
  await rig.waitOwned(['n1', 'n2']); // back as a member, it takes a share again, from the latest checkpoints
  t.log(`taken over ${Math.round(takeoverMs)} ms after SIGSTOP (lease TTL ${rig.ttlMs} ms); epochs per source: ${JSON.stringify([...epochsBySource])}`);
});

test.serial('two nodes started at the same moment never run one partition at once: the epochs of every partition’s writes only grow', async (t) => {
  const rig = await ClusterRig.create(t, { ttlMs: 1_500 });
  await Promise.all([rig.start('n1'), rig.start('n2')]);
  await rig.load(500, { perSec: 200 });
  const r = await rig.waitApplied(500);
  t.deepEqual(r.counts, expectedCounts(500));
  t.is(r.sinkOutputs, 500);
  const { stale } = await rig.staleOutputs();
  t.is(stale, 0);
  const meta = await Promise.all(Array.from({ length: 6 }, (_, p) => rig.store.readMeta(rig.pipeline.stage('counter').scopeOf(p))));
  const claims = await Promise.all(Array.from({ length: 6 }, (_, p) => rig.store.readClaim(rig.pipeline.stage('counter').scopeOf(p))));
  t.true(meta.every((m, p) => m !== undefined && m.epoch === claims[p]!.epoch), 'every checkpoint was written by its latest claim');
});

test.serial('a rolling restart of every node under load loses and duplicates nothing', async (t) => {
  const rig = await ClusterRig.create(t, { ttlMs: 1_500 });
  const live = new Map((await Promise.all(['a1', 'b1', 'c1'].map((id) => rig.start(id)))).map((p) => [p.id, p]));
  await rig.waitBalanced([...live.keys()]);
  const generations = [['a1', 'a2'], ['b1', 'b2'], ['c1', 'c2']] as const;
  let step = 0;
  await rig.load(900, {
    perSec: 150,
    during: async (i) => {
      if (i % 250 !== 100 || step >= generations.length) return;
      const [old, next] = generations[step++]!;
      const proc = live.get(old)!;
      proc.signal('SIGTERM'); // graceful: hands its partitions over
      const exit = await proc.exited;
      t.is(exit.code, 0, `${old} exits 0 after handing over`);
      live.delete(old);
      live.set(next, await rig.start(next));
    },
  });
  await rig.waitOwned([...live.keys()]);
  const r = await rig.waitApplied(900);
  t.deepEqual(r.counts, expectedCounts(900));
  t.is(r.sinkOutputs, 900);
  t.is((await rig.staleOutputs()).stale, 0);
});

test.serial('warden status of a cluster no node has started shows no node and creates no lease bucket (a node then picks its own lease TTL)', async (t) => {
  const rig = await ClusterRig.create(t, { ttlMs: 1_500 });
  const fresh = `${rig.name}-fresh`;
  const before = status(rig, '--json', '--cluster', fresh);
  t.deepEqual(before.members, []);
  t.true(before.partitions.every((p) => p.owner === undefined), JSON.stringify(before.partitions));
  const err = await t.throwsAsync(rig.transport.streamInfo(`KV_${fresh}-leases`));
  t.like(err, { code: 'STREAM_NOT_FOUND' }, 'the bucket was not created');
});
