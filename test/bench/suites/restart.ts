/**
 * Suite `restart`, in memory:
 * 1. Time from the crash of a small keyed actor (an action throws) to its first processed event
 *    after the restart (the crashed input, retried on the actor rebuilt from its checkpoint plus
 *    replay), p50 and p99 over 1,000 crashes. Timestamps are taken inside the machine's actions.
 * 2. Restarts per second a supervisor sustains: a worker child that crashes as soon as it starts,
 *    restarted with no backoff, for a fixed number of restarts.
 */
import { assign, setup } from 'xstate';
import { createSupervisor, defineActor, definePipeline, silentLogger, startNode, SystemClock } from '../../../lib/index.js';
import { fmt, type Suite } from '../suite.js';

const CRASHES = 1_000;
const KEYS = 50;
const armed = new Set<number>();
let crashedAt = 0;
let processedAt = 0;

const machine = setup({
  types: { context: {} as { n: number }, events: {} as { type: 'tick'; i: number } },
  actions: {
    work: ({ event }) => {
      if (armed.delete(event.i)) {
        crashedAt = performance.now();
        throw new Error(`crash at ${event.i}`);
      }
      processedAt = performance.now();
    },
  },
}).createMachine({ context: { n: 0 }, on: { tick: { actions: ['work', assign({ n: ({ context }) => context.n + 1 })] } } });
const ticker = defineActor({ name: 'ticker', machine });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function actorRestartLatency(log: (l: string) => void): Promise<number[]> {
  const pipeline = definePipeline({
    name: 'bench-restart',
    stages: [{ actor: ticker, partitions: 1, checkpoint: { everyEvents: 100, intervalMs: 1000 }, supervision: { intensity: 1_000_000 } }],
  });
  const node = await startNode({ pipeline, logger: silentLogger });
  const samples: number[] = [];
  let i = 0;
  for (let c = 0; c < CRASHES; c++) {
    const key = `k${c % KEYS}`;
    for (let j = 0; j < 5; j++) await node.ingest({ id: `t${i}`, key, type: 'tick', payload: { i: i++ } });
    armed.add(i);
    processedAt = 0;
    await node.ingest({ id: `t${i}`, key, type: 'tick', payload: { i: i++ } });
    await node.whenCaughtUp({ pollMs: 0 });
    if (armed.size !== 0 || processedAt <= crashedAt) throw new Error(`crash ${c} was not followed by the retried input`);
    samples.push(processedAt - crashedAt);
    if ((c + 1) % 250 === 0) log(`  ${c + 1}/${CRASHES} crashes`);
  }
  await node.stop();
  return samples.sort((a, b) => a - b);
}

async function supervisorRestartsPerSec(total: number): Promise<number> {
  let starts = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const sup = createSupervisor({
    intensity: total * 10,
    periodMs: 60_000,
    clock: new SystemClock(),
    backoff: { minBackoffMs: 0, maxBackoffMs: 0, randomFactor: 0 },
    children: [
      {
        id: 'crasher',
        start: () => {
          starts++;
          if (starts > total) {
            finish();
            return Promise.resolve({ stop: () => Promise.resolve() });
          }
          return Promise.resolve({ stop: () => Promise.resolve(), done: Promise.reject(new Error('boom')) });
        },
      },
    ],
  });
  const t0 = performance.now();
  await sup.start();
  await finished;
  const secs = (performance.now() - t0) / 1000;
  await sup.stop();
  return total / secs;
}

export const restart: Suite = {
  async run(log) {
    log(`restart: ${CRASHES} keyed-actor crashes (checkpoint every 100 events, ${KEYS} keys), then supervisor restarts`);
    const s = await actorRestartLatency(log);
    const p50 = percentile(s, 50);
    const p99 = percentile(s, 99);
    const rps = await supervisorRestartsPerSec(20_000);
    return {
      rows: [
        ['keyed actor crash -> first processed event, p50 ms', p50.toFixed(3)],
        ['keyed actor crash -> first processed event, p99 ms (goal < 5)', p99.toFixed(3)],
        ['keyed actor crash -> first processed event, max ms', (s.at(-1) ?? 0).toFixed(3)],
        ['supervisor restarts per second (worker crashing on start)', fmt(rps)],
      ],
      figures: { p50Ms: Number(p50.toFixed(3)), p99Ms: Number(p99.toFixed(3)), maxMs: Number((s.at(-1) ?? 0).toFixed(3)), restartsPerSec: Math.round(rps) },
    };
  },
};
