/**
 * Recovery of a running pipeline (embedded runtime): kills, crashes, replay equivalence,
 * deterministic output IDs. Titles cite the invariants of lib/actor/partition-worker.ts
 * ("worker invariant N") and lib/actor/replay.ts ("replay invariant N").
 */
import test from 'ava';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  SystemClock,
  definePipeline,
  silentLogger,
  startNode,
  type DeadLetter,
  type Json,
  type NodeEvent,
  type Pipeline,
} from '../../lib/index.js';
import { faults } from '../../chaos/faults.js';
import { generateClicks, prng } from '../../scenarios/clickstream/generate.js';
import { clickstreamPipeline } from '../../scenarios/clickstream/pipeline.js';
import { runClickstream } from '../../scenarios/clickstream/run.js';
import { counter, tally } from '../helpers/counter.js';

// The clickstream tests share the process-wide fault injector (chaos/faults.ts), so they run
// one at a time (ava runs serial tests before the concurrent ones).

/** Every actor entry of every stage, as `stage/key -> snapshot`. */
async function allStates(pipeline: Pipeline, store: InMemoryCheckpointStore): Promise<Map<string, Json>> {
  const out = new Map<string, Json>();
  for (const stage of pipeline.stages) {
    for (let p = 0; p < stage.partitions; p++) {
      for (const e of await store.readActors(stage.scopeOf(p))) out.set(`${stage.name}/${e.key}`, e.snapshot);
    }
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))); // Map equality is order-sensitive
}

/** Runs the clickstream pipeline over generated clicks, killing stages at the given indexes. */
async function runWithKills(count: number, kills: Array<{ at: number; stage: string }>, everyEvents: number) {
  const clock = new SystemClock();
  const transport = new InMemoryTransport({ clock });
  const store = new InMemoryCheckpointStore({ clock });
  const pipeline = clickstreamPipeline({ everyEvents, intervalMs: 50 });
  const node = await startNode({ pipeline, transport, checkpointStore: store, clock, logger: silentLogger, supervision: { intensity: 100, backoff: { minBackoffMs: 1, maxBackoffMs: 5 } } });
  const clicks = generateClicks(count, { seed: 7 });
  for (const [i, c] of clicks.entries()) {
    await node.ingest({ id: `click:${c.user}:${c.n}`, key: c.user, type: 'raw', payload: { line: c.line } });
    for (const k of kills) if (k.at === i) node.kill(k.stage);
    if (i % 97 === 0) await new Promise((r) => setImmediate(r)); // let workers interleave with ingestion
  }
  await node.whenCaughtUp({ timeoutMs: 30_000 });
  await node.stop();
  const pagesInfo = await transport.streamInfo(pipeline.stage('pages').stream);
  return { pipeline, transport, states: await allStates(pipeline, store), pagesMessages: pagesInfo.messages };
}

/** Rebuilds every actor from nothing but the log: a fresh store, every stage replayed from seq 1. */
async function rebuildFromLog(pipeline: Pipeline, transport: InMemoryTransport): Promise<Map<string, Json>> {
  const clock = new SystemClock();
  const store = new InMemoryCheckpointStore({ clock });
  const node = await startNode({ pipeline, transport, checkpointStore: store, clock, logger: silentLogger });
  await node.whenCaughtUp({ timeoutMs: 30_000 });
  await node.stop();
  return allStates(pipeline, store);
}

/** Sorts the lists of a pages aggregate: their order depends on how upstream partitions interleaved. */
function orderFree(states: Map<string, Json>): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const [k, v] of states) {
    const snap = v as { context: { applied: string[]; sessions: string[] } };
    if (!k.startsWith('pages/')) out.set(k, v);
    else out.set(k, { ...snap, context: { ...snap.context, applied: [...snap.context.applied].sort(), sessions: [...snap.context.sessions].sort() } });
  }
  return out;
}

test.serial('replay invariant 1: after kills at seeded points, the checkpointed state equals a rebuild from the log alone', async (t) => {
  const count = 1500;
  const rand = prng(2024);
  const clean = await runWithKills(count, [], 100);
  t.true(clean.states.size > 100, 'the clean run produced actor states');
  for (let round = 0; round < 4; round++) {
    const stages = ['parse', 'sessions', 'pages'];
    const kills = Array.from({ length: 3 }, () => ({ at: Math.floor(rand() * count), stage: stages[Math.floor(rand() * 3)]! }));
    const chaotic = await runWithKills(count, kills, 37 + round * 50);
    const label = `round ${round}: kills ${JSON.stringify(kills)}`;
    // Exact: the same logs, replayed from seq 1 by a node that never crashed, give the same state.
    t.deepEqual(await rebuildFromLog(chaotic.pipeline, chaotic.transport), chaotic.states, label);
    // Against an independent clean run: equal but for how the pages stage's inputs from four
    // sessions partitions interleaved (as across input channels in Flink).
    t.deepEqual(orderFree(chaotic.states), orderFree(clean.states), label);
    // Worker invariant 4: replays re-sent outputs with the same IDs; the log kept one copy of each.
    t.is(chaotic.pagesMessages, count, `${label}: one session-view per click in the pages stream`);
  }
});

