/**
 * Review of lib/supervision/* and lib/pipeline/node.ts with lib/actor/partition-worker.ts: races
 * between exits, restarts, stop(), kills and start failures; timers left behind; unhandled
 * rejections; escalation paths.
 *
 * The section "Bugs" holds the bugs found in review, now fixed: each title says what should
 * happen, and a comment what happened before the fix. One is still open and marked
 * `test.failing` (ava reports it as a known failure): when it is fixed, ava flags the
 * unexpected pass and `.failing` must go. The other tests pin tricky behaviour that was
 * checked and is correct.
 *
 * Everything runs on a `SimulatedClock` shared by the node, its transport and its store.
 */
import test from 'ava';
import { DelegatingTransport } from '../helpers/delegating-transport.js';
import { flushMicrotasks } from '../../lib/core/clock.js';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  WardenError,
  actorGroup,
  createSupervisor,
  definePipeline,
  silentLogger,
  startNode,
  supervise,
  type CheckpointMeta,
  type CheckpointPolicyOptions,
  type CheckpointScope,
  type CheckpointStore,
  type CheckpointWrite,
  type NodeEvent,
  type Pipeline,
  type PubAck,
  type PublishOptions,
  type Reader,
  type ReaderOptions,
  type StoredMessage,
  type SupervisionEvent,
  type Transport,
  type WardenNode,
  type WorkerEvent,
  type WriteResult,
} from '../../lib/index.js';
import { PartitionWorker } from '../../lib/actor/partition-worker.js';
import { SimulatedClock } from '../../lib/core/clock.js';
import { encodeEnvelope } from '../../lib/core/envelope.js';
import { counter, crashOn, tally } from '../helpers/counter.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

interface CounterCtx {
  count: number;
  total: number;
  seen: number[];
}

/** Advances `clock` in `stepMs` steps until `promise` settles (at most `maxMs`), then returns it. */
async function drive<T>(clock: SimulatedClock, promise: Promise<T>, { stepMs = 5, maxMs = 60_000 } = {}): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let elapsed = 0; !settled && elapsed < maxMs; elapsed += stepMs) await clock.advanceAsync(stepMs);
  if (!settled) throw new Error(`did not settle within ${maxMs} ms of simulated time`);
  return promise;
}

/** Lets a worker run until it waits for input again (no simulated time passes). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

/** counter (1 partition) -> tally (1 partition). */
function counterToTally(name: string, extra: { checkpoint?: CheckpointPolicyOptions; supervision?: Record<string, unknown> } = {}): Pipeline {
  return definePipeline({
    name,
    stages: [
      { actor: counter, to: 'tally', ...(extra.checkpoint ? { checkpoint: extra.checkpoint } : {}), ...(extra.supervision ? { supervision: extra.supervision } : {}) },
      { actor: tally },
    ],
  });
}

async function messages(transport: Transport, stream: string): Promise<StoredMessage[]> {
  const reader = transport.openReader(stream, {});
  try {
    return await reader.next(10_000, 0);
  } finally {
    await reader.close();
  }
}

function add(node: WardenNode, key: string, amount: number): Promise<PubAck> {
  return node.ingest({ id: `in:${key}:${amount}`, key, type: 'add', payload: { amount } });
}

function ofType<T extends NodeEvent['type']>(events: readonly NodeEvent[], type: T): Array<Extract<NodeEvent, { type: T }>> {
  return events.filter((e): e is Extract<NodeEvent, { type: T }> => e.type === type);
}

/** Checkpoint scope of partition 0 of `stage` in `pipeline`. */
const scopeIn = (pipeline: Pipeline, stage = 'counter'): CheckpointScope => pipeline.stage(stage).scopeOf(0);

/** A CheckpointStore over an in-memory one whose reads and writes a test can hold, or make fail. */
class GateStore implements CheckpointStore {
  /** `readMeta` waits for `release()` while true. */
  holdMeta = false;
  /** `readMeta` rejects while true. */
  failMeta = false;
  /** `readActor` waits for `release()` while true. */
  holdActorReads = false;
  /** The next this-many writes wait for `release()`. */
  holdWrites = 0;
  heldMeta = 0;
  heldWrites: CheckpointWrite[] = [];
  private waiting: Array<() => void> = [];

  constructor(readonly inner: InMemoryCheckpointStore) {}

