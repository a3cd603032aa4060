/**
 * Kill, stop and start races of partition workers under their supervisors: a node's tree
 * (lib/pipeline/node.ts), actor groups (lib/pipeline/actor-group.ts) and the supervisor itself
 * (lib/supervision): kills that reach a worker while it starts, waits out an actor's restart
 * backoff or writes a checkpoint; stop() while a restart is pending or starting; starts that fail
 * or keep failing; and the restart backoff a node is given.
 *
 * What holds throughout (worker invariant 7, node invariants 1-2, actor-group invariant 1,
 * supervisor invariants 5-8, child invariants 3-4): at most one live worker per partition, each
 * restart a new fencing epoch; a kill is seen by the supervisor at once and restarted after its
 * backoff; stop() restarts nothing and ends every worker gracefully; escalation climbs the tree
 * to onFatal; and nothing (no timer, no retried publish, no late worker) outlives a stop or a
 * failed start.
 *
 * Everything runs on a `SimulatedClock` shared by the node, its transport and its store.
 */
import test from 'ava';
import { flushMicrotasks, SimulatedClock } from '../../lib/core/clock.js';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  WardenError,
  actorGroup,
  createSupervisor,
  silentLogger,
  startNode,
  supervise,
  type PubAck,
  type PublishOptions,
  type Reader,
  type ReaderOptions,
  type SupervisionEvent,
} from '../../lib/index.js';
import type { PartitionWorker } from '../../lib/worker/worker.js';
import { crashOn } from '../helpers/counter.js';
import { DelegatingTransport } from '../helpers/delegating-transport.js';
import { add, counterToTally, drive, ensureStreams, GateStore, messages, nodeRig, ofType, scopeIn } from '../helpers/node-rig.js';
import { settle, type CounterCtx } from '../helpers/worker-rig.js';

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

/** An actor restart backoff of 5 s, far longer than a partition worker's restart. */
const slowActorBackoff = { minBackoffMs: 5_000, maxBackoffMs: 5_000, randomFactor: 0 };

// ---------------------------------------------------------------------------------------------
// Kills
// ---------------------------------------------------------------------------------------------

/*
 * node.kill() reaches whichever incarnation of the partition is current, including one that is
 * still claiming the partition (its restart after a first kill). That incarnation ends, the next
 * one restores from the last checkpoint, and the next stage receives the output of every input.
 */
test('worker invariant 7, in a node: node.kill() that reaches a partition worker while it starts is honoured, and no output is lost', async (t) => {
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

/*
 * A worker whose actor crashed waits out the actor's restart backoff (5 s here) before the
 * rebuild. A kill cuts that wait short: the worker ends at once and done() rejects, so its stage
 * supervisor sees the abnormal exit now and restarts the partition after its own, much shorter
 * backoff (actor-group invariant 1), instead of hearing of the kill 5 s later.
 */
test("worker invariant 7: kill() during an actor's restart backoff ends the worker at once; its supervisor restarts it without waiting out the backoff", async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('kill-in-backoff', { supervision: slowActorBackoff }));
  crashOn.add(701);
  await add(node, 'a', 701);
  await clock.advanceAsync(1);
  t.is(ofType(events, 'actor-crashed').length, 1, 'the actor crashed and waits 5 s before its rebuild');
  node.kill('counter', 0);
  await clock.advanceAsync(100); // far more than the partition's restart backoff
  t.true(ofType(events, 'child-crashed').some((e) => e.path === 'kill-in-backoff/counter/partition-0'), 'the supervisor saw the kill');
  t.true(ofType(events, 'child-restarting').some((e) => e.path === 'kill-in-backoff/counter/partition-0'), 'and restarts the partition');
});

/*
 * The killed worker's backoff sleep is a timer on the node's clock; the kill cancels it. A timer
 * left behind would keep a real process alive after node.stop(), and on a simulated clock would
 * fire into a stopped node.
 */
test("child invariant 4: node.stop() after a kill during an actor's restart backoff leaves no timer on the clock", async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('stop-after-kill-in-backoff', { supervision: slowActorBackoff }));
  crashOn.add(702);
  await add(node, 'a', 702);
  await clock.advanceAsync(1);
  t.is(ofType(events, 'actor-crashed').length, 1);
  node.kill('counter', 0);
  await drive(clock, node.stop(), { stepMs: 1, maxMs: 100 });
  t.is(clock.pending, 0, "no timer left on the clock (the killed worker's backoff sleep is cancelled)");
});

/*
 * A worker killed while its checkpoint write is in flight may see that write land after its
 * successor claimed the partition. The store refuses it (its epoch is older: checkpoint port
 * invariant 2), so the successor's state stands; the successor replays from the last cut it
 * restored, and the outputs it regenerates keep their IDs, so the next stage gets one copy of each.
 */
