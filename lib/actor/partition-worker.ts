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
 */
import { ActorHost, type EmittedEvent } from './actor-host.js';
import { deadLetterOf } from './dead-letter.js';
import { KeyRestarts } from './key-restarts.js';
import { Outbox } from './outbox.js';
import { fallBackToLog, isUnusableCheckpoint, loadActor, rebuildActor, type RestoreContext } from './replay.js';
import { validateInput } from './validate.js';
import { sleep, type Clock, type TimerHandle } from '../core/clock.js';
import { decodeEnvelope, envelopeBody, type Envelope, type Json } from '../core/envelope.js';
import { ActorCrashedError, describeError, WardenError } from '../core/errors.js';
import { deadLetterMessageId, outputMessageId, partitionOf } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { CheckpointScope, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Pipeline, ResolvedStage } from '../pipeline/define-pipeline.js';
import type { Reader, StoredMessage, Transport } from '../transport/transport.js';
import type { WorkerEvent, WorkerEventBody } from './worker-events.js';

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
  outbox: number;
  actors: number;
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
  /** Replay start for keys removed (reached a final state) during this incarnation. */
  private readonly removedAt = new Map<string, number>();
  private readonly poisoned = new Set<number>();
  private readonly restarts: KeyRestarts;
  private readonly actorSince = new Map<string, number>();
  private reader: Reader | undefined;
  private loop: Promise<void> | undefined;
  private epoch = 0;
  private restoredSeq = 0;
  private appliedSeq = 0;
  private checkpointSeq = 0;
  private sinceCheckpoint = 0;
  private cpInFlight: Promise<void> | undefined;
  private cpAgain = false;
  /** An input is between its first step and `advance` (invariant 3). */
  private applying = false;
  private cpDeferred = false;
  private timer: TimerHandle = undefined;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'killed' | 'failed' = 'new';
  /** Aborted when the worker is killed or fails: cuts short an actor's restart backoff. */
  private readonly ended = new AbortController();
  private failure: unknown;
  private readonly counters = { applied: 0, deadLettered: 0, crashes: 0, checkpoints: 0, checkpointFailures: 0 };

  constructor(options: PartitionWorkerOptions) {
    this.o = options;
    this.scope = { operator: options.stage.name, partition: options.partition };
    this.subject = options.stage.subjectOf(options.partition);
    this.restarts = new KeyRestarts(options.stage.supervision, options.clock, options.random);
    this.outbox = new Outbox({ transport: options.transport, clock: options.clock, logger: options.logger, maxSize: options.maxOutboxSize ?? 4096 });
  }

  /** Restores from the last checkpoint, fences older incarnations, then processes in the background. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new WardenError('STOPPED', `partition worker ${this.where} was already started`);
    this.state = 'starting';
    const t0 = this.o.clock.now();
    try {
      const meta = await this.claim();
      // A kill while the claim was in flight keeps the worker dead (invariant 7).
      if ((this.state as string) !== 'starting') throw this.killedError();
      this.restoredSeq = this.appliedSeq = this.checkpointSeq = meta?.seq ?? 0;
      const outbox = meta?.outbox ?? [];
      this.reader = this.o.transport.openReader(this.o.stage.stream, { filterSubject: this.subject, startSeq: this.appliedSeq + 1 });
      for (const entry of outbox) this.outbox.publish(entry);
      this.state = 'running';
      this.armTimer();
      this.emit({ type: 'restored', seq: this.appliedSeq, epoch: this.epoch, outbox: outbox.length, durationMs: this.o.clock.now() - t0 });
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
    return `${this.scope.operator}/${this.scope.partition}`;
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
    await this.loop;
    if ((this.state as string) !== 'stopping') return; // failed or killed meanwhile
    await this.cpInFlight;
    await this.checkpoint(); // its outbox carries what the log has not acknowledged yet
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
      actors: this.actors.size,
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
    this.o.clock.clearTimeout(this.timer);
    this.outbox.close();
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
        });
        return meta;
      } catch (err) {
        const racing = err instanceof WardenError && err.code === 'CHECKPOINT_FENCED' && err.details.storedSeq !== undefined;
        if (!racing || attempt >= 5) throw err;
      }
    }
  }

  private async run(): Promise<void> {
    const batch = this.o.batchSize ?? 256;
    while (this.state === 'running') {
      const msgs = await this.reader!.next(batch, 1000);
      for (const msg of msgs) {
        if (this.state !== 'running' && this.state !== 'stopping') return;
        if (msg.seq <= this.appliedSeq) continue; // invariant 1
        await this.apply(msg);
        if (this.outbox.full) await this.outbox.drained();
      }
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
    try {
      env = decodeEnvelope(msg.data, msg.seq);
      validateInput(this.o.stage.actor, env, msg.data.length);
    } catch (err) {
      this.deadLetter(msg, err);
      this.advance(msg.seq);
      return;
    }
    const outputs = await this.applyToActor(env, msg);
    if (this.dead) return;
    if (outputs) this.publishOutputs(env, outputs);
    this.advance(msg.seq);
  }

  /** Applies `env`, rebuilding the actor after a crash (invariant 6). Undefined when dead-lettered. */
  private async applyToActor(env: Envelope, msg: StoredMessage): Promise<EmittedEvent[] | undefined> {
    const seq = msg.seq;
    for (let attempt = 1; ; attempt++) {
      let host = this.actors.get(env.key) ?? (await this.load(env.key, seq));
      if (this.dead) return undefined;
      if (host.status === 'done') {
        // A keyed actor that reached a final state starts a new life on its next input.
        host = new ActorHost(this.o.stage.actor, env.key, { clock: this.o.clock });
        this.actors.set(env.key, host);
      }
      try {
        const out = host.handle({ ...env.payload, type: env.type }, seq);
        this.dirty.add(env.key);
        return out;
      } catch (err) {
        if (!(err instanceof ActorCrashedError)) throw err;
        this.counters.crashes++;
        this.emit({ type: 'actor-crashed', key: env.key, seq, attempt, error: describeError(err) });
        this.o.logger.warn({ stage: this.scope.operator, partition: this.scope.partition, key: env.key, seq, attempt, err }, 'actor crashed');
        let delayMs: number;
        try {
          delayMs = this.restarts.record(env.key, `${this.scope.operator}/${this.scope.partition}`);
        } catch (escalation) {
          this.fail(escalation);
          return undefined;
        }
        if (delayMs > 0) await sleep(this.o.clock, delayMs, this.ended.signal).catch(() => undefined);
        if (this.dead) return undefined;
        await this.rebuild(env.key, seq);
        if ((this.state as string) === 'killed') return undefined;
        if (attempt >= this.o.stage.maxCrashesPerInput) {
          this.poisoned.add(seq);
          this.deadLetter(msg, err, env);
          return undefined;
        }
      }
    }
  }

  /** The actor for `key` from its checkpoint entry; an unusable entry is replaced by the log (replay invariant 4). */
  private async load(key: string, atSeq: number): Promise<ActorHost> {
    let host: ActorHost;
    try {
      ({ host } = await loadActor(this.ctx(), key));
    } catch (err) {
      if (!isUnusableCheckpoint(err)) throw err;
      ({ host } = await rebuildActor(this.ctx(), key, this.restoredSeq, atSeq, this.poisoned));
      this.dirty.add(key); // the next cut overwrites the unusable entry
    }
    if (this.dead) {
      host.stop(); // killed while loading: nothing more is applied (invariant 7)
      return host;
    }
    this.actors.set(key, host);
    this.actorSince.set(key, this.o.clock.now());
    return host;
  }

  /** Invariant 6: checkpoint + replay, or the initial state, by the stage's supervision policy. */
  private async rebuild(key: string, beforeSeq: number): Promise<void> {
    const t0 = this.o.clock.now();
    const { restartFrom, safeStates } = this.o.stage.supervision;
    this.actors.get(key)?.stop();
    this.actors.delete(key);
    let host: ActorHost;
    let replayed = 0;
    let from: 'checkpoint' | 'initial' = restartFrom;
    if (restartFrom === 'checkpoint') {
      const replayFrom = this.removedAt.get(key) ?? this.restoredSeq;
      ({ host, replayed } = await rebuildActor(this.ctx(), key, replayFrom, beforeSeq, this.poisoned));
      if (safeStates && host.status === 'active' && !safeStates.some((s) => host.matches(s))) {
        const state = JSON.stringify(host.snapshot().value);
        host.stop();
        host = new ActorHost(this.o.stage.actor, key, { clock: this.o.clock });
        from = 'initial';
        this.emit({ type: 'actor-reset', key, state, reason: `state ${state} is not in safeStates` });
      }
    } else {
      host = new ActorHost(this.o.stage.actor, key, { clock: this.o.clock });
    }
    if (this.state === 'killed') {
      host.stop();
      return;
    }
    this.actors.set(key, host);
    this.actorSince.set(key, this.o.clock.now());
    this.dirty.add(key);
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
        this.o.logger.error({ stage: this.scope.operator, partition: this.scope.partition, key, err: error }, 'unusable checkpoint; rebuilding from the log');
      },
    };
  }

  /** The last step of applying an input: the position moves, and a cut may be taken (invariant 3). */
  private advance(seq: number): void {
    this.applying = false;
    if (this.counters.applied === 0) this.emit({ type: 'first-input', seq });
    this.appliedSeq = seq;
    this.counters.applied++;
    if (++this.sinceCheckpoint >= this.o.stage.everyEvents || this.cpDeferred) {
      this.cpDeferred = false;
      void this.checkpoint();
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
      this.outbox.publish({ subject: to.subjectOf(partitionOf(key, to.partitions)), msgId: id, body });
    });
  }

  private deadLetter(msg: StoredMessage, err: unknown, env?: Envelope): void {
    this.counters.deadLettered++;
    const ctx: Parameters<typeof deadLetterOf>[2] = { stage: this.scope.operator, partition: this.scope.partition, snapshotId: `${this.scope.operator}/${this.scope.partition}@${this.checkpointSeq}` };
    if (env) {
      ctx.key = env.key;
      ctx.type = env.type;
    }
    const letter = deadLetterOf(msg, err, ctx);
    this.emit({ type: 'dead-letter', seq: msg.seq, reason: letter.reason, error: letter.error });
    this.o.logger.warn({ stage: ctx.stage, partition: ctx.partition, seq: msg.seq, reason: letter.reason, error: letter.error }, 'input dead-lettered');
    this.outbox.publish({ subject: this.o.pipeline.deadLetterSubject(this.scope.operator), msgId: deadLetterMessageId(this.scope.operator, msg.seq), body: JSON.stringify(letter) });
  }

  private armTimer(): void {
    this.timer = this.o.clock.setTimeout(() => {
      if (this.state !== 'running') return;
      if (this.sinceCheckpoint > 0 || this.outbox.size > 0) void this.checkpoint();
      this.armTimer();
    }, this.o.stage.intervalMs);
  }

  /** Writes one atomic checkpoint of the current cut (invariant 3). Never rejects. */
  private checkpoint(): Promise<void> {
    if (this.state === 'killed' || this.state === 'failed') return Promise.resolve();
    if (this.applying) {
      this.cpDeferred = true; // invariant 3: cut after the input in hand
      return this.cpInFlight ?? Promise.resolve();
    }
    if (this.cpInFlight) {
      this.cpAgain = true;
      return this.cpInFlight;
    }
    const seq = this.appliedSeq;
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
    this.sinceCheckpoint = 0;
    const t0 = this.o.clock.now();
    const write = { scope: this.scope, seq, epoch: this.epoch, machineVersion: this.o.stage.actor.version, actors, removed, outbox: this.outbox.entries() };
    this.cpInFlight = this.o.store.write(write).then(
      (res) => {
        this.checkpointSeq = seq;
        this.counters.checkpoints++;
        for (const key of removed) this.removedAt.set(key, seq);
        this.emit({ type: 'checkpoint', seq, bytes: res.bytes, actors: keys.length, durationMs: this.o.clock.now() - t0 });
      },
      (err: unknown) => {
        this.counters.checkpointFailures++;
        for (const key of keys) this.dirty.add(key);
        this.emit({ type: 'checkpoint-failed', seq, error: describeError(err) });
        if (err instanceof WardenError && err.code === 'CHECKPOINT_FENCED') this.fail(err);
      },
    ).finally(() => {
      this.cpInFlight = undefined;
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
    this.o.onEvent?.({ ...ev, stage: this.scope.operator, partition: this.scope.partition });
  }
}
