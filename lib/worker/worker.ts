/**
 * `PartitionWorker`: runs one partition of one stage. Its life (claim, restore, run, stop, kill,
 * fail) and the path of one input are here; each step of that path is a collaborator:
 *
 *   reader -> decode + validate -> KeyedActors (load, step, rebuild) -> LogRecords (route, publish,
 *   dead letters, timer and call records) -> Outbox -> Checkpointer (when to cut) -> the store
 *
 * with the TimerWheel and the CallRunner told after every step, and claim.ts for the takeover.
 *
 * Invariants (tests cite them as "worker invariant N"; 5 and 14 are kept in claim.ts, 6, 11, 13 and
 * 20 in keyed-actors.ts, the rest here):
 *  1. Inputs are applied in stream-sequence order; an input at or below the applied position
 *     is skipped, so an input affects state at most once per cut.
 *  2. Every input reaches its actor or is dead-lettered with its reason; none is dropped. An input
 *     whose outputs cannot be routed, or whose actor cannot be created, is dead-lettered and its
 *     effect rolled back; the partition goes on.
 *  3. A checkpoint at seq S holds the state of every actor after all inputs <= S and none
 *     > S, plus every output of inputs <= S not yet acknowledged by the log (the outbox).
 *     Cuts are taken only between inputs (checkpointer invariant 1).
 *  4. Outputs carry deterministic IDs `<stage>:<key>:<inputSeq>:<n>`; a replay republishes
 *     the same IDs and the stream's duplicate window drops the copies.
 *  7. A killed or failed worker applies, publishes and writes nothing more, and its `done()`
 *     rejects (`KILLED`, or the failure), so a supervisor sees an abnormal exit.
 *  8. The stage's guarantee decides when the position is committed relative to applying:
 *     - exactly-once: outputs carry deterministic IDs and every unacknowledged one is in the cut;
 *     - at-least-once: outputs go without IDs and a cut is written only after every output of
 *       the inputs it covers was acknowledged (nothing lost, a replay sends copies);
 *     - at-most-once: before a batch is applied, a cut labelled with the batch's last sequence is
 *       written (its actor entries labelled with the applied position), so no input is ever
 *       applied twice (a crash loses the batch in hand).
 *     Dead letters and timer and call records always carry IDs and ride in the cut.
 *  9. Everything an actor reacts to is in the log: a due timer is appended as a `warden.timer`
 *     record and fires only when that record is applied (lib/actor/timers.ts).
 * 10. With `outputs: 'after-checkpoint'`, an output is published only after a cut containing it
 *     was written.
 * 12. A guarded call a machine starts is run by the worker and its result appended as a
 *     `warden.call` record, delivered when applied (call-runner.ts).
 * 15. An input whose crash pushes the partition past its actors' restart intensity is
 *     dead-lettered, a final cut is written, and then the worker fails (escalation): a successor
 *     never meets that input again, so every escalation moves the partition forward.
 * 16. `stop()` while the worker is starting waits for the start and then stops it: a stopped
 *     worker never runs afterwards.
 * 17. With `leaseValid`, no write leaves the worker once it says no (a node paused past its lease
 *     resumes): no publish, no checkpoint; the worker fails with `LEASE_LOST`.
 * 18. With a `latency` histogram, every input applied to an actor (not dead-lettered) is observed
 *     once, as the time from the log storing it (`timestampMs`) to the end of its apply, on the
 *     worker's clock; a replayed input is observed again by the incarnation that replays it.
 * 19. With an OpenTelemetry SDK registered, each input applied (timer and call records included)
 *     has a `process <stage>` span, a child of the trace context in its envelope's headers; the
 *     outputs it routes carry this span's context in theirs, and the guarded calls it starts run
 *     under it (lib/core/tracing.ts).
 * 21. Inputs to actors in memory are applied without a promise per input (keyed-actors invariant
 *     21); the loop yields to the event loop after `yieldEvery.inputs` inputs or `yieldEvery.ms`
 *     of clock time, whichever comes first, so acknowledgements and checkpoint replies are read
 *     while a backlog is applied. After the last input of a batch smaller than `batchSize` (it
 *     emptied the reader's buffer) the time rule is not applied: the next read waits for the
 *     event loop anyway, and the count rule still bounds a loop whose reads never wait. A cut is
 *     never taken inside an input (checkpointer invariant 1).
 */
