/**
 * A NATS JetStream cluster a test owns: `size` nats-server processes on free loopback ports,
 * routed to each other, each with its own data directory and config file, that the test may
 * crash (SIGKILL), stop (SIGTERM), freeze (SIGSTOP) and restart one by one or all at once. It
 * never touches servers it did not start (the machine's shared one on 4222 included).
 *
 * Invariants:
 *  1. Only loopback addresses. Every server's client port, route port, name and data directory
 *     are chosen once, are distinct, and stay the same across restarts.
 *  2. `startNatsCluster` and `restartAll` resolve only when every server answers and the cluster
 *     takes a replicated write: the JetStream meta leader answers through a client that knows
 *     every server, and a probe stream with `min(size, 3)` replicas is created, written and
 *     deleted.
 *  3. A server's `restart` resolves when it answers on its client port and, while a majority of
 *     the cluster runs, when JetStream answers through it alone (it is routed to the meta
 *     leader again).
 *  4. `leaderOf` names only a leader that is a running, unpaused member of this cluster; stale
 *     answers naming a dead server are waited out.
 *  5. Every process is killed when the test process exits, even on a crash, and signals only go
 *     to PIDs this module spawned (`processes.ts`).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { binary, exited, freePorts, isAlive, ownDir, probe, releaseDir, spawnOwned, waitUntil } from './processes.js';

/** Options of `startNatsCluster`; all optional. */
export interface NatsClusterOptions {
  /**
   * Number of servers.
   * @default 3
   */
  size?: number;
  /**
   * Cluster name (letters, digits, `-`, `_`); servers are named `<name>-1` .. `<name>-<size>`.
   * @default `warden-<6 random hex digits>`
   */
  name?: string;
  /**
   * How long `startNatsCluster`, `restartAll` and a server's `restart` may take to be ready.
   * @default 60_000
   */
  readyTimeoutMs?: number;
}

interface ResolvedClusterOptions {
  readonly size: number;
  readonly name: string;
  readonly readyTimeoutMs: number;
}

/** Validates the options once; a bad value throws naming the field. */
function resolveNatsClusterOptions(o: NatsClusterOptions): ResolvedClusterOptions {
  const size = o.size ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new Error(`NatsClusterOptions.size must be an integer in 1..9, got ${size}`);
  const name = o.name ?? `warden-${randomBytes(3).toString('hex')}`;
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`NatsClusterOptions.name must be letters, digits, '-' or '_', got ${JSON.stringify(name)}`);
  const readyTimeoutMs = o.readyTimeoutMs ?? 60_000;
  if (!(readyTimeoutMs > 0)) throw new Error(`NatsClusterOptions.readyTimeoutMs must be > 0, got ${readyTimeoutMs}`);
  return { size, name, readyTimeoutMs };
}

/** One server of a cluster. */
export interface ClusterServer {
  /** The server's `server_name`, as JetStream reports it (`cluster.leader`, replicas). */
  readonly name: string;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly routePort: number;
  readonly dataDir: string;
  /** PID of the current process, 0 before the first start (changes on restart). */
  readonly pid: number;
  /** The process is alive (a paused process is running). */
  readonly running: boolean;
  /** The process is stopped by SIGSTOP. */
  readonly paused: boolean;
  /** Crash (SIGKILL); resolves when the process has exited. */
  kill(): Promise<void>;
  /** Graceful stop (SIGTERM, continuing a paused process); resolves when the process has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same ports and data (kills it first if running); invariant 3. */
  restart(): Promise<void>;
  /** Freezes the process (SIGSTOP): its sockets stay open, it answers nothing. */
  pause(): void;
  /** Continues a paused process (SIGCONT). */
  resume(): void;
}