  async write(cp: CheckpointWrite): Promise<WriteResult> {
    if (this.holdWrites > 0) {
      this.holdWrites--;
      this.heldWrites.push(cp);
      await this.gate();
    }
    return this.inner.write(cp);
  }
  async readMeta(scope: CheckpointScope): Promise<CheckpointMeta | undefined> {
    if (this.failMeta) throw new WardenError('TIMEOUT', 'checkpoint store unreachable');
    if (this.holdMeta) {
      this.heldMeta++;
      await this.gate();
    }
    return this.inner.readMeta(scope);
  }
  async readActor(scope: CheckpointScope, key: string): ReturnType<CheckpointStore['readActor']> {
    if (this.holdActorReads) await this.gate();
    return this.inner.readActor(scope, key);
  }
  readActors(scope: CheckpointScope): ReturnType<CheckpointStore['readActors']> {
    return this.inner.readActors(scope);
  }
  clear(scope: CheckpointScope): Promise<void> {
    return this.inner.clear(scope);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  /** Lets every held call go on and stops holding. */
  release(): void {
    this.holdMeta = false;
    this.holdActorReads = false;
    this.holdWrites = 0;
    for (const go of this.waiting.splice(0)) go();
  }
  private gate(): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }
}

/** A Transport over an in-memory one that can be "down": publishes reject and readers cannot be opened (a lost connection). */
class SwitchableTransport extends DelegatingTransport {
  down = false;
  publishes = 0;

  constructor(inner: InMemoryTransport) {
    super(inner);
  }

  override publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PubAck> {
    this.publishes++;
    if (this.down) return Promise.reject(new WardenError('TRANSPORT_CLOSED', 'connection lost'));
    return this.inner.publish(subject, data, options);
  }
  override openReader(stream: string, options?: ReaderOptions): Reader {
    if (this.down) throw new WardenError('TRANSPORT_CLOSED', 'connection lost');
    return this.inner.openReader(stream, options);
  }
}

/** Streams of `pipeline` on `transport`, as startNode would create them. */
async function ensureStreams(transport: Transport, pipeline: Pipeline): Promise<void> {
  for (const stage of pipeline.stages) await transport.ensureStream({ name: stage.stream, subjects: [`${pipeline.name}.${stage.name}.*`] });
  await transport.ensureStream({ name: pipeline.deadLetterStream, subjects: [`${pipeline.name}.dlq.>`] });
}

/** A bare partition worker of the counter stage on its own clock, transport and gated store. */
async function workerRig(name: string) {
  const clock = new SimulatedClock(0);
  const transport = new InMemoryTransport({ clock });
  const store = new GateStore(new InMemoryCheckpointStore({ clock }));
  const pipeline = counterToTally(name);
  await ensureStreams(transport, pipeline);
  const events: WorkerEvent[] = [];
  const worker = new PartitionWorker({ pipeline, stage: pipeline.stage('counter'), partition: 0, transport, store, clock, logger: silentLogger, onEvent: (e) => events.push(e) });
  const send = (key: string, amount: number): Promise<PubAck> =>
    transport.publish(pipeline.stage('counter').subjectOf(0), encodeEnvelope({ id: `in:${key}:${amount}`, key, type: 'add', payload: { amount }, headers: {}, ts: 0 }), { msgId: `in:${key}:${amount}` });
  return { clock, transport, store, pipeline, events, worker, send };
}

/** A node on a simulated clock with its events recorded; stopped (driving the clock) at teardown. */
async function nodeRig(
  t: { teardown(fn: () => Promise<void>): void },
  pipeline: Pipeline,
  extra: { clock?: SimulatedClock; store?: CheckpointStore; transport?: Transport; supervision?: Parameters<typeof startNode>[0]['supervision']; onFatal?: (e: Error) => void } = {},
) {
  const clock = extra.clock ?? new SimulatedClock(0);
  const events: NodeEvent[] = [];
  const node = await startNode({
    pipeline,
    clock,
    logger: silentLogger,
    random: () => 0.5,
    onEvent: (e) => events.push(e),
    ...(extra.store ? { checkpointStore: extra.store } : {}),
    ...(extra.transport ? { transport: extra.transport } : {}),
    ...(extra.supervision ? { supervision: extra.supervision } : {}),
    ...(extra.onFatal ? { onFatal: extra.onFatal } : {}),
  });
  t.teardown(() => drive(clock, node.stop()).catch(() => undefined));
  return { clock, events, node };
}