import type { ActorHost } from '../actor/actor-host.js';
import { sleep, type TimerHandle } from '../core/clock.js';
import { ActorCrashedError, describeError, WardenError } from '../core/errors.js';
import type { CheckpointScope } from '../checkpoint/checkpoint-store.js';
import type { Reader } from '../transport/transport.js';
import { CallRunner } from './call-runner.js';
import { Checkpointer } from './checkpointer.js';
import { checkLogCoversCheckpoint, claimPartition, RetentionWatch } from './claim.js';
import { KeyedActors } from './keyed-actors.js';
import { StoreWaitAbandoned, type ActorsOwner } from './keyed-types.js';
import { compileWorkerOptions, type Failpoint, type PartitionWorkerOptions, type WorkerConfig } from './options.js';
import { Outbox } from './outbox.js';
import { LogRecords } from './records.js';
import { restoreContextOf, type RestoreContext } from './replay.js';
import { TimerWheel } from './timer-wheel.js';
import { decodeBatch } from './batch.js';
import { applyMessage, type InputOwner } from './apply.js';
import { collectCut, statsOf, type WorkerStats } from './cut.js';

export type { Failpoint, PartitionWorkerOptions } from './options.js';
export type { WorkerStats } from './cut.js';

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'killed' | 'failed';

/**
 * @example
 * const worker = new PartitionWorker({ stage, routing, partition: 0, transport, store, clock, logger });
 * await worker.start();
 * await worker.stop(); // final checkpoint
 */
export class PartitionWorker implements ActorsOwner, InputOwner {
  readonly scope: CheckpointScope;
  readonly c: WorkerConfig;
  readonly outbox: Outbox;
  readonly records: LogRecords;
  readonly wheel: TimerWheel;
  readonly calls: CallRunner;
  readonly actors: KeyedActors;
  readonly checkpointer: Checkpointer;
  /** Positions: restored at start, applied, written, committed ahead (at-most-once), read. */
  restoredSeq = 0;
  appliedSeq = 0;
  checkpointSeq = 0;
  aheadSeq = 0;
  private readSeq = 0;
  epoch = 0;
  recordKey = '';
  applied = 0;
  timersFired = 0;
  private state: State = 'new';
  private starting: Promise<void> | undefined;
  private reader: Reader | undefined;
  private retention: RetentionWatch | undefined;
  private loop: Promise<void> | undefined;
  private tickTimer: TimerHandle = undefined;
  private sinceYield = 0;
  private yieldedAt = 0;
  private readonly endedController = new AbortController();
  private failure: unknown;

  /** @internal What the worker failed with (its `failed` event carries it as one line), for the log. */
  get failedWith(): unknown {
    return this.failure;
  }

  constructor(options: PartitionWorkerOptions) {
    const c = (this.c = compileWorkerOptions(options));
    this.scope = c.stage.scopeOf(c.partition);
    this.outbox = new Outbox({ transport: c.transport, clock: c.clock, logger: c.logger, maxSize: c.maxOutboxSize, retry: c.publishRetry, random: c.random, onRefused: (e, err) => this.dead || this.fail(this.records.refused(e, err)),
      ...(c.leaseValid ? { gate: c.leaseValid, onGateClosed: () => this.fail(this.leaseLost()) } : {}) });
    this.records = new LogRecords(c, this.outbox, this);
    this.wheel = new TimerWheel(c.clock, (key, id) => this.records.timerFiring(key, id));
    this.calls = new CallRunner(c.stage.name, (key, result) => this.records.callResult(key, result));
    this.actors = new KeyedActors(c, this);
    const { stage } = c;
    this.checkpointer = new Checkpointer(c.clock, { enabled: stage.checkpointsEnabled, everyEvents: stage.everyEvents, minPauseMs: stage.minPauseMs, timeoutMs: stage.timeoutMs }, () => collectCut(this), (seq) => `checkpoint of ${c.where} at seq ${seq}`);
  }

