/**
 * `RedisCheckpointStore` against real Redis servers: the shared one (127.0.0.1:6379 or
 * `WARDEN_REDIS_URL`) and, for Cluster, an own single-node `redis-server --cluster-enabled yes`.
 * What the contract suite cannot show with one store: zombie fencing across two clients,
 * credentials kept out of errors and logs, the cluster-safe key layout (and the store working on
 * a real Cluster), byte-level compatibility with the shared codec, and driver errors translated.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort } from '../../chaos/servers.js';
import { SimulatedClock } from '../../lib/core/clock.js';
import { CheckpointFencedError, WardenError, describeError } from '../../lib/core/errors.js';
import type { Logger } from '../../lib/core/logger.js';
import { silentLogger } from '../../lib/core/logger.js';
import { openEntry, sealEntry } from '../../lib/checkpoint/codec.js';
import type { CheckpointScope } from '../../lib/checkpoint/checkpoint-store.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';
import { redactUrl } from '../../lib/core/redact.js';

const URL_ = process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379';

function uniqueScope(partition = 0): CheckpointScope {
  return { operator: `it-${randomBytes(5).toString('hex')}`, partition };
}

/** A logger that keeps every line it is given, as JSON. */
function capturingLogger(lines: string[]): Logger {
  const log = (level: string) => (obj: object, msg?: string) => {
    lines.push(JSON.stringify({ level, msg, ...obj }));
  };
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => logger };
  return logger;
}

/** CRC16/XMODEM, the function Redis Cluster hashes keys with. */
function crc16(buf: Buffer): number {
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key (hash tags included). */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key)) % 16384;
}

test('zombie fencing across two clients: the old owner is refused once the new one claims, and cannot touch its entries', async (t) => {
  const scope = uniqueScope();
  const zombie = await RedisCheckpointStore.connect({ url: URL_, logger: silentLogger });
  const shared = new Redis(URL_);
  const successor = new RedisCheckpointStore({ redis: shared, logger: silentLogger });
  t.teardown(async () => {
    await zombie.drop(scope);
    await zombie.close();
    await successor.close();
    shared.disconnect();
  });
  const base = { scope, machineVersion: '1', outbox: [] };
  await zombie.write({ ...base, seq: 10, epoch: 1, actors: { alice: { owner: 'zombie' }, bob: { owner: 'zombie' } } });
  // The successor claims: the stored checkpoint again under its new epoch.
  const meta = await successor.readMeta(scope);
  await successor.write({ ...base, seq: meta!.seq, epoch: meta!.epoch + 1, actors: {} });
  // The zombie, unaware, keeps writing with later seqs, racing the successor's own writes.
  const zombieWrites = Array.from({ length: 20 }, (_, i) => zombie.write({ ...base, seq: 11 + i, epoch: 1, actors: { alice: { owner: 'zombie', i } }, removed: ['bob'] }));
  const successorWrites = Array.from({ length: 20 }, (_, i) => successor.write({ ...base, seq: 11 + i, epoch: 2, actors: { carol: { owner: 'successor', i } } }));
  const zs = await Promise.allSettled(zombieWrites);
  const ss = await Promise.allSettled(successorWrites);
  for (const r of zs) {
    t.is(r.status, 'rejected');
    if (r.status === 'rejected') {
      t.true(r.reason instanceof CheckpointFencedError);
      t.like((r.reason as WardenError).details, { scope: `${scope.operator}/0`, epoch: 1, storedEpoch: 2 });
    }
  }
  t.true(ss.every((r) => r.status === 'fulfilled'));
  t.like(await successor.readMeta(scope), { epoch: 2, seq: 30, actorCount: 3 });
  t.deepEqual((await zombie.readActor(scope, 'alice'))?.snapshot, { owner: 'zombie' });
  t.deepEqual((await zombie.readActor(scope, 'bob'))?.snapshot, { owner: 'zombie' });
  // Closing a store leaves a client passed in open.
  await successor.close();
  t.is(await shared.ping(), 'PONG');
  await t.throwsAsync(successor.readMeta(scope), { message: /closed/ });
});

/** `{ k0: 0, k1: 1, ... }`: `n` actor snapshots. */
function numbered(n: number): Record<string, number> {
  const actors: Record<string, number> = {};
  for (let i = 0; i < n; i++) actors[`k${i}`] = i;
  return actors;
}

/** A store on a client of the test's own, and a fresh scope; both dropped when the test ends. */
function storeOfOwnClient(t: ExecutionContext): { scope: CheckpointScope; client: Redis; store: RedisCheckpointStore } {
  const scope = uniqueScope();
  const client = new Redis(URL_);
  const store = new RedisCheckpointStore({ redis: client, logger: silentLogger });
  t.teardown(async () => {
    await store.drop(scope);
    await store.close();
    client.disconnect();
  });
  return { scope, client, store };
}