test('node invariant 1: a checkpoint write of a killed worker that lands late is fenced off by its successor; state and outputs stay exactly-once', async (t) => {
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

// ---------------------------------------------------------------------------------------------
// Restart backoff
// ---------------------------------------------------------------------------------------------

/*
 * A node's `supervision.backoff` reaches the stage supervisors, which restart the partition
 * workers, and not only the root (which restarts whole stages): a killed partition waits
 * minBackoffMs before its restart (supervisor invariant 6), and that delay grows with repeated
 * restarts.
 */
test('supervisor invariant 6: startNode({ supervision: { backoff } }) sets the delay before a partition worker restarts', async (t) => {
  const { clock, events, node } = await nodeRig(t, counterToTally('node-backoff'), {
    supervision: { backoff: { minBackoffMs: 1_000, maxBackoffMs: 5_000, randomFactor: 0 } },
  });
  node.kill('counter', 0);
  await clock.advanceAsync(0);
  const restarting = ofType(events, 'child-restarting').filter((e) => e.path === 'node-backoff/counter/partition-0');
  t.deepEqual(restarting.map((e) => e.delayMs), [1_000]);
  t.false((await node.status())[0]?.running, 'still waiting out the backoff');
});

/*
 * The defaults of a backoff give way to what the caller set: a caller who sets only maxBackoffMs,
 * below the default minBackoffMs, gets that value as the minimum too, rather than a ConfigError
 * about a field they never set (`minBackoffMs must be <= maxBackoffMs`).
 */
test('supervise() and startNode() accept a backoff that only lowers maxBackoffMs below their default minBackoffMs', async (t) => {
  const clock = new SimulatedClock(0);
  const sup = await supervise(({ signal }) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve())), { clock, backoff: { maxBackoffMs: 50 } });
  await sup.stop();
  const node = await startNode({ pipeline: counterToTally('max-backoff'), clock, logger: silentLogger, supervision: { backoff: { maxBackoffMs: 5 } } });
  await node.stop();
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// Starts that fail
// ---------------------------------------------------------------------------------------------

/*
 * A starting worker republishes the outbox its predecessor left in the checkpoint, then opens its
 * reader; with the connection lost, the publish fails (and is retried with backoff) and the
 * reader cannot be opened, so the start fails. Nothing of a failed start outlives it: its outbox
 * is closed (outbox invariant 3), so no retry timer is left and nothing is republished; each
 * failed restart would otherwise add another outbox retrying for ever.
 */
test('outbox invariant 3: a worker whose start fails after republishing its stored outbox leaves no retry timer and republishes nothing more', async (t) => {
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
  t.is(clock.pending, 0, 'no timer left by the failed start');
  t.is(transport.publishes, publishes, 'nothing republished after the start failed');
});

/*
 * A restart whose start fails (the store is unreachable) counts as another restart and is retried
 * with the next, longer backoff (supervisor invariant 6), so it never spins; past the intensity
 * the supervisor gives up (supervisor invariant 5): it escalates, calls onFatal with the last
 * failure as cause, and leaves no timer, no running worker and no unhandled rejection.
 */
test('supervisor invariants 5 and 6: an actor group whose worker start keeps failing is retried with growing backoff, then escalates to onFatal, leaving nothing behind', async (t) => {
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

/*
 * The same in a node: the stage supervisor gives up on the partition and escalates; the root's
 * restart of the stage fails to start, so the root gives up too and calls onFatal: escalation
 * climbs the tree. A process waiting on the node learns it: whenCaughtUp() rejects with STOPPED,
 * and the tree is 'failed'.
 */
test('supervisor invariant 5: a partition that can never start again escalates partition -> stage -> root -> onFatal; whenCaughtUp rejects STOPPED; no timer is left', async (t) => {
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

/*
 * A child's start may resolve something that is not a usable handle (here `done` is not a
 * promise). The supervisor refuses it and its start() rejects (supervisor invariant 7), but the
 * child did start: it is killed (or stopped, without kill()) first, so whatever it runs does not
 * keep running unsupervised.
 */
test('supervisor invariant 7: a child whose start resolves a malformed handle (done not a promise) fails the start and is killed, not leaked', async (t) => {
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
  t.deepEqual(log, ['kill']);
});

// ---------------------------------------------------------------------------------------------
// Stops
// ---------------------------------------------------------------------------------------------

/*
 * Between a kill and the restart it triggers, the restart is a timer on the clock. stop()
 * cancels it (supervisor invariant 8): no new incarnation comes up after stop(), and no timer
 * is left.
 */
test('node invariant 2: node.stop() while a killed partition worker waits for its restart: nothing restarts, no timer is left', async (t) => {
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

/* The same with an actor group's own backoff under a bare supervisor. */
test('supervisor invariant 8: stop() during the restart backoff of an actor group cancels the restart', async (t) => {
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

/*
 * stop() while a restart is starting (its claim hangs on the store) does not wait for that start:
 * it aborts it and completes. The worker that comes up later, once the store answers, is killed
 * as soon as it arrives (child invariant 3), so no incarnation runs after stop().
 */
test('child invariant 3: node.stop() while a restart is starting (its claim hangs) completes; the late worker is killed when it arrives; no timer is left', async (t) => {
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

/*
 * A graceful stop finishes the input in hand, even one whose actor is waiting out its restart
 * backoff: the stop waits for the backoff (within the 10 s shutdown), the rebuilt actor applies
 * the input, and the final checkpoint covers it. The inputs after it stay in the log for the next
 * incarnation.
 */
test("node invariant 2: node.stop() during an actor's restart backoff finishes the input in hand, then writes the final checkpoint", async (t) => {
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

/* After ordinary traffic, a kill and the restart it caused, stop() still ends every partition with a final checkpoint and leaves nothing on the clock. */
test('node invariant 2: node.stop() after traffic, a kill and a restart writes final checkpoints and leaves no timer on the clock', async (t) => {
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

/*
 * A stopped node will never catch up, so whenCaughtUp() says so at once with STOPPED, rather than
 * polling a stopped node until its timeout (for ever with `timeoutMs: Infinity`) and then
 * reporting a TIMEOUT that hides why.
 */
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
  t.true(outcome instanceof WardenError && outcome.code === 'STOPPED', String(outcome));
  await clock.advanceAsync(60_000);
});
