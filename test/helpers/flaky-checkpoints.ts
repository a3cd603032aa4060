/** An embedded checkpoint store whose writes fail while `failing` is set (a store outage). */
import { InMemoryCheckpointStore, type CheckpointStore } from '../../lib/index.js';

export class FlakyCheckpoints extends InMemoryCheckpointStore {
  failing = false;
  override write(...args: Parameters<CheckpointStore['write']>): ReturnType<CheckpointStore['write']> {
    return this.failing ? Promise.reject(new Error('checkpoint store unreachable')) : super.write(...args);
  }
}
