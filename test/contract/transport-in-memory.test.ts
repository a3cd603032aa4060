/** The Transport contract against the in-memory twin (real time, like the JetStream run). */
import { SystemClock } from '../../lib/core/clock.js';
import { InMemoryTransport } from '../../lib/transport/in-memory-transport.js';
import { transportContract } from './transport.contract.js';

transportContract('in-memory', () => {
  const transport = new InMemoryTransport({ clock: new SystemClock() });
  return Promise.resolve({ transport, cleanup: () => transport.close() });
});
