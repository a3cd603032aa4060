/**
 * `CallBreaker`: a guard's opossum circuit breaker, the transitions it reports, and its link to
 * the breakers of the same name on other nodes through a `BreakerStateStore`.
 *
 * Invariants:
 *  1. opossum runs with its own timeout off (`timeout: false`: it cannot cancel work; the guard's
 *     deadline does), without latency percentiles or snapshots (the guard keeps its own
 *     histogram; this leaves one interval timer, unref'd, for the rolling window).
 *  2. Every state change is reported once through `onTransition`, with its source: `local` (this
 *     breaker's own counts or reset timer) or `remote` (a state another node shared).
 *  3. Local changes are published to the shared store; changes applied from a remote state are
 *     not published again, so two nodes never echo a state back and forth. States this node
 *     published are ignored when they come back.
 *  4. A remote `open` opens the local breaker unless it is stale (published `resetTimeoutMs` or
 *     more ago by the publisher's clock: that breaker is half-open by now); a remote `closed`
 *     closes it; a remote `half-open` changes nothing (each node probes on its own). A state
 *     with a revision at or below the last one applied is ignored.
 *  5. After `close()`: the watcher is unsubscribed, opossum is shut down (its timers cleared),
 *     nothing more is reported, and `close()` resolves once the publishes it started settle.
 */
import CircuitBreaker from 'opossum';
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SharedBreakerState } from './breaker-state.js';
import type { ResolvedBreaker } from './options.js';
import type { BreakerState } from './types.js';

/** How a breaker tells its guard about a change. */
export type TransitionListener = (to: BreakerState, source: 'local' | 'remote', node?: string) => void;

/** What the breaker needs besides its options. */
export interface CallBreakerDeps<A> {
  name: string;
  /** Runs one attempt. */
  action: (attempt: A) => Promise<unknown>;
  /** True when an attempt's error must not count as a failure (opossum `errorFilter`). */
  ignore: (error: unknown, attempt: A) => boolean;
  onTransition: TransitionListener;
  clock: Clock;
  logger: Logger;
}

/**
 * @example
 * const breaker = new CallBreaker(resolved.breaker, { name, action: (a) => a.start(), ignore, onTransition, clock, logger });
 * await breaker.fire(attempt);
 */
export class CallBreaker<A> {
  private readonly cb: CircuitBreaker<[A], unknown>;
  private applyingRemote: { node: string } | undefined;
  private lastRevision = -Infinity;
  private unwatch: (() => void) | undefined;
  private readonly publishes = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly o: ResolvedBreaker,
    private readonly d: CallBreakerDeps<A>,
  ) {
    // Invariant 1.
    this.cb = new CircuitBreaker<[A], unknown>(d.action, {
      name: d.name,
      timeout: false,
      errorThresholdPercentage: o.errorThresholdPercentage,
      volumeThreshold: o.volumeThreshold,
      resetTimeout: o.resetTimeoutMs,
      rollingCountTimeout: o.rollingCountTimeoutMs,
      rollingCountBuckets: o.rollingCountBuckets,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // opossum passes the fired arguments after the error.
      errorFilter: (err: unknown, ...args: unknown[]) => d.ignore(err, args[0] as A),
    });
    this.cb.on('open', () => this.changed('open'));
    this.cb.on('halfOpen', () => this.changed('half-open'));
    this.cb.on('close', () => this.changed('closed'));
    if (o.shared) this.unwatch = o.shared.watch(d.name, (s) => this.onRemote(s));
  }

  /** Runs `attempt` through the breaker; rejects with opossum's open-breaker error when refused. */
  fire(attempt: A): Promise<unknown> {
    return this.cb.fire(attempt);
  }

  get state(): BreakerState {
    return this.cb.opened ? 'open' : this.cb.halfOpen ? 'half-open' : 'closed';
  }

  /** True for opossum's refusal of an attempt (open, or half-open with its probe in flight). */
  isRefusal(err: unknown): boolean {
    return err instanceof Error && CircuitBreaker.isOurError(err) && (err as { code?: unknown }).code === 'EOPENBREAKER';
  }

  /** True for opossum's refusal after `shutdown()`. */
  isShutdown(err: unknown): boolean {
    return err instanceof Error && CircuitBreaker.isOurError(err) && (err as { code?: unknown }).code === 'ESHUTDOWN';
  }

  /** Invariant 5. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.cb.shutdown();
    await Promise.allSettled([...this.publishes]);
  }

  private changed(to: BreakerState): void {
    if (this.closed) return;
    const remote = this.applyingRemote;
    if (remote !== undefined) {
      this.d.onTransition(to, 'remote', remote.node);
      return;
    }
    this.d.onTransition(to, 'local');
    this.publish(to); // invariant 3
  }

  private publish(state: BreakerState): void {
    const shared = this.o.shared;
    if (!shared) return;
    const p = shared
      .publish(this.d.name, { state, node: this.o.node, atMs: this.d.clock.now() })
      .catch((err: unknown) => this.d.logger.warn({ call: this.d.name, state, err: describeError(err) }, 'could not share the breaker state'))
      .finally(() => this.publishes.delete(p));
    this.publishes.add(p);
  }

  /** Invariant 4. */
  private onRemote(s: SharedBreakerState): void {
    if (this.closed || s.node === this.o.node) return;
    if (s.revision !== undefined) {
      if (s.revision <= this.lastRevision) return;
      this.lastRevision = s.revision;
    }
    if (s.state === 'open') {
      const age = this.d.clock.now() - s.atMs;
      if (age >= this.o.resetTimeoutMs) {
        this.d.logger.debug({ call: this.d.name, from: s.node, ageMs: age }, 'stale remote open state ignored');
        return;
      }
      if (!this.cb.opened) this.applyRemote(s.node, () => this.cb.open());
    } else if (s.state === 'closed') {
      if (!this.cb.closed) this.applyRemote(s.node, () => this.cb.close());
    }
  }

  private applyRemote(node: string, change: () => void): void {
    this.applyingRemote = { node };
    try {
      change();
    } finally {
      this.applyingRemote = undefined;
    }
  }
}
