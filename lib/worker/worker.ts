/**
 * `PartitionWorker`: runs one partition of one stage: reads the partition's log in order,
 * applies each input to its keyed actor, publishes outputs, and checkpoints.
 *
 * Invariants (tests cite them as "worker invariant N"):
 *  1. Inputs are applied in stream-sequence order; an input at or below the applied position
 *     is skipped, so an input affects state at most once per cut.
 *  2. Every input reaches its actor or is dead-lettered with its reason; none is dropped.
 *  3. A checkpoint at seq S holds the state of every actor after all inputs <= S and none
 *     > S, plus every output of inputs <= S not yet acknowledged by the log (the outbox).
 *     Cuts are taken only between inputs: a checkpoint asked for while an input is being
 *     applied (across its awaits: loading, backoff, rebuild) is taken right after it.
 *  4. Outputs carry deterministic IDs `<stage>:<key>:<inputSeq>:<n>`; a replay republishes
 *     the same IDs and the stream's duplicate window drops the copies.
 *  5. Before applying anything, a starting worker writes a claim checkpoint with its epoch, so
 *     any older incarnation still running is fenced off from the store.
 *  6. A crashed actor is rebuilt from its checkpoint entry plus the replay of its own inputs
 *     since (or from its initial state, by the stage's `supervision.restartFrom`, or when the
 *     rebuilt state is not one of its `safeStates`), after the key's backoff; the input that
 *     crashed it is retried up to `maxCrashesPerInput` times, then dead-lettered with the error
 *     chain. More actor restarts than the stage's intensity allows fail the worker (escalation).
 *  7. A killed worker applies, publishes and writes nothing more, and its `done()` rejects
 *     with `KILLED`, so a supervisor sees an abnormal exit.
 *  8. The stage's guarantee decides when the position is committed relative to applying:
 *     - exactly-once: outputs carry deterministic IDs and every unacknowledged one is in the cut
 *       (the outbox), so a successor republishes exactly those and the next stream drops copies;
 *     - at-least-once: outputs go without IDs and a cut is written only after every output of
 *       the inputs it covers was acknowledged (nothing lost, a replay sends copies);
 *     - at-most-once: before a batch is applied, a cut labelled with the batch's last sequence is
 *       written, so no input is ever applied twice (a crash loses the batch in hand).
 *     Dead letters and timer firings always carry IDs and ride in the cut until acknowledged.
 *  9. Everything an actor reacts to is in the log: a due timer is appended to the partition's
 *     stream as a `warden.timer` record and fires only when that record is applied, so a replay
 *     fires it at the same point and never twice (lib/actor/timers.ts).
 * 10. With `outputs: 'after-checkpoint'`, an output is published only after a cut containing it
 *     was written.
 * 11. An idle actor (`idleMs`) is dropped from memory only when its latest state is in a written
 *     cut; its timers stay armed in the partition's timer wheel.
 * 12. A guarded call a machine starts (`fromCall`, lib/actor/calls.ts) is run by the worker with
 *     the idempotency key `<stage>:<key>:<callId>`, and its result is appended to the partition's
 *     stream as a `warden.call` record, delivered when applied. A call is issued at most once per
 *     incarnation, and a restored pending call is issued again only once the worker has applied
 *     everything the log held when it started (its result may be there).
 */