/** A cluster a test owns. */
export interface NatsCluster {
  readonly name: string;
  /** Every server's client URL, in server order. */
  readonly urls: readonly string[];
  readonly servers: readonly ClusterServer[];
  /** The server named `name`; throws if there is none. */
  server(name: string): ClusterServer;
  /** The name of the server leading `stream` (stream info `cluster.leader`); waits for one (invariant 4). */
  leaderOf(stream: string, timeoutMs?: number): Promise<string>;
  /** Kills (SIGKILL) the server leading `stream` and returns it. */
  killLeaderOf(stream: string): Promise<ClusterServer>;
  /** Kills (SIGKILL) every server. */
  killAll(): Promise<void>;
  /** Kills every running server, starts all again on the same ports and data; invariant 2. */
  restartAll(): Promise<void>;
  /** Kills every server and deletes the data directories. */
  destroy(): Promise<void>;
}

interface Member extends ClusterServer {
  start(waitForJetStream: boolean): Promise<void>;
}

const PROBE_TIMEOUT_MS = 2_000;

/** A connection to the given servers that fails over between them; closed after `use`. */
async function withClient<T>(servers: readonly string[], use: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: [...servers], timeout: PROBE_TIMEOUT_MS, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  try {
    return await use(await jetstreamManager(nc, { timeout: PROBE_TIMEOUT_MS, checkAPI: false }), nc);
  } finally {
    await nc.close();
  }
}

function configOf(name: string, cluster: string, port: number, routePort: number, routePorts: readonly number[], dataDir: string): string {
  const routes = routePorts.filter((p) => p !== routePort).map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`));
  return [
    `server_name: ${JSON.stringify(name)}`,
    `listen: "127.0.0.1:${port}"`,
    `jetstream { store_dir: ${JSON.stringify(dataDir)} }`,
    'cluster {',
    `  name: ${JSON.stringify(cluster)}`,
    `  listen: "127.0.0.1:${routePort}"`,
    `  routes: [${routes.join(', ')}]`,
    '}',
    '',
  ].join('\n');
}

async function answersInfo(port: number): Promise<boolean> {
  return (await probe(port, '', 1_000)).startsWith('INFO ');
}

function makeMember(o: ResolvedClusterOptions, index: number, port: number, routePort: number, routePorts: readonly number[], root: string, majorityRunning: () => boolean): Member {
  const name = `${o.name}-${index + 1}`;
  const dataDir = join(root, name);
  mkdirSync(dataDir, { recursive: true });
  const conf = join(dataDir, 'nats.conf');
  writeFileSync(conf, configOf(name, o.name, port, routePort, routePorts, dataDir));
  const bin = binary('nats-server');
  let proc: ChildProcess | undefined;
  let paused = false;
  const member: Member = {
    name,
    url: `nats://127.0.0.1:${port}`,
    port,
    routePort,
    dataDir,
    get pid() {
      return proc?.pid ?? 0;
    },
    get running() {
      return isAlive(proc);
    },
    get paused() {
      return paused && isAlive(proc);
    },
    async start(waitForJetStream) {
      paused = false;
      proc = spawnOwned(bin, ['-c', conf], join(dataDir, 'nats.log')); // invariant 5
      await waitUntil(`nats-server ${name} on ${port}`, () => answersInfo(port), proc, o.readyTimeoutMs);
      if (!waitForJetStream || !majorityRunning()) return;
      // Invariant 3: a JetStream request through this server alone reaches the meta leader.
      await waitUntil(`nats-server ${name} routed to the JetStream meta leader`, () => withClient([member.url], async (jsm) => !!(await jsm.getAccountInfo())), proc, o.readyTimeoutMs);
    },
    async kill() {
      if (!isAlive(proc)) return;
      proc.kill('SIGKILL');
      await exited(proc);
    },
    async stop() {
      if (!isAlive(proc)) return;
      proc.kill('SIGTERM');
      if (paused) proc.kill('SIGCONT'); // a stopped process only acts on SIGTERM once continued
      await exited(proc);
    },
    async restart() {
      await member.kill();
      await member.start(true);
    },
    pause() {
      if (!isAlive(proc) || paused) return;
      proc.kill('SIGSTOP');
      paused = true;
    },
    resume() {
      if (!isAlive(proc) || !paused) return;
      proc.kill('SIGCONT');
      paused = false;
    },
  };
  return member;
}