// =============================================================================================
// Bugs (test.failing: the title says what should happen)
// =============================================================================================

// ---- 1. kill() while a partition worker is starting ----------------------------------------

test('PartitionWorker: kill() while start() is in flight leaves the worker dead; it must not come up running with a closed outbox', async (t) => {
  const rig = await workerRig('kill-in-start');
  const starting = rig.worker.start();
  rig.worker.kill(); // e.g. node.kill() from chaos: onWorker hands the node the worker before start()
  await starting.catch(() => undefined);
  await rig.send('a', 1);
  await settle();
  await rig.clock.advanceAsync(2_000); // the interval checkpoint
  await settle();
  const applied = rig.worker.stats().appliedSeq;
  const meta = await rig.store.readMeta(scopeIn(rig.pipeline));
  const outputs = await messages(rig.transport, rig.pipeline.stage('tally').stream);
  rig.worker.kill();
  // Before the fix: the worker is running, applies seq 1 and checkpoints it, but its outbox was closed by
  // the kill, so the output of seq 1 is dropped without a trace: lost for good.
  t.false(rig.worker.running, 'a killed worker is not running');
  t.false(applied > 0 && outputs.length === 0, `applied seq ${applied} (checkpointed at ${meta?.seq}) but published ${outputs.length} outputs`);
  t.false(rig.events.some((e) => e.type === 'restored'), "no 'restored' after 'killed'");
});

test('node.kill() while a partition worker is starting: the kill is honoured and no output is lost', async (t) => {
  const clock = new SimulatedClock(0);
  const store = new GateStore(new InMemoryCheckpointStore({ clock }));
  const pipeline = counterToTally('node-kill-in-start');
  const { node } = await nodeRig(t, pipeline, { clock, store });
  await add(node, 'a', 1);
  await drive(clock, node.whenCaughtUp());
  store.holdMeta = true;
  node.kill('counter', 0);
  await clock.advanceAsync(50); // the restart begins; the new worker waits in its claim
  t.is(store.heldMeta, 1, 'a new incarnation is starting');
  node.kill('counter', 0); // reaches the starting worker
  store.release();
  await clock.advanceAsync(50);
  await add(node, 'a', 2);
  await drive(clock, node.whenCaughtUp());
  const outputs = await messages(node.transport, pipeline.stage('tally').stream);
  t.is(outputs.length, 2, 'tally received the output of every counter input');
  const tallyState = node.inspect('tally', 'a')?.context as { got: Array<[number, number]> } | undefined;
  t.deepEqual(tallyState?.got, [[1, 1], [2, 3]]);
});

// ---- 2. kill() during an actor's restart backoff ---------------------------------------------

const slowActorBackoff = { minBackoffMs: 5_000, maxBackoffMs: 5_000, randomFactor: 0 };

test("PartitionWorker: kill() during an actor's restart backoff ends the worker at once; its supervisor restarts it without waiting out the backoff", async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('kill-in-backoff', { supervision: slowActorBackoff }));
  crashOn.add(701);
  await add(node, 'a', 701);
  await clock.advanceAsync(1);
  t.is(ofType(events, 'actor-crashed').length, 1, 'the actor crashed and waits 5 s before its rebuild');
  node.kill('counter', 0);
  await clock.advanceAsync(100); // far more than the partition's restart backoff
  // Today the loop sleeps out the actor backoff (a timer kill() does not cancel), so done() only
  // rejects, and the supervisor only hears of the kill, 5 s later.
  t.true(ofType(events, 'child-crashed').some((e) => e.path === 'kill-in-backoff/counter/partition-0'), 'the supervisor saw the kill');
  t.true(ofType(events, 'child-restarting').some((e) => e.path === 'kill-in-backoff/counter/partition-0'), 'and restarts the partition');
});

test("node.stop() after a kill during an actor's restart backoff leaves no timer on the clock", async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('stop-after-kill-in-backoff', { supervision: slowActorBackoff }));
  crashOn.add(702);
  await add(node, 'a', 702);
  await clock.advanceAsync(1);
  t.is(ofType(events, 'actor-crashed').length, 1);
  node.kill('counter', 0);
  await drive(clock, node.stop(), { stepMs: 1, maxMs: 100 });
  t.is(clock.pending, 0, "the killed worker's backoff sleep is still on the clock (it keeps a real process alive)");
});

