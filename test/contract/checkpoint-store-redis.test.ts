/**
 * The CheckpointStore contract against `RedisCheckpointStore` on the shared Redis
 * (`WARDEN_REDIS_URL`, default redis://127.0.0.1:6379; `npm test` makes sure it is up).
 * Every test has its own client and its own operator name, and clears its keys.
 */
import { SimulatedClock } from '../../lib/core/clock.js';
import { silentLogger } from '../../lib/core/logger.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';
import { checkpointStoreContract } from './checkpoint-store.contract.js';

checkpointStoreContract('redis', async () => {
  const clock = new SimulatedClock(5_000);
  const store = await RedisCheckpointStore.connect({ clock, logger: silentLogger, keyPrefix: 'warden-contract' });
  return { store, clock, cleanup: () => store.close() };
});
