/**
 * `warden/redis`: the production checkpoint store on Redis (standalone, Sentinel or Cluster).
 *
 * Invariants (detailed in `redis-checkpoint-store.ts`):
 *  1. `RedisCheckpointStore` keeps every invariant of the `CheckpointStore` port; the contract
 *     suite (`test/contract/checkpoint-store.contract.ts`) runs against it and the in-memory twin.
 *  2. Entries are sealed with the shared codec, so they verify across implementations.
 *  3. No credential appears in a log line or an error (`redactUrl`).
 *
 * @example
 * import { RedisCheckpointStore } from 'warden/redis';
 * const checkpointStore = await RedisCheckpointStore.connect({ url: process.env.WARDEN_REDIS_URL });
 */
export {
  RedisCheckpointStore,
  type RedisCheckpointStoreOptions,
  type RedisConnectionOptions,
  type RedisRetryOptions,
} from './redis-checkpoint-store.js';
