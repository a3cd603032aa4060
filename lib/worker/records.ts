/**
 * What a partition worker writes to the log besides its checkpoint: the outputs of its inputs,
 * the records of its due timers and settled calls (appended to its own partition), and dead
 * letters. Each carries a deterministic ID.
 *
 * Invariants (tests cite them as "records invariant N"):
 *  1. Outputs carry `<stage>:<key>:<inputSeq>:<n>` (worker invariant 4); all outputs of an input
 *     are routed before any is published, so an input whose routing fails publishes nothing.
 *  2. A timer or call record carries an ID per incarnation (`...:t<id>:e<epoch>`,
 *     `...:c<id>:e<epoch>`) and a MAC under the partition's record key (`warden-mac` header of the
 *     envelope): `verify` accepts exactly the records an owner of this partition wrote, so a
 *     `warden.timer` or `warden.call` record published by anyone else is refused as `forged`.
 *  3. Nothing is appended once the worker is neither running nor stopping.
 *  4. With `outputs: 'after-checkpoint'`, outputs are held until the cut that covers them is
 *     written (worker invariant 10): `takeHeld` hands them to a cut, `release` publishes them
 *     once it is written, `restore` puts them back when it failed.
 *  5. A dead letter carries an ID per input (`dlq:<stage>:<seq>`, per output for an
 *     unpublishable one) and always fits the log (dead-letter invariant 1).
 *  6. What the log refuses for good is never retried: an output becomes an `unpublishable` dead
 *     letter, a call result an error result; a dead letter or a timer record that cannot be
 *     written fails the worker with the reason.
 */
import { activeTraceHeaders } from '../core/tracing.js';
import { createHmac } from 'node:crypto';
import type { EmittedEvent } from '../actor/actor-host.js';
import { callErrorOf, type CallResult } from '../actor/calls.js';
import { envelopeBody, type Envelope } from '../core/envelope.js';
import { ConfigError, describeError, ValidationError, WardenError } from '../core/errors.js';
import { CALL_EVENT, callRecordId, deadLetterMessageId, outputMessageId, TIMER_EVENT, timerRecordId } from '../core/ids.js';
import type { OutboxEntry } from '../checkpoint/checkpoint-store.js';
import type { StoredMessage } from '../transport/transport.js';
import { deadLetterOf, type DeadLetterReason } from './dead-letter.js';
import type { WorkerConfig } from './options.js';
import type { Outbox } from './outbox.js';

/** The entries of an input with no outputs: one shared array, frozen (nobody adds to it). */
const NO_ENTRIES = Object.freeze([]) as unknown as OutboxEntry[];

/** Header of a timer or call record that authenticates it (invariant 2). */
export const MAC_HEADER = 'warden-mac';

/** What the records need to know of their worker's incarnation. */
export interface RecordOwner {
  readonly epoch: number;
  readonly recordKey: string;
  /** Running or stopping (invariant 3). */
  readonly live: boolean;
  /** `<stage>/<partition>@<seq>` of the last written cut. */
  readonly snapshotId: string;
}

/** Why a dead letter is written, beyond the error. */
export interface DeadLetterCause {
  env?: Envelope | undefined;
  reason?: DeadLetterReason;
  /** For an output the log refused: its message ID. */
  outputId?: string;
}

/**
 * The MAC of a timer or call record under a partition's record key (invariant 2), as the worker
 * puts it in the envelope header `warden-mac`.
 */
export function macOf(recordKey: string, env: Envelope<unknown>): string {
  return createHmac('sha256', recordKey).update(`${env.id}\n${env.key}\n${env.type}\n${JSON.stringify(env.payload)}`).digest('hex').slice(0, 32);
}

/**
 * Invariant 2: throws a `ValidationError` (`forged`) unless `env` carries the MAC of partition
 * `where` under `recordKey` (undefined: the partition was never claimed, so no record is genuine).
 */
export function verifyRecord(recordKey: string | undefined, env: Envelope, where: string): void {
  const mac = env.headers[MAC_HEADER];
  if (recordKey === undefined || typeof mac !== 'string' || mac !== macOf(recordKey, env)) {
    throw new ValidationError('forged', `${env.type} record at seq ${env.seq ?? '?'} for ${env.key} was not written by an owner of ${where} (missing or wrong ${MAC_HEADER})`, {
      details: { type: env.type, key: env.key },
    });
  }
}

export class LogRecords {
  private held: OutboxEntry[] = [];
  deadLettered = 0;
  /** Trace context of the input being applied, carried by its outputs (worker invariant 19). */
  traceHeaders: Record<string, string> | undefined;

  constructor(
    private readonly c: WorkerConfig,
    private readonly outbox: Outbox,
    private readonly owner: RecordOwner,
  ) {}

  /**
   * Invariant 1: the outbox entries of the outputs of input `env`, routed; throws a `ConfigError`
   * naming the output when one cannot be routed (nothing is published then).
   */
  route(env: Envelope, outputs: readonly EmittedEvent[]): OutboxEntry[] {
    if (outputs.length === 0) return NO_ENTRIES;
    const { stage, routing } = this.c;
    const entries: OutboxEntry[] = [];
    for (let n = 0; n < outputs.length; n++) {
      const ev = outputs[n]!;
      let to;
      try {
        to = routing.route(ev, env.key);
      } catch (err) {
        throw new ConfigError('to', `of stage ${stage.name} could not route output ${n} (${JSON.stringify(ev.type)}) of input ${env.seq!}: ${describeError(err)}`, {
          cause: err,
          details: { stage: stage.name, seq: env.seq, output: n, type: ev.type },
        });
      }
      if (to === undefined) continue;
      const { type, ...payload } = ev;
      const id = outputMessageId(stage.name, env.key, env.seq!, n);
      const body = envelopeBody({ id, key: to.key, type, payload, headers: { ...this.traceHeaders, 'warden-source': `${this.c.where}@${env.seq!}`, 'warden-epoch': String(this.owner.epoch) }, ts: env.ts });
      entries.push({ subject: to.subject, msgId: id, body });
    }
    return entries;
  }