  // --- what the collaborators read ------------------------------------------------------------

  /** Killed or failed: applies, publishes and writes nothing more (invariant 7). */
  get dead(): boolean {
    return this.state === 'killed' || this.state === 'failed';
  }

  get stopping(): boolean {
    return this.state === 'stopping';
  }

  get live(): boolean {
    return this.state === 'running' || this.state === 'stopping';
  }

  get ended(): AbortSignal {
    return this.endedController.signal;
  }

  get snapshotId(): string {
    return `${this.c.where}@${this.checkpointSeq}`;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  restoreContext(): RestoreContext {
    return restoreContextOf(this);
  }

  get actorSystem(): KeyedActors['system'] {
    return this.actors.system;
  }

  touched(key: string, host: ActorHost): void {
    if (host.hasTimers || this.wheel.has(key)) this.wheel.sync(key, host.timers());
    if (host.hasCalls || this.calls.has(key)) this.calls.sync(key, host, this.appliedSeq);
  }

  failpoint(point: Failpoint, seq: number): void {
    this.c.failpoint?.(point, { stage: this.c.stage.name, partition: this.c.partition, seq });
  }

  /** Invariant 17: the lease ran out; nothing more is written. */
  leaseLost(): WardenError {
    return new WardenError('LEASE_LOST', `partition worker ${this.c.where} (epoch ${this.epoch}) no longer holds its lease: it writes nothing more`, { nonRetryable: true, details: { epoch: this.epoch } });
  }

  killedError(): WardenError {
    return new WardenError('KILLED', `partition worker ${this.c.where} was killed`);
  }

  // --- life -------------------------------------------------------------------------------------

  /** Claims the partition, restores its last checkpoint, then processes in the background. */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new WardenError('STOPPED', `partition worker ${this.c.where} was already started`));
    this.state = 'starting';
    this.starting = this.takeOver();
    return this.starting;
  }

  private async takeOver(): Promise<void> {
    const { c } = this;
    const t0 = c.clock.now();
    const stillStarting = (): void => {
      if (this.state !== 'starting') throw this.killedError(); // a kill while starting keeps it dead (invariant 7)
    };
    try {
      const { claim, meta } = await claimPartition(c, this.restoreContext());
      this.epoch = claim.epoch;
      this.recordKey = claim.recordKey;
      this.failpoint('during-restore', meta?.seq ?? 0);
      stillStarting();
      this.restoredSeq = this.appliedSeq = this.checkpointSeq = this.aheadSeq = this.readSeq = meta?.seq ?? 0;
      const firstSeq = await checkLogCoversCheckpoint(c, this.appliedSeq);
      stillStarting();
      this.readSeq = Math.max(this.readSeq, firstSeq - 1); // what retention removed before the start was reported there
      this.retention = new RetentionWatch(c, firstSeq, Math.max(1024, 4 * c.batchSize));
      this.reader = c.transport.openReader(c.stage.stream, { filterSubject: c.subject, startSeq: this.appliedSeq + 1 });
      for (const entry of meta?.outbox ?? []) this.outbox.publish(entry);
      this.calls.restore(meta?.calls ?? []);
      this.calls.settledSeq = await c.transport.lastSeqOf(c.stage.stream, c.subject);
      stillStarting();
      this.state = 'running';
      this.wheel.load(meta?.timers ?? []); // once running: an overdue timer fires at once, and its firing is appended
      this.armTick();
      c.emit({ type: 'restored', seq: this.appliedSeq, epoch: this.epoch, outbox: meta?.outbox.length ?? 0, timers: this.wheel.size, durationMs: c.clock.now() - t0 });
    } catch (err) {
      // Nothing of a failed start outlives it: no timer, no reader, no retried publish.
      if (this.state !== 'killed') this.state = 'failed';
      this.failure = err;
      this.end();
      throw err;
    }
    this.loop = this.run().catch((err: unknown) => {
      if (err instanceof StoreWaitAbandoned && this.state === 'stopping') return; // keyed-actors invariant 23: a stop, not a failure
      this.fail(err);
    });
  }

  /** Resolves when the worker ends; rejects with the error that made it fail. */
  async done(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.loop;
    if (this.state === 'failed') throw this.failure;
    if (this.state === 'killed') throw this.killedError();
  }

  /** Graceful stop: stop reading, finish the input in hand, publish, write a final checkpoint (invariant 16). */
  async stop(): Promise<void> {
    if (this.state === 'starting') await this.starting?.catch(() => undefined);
    if (this.state !== 'running') return;
    this.state = 'stopping';
    this.c.clock.clearTimeout(this.tickTimer);
    await this.reader?.close();
    this.outbox.interruptDrain(); // a loop waiting for the log to take outputs finishes the input in hand instead
    await this.loop;
    if (this.state !== 'stopping') return; // failed or killed meanwhile
    await this.checkpointer.request(true); // its outbox carries what the log has not acknowledged yet
    if (this.state !== 'stopping') return;
    this.end();
    this.state = 'stopped';
    this.c.emit({ type: 'stopped', seq: this.appliedSeq });
  }

  /** Abrupt end, as if the process died: no final checkpoint, nothing more written (invariant 7). */
  kill(): void {
    if (this.state === 'killed' || this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'killed';
    this.end();
    this.c.emit({ type: 'killed', seq: this.appliedSeq });
  }

  /** Fails the worker with `err` (nothing happens for `undefined`). */
  fail(err: unknown): void {
    if (err === undefined || this.state === 'killed' || this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'failed';
    this.failure = err;
    this.end();
    this.c.emit({ type: 'failed', seq: this.appliedSeq, error: describeError(err) });
  }

  private end(): void {
    this.endedController.abort();
    this.calls.abortAll();
    this.c.clock.clearTimeout(this.tickTimer);
    this.checkpointer.close();
    this.wheel.close();
    this.outbox.close();
    void this.reader?.close();
    this.actors.stopAll();
  }

  stats(): WorkerStats {
    return statsOf(this);
  }

  /** The live state of the actor for `key`, if it is in memory. */
  inspect(key: string): { value: unknown; context: unknown; status: string } | undefined {
    return this.actors.inspect(key);
  }

  /** The key's state as a read sees it: none for a finished actor a committed checkpoint removed (still in memory). */
  readableState(key: string): { value: unknown; context: unknown; status: string } | undefined {
    return this.actors.finishedAndRemoved(key) ? undefined : this.actors.inspect(key);
  }

  /** The in-memory keyed actors as tree nodes (at most `limit`, restarted ones first). */
  describeActors(limit = 100): ReturnType<KeyedActors['describe']> {
    return this.actors.describe(limit);
  }

  // --- the run loop and the path of one input -------------------------------------------------

  private async run(): Promise<void> {
    const { c } = this;
    while (this.state === 'running') {
      for (const key of this.calls.takeReloads(this.appliedSeq)) await this.reloadForCalls(key);
      const msgs = await this.reader!.next(c.batchSize, 1000);
      const first = msgs[0];
      const last = msgs[msgs.length - 1];
      if (this.state !== 'running') return;
      if (!first || !last) {
        // A reader closed under a running worker (its stream deleted, its transport closed) never yields again.
        if (this.reader!.closed) throw new WardenError('TRANSPORT_CLOSED', `the reader of ${c.where} on stream ${c.stage.stream} was closed while the partition ran`);
        continue;
      }
      const checking = this.retention!.afterRead(this.readSeq, first.seq, last.seq - first.seq + 1 > msgs.length);
      if (checking) await checking;
      this.readSeq = Math.max(this.readSeq, last.seq);
      if (c.commitBeforeApply && last.seq > this.aheadSeq) await this.commitAhead(last.seq);
      // Invariant 20 (keyed-actors.ts): decode the batch once, read the entries of its keys not in memory together.
      const { envs, keys } = decodeBatch(msgs, this.appliedSeq);
      const loading = this.actors.prefetch(keys);
      if (loading) await loading;
      for (let i = 0; i < msgs.length; i++) {
        const msg = msgs[i]!;
        if (this.state !== 'running') return; // stopping: the input in hand is finished, the rest stays in the log
        if (msg.seq <= this.appliedSeq) continue; // invariant 1
        const pending = applyMessage(this, msg, envs[i]);
        if (pending) await pending;
        if (this.outbox.full && this.state === 'running') await this.outbox.drained();
        const drained = i === msgs.length - 1 && msgs.length < c.batchSize; // invariant 21
        if (++this.sinceYield >= c.yieldEvery.inputs || (!drained && c.clock.now() - this.yieldedAt >= c.yieldEvery.ms)) await this.yieldToIo();
      }
    }
  }

  /** At-most-once (invariant 8): a cut labelled `seq` is written before the inputs up to it are applied. */
  private async commitAhead(seq: number): Promise<void> {
    for (let attempt = 0; !this.dead; attempt++) {
      this.aheadSeq = Math.max(this.aheadSeq, seq);
      await this.checkpointer.request(true);
      if (this.checkpointSeq >= seq || this.dead) return;
      await sleep(this.c.clock, this.c.commitRetry.delay(attempt, this.c.random), this.ended).catch(() => undefined);
    }
  }

  /** Invariant 21: lets the event loop read replies (acknowledgements, checkpoint writes) between inputs. */
  private async yieldToIo(): Promise<void> {
    this.compactIdle(2 * this.c.yieldEvery.inputs);
    await this.c.yieldEvery.yield();
    this.sinceYield = 0;
    this.yieldedAt = this.c.clock.now();
  }

  /** The input at `seq` is done: the position moves to it. */
  advance(seq: number): void {
    if (this.applied === 0) this.c.emit({ type: 'first-input', seq });
    this.appliedSeq = seq;
    this.applied++;
    this.calls.caughtUp(seq);
  }

  /** Call-runner invariant 4: loads an actor a restored cut listed with pending calls, so they are issued. */
  private async reloadForCalls(key: string): Promise<void> {
    if (this.dead) return;
    this.checkpointer.beginInput();
    try {
      await this.actors.ensureLoaded(key, { seq: this.appliedSeq, timeMs: this.c.clock.now() });
    } catch (err) {
      if (!(err instanceof ActorCrashedError)) throw err;
      this.c.logger.warn({ stage: this.c.stage.name, partition: this.c.partition, key, err }, 'actor with pending calls could not be restored; its next input retries');
    } finally {
      this.checkpointer.endInput(false);
    }
  }

  /** Worker invariant 22 (keyed-actors.ts), a bounded share at a time. */
  private compactIdle(budget: number): void {
    const { compactMs } = this.c.stage;
    if (compactMs > 0) this.actors.compactIdle(this.c.clock.now() - compactMs, budget);
  }

  private armTick(): void {
    this.tickTimer = this.c.clock.setTimeout(() => {
      if (this.state !== 'running') return;
      const { stage } = this.c;
      this.compactIdle(1000);
      if (stage.idleMs > 0 && !this.checkpointer.busy && this.actors.passivate(this.c.clock.now() - stage.idleMs)) void this.checkpointer.request();
      if (stage.checkpointsEnabled && (this.checkpointer.pending > 0 || this.outbox.size > 0 || this.records.heldCount > 0)) void this.checkpointer.request();
      this.retention!.tick(this.readSeq).catch((err: unknown) => {
        if (err instanceof WardenError && err.code === 'LOG_TRUNCATED') this.fail(err);
      });
      this.armTick();
    }, this.c.stage.intervalMs);
  }

}
