/**
 * `KvBreakerStateStore` against real NATS: the BreakerStateStore contract
 * (`test/contract/breaker-state.contract.ts`, port invariants 1-4) on the shared server
 * (`WARDEN_NATS_URL`, default nats://127.0.0.1:4222) in one bucket of this run, deleted at the
 * end; then the adapter's own invariants: bucket creation (history, TTL), the TTL expiring
 * states, option and connection errors without credentials, owning the connection or not, a
 * watcher that could not start recovering, and breaker states across a server crash and restart
 * (a private server from `chaos/servers.ts`).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { breakerKey, KvBreakerStateStore, type KvBreakerStateConnectOptions } from '../../lib/adapters/nats/index.js';
import { startNatsServer } from '../../chaos/servers.js';
import { WardenError } from '../../lib/core/errors.js';
import type { Logger } from '../../lib/core/logger.js';
import type { SharedBreakerState } from '../../lib/resilience/breaker-state.js';
import { breakerStateContract } from '../contract/breaker-state.contract.js';

const URL = process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
const RUN = randomBytes(4).toString('hex');
const BUCKET = `warden-breakers-test-${RUN}`;
const buckets = new Set<string>([BUCKET]);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let admin: Promise<NatsConnection> | undefined;
/** One connection for setup and cleanup, shared by the tests (which run concurrently). */
function adminConnection(): Promise<NatsConnection> {
  admin ??= connect({ servers: URL });
  return admin;
}

/** Deletes the stream of `bucket` if it exists. */
async function deleteBucket(bucket: string): Promise<void> {
  const jsm = await jetstreamManager(await adminConnection());
  await jsm.streams.delete(`KV_${bucket}`).catch(() => undefined);
}

test.after.always(async () => {
  for (const b of buckets) await deleteBucket(b);
  if (admin) await (await admin).close();
});

function store(options: KvBreakerStateConnectOptions = {}): Promise<KvBreakerStateStore> {
  return KvBreakerStateStore.connect({ servers: URL, bucket: BUCKET, waitOnFirstConnect: false, name: 'warden-kv-breaker-test', ...options });
}

/** Waits until `pred()` holds, or throws naming `what` after `timeoutMs`. */
async function until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A logger keeping its warn lines. */
function recordingLogger(): Logger & { warns: Array<{ obj: object; msg: string | undefined }> } {
  const warns: Array<{ obj: object; msg: string | undefined }> = [];
  const logger = {
    warns,
    debug: () => undefined, info: () => undefined, error: () => undefined,
    warn: (obj: object, msg?: string) => {
      warns.push({ obj, msg });
    },
    child: () => logger,
  };
  return logger;
}

breakerStateContract('nats-kv', async () => {
  const stores: KvBreakerStateStore[] = [];
  const kv = await new Kvm(await adminConnection()).open(BUCKET);
  return {
    node: async (o = {}) => {
      const s = await store(o);
      stores.push(s);
      return s;
    },
    writeRaw: async (name, text) => {
      await kv.put(breakerKey(name), text);
    },
    everyChange: false,
    cleanup: async () => {
      for (const s of stores) await s.close();
    },
  };
});

// --- the bucket -------------------------------------------------------------------------------

test('invariant 1: a missing bucket is created with history 1, the TTL maxAgeMs and file storage; an existing one is used as it is, a difference logged', async (t) => {
  const bucket = `${BUCKET}-ttl`;
  buckets.add(bucket);
  const a = await store({ bucket, maxAgeMs: 60_000 });
  t.teardown(() => a.close());
  t.is(a.bucket, bucket);
  const status = await (await new Kvm(await adminConnection()).open(bucket)).status();
  t.like(status, { history: 1, ttl: 60_000, replicas: 1, storage: 'file' });
  const logger = recordingLogger();
  const b = await store({ bucket, maxAgeMs: 5_000, logger });
  t.teardown(() => b.close());
  t.like(logger.warns[0], { obj: { bucket, ttlMs: 60_000, wantedTtlMs: 5_000 } });
  t.like(await (await new Kvm(await adminConnection()).open(bucket)).status(), { ttl: 60_000 }, 'unchanged');
});

