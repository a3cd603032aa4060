/**
 * The BreakerStateStore port: circuit breakers of the same name on different nodes share their
 * state through it, so one node's discovery that a dependency is down protects all of them
 * (opossum keeps a breaker's state in one process only).
 *
 * Invariants every implementation keeps (a contract suite checks them):
 *  1. `publish(name, s)` makes `s` the shared state of `name`; every watcher of `name` (on any
 *     node, including the publisher's own) is told it, or a later state of `name`: states arrive in
 *     publish order and a watcher always ends on the latest, but one that falls behind a burst may
 *     skip the states in between (NATS KV keeps only the latest value; for a breaker only the latest
 *     matters). The in-memory twin delivers every state.
 *  2. A watcher is told the current state, if there is one, when it starts watching.
 *  3. States carry the publishing node and a time; a watcher ignores its own node's publishes
 *     if it wants to (the caller decides), and an older state never replaces a newer one for a
 *     watcher (`revision` grows with every publish of a name).
 *  4. After `close()` (or the unsubscribe returned by `watch`), no watcher is called again.
 */

/** A breaker's state as shared between nodes. */
export interface SharedBreakerState {
  state: 'open' | 'half-open' | 'closed';
  /** The node that published it. */
  node: string;
  /** Publisher's clock time of the change, ms. */
  atMs: number;
  /** Store revision of this state (grows per name); set by the store on delivery. */
  revision?: number;
}

export interface BreakerStateStore {
  publish(name: string, state: Omit<SharedBreakerState, 'revision'>): Promise<void>;
  /** Calls `onChange` with the current state (if any) and every later change; returns the unsubscribe. */
  watch(name: string, onChange: (state: SharedBreakerState) => void): () => void;
  close(): Promise<void>;
}
