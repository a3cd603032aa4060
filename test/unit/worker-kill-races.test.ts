/**
 * A partition worker killed in the middle of something (its start, an actor load, its graceful
 * stop), and a successor taking over from a corrupt checkpoint while its predecessor still runs.
 *
 * What holds throughout (worker invariants 5, 7 and 7'): a kill is final, whatever the worker was
 * awaiting when it came: nothing is applied, published or written afterwards and `done()` rejects
 * with `KILLED`, so the supervisor sees an abnormal exit; and a successor always fences the
 * incarnation it replaces.
 *
 * Each test drives a bare `PartitionWorker` on its own `SimulatedClock`, transport and gated store.
 */
import test from 'ava';
import { SimulatedClock } from '../../lib/core/clock.js';
import { encodeEnvelope } from '../../lib/core/envelope.js';
import { InMemoryCheckpointStore, InMemoryTransport, WardenError, silentLogger, type PubAck, type WorkerEvent } from '../../lib/index.js';
import { PartitionWorker } from '../../lib/worker/worker.js';
import { counterToTally, ensureStreams, GateStore, messages, scopeIn } from '../helpers/node-rig.js';
import { settle, type CounterCtx } from '../helpers/worker-rig.js';

/** A bare partition worker of the counter stage on its own clock, transport and gated store. */
async function workerRig(name: string) {
  const clock = new SimulatedClock(0);
  const transport = new InMemoryTransport({ clock });
  const store = new GateStore(new InMemoryCheckpointStore({ clock }));
  const pipeline = counterToTally(name);
  await ensureStreams(transport, pipeline);
  const events: WorkerEvent[] = [];
  const worker = new PartitionWorker({ stage: pipeline.stage('counter'), routing: pipeline.routing('counter'), partition: 0, transport, store, clock, logger: silentLogger, onEvent: (e) => events.push(e) });
  const send = (key: string, amount: number): Promise<PubAck> =>
    transport.publish(pipeline.stage('counter').subjectOf(0), encodeEnvelope({ id: `in:${key}:${amount}`, key, type: 'add', payload: { amount }, headers: {}, ts: 0 }), { msgId: `in:${key}:${amount}` });
  return { clock, transport, store, pipeline, events, worker, send };
}

/*
 * A node hands a supervisor the worker before its start() resolves, so a kill (an operator's, or
 * chaos testing's) can arrive while the worker claims the partition and restores its checkpoint.
 * The start then ends in the kill: the worker never comes up running. One that did would read and
 * apply inputs with the outbox the kill closed, dropping their outputs while checkpointing past
 * them: lost for good.
 */
test("worker invariant 7: kill() while start() is in flight leaves the worker dead: it never runs, and no 'restored' follows 'killed'", async (t) => {
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
  t.false(rig.worker.running, 'a killed worker is not running');
  t.false(applied > 0 && outputs.length === 0, `applied seq ${applied} (checkpointed at ${meta?.seq}) but published ${outputs.length} outputs`);
  t.false(rig.events.some((e) => e.type === 'restored'), "no 'restored' after 'killed'");
});

/*
 * An actor's first input loads it from the store, an await during which the worker may be
 * killed. The host that arrives afterwards is stopped and dropped, and the input is not applied:
 * a killed worker leaves no live actor behind (worker invariant 7' in lib/worker/keyed-actors.ts).
 */
test("worker invariant 7': kill() while an actor is being loaded from the store leaves no live actor, and the input is never applied", async (t) => {
  const rig = await workerRig('kill-in-load');
  await rig.worker.start();
  rig.store.holdActorReads = true;
  await rig.send('a', 1);
  await settle();
  rig.worker.kill();
  rig.store.release();
  await settle();
  const live = rig.worker.inspect('a');
  t.false(live?.status === 'active', 'no live actor left behind by a killed worker');
  t.not((live?.context as CounterCtx | undefined)?.seen.includes(1), true, 'the input was applied after the kill');
});

/*
 * A supervisor kills a child whose graceful stop outlasts its shutdown timeout, here while the
 * final checkpoint hangs in a slow store. The kill wins: when the write lands, the stop does not
 * go on to report 'stopped', and done() rejects with KILLED, so the exit is seen as abnormal.
 */
test("worker invariant 7: kill() during a graceful stop wins: no 'stopped' after 'killed', and done() rejects KILLED", async (t) => {
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

/*
 * A successor that finds the partition's meta corrupt clears the checkpoint and replays the
 * partition from the log. Its claim still takes an epoch above every epoch claimed before
 * (checkpoint port invariant 7: the epoch outlives `clear`), so the predecessor, still running,
 * is refused at its next checkpoint write and stops. An epoch reset by the clear would let both
 * write as owners of one partition.
 */
test('worker invariant 5: a worker that recovers from a corrupt meta still claims a newer epoch and fences its running predecessor', async (t) => {
  const rig = await workerRig('corrupt-meta-fence');
  const pipeline = counterToTally('corrupt-meta-fence', { checkpoint: { everyEvents: 1, intervalMs: 1_000 } });
  const make = (events: WorkerEvent[]): PartitionWorker =>
    new PartitionWorker({ stage: pipeline.stage('counter'), routing: pipeline.routing('counter'), partition: 0, transport: rig.transport, store: rig.store, clock: rig.clock, logger: silentLogger, onEvent: (e) => events.push(e) });
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
  t.true((newEpoch ?? 0) > (oldEpoch ?? 0), `successor epoch ${newEpoch} > predecessor epoch ${oldEpoch}`);
  t.false(old.running, 'the predecessor was fenced off at its next checkpoint');
});
