/**
 * Shared pieces of the worker interleaving tests (worker-*-interleavings.test.ts,
 * worker-log-retention.test.ts): stepping a rig's simulated clock, and a checkpoint policy that
 * leaves cuts to the test.
 */
import type { CheckpointPolicyOptions } from '../../lib/index.js';
import { settle, type Rig } from './worker-rig.js';

/** Advances the rig's simulated clock by `ms` in steps of `step`, letting the worker run between them. */
export async function advance(rig: Rig, ms: number, step = 250): Promise<void> {
  for (let left = ms; left > 0; left -= step) {
    await rig.clock.advanceAsync(Math.min(step, left));
    await settle();
  }
}

/**
 * Cuts only every 1000 inputs or every minute: within a test, what is in the store is what
 * `stop()`, a forced cut or the test itself put there.
 */
export const rareCuts: CheckpointPolicyOptions = { everyEvents: 1000, intervalMs: 60_000 };