// ---- 3. the node's supervision.backoff ---------------------------------------------------------

test('startNode: supervision.backoff sets the delay before a partition worker restarts', async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('node-backoff'), {
    supervision: { backoff: { minBackoffMs: 1_000, maxBackoffMs: 5_000, randomFactor: 0 } },
  });
  node.kill('counter', 0);
  await clock.advanceAsync(0);
  const restarting = ofType(events, 'child-restarting').filter((e) => e.path === 'node-backoff/counter/partition-0');
  // Before the fix: 0 ms. The backoff is given to the root only (it delays restarts of whole stages); the
  // stage supervisors get none, so partitions restart at once with a 0 ms minimum that never grows.
  t.deepEqual(restarting.map((e) => e.delayMs), [1_000]);
  t.false((await node.status())[0]?.running, 'still waiting out the backoff');
});

// ---- 4. a worker whose start fails ------------------------------------------------------------

test('actorGroup: a worker whose start fails after republishing its stored outbox leaves no retry timer behind', async (t) => {
  const clock = new SimulatedClock(0);
  const inner = new InMemoryTransport({ clock });
  const store = new InMemoryCheckpointStore({ clock });
  const pipeline = counterToTally('start-fails');
  await ensureStreams(inner, pipeline);
  // A predecessor left one unacknowledged output in its checkpoint.
  await store.write({ scope: scopeIn(pipeline), seq: 0, epoch: 1, machineVersion: '1', actors: {}, outbox: [{ subject: pipeline.stage('tally').subjectOf(0), msgId: 'counter:a:1:0', body: '{}' }] });
  const transport = new SwitchableTransport(inner);
  transport.down = true; // connection lost: publish rejects, openReader throws
  const sup = createSupervisor({ clock, children: [actorGroup({ pipeline, stage: pipeline.stage('counter'), partition: 0, transport, checkpointStore: store })] });
  await t.throwsAsync(sup.start(), { message: /failed to start child partition-0/ });
  const publishes = transport.publishes;
  await clock.advanceAsync(60_000);
  // Today the failed worker's outbox is never closed: it retries the publish every few seconds
  // for ever (each failed restart of a partition adds another such outbox).
  t.is(clock.pending, 0, 'no timer left by the failed start');
  t.is(transport.publishes, publishes, 'nothing republished after the start failed');
});

// ---- 5. node listeners ------------------------------------------------------------------------

test.serial('node.on: a listener that throws is isolated; no unhandled rejection, and the partition keeps running', async (t) => {
  const unhandled: unknown[] = [];
  // Unhandled rejections are caught here for the length of this (serial) test, so that the bug
  // shows as an assertion instead of failing the whole file.
  const saved = process.listeners('unhandledRejection');
  process.removeAllListeners('unhandledRejection');
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const { clock, events, node } = await nodeRig(t, counterToTally('throwing-listener', { checkpoint: { everyEvents: 1, intervalMs: 1_000 } }));
    let armed = true;
    node.on((e) => {
      if (armed && e.type === 'checkpoint') throw new Error('listener bug');
    });
    await add(node, 'a', 1);
    await clock.advanceAsync(10);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    armed = false;
    await drive(clock, node.stop(), { stepMs: 1, maxMs: 100 });
    await new Promise((resolve) => setImmediate(resolve));
    // Before the fix: the listener's error rejects the worker's checkpoint promise, which the worker floats
    // (`void this.checkpoint()`): an unhandled rejection, which ends a Node process by default.
    // (The supervisor isolates its listeners; the node hands its own to the workers unguarded.)
    t.deepEqual(unhandled.map(String), []);
    t.is(ofType(events, 'failed').length, 0);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    for (const listener of saved) process.on('unhandledRejection', listener);
  }
});

