/** The LeaseStore contract against `KvLeaseStore` on the shared NATS (`WARDEN_NATS_URL`), one bucket per test. */
import { randomBytes } from 'node:crypto';
import { KvLeaseStore } from '../../lib/adapters/nats/kv-leases.js';
import { silentLogger } from '../../lib/core/logger.js';
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
