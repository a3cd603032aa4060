/** The CheckpointStore contract against the in-memory twin (`InMemoryCheckpointStore`). */
import { SimulatedClock } from '../../lib/core/clock.js';
import { InMemoryCheckpointStore } from '../../lib/checkpoint/in-memory-checkpoint-store.js';
import { checkpointStoreContract } from './checkpoint-store.contract.js';

checkpointStoreContract('in-memory', () => {
  const clock = new SimulatedClock(5_000);
  const store = new InMemoryCheckpointStore({ clock });
  return Promise.resolve({ store, clock, cleanup: () => store.close() });
});
