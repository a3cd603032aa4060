/**
 * Servers a chaos scenario or an integration test owns: a `nats-server -js` or a `redis-server`
 * on a free loopback port with its own data directory, that the test may kill (SIGKILL),
 * stop (SIGTERM) and restart on the same port and data. It never touches servers it did not
 * start (the machine's shared ones on 4222 and 6379 included): every signal goes to a PID it
 * spawned.
 *
 * Invariants:
 *  1. Only loopback addresses; the port is free when chosen and the same across restarts.
 *  2. `start`/`restart` resolve only when the server answers (NATS: JetStream ready; Redis: PONG).
 *  3. Every spawned process is killed when the test process exits, even on a crash (`processes.ts`).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binary, exited, freePort, isAlive, ownDir, probe, releaseDir, spawnOwned, waitUntil } from './processes.js';

export { freePort, freePorts } from './processes.js';

/** A server process this test owns. */
export interface ServerHandle {
  readonly kind: 'nats' | 'redis';
  /** `nats://127.0.0.1:<port>` or `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** PID of the current process (changes on restart). */
  readonly pid: number;
  readonly running: boolean;
  /** Graceful stop (SIGTERM); resolves when the process has exited. */
  stop(): Promise<void>;
  /** Crash (SIGKILL); resolves when the process has exited. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data directory (kills it first if running). */
  restart(): Promise<void>;
  /** Kills the server and deletes its data directory. */
  destroy(): Promise<void>;
}

async function natsReady(port: number): Promise<boolean> {
  const info = await probe(port, '', 1000);
  if (!info.startsWith('INFO ')) return false;
  // JetStream answers on $JS.API.INFO once it is ready.
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: `127.0.0.1:${port}`, timeout: 1000, reconnect: false });
  try {
    await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo();
    return true;
  } finally {
    await nc.close();
  }
}

async function redisReady(port: number): Promise<boolean> {
  return (await probe(port, 'PING\r\n', 1000)).startsWith('+PONG');
}

interface Launch {
  kind: 'nats' | 'redis';
  port: number;
  dataDir: string;
  args: string[];
  bin: string;
  ready: (port: number) => Promise<boolean>;
}

function makeHandle(l: Launch): ServerHandle & { start(): Promise<void> } {
  let proc: ChildProcess | undefined;
  const handle = {
    kind: l.kind,
    url: `${l.kind}://127.0.0.1:${l.port}`,
    port: l.port,
    dataDir: l.dataDir,
    get pid() {
      return proc?.pid ?? 0;
    },
    get running() {
      return isAlive(proc);
    },
    async start() {
      proc = spawnOwned(l.bin, l.args, join(l.dataDir, `${l.kind}.log`)); // invariant 3
      await waitUntil(`${l.kind}-server on ${l.port}`, () => l.ready(l.port), proc);
    },
    async stop() {
      if (!isAlive(proc)) return;
      proc.kill('SIGTERM');
      await exited(proc);
    },
    async kill() {
      if (!isAlive(proc)) return;
      proc.kill('SIGKILL');
      await exited(proc);
    },
    async restart() {
      await handle.kill();
      await handle.start();
    },
    async destroy() {
      await handle.kill();
      rmSync(l.dataDir, { recursive: true, force: true });
      releaseDir(l.dataDir);
    },
  };
  return handle;
}

/**
 * Starts a `nats-server` with JetStream on a free loopback port.
 *
 * @example
 * const nats = await startNatsServer();
 * const transport = await JetStreamTransport.connect({ servers: nats.url });
 * await nats.kill(); await nats.restart();
 * await nats.destroy();
 */
export async function startNatsServer(options: { port?: number; dataDir?: string } = {}): Promise<ServerHandle> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? ownDir(mkdtempSync(join(tmpdir(), 'warden-nats-')));
  const h = makeHandle({ kind: 'nats', port, dataDir, bin: binary('nats-server'), args: ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dataDir], ready: natsReady });
  await h.start();
  return h;
}

/**
 * Starts a `redis-server` on a free loopback port; with `appendonly` it keeps an AOF with
 * `appendfsync always` in its data directory, so a SIGKILL loses no acknowledged write.
 *
 * @example
 * const redis = await startRedisServer({ appendonly: true });
 * const store = new RedisCheckpointStore({ url: redis.url });
 */
export async function startRedisServer(options: { port?: number; dataDir?: string; appendonly?: boolean } = {}): Promise<ServerHandle> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? ownDir(mkdtempSync(join(tmpdir(), 'warden-redis-')));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'];
  args.push('--appendonly', options.appendonly ? 'yes' : 'no');
  if (options.appendonly) args.push('--appendfsync', 'always');
  const h = makeHandle({ kind: 'redis', port, dataDir, bin: binary('redis-server'), args, ready: redisReady });
  await h.start();
  return h;
}