/** Staging hashes of `scope` still in Redis (a large write sends its entries ahead to one). */
async function stagingKeys(client: Redis, store: RedisCheckpointStore, scope: CheckpointScope): Promise<string[]> {
  return client.keys(`${store.keysOf(scope).actors}:staging:*`);
}

/** Polls `ok` for up to 2 s (a failed write removes its staging hash without waiting for the reply). */
async function eventually(ok: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return ok();
}

test('a large checkpoint is written whole, in one step for readers, and leaves no staging hash behind', async (t) => {
  const { scope, client, store } = storeOfOwnClient(t);
  const actors: Record<string, { n: number }> = {};
  for (let i = 0; i < 1_000; i++) actors[`k${i}`] = { n: i };
  // A reader polling while the write stages its chunks sees the partition before it or after it.
  const seen = new Set<number>();
  let reading = true;
  const reader = (async () => {
    while (reading) seen.add((await store.readActors(scope)).length);
  })();
  await store.write({ scope, seq: 1, epoch: 1, machineVersion: '1', actors, outbox: [] });
  reading = false;
  await reader;
  seen.add((await store.readActors(scope)).length);
  t.deepEqual([...seen].filter((n) => n !== 0 && n !== 1_000), [], `actor counts a reader saw: ${[...seen].join(', ')}`);
  t.like(await store.readMeta(scope), { seq: 1, actorCount: 1_000 });
  t.like(await store.readActor(scope, 'k999'), { snapshot: { n: 999 }, seq: 1 });
  t.deepEqual(await stagingKeys(client, store, scope), []);
});

test('a refused large write changes nothing and removes what it staged', async (t) => {
  const { scope, client, store } = storeOfOwnClient(t);
  await store.write({ scope, seq: 5, epoch: 2, machineVersion: '1', actors: { kept: 1 }, outbox: [] });
  const actors = numbered(600);
  await t.throwsAsync(store.write({ scope, seq: 6, epoch: 1, machineVersion: '1', actors, outbox: [] }), { instanceOf: CheckpointFencedError });
  t.true(await eventually(async () => (await stagingKeys(client, store, scope)).length === 0), 'staging hash removed');
  t.like(await store.readMeta(scope), { seq: 5, epoch: 2, actorCount: 1 });
  t.deepEqual((await store.readActors(scope)).map((e) => e.key), ['kept']);
});

test('a large write whose last snapshot cannot be serialised changes nothing and removes what it staged', async (t) => {
  const { scope, client, store } = storeOfOwnClient(t);
  await store.write({ scope, seq: 5, epoch: 1, machineVersion: '1', actors: { kept: 1 }, outbox: [] });
  const actors: Record<string, unknown> = numbered(600);
  actors.bad = { n: 10n }; // BigInt: not JSON
  await t.throwsAsync(store.write({ scope, seq: 6, epoch: 1, machineVersion: '1', actors: actors as Record<string, number>, outbox: [] }), { code: 'VALIDATION', message: /actor bad is not serialisable/ });
  t.true(await eventually(async () => (await stagingKeys(client, store, scope)).length === 0), 'staging hash removed');
  t.like(await store.readMeta(scope), { seq: 5, actorCount: 1 });
  t.is(await store.readActor(scope, 'k0'), undefined);
});

test('a staged chunk that fails rejects the write, raises no unhandled rejection, and changes nothing', async (t) => {
  const { scope, client, store } = storeOfOwnClient(t);
  await store.write({ scope, seq: 5, epoch: 1, machineVersion: '1', actors: { kept: 1 }, outbox: [] });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));
  // The first staged chunk fails at once, while the later ones are still being sealed.
  const hset = client.hset.bind(client);
  (client as unknown as { hset: (...a: unknown[]) => Promise<number> }).hset = () => Promise.reject(new Error('staging refused'));
  const actors = numbered(1_000);
  const err = await t.throwsAsync(store.write({ scope, seq: 6, epoch: 1, machineVersion: '1', actors, outbox: [] }));
  t.regex(describeError(err), /staging refused/);
  (client as unknown as { hset: typeof hset }).hset = hset;
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(unhandled, []);
  t.like(await store.readMeta(scope), { seq: 5, actorCount: 1 });
  t.is(await store.readActor(scope, 'k0'), undefined);
});

