/** The LeaseStore contract against `KvLeaseStore` on the shared NATS (`WARDEN_NATS_URL`), one bucket per test. */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { KvLeaseStore } from '../../lib/adapters/nats/kv-leases.js';
import { silentLogger } from '../../lib/core/logger.js';
import { ConfigError } from '../../lib/core/errors.js';
import { leaseStoreContract } from './lease-store.contract.js';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

leaseStoreContract('nats-kv', async () => {
  const bucket = `leases-${randomBytes(4).toString('hex')}`;
  const servers = process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
  const store = await KvLeaseStore.connect({ servers, bucket, ttlMs: 1_000, logger: silentLogger });
  return {
    store,
    pass: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    async cleanup() {
      await store.close();
      const nc = await connect({ servers });
      await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`).catch(() => undefined);
      await nc.close();
    },
  };
});

test('KvLeaseStore refuses replicas that is not an integer from 1 to 5, creating no bucket, and opens an existing bucket only with create: false', async (t) => {
  const servers = process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
  const bucket = `leases-${randomBytes(4).toString('hex')}`;
  for (const replicas of [0, 1.5, 6]) {
    const err = await t.throwsAsync(KvLeaseStore.connect({ servers, bucket, replicas, logger: silentLogger }), { instanceOf: ConfigError });
    t.is(err?.field, 'replicas');
  }
  const missing = await t.throwsAsync(KvLeaseStore.connect({ servers, bucket, create: false, logger: silentLogger }));
  t.like(missing, { code: 'STREAM_NOT_FOUND' });
  const nc = await connect({ servers });
  t.teardown(() => nc.close());
  await t.throwsAsync((await jetstreamManager(nc)).streams.info(`KV_${bucket}`), undefined, 'no bucket was created');
  const created = await KvLeaseStore.connect({ servers, bucket, ttlMs: 1_500, logger: silentLogger });
  const reader = await KvLeaseStore.connect({ servers, bucket, create: false, logger: silentLogger });
  t.is(reader.ttlMs, 1_500, 'an existing bucket is opened with its own TTL');
  await reader.close();
  await created.close();
  await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`);
});
