/**
 * Suite `checkpoint`: partition checkpoint writes/s through `RedisCheckpointStore` (sealing the
 * 1 KB actor entry and the meta, fencing in the Lua script, error translation) versus the same
 * Lua script called raw through ioredis with pre-built arguments, in the same run. Both keep 64
 * writes in flight, each of the 64 lanes writing its own partition with increasing seqs, against
 * `WARDEN_REDIS_URL` (default redis://127.0.0.1:6379). Median of alternating rounds. A third
 * figure, the raw script with the entry sealed per write, shows how much of the gap is the
 * shared codec (a SHA-1 and a JSON.stringify of the 1 KB entry) rather than the store.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { silentLogger } from '../../../lib/core/logger.js';
import type { Json } from '../../../lib/core/envelope.js';
import { sealEntry } from '../../../lib/checkpoint/codec.js';
import { RedisCheckpointStore } from '../../../lib/adapters/redis/index.js';
import { WRITE_COMMAND, WRITE_SCRIPT } from '../../../lib/adapters/redis/lua.js';
import { fmt, median, type Suite } from '../suite.js';

const IN_FLIGHT = 64;
const WRITES = 40_000;
const ROUNDS = 5;

/** About 1 KB of actor state once serialised. */
function snapshot(n: number): Json {
  return { value: 'active', status: 'active', context: { n, user: `user-${n}`, blob: 'x'.repeat(940) } };
}

type RawClient = Redis & { [WRITE_COMMAND](...args: Array<string | number>): Promise<unknown> };

/** Runs `WRITES` writes with `IN_FLIGHT` lanes; returns writes/s. */
async function drive(write: (lane: number, seq: number) => Promise<unknown>, seqBase: number): Promise<number> {
  let issued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, lane) => {
      let seq = seqBase;
      while (issued < WRITES) {
        issued++;
        await write(lane, ++seq);
      }
    }),
  );
  return WRITES / ((performance.now() - t0) / 1000);
}

export const checkpoint: Suite = {
  async run(log) {
    const url = process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379';
    const prefix = `warden-bench-${randomBytes(4).toString('hex')}`;
    const store = await RedisCheckpointStore.connect({ url, keyPrefix: `${prefix}-store`, logger: silentLogger });
    const raw = new Redis(url) as RawClient;
    raw.defineCommand(WRITE_COMMAND, { numberOfKeys: 4, lua: WRITE_SCRIPT });
    const state = snapshot(1);
    const entryBytes = sealEntry({ key: 'k', snapshot: state, machineVersion: '1', seq: 1 }).length;
    log(`checkpoint: ${WRITES} writes per round, ${IN_FLIGHT} in flight on ${IN_FLIGHT} partitions, ${entryBytes} B sealed actor entry, ${ROUNDS} rounds alternating (median reported)`);

    // Raw: the same script and argument shape, everything pre-built but the seq.
    const sealed = sealEntry({ key: 'k', snapshot: state, machineVersion: '1', seq: 1 });
    const before = `${JSON.stringify({ scope: { operator: 'bench', partition: 0 }, seq: 1, epoch: 1, machineVersion: '1', outbox: [] }).slice(0, -1)},"actorCount":`;
    const after = ',"writtenAtMs":0}';
    const rawKeys = Array.from({ length: IN_FLIGHT }, (_, p) => [`${prefix}-raw:{bench/${p}}:meta`, `${prefix}-raw:{bench/${p}}:actors`, `${prefix}-raw:{bench/${p}}:claim`, `${prefix}-raw:{bench/${p}}:staging`] as const);
    const rawWrite = (lane: number, seq: number): Promise<unknown> => {
      const [meta, actors, claim, staging] = rawKeys[lane]!;
      return raw[WRITE_COMMAND](meta, actors, claim, staging, '1', String(seq), 'w', before, after, 1, 'k', sealed);
    };
    // Raw, but sealing the entry per write as the store must: shows what the codec costs.
    const rawSealedWrite = (lane: number, seq: number): Promise<unknown> => {
      const [meta, actors, claim, staging] = rawKeys[lane]!;
      return raw[WRITE_COMMAND](meta, actors, claim, staging, '1', String(seq), 'w', before, after, 1, 'k', sealEntry({ key: 'k', snapshot: state, machineVersion: '1', seq }));
    };
    const storeWrite = (lane: number, seq: number): Promise<unknown> =>
      store.write({ scope: { operator: 'bench', partition: lane }, seq, epoch: 1, machineVersion: '1', actors: { k: state }, outbox: [] });

    let seqBase = 0;
    const next = (): number => (seqBase += WRITES + 1);
    try {
      await drive(rawWrite, next()); // warm-up (loads the script, JIT)
      await drive(storeWrite, next());
      const r: number[] = [];
      const rs: number[] = [];
      const s: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        r.push(await drive(rawWrite, next()));
        rs.push(await drive(rawSealedWrite, next()));
        s.push(await drive(storeWrite, next()));
        log(`  round ${round + 1}: raw script ${fmt(r.at(-1)!)}/s  raw + sealing ${fmt(rs.at(-1)!)}/s  RedisCheckpointStore ${fmt(s.at(-1)!)}/s`);
      }
      const rawPerSec = median(r);
      const rawSealedPerSec = median(rs);
      const storePerSec = median(s);
      const ratio = storePerSec / rawPerSec;
      return {
        rows: [
          ['raw Lua script through ioredis (pre-built args), writes/s', fmt(rawPerSec)],
          ['raw Lua script + sealing the entry per write (codec SHA-1 + JSON), writes/s', fmt(rawSealedPerSec)],
          ['RedisCheckpointStore.write (seal entry + meta, script, translate), writes/s', fmt(storePerSec)],
          ['ratio store / raw', ratio.toFixed(3)],
        ],
        figures: {
          checkpointWritesPerSec: Math.round(storePerSec),
          rawCheckpointWritesPerSec: Math.round(rawPerSec),
          ratio: Number(ratio.toFixed(3)),
          rawSealedWritesPerSec: Math.round(rawSealedPerSec),
        },
      };
    } finally {
      for (let p = 0; p < IN_FLIGHT; p++) {
        await store.clear({ operator: 'bench', partition: p });
        await raw.del(...rawKeys[p]!);
      }
      await store.close();
      raw.disconnect();
    }
  },
};