import { ActorHost, type EmittedEvent, type LogPoint } from './actor-host.js';
import { deadLetterOf } from './dead-letter.js';
import { KeyRestarts } from './key-restarts.js';
import { Outbox } from './outbox.js';
import { TimerWheel } from './timer-wheel.js';
import { callErrorOf, type CallRequest, type CallResult } from './calls.js';
import { fallBackToLog, isUnusableCheckpoint, loadActor, rebuildActor, type RestoreContext } from './replay.js';
import { validateCallRecord, validateInput, validateTimerRecord } from './validate.js';
import { sleep, type Clock, type TimerHandle } from '../core/clock.js';
import { decodeEnvelope, envelopeBody, type Envelope, type Json } from '../core/envelope.js';
import { ActorCrashedError, describeError, WardenError } from '../core/errors.js';
import { CALL_EVENT, callRecordId, deadLetterMessageId, outputMessageId, partitionOf, TIMER_EVENT, timerRecordId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { CheckpointScope, CheckpointStore, OutboxEntry, WriteResult } from '../checkpoint/checkpoint-store.js';
import type { Pipeline, ResolvedStage } from '../pipeline/define-pipeline.js';
import type { Reader, StoredMessage, Transport } from '../transport/transport.js';
import type { WorkerEvent, WorkerEventBody } from './worker-events.js';

/**
 * Points in a worker's life where a chaos test may crash it (by killing the worker from the
 * hook). Each is named for what has happened and what has not.
 */
export type Failpoint =
  | 'before-checkpoint-write'
  | 'after-checkpoint-write'
  | 'after-publish'
  | 'during-replay'
  | 'during-restore';

/** What a worker needs. */
export interface PartitionWorkerOptions {
  pipeline: Pipeline;
  stage: ResolvedStage;
  partition: number;
  transport: Transport;
  store: CheckpointStore;
  clock: Clock;
  logger: Logger;
  /** Fencing epoch. @default stored epoch + 1 */
  epoch?: number;
  /** Messages read per batch. @default 256 */
  batchSize?: number;
  /** Outputs awaiting acknowledgement before the worker waits. @default 4096 */
  maxOutboxSize?: number;
  /** Source of backoff jitter. @default Math.random */
  random?: () => number;
  onEvent?: (event: WorkerEvent) => void;
  /** Chaos testing: called at each failpoint; kill the worker from it to crash there. */
  failpoint?: (point: Failpoint, info: { stage: string; partition: number; seq: number }) => void;
}

/** Counters of one worker incarnation. */
export interface WorkerStats {
  appliedSeq: number;
  checkpointSeq: number;
  applied: number;
  deadLettered: number;
  crashes: number;
  checkpoints: number;
  checkpointFailures: number;
  /** Of the failures, writes that took longer than `checkpoint.timeoutMs`. */
  checkpointTimeouts: number;
  /** Clock time the last successful checkpoint was written; 0 before the first. */
  lastCheckpointAtMs: number;
  lastCheckpointDurationMs: number;
  lastCheckpointBytes: number;
  outbox: number;
  /** Outputs held until the next checkpoint (`outputs: 'after-checkpoint'`). */
  held: number;
  actors: number;
  /** Actors dropped from memory after `idleMs` without input. */
  passivated: number;
  /** Pending timers of the partition's actors. */
  timers: number;
  timersFired: number;
  /** Guarded calls started by the partition's actors and not settled in the log. */
  callsPending: number;
  /** Calls this incarnation issued. */
  callsIssued: number;
  epoch: number;
}


/**
 * @example
 * const worker = new PartitionWorker({ pipeline, stage, partition: 0, transport, store, clock, logger });
 * await worker.start();
 * await worker.stop(); // final checkpoint
 */
export class PartitionWorker {
  readonly scope: CheckpointScope;
  private readonly o: PartitionWorkerOptions;
  private readonly subject: string;
  private readonly actors = new Map<string, ActorHost>();
  private readonly dirty = new Set<string>();
  private readonly outbox: Outbox;
  /** Outputs waiting for the cut that covers their input (`outputs: 'after-checkpoint'`). */
  private held: OutboxEntry[] = [];
  private readonly wheel: TimerWheel;
  /** Keys in memory by last input, least recent first (passivation). */
  private readonly lastActive = new Map<string, number>();
  /** Replay start for keys removed (reached a final state) during this incarnation. */
  private readonly removedAt = new Map<string, number>();
  private readonly poisoned = new Set<number>();
  private readonly restarts: KeyRestarts;
  private readonly actorSince = new Map<string, number>();
  /** Invariant 12: pending calls by key (for the cut), calls issued by this incarnation, calls waiting for the log to be read. */
  private readonly callIndex = new Map<string, Set<string>>();
  private readonly issued = new Map<string, AbortController>();
  /** Issued calls still running, by key: aborted when the actor stops waiting for them. */
  private readonly inflight = new Map<string, Set<string>>();
  private readonly deferredCalls = new Map<string, { key: string; req: CallRequest }>();
  /** Keys whose pending calls a restored cut listed: loaded once the log is read up to `settledSeq`. */
  private reloadForCalls = new Set<string>();
  /** The partition's last sequence in the log when this incarnation started. */
  private settledSeq = 0;
  /** Invariant 8: how this stage's guarantee shapes publishing and cutting. */
  private readonly persistOutputs: boolean;
  private readonly settleBeforeCut: boolean;
  private readonly commitBeforeApply: boolean;
  private reader: Reader | undefined;
  private loop: Promise<void> | undefined;
  private epoch = 0;
  private restoredSeq = 0;
  private appliedSeq = 0;
  private checkpointSeq = 0;
  /** At-most-once: the position committed ahead of the inputs in hand. */
  private aheadSeq = 0;
  private sinceCheckpoint = 0;
  private cpInFlight: Promise<void> | undefined;
  private cpAgain = false;
  private cpEndedAt = -Infinity;
  private pauseTimer: TimerHandle = undefined;
  /** An input is between its first step and `advance` (invariant 3). */
  private applying = false;
  private cpDeferred = false;
  private cpDeferredForce = false;
  private timer: TimerHandle = undefined;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'killed' | 'failed' = 'new';
  /** Aborted when the worker is killed or fails: cuts short an actor's restart backoff. */
  private readonly ended = new AbortController();
  private failure: unknown;
  private readonly counters = {
    applied: 0, deadLettered: 0, crashes: 0, checkpoints: 0, checkpointFailures: 0, checkpointTimeouts: 0,
    lastCheckpointAtMs: 0, lastCheckpointDurationMs: 0, lastCheckpointBytes: 0, passivated: 0, timersFired: 0, callsIssued: 0,
  };

  constructor(options: PartitionWorkerOptions) {
    this.o = options;
    const { stage } = options;
    this.scope = stage.scopeOf(options.partition);
    this.subject = stage.subjectOf(options.partition);
    this.restarts = new KeyRestarts(stage.supervision, options.clock, options.random);
    this.outbox = new Outbox({ transport: options.transport, clock: options.clock, logger: options.logger, maxSize: options.maxOutboxSize ?? 4096 });
    this.wheel = new TimerWheel(options.clock, (key, id) => this.appendTimerFiring(key, id));
    this.persistOutputs = stage.guarantee === 'exactly-once' || stage.outputs === 'after-checkpoint';
    this.settleBeforeCut = stage.guarantee === 'at-least-once' && !this.persistOutputs;
    this.commitBeforeApply = stage.guarantee === 'at-most-once';
  }

  /** Restores from the last checkpoint, fences older incarnations, then processes in the background. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new WardenError('STOPPED', `partition worker ${this.where} was already started`);
    this.state = 'starting';
    const t0 = this.o.clock.now();
    try {
      const meta = await this.claim();
      this.failpoint('during-restore', meta?.seq ?? 0);
      // A kill while the claim was in flight keeps the worker dead (invariant 7).
      if ((this.state as string) !== 'starting') throw this.killedError();
      this.restoredSeq = this.appliedSeq = this.checkpointSeq = this.aheadSeq = meta?.seq ?? 0;
      await this.checkLogCoversCheckpoint();
      if ((this.state as string) !== 'starting') throw this.killedError();
      const outbox = meta?.outbox ?? [];
      this.reader = this.o.transport.openReader(this.o.stage.stream, { filterSubject: this.subject, startSeq: this.appliedSeq + 1 });
      for (const entry of outbox) this.outbox.publish(entry);
      for (const c of meta?.calls ?? []) {
        let ids = this.callIndex.get(c.key);
        if (!ids) this.callIndex.set(c.key, (ids = new Set()));
        ids.add(c.id);
        this.reloadForCalls.add(c.key);
      }
      this.settledSeq = await this.o.transport.lastSeqOf(this.o.stage.stream, this.subject);
      if ((this.state as string) !== 'starting') throw this.killedError();
      this.state = 'running';
      this.wheel.load(meta?.timers ?? []); // once running: an overdue timer fires at once, and its firing is appended
      this.cpEndedAt = this.o.clock.now(); // the claim was a write: minPauseMs counts from it
      this.armTimer();
      this.emit({ type: 'restored', seq: this.appliedSeq, epoch: this.epoch, outbox: outbox.length, timers: this.wheel.size, durationMs: this.o.clock.now() - t0 });
    } catch (err) {
      // Nothing of a failed start outlives it: no timer, no reader, no retried publish.
      if ((this.state as string) !== 'killed') this.state = 'failed';
      this.failure = err;
      this.clearTimers();
      this.ended.abort();
      void this.reader?.close();
      throw err;
    }
    this.loop = this.run().catch((err: unknown) => this.fail(err));
  }

  /** Killed or failed: applies, publishes and writes nothing more. */
  private get dead(): boolean {
    return this.state === 'killed' || this.state === 'failed';
  }

  private get where(): string {
    return `${this.o.stage.name}/${this.o.partition}`;
  }

  private killedError(): WardenError {
    return new WardenError('KILLED', `partition worker ${this.where} was killed`);
  }

  /** Resolves when the worker ends; rejects with the error that made it fail. */
  async done(): Promise<void> {
    await this.loop;
    if (this.state === 'failed') throw this.failure;
    if (this.state === 'killed') throw this.killedError();
  }

  /** Graceful stop: stop reading, finish the input in hand, publish, write a final checkpoint. */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    this.o.clock.clearTimeout(this.timer);
    await this.reader?.close();
    this.outbox.interruptDrain(); // a loop waiting for the log to take outputs finishes the input in hand instead
    await this.loop;
    if ((this.state as string) !== 'stopping') return; // failed or killed meanwhile
    await this.cpInFlight;
    await this.checkpoint({ force: true }); // its outbox carries what the log has not acknowledged yet
    if ((this.state as string) !== 'stopping') return;
    this.clearTimers();
    for (const host of this.actors.values()) host.stop();
    this.state = 'stopped';
    this.emit({ type: 'stopped', seq: this.appliedSeq });
  }

  /** Abrupt end, as if the process died: no final checkpoint, nothing more written (invariant 7). */
  kill(): void {
    if (this.state === 'killed' || this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'killed';
    this.ended.abort();
    this.clearTimers();
    void this.reader?.close();
    for (const host of this.actors.values()) host.stop();
    this.emit({ type: 'killed', seq: this.appliedSeq });
  }

  stats(): WorkerStats {
    return {
      ...this.counters,
      appliedSeq: this.appliedSeq,
      checkpointSeq: this.checkpointSeq,
      outbox: this.outbox.size,
      held: this.held.length,
      actors: this.actors.size,
      timers: this.wheel.size,
      callsPending: [...this.callIndex.values()].reduce((n, ids) => n + ids.size, 0),
      epoch: this.epoch,
    };
  }

  /** The live state of the actor for `key`, if it is in memory. */
  inspect(key: string): { value: unknown; context: unknown; status: string } | undefined {
    return this.actors.get(key)?.snapshot();
  }

  get running(): boolean {
    return this.state === 'running';
  }

  private clearTimers(): void {
    for (const ac of this.issued.values()) ac.abort();
    this.o.clock.clearTimeout(this.timer);
    this.o.clock.clearTimeout(this.pauseTimer);
    this.wheel.close();
    this.outbox.close();
  }

  private failpoint(point: Failpoint, seq: number): void {
    this.o.failpoint?.(point, { stage: this.o.stage.name, partition: this.o.partition, seq });
  }

  /** Invariant 5: read the meta and write it back under our epoch; retry if a racing writer moved it. */
  private async claim(): Promise<Awaited<ReturnType<CheckpointStore['readMeta']>>> {
    for (let attempt = 0; ; attempt++) {
      let meta: Awaited<ReturnType<CheckpointStore['readMeta']>>;
      try {
        meta = await this.o.store.readMeta(this.scope);
      } catch (err) {
        if (!isUnusableCheckpoint(err) || attempt >= 5) throw err;
        await fallBackToLog(this.ctx(), undefined, err); // replay invariant 4: the whole partition from the log
        await this.o.store.clear(this.scope);
        continue;
      }
      this.epoch = this.o.epoch ?? (meta?.epoch ?? 0) + 1;
      try {
        await this.o.store.write({
          scope: this.scope,
          seq: meta?.seq ?? 0,
          epoch: this.epoch,
          machineVersion: this.o.stage.actor.version,
          actors: {},
          outbox: meta?.outbox ?? [],
          timers: meta?.timers ?? [],
          calls: meta?.calls ?? [],
        });
        return meta;
      } catch (err) {
        const racing = err instanceof WardenError && err.code === 'CHECKPOINT_FENCED' && err.details.storedSeq !== undefined;
        if (!racing || attempt >= 5) throw err;
      }
    }
  }

  /**
   * The log must still hold every input after the checkpoint. If retention removed some, they
   * were never applied: say so, and stop unless the stage accepts the loss.
   */
  private async checkLogCoversCheckpoint(): Promise<void> {
    const { stage } = this.o;
    const info = await this.o.transport.streamInfo(stage.stream);
    if (info.lastSeq < this.appliedSeq) {
      // The log ends before the checkpoint: the stream was recreated or restored from an older backup.
      throw new WardenError(
        'LOG_TRUNCATED',
        `checkpoint of ${this.where} is at seq ${this.appliedSeq} but stream ${stage.stream} ends at seq ${info.lastSeq}: the stream was recreated or restored from an older copy; ` +
          'new inputs would be skipped until its sequence passed the checkpoint. Clear the checkpoint or restore the stream',
        { nonRetryable: true, details: { stream: stage.stream, checkpointSeq: this.appliedSeq, lastSeq: info.lastSeq } },
      );
    }
    if (info.firstSeq <= this.appliedSeq + 1) return;
    // The stream is shared by the stage's partitions: retention of the others' old messages is no loss
    // for a partition that has nothing stored after its checkpoint.
    if ((await this.o.transport.lastSeqOf(stage.stream, this.subject)) <= this.appliedSeq) return;
    const gap = { stream: stage.stream, checkpointSeq: this.appliedSeq, firstSeq: info.firstSeq };
    const message =
      `checkpoint of ${this.where} is at seq ${this.appliedSeq} but stream ${stage.stream} now starts at seq ${info.firstSeq}: ` +
      `retention removed inputs ${this.appliedSeq + 1}..${info.firstSeq - 1} before they were applied`;
    this.emit({ type: 'log-truncated', checkpointSeq: this.appliedSeq, firstSeq: info.firstSeq });
    if (stage.onTruncatedLog === 'skip') {
      this.o.logger.error(gap, `${message}; skipping them (checkpoint.onTruncatedLog 'skip')`);
      return;
    }
    throw new WardenError('LOG_TRUNCATED', `${message}; the partition cannot be restored without them (set checkpoint.onTruncatedLog 'skip' to accept the loss)`, {
      nonRetryable: true,
      details: gap,
    });
  }

  private async run(): Promise<void> {
    const batch = this.o.batchSize ?? 256;
    while (this.state === 'running') {
      if (this.reloadForCalls.size > 0 && this.appliedSeq >= this.settledSeq) await this.reloadCallActors();
      const msgs = await this.reader!.next(batch, 1000);
      const last = msgs[msgs.length - 1];
      if (last && this.commitBeforeApply && last.seq > this.aheadSeq) await this.commitAhead(last.seq);
      for (const msg of msgs) {
        if (this.state !== 'running') return; // stopping: the input in hand is finished, the rest stays in the log
        if (msg.seq <= this.appliedSeq) continue; // invariant 1
        await this.apply(msg);
        if (this.outbox.full && this.state === 'running') await this.outbox.drained();
      }
    }
  }

  /** At-most-once (invariant 8): a cut labelled `seq` is written before the inputs up to it are applied. */
  private async commitAhead(seq: number): Promise<void> {
    for (let attempt = 0; !this.dead; attempt++) {
      this.aheadSeq = Math.max(this.aheadSeq, seq);
      await this.checkpoint({ force: true });
      if (this.checkpointSeq >= seq || this.dead) return;
      await sleep(this.o.clock, Math.min(1000, 10 * 2 ** attempt), this.ended.signal).catch(() => undefined);
    }
  }

  private async apply(msg: StoredMessage): Promise<void> {
    this.applying = true;
    try {
      await this.applyOne(msg);
    } finally {
      this.applying = false;
    }
  }

  private async applyOne(msg: StoredMessage): Promise<void> {
    let env: Envelope;
    let timer: boolean;
    let call: boolean;
    try {
      env = decodeEnvelope(msg.data, msg.seq);
      timer = env.type === TIMER_EVENT;
      call = env.type === CALL_EVENT;
      if (timer) validateTimerRecord(env);
      else if (call) validateCallRecord(env);
      else validateInput(this.o.stage.actor, env, msg.data.length);
    } catch (err) {
      this.deadLetter(msg, err);
      this.advance(msg.seq);
      return;
    }
    const at = { seq: msg.seq, timeMs: msg.timestampMs };
    let outputs: EmittedEvent[] | undefined;
    if (timer) {
      const id = env.payload.timer as string;
      outputs = await this.applyToActor(env, msg, (host) => host.fireTimer(id, at), true);
      if (outputs !== undefined) this.counters.timersFired++;
      else this.forgetPoisoned(env.key, msg.seq, (host) => host.forgetTimer(id));
    } else if (call) {
      const result = env.payload as unknown as CallResult;
      outputs = await this.applyToActor(env, msg, (host) => host.resolveCall(result, at), true);
      if (outputs === undefined) this.forgetPoisoned(env.key, msg.seq, (host) => host.forgetCall(result.call));
    } else {
      const event = { ...env.payload, type: env.type };
      outputs = await this.applyToActor(env, msg, (host) => host.handle(event, at), false);
    }
    if (this.dead) return;
    if (outputs) this.publishOutputs(env, outputs);
    this.failpoint('after-publish', msg.seq);
    if (this.dead) return;
    this.advance(msg.seq);
  }

  /**
   * Applies one step to the actor of `env.key`, rebuilding it after a crash (invariant 6).
   * Undefined when dead-lettered, or for a timer record whose actor no longer exists.
   */
  private async applyToActor(env: Envelope, msg: StoredMessage, step: (host: ActorHost) => EmittedEvent[], existingOnly: boolean): Promise<EmittedEvent[] | undefined> {
    const seq = msg.seq;
    const at = { seq, timeMs: msg.timestampMs };
    for (let attempt = 1; ; attempt++) {
      let host = this.actors.get(env.key) ?? (await this.load(env.key, at, existingOnly));
      if (this.dead || !host) return undefined;
      if (host.status === 'done') {
        if (existingOnly) return undefined; // a timer of a finished life
        // A keyed actor that reached a final state starts a new life on its next input.
        host = new ActorHost(this.o.stage.actor, env.key, { clock: this.o.clock, at });
        this.actors.set(env.key, host);
      }
      try {
        const out = step(host);
        this.dirty.add(env.key);
        this.touch(env.key, host);
        return out;
      } catch (err) {
        if (!(err instanceof ActorCrashedError)) throw err;
        this.counters.crashes++;
        this.emit({ type: 'actor-crashed', key: env.key, seq, attempt, error: describeError(err) });
        this.o.logger.warn({ stage: this.o.stage.name, partition: this.o.partition, key: env.key, seq, attempt, err }, 'actor crashed');
        let delayMs: number;
        try {
          delayMs = this.restarts.record(env.key, `${this.o.stage.name}/${this.o.partition}`);
        } catch (escalation) {
          this.fail(escalation);
          return undefined;
        }
        if (delayMs > 0) await sleep(this.o.clock, delayMs, this.ended.signal).catch(() => undefined);
        if (this.dead) return undefined;
        await this.rebuild(env.key, at);
        if ((this.state as string) === 'killed') return undefined;
        if (attempt >= this.o.stage.maxCrashesPerInput) {
          this.poisoned.add(seq);
          this.deadLetter(msg, err, env);
          return undefined;
        }
      }
    }
  }

  /**
   * A timer firing or call result that crashed its actor until it was dead-lettered: the rebuilt
   * actor still has it pending; it is dropped, or every cut would carry it and a successor fire it again.
   */
  private forgetPoisoned(key: string, seq: number, forget: (host: ActorHost) => void): void {
    const host = this.actors.get(key);
    if (!host || !this.poisoned.has(seq) || this.dead) return;
    forget(host);
    this.dirty.add(key);
    this.touch(key, host);
  }

  /** After a step: the wheel holds the actor's timers, its calls are run, and it is the most recently active. */
  private touch(key: string, host: ActorHost): void {
    if (host.hasTimers || this.wheel.has(key)) this.wheel.sync(key, host.timers());
    if (host.hasCalls || this.callIndex.has(key)) this.syncCalls(key, host);
    if (this.o.stage.idleMs > 0) {
      this.lastActive.delete(key);
      this.lastActive.set(key, this.o.clock.now());
    }
  }

  /**
   * The actor for `key` from its checkpoint entry; an unusable entry is replaced by the log
   * (replay invariant 4). With `existingOnly`, a key with no entry gives undefined.
   */
  private async load(key: string, at: LogPoint, existingOnly: boolean): Promise<ActorHost | undefined> {
    let host: ActorHost;
    try {
      const loaded = await loadActor(this.ctx(), key, at);
      if (existingOnly && !loaded.entry) {
        loaded.host.stop();
        return undefined;
      }
      host = loaded.host;
    } catch (err) {
      if (!isUnusableCheckpoint(err)) throw err;
      ({ host } = await rebuildActor(this.ctx(), key, this.restoredSeq, at, this.poisoned));
      this.dirty.add(key); // the next cut overwrites the unusable entry
    }
    if (this.dead) {
      host.stop(); // killed while loading: nothing more is applied (invariant 7)
      return host;
    }
    this.actors.set(key, host);
    this.actorSince.set(key, this.o.clock.now());
    this.touch(key, host);
    return host;
  }

  /** Invariant 6: checkpoint + replay, or the initial state, by the stage's supervision policy. */
  private async rebuild(key: string, before: LogPoint): Promise<void> {
    const t0 = this.o.clock.now();
    const { restartFrom, safeStates } = this.o.stage.supervision;
    this.actors.get(key)?.stop();
    this.actors.delete(key);
    let host: ActorHost;
    let replayed = 0;
    let from: 'checkpoint' | 'initial' = restartFrom;
    if (restartFrom === 'checkpoint') {
      const replayFrom = this.removedAt.get(key) ?? this.restoredSeq;
      ({ host, replayed } = await rebuildActor(this.ctx(), key, replayFrom, before, this.poisoned));
      if (safeStates && host.status === 'active' && !safeStates.some((s) => host.matches(s))) {
        const state = JSON.stringify(host.snapshot().value);
        host.stop();
        host = new ActorHost(this.o.stage.actor, key, { clock: this.o.clock, at: before });
        from = 'initial';
        this.emit({ type: 'actor-reset', key, state, reason: `state ${state} is not in safeStates` });
      }
    } else {
      host = new ActorHost(this.o.stage.actor, key, { clock: this.o.clock, at: before });
    }
    if (this.state === 'killed') {
      host.stop();
      return;
    }
    this.actors.set(key, host);
    this.actorSince.set(key, this.o.clock.now());
    this.dirty.add(key);
    this.touch(key, host);
    this.emit({ type: 'actor-restarted', key, replayed, from, durationMs: this.o.clock.now() - t0 });
  }

  /** The in-memory keyed actors as tree nodes (at most `limit`, restarted ones first). */
  describeActors(limit = 100): Array<{ key: string; status: string; restarts: number; uptimeMs: number; state: unknown }> {
    const now = this.o.clock.now();
    const keys = [...this.actors.keys()].sort((a, b) => (this.restarts.counts.get(b) ?? 0) - (this.restarts.counts.get(a) ?? 0));
    return keys.slice(0, limit).map((key) => {
      const snap = this.actors.get(key)!.snapshot();
      return { key, status: snap.status, restarts: this.restarts.counts.get(key) ?? 0, uptimeMs: now - (this.actorSince.get(key) ?? now), state: snap.value };
    });
  }

  private ctx(): RestoreContext {
    return {
      stage: this.o.stage, scope: this.scope, store: this.o.store, transport: this.o.transport, clock: this.o.clock, subject: this.subject,
      onUnusable: (key, error) => {
        this.emit({ type: 'checkpoint-unusable', ...(key === undefined ? {} : { key }), error: describeError(error) });
        this.o.logger.error({ stage: this.o.stage.name, partition: this.o.partition, key, err: error }, 'unusable checkpoint; rebuilding from the log');
      },
      onReplayed: (seq) => {
        this.failpoint('during-replay', seq);
        return !this.dead;
      },
    };
  }

  /** The last step of applying an input: the position moves, and a cut may be taken (invariant 3). */
  private advance(seq: number): void {
    this.applying = false;
    if (this.counters.applied === 0) this.emit({ type: 'first-input', seq });
    this.appliedSeq = seq;
    this.counters.applied++;
    if (this.deferredCalls.size > 0 && seq >= this.settledSeq) this.flushDeferredCalls();
    if (++this.sinceCheckpoint >= this.o.stage.everyEvents || this.cpDeferred) {
      const force = this.cpDeferredForce;
      this.cpDeferred = this.cpDeferredForce = false;
      void this.checkpoint({ force });
    }
  }

  private publishOutputs(env: Envelope, outputs: EmittedEvent[]): void {
    const { stage, pipeline } = this.o;
    outputs.forEach((ev, n) => {
      const target = stage.route(ev);
      if (target === undefined) return;
      const to = pipeline.stage(target);
      const { type, ...payload } = ev;
      const key = stage.keyBy(ev, env.key);
      const id = outputMessageId(stage.name, env.key, env.seq!, n); // invariant 4
      const body = envelopeBody({ id, key, type, payload, headers: { 'warden-source': `${stage.name}/${this.o.partition}@${env.seq!}` }, ts: env.ts });
      const entry = { subject: to.subjectOf(partitionOf(key, to.partitions)), msgId: id, body };
      if (stage.outputs === 'after-checkpoint') this.held.push(entry); // invariant 10
      else this.outbox.publish(entry, { dedupe: this.persistOutputs });
    });
    if (this.held.length >= (this.o.maxOutboxSize ?? 4096)) void this.checkpoint({ force: true });
  }

  /** Invariant 12: indexes the actor's pending calls and runs the ones it just started. */
  private syncCalls(key: string, host: ActorHost): void {
    const fresh = host.takeCallRequests();
    const pending = host.pendingCalls();
    const ids = new Set(pending.map((r) => r.id));
    if (ids.size > 0) this.callIndex.set(key, ids);
    else this.callIndex.delete(key);
    const running = this.inflight.get(key);
    if (running) {
      // The actor left the state that invoked it: the call's signal is aborted (its result, if any, changes nothing).
      for (const id of running) {
        if (ids.has(id)) continue;
        this.issued.get(`${key}/${id}`)?.abort();
        running.delete(id);
      }
      if (running.size === 0) this.inflight.delete(key);
    }
    for (const req of fresh) {
      const k = `${key}/${req.id}`;
      if (this.issued.has(k)) continue; // issued by this incarnation: its result is on its way
      if (this.appliedSeq < this.settledSeq) this.deferredCalls.set(k, { key, req }); // the log may hold its result
      else this.issueCall(key, req);
    }
  }

  private issueCall(key: string, req: CallRequest): void {
    const k = `${key}/${req.id}`;
    const ac = new AbortController();
    this.issued.set(k, ac);
    this.deferredCalls.delete(k);
    this.counters.callsIssued++;
    let running = this.inflight.get(key);
    if (!running) this.inflight.set(key, (running = new Set()));
    running.add(req.id);
    const settled = (): void => {
      running.delete(req.id);
      if (running.size === 0 && this.inflight.get(key) === running) this.inflight.delete(key);
    };
    const idempotencyKey = `${this.o.stage.name}:${key}:${req.id}`;
    let call: Promise<unknown>;
    try {
      call = req.target.call(req.input, { idempotencyKey, signal: ac.signal });
    } catch (err) {
      call = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    call.then(
      (output) => {
        settled();
        let json: Json;
        try {
          json = JSON.parse(JSON.stringify(output ?? null)) as Json;
        } catch (err) {
          this.appendCallResult(key, { call: req.id, ok: false, error: callErrorOf(new WardenError('VALIDATION', `output of call ${req.name} is not a JSON value: ${(err as Error).message}`)) });
          return;
        }
        this.appendCallResult(key, { call: req.id, ok: true, output: json });
      },
      (err: unknown) => {
        settled();
        this.appendCallResult(key, { call: req.id, ok: false, error: callErrorOf(err) });
      },
    );
  }

  /** The result of a call becomes a record in the partition's own stream (invariant 12). */
  private appendCallResult(key: string, result: CallResult): void {
    if (this.state !== 'running' && this.state !== 'stopping') return;
    const msgId = callRecordId(this.o.stage.name, key, result.call, this.epoch);
    const body = envelopeBody({ id: msgId, key, type: CALL_EVENT, payload: result, headers: {}, ts: this.o.clock.now() });
    this.outbox.publish({ subject: this.subject, msgId, body });
  }

  /** Once the log is read up to where it was at start: issue the restored calls that are still pending. */
  private flushDeferredCalls(): void {
    for (const [k, { key, req }] of this.deferredCalls) {
      this.deferredCalls.delete(k);
      if (this.callIndex.get(key)?.has(req.id)) this.issueCall(key, req);
    }
  }

  /** Loads the actors a restored cut listed with pending calls, so their calls are issued (invariant 12). */
  private async reloadCallActors(): Promise<void> {
    const keys = [...this.reloadForCalls];
    this.reloadForCalls.clear();
    for (const key of keys) {
      if (this.dead) return;
      if (this.actors.has(key) || !this.callIndex.has(key)) continue;
      this.applying = true;
      try {
        await this.load(key, { seq: this.appliedSeq, timeMs: this.o.clock.now() }, true);
      } finally {
        this.applying = false;
      }
      if (this.cpDeferred) {
        const force = this.cpDeferredForce;
        this.cpDeferred = this.cpDeferredForce = false;
        void this.checkpoint({ force });
      }
    }
  }

  /** Invariant 9: a due timer becomes a record in the partition's own stream. */
  private appendTimerFiring(key: string, id: string): void {
    if (this.state !== 'running' && this.state !== 'stopping') return;
    const msgId = timerRecordId(this.o.stage.name, key, id, this.epoch);
    const body = envelopeBody({ id: msgId, key, type: TIMER_EVENT, payload: { timer: id }, headers: {}, ts: this.o.clock.now() });
    this.outbox.publish({ subject: this.subject, msgId, body });
  }

  private deadLetter(msg: StoredMessage, err: unknown, env?: Envelope): void {
    this.counters.deadLettered++;
    const ctx: Parameters<typeof deadLetterOf>[2] = { stage: this.o.stage.name, partition: this.o.partition, snapshotId: `${this.o.stage.name}/${this.o.partition}@${this.checkpointSeq}` };
    if (env) {
      ctx.key = env.key;
      ctx.type = env.type;
    }
    const letter = deadLetterOf(msg, err, ctx);
    this.emit({ type: 'dead-letter', seq: msg.seq, reason: letter.reason, error: letter.error });
    this.o.logger.warn({ stage: ctx.stage, partition: ctx.partition, seq: msg.seq, reason: letter.reason, error: letter.error }, 'input dead-lettered');
    this.outbox.publish({ subject: this.o.pipeline.deadLetterSubject(this.o.stage.name), msgId: deadLetterMessageId(this.o.stage.name, msg.seq), body: JSON.stringify(letter) });
  }

  private armTimer(): void {
    this.timer = this.o.clock.setTimeout(() => {
      if (this.state !== 'running') return;
      if (this.o.stage.idleMs > 0) this.passivate();
      if (this.o.stage.checkpointsEnabled && (this.sinceCheckpoint > 0 || this.outbox.size > 0 || this.held.length > 0)) void this.checkpoint();
      this.armTimer();
    }, this.o.stage.intervalMs);
  }

  /**
   * Invariant 11: drops actors idle for `idleMs` whose latest state is in a written cut. Idle
   * actors with unwritten changes get a cut now and are dropped on a later tick.
   */
  private passivate(): void {
    if (this.cpInFlight || this.applying) return; // a non-dirty key may be in a write that has not landed
    const cutoff = this.o.clock.now() - this.o.stage.idleMs;
    let needCut = false;
    for (const [key, last] of this.lastActive) {
      if (last > cutoff) break; // least recent first
      if (this.dirty.has(key)) {
        needCut = true;
        continue;
      }
      this.actors.get(key)?.stop();
      this.actors.delete(key);
      this.actorSince.delete(key);
      this.lastActive.delete(key);
      this.counters.passivated++;
    }
    if (needCut) void this.checkpoint();
  }

  /**
   * Writes one atomic checkpoint of the current cut (invariant 3), within the stage's
   * `minPauseMs` and `timeoutMs`. Never rejects: a failure is counted, reported and retried
   * by a later trigger, and the actors stay dirty.
   */
  private checkpoint(options: { force?: boolean } = {}): Promise<void> {
    if (this.state === 'killed' || this.state === 'failed') return Promise.resolve();
    if (!options.force && !this.o.stage.checkpointsEnabled) return Promise.resolve();
    if (this.applying) {
      this.cpDeferred = true; // invariant 3: cut after the input in hand
      if (options.force) this.cpDeferredForce = true;
      return this.cpInFlight ?? Promise.resolve();
    }
    if (this.cpInFlight) {
      this.cpAgain = true;
      return this.cpInFlight;
    }
    const { stage, clock } = this.o;
    const pauseLeft = this.cpEndedAt + stage.minPauseMs - clock.now();
    if (!options.force && pauseLeft > 0) {
      if (this.pauseTimer === undefined) {
        this.pauseTimer = clock.setTimeout(() => {
          this.pauseTimer = undefined;
          void this.checkpoint();
        }, pauseLeft);
      }
      return Promise.resolve();
    }
    const seq = Math.max(this.appliedSeq, this.aheadSeq);
    const keys = [...this.dirty];
    const actors: Record<string, Json> = {};
    const removed: string[] = [];
    this.dirty.clear();
    for (const key of keys) {
      const host = this.actors.get(key);
      if (!host) this.dirty.add(key); // not in memory right now: keep it for the next cut
      else if (host.status === 'done') removed.push(key);
      else actors[key] = host.persisted();
    }
    const release = this.held;
    this.held = [];
    const timers = this.wheel.entries();
    const calls = [...this.callIndex].flatMap(([key, ids]) => [...ids].map((id) => ({ key, id })));
    this.sinceCheckpoint = 0;
    const t0 = clock.now();
    const write = async (): Promise<WriteResult> => {
      // Invariant 8, at-least-once: if the outbox closed before the cut's outputs were acknowledged, the cut must not be written.
      if (this.settleBeforeCut && !(await this.outbox.settled())) throw new WardenError('STOPPED', `checkpoint of ${this.where} at seq ${seq} abandoned: its outputs were not acknowledged before the worker ended`);
      this.failpoint('before-checkpoint-write', seq);
      if (this.dead) throw this.killedError();
      const outbox = [...this.outbox.entries(), ...release];
      return this.o.store.write({ scope: this.scope, seq, epoch: this.epoch, machineVersion: stage.actor.version, actors, removed, outbox, timers, calls });
    };
    this.cpInFlight = withTimeout(clock, write(), stage.timeoutMs, () => new WardenError('TIMEOUT', `checkpoint of ${this.where} at seq ${seq} took longer than ${stage.timeoutMs} ms`))
      .then(
        (res) => {
          this.failpoint('after-checkpoint-write', seq);
          if (this.dead) return;
          this.checkpointSeq = seq;
          const durationMs = clock.now() - t0;
          Object.assign(this.counters, { checkpoints: this.counters.checkpoints + 1, lastCheckpointAtMs: clock.now(), lastCheckpointDurationMs: durationMs, lastCheckpointBytes: res.bytes });
          for (const key of removed) this.removedAt.set(key, seq);
          for (const entry of release) this.outbox.publish(entry); // invariant 10
          this.emit({ type: 'checkpoint', seq, bytes: res.bytes, actors: keys.length, durationMs });
        },
        (err: unknown) => {
          if (this.dead) return;
          this.counters.checkpointFailures++;
          if (err instanceof WardenError && err.code === 'TIMEOUT') this.counters.checkpointTimeouts++;
          for (const key of keys) this.dirty.add(key);
          this.held = [...release, ...this.held];
          this.sinceCheckpoint += 1; // a later trigger retries
          this.emit({ type: 'checkpoint-failed', seq, error: describeError(err) });
          this.o.logger.warn({ stage: this.o.stage.name, partition: this.o.partition, seq, err }, 'checkpoint failed; the actors keep their state and the next trigger retries');
          if (err instanceof WardenError && err.code === 'CHECKPOINT_FENCED') this.fail(err);
        },
      )
      .finally(() => {
        this.cpInFlight = undefined;
        this.cpEndedAt = clock.now();
        if (this.cpAgain) {
          this.cpAgain = false;
          void this.checkpoint();
        }
      });
    return this.cpInFlight;
  }

  private fail(err: unknown): void {
    if (this.state === 'killed' || this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'failed';
    this.failure = err;
    this.ended.abort();
    this.clearTimers();
    void this.reader?.close();
    for (const host of this.actors.values()) host.stop();
    this.emit({ type: 'failed', seq: this.appliedSeq, error: describeError(err) });
  }

  private emit(ev: WorkerEventBody): void {
    this.o.onEvent?.({ ...ev, stage: this.o.stage.name, partition: this.o.partition });
  }
}

/** `promise`, or a rejection with `timeoutError()` after `ms` on `clock` (the promise itself runs on). */
function withTimeout<T>(clock: Clock, promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const handle = clock.setTimeout(() => reject(timeoutError()), ms);
    promise.then(
      (v) => {
        clock.clearTimeout(handle);
        resolve(v);
      },
      (err: unknown) => {
        clock.clearTimeout(handle);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
