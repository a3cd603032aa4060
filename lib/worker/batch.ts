/**
 * A read batch decoded once, before it is applied: the envelopes the run loop hands to each
 * input's apply, and the keys whose checkpoint entries are read together.
 *
 * Worker invariant 20 (batch loading; `KeyedActors.prefetch`): the checkpoint entries of the keys
 * a read batch names that are not in memory are read together, all requests sent at once, before
 * the batch is applied. A prefetched entry is used by the key's next load only, within the batch
 * it was read for (the entry of a key not in memory changes only when this worker writes it, and
 * it writes only keys in memory); a later load reads the store again. A failed prefetch read fails
 * that load exactly as a read at load time would. A store with `readActorsOf` reads them in one
 * request (Redis: one `HMGET`); another store gets one `readActor` per key, all sent at once.
 */
import type { ActorEntry, CheckpointScope, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { decodeEnvelope, type Envelope } from '../core/envelope.js';
import { WardenError } from '../core/errors.js';
import type { StoredMessage } from '../transport/transport.js';

/**
 * The envelope of each message above `appliedSeq` (undefined for one that does not decode: its
 * apply decodes it again and dead-letters it, and for one already applied), and the keys they name.
 *
 * @example const { envs, keys } = decodeBatch(msgs, worker.appliedSeq);
 */
export function decodeBatch(msgs: readonly StoredMessage[], appliedSeq: number): { envs: Array<Envelope | undefined>; keys: Set<string> } {
  const envs: Array<Envelope | undefined> = [];
  const keys = new Set<string>();
  for (const m of msgs) {
    let env: Envelope | undefined;
    if (m.seq > appliedSeq) {
      try {
        env = decodeEnvelope(m.data, m.seq);
        keys.add(env.key);
      } catch {
        env = undefined;
      }
    }
    envs.push(env);
  }
  return { envs, keys };
}

/**
 * Reads the entries of `keys` together (invariant 20): one promise per key, each with a handler
 * attached (its failure belongs to the load that uses it, or is dropped with the batch).
 *
 * @example const reads = readEntries(store, scope, ['alice', 'bob']);
 */
export function readEntries(store: CheckpointStore, scope: CheckpointScope, keys: readonly string[]): Map<string, Promise<ActorEntry | undefined>> {
  const reads = new Map<string, Promise<ActorEntry | undefined>>();
  if (keys.length === 0) return reads;
  if (store.readActorsOf) {
    const batch = store.readActorsOf(scope, keys);
    keys.forEach((key, i) => {
      reads.set(key, batch.then((results) => {
        const r = results[i];
        if (r === undefined) throw new WardenError('CONFIG', `checkpoint store answered readActorsOf with ${results.length} results for ${keys.length} keys`, { nonRetryable: true });
        if (r.status === 'rejected') throw r.reason;
        return r.value;
      }));
    });
  } else {
    for (const key of keys) reads.set(key, store.readActor(scope, key));
  }
  for (const read of reads.values()) read.catch(() => undefined);
  return reads;
}
