/** Bad input and bad configuration on the embedded runtime (the suite: test/helpers/bad-input-suite.ts). */
import { InMemoryCheckpointStore, InMemoryTransport } from '../../lib/index.js';
import { badInputSuite } from '../helpers/bad-input-suite.js';

badInputSuite('embedded', () => {
  const transport = new InMemoryTransport();
  const checkpointStore = new InMemoryCheckpointStore();
  return Promise.resolve({ transport, checkpointStore, close: async () => { await transport.close(); await checkpointStore.close(); } });
});