test('node.on: a listener that throws on a worker event does not fail the partition (today one bad listener takes the node to onFatal)', async (t) => {
  const fatal: Error[] = [];
  const { clock, events, node } = await nodeRig(t, counterToTally('throwing-listener-2'), { onFatal: (e) => fatal.push(e) });
  node.on((e) => {
    if (e.type === 'first-input') throw new Error('listener bug');
  });
  await add(node, 'a', 1);
  await clock.advanceAsync(2_000);
  // Before the fix: the error escapes PartitionWorker.advance(), fails the worker, and each new incarnation
  // fails the same way on its replay: 100+ restarts, the stage and then the root give up.
  t.is(ofType(events, 'failed').length, 0);
  t.deepEqual(fatal, []);
});

// ---- 6. kill() while an actor is being loaded -------------------------------------------------

test('PartitionWorker: kill() while an actor is being loaded from the store applies nothing to it afterwards (worker invariant 7)', async (t) => {
  const rig = await workerRig('kill-in-load');
  await rig.worker.start();
  rig.store.holdActorReads = true;
  await rig.send('a', 1);
  await settle();
  rig.worker.kill();
  rig.store.release();
  await settle();
  // Before the fix: the loaded actor is put in memory after the kill, never stopped, and the input applied.
  const live = rig.worker.inspect('a');
  t.false(live?.status === 'active', 'no live actor left behind by a killed worker');
  t.not((live?.context as CounterCtx | undefined)?.seen.includes(1), true, 'the input was applied after the kill');
});

// ---- 7. kill() during a graceful stop -----------------------------------------------------

test("PartitionWorker: kill() during a graceful stop leaves it killed: no 'stopped' after 'killed', and done() rejects KILLED", async (t) => {
  const rig = await workerRig('kill-in-stop');
  await rig.worker.start();
  await rig.send('a', 1);
  await settle();
  rig.store.holdWrites = 1; // the final checkpoint hangs (e.g. a slow store); the supervisor's shutdown timer then kills
  const stopping = rig.worker.stop();
  await settle();
  rig.worker.kill();
  rig.store.release();
  await stopping;
  const types = rig.events.map((e) => e.type);
  t.deepEqual(types.slice(types.indexOf('killed') + 1).filter((type) => type === 'stopped'), [], `events: ${types.join(', ')}`);
  await t.throwsAsync(rig.worker.done(), { instanceOf: WardenError, message: /killed/ });
});

// ---- 8. a handle the supervisor refuses ------------------------------------------------------

test('supervisor: a child whose start resolves a malformed handle (done not a promise) is killed, not leaked (child invariant 3)', async (t) => {
  const clock = new SimulatedClock(0);
  const log: string[] = [];
  const sup = createSupervisor({
    clock,
    children: [
      {
        id: 'odd',
        start: () =>
          Promise.resolve({
            stop: () => Promise.resolve(void log.push('stop')),
            kill: () => void log.push('kill'),
            done: 'not a promise' as unknown as Promise<void>,
          }),
      },
    ],
  });
  await t.throwsAsync(sup.start(), { message: /done is not a promise/ });
  await clock.advanceAsync(10);
  // Today the started child is neither stopped nor killed: whatever it runs keeps running.
  t.deepEqual(log, ['kill']);
});

// ---- 9. backoff defaults merged under a user's maxBackoffMs ------------------------------------

test('supervise() and startNode() accept a backoff that only lowers maxBackoffMs below their default minBackoffMs', async (t) => {
  const clock = new SimulatedClock(0);
  // Before the fix: ConfigError 'backoff.minBackoffMs must be <= maxBackoffMs (100 > 50)', a field the caller never set.
  const sup = await supervise(({ signal }) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve())), { clock, backoff: { maxBackoffMs: 50 } });
  await sup.stop();
  const node = await startNode({ pipeline: counterToTally('max-backoff'), clock, logger: silentLogger, supervision: { backoff: { maxBackoffMs: 5 } } });
  await node.stop();
  t.pass();
});

// ---- 10. whenCaughtUp after stop ---------------------------------------------------------------

test('node.whenCaughtUp() after node.stop() rejects with STOPPED at once instead of polling until its timeout', async (t) => {
  const clock = new SimulatedClock(0);
  const transport = new InMemoryTransport({ clock }); // the caller's: node.stop() leaves it open
  const node = await startNode({ pipeline: counterToTally('caught-up-after-stop'), clock, transport, logger: silentLogger });
  await node.stop();
  let outcome: unknown = 'pending';
  node.whenCaughtUp({ timeoutMs: 60_000 }).then(
    () => (outcome = 'resolved'),
    (err: unknown) => (outcome = err),
  );
  await clock.advanceAsync(100);
  // Today it polls a stopped node for the whole timeout (never settling with timeoutMs Infinity), then says TIMEOUT.
  t.true(outcome instanceof WardenError && outcome.code === 'STOPPED', String(outcome));
  await clock.advanceAsync(60_000);
});

