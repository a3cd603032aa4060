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
 *  3. Every spawned process is killed when the test process exits, even on a crash.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

const owned = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const p of owned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); // invariant 3
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  srv.close();
  await once(srv, 'close');
  return port;
}

function binary(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin']) if (existsSync(join(dir, name))) return join(dir, name);
  const which = spawnSync('which', [name], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(`${name} is not installed; run: apt-get install -y ${name === 'nats-server' ? 'nats-server' : 'redis-server'}`);
}

/** Sends `payload` and resolves with the first bytes answered, or rejects after `timeoutMs`. */
function probe(port: number, payload: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('probe timed out'));
    }, timeoutMs);
    sock.once('connect', () => {
      if (payload) sock.write(payload);
    });
    sock.once('data', (d) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(d.toString());
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function waitUntil(what: string, ready: () => Promise<boolean>, proc: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited during start (code ${proc.exitCode ?? proc.signalCode})`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} was not ready within ${timeoutMs} ms`);
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
  const exited = async (): Promise<void> => {
    if (proc && proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit');
  };
  const handle = {
    kind: l.kind,
    url: `${l.kind}://127.0.0.1:${l.port}`,
    port: l.port,
    dataDir: l.dataDir,
    get pid() {
      return proc?.pid ?? 0;
    },
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    async start() {
      installExitHook();
      const log = openSync(join(l.dataDir, `${l.kind}.log`), 'a');
      proc = spawn(l.bin, l.args, { stdio: ['ignore', log, log], detached: false });
      owned.add(proc);
      const p = proc;
      p.once('exit', () => owned.delete(p));
      await waitUntil(`${l.kind}-server on ${l.port}`, () => l.ready(l.port), p);
    },
    async stop() {
      if (!handle.running) return;
      proc!.kill('SIGTERM');
      await exited();
    },
    async kill() {
      if (!handle.running) return;
      proc!.kill('SIGKILL');
      await exited();
    },
    async restart() {
      await handle.kill();
      await handle.start();
    },
    async destroy() {
      await handle.kill();
      rmSync(l.dataDir, { recursive: true, force: true });
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
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'warden-nats-'));
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
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'warden-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'];
  args.push('--appendonly', options.appendonly ? 'yes' : 'no');
  if (options.appendonly) args.push('--appendfsync', 'always');
  const h = makeHandle({ kind: 'redis', port, dataDir, bin: binary('redis-server'), args, ready: redisReady });
  await h.start();
  return h;
}
