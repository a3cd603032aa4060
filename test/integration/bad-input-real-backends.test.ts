/**
 * Bad input and bad configuration on the real servers (JetStream on 127.0.0.1:4222, Redis on
 * 6379): the suite of test/helpers/bad-input-suite.ts, as on the embedded runtime. Message IDs
 * travel in NATS headers and keys in Redis hashes here, which is where odd keys used to break.
 */
import { silentLogger } from '../../lib/index.js';
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';
import { badInputSuite } from '../helpers/bad-input-suite.js';

badInputSuite('nats+redis', async () => {
  const transport = await JetStreamTransport.connect({ servers: process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222', logger: silentLogger });
  const checkpointStore = await RedisCheckpointStore.connect({ url: process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379', keyPrefix: 'warden-bad-input', logger: silentLogger });
  return { transport, checkpointStore, close: async () => { await transport.close(); await checkpointStore.close(); } };
});