// =============================================================================================
// Verified correct (plain tests)
// =============================================================================================

test('node.kill() during a checkpoint write: the stale write is fenced off by the successor; state and outputs stay exactly-once', async (t) => {
  const clock = new SimulatedClock(0);
  const store = new GateStore(new InMemoryCheckpointStore({ clock }));
  const pipeline = counterToTally('kill-in-write', { checkpoint: { everyEvents: 1, intervalMs: 1_000 } });
  const { events, node } = await nodeRig(t, pipeline, { clock, store });
  await add(node, 'a', 1);
  await add(node, 'a', 2);
  await drive(clock, node.whenCaughtUp());
  t.is((await store.readMeta(scopeIn(pipeline)))?.seq, 2);

  store.holdWrites = 1;
  await add(node, 'a', 3);
  await settle();
  t.like(store.heldWrites[0], { seq: 3, epoch: 1 }, 'the checkpoint of seq 3 is in flight');
  node.kill('counter', 0);
  await clock.advanceAsync(50); // the successor claims the partition (epoch 2) from seq 2
  t.is(ofType(events, 'restored').filter((e) => e.stage === 'counter').at(-1)?.epoch, 2);
  store.release(); // the killed worker's write lands late: refused
  await settle();
  t.like(await store.readMeta(scopeIn(pipeline)), { epoch: 2 });

  await add(node, 'a', 4);
  await drive(clock, node.whenCaughtUp());
  const outputs = await messages(node.transport, pipeline.stage('tally').stream);
  t.is(outputs.length, 4, 'one copy of each output: the replayed one was dropped as a duplicate');
  await drive(clock, node.stop());
  t.like(await store.readMeta(scopeIn(pipeline)), { seq: 4, epoch: 2 });
  const entry = await store.readActor(scopeIn(pipeline), 'a');
  t.deepEqual((entry?.snapshot as unknown as { context: CounterCtx }).context.seen, [1, 2, 3, 4]);
  t.is(clock.pending, 0);
});

test('node.stop() while a killed partition worker waits for its restart: nothing restarts, no timer is left', async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('stop-in-restart'));
  await add(node, 'a', 1);
  await drive(clock, node.whenCaughtUp());
  const restoredBefore = ofType(events, 'restored').length;
  node.kill('counter', 0);
  await flushMicrotasks(); // the exit is handled and the restart is a timer on the clock (no time passes)
  t.deepEqual(node.supervisor.tree().children?.[0]?.children?.map((c) => c.status), ['restarting']);
  await drive(clock, node.stop(), { stepMs: 1, maxMs: 100 });
  await clock.advanceAsync(60_000);
  t.is(ofType(events, 'restored').length, restoredBefore, 'no new incarnation after stop()');
  t.is(clock.pending, 0);
  t.is(node.supervisor.tree().status, 'stopped');
});

test('actorGroup: stop() during the restart backoff of its group cancels the restart', async (t) => {
  const clock = new SimulatedClock(0);
  const transport = new InMemoryTransport({ clock });
  const store = new InMemoryCheckpointStore({ clock });
  const pipeline = counterToTally('group-backoff');
  await ensureStreams(transport, pipeline);
  const workers: PartitionWorker[] = [];
  const events: SupervisionEvent[] = [];
  const group = actorGroup({
    pipeline, stage: pipeline.stage('counter'), partition: 0, transport, checkpointStore: store,
    backoff: { minBackoffMs: 1_000, maxBackoffMs: 1_000, randomFactor: 0 },
    onWorker: (w) => workers.push(w),
  });
  const sup = createSupervisor({ clock, intensity: 5, children: [group] });
  sup.on((e) => events.push(e));
  await sup.start();
  workers[0]?.kill();
  await clock.advanceAsync(500);
  t.deepEqual(ofType(events, 'child-restarting').map((e) => e.delayMs), [1_000]);
  await sup.stop();
  await clock.advanceAsync(10_000);
  t.is(workers.length, 1, 'no second worker');
  t.is(clock.pending, 0);
  await sup.done;
});