test('credentials never reach an error or a log line: unreachable server', async (t) => {
  const port = await freePort();
  const url = `redis://warden:s3cret-pw@127.0.0.1:${port}`;
  const lines: string[] = [];
  const err = await t.throwsAsync(RedisCheckpointStore.connect({ url, connectTimeoutMs: 300, retry: { maxAttempts: 0 }, logger: capturingLogger(lines) }));
  t.true(err instanceof WardenError);
  t.is((err as WardenError).code, 'TRANSPORT_CLOSED');
  t.regex(err.message, new RegExp(`redis://\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
  t.regex(err.message, /ECONNREFUSED/);
  const everything = [err.message, String(err.stack), describeError(err), JSON.stringify((err as WardenError).details), JSON.stringify(err), ...lines].join('\n');
  t.false(everything.includes('s3cret'), everything);

  // A store that is not connected first: its write rejects (no hang) and says nothing either.
  const store = new RedisCheckpointStore({ url, connectTimeoutMs: 300, retry: { maxAttempts: 0 }, maxRetriesPerRequest: 0, logger: capturingLogger(lines) });
  t.teardown(() => store.close());
  const werr = await t.throwsAsync(store.write({ scope: uniqueScope(), seq: 1, epoch: 1, machineVersion: '1', actors: {}, outbox: [] }));
  t.true(werr instanceof WardenError);
  t.false([werr.message, describeError(werr), ...lines].join('\n').includes('s3cret'));
});

test('credentials never reach an error: wrong password on a live server (CONFIG, not retryable)', async (t) => {
  const u = new URL(URL_);
  const url = `redis://warden-nobody:s3cret-pw@${u.host}`;
  const lines: string[] = [];
  const err = await t.throwsAsync(RedisCheckpointStore.connect({ url, connectTimeoutMs: 1000, retry: { maxAttempts: 0 }, logger: capturingLogger(lines) }));
  t.true(err instanceof WardenError);
  t.is((err as WardenError).code, 'CONFIG');
  t.true((err as WardenError).nonRetryable);
  t.false([err.message, describeError(err), String(err.stack), ...lines].join('\n').includes('s3cret'));
  // The same password passed as an option is scrubbed too.
  const err2 = await t.throwsAsync(
    RedisCheckpointStore.connect({ url: `redis://${u.host}`, redisOptions: { username: 'warden-nobody', password: 's3cret-pw' }, connectTimeoutMs: 1000, retry: { maxAttempts: 0 }, logger: capturingLogger(lines) }),
  );
  t.is((err2 as WardenError).code, 'CONFIG');
  t.false([err2.message, describeError(err2), ...lines].join('\n').includes('s3cret'));
});

test('redactUrl hides the whole userinfo (as warden/nats does) and leaves other URLs alone', (t) => {
  t.is(redactUrl('redis://app:pw@cache:6379/0'), 'redis://***@cache:6379/0');
  t.is(redactUrl('rediss://:pw@cache:6380'), 'rediss://***@cache:6380');
  t.is(redactUrl('redis://justapassword@cache'), 'redis://***@cache');
  t.is(redactUrl('redis://u:p%40ss@cache'), 'redis://***@cache');
  t.is(redactUrl('redis://u:p@ss@cache:6379/1'), 'redis://***@cache:6379/1');
  t.is(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
  t.is(redactUrl('redis://cache:6379/0?name=a@b'), 'redis://cache:6379/0?name=a@b');
});

test('cluster-safe layout: both keys of a scope carry the same hash tag and hash to the same slot', (t) => {
  // CRC16 reference values from the Redis Cluster specification.
  t.is(keySlot('123456789'), 12739);
  t.is(keySlot('{user1000}.following'), keySlot('{user1000}.followers'));
  const store = new RedisCheckpointStore({ url: URL_, logger: silentLogger, keyPrefix: 'shop' });
  t.teardown(() => store.close());
  for (const operator of ['sessions', 'a/b', 'odd}name', 'odd{name', 'päge', '']) {
    for (const partition of [0, 7, 1023]) {
      const { meta, actors } = store.keysOf({ operator, partition });
      t.is(meta, `shop:{${operator}/${partition}}:meta`);
      t.is(actors, `shop:{${operator}/${partition}}:actors`);
      t.is(keySlot(meta), keySlot(actors), `${meta} and ${actors}`);
    }
  }
  t.throws(() => new RedisCheckpointStore({ url: URL_, keyPrefix: 'bad{prefix}', logger: silentLogger }), { message: /keyPrefix/ });
});

test('stored bytes are exactly what the shared codec seals, so entries verify in any implementation', async (t) => {
  const clock = new SimulatedClock(1_234);
  const store = await RedisCheckpointStore.connect({ url: URL_, clock, logger: silentLogger });
  const raw = new Redis(URL_);
  const scope = uniqueScope(3);
  t.teardown(async () => {
    await store.drop(scope);
    await store.close();
    raw.disconnect();
  });
  const snapshot = { value: 'active', context: { text: 'caf\u00e9 \ud83d\ude00 "q"' } };
  await store.write({ scope, seq: 7, epoch: 2, machineVersion: 'v1', actors: { alice: snapshot }, outbox: [{ subject: 's', msgId: 'm', body: '\u2603' }] });
  const { meta: metaKey, actors: actorsKey } = store.keysOf(scope);
  const meta = { scope, seq: 7, epoch: 2, machineVersion: 'v1', outbox: [{ subject: 's', msgId: 'm', body: '\u2603' }], timers: [], calls: [], actorCount: 1, writtenAtMs: 1_234 };
  t.is(await raw.hget(metaKey, 'body'), sealEntry(meta));
  t.is(await raw.hget(actorsKey, 'alice'), sealEntry({ key: 'alice', snapshot, machineVersion: 'v1', seq: 7 }));
  t.deepEqual(openEntry(await raw.hget(metaKey, 'body') ?? '', 'meta'), meta);
  t.deepEqual(await raw.hmget(metaKey, 'epoch', 'seq'), ['2', '7']);
  t.deepEqual(await raw.type(metaKey), 'hash');
});

test('tampering below the codec: altered fencing fields or a foreign value type are CHECKPOINT_CORRUPT, and a write changes nothing', async (t) => {
  const store = await RedisCheckpointStore.connect({ url: URL_, logger: silentLogger });
  const raw = new Redis(URL_);
  const scope = uniqueScope();
  t.teardown(async () => {
    await store.drop(scope);
    await store.close();
    raw.disconnect();
  });
  const { meta, actors } = store.keysOf(scope);
  await store.write({ scope, seq: 5, epoch: 1, machineVersion: '1', actors: { alice: 1 }, outbox: [] });
  await raw.hset(meta, 'seq', '4');
  const e1 = await t.throwsAsync(store.readMeta(scope));
  t.is((e1 as WardenError).code, 'CHECKPOINT_CORRUPT');
  t.regex(e1.message, /#meta/);
  await raw.hset(meta, 'seq', '5');
  // The actors key holding a string: the script fails before its first write.
  await raw.del(actors);
  await raw.set(actors, 'not a hash');
  const e2 = await t.throwsAsync(store.write({ scope, seq: 6, epoch: 1, machineVersion: '1', actors: { bob: 2 }, outbox: [] }));
  t.is((e2 as WardenError).code, 'CHECKPOINT_CORRUPT');
  t.like(await store.readMeta(scope), { seq: 5 });
  const e3 = await t.throwsAsync(store.readActors(scope));
  t.is((e3 as WardenError).code, 'CHECKPOINT_CORRUPT');
  t.true(e3.cause instanceof Error);
});

// --- Redis Cluster ---------------------------------------------------------------------------

async function startSingleNodeCluster(): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'warden-redis-cluster-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1', '--cluster-config-file', join(dir, 'nodes.conf')], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const admin = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null });
  admin.on('error', () => undefined); // refused until the server listens; retried below
  try {
    for (let i = 0; ; i++) {
      try {
        await admin.connect();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    for (let i = 0; i < 200; i++) {
      if (String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) return { port, stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('single-node cluster did not reach cluster_state:ok');
  } catch (err) {
    await stop();
    throw err;
  } finally {
    admin.disconnect();
  }
}

test('on Redis Cluster (an own single-node cluster): writes, fencing, reads and clear work, and both keys share a slot per CLUSTER KEYSLOT', async (t) => {
  const cluster = await startSingleNodeCluster();
  t.teardown(() => cluster.stop());
  const store = await RedisCheckpointStore.connect({ redisOptions: { cluster: [{ host: '127.0.0.1', port: cluster.port }] }, logger: silentLogger });
  t.teardown(() => store.close());
  const scope = uniqueScope(2);
  const actors: Record<string, number> = {};
  for (let i = 0; i < 2_000; i++) actors[`k${i}`] = i;
  await store.write({ scope, seq: 1, epoch: 1, machineVersion: '1', actors, outbox: [] });
  await store.write({ scope, seq: 2, epoch: 1, machineVersion: '1', actors: { k0: -1 }, removed: ['k1'], outbox: [] });
  await t.throwsAsync(store.write({ scope, seq: 3, epoch: 0, machineVersion: '1', actors: {}, outbox: [] }), { instanceOf: CheckpointFencedError });
  t.like(await store.readMeta(scope), { seq: 2, actorCount: 1_999 });
  t.is((await store.readActors(scope)).length, 1_999);
  t.like(await store.readActor(scope, 'k0'), { snapshot: -1, seq: 2 });

  const client = new Cluster([{ host: '127.0.0.1', port: cluster.port }]);
  t.teardown(() => client.disconnect());
  const { meta, actors: actorsKey } = store.keysOf(scope);
  const slot = await client.call('CLUSTER', 'KEYSLOT', meta);
  t.is(slot, await client.call('CLUSTER', 'KEYSLOT', actorsKey));
  t.is(slot, keySlot(meta));
  await store.clear(scope);
  t.is(await store.readMeta(scope), undefined);
});
