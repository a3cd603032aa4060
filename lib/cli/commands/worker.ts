/**
 * `warden worker <module>`: runs a node of the pipeline the module exports, as one member of a
 * cluster on NATS (log and leases) and Redis (checkpoints). Start it on as many machines as you
 * like: they share the partitions, and take over those of a node that dies.
 *
 * `--nodes N` starts N such node processes under one parent that watches them: when a child exits
 * the parent sees it within milliseconds, revokes the child's leases at once (so the others take
 * its partitions over without waiting for the lease TTL) and starts a replacement. The TTL stays
 * the detector when a whole machine goes.
 *
 * `--http PORT` serves the node's operations endpoints (`/metrics`, `/health`, `/ready`, `/tree`,
 * lib/observe/http.ts) on `--http-host` (default 127.0.0.1); under `--nodes N`, child i serves
 * PORT + i (PORT 0: each child a free port, named in its ready line).
 *
 * Lifecycle: one JSON line `{"ready":true,...}` on stdout once the node runs; SIGTERM or SIGINT
 * hands its partitions over (final checkpoints) and exits 0, also when it comes while the node is
 * still starting (the node is stopped as soon as it runs, and no ready line is printed); a tree
 * that gives up exits 1.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { describeError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { startNode } from '../../cluster/node.js';
import { defaultNodeId } from '../../cluster/coordinator.js';
import type { LeaseStore } from '../../cluster/leases.js';
import { createOpsHandler } from '../../observe/http.js';
import { watchAlerts } from '../../observe/alerts.js';
import type { WardenNode } from '../../pipeline/node-types.js';
import { connectLeases } from '../backends.js';
import { connectBackends, loadPipeline, processIo, withBackendOptions, type BackendOptions, type CliIo } from '../pipeline-module.js';

/** Arguments of `warden worker`. */
export interface WorkerArgs extends BackendOptions {
  module: string;
  cluster?: string;
  nodeId?: string;
  leaseTtl: number;
  replicas: number;
  nodes?: number;
  /** Print ownership events (leases acquired, released, lost; members; partitions down) as JSON lines. */
  events?: boolean;
  /** Serve the operations endpoints on this port (0: a free one). */
  http?: number;
  httpHost: string;
  /** Readiness: inputs a partition may trail its log end by. */
  readyLag: number;
  /** The lag alert's bound (0: off). */
  alertLag: number;
}

const OWNERSHIP_EVENTS = new Set(['lease-acquired', 'lease-released', 'lease-lost', 'members-changed', 'partition-down']);

function positive(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const n = v.trim() === '' ? Number.NaN : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `It must be an integer >= ${min}.` : `It must be an integer from ${min} to ${max}.`);
    return n;
  };
}

function port(v: string): number {
  const n = v.trim() === '' ? Number.NaN : Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('It must be a port number, 0 to 65535 (0: a free one).');
  return n;
}