test('actorGroup: a worker whose start keeps failing is retried with backoff, then the supervisor escalates to onFatal, leaving nothing behind', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const clock = new SimulatedClock(0);
  const transport = new InMemoryTransport({ clock });
  const store = new GateStore(new InMemoryCheckpointStore({ clock }));
  const pipeline = counterToTally('group-fatal');
  await ensureStreams(transport, pipeline);
  const workers: PartitionWorker[] = [];
  const fatal: Error[] = [];
  const events: SupervisionEvent[] = [];
  const sup = createSupervisor({
    id: 'svc',
    clock,
    intensity: 3,
    periodMs: 60_000,
    backoff: { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0 },
    onFatal: (e) => fatal.push(e),
    children: [actorGroup({ pipeline, stage: pipeline.stage('counter'), partition: 0, transport, checkpointStore: store, onWorker: (w) => workers.push(w) })],
  });
  sup.on((e) => events.push(e));
  await sup.start();
  store.failMeta = true; // the store becomes unreachable
  workers[0]?.kill();
  await clock.advanceAsync(99);
  t.is(workers.length, 1, 'not restarted before the backoff');
  await clock.advanceAsync(1);
  t.is(workers.length, 2);
  await clock.advanceAsync(10_000);
  t.deepEqual(ofType(events, 'child-restarting').map((e) => e.delayMs), [100, 200, 400], 'each failed start waits longer');
  t.deepEqual(ofType(events, 'child-start-failed').map((e) => e.attempt), [1, 2, 3]);
  t.is(ofType(events, 'escalated').length, 1);
  t.is(fatal.length, 1);
  t.regex(fatal[0]?.message ?? '', /4 restarts within 60000 ms exceed its intensity 3/);
  t.regex(String((fatal[0]?.cause as Error | undefined)?.message), /checkpoint store unreachable/);
  await t.throwsAsync(sup.done, { is: fatal[0] as Error });
  t.is(clock.pending, 0);
  t.false(workers.some((w) => w.running));
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(unhandled, []);
});

test('node: a partition that can never start again escalates partition -> stage -> root -> onFatal; whenCaughtUp rejects STOPPED; no timer is left', async (t) => {
  const clock = new SimulatedClock(0);
  const store = new GateStore(new InMemoryCheckpointStore({ clock }));
  const fatal: Error[] = [];
  const { events, node } = await nodeRig(t, counterToTally('node-fatal'), { clock, store, supervision: { intensity: 1, periodMs: 60_000 }, onFatal: (e) => fatal.push(e) });
  store.failMeta = true;
  node.kill('counter', 0);
  await clock.advanceAsync(10_000);
  t.is(fatal.length, 1);
  t.deepEqual(ofType(events, 'escalated').map((e) => e.path), ['node-fatal/counter', 'node-fatal'], 'the stage gives up; its restart fails to start; the root gives up');
  t.deepEqual(ofType(events, 'fatal').map((e) => e.path), ['node-fatal']);
  await t.throwsAsync(node.whenCaughtUp(), { instanceOf: WardenError, message: /has stopped/ });
  t.is(node.supervisor.tree().status, 'failed');
  t.is(clock.pending, 0);
});

test('node.stop() while a restart is starting (its claim hangs) completes; the late worker is killed when it arrives; no timer is left', async (t) => {
  const clock = new SimulatedClock(0);
  const store = new GateStore(new InMemoryCheckpointStore({ clock }));
  const transport = new InMemoryTransport({ clock }); // the caller's: still open when the late worker arrives
  const pipeline = counterToTally('stop-in-start');
  const { events, node } = await nodeRig(t, pipeline, { clock, store, transport });
  store.holdMeta = true;
  node.kill('counter', 0);
  await clock.advanceAsync(50);
  t.is(store.heldMeta, 1);
  await drive(clock, node.stop(), { stepMs: 1, maxMs: 100 });
  store.release();
  await settle();
  await clock.advanceAsync(0);
  const restored = ofType(events, 'restored').filter((e) => e.stage === 'counter');
  t.is(restored.length, 2, 'the late incarnation did come up ...');
  t.is(ofType(events, 'killed').filter((e) => e.stage === 'counter').length, 2, '... and was killed at once (child invariant 3)');
  t.is(clock.pending, 0);
});

