/**
 * Runs a chaos scenario end to end, on servers of its own: a NATS server (or a 3-server JetStream
 * cluster), a Redis with AOF, TCP proxies between the nodes and both (network faults), a flaky
 * API for the payments pipeline, and the pipeline's node processes. It sends the workload, injects
 * the scenario's faults on schedule, samples throughput and lag, then checks the invariants and
 * returns the report. Everything it starts it ends, by PID, and nothing touches the machine's own
 * servers.
 *
 * Invariants:
 *  1. The same scenario and seed give the same fault schedule.
 *  2. The workload is sent to NATS directly (not through the proxies), so a network fault cuts
 *     the nodes off, never the producer.
 *  3. Every server, proxy and process the run started is gone when it returns or throws.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve as resolvePath } from 'node:path';
import { JetStreamTransport } from '../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../lib/adapters/redis/index.js';
import { ConfigError, describeValue } from '../lib/core/errors.js';
import { silentLogger } from '../lib/core/logger.js';
import { createProducer } from '../lib/pipeline/producer.js';
import { readKeyState } from '../lib/pipeline/read-state.js';
import type { Pipeline } from '../lib/pipeline/define-pipeline.js';
import { startFlakyApi, type FlakyApi } from './flaky-api.js';
import { deliveries, effects, percentile, recoveries, staleWrites, verdicts, type InputTiming } from './invariants.js';
import { startNatsCluster, type NatsCluster } from './nats-cluster.js';
import { ChaosNode } from './nodes.js';
import type { ChaosReport, FaultRecord, TimelineSample } from './report-types.js';
import { scheduleOf, usesApi, type Fault, type Scenario } from './scenario.js';
import { startNatsServer, startRedisServer, type ServerHandle } from './servers.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** Where the run is, for a progress display. */
export interface ChaosProgress {
  elapsedMs: number;
  totalMs: number;
  sent: number;
  delivered: number;
  lag: number;
  faultsDone: number;
  faultsTotal: number;
  phase: 'starting' | 'running' | 'draining' | 'checking';
}

