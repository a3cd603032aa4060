/**
 * Sealing a checkpoint's actor entries, and staging the large ones ahead of the write script
 * (lua.ts invariant 6; redis-checkpoint-store.ts invariant 2).
 *
 * Invariants:
 *  1. Entries are sealed `SEAL_CHUNK` at a time with a turn of the event loop between chunks; every
 *     chunk but the last is sent ahead with one `HSET` to the write's own staging hash (the first
 *     also sets its TTL), so no block of a write is longer than one chunk.
 *  2. A staged command's failure is handled the moment it happens (kept as a value), so it never
 *     surfaces as an unhandled rejection while later chunks are sealed; it rejects the sealing.
 *  3. When the sealing fails (an entry that cannot be serialised, a staged command refused), what
 *     was staged is deleted (best effort; the TTL removes it otherwise) before the error is thrown.
 */
import type { Redis, Cluster } from 'ioredis';
import { nextTurn } from '../../core/clock.js';
import { WardenError } from '../../core/errors.js';
import type { ActorEntry } from '../../checkpoint/checkpoint-store.js';
import type { Json } from '../../core/envelope.js';
import { sealEntry } from '../../checkpoint/codec.js';

/** Actor entries sealed between two turns of the event loop, and staged by one HSET. */
const SEAL_CHUNK = 128;
/** A staging hash outlives a write that never ran by this long. */
const STAGING_TTL_MS = 120_000;

/** A staged command's failure, kept as a value until the sealing looks at it (invariant 2). */
class StagingFailure {
  constructor(readonly error: unknown) {}
}

function handled<T>(p: Promise<T>): Promise<T | StagingFailure> {
  return p.catch((err: unknown) => new StagingFailure(err));
}

/** What the write script is given: the last chunk inline; the others already staged. */
export interface SealedEntries {
  /** (key, sealed entry) pairs of the last chunk. */
  inline: string[];
  /** Whether anything was sent to the staging hash. */
  staged: boolean;
  /** Bytes of every sealed entry. */
  bytes: number;
}

/**
 * Seals `actors` as `ActorEntry`s (at `machineVersion`, `seq`) and stages all chunks but the last
 * to `staging` (see the file comment). `id` names the partition in errors.
 *
 * @example const { inline, staged, bytes } = await sealAndStage(client, staging, id, cp.actors, '1', 42);
 */
export async function sealAndStage(client: Redis | Cluster, staging: string, id: string, actors: Record<string, Json>, machineVersion: string, seq: number): Promise<SealedEntries> {
  const entries = Object.entries(actors);
  const pending: Array<Promise<unknown>> = [];
  let inline: string[] = [];
  let bytes = 0;
  try {
    for (let i = 0; i < entries.length; i++) {
      if (i > 0 && i % SEAL_CHUNK === 0) {
        pending.push(handled(client.hset(staging, ...inline)));
        if (pending.length === 1) pending.push(handled(client.pexpire(staging, STAGING_TTL_MS)));
        inline = [];
        await nextTurn();
      }
      const [key, snapshot] = entries[i]!;
      const sealed = sealActor(id, key, { key, snapshot, machineVersion, seq });
      bytes += sealed.length;
      inline.push(key, sealed);
    }
    for (const p of pending) {
      const r = await p;
      if (r instanceof StagingFailure) throw r.error;
    }
  } catch (err) {
    if (pending.length > 0) client.del(staging).catch(() => undefined); // invariant 3
    throw err;
  }
  return { inline, staged: pending.length > 0, bytes };
}

function sealActor(id: string, key: string, entry: ActorEntry): string {
  try {
    return sealEntry(entry);
  } catch (err) {
    throw new WardenError('VALIDATION', `checkpoint ${id} actor ${key} is not serialisable: ${(err as Error).message}`, {
      cause: err,
      nonRetryable: true,
      details: { scope: id, key },
    });
  }
}
