/**
 * Suite `coldload`: how fast a node applies inputs for keys that are not in memory, each with a
 * checkpoint entry in Redis (`WARDEN_REDIS_URL`, default redis://127.0.0.1:6379): the first input of
 * every key after a restart or a takeover. A first node writes one input for each of K keys
 * (`BENCH_COLDLOAD_KEYS`, default 10,000) and a final checkpoint, and stops; K more inputs, one per
 * key, are put in the log; a second node on the same log and store is started and timed from its
 * start to the last of them applied (its restore included). The log is the in-memory one, so the
 * figure is about loading actors, not reading the log. Median of `BENCH_COLDLOAD_ROUNDS` (3) rounds.
 */
import { randomBytes } from 'node:crypto';
import { assign, setup } from 'xstate';
import { defineActor, definePipeline, InMemoryTransport, silentLogger, startNode } from '../../../lib/index.js';
import { RedisCheckpointStore } from '../../../lib/adapters/redis/index.js';
import { encodeEnvelope } from '../../../lib/core/envelope.js';
import { fmt, median, type Suite } from '../suite.js';

const KEYS = Number(process.env.BENCH_COLDLOAD_KEYS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_COLDLOAD_ROUNDS ?? 3);
const REDIS_URL = process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379';

const counter = defineActor({
  name: 'counter',
  machine: setup({ types: { context: {} as { n: number }, events: {} as { type: 'inc' } } }).createMachine({ context: { n: 0 }, on: { inc: { actions: assign({ n: ({ context }) => context.n + 1 }) } } }),
});

async function round(id: string): Promise<number> {
  const name = `coldload-${id}`;
  const pipeline = definePipeline({ name, stages: [{ actor: counter, partitions: 1, checkpoint: { intervalMs: 1_000 } }] });
  const transport = new InMemoryTransport();
  const store = await RedisCheckpointStore.connect({ url: REDIS_URL, keyPrefix: `warden-bench-${name}`, logger: silentLogger });
  try {
    const first = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
    for (let k = 0; k < KEYS; k++) await first.ingest({ key: `key-${k}`, type: 'inc', id: `a-${k}` });
    await first.whenCaughtUp({ timeoutMs: 120_000 });
    await first.stop(); // final checkpoint: every key has an entry
    const subject = pipeline.stages[0]!.subjectOf(0);
    for (let k = 0; k < KEYS; k++) await transport.publish(subject, encodeEnvelope({ id: `b-${k}`, key: `key-${k}`, type: 'inc', payload: {}, headers: {}, ts: 0 }), { msgId: `b-${k}` });
    const t0 = performance.now();
    const second = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
    await second.whenCaughtUp({ timeoutMs: 120_000, pollMs: 1 });
    const ms = performance.now() - t0;
    const n = ((await second.readState('counter', `key-${KEYS - 1}`))?.context as { n: number }).n;
    if (n !== 2) throw new Error(`key-${KEYS - 1} counted ${n}, expected 2`);
    await second.stop();
    await store.drop(pipeline.stages[0]!.scopeOf(0));
    return ms;
  } finally {
    await store.close();
  }
}

/**
 * The suite (see the file comment).
 *
 * @example npm run bench -- coldload --json
 */
export const coldload: Suite = {
  async run(log) {
    const id = randomBytes(3).toString('hex');
    log(`coldload: ${fmt(KEYS)} keys with an entry in Redis, one input each after a restart, ${ROUNDS} rounds`);
    const times: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ms = await round(`${id}-${r}`);
      times.push(ms);
      log(`  round ${r + 1}: ${fmt(ms)} ms, ${fmt(KEYS / (ms / 1000))} cold keys/s`);
    }
    const ms = median(times);
    return {
      rows: [
        [`start -> ${fmt(KEYS)} cold keys applied (restore included), ms (median)`, fmt(ms)],
        ['cold keys applied per second', fmt(KEYS / (ms / 1000))],
      ],
      figures: { coldKeys: KEYS, coldLoadMs: Math.round(ms), coldKeysPerSec: Math.round(KEYS / (ms / 1000)) },
    };
  },
};