/** Options of a run. */
export interface RunOptions {
  seed: number;
  /** Overrides the scenario's duration. */
  durationMs?: number;
  /** @default 250 */
  sampleMs?: number;
  onProgress?: (p: ChaosProgress) => void;
  log?: (line: string) => void;
  /** The `warden` CLI the node processes run. @default the CLI of this copy of warden */
  cliMain?: string;
  /** Node flags of the node processes (a TypeScript loader, for a pipeline module in TypeScript). @default this process's */
  execArgv?: readonly string[];
  /** Where a pipeline module's relative path is resolved (`warden chaos` passes the scenario file's folder). @default the current directory */
  baseDir?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The servers, proxies and API of a run. */
interface Rig {
  nats: { urls: string[]; cluster?: NatsCluster; single?: ServerHandle };
  redis: ServerHandle;
  natsProxies: TcpProxy[];
  redisProxy: TcpProxy;
  api: FlakyApi | undefined;
}

async function startRig(scenario: Scenario, seed: number): Promise<Rig> {
  const cleanup: Array<() => Promise<void>> = [];
  try {
    let nats: Rig['nats'];
    if (scenario.natsServers === 3) {
      const cluster = await startNatsCluster({ size: 3 });
      cleanup.push(() => cluster.destroy());
      nats = { urls: [...cluster.urls], cluster };
    } else {
      const single = await startNatsServer();
      cleanup.push(() => single.destroy());
      nats = { urls: [single.url], single };
    }
    const redis = await startRedisServer({ appendonly: true });
    cleanup.push(() => redis.destroy());
    const natsProxies: TcpProxy[] = [];
    for (const url of nats.urls) {
      const proxy = await startTcpProxy({ target: { port: Number(new URL(url).port) } });
      cleanup.push(() => proxy.close());
      natsProxies.push(proxy);
    }
    const redisProxy = await startTcpProxy({ target: { port: redis.port } });
    cleanup.push(() => redisProxy.close());
    const api = usesApi(scenario) ? await startFlakyApi({ seed }) : undefined;
    if (api) cleanup.push(() => api.close());
    return { nats, redis, natsProxies, redisProxy, api };
  } catch (err) {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    throw err;
  }
}

async function stopRig(rig: Rig): Promise<void> {
  await rig.api?.close().catch(() => undefined);
  await rig.redisProxy.close().catch(() => undefined);
  for (const p of rig.natsProxies) await p.close().catch(() => undefined);
  await rig.redis.destroy().catch(() => undefined);
  await rig.nats.cluster?.destroy().catch(() => undefined);
  await rig.nats.single?.destroy().catch(() => undefined);
}

/** The pipeline module and how to read its effects. */
interface Subject {
  module: string;
  pipeline: Pipeline;
  stage: string;
  seqs: (ctx: unknown) => readonly number[];
  arrivals: string;
  seqOf: (payload: Record<string, unknown>) => number | undefined;
  input: (key: string, seq: number) => { type: string; payload: Record<string, unknown> };
  exactlyOnce: boolean;
  ordered: boolean;
}

const payloadSeq = (payload: Record<string, unknown>): number | undefined => (Number.isInteger(payload.seq) ? (payload.seq as number) : undefined);

async function loadSubject(scenario: Scenario, env: Record<string, string>, baseDir: string): Promise<Subject> {
  Object.assign(process.env, env);
  if (typeof scenario.pipeline === 'string') {
    const here = fileURLToPath(import.meta.url);
    const ext = here.endsWith('.ts') ? '.ts' : '.js';
    const module = resolvePath(here, `../../scenarios/chaos/pipeline${ext}`);
    const mod = (await import(`${pathToFileURL(module).href}?${env.WARDEN_CHAOS_PIPELINE}`)) as { pipeline: () => Pipeline };
    return {
      module, pipeline: mod.pipeline(), stage: 'ledger', arrivals: 'receipts',
      seqs: (ctx) => (ctx as { seqs: number[] }).seqs,
      seqOf: payloadSeq,
      input: (_key, seq) => ({ type: 'order', payload: { seq } }),
      exactlyOnce: true,
      ordered: scenario.pipeline === 'audit',
    };
  }
  const p = scenario.pipeline;
  const module = p.module.startsWith('file:') ? fileURLToPath(p.module) : resolvePath(baseDir, p.module);
  const mod = (await import(pathToFileURL(module).href)) as Record<string, unknown>;
  let candidate = mod.pipeline ?? mod.default;
  if (typeof candidate === 'function') candidate = await (candidate as () => unknown)();
  return {
    module, pipeline: candidate as Pipeline, stage: p.observe.stage, seqs: p.observe.seqs, arrivals: p.observe.arrivals ?? p.observe.stage, seqOf: p.observe.seqOf ?? payloadSeq,
    input: p.input ?? ((_key, seq) => ({ type: 'order', payload: { seq } })),
    exactlyOnce: p.exactlyOnce ?? true,
    ordered: p.ordered ?? true,
  };
}

/** The `warden` CLI beside this module: dist/lib/cli/main.js in the package, lib/cli/main.ts in the repository. */
function ownCli(): string {
  const here = fileURLToPath(import.meta.url);
  return resolvePath(here, `../../lib/cli/main${here.endsWith('.ts') ? '.ts' : '.js'}`);
}

/** Runs `scenario` once with `seed`; resolves with its report (invariant 3: nothing outlives it). */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ChaosReport> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', `must be an object with at least a seed, got ${describeValue(options)}`);
  const log = options.log ?? (() => undefined);
  const durationMs = options.durationMs ?? scenario?.durationMs;
  const sampleMs = options.sampleMs ?? 250;
  if (typeof sampleMs !== 'number' || !Number.isFinite(sampleMs) || sampleMs <= 0) throw new ConfigError('sampleMs', `must be a finite number of ms > 0, got ${describeValue(sampleMs)}`);
  const schedule = scheduleOf(scenario, options.seed, durationMs); // checks the scenario, the seed and the duration
  const startedAt = new Date();
  const name = `chaos-${scenario.name}-${randomBytes(3).toString('hex')}`.slice(0, 60);
  const progress = (p: Omit<ChaosProgress, 'totalMs' | 'faultsTotal'>): void => options.onProgress?.({ ...p, totalMs: durationMs, faultsTotal: schedule.length });
  progress({ elapsedMs: 0, sent: 0, delivered: 0, lag: 0, faultsDone: 0, phase: 'starting' });
  const rig = await startRig(scenario, options.seed);
  const nodes: ChaosNode[] = [];
  let transport: JetStreamTransport | undefined;
  let store: RedisCheckpointStore | undefined;
  try {
    const env: Record<string, string> = {
      WARDEN_CHAOS_PIPELINE: name,
      WARDEN_CHAOS_VARIANT: typeof scenario.pipeline === 'string' ? scenario.pipeline : 'custom',
      ...(rig.api ? { WARDEN_CHAOS_API_URL: rig.api.url } : {}),
    };
    const subject = await loadSubject(scenario, env, options.baseDir ?? process.cwd());
    transport = await JetStreamTransport.connect({ servers: rig.nats.urls, logger: silentLogger, ...(scenario.natsServers === 3 ? { streamDefaults: { replicas: 3 } } : {}) });
    store = await RedisCheckpointStore.connect({ url: rig.redis.url, logger: silentLogger });
    const launch = {
      cliMain: options.cliMain ?? ownCli(),
      execArgv: options.execArgv ?? process.execArgv,
      module: subject.module,
      env,
      args: ['--nats', rig.natsProxies.map((p) => p.url('nats')).join(','), '--redis', rig.redisProxy.url('redis'), '--lease-ttl', String(scenario.leaseTtlMs), '--replicas', String(scenario.natsServers)],
    };
    for (let i = 0; i < scenario.nodes; i++) nodes.push(new ChaosNode(i, launch));
    await Promise.all(nodes.map((n) => n.start()));
    log(`${scenario.nodes} nodes up; ${schedule.length} faults scheduled`);
    const producer = createProducer({ pipeline: subject.pipeline, transport });
    const arrivalsStream = subject.pipeline.stage(subject.arrivals).stream;

    // The workload, the sampler and the faults run together.
    const sent = new Map<string, number>();
    const sentAt = new Map<string, number>();
    let sentCount = 0;
    const t0Wall = Date.now();
    const t0 = performance.now();
    const now = (): number => Math.round(performance.now() - t0);
    const timeline: TimelineSample[] = [];
    const faultRecords: Array<Omit<FaultRecord, 'recoveryMs'>> = [];
    let faultsDone = 0;
    let delivered = 0;
    let stopSampling = false;
    const sampler = (async () => {
      let lastDelivered = 0;
      let lastT = 0;
      while (!stopSampling) {
        await sleep(sampleMs);
        try {
          delivered = (await transport.streamInfo(arrivalsStream)).messages;
        } catch {
          // the log is electing a leader: keep the last figure
        }
        const t = now();
        timeline.push({ t, sent: sentCount, delivered, throughput: Math.round(((delivered - lastDelivered) * 1000) / Math.max(1, t - lastT)), lag: Math.max(0, sentCount - delivered) });
        lastDelivered = delivered;
        lastT = t;
        progress({ elapsedMs: t, sent: sentCount, delivered, lag: Math.max(0, sentCount - delivered), faultsDone, phase: t < durationMs ? 'running' : 'draining' });
      }
    })();
    const faults = (async () => {
      const running: Array<Promise<void>> = [];
      for (const step of schedule) {
        const wait = step.atMs - now();
        if (wait > 0) await sleep(wait);
        const at = now();
        // Faults may overlap: each runs on its own, lifted after its own duration.
        running.push(inject(step.fault, { nodes, rig, log, sourceStream: subject.pipeline.stages[0]!.stream }).then((target) => {
          // A SIGKILL is instant (the new process starts at once); the others last until lifted.
          faultRecords.push({ kind: step.fault.kind, target, atMs: at, endMs: step.fault.kind === 'kill-node' ? at : now() });
          faultsDone++;
        }));
      }
      await Promise.all(running);
      faultRecords.sort((a, b) => a.atMs - b.atMs);
    })();
    const { ratePerSec, keys, count } = scenario.workload;
    const gap = 1000 / ratePerSec;
    for (let i = 0; now() < durationMs && (count === undefined || i < count); i++) {
      const key = `k${i % keys}`;
      const seq = (sent.get(key) ?? 0) + 1;
      const input = subject.input(key, seq);
      await sendRetrying(() => producer.send({ key, ...input, id: `${name}:${key}:${seq}` }));
      sent.set(key, seq);
      sentAt.set(`${key}#${seq}`, t0Wall + (performance.now() - t0));
      sentCount++;
      const wait = t0 + (i + 1) * gap - performance.now();
      if (wait > 0) await sleep(wait);
    }
    await faults;
    await healAll(nodes, rig);
    const lastFaultEnd = now();
    // Liveness: every input delivered within the bound after the last fault.
    let deliveredAllAt: number | undefined;
    while (now() - lastFaultEnd < scenario.livenessMs) {
      if (delivered >= sentCount) {
        deliveredAllAt = now();
        break;
      }
      await sleep(sampleMs);
    }
    await sleep(sampleMs * 2);
    stopSampling = true;
    await sampler;
    progress({ elapsedMs: now(), sent: sentCount, delivered, lag: Math.max(0, sentCount - delivered), faultsDone, phase: 'checking' });

    // The effects each key applied, read from the observed stage (checkpoint plus log).
    const applied = new Map<string, readonly number[]>();
    let failedCharges = 0; // payments: orders the ledger recorded as not charged (breaker open, out of retries)
    for (const key of sent.keys()) {
      const state = await readKeyState({ pipeline: subject.pipeline, transport, checkpointStore: store, stage: subject.stage, key });
      applied.set(key, state ? subject.seqs(state.context) : []);
      failedCharges += state && typeof (state.context as { failed?: unknown }).failed === 'number' ? (state.context as { failed: number }).failed : 0;
    }
    const report = effects(sent, applied, subject.ordered);
    const stale = await staleWrites(transport, subject.pipeline.stages.slice(1).map((s) => s.stream));
    const arrived = await deliveries(transport, arrivalsStream, subject.seqOf);
    const timings: InputTiming[] = [...sentAt].map(([id, at]) => ({ sentAt: at, deliveredAt: arrived.get(id) }));
    const recovered = recoveries(faultRecords, timings, { lateAfterMs: scenario.lateAfterMs, graceMs: Math.max(scenario.lateAfterMs, scenario.leaseTtlMs), t0: t0Wall });
    const times = recovered.flatMap((f) => (f.recoveryMs === undefined ? [] : [f.recoveryMs]));
    const api = rig.api ? { effects: rig.api.stats().effects, repeats: rig.api.stats().repeats, orders: sentCount, failed: failedCharges } : undefined;
    const invariants = verdicts({
      report, exactlyOnce: subject.exactlyOnce, ordered: subject.ordered, stale,
      liveness: { deliveredAllAfterMs: deliveredAllAt === undefined ? undefined : deliveredAllAt - lastFaultEnd, boundMs: scenario.livenessMs },
      faults: recovered, recoveryBoundMs: scenario.recoveryBoundMs, api,
    });
    return {
      scenario: scenario.name,
      description: scenario.description,
      seed: options.seed,
      nodes: scenario.nodes,
      startedAt: startedAt.toISOString(),
      durationMs: now(),
      sampleMs,
      sent: sentCount,
      lost: report.lost,
      duplicated: report.duplicated,
      outOfOrder: subject.ordered ? report.outOfOrder : 0,
      staleWritesAccepted: stale.stale,
      lateAfterMs: scenario.lateAfterMs,
      recoveryMsMax: times.length ? Math.max(...times) : null,
      recoveryMsP99: percentile(times, 99) ?? null,
      passed: invariants.every((i) => i.passed),
      faults: recovered,
      invariants,
      timeline,
    };
  } finally {
    for (const n of nodes) await n.kill().catch(() => undefined);
    await transport?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    await stopRig(rig);
  }
}

