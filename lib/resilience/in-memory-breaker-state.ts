/**
 * `InMemoryBreakerStateStore`: the embedded twin of the `BreakerStateStore` port
 * (`breaker-state.ts`), for tests, simulations and single processes. Several stores built on one
 * `InMemoryBreakerBucket` model several nodes sharing one KV bucket. It keeps the port's
 * invariants 1-4 and behaves as `KvBreakerStateStore` does wherever the contract suite
 * (`test/contract/breaker-state.contract.ts`) looks:
 *
 *  1. The bucket holds the latest stored form (`breaker-state-codec.ts`) of each name and
 *     numbers publishes with one counter shared by all names, as a KV stream sequence does: a
 *     revision grows with every publish (port invariant 3).
 *  2. Delivery is never synchronous: each change is queued per watcher and handed over on a
 *     microtask, or `deliveryDelayMs` later on the injected clock; a watcher gets its queue in
 *     revision order and drops a revision at or below the last one it was given (port 1, 3).
 *     Unlike the KV store, a slow watcher never skips a superseded state.
 *  3. `watch` queues the current state first, if there is one (port invariant 2).
 *  4. Every value is decoded on delivery, as the KV store decodes what it reads: a malformed
 *     value (only `bucket.putRaw` can store one) is reported through `onError` (or logged) and
 *     skipped; a watcher that throws is logged (error). Either way the watcher stays subscribed.
 *  5. Unsubscribing or `close()` drops the watcher's queue and pending timers, and every
 *     delivery checks the watcher is still subscribed, so nothing is called afterwards (port
 *     invariant 4). After `close()`, `publish` rejects and `watch` throws `STOPPED`.
 */
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { BreakerStateStore, SharedBreakerState } from './breaker-state.js';
import { checkBreakerName, decodeSharedState, encodeSharedState } from './breaker-state-codec.js';

interface StoredEntry {
  readonly text: string;
  readonly revision: number;
}

/** What the bucket knows of a watcher: where to queue a change. */
interface BucketWatcher {
  offer(entry: StoredEntry): void;
}

/**
 * The shared storage of in-memory breaker states: pass one bucket to several
 * `InMemoryBreakerStateStore`s to model several nodes (invariant 1).
 *
 * @example
 * const bucket = new InMemoryBreakerBucket();
 * const nodeA = new InMemoryBreakerStateStore({ bucket });
 * const nodeB = new InMemoryBreakerStateStore({ bucket });
 */
export class InMemoryBreakerBucket {
  private readonly entries = new Map<string, StoredEntry>();
  private readonly watchers = new Map<string, Set<BucketWatcher>>();
  private lastRevision = 0;

  /**
   * Test hook: stores `text` as the value of `name` as-is (a malformed value, a future
   * version...), numbered and delivered like a publish.
   *
   * @example bucket.putRaw('payments', '{"state":"sideways"}');
   */
  putRaw(name: string, text: string): number {
    checkBreakerName(name);
    const entry = { text, revision: ++this.lastRevision };
    this.entries.set(name, entry);
    for (const w of [...(this.watchers.get(name) ?? [])]) w.offer(entry);
    return entry.revision;
  }

  /** @internal The latest entry of `name`. */
  current(name: string): StoredEntry | undefined {
    return this.entries.get(name);
  }

  /** @internal Registers a watcher of `name`; returns its remover. */
  subscribe(name: string, watcher: BucketWatcher): () => void {
    let set = this.watchers.get(name);
    if (!set) this.watchers.set(name, (set = new Set()));
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.watchers.get(name) === set) this.watchers.delete(name);
    };
  }
}

/**
 * Options of `InMemoryBreakerStateStore`.
 *
 * @example
 * const options: InMemoryBreakerStateStoreOptions = { bucket, clock, deliveryDelayMs: 20 };
 */
export interface InMemoryBreakerStateStoreOptions {
  /** The storage shared with other "nodes". @default a new bucket of its own */
  bucket?: InMemoryBreakerBucket;
  /** Clock of delayed deliveries. @default new SystemClock() */
  clock?: Clock;
  /** Delay of every delivery on `clock`; 0 delivers on a microtask. @default 0 */
  deliveryDelayMs?: number;
  /** Told of a malformed stored value (then skipped). @default logs it (warn) */
  onError?: (error: WardenError) => void;
  /** @default silentLogger */
  logger?: Logger;
}

interface Watch {
  readonly name: string;
  readonly onChange: (state: SharedBreakerState) => void;
  stopped: boolean;
  lastRevision: number;
  readonly timers: Set<TimerHandle>;
  unsubscribe: () => void;
}

