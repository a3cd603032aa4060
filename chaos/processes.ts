/**
 * Processes a chaos scenario or an integration test owns: where their binaries are, how they are
 * spawned and tracked, free loopback ports for them, and waiting until they answer. Shared by
 * `servers.ts` (one server) and `nats-cluster.ts` (a cluster of them).
 *
 * Invariants:
 *  1. Every process spawned by `spawnOwned` (or given to `track`) is SIGKILLed, and every
 *     directory given to `ownDir` removed, when this process exits, even on a crash, and when it
 *     is ended by SIGINT, SIGTERM or SIGHUP that nothing else handles (the signal is then raised
 *     again, so the process still ends by it: exit status 128 + its number). A process that
 *     handles the signal itself keeps its shutdown; the exit cleans up after it. Signals only
 *     ever go to PIDs spawned or tracked here.
 *  2. Ports are on 127.0.0.1 and free when chosen; `freePorts(n)` returns n distinct ports.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, openSync, closeSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

const owned = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
let exitHookInstalled = false;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Invariant 1: what this process started goes with it. */
function cleanUp(): void {
  for (const p of owned) if (isAlive(p)) p.kill('SIGKILL');
  for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
  ownedDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return; // another handler owns the shutdown; 'exit' cleans up
  cleanUp();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal); // no listener left: the default action ends the process
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', cleanUp);
  for (const s of SIGNALS) process.on(s, onSignal);
}

/**
 * Removes `dir` (recursively) when this process exits or is ended by a signal (invariant 1),
 * unless `releaseDir` was called first. For the data directories of servers started here.
 */
export function ownDir(dir: string): string {
  installExitHook();
  ownedDirs.add(dir);
  return dir;
}

/** `dir` was removed by its owner (or is kept on purpose): the exit does not remove it. */
export function releaseDir(dir: string): void {
  ownedDirs.delete(dir);
}

/** Whether `proc` has neither exited nor been killed by a signal. */
export function isAlive(proc: ChildProcess | undefined): proc is ChildProcess {
  return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
}

/** Has `proc` (spawned elsewhere) killed when this process exits (invariant 1). */
export function track(proc: ChildProcess): void {
  installExitHook();
  owned.add(proc);
  proc.once('exit', () => owned.delete(proc));
}

/**
 * Spawns `bin args` with stdout and stderr appended to `logPath`; the process is killed when the
 * test process exits (invariant 1).
 *
 * @example
 * const proc = spawnOwned(binary('nats-server'), ['-c', conf], join(dir, 'nats.log'));
 */
export function spawnOwned(bin: string, args: readonly string[], logPath: string): ChildProcess {
  installExitHook();
  const log = openSync(logPath, 'a');
  try {
    const proc = spawn(bin, args, { stdio: ['ignore', log, log], detached: false });
    owned.add(proc);
    proc.once('exit', () => owned.delete(proc));
    return proc;
  } finally {
    closeSync(log); // the child holds its own copy
  }
}

/** Resolves when `proc` has exited (at once if it already has). */
export async function exited(proc: ChildProcess | undefined): Promise<void> {
  if (isAlive(proc)) await once(proc, 'exit');
}

/** The path of an installed binary (`/usr/sbin`, `/usr/bin`, `/usr/local/bin`, then `PATH`). */
export function binary(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin']) if (existsSync(join(dir, name))) return join(dir, name);
  const which = spawnSync('which', [name], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(`${name} is not installed; run: apt-get install -y ${name === 'nats-server' ? 'nats-server' : 'redis-server'}`);
}

/**
 * `n` distinct TCP ports on 127.0.0.1 that nothing listens on right now (invariant 2): all are
 * held at once while chosen, so none is returned twice.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      srv.listen(0, '127.0.0.1');
      await once(srv, 'listening');
    }
    return servers.map((srv) => {
      const addr = srv.address();
      return typeof addr === 'object' && addr ? addr.port : 0;
    });
  } finally {
    await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/** Sends `payload` and resolves with the first bytes answered, or rejects after `timeoutMs`. */
export function probe(port: number, payload: string, timeoutMs: number): Promise<string> {
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

/**
 * Polls `ready` every 50 ms until it resolves `true`; rejects when `proc` (if given) exits first
 * or after `timeoutMs`. A `ready` that throws counts as not ready yet.
 */
export async function waitUntil(what: string, ready: () => Promise<boolean>, proc?: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error(`${what} exited during start (code ${proc.exitCode ?? proc.signalCode})`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} was not ready within ${timeoutMs} ms`);
}
