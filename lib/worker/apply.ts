/**
 * The path of one input through a partition worker (worker invariants 1, 2, 15, 18, 19, 21):
 * decode and validate, a span, the keyed actor's step, routing, publishing or dead-lettering,
 * and the move of the position. Synchronous for an input to an actor in memory; a promise only
 * when a load, a crash, a rollback or a span makes it so.
 */
import type { LogPoint } from '../actor/actor-host.js';
import type { CallResult } from '../actor/calls.js';
import { validateCallRecord, validateInput, validateTimerRecord } from '../actor/validate.js';
import { decodeEnvelope, inputEvent, type Envelope } from '../core/envelope.js';
import { WardenError } from '../core/errors.js';
import { CALL_EVENT, TIMER_EVENT } from '../core/ids.js';
import { SpanKinds, startSpan, tracingOn } from '../core/tracing.js';
import type { OutboxEntry } from '../checkpoint/checkpoint-store.js';
import type { StoredMessage } from '../transport/transport.js';
import type { Checkpointer } from './checkpointer.js';
import type { KeyedActors } from './keyed-actors.js';
import { RejectedStep, type StepOutcome } from './keyed-types.js';
import type { Failpoint, WorkerConfig } from './options.js';
import type { LogRecords } from './records.js';

/** What the path of an input needs of its worker. */
export interface InputOwner {
  readonly c: WorkerConfig;
  readonly actors: KeyedActors;
  readonly records: LogRecords;
  readonly checkpointer: Checkpointer;
  readonly dead: boolean;
  readonly epoch: number;
  readonly appliedSeq: number;
  timersFired: number;
  failpoint(point: Failpoint, seq: number): void;
  /** The input at `seq` is done: the position moves to it. */
  advance(seq: number): void;
  fail(err: unknown): void;
}

/** An input's end: an escalation to fail with, or nothing; a promise when its apply was asynchronous. */
type Applied = WardenError | undefined | Promise<WardenError | undefined>;

/** One input, start to end; a promise only when its apply is asynchronous (keyed-actors invariant 21). */
export function applyMessage(w: InputOwner, msg: StoredMessage, decoded?: Envelope): Promise<void> | undefined {
  w.checkpointer.beginInput();
  let result: Applied;
  try {
    result = applyOne(w, msg, decoded);
  } catch (err) {
    w.checkpointer.endInput(false);
    throw err;
  }
  if (result instanceof Promise) return finishInput(w, msg, result);
  w.checkpointer.endInput(w.appliedSeq === msg.seq);
  return result ? escalate(w, result) : undefined;
}

async function finishInput(w: InputOwner, msg: StoredMessage, pending: Promise<WardenError | undefined>): Promise<void> {
  let escalation: WardenError | undefined;
  let moved = false;
  try {
    escalation = await pending;
    moved = w.appliedSeq === msg.seq;
  } finally {
    w.checkpointer.endInput(moved);
  }
  if (escalation) await escalate(w, escalation);
}

/** Invariant 15: the dead letter and the position reach the store first, then the worker fails. */
async function escalate(w: InputOwner, escalation: WardenError): Promise<void> {
  if (w.dead) return;
  await w.checkpointer.request(true);
  w.fail(escalation);
}

/**
 * Decode -> validate -> keyed actor -> log records -> advance. Gives an escalation to fail with.
 * `decoded`: the envelope of `msg` if the batch decoded it already (a failed decode is redone here, and dead-lettered).
 */
function applyOne(w: InputOwner, msg: StoredMessage, decoded?: Envelope): Applied {
  let env: Envelope | undefined;
  try {
    env = decoded ?? decodeEnvelope(msg.data, msg.seq);
    if (env.type === TIMER_EVENT) validateTimerRecord(env);
    else if (env.type === CALL_EVENT) validateCallRecord(env);
    else validateInput(w.c.stage.actor, env, msg.data.length);
    if (env.type === TIMER_EVENT || env.type === CALL_EVENT) w.records.verify(env);
  } catch (err) {
    w.records.deadLetter(msg, err, env ? { env } : {}); // a decoded input's letter names its key and type
    w.advance(msg.seq);
    return undefined;
  }
  // Invariant 19: a span per input, a child of the trace its envelope carries; outputs carry it on.
  const span = tracingOn() && startSpan(`process ${w.c.stage.name}`, SpanKinds.consumer, env.headers, () => ({ 'warden.stage': w.c.stage.name, 'warden.partition': w.c.partition, 'warden.seq': msg.seq, 'warden.type': env.type, 'warden.epoch': w.epoch }));
  if (!span) return applyEnvelope(w, msg, env);
  w.records.traceHeaders = span.headers();
  return (async () => {
    try {
      return await span.within(() => applyEnvelope(w, msg, env));
    } catch (err) {
      span.fail(err);
      throw err;
    } finally {
      w.records.traceHeaders = undefined;
      span.end();
    }
  })();
}