test.serial('demo scenario: two operator kills and an actor crash lose and duplicate nothing', async (t) => {
  const r = await runClickstream({ events: 3000, name: 'clicks-e1', seed: 11 });
  t.is(r.sent, 3000);
  t.is(r.applied, 3000);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.outOfOrder, 0);
  t.is(r.unexpected, 0);
  t.is(r.deadLettered, r.badInputs);
  t.is(r.actorCrashes, 1);
  t.true(r.workerRestarts >= 6, `every partition of both killed stages restarted (${r.workerRestarts})`);
});

test.serial('a crash inside a keyed actor under load, twenty times over, loses and duplicates nothing', async (t) => {
  const points = Array.from({ length: 20 }, (_, i) => 0.04 + i * 0.047);
  const r = await runClickstream({ events: 4000, name: 'clicks-crashes', seed: 5, kills: [], actorCrashesAt: points, checkpoint: { everyEvents: 50, intervalMs: 100 } });
  t.is(r.actorCrashes, 20);
  t.is(r.applied, 4000);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.outOfOrder, 0);
  t.is(r.deadLettered, r.badInputs, 'every crashed input succeeded on the rebuilt actor');
});

test.serial('negative control: at-least-once sends copies on a replay, and the checker does see the duplicates', async (t) => {
  // No checkpoint is written after the start claim, so a kill replays everything the stage applied;
  // at-least-once outputs carry no dedupe IDs, so the next stage gets every one again.
  const r = await runClickstream({
    events: 1000, name: 'clicks-nodedupe', guarantee: 'at-least-once', actorCrashesAt: [],
    kills: [{ stage: 'sessions', at: 0.8 }], checkpoint: { everyEvents: 1_000_000, intervalMs: 3_600_000 },
  });
  t.is(r.lost, 0);
  t.true(r.duplicated > 0, `duplicates detected: ${r.duplicated}`);
});

function counterPipeline(name: string, maxCrashesPerInput = 3): Pipeline {
  return definePipeline({
    name,
    stages: [
      { actor: counter, partitions: 2, to: 'tally', keyBy: () => 'all', maxCrashesPerInput, checkpoint: { everyEvents: 3, intervalMs: 20 } },
      { actor: tally, partitions: 1 },
    ],
  });
}

test('worker invariant 6: a poison input crashes its actor maxCrashesPerInput times, then is dead-lettered; the rest is applied', async (t) => {
  const events: NodeEvent[] = [];
  const transport = new InMemoryTransport();
  const node = await startNode({ pipeline: counterPipeline('poison', 2), transport, logger: silentLogger, onEvent: (e) => events.push(e) });
  t.teardown(() => node.stop());
  for (const [i, amount] of [1, 2, 666, 3, 4].entries()) await node.ingest({ id: `a${i}`, key: 'k1', type: 'add', payload: { amount } });
  await node.ingest({ id: 'b0', key: 'k2', type: 'add', payload: { amount: 10 } });
  await node.whenCaughtUp();
  const ctx = node.inspect('counter', 'k1')?.context as { count: number; seen: number[] };
  t.deepEqual(ctx.seen, [1, 2, 3, 4]);
  t.is((node.inspect('counter', 'k2')?.context as { count: number }).count, 1);
  t.is(events.filter((e) => e.type === 'actor-crashed').length, 2);
  t.is(events.filter((e) => e.type === 'actor-restarted').length, 2);
  const reader = transport.openReader('poison-dlq', {});
  const [msg] = await reader.next(10, 0);
  await reader.close();
  const letter = JSON.parse(new TextDecoder().decode(msg!.data)) as DeadLetter;
  t.is(letter.reason, 'crashed');
  t.is(letter.key, 'k1');
  t.is(letter.type, 'add');
  t.regex(letter.error, /cannot add 666/);
  t.true(letter.errorChain.some((e) => e.code === 'ACTOR_CRASHED'));
  t.true(letter.errorChain.some((e) => e.message === 'cannot add 666'));
  await node.stop();
});

test('worker invariant 6: a transient crash is retried on the rebuilt actor and nothing is dead-lettered', async (t) => {
  const events: NodeEvent[] = [];
  const node = await startNode({ pipeline: counterPipeline('transient'), logger: silentLogger, onEvent: (e) => events.push(e) });
  t.teardown(() => node.stop());
  faults.disarm();
  const { crashOn } = await import('../helpers/counter.js');
  crashOn.add(33);
  for (const [i, amount] of [1, 2, 3, 33, 5].entries()) await node.ingest({ id: `t${i}`, key: 'k', type: 'add', payload: { amount } });
  await node.whenCaughtUp();
  t.deepEqual((node.inspect('counter', 'k')?.context as { seen: number[] }).seen, [1, 2, 3, 33, 5]);
  t.is(events.filter((e) => e.type === 'actor-crashed').length, 1);
  t.is(events.filter((e) => e.type === 'dead-letter').length, 0);
  // The tally downstream saw each output once, in order.
  t.deepEqual((node.inspect('tally', 'all')?.context as { got: Array<[number, number]> }).got.map(([c]) => c), [1, 2, 3, 4, 5]);
  await node.stop();
});

