/**
 * `RedisCheckpointStore` through Redis crashes: an own `redis-server` with AOF (`appendfsync
 * always`, chaos/servers.ts) is SIGKILLed and restarted while a writer loops checkpoint writes of
 * 200 actors each with increasing seqs. After every restart (and at the end) the stored
 * checkpoint must be consistent (store invariants 1 and 4 across a crash: never a torn write)
 * and must hold every write acknowledged before the crash (durability with `always`).
 *
 * Negative control (run by hand while writing this test): the same write done as separate
 * HSET / HDEL / meta commands instead of one script fails it in every run ("entry ... has seq
 * N+1 > meta.seq N" after a restart), so the checks do see a torn checkpoint when there is one.
 */
import test from 'ava';
import { startRedisServer } from '../../chaos/servers.js';
import type { Json } from '../../lib/core/envelope.js';
import { WardenError } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/logger.js';
import type { CheckpointScope, CheckpointWrite } from '../../lib/checkpoint/checkpoint-store.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';

const KEY_SPACE = 1_000;
const PER_WRITE = 200;
const PAD = 'p'.repeat(120);

/** The keys write `seq` sets: a window of 200 that moves by 130 each write. */
function writtenKeys(seq: number): string[] {
  return Array.from({ length: PER_WRITE }, (_, i) => `k${(seq * 130 + i) % KEY_SPACE}`);
}

/** Every 5th write also removes 20 keys just outside its window. */
function removedKeys(seq: number): string[] {
  if (seq % 5 !== 0) return [];
  return Array.from({ length: 20 }, (_, i) => `k${(seq * 130 + PER_WRITE + i) % KEY_SPACE}`);
}

function valueOf(seq: number, key: string): Json {
  return { seq, key, pad: PAD };
}

