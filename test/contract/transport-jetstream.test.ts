/** The Transport contract against NATS JetStream (`WARDEN_NATS_URL`, default nats://127.0.0.1:4222). */
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { transportContract } from './transport.contract.js';

transportContract('jetstream', async () => {
  const transport = await JetStreamTransport.connect({ name: 'warden-contract', waitOnFirstConnect: false });
  return { transport, cleanup: () => transport.close() };
});
