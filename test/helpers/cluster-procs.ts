/**
 * Node processes of a cluster test: `warden worker` on the fixture pipeline
 * (test/fixtures/cluster-pipeline.ts: counter x6 -> tally), each its own Node process, on the shared
 * NATS and Redis (or the servers a test names). The helper owns every process it starts and kills
 * them when the test ends, by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
/** Where the rig registers its cleanup (an ava test context, or a benchmark's own list). */
export interface Teardowns {
  teardown(fn: () => Promise<void>): void;
}
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';
import { KvLeaseStore } from '../../lib/adapters/nats/kv-leases.js';
import { createProducer, readKeyState, silentLogger, type Producer } from '../../lib/index.js';
import type { Pipeline } from '../../lib/pipeline/define-pipeline.js';

/** A line a worker process printed (`ready`, or an ownership `event`). */
export type WorkerLine = Record<string, unknown> & { at?: number };

/** One node process. */
export interface NodeProc {
  readonly id: string;
  readonly pid: number;
  readonly lines: WorkerLine[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  signal(sig: NodeJS.Signals): void;
}

export const NATS = process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
export const REDIS = process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A cluster test: its pipeline name, its processes, a producer and readers on its backends. */
export class ClusterRig {
  readonly name = `clt-${randomBytes(3).toString('hex')}`;
  readonly procs: NodeProc[] = [];
  transport!: JetStreamTransport;
  store!: RedisCheckpointStore;
  leases!: KvLeaseStore;
  producer!: Producer;
  pipeline!: Pipeline;
  sinkless = false;

  /** Partitions of the pipeline, over all stages. */
  get partitionCount(): number {
    return this.pipeline.stages.reduce((n, s) => n + s.partitions, 0);
  }

  private constructor(readonly ttlMs: number, readonly nats: string, readonly redis: string) {}

  static async create(t: Teardowns, o: { ttlMs?: number; nats?: string; redis?: string; replicas?: number; sinkless?: boolean } = {}): Promise<ClusterRig> {
    const rig = new ClusterRig(o.ttlMs ?? 1_500, o.nats ?? NATS, o.redis ?? REDIS);
    rig.sinkless = o.sinkless ?? false;
    process.env.WARDEN_TEST_PIPELINE = rig.name;
    process.env.WARDEN_TEST_SINKLESS = rig.sinkless ? '1' : '0';
    rig.pipeline = (await import(`../fixtures/cluster-pipeline.js?${rig.name}`) as { pipeline: Pipeline }).pipeline;
    rig.transport = await JetStreamTransport.connect({ servers: rig.nats.split(','), logger: silentLogger, ...(o.replicas ? { streamDefaults: { replicas: o.replicas } } : {}) });
    rig.store = await RedisCheckpointStore.connect({ url: rig.redis, logger: silentLogger });
    rig.leases = await KvLeaseStore.connect({ servers: rig.nats, bucket: `${rig.name}-leases`, ttlMs: rig.ttlMs, logger: silentLogger, ...(o.replicas ? { replicas: o.replicas } : {}) });
    rig.producer = createProducer({ pipeline: rig.pipeline, transport: rig.transport });
    t.teardown(() => rig.close());
    return rig;
  }