function writeOf(scope: CheckpointScope, seq: number): CheckpointWrite {
  const actors: Record<string, Json> = {};
  for (const k of writtenKeys(seq)) actors[k] = valueOf(seq, k);
  return { scope, seq, epoch: 1, machineVersion: '1', actors, removed: removedKeys(seq), outbox: [{ subject: 'out', msgId: `m${seq}`, body: String(seq) }] };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('SIGKILL and restart of Redis mid-writes: the checkpoint is never torn, acknowledged writes survive, failed writes reject as WardenErrors', async (t) => {
  t.timeout(90_000);
  const server = await startRedisServer({ appendonly: true });
  t.teardown(() => server.destroy());
  const scope: CheckpointScope = { operator: 'restart', partition: 0 };
  const opts = { url: server.url, logger: silentLogger, commandTimeoutMs: 2_000, maxRetriesPerRequest: 1, retry: { minDelayMs: 20, maxDelayMs: 200 } };
  // The writer's client does not resend a command cut off by the crash after it reconnects:
  // a resend would complete an interrupted write and hide a torn one from the checks.
  const writer = await RedisCheckpointStore.connect({ ...opts, redisOptions: { autoResendUnfulfilledCommands: false } });
  const checker = await RedisCheckpointStore.connect(opts);
  t.teardown(async () => {
    await writer.close();
    await checker.close();
  });

  const acked = new Set<number>();
  const errors: unknown[] = [];
  let maxAcked = 0;
  let seq = 0;
  let paused = false;
  let idle = true;
  let done = false;
  let slowestFailureMs = 0;
  let seqAtLastCrash = 0;

  const loop = (async () => {
    while (!done) {
      if (paused) {
        idle = true;
        await sleep(2);
        continue;
      }
      idle = false;
      const s = ++seq;
      const t0 = performance.now();
      try {
        await writer.write(writeOf(scope, s));
        acked.add(s);
        maxAcked = Math.max(maxAcked, s);
      } catch (err) {
        errors.push(err);
        slowestFailureMs = Math.max(slowestFailureMs, performance.now() - t0);
        await sleep(5);
      }
    }
    idle = true;
  })();

  /** The checks on what a reader sees now (the writer paused). */
  const check = async (label: string, ackedBeforeCrash: number): Promise<void> => {
    const meta = await checker.readMeta(scope);
    const entries = await checker.readActors(scope);
    if (!meta) {
      t.is(ackedBeforeCrash, 0, `${label}: no checkpoint although writes were acknowledged`);
      return;
    }
    // Durability: with appendfsync always, nothing acknowledged before the crash is lost.
    t.true(meta.seq >= ackedBeforeCrash, `${label}: meta.seq ${meta.seq} < acknowledged ${ackedBeforeCrash}`);
    t.is(meta.actorCount, entries.length, `${label}: actorCount`);
    t.deepEqual(meta.outbox, [{ subject: 'out', msgId: `m${meta.seq}`, body: String(meta.seq) }], `${label}: outbox of the meta's own write`);
    const byKey = new Map(entries.map((e) => [e.key, e]));
    // No entry from beyond the meta, and each holds exactly what its write wrote.
    for (const e of entries) {
      if (e.seq > meta.seq) t.fail(`${label}: entry ${e.key} has seq ${e.seq} > meta.seq ${meta.seq}`);
      if (JSON.stringify(e.snapshot) !== JSON.stringify(valueOf(e.seq, e.key))) t.fail(`${label}: entry ${e.key} does not hold what write ${e.seq} wrote`);
    }
    // The meta's write is there whole: all its keys at its seq, its removals gone.
    const missing = writtenKeys(meta.seq).filter((k) => byKey.get(k)?.seq !== meta.seq);
    t.deepEqual(missing, [], `${label}: torn checkpoint: keys of write ${meta.seq} missing or older`);
    t.true(removedKeys(meta.seq).every((k) => !byKey.has(k)), `${label}: keys removed by write ${meta.seq} still there`);
    // Every write that left a trace (acknowledged, or seen in an entry) is there whole: its keys
    // at its seq or later unless a later write removed them, its removals gone unless re-written.
    const traced = new Set<number>([...acked, ...entries.map((e) => e.seq)]);
    for (const s of traced) {
      if (s > meta.seq) continue;
      const lost = writtenKeys(s).filter((k) => {
        const e = byKey.get(k);
        if (e && e.seq >= s) return false;
        for (let r = s + 1; r <= meta.seq; r++) if (removedKeys(r).includes(k)) return false;
        return true;
      });
      if (lost.length > 0) t.fail(`${label}: write ${s} is only partly there (${acked.has(s) ? 'acknowledged' : 'seen'}): ${lost.length} keys missing or older, e.g. ${lost[0]}`);
      const kept = removedKeys(s).filter((k) => (byKey.get(k)?.seq ?? Infinity) < s);
      if (kept.length > 0) t.fail(`${label}: write ${s} is only partly there: ${kept.length} removed keys still at an older seq`);
    }
  };

  const pauseUntilIdle = async (): Promise<void> => {
    paused = true;
    while (!idle) await sleep(2);
  };

  for (let round = 1; round <= 6; round++) {
    await sleep(200 + round * 30);
    const ackedBeforeCrash = maxAcked;
    seqAtLastCrash = seq;
    await server.kill();
    // Odd rounds look at the state exactly as the crash left it (the writer stops at once, and
    // its client does not resend); even rounds let the writer keep trying through the outage.
    if (round % 2 === 1) paused = true;
    await sleep(150);
    await server.restart();
    await pauseUntilIdle();
    await check(`after restart ${round}`, ackedBeforeCrash);
    paused = false;
  }
  await sleep(200);
  await pauseUntilIdle();
  done = true;
  await loop;
  await check('at the end', maxAcked);

  t.log(`${seq} writes attempted, ${acked.size} acknowledged, ${errors.length} failed; final seq ${(await checker.readMeta(scope))?.seq}`);
  t.true(acked.size > 20, 'the writer made progress');
  t.true(errors.length > 0, 'some writes failed while the server was down');
  // Failed writes reject promptly (bounded by commandTimeoutMs and the reconnect budget), and the
  // same store writes again once the server is back: the client reconnected by itself.
  t.true(slowestFailureMs < 3_000, `a failed write took ${Math.round(slowestFailureMs)} ms to reject`);
  t.true(maxAcked > seqAtLastCrash, 'writes were acknowledged again after the last restart');
  for (const err of errors) {
    t.true(err instanceof WardenError, String(err));
    // A single writer's writes are applied in order, even when ioredis resends after a reconnect.
    t.true(['TRANSPORT_CLOSED', 'TIMEOUT'].includes((err as WardenError).code), (err as Error).message);
  }
});