/** Runs one node until it is told to stop; resolves with the exit status. */
export async function runWorker(args: WorkerArgs, io: CliIo = processIo): Promise<number> {
  // SIGTERM/SIGINT are ours from the start: one that comes while the node is still starting stops
  // it as soon as it runs (graceful, exit 0), rather than killing the process half-started.
  let stopRequested = false;
  let stopNow: (() => void) | undefined;
  const onSignal = (): void => {
    stopRequested = true;
    stopNow?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await runWorkerUntilStopped(args, io, () => stopRequested, (fn) => (stopNow = fn));
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}

async function runWorkerUntilStopped(args: WorkerArgs, io: CliIo, stopRequested: () => boolean, onStop: (stop: () => void) => void): Promise<number> {
  const logger = createLogger({ name: 'warden-worker' });
  let closeAll = (): Promise<void> => Promise.resolve();
  try {
    const pipeline = await loadPipeline(args.module);
    const cluster = args.cluster ?? pipeline.name;
    const nodeId = args.nodeId ?? defaultNodeId();
    const backends = await connectBackends(args);
    let leases: LeaseStore;
    try {
      leases = await connectLeases(args.nats, { bucket: `${cluster}-leases`, ttlMs: args.leaseTtl, replicas: args.replicas, logger });
    } catch (err) {
      await backends.close();
      throw err;
    }
    closeAll = async () => {
      await leases.close().catch(() => undefined);
      await backends.close().catch(() => undefined);
    };
    const node = await startNode({
      pipeline, transport: backends.transport, checkpointStore: backends.checkpointStore, logger, cluster: { leases, name: cluster, nodeId },
      ...(args.events ? { onEvent: (e) => { if (OWNERSHIP_EVENTS.has(e.type)) io.out(`${JSON.stringify({ event: e.type, nodeId, at: performance.timeOrigin + performance.now(), ...e })}\n`); } } : {}),
    });
    // Alerts are logged (error level) and, with --events, printed as JSON lines.
    const alerts = watchAlerts(node, {
      logger, lagAbove: args.alertLag,
      ...(args.events ? {
        onAlert: (a) => io.out(`${JSON.stringify({ event: 'alert', nodeId, ...a })}\n`),
        onResolved: (a) => io.out(`${JSON.stringify({ event: 'alert-resolved', nodeId, ...a })}\n`),
      } : {}),
    });
    {
      const inner = closeAll;
      closeAll = async () => {
        alerts.stop();
        await inner();
      };
    }
    let server: Server | undefined;
    if (args.http !== undefined) {
      try {
        server = await serveOps(node, args);
      } catch (err) {
        await node.stop().catch(() => undefined);
        throw err;
      }
      const inner = closeAll;
      closeAll = async () => {
        await new Promise<void>((resolve) => server!.close(() => resolve()));
        await inner();
      };
    }
    const http = server ? `http://${args.httpHost}:${(server.address() as AddressInfo).port}` : undefined;
    if (!stopRequested()) io.out(`${JSON.stringify({ ready: true, pipeline: pipeline.name, cluster, nodeId, pid: process.pid, backends: backends.label, ...(http ? { http } : {}) })}\n`);
    const stopped = new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        node.stop().then(() => resolve(0), (err: unknown) => {
          io.err(`warden worker: ${describeError(err)}\n`);
          resolve(1);
        });
      };
      onStop(stop);
      if (stopRequested()) stop(); // a signal came while the node was starting
    });
    const failed = node.done().then(() => new Promise<number>(() => undefined), (err: unknown) => {
      io.err(`warden worker: the node gave up: ${describeError(err)}\n`);
      return 1;
    });
    const code = await Promise.race([stopped, failed]);
    await closeAll();
    return code;
  } catch (err) {
    io.err(`warden worker: ${describeError(err)}\n`);
    await closeAll();
    return 1;
  }
}

/** `--http`: the operations endpoints of `node` on an HTTP server of their own. */
async function serveOps(node: WardenNode, args: WorkerArgs): Promise<Server> {
  const handler = createOpsHandler({ node, readiness: { maxLag: args.readyLag } });
  const server = createServer(handler);
  server.on('close', () => handler.close());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: Error) => reject(new Error(`cannot serve --http on ${args.httpHost}:${String(args.http)}: ${err.message}`)));
    server.listen(args.http, args.httpHost, () => resolve());
  });
  return server;
}

