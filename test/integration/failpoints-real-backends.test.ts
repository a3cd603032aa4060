/**
 * Failpoint chaos on the real servers (JetStream on 127.0.0.1:4222, Redis on 6379): a smaller
 * version of test/unit/failpoints.test.ts. Every failpoint of lib/actor/partition-worker.ts, under
 * every guarantee, crashes a worker of the clickstream pipeline on a couple of seeds:
 *
 *   exactly-once  -> nothing lost, nothing duplicated (and nothing out of order)
 *   at-least-once -> nothing lost
 *   at-most-once  -> nothing duplicated
 *
 * and each armed failpoint must have fired. Here publishes are acknowledged over a real
 * connection and cuts are Lua scripts in Redis, so outputs are in flight while cuts are taken.
 * Every run has its own pipeline name; its streams and checkpoints are deleted afterwards.
 */
import test, { type ExecutionContext } from 'ava';
import type { CheckpointStore, DeadLetter, Guarantee, Transport } from '../../lib/index.js';
import type { Failpoint } from '../../lib/worker/worker.js';
import { openBackends } from '../../lib/cli/backends.js';
import { prng } from '../../scenarios/clickstream/generate.js';
import { clickstreamPipeline } from '../../scenarios/clickstream/pipeline.js';
import { runClickstream, type ClickstreamOptions, type FailpointArming } from '../../scenarios/clickstream/run.js';

const EVENTS = 300;
const SEEDS = [1, 2];
const POINTS: Failpoint[] = ['before-checkpoint-write', 'after-checkpoint-write', 'after-publish', 'during-replay', 'during-restore'];
const GUARANTEES: Guarantee[] = ['exactly-once', 'at-least-once', 'at-most-once'];
const PARTITIONS: Record<string, number> = { parse: 2, sessions: 4, pages: 2 };

/** Where, when and how often `point` crashes a worker in one seeded run (as in the unit matrix). */
function planRun(guarantee: Guarantee, point: Failpoint, seed: number): ClickstreamOptions & { failpoints: FailpointArming[] } {
  const rand = prng(seed * 7919 + POINTS.indexOf(point) * 131 + GUARANTEES.indexOf(guarantee) * 17 + 5);
  const stage = point === 'during-replay' ? 'sessions' : (['parse', 'sessions', 'pages'] as const)[Math.floor(rand() * 3)]!;
  const partition = point === 'during-replay' || rand() < 0.25 ? undefined : Math.floor(rand() * PARTITIONS[stage]!);
  const arm = (nth: number): FailpointArming => ({ point, stage, nth, ...(partition === undefined ? {} : { partition }) });
  const base: ClickstreamOptions = { events: EVENTS, seed, guarantee, kills: [], actorCrashesAt: [], checkpoint: { everyEvents: 20, intervalMs: 50 } };
  switch (point) {
    case 'after-publish':
      return { ...base, failpoints: [arm(1 + Math.floor(rand() * (EVENTS / (partition === undefined ? 1 : PARTITIONS[stage]!)) * 0.6))] };
    case 'before-checkpoint-write':
    case 'after-checkpoint-write':
      return { ...base, failpoints: [arm(1 + Math.floor(rand() * 2))] };
    case 'during-restore':
      // A restore follows a crash: kill the stage, then crash its restart.
      return { ...base, kills: [{ stage, at: 0.2 + rand() * 0.5 }], failpoints: [arm(1)] };
    case 'during-replay': {
      // Reached as a crashed actor's rebuild starts and after each input it replays.
      const first = 0.1 + rand() * 0.2;
      return { ...base, users: 12, actorCrashesAt: [first, first + 0.25, first + 0.5], failpoints: [arm(1 + Math.floor(rand() * 3))] };
    }
  }
}

/** Every message of `stream`, decoded as JSON. */
async function readAll<T>(transport: Transport, stream: string): Promise<T[]> {
  const out: T[] = [];
  const reader = transport.openReader(stream, {});
  for (let batch = await reader.next(1000, 200); batch.length > 0; batch = await reader.next(1000, 200)) {
    for (const m of batch) out.push(JSON.parse(new TextDecoder().decode(m.data)) as T);
  }
  await reader.close();
  return out;
}