  /** Publishes routed outputs, or holds them for the next cut (invariant 4). */
  publish(entries: readonly OutboxEntry[]): void {
    if (this.c.stage.outputs === 'after-checkpoint') {
      for (const e of entries) this.held.push(e);
      return;
    }
    for (const e of entries) this.outbox.publish(e, { dedupe: this.c.persistOutputs });
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** Invariant 4: the held outputs, for a cut. */
  takeHeld(): OutboxEntry[] {
    const out = this.held;
    this.held = [];
    return out;
  }

  /** Invariant 4: the cut holding `entries` was written. */
  release(entries: readonly OutboxEntry[]): void {
    for (const e of entries) this.outbox.publish(e);
  }

  /** Invariant 4: the cut holding `entries` failed; they wait for the next one, first. */
  restore(entries: readonly OutboxEntry[]): void {
    if (entries.length > 0) this.held = [...entries, ...this.held];
  }

  /** Worker invariant 9: a due timer becomes a record in the partition's own stream. */
  timerFiring(key: string, id: string): void {
    this.appendRecord(timerRecordId(this.c.stage.name, key, id, this.owner.epoch), key, TIMER_EVENT, { timer: id });
  }

  /** Worker invariant 12: the result of a call becomes a record in the partition's own stream. */
  callResult(key: string, result: CallResult): void {
    this.appendRecord(callRecordId(this.c.stage.name, key, result.call, this.owner.epoch), key, CALL_EVENT, result);
  }

  /** Invariant 2: did an owner of this partition write this record? Throws `forged` if not. */
  verify(env: Envelope): void {
    verifyRecord(this.owner.recordKey, env, this.c.where);
  }

  /** Invariant 5: `msg` goes to the dead-letter stream with `err` as its reason. */
  deadLetter(msg: StoredMessage, err: unknown, cause: DeadLetterCause = {}): void {
    this.deadLettered++;
    const { env } = cause;
    const letter = deadLetterOf(msg, err, {
      stage: this.c.stage.name,
      partition: this.c.partition,
      snapshotId: this.owner.snapshotId,
      maxBodyBytes: this.c.deadLetterBodyBytes,
      ...(env ? { key: env.key, type: env.type } : {}),
      ...(cause.reason ? { reason: cause.reason } : {}),
      ...(cause.outputId ? { outputId: cause.outputId } : {}),
    });
    this.c.emit({ type: 'dead-letter', seq: msg.seq, reason: letter.reason, error: letter.error });
    this.c.logger.warn({ stage: this.c.stage.name, partition: this.c.partition, seq: msg.seq, reason: letter.reason, error: letter.error }, 'input dead-lettered');
    const msgId = cause.outputId === undefined ? deadLetterMessageId(this.c.stage.name, msg.seq) : `dlq:${cause.outputId}`;
    this.outbox.publish({ subject: this.c.routing.deadLetterSubject, msgId, body: JSON.stringify(letter) });
  }

  /**
   * Invariant 6: an entry the log refused for good (outbox invariant 6). An output becomes a dead
   * letter naming the input that produced it; a call result too large for the log becomes an
   * error result for the machine. Anything else (a dead letter, a timer record) cannot be written
   * at all: the error to fail the worker with is returned.
   */
  refused(entry: OutboxEntry, error: WardenError): WardenError | undefined {
    if (entry.subject === this.c.subject) {
      const env = JSON.parse(entry.body) as Envelope<CallResult>;
      if (env.type === CALL_EVENT && env.payload.ok) {
        const err = new WardenError(error.code, `the result of call ${env.payload.call} could not be stored in the log: ${error.message}`, { cause: error });
        this.callResult(env.key, { call: env.payload.call, ok: false, error: callErrorOf(err) });
        return undefined;
      }
    } else if (entry.subject !== this.c.routing.deadLetterSubject) {
      const seq = Number(/:(\d+):\d+$/.exec(entry.msgId)?.[1] ?? 0);
      const msg: StoredMessage = { stream: this.c.stage.stream, subject: this.c.subject, seq, data: new TextEncoder().encode(entry.body), headers: {}, timestampMs: 0 };
      const output = JSON.parse(entry.body) as Envelope; // the letter names the output's key and type, as its body holds it
      this.deadLetter(msg, error, { reason: 'unpublishable', outputId: entry.msgId, env: output });
      return undefined;
    }
    return new WardenError(error.code, `${this.c.where} cannot write ${entry.msgId} to the log: ${error.message}`, { cause: error, nonRetryable: true, details: { subject: entry.subject, msgId: entry.msgId } });
  }

  private appendRecord(msgId: string, key: string, type: string, payload: unknown): void {
    if (!this.owner.live) return; // invariant 3
    // The MAC leaves the headers out, so the record's trace context (worker invariant 19) can ride along.
    const env = { id: msgId, key, type, payload, headers: { ...activeTraceHeaders() } as Record<string, string>, ts: this.c.clock.now() };
    env.headers[MAC_HEADER] = macOf(this.owner.recordKey, env);
    this.outbox.publish({ subject: this.c.subject, msgId, body: envelopeBody(env) });
  }
}
