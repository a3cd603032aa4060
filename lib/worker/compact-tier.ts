/**
 * The compact tier of a partition's keyed actors: an idle actor kept as its persisted snapshot,
 * as JSON text (a few hundred bytes), instead of a live xstate actor (several kilobytes). Its next
 * input rebuilds a live actor from that text, with no read of the checkpoint store.
 *
 * Worker invariant 22 (tests cite it so): a live actor without input for `compactMs`, or the
 * least recently active beyond `maxLiveActors`, is replaced by its persisted snapshot in memory
 * (not one with a guarded call in flight, nor one that has crashed or finished). Its next input
 * rebuilds it from that snapshot, synchronously, with no store read. A compact actor is still in
 * memory: it may be dirty, and a cut writes its snapshot; it is passivated (worker invariant 11)
 * like a live one. Compaction changes no state and no output (invariant 1 below). KeyedActors
 * (keyed-actors.ts) moves actors between the tiers; this holds the compact one.
 *
 * Invariants of the tier:
 *  1. An entry is exactly the persisted snapshot the live actor gave when it was compacted
 *     (`ActorHost.persisted()`, pending timers included): the actor rebuilt from it is the actor
 *     that was compacted (actor-host invariant 4).
 *  2. Entries are kept in the order they were compacted, which is the order of their last input
 *     (the least recently active live actor is compacted first), so the oldest is always first.
 *  3. A key is in at most one tier: live, compact, or neither (only in the store).
 *
 * @example
 * const tier = new CompactTier(clock.now());
 * tier.put('user-1', JSON.stringify(host.persisted()), lastInputAtMs);
 * tier.peek('user-1'); // its persisted snapshot, as JSON
 */

/** One compact actor: its persisted snapshot as JSON, and when it last had an input. */
class CompactActor {
  constructor(
    readonly json: string,
    /** Milliseconds since the tier was created (a small integer: no boxed number per entry). */
    readonly lastAt: number,
  ) {}
}

export class CompactTier {
  private readonly entries = new Map<string, CompactActor>();

  constructor(private readonly base: number) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The persisted snapshot (JSON) of `key`, left in place. */
  peek(key: string): string | undefined {
    return this.entries.get(key)?.json;
  }

  /** Adds `key` as the most recently compacted entry (invariant 2). */
  put(key: string, json: string, lastActiveMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, new CompactActor(json, lastActiveMs - this.base));
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Keys whose last input is at or before `cutoff`, oldest first (invariant 2). */
  *idleSince(cutoff: number): Generator<string> {
    const at = cutoff - this.base;
    for (const [key, entry] of this.entries) {
      if (entry.lastAt > at) return;
      yield key;
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