test('with no logger given, a bucket kept with another TTL is still reported: a warn line on stderr (the default logger)', async (t) => {
  const bucket = `${BUCKET}-deflog`;
  buckets.add(bucket);
  const a = await store({ bucket, maxAgeMs: 60_000 });
  t.teardown(() => a.close());
  const lib = new globalThis.URL('../../lib/adapters/nats/index.ts', import.meta.url).href;
  const script = `const { KvBreakerStateStore } = await import(${JSON.stringify(lib)});
const s = await KvBreakerStateStore.connect({ servers: ${JSON.stringify(URL)}, bucket: ${JSON.stringify(bucket)}, maxAgeMs: 5000, waitOnFirstConnect: false });
await s.close();`;
  const { stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, WARDEN_LOG_LEVEL: 'warn' } });
  const warn = stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; bucket?: string; ttlMs?: number }).find((l) => l.bucket === bucket);
  t.like(warn, { level: 40, ttlMs: 60_000 }, stderr);
});

test('the bucket TTL expires a state nobody publishes again: a new watcher is told nothing; a running one keeps what it had', async (t) => {
  const bucket = `${BUCKET}-expiry`;
  buckets.add(bucket);
  const a = await store({ bucket, maxAgeMs: 1_000 });
  t.teardown(() => a.close());
  const running: SharedBreakerState[] = [];
  a.watch('payments', (s) => running.push(s));
  await a.publish('payments', { state: 'open', node: 'node-a', atMs: 1 });
  await until(() => running.length === 1, 'the publish');
  const kv = await new Kvm(await adminConnection()).open(bucket);
  const deadline = Date.now() + 10_000;
  while ((await kv.status()).values > 0 && Date.now() < deadline) await sleep(100);
  t.is((await kv.status()).values, 0, 'the server removed the expired value');
  const late: SharedBreakerState[] = [];
  a.watch('payments', (s) => late.push(s));
  await sleep(300);
  t.deepEqual(late, []);
  t.is(running.length, 1);
});

// --- options and connections ------------------------------------------------------------------

test('bad options are ConfigErrors naming the field, before any connection', async (t) => {
  const cases: Array<[KvBreakerStateConnectOptions, RegExp]> = [
    [{ bucket: 'a.b' }, /^bucket /], [{ bucket: '' }, /^bucket /], [{ maxAgeMs: -1 }, /^maxAgeMs /], [{ history: 0 }, /^history /],
    [{ history: 65 }, /^history /], [{ replicas: 1.5 }, /^replicas /], [{ apiTimeoutMs: 0 }, /^apiTimeoutMs /],
    [{ storage: 'disk' as 'file' }, /^storage /], [{ watchRetry: { initialMs: 0 } }, /^watchRetry\.initialMs /], [{ servers: [] }, /^servers /],
  ];
  for (const [o, message] of cases) await t.throwsAsync(store(o), { instanceOf: WardenError, code: 'CONFIG', message }, JSON.stringify(o));
});

test('invariant 6: an unreachable server rejects with TRANSPORT_CLOSED, and neither the error nor its causes name the password', async (t) => {
  const err = await t.throwsAsync(KvBreakerStateStore.connect({ servers: 'nats://bob:s3cretpw@127.0.0.1:1', waitOnFirstConnect: false, connectTimeoutMs: 1_000 }),
    { instanceOf: WardenError, code: 'TRANSPORT_CLOSED' });
  let text = '';
  for (let e: unknown = err; e instanceof Error; e = e.cause) text += `${e.message}\n${e.stack ?? ''}\n${JSON.stringify((e as { details?: unknown }).details ?? {})}`;
  t.false(text.includes('s3cretpw'), text);
  t.true(text.includes('***@127.0.0.1:1'), text);
});

test('invariant 5: a store from fromConnection leaves the connection open on close; one from connect drains its own', async (t) => {
  const nc = await connect({ servers: URL });
  t.teardown(() => nc.close());
  const borrowed = await KvBreakerStateStore.fromConnection(nc, { bucket: BUCKET });
  const seen: SharedBreakerState[] = [];
  borrowed.watch('borrowed', (s) => seen.push(s));
  await borrowed.publish('borrowed', { state: 'open', node: 'n', atMs: 1 });
  await until(() => seen.length === 1, 'the publish');
  await borrowed.close();
  t.false(nc.isClosed());
  await nc.flush();
  t.pass('the borrowed connection still works');
  const owned = await store();
  const closed = (owned as unknown as { nc: NatsConnection }).nc.closed();
  await owned.close();
  await closed;
  t.pass('the owned connection is closed');
});