test("node.stop() during an actor's restart backoff finishes the input in hand, then writes the final checkpoint", async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('stop-in-actor-backoff', { supervision: slowActorBackoff }));
  crashOn.add(703);
  await add(node, 'a', 703);
  await add(node, 'a', 4);
  await clock.advanceAsync(1);
  t.is(ofType(events, 'actor-crashed').length, 1);
  await drive(clock, node.stop(), { stepMs: 100, maxMs: 20_000 });
  t.true(clock.now() >= 5_000 && clock.now() < 10_000, 'it waited out the 5 s backoff, within the 10 s shutdown');
  t.deepEqual(ofType(events, 'child-stopped').filter((e) => e.id === 'partition-0').map((e) => e.how), ['graceful', 'graceful']);
  // Stop reading, finish the input in hand: seq 1 (rebuilt and retried after the backoff) is
  // applied and checkpointed; seq 2 stays in the log for the next incarnation.
  t.like(await node.checkpointStore.readMeta(scopeIn(node.pipeline)), { seq: 1 });
  const entry = await node.checkpointStore.readActor(scopeIn(node.pipeline), 'a');
  t.deepEqual((entry?.snapshot as unknown as { context: CounterCtx }).context.seen, [703]);
  t.is(clock.pending, 0);
});

test('node.stop() after traffic, a kill and a restart leaves no timer on the clock and writes final checkpoints', async (t) => {
  const pipeline = counterToTally('clean-stop');
  const { clock, events, node } = await nodeRig(t, pipeline);
  for (let amount = 1; amount <= 5; amount++) await add(node, `k${amount % 2}`, amount);
  await drive(clock, node.whenCaughtUp());
  node.kill('counter');
  for (let amount = 6; amount <= 8; amount++) await add(node, `k${amount % 2}`, amount);
  await drive(clock, node.whenCaughtUp());
  t.true(clock.pending > 0, 'a running node has timers (checkpoint intervals, reads)');
  await drive(clock, node.stop(), { stepMs: 1, maxMs: 100 });
  t.is(clock.pending, 0);
  t.like(await node.checkpointStore.readMeta(scopeIn(pipeline)), { seq: 8, epoch: 2 });
  t.like(await node.checkpointStore.readMeta(scopeIn(pipeline, 'tally')), { seq: 8 });
  t.is(ofType(events, 'supervisor-stopped').at(-1)?.path, 'clean-stop');
});

// ---- 11. fencing after a corrupt meta ----------------------------------------------------------

test.failing('PartitionWorker: a worker that recovers from a corrupt meta still fences its running predecessor (worker invariant 5)', async (t) => {
  const rig = await workerRig('corrupt-meta-fence');
  const pipeline = counterToTally('corrupt-meta-fence', { checkpoint: { everyEvents: 1, intervalMs: 1_000 } });
  const make = (events: WorkerEvent[]): PartitionWorker =>
    new PartitionWorker({ pipeline, stage: pipeline.stage('counter'), partition: 0, transport: rig.transport, store: rig.store, clock: rig.clock, logger: silentLogger, onEvent: (e) => events.push(e) });
  const oldEvents: WorkerEvent[] = [];
  const old = make(oldEvents);
  t.teardown(() => old.kill());
  await old.start();
  await rig.send('a', 1);
  await settle();
  rig.store.inner.corrupt(scopeIn(pipeline)); // the stored meta fails its checksum
  const newEvents: WorkerEvent[] = [];
  const successor = make(newEvents);
  t.teardown(() => successor.kill());
  await successor.start(); // reports it, clears the checkpoint, replays from the log
  const oldEpoch = oldEvents.find((e) => e.type === 'restored')?.epoch;
  const newEpoch = newEvents.find((e) => e.type === 'restored')?.epoch;
  await rig.send('a', 2);
  await settle();
  // Before the fix: clear() dropped the stored epoch, so the successor claims epoch 1 again, the epoch of
  // the worker it replaces; the predecessor's later checkpoints are accepted, not fenced.
  t.true((newEpoch ?? 0) > (oldEpoch ?? 0), `successor epoch ${newEpoch} > predecessor epoch ${oldEpoch}`);
  t.false(old.running, 'the predecessor was fenced off at its next checkpoint');
});
