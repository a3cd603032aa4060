/** The LeaseStore contract against `InMemoryLeaseStore`, on a simulated clock. */
import { InMemoryLeaseStore } from '../../lib/cluster/in-memory-leases.js';
import { SimulatedClock } from '../../lib/core/clock.js';
import { leaseStoreContract } from './lease-store.contract.js';

leaseStoreContract('in-memory', () => {
  const clock = new SimulatedClock(Date.now());
  const store = new InMemoryLeaseStore({ ttlMs: 1_000, clock });
  return Promise.resolve({ store, pass: (ms: number) => clock.advanceAsync(ms), cleanup: () => store.close() });
});