/** `--nodes N`: N child node processes under this one, replaced (and their leases revoked) when they exit. */
export async function runParent(args: WorkerArgs & { nodes: number }, io: CliIo = processIo): Promise<number> {
  const logger = createLogger({ name: 'warden-parent' });
  let leases: LeaseStore;
  let cluster: string;
  try {
    const pipeline = await loadPipeline(args.module);
    cluster = args.cluster ?? pipeline.name;
    leases = await connectLeases(args.nats, { bucket: `${cluster}-leases`, ttlMs: args.leaseTtl, replicas: args.replicas, logger });
  } catch (err) {
    io.err(`warden worker: ${describeError(err)}\n`);
    return 1;
  }
  const base = args.nodeId ?? defaultNodeId();
  const children = new Map<number, ChildProcess>();
  let stopping = false;
  const childArgs = (id: string): string[] => {
    const out = ['worker', args.module, '--node-id', id, '--cluster', cluster, '--lease-ttl', String(args.leaseTtl), '--replicas', String(args.replicas)];
    if (args.nats) out.push('--nats', args.nats);
    if (args.redis) out.push('--redis', args.redis);
    if (args.redisPrefix) out.push('--redis-prefix', args.redisPrefix);
    if (args.events) out.push('--events');
    out.push('--alert-lag', String(args.alertLag));
    return out;
  };
  const spawnChild = (i: number): void => {
    const id = `${base}-${i}`;
    const http = args.http === undefined ? [] : ['--http', String(args.http === 0 ? 0 : args.http + i), '--http-host', args.httpHost, '--ready-lag', String(args.readyLag)];
    const child = fork(process.argv[1]!, [...childArgs(id), ...http], { execArgv: process.execArgv, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    child.stdout?.on('data', (chunk: Buffer) => io.out(chunk.toString()));
    children.set(i, child);
    child.once('exit', (code, signal) => {
      if (children.get(i) === child) children.delete(i);
      if (stopping) return;
      const t0 = performance.now();
      // The child is gone: no zombie can hold its leases, so they go at once.
      void revokeAll(leases, cluster, id).then((n) => {
        io.out(`${JSON.stringify({ childExited: id, code, signal, leasesRevoked: n, revokeMs: Math.round(performance.now() - t0) })}\n`);
        spawnChild(i);
      }, (err: unknown) => {
        logger.error({ child: id, err: err }, 'revoking the leases of an exited child failed; they expire by TTL');
        spawnChild(i);
      });
    });
  };
  for (let i = 0; i < args.nodes; i++) spawnChild(i);
  io.out(`${JSON.stringify({ parent: true, cluster, nodes: args.nodes, pid: process.pid })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      stopping = true;
      const live = [...children.values()];
      if (live.length === 0) resolve();
      let left = live.length;
      for (const child of live) {
        child.once('exit', () => {
          if (--left === 0) resolve();
        });
        child.kill('SIGTERM');
      }
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await leases.close();
  return 0;
}

/** Revokes every lease `owner` holds in `cluster` (its partitions and its membership). */
async function revokeAll(leases: LeaseStore, cluster: string, owner: string): Promise<number> {
  let n = 0;
  for (const e of await leases.list(`${cluster}.`)) if (e.owner === owner && (await leases.revoke(e.key, owner))) n++;
  return n;
}

/**
 * Adds `worker` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  withBackendOptions(
    program
      .command('worker')
      .description('run a node of a pipeline in a cluster on NATS (log, leases) and Redis (checkpoints); --nodes N runs N under one parent')
      .argument('<module>', "JS or TS module exporting the pipeline ('pipeline', default, or a function returning one)"),
  )
    .option('--cluster <name>', "cluster name, the prefix of its leases (default: the pipeline's name)")
    .option('--node-id <id>', 'this node id, unique among live nodes (default: <host>-<pid>-<random>)')
    .option('--lease-ttl <ms>', 'lease lifetime: how long a dead node holds its partitions when no parent sees it die', positive('--lease-ttl', 100), 5_000)
    .option('--replicas <n>', 'replicas of the streams and the lease bucket when they are created (3 on a NATS cluster)', positive('--replicas', 1, 5), 1)
    .option('--nodes <n>', 'start n node processes under this one, replace them when they exit, and revoke their leases at once', positive('--nodes', 1))
    .option('--events', 'print ownership events (leases acquired, released, lost; members; partitions down) and alerts (raised, resolved) as JSON lines')
    .option('--http <port>', 'serve /metrics, /health, /ready, /tree, /dashboard and /events on this port (0: a free one; with --nodes, child i serves port + i)', port)
    .option('--http-host <host>', 'address the --http server listens on', '127.0.0.1')
    .option('--ready-lag <n>', '/ready: inputs a partition may trail its log end by and still be ready', positive('--ready-lag', 0), 1_000)
    .option('--alert-lag <n>', 'alert when a partition is more than n inputs behind its log (0: never); alerts are logged, and printed with --events', positive('--alert-lag', 0), 10_000)
    .action(async (module: string, opts: Omit<WorkerArgs, 'module'>) => {
      const args = { module, ...opts };
      process.exitCode = args.nodes ? await runParent({ ...args, nodes: args.nodes }, io) : await runWorker(args, io);
    });
}