test('worker invariant 2: invalid inputs are dead-lettered with their reason, body and headers, and never reach the machine', async (t) => {
  const transport = new InMemoryTransport();
  const node = await startNode({ pipeline: counterPipeline('badin'), transport, logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ id: 'ok1', key: 'k', type: 'add', payload: { amount: 1 } });
  await node.ingest({ id: 'bad-schema', key: 'k', type: 'add', payload: { amount: 'one' }, headers: { trace: 't-1' } });
  await node.ingest({ id: 'bad-type', key: 'k', type: 'subtract', payload: { amount: 1 } });
  await transport.publish('badin.counter.0', new TextEncoder().encode('\u0000garbage'), { msgId: 'bad-json' });
  await node.ingest({ id: 'ok2', key: 'k', type: 'add', payload: { amount: 2 } });
  await node.whenCaughtUp();
  t.deepEqual((node.inspect('counter', 'k')?.context as { seen: number[] }).seen, [1, 2]);
  const reader = transport.openReader('badin-dlq', {});
  const letters = (await reader.next(10, 0)).map((m) => JSON.parse(new TextDecoder().decode(m.data)) as DeadLetter);
  await reader.close();
  t.deepEqual(letters.map((l) => l.reason).sort(), ['schema', 'undecodable', 'unknown-event']);
  const schema = letters.find((l) => l.reason === 'schema')!;
  t.regex(schema.error, /amount must be a number/);
  t.deepEqual(schema.headers, {});
  t.is((JSON.parse(schema.body) as { headers: Record<string, string> }).headers.trace, 't-1');
  t.regex(letters.find((l) => l.reason === 'unknown-event')!.error, /'subtract'/);
  t.is(letters.find((l) => l.reason === 'undecodable')!.body, '\u0000garbage');
  await node.stop();
});

test('graceful stop writes a final checkpoint; a new node on the same log and store resumes without re-applying', async (t) => {
  const clock = new SystemClock();
  const transport = new InMemoryTransport({ clock });
  const store = new InMemoryCheckpointStore({ clock });
  const pipeline = counterPipeline('resume');
  const first = await startNode({ pipeline, transport, checkpointStore: store, clock, logger: silentLogger });
  for (let i = 0; i < 10; i++) await first.ingest({ id: `r${i}`, key: `k${i % 3}`, type: 'add', payload: { amount: i } });
  await first.whenCaughtUp();
  await first.stop();
  const second = await startNode({ pipeline, transport, checkpointStore: store, clock, logger: silentLogger });
  t.teardown(() => second.stop());
  await second.ingest({ id: 'r10', key: 'k0', type: 'add', payload: { amount: 10 } });
  await second.whenCaughtUp();
  t.deepEqual((second.inspect('counter', 'k0')?.context as { seen: number[] }).seen, [0, 3, 6, 9, 10]);
  const applied = (await second.status()).filter((p) => p.stage === 'counter').reduce((s, p) => s + p.applied, 0);
  t.is(applied, 1, 'only the new input was applied by the second node');
  t.is((second.inspect('tally', 'all')?.context as { got: unknown[] }).got.length, 11);
  await second.stop();
});

test('an actor that reaches a final state is removed at the next checkpoint and starts fresh on its next input', async (t) => {
  const clock = new SystemClock();
  const store = new InMemoryCheckpointStore({ clock });
  const pipeline = counterPipeline('final');
  const node = await startNode({ pipeline, checkpointStore: store, clock, logger: silentLogger });
  t.teardown(() => node.stop());
  await node.ingest({ id: 'f1', key: 'k', type: 'add', payload: { amount: 5 } });
  await node.ingest({ id: 'f2', key: 'k', type: 'finish' });
  await node.whenCaughtUp();
  t.is(node.inspect('counter', 'k')?.status, 'done');
  await node.ingest({ id: 'f3', key: 'k', type: 'add', payload: { amount: 7 } });
  await node.whenCaughtUp();
  t.deepEqual((node.inspect('counter', 'k')?.context as { seen: number[] }).seen, [7]);
  await node.stop();
  const entries = [...(await store.readActors(pipeline.stage('counter').scopeOf(0))), ...(await store.readActors(pipeline.stage('counter').scopeOf(1)))];
  t.deepEqual(entries.map((e) => e.key), ['k']);
});
