/**
 * Suite `alloc`: bytes allocated per input on the path of an input, by whose code allocated them.
 * An embedded node (in-memory log and store, `metrics: false`) applies N inputs (`BENCH_ALLOC_N`,
 * default 100,000) over 1,000 keys to the counter sink, with a checkpoint every second, while V8's
 * sampling heap profiler (through `node:inspector`, one sample per 1 KB allocated, objects collected
 * by minor and major GCs included) records where allocations happen. Each sample is charged to the
 * innermost frame that is warden's (`lib/`), xstate's or a client library's; the rest (Node, the
 * test's own code) is "other". The log is filled before sampling starts.
 *
 * Sampling: the per-function figures move by tens of bytes between runs; the totals by a few
 * percent.
 */
import { Session } from 'node:inspector/promises';
import { assign, setup } from 'xstate';
import { defineActor, definePipeline, InMemoryCheckpointStore, InMemoryTransport, silentLogger, startNode } from '../../../lib/index.js';
import { encodeEnvelope } from '../../../lib/core/envelope.js';
import { fmt, type Suite } from '../suite.js';

const N = Number(process.env.BENCH_ALLOC_N ?? 100_000);

const counter = defineActor({
  name: 'counter',
  machine: setup({ types: { context: {} as { n: number }, events: {} as { type: 'inc' } } }).createMachine({ context: { n: 0 }, on: { inc: { actions: assign({ n: ({ context }) => context.n + 1 }) } } }),
});

interface ProfileNode {
  selfSize: number;
  callFrame: { functionName: string; url: string };
  children: ProfileNode[];
}

type Owner = 'warden' | 'xstate' | 'clients' | 'other';

function ownerOf(url: string, inherited: Owner): Owner {
  if (url.includes('node_modules/xstate')) return 'xstate';
  if (url.includes('node_modules/@nats-io') || url.includes('node_modules/ioredis')) return 'clients';
  if (url.includes('/lib/') && !url.includes('node_modules')) return 'warden';
  return inherited;
}

export const alloc: Suite = {
  async run(log) {
    const pipeline = definePipeline({ name: 'alloc', stages: [{ actor: counter, checkpoint: { intervalMs: 1000, everyEvents: 10 * N } }] });
    const stage = pipeline.stages[0]!;
    const transport = new InMemoryTransport();
    const checkpointStore = new InMemoryCheckpointStore();
    await transport.ensureStream({ name: stage.stream, subjects: [`${pipeline.name}.${stage.name}.*`], duplicateWindowMs: 120_000 });
    for (let i = 0; i < N; i++) {
      await transport.publish(stage.subjectOf(0), encodeEnvelope({ id: `m-${i}`, key: `key-${i % 1000}`, type: 'inc', payload: {}, headers: {}, ts: 0 }), { msgId: `m-${i}` });
    }
    log(`alloc: ${fmt(N)} inputs over 1,000 keys in the log; sampling allocations while a node applies them`);
    const session = new Session();
    session.connect();
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true } as never);
    const t0 = performance.now();
    const node = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger, metrics: false });
    await node.whenCaughtUp({ timeoutMs: 600_000 });
    const ms = performance.now() - t0;
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
    session.disconnect();
    await node.stop();

    const byOwner = new Map<Owner, number>();
    const byWardenFn = new Map<string, number>();
    const walk = (n: ProfileNode, inherited: Owner): void => {
      const owner = ownerOf(n.callFrame.url, inherited);
      byOwner.set(owner, (byOwner.get(owner) ?? 0) + n.selfSize);
      if (owner === 'warden' && n.selfSize > 0) {
        const k = `${n.callFrame.functionName || '(anonymous)'} (${n.callFrame.url.replace(/.*\/lib\//, 'lib/')})`;
        byWardenFn.set(k, (byWardenFn.get(k) ?? 0) + n.selfSize);
      }
      for (const c of n.children) walk(c, owner === 'other' || owner === 'clients' ? inherited : owner);
    };
    walk(profile.head, 'other');
    const per = (owner: Owner): number => Math.round((byOwner.get(owner) ?? 0) / N);
    const top = [...byWardenFn].sort((a, b) => b[1] - a[1]).slice(0, 6);
    return {
      rows: [
        ['inputs applied (embedded, counter sink), µs per input (slowed several times by the sampling)', (ms * 1000 / N).toFixed(2)],
        ['bytes allocated per input by warden (lib/)', fmt(per('warden'))],
        ['bytes allocated per input by xstate', fmt(per('xstate'))],
        ['bytes allocated per input by other code (Node, clients)', fmt(per('other') + per('clients'))],
        ...top.map(([k, v]): [string, string] => [`  warden: ${k}`, fmt(v / N)]),
      ],
      figures: { allocInputs: N, wardenBytesPerInput: per('warden'), xstateBytesPerInput: per('xstate'), otherBytesPerInput: per('other') + per('clients'), usPerInput: Number((ms * 1000 / N).toFixed(2)) },
    };
  },
};
