/**
 * One direction of a proxied TCP connection (`tcp-proxy.ts`): the bytes read from one socket,
 * held for a sampled delay and written to the other, or dropped while the link is blackholed.
 *
 * Invariants:
 *  1. Bytes leave in the order they arrived: a chunk is due at `max(arrival + delay, due time
 *     of the chunk before)`, so jitter never reorders, and none leaves before it is due.
 *  2. With no delay and nothing queued a chunk is written at once (no timer).
 *  3. While the link is blackholed nothing is written: a chunk arriving, or falling due, then is
 *     dropped and counted.
 *  4. Backpressure: the source is paused while the destination's buffer is full or more than
 *     `HIGH_WATER` bytes wait for their time, and resumed when both have cleared.
 *  5. The source's end is passed on (`end()` on the destination) once everything before it has
 *     been written or dropped; after `destroy()` no timer is left and nothing is written.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** Bytes waiting for their time beyond which the source is paused (invariant 4). */
const HIGH_WATER = 1 << 20;

/** The state of the link, shared by every line of a proxy and changeable at any time. */
export class LinkConditions {
  latencyMs = 0;
  jitterMs = 0;
  blackholed = false;

  /** A delay in `[latencyMs - jitterMs, latencyMs + jitterMs]`, never below 0. */
  sampleDelay(): number {
    if (this.jitterMs === 0) return this.latencyMs;
    return Math.max(0, this.latencyMs + (Math.random() * 2 - 1) * this.jitterMs);
  }
}

/** Counts of one direction. */
export interface LineCounts {
  forwarded: number;
  dropped: number;
}

interface Pending {
  readonly chunk: Buffer;
  readonly due: number;
}

/** Reads `from`, writes `to`, under `link` (see the invariants). */
export class DelayLine {
  private readonly queue: Pending[] = [];
  private queuedBytes = 0;
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private awaitingDrain = false;
  private ended = false;
  private destroyed = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly link: LinkConditions,
    private readonly counts: LineCounts,
  ) {
    from.on('data', (chunk: Buffer) => this.arrive(chunk));
    from.once('end', () => {
      this.ended = true;
      this.flush();
    });
  }

  /** Stops for good: clears the timer and forgets what was queued (invariant 5). */
  destroy(): void {
    this.destroyed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private arrive(chunk: Buffer): void {
    if (this.destroyed) return;
    if (this.link.blackholed) {
      this.counts.dropped += chunk.length; // invariant 3
      return;
    }
    const delay = this.link.sampleDelay();
    if (delay === 0 && this.queue.length === 0) {
      this.write(chunk); // invariant 2
      return;
    }
    const due = Math.max(performance.now() + delay, this.lastDue); // invariant 1
    this.lastDue = due;
    this.queue.push({ chunk, due });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > HIGH_WATER) this.from.pause(); // invariant 4
    this.schedule();
  }

  private schedule(): void {
    const head = this.queue[0];
    if (this.timer || !head || this.destroyed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, Math.max(0, Math.ceil(head.due - performance.now())));
  }

  /** Writes every chunk that is due, passes an end on once nothing is left, schedules the rest. */
  private flush(): void {
    if (this.destroyed) return;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      this.write(chunk);
    }
    if (this.queue.length === 0 && this.ended) {
      if (!this.to.destroyed && this.to.writable) this.to.end(); // invariant 5
      return;
    }
    this.maybeResume();
    this.schedule();
  }

  private write(chunk: Buffer): void {
    if (this.link.blackholed || this.to.destroyed || !this.to.writable) {
      this.counts.dropped += chunk.length; // invariant 3
      return;
    }
    this.counts.forwarded += chunk.length;
    if (this.to.write(chunk) || this.awaitingDrain) return;
    this.awaitingDrain = true; // invariant 4
    this.from.pause();
    this.to.once('drain', () => {
      this.awaitingDrain = false;
      this.maybeResume();
    });
  }

  private maybeResume(): void {
    if (!this.destroyed && !this.awaitingDrain && this.queuedBytes <= HIGH_WATER && this.from.isPaused()) this.from.resume();
  }
}
