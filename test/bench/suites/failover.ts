/**
 * Suite `failover`, on the real servers (NATS with JetStream and KV, Redis), with node processes
 * (`warden worker` on test/fixtures/cluster-pipeline.ts: counter x6 -> tally, exactly once):
 *
 * 1. From the SIGKILL of a node to the first output produced by the new owner of each counter
 *    partition it owned (the first output of that partition, in the sink's stream, under a newer
 *    epoch; times are the stream's timestamps, on this machine's clock), over `FAILOVER_KILLS`
 *    kills (default 20) under a steady load:
 *    - `parent`: three nodes under `warden worker --nodes 3`, whose parent sees a child exit and
 *      revokes its leases at once;
 *    - `lease`: three independent nodes; only the lease TTL tells.
 *    After each kill a replacement node joins and the cluster rebalances before the next kill.
 * 2. Scaling: the counter stage alone (no sink) on 1, 2 and 3 node processes, inputs applied per
 *    second (a burst published to the stream, timed until every key counted every input), and per
 *    core of this machine.
 */
import { cpus } from 'node:os';
import { ClusterRig, type NodeProc } from '../../helpers/cluster-procs.js';
import { fmt, type Suite } from '../suite.js';

const KILLS = Number(process.env.FAILOVER_KILLS ?? 20);
const TTL_MS = Number(process.env.FAILOVER_TTL_MS ?? 2_000);

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Tails the sink's stream: per counter partition, the epochs of its outputs and when they were stored. */
class OutputWatch {
  private readonly latest = new Map<string, number>();
  private readonly waiting: Array<{ source: string; above: number; resolve: (storedAt: number) => void }> = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly rig: ClusterRig) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const reader = this.rig.transport.openReader(this.rig.pipeline.stage('tally').stream, {});
    try {
      while (!this.stopped) {
        for (const m of await reader.next(500, 100)) {
          const env = JSON.parse(new TextDecoder().decode(m.data)) as { headers: Record<string, string> };
          const source = (env.headers['warden-source'] ?? '').split('@')[0]!;
          const epoch = Number(env.headers['warden-epoch'] ?? 0);
          this.latest.set(source, Math.max(this.latest.get(source) ?? 0, epoch));
          for (let i = this.waiting.length - 1; i >= 0; i--) {
            const w = this.waiting[i]!;
            if (w.source === source && epoch > w.above) {
              this.waiting.splice(i, 1);
              w.resolve(m.timestampMs);
            }
          }
        }
      }
    } finally {
      await reader.close();
    }
  }

  epochOf(source: string): number {
    return this.latest.get(source) ?? 0;
  }

  /** Resolves with the stored time of the first output of `source` under an epoch above `above`. */
  firstAbove(source: string, above: number): Promise<number> {
    return new Promise((resolve) => this.waiting.push({ source, above, resolve }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** Keeps a steady load going until stopped. */
function steadyLoad(rig: ClusterRig, perSec: number): { stop(): Promise<void> } {
  let stopped = false;
  let i = 0;
  const run = (async () => {
    while (!stopped) {
      await rig.load(perSec / 10, { perSec, from: i, keys: 24 });
      i += perSec / 10;
    }
  })();
  return {
    async stop() {
      stopped = true;
      await run;
    },
  };
}

/** The node ids that own counter partitions now, with the partitions. */
async function counterOwners(rig: ClusterRig): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const [p, o] of await rig.owners()) if (p.startsWith('counter.')) out.set(o.owner, [...(out.get(o.owner) ?? []), p]);
  return out;
}

/** Waits until 3 live members own all 7 partitions and placement is stable for a while. */
async function balanced(rig: ClusterRig, members: () => string[]): Promise<void> {
  let stableSince = 0;
  let last = '';
  for (let i = 0; i < 600; i++) {
    const owners = await rig.owners();
    const now = JSON.stringify([...owners].map(([p, o]) => [p, o.owner]).sort());
    const ok = owners.size === 7 && [...owners.values()].every((o) => members().includes(o.owner)) && new Set([...owners.values()].map((o) => o.owner)).size === 3;
    if (ok && now === last) {
      if (performance.now() - stableSince > 800) return;
    } else {
      stableSince = performance.now();
    }
    last = now;
    await sleep(100);
  }
  throw new Error('the cluster did not settle');
}

async function killLoop(mode: 'parent' | 'lease', log: (l: string) => void): Promise<number[]> {
  const cleanups: Array<() => Promise<void>> = [];
  const rig = await ClusterRig.create({ teardown: (fn) => cleanups.push(fn) }, { ttlMs: TTL_MS });
  const samples: number[] = [];
  try {
    let parent: NodeProc | undefined;
    const live = new Map<string, NodeProc>();
    let generation = 0;
    if (mode === 'parent') {
      parent = await rig.start('p', ['--nodes', '3']);
    } else {
      for (const id of ['a0', 'b0', 'c0']) live.set(id, await rig.start(id));
    }
    const members = (): string[] => (mode === 'parent' ? ['p-0', 'p-1', 'p-2'] : [...live.keys()]);
    const load = steadyLoad(rig, 300);
    const outputs = new OutputWatch(rig);
    try {
      await balanced(rig, members);
      for (let k = 0; k < KILLS; k++) {
        const owners = await counterOwners(rig);
        const [victim, parts] = [...owners].sort((a, b) => b[1].length - a[1].length)[0]!;
        const before = new Map(parts.map((p) => [p.replace('.', '/'), outputs.epochOf(p.replace('.', '/'))]));
        const pid = mode === 'parent'
          ? Number([...parent!.lines].reverse().find((l) => l.ready === true && l.nodeId === victim)?.pid)
          : live.get(victim)!.pid;
        const firsts = [...before].map(([source, epoch]) => outputs.firstAbove(source, epoch));
        const killedAt = Date.now();
        process.kill(pid, 'SIGKILL');
        const stored = await Promise.race([Promise.all(firsts), sleep(TTL_MS + 30_000).then(() => undefined)]);
        if (!stored) throw new Error(`no output from the new owners of ${parts.join(', ')} within ${TTL_MS + 30_000} ms`);
        const ms = stored.map((at) => at - killedAt);
        samples.push(...ms);
        log(`  ${mode} kill ${k + 1}/${KILLS}: ${victim} (${parts.join(', ')}): first outputs after ${ms.join(', ')} ms`);
        if (mode === 'lease') {
          live.delete(victim);
          const id = `${victim[0]!}${++generation}`;
          live.set(id, await rig.start(id));
        }
        await balanced(rig, members);
      }
    } finally {
      await load.stop();
      await outputs.stop();
    }
  } finally {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  }
  return samples;
}

/** Inputs applied per second by `n` node processes: a burst published at once, timed until applied. */
async function scaling(n: number, count: number, log: (l: string) => void): Promise<number> {
  const cleanups: Array<() => Promise<void>> = [];
  const rig = await ClusterRig.create({ teardown: (fn) => cleanups.push(fn) }, { ttlMs: TTL_MS, sinkless: true });
  try {
    const ids = Array.from({ length: n }, (_, i) => `s${i}`);
    await Promise.all(ids.map((id) => rig.start(id)));
    await rig.waitOwned(ids);
    await sleep(500);
    const t0 = performance.now();
    const batch = 500;
    for (let i = 0; i < count; i += batch) {
      await rig.producer.sendMany(Array.from({ length: Math.min(batch, count - i) }, (_, j) => ({ key: `k${(i + j) % 24}`, type: 'add', payload: { amount: 1 }, id: `in-${i + j}` })));
    }
    // Caught up when every partition's checkpoint reaches the end of its log (cheap to poll, unlike
    // reading every key's state); then the counts are checked once.
    const stage = rig.pipeline.stage('counter');
    for (let caught = false; !caught; ) {
      await sleep(50);
      const flags = await Promise.all(Array.from({ length: stage.partitions }, async (_, p) =>
        ((await rig.store.readMeta(stage.scopeOf(p)))?.seq ?? 0) >= (await rig.transport.lastSeqOf(stage.stream, stage.subjectOf(p)))));
      caught = flags.every(Boolean);
      if (performance.now() - t0 > 180_000) throw new Error(`${n} node(s) did not catch up with ${count} inputs in 180 s`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const r = await rig.waitApplied(count, 24, 30_000);
    const applied = r.counts.reduce((a, b) => a + b, 0);
    const perSec = applied === count ? count / seconds : 0;
    log(`  ${n} node${n === 1 ? '' : 's'}: ${fmt(count)} inputs in ${seconds.toFixed(2)} s = ${fmt(perSec)} ev/s`);
    return perSec;
  } finally {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  }
}

export const failover: Suite = {
  async run(log) {
    log(`failover: ${KILLS} kills per mode, lease TTL ${TTL_MS} ms, ${cpus().length} cores`);
    const parent = KILLS > 0 ? await killLoop('parent', log) : [];
    const lease = KILLS > 0 ? await killLoop('lease', log) : [];
    const count = Number(process.env.FAILOVER_SCALING_INPUTS ?? 20_000);
    const byNodes: Record<string, number> = {};
    for (const n of [1, 2, 3]) byNodes[String(n)] = Math.round(await scaling(n, count, log));
    const cores = cpus().length;
    const figures = {
      kills: KILLS,
      leaseTtlMs: TTL_MS,
      samples: parent.length + lease.length,
      p50Ms: Math.round(percentile(parent, 50)),
      p99Ms: Math.round(percentile(parent, 99)),
      maxMs: Math.round(Math.max(0, ...parent)),
      leaseOnlyP50Ms: Math.round(percentile(lease, 50)),
      leaseOnlyP99Ms: Math.round(percentile(lease, 99)),
      standbyP99Ms: 'not built',
      eventsPerSecByNodes: JSON.stringify(byNodes),
      cores,
    };
    return {
      figures,
      rows: [
        ['kills per mode', String(KILLS)],
        ['lease TTL', `${TTL_MS} ms`],
        ['SIGKILL -> first output of the new owner, parent watching: p50 / p99 / max (goal p99 < 500 ms)', `${figures.p50Ms} / ${figures.p99Ms} / ${figures.maxMs} ms (${parent.length} partitions)`],
        [`... lease expiry only: p50 / p99 (goal p99 < TTL + 1 s = ${TTL_MS + 1000} ms)`, `${figures.leaseOnlyP50Ms} / ${figures.leaseOnlyP99Ms} ms (${lease.length} partitions)`],
        ...Object.entries(byNodes).map(([n, v]): [string, string] => [`${n} node process${n === '1' ? '' : 'es'}, ev/s (per core: ${fmt(v / Math.min(Number(n), cores))})`, fmt(v)]),
      ],
    };
  },
};