function applyEnvelope(w: InputOwner, msg: StoredMessage, env: Envelope): Applied {
  const at: LogPoint = { seq: msg.seq, timeMs: msg.timestampMs };
  const timer = env.type === TIMER_EVENT ? (env.payload.timer as string) : undefined;
  const call = env.type === CALL_EVENT ? (env.payload as unknown as CallResult) : undefined;
  const event = inputEvent(env);
  const outcome = w.actors.apply(env.key, at, (host) => {
    const outputs = timer !== undefined ? host.fireTimer(timer, at) : call !== undefined ? host.resolveCall(call, at) : host.handle(event, at);
    try {
      return w.records.route(env, outputs);
    } catch (err) {
      throw new RejectedStep(err); // invariant 2: rolled back, dead-lettered
    }
  }, timer !== undefined || call !== undefined);
  if (outcome instanceof Promise) return outcome.then((o) => settle(w, msg, env, at, o, timer, call));
  return settle(w, msg, env, at, outcome, timer, call);
}

/** What an input's outcome changes: publish or dead-letter, then advance. */
function settle(w: InputOwner, msg: StoredMessage, env: Envelope, at: LogPoint, outcome: StepOutcome<OutboxEntry[]>, timer: string | undefined, call: CallResult | undefined): Applied {
  switch (outcome.kind) {
    case 'dead':
      return undefined;
    case 'applied':
      if (timer !== undefined) w.timersFired++;
      w.records.publish(outcome.value);
      w.c.latency?.observe(w.c.clock.now() - msg.timestampMs); // invariant 18
      if (w.records.heldCount >= w.c.maxOutboxSize) void w.checkpointer.request(true); // held outputs are bounded too
      break;
    case 'rejected':
      w.records.deadLetter(msg, outcome.error, { env, reason: 'unroutable' });
      // The actor was rolled back to before it: the timer would wait for a firing that never comes,
      // and a successor would fire it, or issue the call, again.
      consumeRecord(w, env.key, timer, call);
      break;
    case 'escalated':
      return w.actors.recover(env.key, at).then(() => crashed(w, msg, env, escalatedInput(w.c.where, outcome.crash), timer, call, outcome.error));
    case 'poisoned':
      return crashed(w, msg, env, outcome.error, timer, call, undefined);
    case 'absent':
      break;
  }
  return advanceAfter(w, msg, undefined);
}

/** An input that crashed its actor for good: dead-lettered, and its timer or call dropped from the rebuilt actor. */
function crashed(w: InputOwner, msg: StoredMessage, env: Envelope, error: unknown, timer: string | undefined, call: CallResult | undefined, escalation: WardenError | undefined): WardenError | undefined {
  w.records.deadLetter(msg, error, { env });
  consumeRecord(w, env.key, timer, call);
  return advanceAfter(w, msg, escalation);
}

/** A dead-lettered timer firing or call result is consumed: dropped from the key's actor. */
function consumeRecord(w: InputOwner, key: string, timer: string | undefined, call: CallResult | undefined): void {
  if (timer !== undefined) w.actors.forget(key, (h) => h.forgetTimer(timer));
  if (call !== undefined) w.actors.forget(key, (h) => h.forgetCall(call.call));
}

function advanceAfter(w: InputOwner, msg: StoredMessage, escalation: WardenError | undefined): WardenError | undefined {
  if (w.dead) return undefined;
  w.failpoint('after-publish', msg.seq);
  if (w.dead) return undefined;
  w.advance(msg.seq);
  return escalation;
}

/** Worker invariant 15: the error a dead letter carries for the input that escalated. */
export function escalatedInput(where: string, crash: unknown): WardenError {
  return new WardenError('ACTOR_CRASHED', `the input crashed its actor and pushed ${where} past its restart intensity: dead-lettered before the partition escalates`, { cause: crash });
}