/** Invariant 2: the meta leader answers and a replicated probe stream is created, written and deleted. */
async function waitForReplicatedWrite(o: ResolvedClusterOptions, urls: readonly string[]): Promise<void> {
  const stream = `warden_cluster_probe_${randomBytes(4).toString('hex')}`;
  const replicas = Math.min(o.size, 3);
  await withClient(urls, async (jsm) => {
    await waitUntil(`cluster ${o.name}: JetStream meta leader`, async () => !!(await jsm.getAccountInfo()), undefined, o.readyTimeoutMs);
    await waitUntil(`cluster ${o.name}: a stream with ${replicas} replicas`, async () => {
      await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], num_replicas: replicas });
      await jsm.jetstream().publish(`${stream}.probe`, new Uint8Array([1]), { timeout: PROBE_TIMEOUT_MS });
      return true;
    }, undefined, o.readyTimeoutMs);
    await waitUntil(`cluster ${o.name}: probe stream deleted`, () => jsm.streams.delete(stream), undefined, o.readyTimeoutMs);
  });
}

/**
 * Starts a NATS JetStream cluster of `size` servers on free loopback ports and resolves when it
 * takes replicated writes (invariant 2).
 *
 * @example
 * const cluster = await startNatsCluster({ size: 3 });
 * const nc = await connect({ servers: [...cluster.urls] });
 * await jetstreamManager(nc).then((jsm) => jsm.streams.add({ name: 'orders', subjects: ['orders.>'], num_replicas: 3 }));
 * const old = await cluster.killLeaderOf('orders');
 * const leader = await cluster.leaderOf('orders'); // another server
 * await old.restart();
 * await cluster.destroy();
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const o = resolveNatsClusterOptions(options);
  const ports = await freePorts(2 * o.size); // invariant 1
  const clientPorts = ports.slice(0, o.size);
  const routePorts = ports.slice(o.size);
  const root = ownDir(mkdtempSync(join(tmpdir(), 'warden-nats-cluster-')));
  const majorityRunning = (): boolean => members.filter((m) => m.running).length > o.size / 2;
  const members: Member[] = clientPorts.map((port, i) => makeMember(o, i, port, routePorts[i]!, routePorts, root, majorityRunning));
  const urls = members.map((m) => m.url);

  const server = (name: string): ClusterServer => {
    const m = members.find((s) => s.name === name);
    if (!m) throw new Error(`cluster ${o.name} has no server ${JSON.stringify(name)}`);
    return m;
  };
  const live = (): string[] => members.filter((m) => m.running && !m.paused).map((m) => m.url);
  const killAll = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.kill()));
  };
  const startAll = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.start(false)));
    await waitForReplicatedWrite(o, urls);
  };
  const leaderOf = async (stream: string, timeoutMs = o.readyTimeoutMs): Promise<string> => {
    let leader = '';
    await waitUntil(`a leader of stream ${stream}`, () => withClient(live(), async (jsm) => {
      const named = (await jsm.streams.info(stream)).cluster?.leader;
      const m = members.find((s) => s.name === named);
      if (!m?.running || m.paused) return false; // invariant 4
      leader = m.name;
      return true;
    }), undefined, timeoutMs);
    return leader;
  };

  const cluster: NatsCluster = {
    name: o.name,
    urls,
    servers: members,
    server,
    leaderOf,
    async killLeaderOf(stream) {
      const leader = server(await leaderOf(stream));
      await leader.kill();
      return leader;
    },
    killAll,
    async restartAll() {
      await killAll();
      await startAll();
    },
    async destroy() {
      await killAll();
      rmSync(root, { recursive: true, force: true });
      releaseDir(root);
    },
  };
  try {
    await startAll();
  } catch (err) {
    await killAll(); // the logs stay for the post-mortem
    throw new Error(`cluster ${o.name} did not start (logs in ${root}): ${String(err)}`, { cause: err });
  }
  return cluster;
}