test('invariant 3: a watcher that cannot start (bucket gone) reports through onError, retries with backoff, and delivers once the bucket is back', async (t) => {
  const bucket = `${BUCKET}-gone`;
  buckets.add(bucket);
  const errors: WardenError[] = [];
  const a = await store({ bucket, onError: (e) => errors.push(e), watchRetry: { initialMs: 20, maxMs: 100 }, apiTimeoutMs: 1_000 });
  t.teardown(() => a.close());
  await deleteBucket(bucket);
  const seen: SharedBreakerState[] = [];
  a.watch('payments', (s) => seen.push(s));
  await until(() => errors.length >= 2, 'two failed starts');
  t.true(errors.every((e) => e instanceof WardenError && e.details.op === 'breakerState.watch'), errors.map((e) => e.message).join('; '));
  const b = await store({ bucket });
  t.teardown(() => b.close());
  await b.publish('payments', { state: 'open', node: 'node-b', atMs: 7 });
  await until(() => seen.length === 1, 'the state after the bucket came back');
  t.like(seen[0], { state: 'open', node: 'node-b', atMs: 7 });
});

// --- NATS down ---------------------------------------------------------------------------------

test('NATS down and back (SIGKILL + restart): publishes reject without hanging, watchers keep quiet, then states flow again both ways', async (t) => {
  t.timeout(90_000);
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  const options: KvBreakerStateConnectOptions = { servers: nats.url, reconnectTimeWaitMs: 100, reconnectJitterMs: 50, apiTimeoutMs: 1_000, watchRetry: { initialMs: 50, maxMs: 500 } };
  const errorsB: WardenError[] = [];
  const a = await KvBreakerStateStore.connect(options);
  const b = await KvBreakerStateStore.connect({ ...options, onError: (e) => errorsB.push(e) });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const [seenA, seenB] = [[] as SharedBreakerState[], [] as SharedBreakerState[]];
  a.watch('payments', (s) => seenA.push(s));
  b.watch('payments', (s) => seenB.push(s));
  await a.publish('payments', { state: 'open', node: 'node-a', atMs: 1 });
  await until(() => seenA.length === 1 && seenB.length === 1, 'the first state');

  await nats.kill();
  const t0 = Date.now();
  const err = await t.throwsAsync(a.publish('payments', { state: 'half-open', node: 'node-a', atMs: 2 }), { instanceOf: WardenError });
  t.true(err?.code === 'TIMEOUT' || err?.code === 'TRANSPORT_CLOSED', err?.code);
  t.true(Date.now() - t0 < 5_000, `publish failed in ${Date.now() - t0} ms`);
  const lateWhileDown: SharedBreakerState[] = [];
  b.watch('payments', (s) => lateWhileDown.push(s));
  await sleep(1_500);
  t.is(seenA.length, 1);
  t.is(seenB.length, 1);

  await nats.restart();
  // Publish until the reconnected store gets through, and every watcher is told.
  const deadline = Date.now() + 30_000;
  let delivered = false;
  for (let i = 3; !delivered && Date.now() < deadline; i++) {
    await b.publish('payments', { state: 'closed', node: 'node-b', atMs: i }).catch(() => undefined);
    await sleep(200);
    delivered = seenA.at(-1)?.node === 'node-b' && seenB.at(-1)?.node === 'node-b' && lateWhileDown.at(-1)?.node === 'node-b';
  }
  t.true(delivered, `after the restart: a ${JSON.stringify(seenA)}, b ${JSON.stringify(seenB)}, late ${JSON.stringify(lateWhileDown)}`);
  await a.publish('payments', { state: 'open', node: 'node-a', atMs: 100 });
  await until(() => seenB.at(-1)?.atMs === 100, 'b sees a again');
  for (const seen of [seenA, seenB, lateWhileDown]) {
    const revs = seen.map((s) => s.revision ?? 0);
    t.true(revs.every((r, i) => i === 0 || r > (revs[i - 1] ?? 0)), `revisions only grow: ${revs.join(',')}`);
  }
  t.log(`watcher failures reported while down: ${errorsB.length} (${[...new Set(errorsB.map((e) => e.code))].join(', ')})`);
});