/**
 * The in-memory `BreakerStateStore` (see the file comment for its invariants).
 *
 * @example
 * const bucket = new InMemoryBreakerBucket();
 * const a = new InMemoryBreakerStateStore({ bucket });
 * const b = new InMemoryBreakerStateStore({ bucket });
 * const off = b.watch('payments', (s) => console.log(s.node, s.state, s.revision)); // later: n1 open 1
 * await a.publish('payments', { state: 'open', node: 'n1', atMs: Date.now() });
 * off(); await a.close(); await b.close();
 */
export class InMemoryBreakerStateStore implements BreakerStateStore {
  readonly bucket: InMemoryBreakerBucket;
  private readonly clock: Clock;
  private readonly delayMs: number;
  private readonly onError: ((error: WardenError) => void) | undefined;
  private readonly logger: Logger;
  private readonly watches = new Set<Watch>();
  private closed = false;

  constructor(options: InMemoryBreakerStateStoreOptions = {}) {
    const delay = options.deliveryDelayMs ?? 0;
    if (!Number.isFinite(delay) || delay < 0) throw new ConfigError('deliveryDelayMs', `must be a number >= 0 (got ${delay})`);
    this.delayMs = delay;
    this.bucket = options.bucket ?? new InMemoryBreakerBucket();
    this.clock = options.clock ?? new SystemClock();
    this.onError = options.onError;
    this.logger = options.logger ?? silentLogger;
  }

  // async: a bad name or state is a rejection, never a synchronous throw.
  // eslint-disable-next-line @typescript-eslint/require-await
  async publish(name: string, state: Omit<SharedBreakerState, 'revision'>): Promise<void> {
    if (this.closed) throw stoppedError('publish', name);
    checkBreakerName(name);
    this.bucket.putRaw(name, encodeSharedState(name, state));
  }

  /** Throws `CONFIG` for a bad name and `STOPPED` after `close()`; delivers asynchronously (invariants 2, 3). */
  watch(name: string, onChange: (state: SharedBreakerState) => void): () => void {
    if (this.closed) throw stoppedError('watch', name);
    checkBreakerName(name);
    const w: Watch = { name, onChange, stopped: false, lastRevision: 0, timers: new Set(), unsubscribe: () => undefined };
    this.watches.add(w);
    const current = this.bucket.current(name);
    if (current) this.schedule(w, current);
    w.unsubscribe = this.bucket.subscribe(name, { offer: (entry) => this.schedule(w, entry) });
    return () => this.stop(w);
  }

  /** Invariant 5. Idempotent. */
  // eslint-disable-next-line @typescript-eslint/require-await
  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.watches]) this.stop(w);
  }

  private stop(w: Watch): void {
    if (w.stopped) return;
    w.stopped = true;
    w.unsubscribe();
    for (const h of w.timers) this.clock.clearTimeout(h);
    w.timers.clear();
    this.watches.delete(w);
  }

  private schedule(w: Watch, entry: StoredEntry): void {
    if (this.delayMs === 0) {
      queueMicrotask(() => this.deliver(w, entry));
      return;
    }
    const handle = this.clock.setTimeout(() => {
      w.timers.delete(handle);
      this.deliver(w, entry);
    }, this.delayMs);
    w.timers.add(handle);
  }

  private deliver(w: Watch, entry: StoredEntry): void {
    if (w.stopped || entry.revision <= w.lastRevision) return;
    w.lastRevision = entry.revision;
    let state: Omit<SharedBreakerState, 'revision'>;
    try {
      state = decodeSharedState(w.name, entry.text);
    } catch (err) {
      this.report(err as WardenError, { breaker: w.name, revision: entry.revision }, 'malformed breaker state ignored');
      return;
    }
    try {
      w.onChange({ ...state, revision: entry.revision });
    } catch (err) {
      this.logger.error({ breaker: w.name, revision: entry.revision, err }, 'breaker state watcher threw');
    }
  }

  private report(error: WardenError, context: Record<string, unknown>, msg: string): void {
    if (!this.onError) {
      this.logger.warn({ ...context, err: error }, msg);
      return;
    }
    try {
      this.onError(error);
    } catch (err) {
      this.logger.error({ ...context, err }, 'breaker state onError threw');
    }
  }
}

function stoppedError(op: string, name: string): WardenError {
  return new WardenError('STOPPED', `breaker state ${op} of "${name}" refused: the store is closed`, {
    nonRetryable: true, details: { op, breaker: name, reason: 'closed' },
  });
}
