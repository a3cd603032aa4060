/**
 * Taking a partition over: the atomic claim of a new epoch, the checkpoint to restore, and the
 * checks that the log still holds every input after it, at start and while running.
 *
 * Invariants (tests cite them as "worker invariant N", the numbers of lib/worker/worker.ts):
 *  5. Before anything is read or applied, the worker claims its epoch in the store (checkpoint
 *     port invariant 6): atomic, strictly increasing, and never reset by a lost, corrupt or
 *     cleared checkpoint, so any older incarnation still running is fenced at its next write.
 * 14. The log must hold every input after the checkpoint. At start: a log that ends before the
 *     checkpoint, or whose retention removed inputs of this partition after it, is reported
 *     (`log-truncated`) and stops the partition with `LOG_TRUNCATED` unless the stage accepts the
 *     loss (`checkpoint.onTruncatedLog: 'skip'`). While running: when the stream's first sequence
 *     has passed what the worker has read, inputs of the partition may have been removed before
 *     they were read: reported and decided the same way. The stream's first sequence is read at
 *     every tick, and at once on a gap in what the reader delivers while retention is within
 *     `window` sequences of the read position (so a stream far ahead of its retention costs nothing).
 */
import type { Claim, CheckpointMeta } from '../checkpoint/checkpoint-store.js';
import { WardenError } from '../core/errors.js';
import { fallBackToLog, isUnusableCheckpoint, type RestoreContext } from './replay.js';
import type { WorkerConfig } from './options.js';

/** What a claim restores. */
export interface Takeover {
  claim: Claim;
  meta: CheckpointMeta | undefined;
}

/**
 * Invariant 5: claims the partition, then reads its checkpoint; an unusable meta is replaced by
 * the log (replay invariant 4) and cleared, which keeps the claimed epoch.
 */
export async function claimPartition(c: WorkerConfig, ctx: RestoreContext): Promise<Takeover> {
  const scope = c.stage.scopeOf(c.partition);
  const claim = await c.store.claim(scope, c.epoch);
  try {
    return { claim, meta: await c.store.readMeta(scope) };
  } catch (err) {
    if (!isUnusableCheckpoint(err)) throw err;
    await fallBackToLog(ctx, undefined, err); // the whole partition from the log
    await c.store.clear(scope);
    return { claim, meta: undefined };
  }
}

/** The gap a truncated log leaves, and the error that stops the partition for it. */
function truncated(c: WorkerConfig, message: string, details: Record<string, unknown>): WardenError {
  return new WardenError('LOG_TRUNCATED', `${message}; the partition cannot go on without them (set checkpoint.onTruncatedLog 'skip' to accept the loss)`, {
    nonRetryable: true,
    details: { stream: c.stage.stream, ...details },
  });
}

/** Invariant 14 at start: throws `LOG_TRUNCATED`, or reports and returns (policy 'skip'). */
export async function checkLogCoversCheckpoint(c: WorkerConfig, seq: number): Promise<number> {
  const { stage } = c;
  const info = await c.transport.streamInfo(stage.stream);
  if (info.lastSeq < seq) {
    // The log ends before the checkpoint: the stream was recreated or restored from an older backup.
    throw new WardenError(
      'LOG_TRUNCATED',
      `checkpoint of ${c.where} is at seq ${seq} but stream ${stage.stream} ends at seq ${info.lastSeq}: the stream was recreated or restored from an older copy; ` +
        'new inputs would be skipped until its sequence passed the checkpoint. Clear the checkpoint or restore the stream',
      { nonRetryable: true, details: { stream: stage.stream, checkpointSeq: seq, lastSeq: info.lastSeq } },
    );
  }
  if (info.firstSeq <= seq + 1) return info.firstSeq;
  // The stream is shared by the stage's partitions: retention of the others' old messages is no loss
  // for a partition that has nothing stored after its checkpoint.
  if ((await c.transport.lastSeqOf(stage.stream, c.subject)) <= seq) return info.firstSeq;
  c.emit({ type: 'log-truncated', checkpointSeq: seq, firstSeq: info.firstSeq });
  const message =
    `checkpoint of ${c.where} is at seq ${seq} but stream ${stage.stream} now starts at seq ${info.firstSeq}: ` +
    `retention removed inputs ${seq + 1}..${info.firstSeq - 1} before they were applied`;
  if (stage.onTruncatedLog === 'skip') {
    c.logger.error({ stream: stage.stream, checkpointSeq: seq, firstSeq: info.firstSeq }, `${message}; skipping them (checkpoint.onTruncatedLog 'skip')`);
    return info.firstSeq;
  }
  throw truncated(c, message, { checkpointSeq: seq, firstSeq: info.firstSeq });
}

/** Invariant 14 while running. */
export class RetentionWatch {
  private firstSeq: number;
  /** The first sequence last reported (one report per overtaking). */
  private reported = 0;

  constructor(
    private readonly c: WorkerConfig,
    firstSeq: number,
    private readonly window: number,
  ) {
    this.firstSeq = firstSeq;
  }

  /**
   * After the reader delivered `firstDelivered` while everything up to `readSeq` had been read:
   * checks the stream at once if that left a gap while retention is near. Throws `LOG_TRUNCATED`
   * by the policy; returns otherwise (undefined, no promise, when there is nothing to check).
   */
  afterRead(readSeq: number, firstDelivered: number, gapInside: boolean): Promise<void> | undefined {
    if (firstDelivered <= readSeq + 1 && !gapInside) return undefined;
    if (this.firstSeq + this.window < readSeq) return undefined; // retention far behind: nothing can be lost
    return this.tick(readSeq);
  }

  /** At every tick: reads the stream's first sequence and compares it with `readSeq`. */
  async tick(readSeq: number): Promise<void> {
    const info = await this.c.transport.streamInfo(this.c.stage.stream);
    this.firstSeq = Math.max(this.firstSeq, info.firstSeq);
    if (this.firstSeq <= readSeq + 1 || this.firstSeq <= this.reported) return;
    this.reported = this.firstSeq;
    this.c.emit({ type: 'log-truncated', checkpointSeq: readSeq, firstSeq: this.firstSeq });
    const message =
      `partition ${this.c.where} has read stream ${this.c.stage.stream} up to seq ${readSeq} but retention now starts it at seq ${this.firstSeq}: ` +
      `inputs of the partition among ${readSeq + 1}..${this.firstSeq - 1} may have been removed before they were read`;
    if (this.c.stage.onTruncatedLog === 'skip') {
      this.c.logger.error({ stream: this.c.stage.stream, readSeq, firstSeq: this.firstSeq }, `${message}; going on without them (checkpoint.onTruncatedLog 'skip')`);
      return;
    }
    throw truncated(this.c, message, { readSeq, firstSeq: this.firstSeq });
  }
}