/** A producer's send, retried through a leader election ("no responders") with the same message ID. */
async function sendRetrying(send: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await send();
      return;
    } catch (err) {
      if ((err as { nonRetryable?: boolean }).nonRetryable || attempt >= 300) throw err;
      await sleep(100);
    }
  }
}

/** Lifts every fault still in place (a paused node, a proxy fault, a stopped server, a sick API). */
async function healAll(nodes: readonly ChaosNode[], rig: Rig): Promise<void> {
  for (const n of nodes) {
    if (n.paused) n.resume();
    if (!n.running) await n.start();
  }
  for (const p of [...rig.natsProxies, rig.redisProxy]) {
    p.blackhole(false);
    p.latency(0);
  }
  if (!rig.redis.running) await rig.redis.restart();
  for (const s of rig.nats.cluster?.servers ?? []) if (!s.running) await s.restart();
  if (rig.nats.single && !rig.nats.single.running) await rig.nats.single.restart();
  await rig.api?.heal();
}

/** A node and how many partitions it held when the fault hit it. */
const owning = (n: ChaosNode): string => `node ${n.index} (${n.owned.size} partition${n.owned.size === 1 ? '' : 's'})`;

/** Applies one fault; resolves once it is in place and, for a fault with a duration, lifted again. */
async function inject(fault: Fault, ctx: { nodes: ChaosNode[]; rig: Rig; log: (l: string) => void; sourceStream: string }): Promise<string> {
  const { nodes, rig, log } = ctx;
  const node = (i: number): ChaosNode => nodes[((i % nodes.length) + nodes.length) % nodes.length]!;
  log(`fault: ${JSON.stringify(fault)}`);
  switch (fault.kind) {
    case 'kill-node': {
      const n = node(fault.node);
      const target = owning(n);
      await n.kill();
      void n.start().catch((err: unknown) => log(`restarting ${n.id} failed: ${String(err)}`));
      return target;
    }
    case 'pause-node': {
      const n = node(fault.node);
      const target = owning(n);
      n.pause();
      await sleep(fault.forMs);
      n.resume();
      return target;
    }
    case 'stop-node': {
      const n = node(fault.node);
      const target = owning(n);
      await n.stop();
      await n.start();
      return target;
    }
    case 'rolling-restart':
      for (const n of nodes) {
        await n.stop();
        await n.start();
        await sleep(fault.gapMs ?? 1_000);
      }
      return 'every node';
    case 'kill-nats-server': {
      const servers = rig.nats.cluster?.servers;
      if (servers) {
        const s = servers[(fault.server ?? 0) % servers.length]!;
        await s.kill();
        await sleep(fault.downMs ?? 3_000);
        await s.restart();
        return `nats ${s.name}`;
      }
      await rig.nats.single!.kill();
      await sleep(fault.downMs ?? 3_000);
      await rig.nats.single!.restart();
      return 'nats';
    }
    case 'kill-nats-leader': {
      const cluster = rig.nats.cluster;
      if (!cluster) throw new Error('kill-nats-leader needs natsServers: 3');
      // The leader of the pipeline's source stream: every node reads it.
      const leader = await cluster.leaderOf(ctx.sourceStream).catch(() => undefined);
      const s = leader ? cluster.server(leader) : cluster.servers[0]!;
      await s.kill();
      await sleep(fault.downMs ?? 3_000);
      await s.restart();
      return `nats leader ${s.name}`;
    }
    case 'restart-nats-all': {
      const cluster = rig.nats.cluster;
      if (cluster) await cluster.restartAll();
      else await rig.nats.single!.restart();
      return 'every nats server';
    }
    case 'kill-redis':
      await rig.redis.kill();
      await sleep(fault.downMs);
      await rig.redis.restart();
      return 'redis';
    case 'stall-redis':
      rig.redisProxy.blackhole(true);
      await sleep(fault.forMs);
      rig.redisProxy.blackhole(false);
      return 'redis';
    case 'slow-redis':
      rig.redisProxy.latency(fault.latencyMs);
      await sleep(fault.forMs);
      rig.redisProxy.latency(0);
      return 'redis';
    case 'network': {
      const proxies = fault.target === 'nats' ? rig.natsProxies : [rig.redisProxy];
      for (const p of proxies) {
        if (fault.latencyMs !== undefined) p.latency(fault.latencyMs, fault.jitterMs ?? 0);
        if (fault.blackhole) p.blackhole(true);
        if (fault.reset) p.reset();
      }
      await sleep(fault.forMs);
      for (const p of proxies) {
        p.blackhole(false);
        p.latency(0);
      }
      return `network to ${fault.target}`;
    }
    case 'api': {
      const api = rig.api;
      if (!api) throw new Error("an api fault needs pipeline: 'payments'");
      if (fault.mode === 'slow') api.slow(fault.latencyMs ?? 1_500);
      if (fault.mode === 'flaky') api.flaky(fault.rate ?? 0.5);
      if (fault.mode === 'down') await api.down();
      await sleep(fault.forMs);
      await api.heal();
      return `api (${fault.mode})`;
    }
  }
}