  /**
   * Starts a node process (`--nodes N` in `extra`: a parent of N children); resolves once it
   * printed its ready line (a parent: once every child did).
   */
  async start(id: string, extra: string[] = []): Promise<NodeProc> {
    const args = ['--import', 'tsx', 'lib/cli/main.ts', 'worker', 'test/fixtures/cluster-pipeline.ts', '--node-id', id, '--lease-ttl', String(this.ttlMs),
      '--nats', this.nats, '--redis', this.redis, '--events', ...extra];
    const children = extra.includes('--nodes') ? Number(extra[extra.indexOf('--nodes') + 1]) : 0;
    const child: ChildProcess = spawn(process.execPath, args, { env: { ...process.env, WARDEN_TEST_PIPELINE: this.name, WARDEN_TEST_SINKLESS: this.sinkless ? '1' : '0', WARDEN_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: WorkerLine[] = [];
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let parsed: WorkerLine;
        try {
          parsed = JSON.parse(line) as WorkerLine;
        } catch {
          return;
        }
        lines.push(parsed);
        if (children === 0 ? parsed.ready === true : lines.filter((l) => l.ready === true).length >= children) resolve();
      });
      void exited.then(({ code, signal }) => reject(new Error(`worker ${id} exited (${code ?? signal}) before it was ready: ${stderr}`)));
    });
    const proc: NodeProc = {
      id, pid: child.pid!, lines, exited,
      signal: (sig) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      },
    };
    this.procs.push(proc);
    await ready;
    return proc;
  }

  /** The owner of every partition now (from the lease bucket). */
  async owners(): Promise<Map<string, { owner: string; epoch: number }>> {
    const out = new Map<string, { owner: string; epoch: number }>();
    for (const e of await this.leases.list(`${this.name}.parts.`)) out.set(e.key.slice(`${this.name}.parts.${this.name}.`.length), { owner: e.owner, epoch: e.epoch });
    return out;
  }

  /** Waits until every partition is owned by live nodes among `live` (ids); resolves with the ms it took. */
  async waitOwned(live: string[], timeoutMs = 30_000): Promise<number> {
    const t0 = performance.now();
    for (;;) {
      const owners = await this.owners();
      if (owners.size === this.partitionCount && [...owners.values()].every((o) => live.includes(o.owner))) return performance.now() - t0;
      if (performance.now() - t0 > timeoutMs) throw new Error(`partitions not all owned by ${live.join(',')} after ${timeoutMs} ms: ${JSON.stringify([...owners])}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Waits until the nodes in `live` own every partition, each owns some, and the assignment has not
   * changed for `stableMs` (joins hand partitions over one by one). Resolves with the ms it took.
   */
  async waitBalanced(live: string[], stableMs = 1_000, timeoutMs = 60_000): Promise<number> {
    const t0 = performance.now();
    let last = '';
    let since = t0;
    for (;;) {
      const owners = await this.owners();
      const now = JSON.stringify([...owners].map(([p, o]) => [p, o.owner]).sort());
      const holders = new Set([...owners.values()].map((o) => o.owner));
      const ok = owners.size === this.partitionCount && [...holders].every((h) => live.includes(h)) && live.every((n) => holders.has(n));
      if (!ok || now !== last) since = performance.now();
      else if (performance.now() - since >= stableMs) return performance.now() - t0;
      last = now;
      if (performance.now() - t0 > timeoutMs) throw new Error(`not balanced over ${live.join(',')} after ${timeoutMs} ms: ${now}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sends `count` adds over `keys` keys at about `perSec`, calling `during(i)` before each. */
  async load(count: number, o: { keys?: number; perSec?: number; from?: number; during?: (i: number) => Promise<void> | void } = {}): Promise<void> {
    const keys = o.keys ?? 12;
    const gap = 1000 / (o.perSec ?? 200);
    const t0 = performance.now();
    for (let i = o.from ?? 0; i < (o.from ?? 0) + count; i++) {
      await o.during?.(i);
      await this.send({ key: `k${i % keys}`, type: 'add', payload: { amount: 1 }, id: `in-${i}` });
      const due = t0 + (i - (o.from ?? 0) + 1) * gap;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /**
   * Sends one input; a retryable refusal (a NATS cluster electing a stream leader answers "no
   * responders" for a while) is retried with the same message ID, as a producer should.
   */
  async send(input: Parameters<Producer['send']>[0]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.producer.send(input);
        return;
      } catch (err) {
        if ((err as { nonRetryable?: boolean }).nonRetryable || attempt >= 100) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Waits until every key's count and the sink hold exactly `count` inputs; returns what they hold. */
  async waitApplied(count: number, keys = 12, timeoutMs = 60_000): Promise<{ counts: number[]; sinkOutputs: number }> {
    const t0 = performance.now();
    for (;;) {
      let counts: number[];
      let sink: Array<[number, number]>;
      try {
        counts = await Promise.all(Array.from({ length: keys }, async (_, k) => ((await this.read('counter', `k${k}`))?.count ?? 0)));
        sink = this.sinkless ? [] : ((await this.read('tally', 'all'))?.got ?? []);
      } catch (err) {
        // The servers may be electing a leader or reconnecting: read again.
        if (performance.now() - t0 > timeoutMs) throw err;
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      const last = { counts, sinkOutputs: sink.length };
      const expected = Array.from({ length: keys }, (_, k) => Math.floor(count / keys) + (k < count % keys ? 1 : 0));
      if (JSON.stringify(counts) === JSON.stringify(expected) && (this.sinkless || sink.length >= count)) return last;
      if (performance.now() - t0 > timeoutMs) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Outputs of the counter partitions as stored in the sink's stream, in stream order: for each
   * source partition, an output whose epoch is older than one stored before it is a write of a
   * fenced owner that the log accepted (a stale write). Returns their number, and the epochs seen.
   */
  async staleOutputs(): Promise<{ stale: number; epochsBySource: Map<string, number[]> }> {
    const reader = this.transport.openReader(this.pipeline.stage('tally').stream, {});
    const maxBy = new Map<string, number>();
    const epochsBySource = new Map<string, number[]>();
    let stale = 0;
    try {
      for (let batch = await reader.next(1000, 200); batch.length > 0; batch = await reader.next(1000, 200)) {
        for (const m of batch) {
          const env = JSON.parse(new TextDecoder().decode(m.data)) as { headers: Record<string, string> };
          const source = (env.headers['warden-source'] ?? '').split('@')[0]!;
          const epoch = Number(env.headers['warden-epoch'] ?? 0);
          if (epoch < (maxBy.get(source) ?? 0)) stale++;
          maxBy.set(source, Math.max(maxBy.get(source) ?? 0, epoch));
          const seen = epochsBySource.get(source) ?? [];
          if (seen.at(-1) !== epoch) seen.push(epoch);
          epochsBySource.set(source, seen);
        }
      }
    } finally {
      await reader.close();
    }
    return { stale, epochsBySource };
  }

  private async read(stage: string, key: string): Promise<{ count?: number; got?: Array<[number, number]> } | undefined> {
    return (await readKeyState({ pipeline: this.pipeline, transport: this.transport, checkpointStore: this.store, stage, key }))?.context as { count?: number; got?: Array<[number, number]> } | undefined;
  }

  async close(): Promise<void> {
    for (const p of this.procs) p.signal('SIGKILL');
    await Promise.all(this.procs.map((p) => p.exited));
    for (const s of this.pipeline.stages) for (let p = 0; p < s.partitions; p++) await this.store.drop(s.scopeOf(p)).catch(() => undefined);
    for (const s of [...this.pipeline.stages.map((x) => x.stream), this.pipeline.deadLetterStream, `KV_${this.name}-leases`]) await this.transport.deleteStream(s).catch(() => undefined);
    await this.leases.close();
    await this.transport.close();
    await this.store.close();
  }
}
