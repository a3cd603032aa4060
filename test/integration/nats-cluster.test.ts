/**
 * chaos/nats-cluster.ts: a 3-server JetStream cluster of the test's own, and what a stream with 3
 * replicas does when servers crash (SIGKILL): it keeps taking publishes with one server down,
 * elects another leader when its leader dies, and keeps every acknowledged message across the
 * crash of a server and of the whole cluster. Each test owns its cluster; they run concurrently.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { startNatsCluster, type NatsCluster } from '../../chaos/nats-cluster.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

async function ownCluster(t: ExecutionContext): Promise<NatsCluster> {
  const t0 = Date.now();
  const cluster = await startNatsCluster();
  t.teardown(() => cluster.destroy());
  t.log(`cluster of ${cluster.servers.length} ready in ${Date.now() - t0} ms`);
  return cluster;
}

/** A client that fails over between `servers` in the order given, reconnecting every 100 ms. */
async function client(t: ExecutionContext, servers: readonly string[]): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await connect({ servers: [...servers], noRandomize: true, maxReconnectAttempts: -1, reconnectTimeWait: 100, timeout: 2_000 });
  t.teardown(() => nc.close());
  return { nc, jsm: await jetstreamManager(nc, { timeout: 2_000 }) };
}

/** Body -> stream sequence of every acknowledged publish. */
type Acked = Map<string, number>;

/**
 * Publishes `i` for each i in [from, to) with msgId `m-<i>`, each retried until acknowledged
 * (the msgId makes a retry land once); rejects if one takes longer than `deadlineMs`. Resolves
 * with the time the first one took.
 */
async function publishAll(jsm: JetStreamManager, subject: string, from: number, to: number, acked: Acked, deadlineMs = 20_000): Promise<number> {
  const js = jsm.jetstream();
  let firstMs = 0;
  for (let i = from; i < to; i++) {
    const t0 = Date.now();
    for (;;) {
      try {
        const ack = await js.publish(subject, enc.encode(String(i)), { msgID: `m-${i}`, timeout: 1_000 });
        acked.set(String(i), ack.seq);
        break;
      } catch (err) {
        if (Date.now() - t0 > deadlineMs) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (i === from) firstMs = Date.now() - t0;
  }
  return firstMs;
}

/** Every acknowledged message is stored at its sequence with its body, and nothing else is. */
async function assertAllThere(t: ExecutionContext, jsm: JetStreamManager, stream: string, acked: Acked): Promise<void> {
  t.is((await jsm.streams.info(stream)).state.messages, acked.size);
  const missing: string[] = [];
  for (const [body, seq] of acked) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (dec.decode(m?.data) !== body) missing.push(`${body}@${seq}`);
  }
  t.deepEqual(missing, []);
}

/** Waits until every replica of `stream` is current (a restarted server has caught up). */
async function allReplicasCurrent(jsm: JetStreamManager, stream: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const replicas = (await jsm.streams.info(stream).catch(() => undefined))?.cluster?.replicas;
    if (replicas?.length === 2 && replicas.every((r) => r.current && !r.offline)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`replicas of ${stream} not current within ${timeoutMs} ms`);
}

test('a stream with 3 replicas keeps taking publishes with one server killed, and every acked message is there after it restarts', async (t) => {
  t.timeout(90_000);
  const cluster = await ownCluster(t);
  const probe = await client(t, cluster.urls);
  await probe.jsm.streams.add({ name: 'one_down', subjects: ['one_down.>'], num_replicas: 3 });
  const leader = await cluster.leaderOf('one_down');
  const victim = cluster.servers.find((s) => s.name !== leader)!;
  // The publisher is connected to the victim, so it has to fail over to the other two.
  const { nc, jsm } = await client(t, [victim.url, ...cluster.urls.filter((u) => u !== victim.url)]);
  t.is(nc.info?.server_name, victim.name);

  const acked: Acked = new Map();
  await publishAll(jsm, 'one_down.x', 0, 50, acked);
  await victim.kill();
  t.false(victim.running);
  const firstMs = await publishAll(jsm, 'one_down.x', 50, 100, acked);
  t.log(`first publish after killing a follower acknowledged in ${firstMs} ms`);
  t.true(firstMs < 10_000);
  t.not(nc.info?.server_name, victim.name);

  await victim.restart();
  await allReplicasCurrent(jsm, 'one_down');
  await assertAllThere(t, jsm, 'one_down', acked);
});

test('killing the leader of a stream with 3 replicas elects another leader among the survivors, and publishes continue', async (t) => {
  t.timeout(90_000);
  const cluster = await ownCluster(t);
  const { jsm } = await client(t, cluster.urls);
  await jsm.streams.add({ name: 'leader_kill', subjects: ['leader_kill.>'], num_replicas: 3 });
  const acked: Acked = new Map();
  await publishAll(jsm, 'leader_kill.x', 0, 20, acked);

  const old = await cluster.killLeaderOf('leader_kill');
  const t0 = Date.now();
  const next = await cluster.leaderOf('leader_kill', 30_000);
  t.log(`new leader ${next} of stream leader_kill elected ${Date.now() - t0} ms after killing ${old.name}`);
  t.not(next, old.name);
  t.true(cluster.server(next).running);
  await publishAll(jsm, 'leader_kill.x', 20, 40, acked);

  await old.restart();
  await allReplicasCurrent(jsm, 'leader_kill');
  await assertAllThere(t, jsm, 'leader_kill', acked);
});

test('killAll and restartAll keep every acknowledged message of a stream with 3 replicas', async (t) => {
  t.timeout(90_000);
  const cluster = await ownCluster(t);
  const before = await client(t, cluster.urls);
  await before.jsm.streams.add({ name: 'all_down', subjects: ['all_down.>'], num_replicas: 3 });
  const acked: Acked = new Map();
  await publishAll(before.jsm, 'all_down.x', 0, 100, acked);
  const pids = cluster.servers.map((s) => s.pid);
  await before.nc.close();

  await cluster.killAll();
  t.true(cluster.servers.every((s) => !s.running));
  const t0 = Date.now();
  await cluster.restartAll();
  t.log(`cluster takes replicated writes again ${Date.now() - t0} ms after restartAll`);
  t.true(cluster.servers.every((s, i) => s.running && s.pid !== pids[i]));

  const after = await client(t, cluster.urls);
  await cluster.leaderOf('all_down');
  await assertAllThere(t, after.jsm, 'all_down', acked);
  await publishAll(after.jsm, 'all_down.x', 100, 110, acked);
  t.is((await after.jsm.streams.info('all_down')).state.messages, 110);
});