/** Deletes a run's streams, checkpoints and claims from the shared servers. */
async function cleanUp(name: string, transport: Transport, store: CheckpointStore): Promise<void> {
  const pipeline = clickstreamPipeline({ name });
  for (const stage of pipeline.stages) {
    await transport.deleteStream(stage.stream).catch(() => undefined);
    for (let p = 0; p < stage.partitions; p++) await store.drop(stage.scopeOf(p));
  }
  await transport.deleteStream(pipeline.deadLetterStream).catch(() => undefined);
}

async function cell(t: ExecutionContext, guarantee: Guarantee, point: Failpoint): Promise<void> {
  const backends = await openBackends({ nats: 'nats://127.0.0.1:4222', redis: 'redis://127.0.0.1:6379' });
  t.teardown(() => backends.close());
  const transport = backends.transport!;
  const store = backends.checkpointStore!;
  const t0 = performance.now();
  const lines: string[] = [];
  for (const seed of SEEDS) {
    const name = `it-fp-${Math.random().toString(36).slice(2, 8)}`;
    const plan = planRun(guarantee, point, seed);
    try {
      const r = await runClickstream({ ...plan, name, transport, checkpointStore: store });
      const letters = await readAll<DeadLetter>(transport, `${name}-dlq`);
      const where = `${plan.failpoints[0]!.stage}/${plan.failpoints[0]!.partition ?? '*'} nth ${plan.failpoints.map((a) => a.nth).join(',')}`;
      const label = `${guarantee} ${point} seed ${seed} (${where}): lost ${r.lost} dup ${r.duplicated} ooo ${r.outOfOrder} ` +
        `fired ${r.failpointsFired.map((f) => `${f.stage}/${f.partition}@${f.seq}`).join(',')}` +
        (r.examples.lost.length ? ` e.g. lost ${r.examples.lost.slice(0, 3).join(' ')}` : '') +
        (r.examples.duplicated.length ? ` e.g. dup ${r.examples.duplicated.slice(0, 3).join(' ')}` : '');
      lines.push(label);
      t.is(r.failpointsFired.length, plan.failpoints.length, `${label}: every armed failpoint fired`);
      t.true(r.failpointsFired.every((f) => f.point === point), label);
      if (point === 'during-replay') t.true(r.actorCrashes >= 1, `${label}: an actor crashed, so one was rebuilt`);
      t.is(r.sent, EVENTS, label);
      t.is(r.unexpected, 0, label);
      const ids = letters.map((l) => `${l.stage}/${l.partition}@${l.seq}`);
      t.is(new Set(ids).size, ids.length, `${label}: no dead letter stored twice (${ids.join(' ')})`);
      if (guarantee === 'at-most-once') t.true(ids.length <= r.badInputs, `${label}: dead letters ${ids.join(' ')}`);
      else t.is(ids.length, r.badInputs, `${label}: dead letters ${ids.join(' ')}`);
      if (guarantee !== 'at-most-once') t.is(r.lost, 0, `${label}: ${guarantee} loses nothing`);
      if (guarantee !== 'at-least-once') t.is(r.duplicated, 0, `${label}: ${guarantee} duplicates nothing`);
      if (guarantee === 'exactly-once') t.is(r.outOfOrder, 0, `${label}: exactly-once keeps each user's clicks in order`);
    } finally {
      await cleanUp(name, transport, store);
    }
    await t.throwsAsync(transport.streamInfo(`${name}-parse`), undefined, `${name}: the run's streams are gone from the shared server`);
  }
  t.log(`${guarantee} x ${point}: ${SEEDS.length} seeds in ${Math.round(performance.now() - t0)} ms`);
  for (const line of lines) t.log(`  ${line}`);
}

for (const guarantee of GUARANTEES) {
  for (const point of POINTS) {
    test.serial(`JetStream + Redis, ${guarantee}: a worker crashed at '${point}' keeps the guarantee`, async (t) => {
      await cell(t, guarantee, point);
    });
  }
}
