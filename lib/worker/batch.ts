/**
 * A read batch decoded once, before it is applied (worker invariant 20): the envelopes the run
 * loop hands to each input's apply, and the keys whose checkpoint entries are read together.
 */
import { decodeEnvelope, type Envelope } from '../core/envelope.js';
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
