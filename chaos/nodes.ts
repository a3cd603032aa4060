/**
 * The node processes of a chaos run: `warden worker` children of the runner, each its own Node
 * process, started, killed (SIGKILL), paused (SIGSTOP / SIGCONT), stopped gracefully (SIGTERM) and
 * restarted by the runner, always by the PID it spawned.
 *
 * Invariants:
 *  1. `start` resolves once the node printed its ready line; it rejects with the node's stderr if
 *     it exits first.
 *  2. Every process is killed when the runner exits, even on a crash (the exit hook of processes.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { track } from './processes.js';

/** How to start a node: the CLI entry, its Node flags (a TypeScript loader), and the worker's arguments. */
export interface NodeLaunch {
  cliMain: string;
  execArgv: readonly string[];
  module: string;
  args: readonly string[];
  env: Record<string, string>;
}

/** One node process. */
export class ChaosNode {
  private child: ChildProcess | undefined;
  /** Ownership events and the ready line it printed (JSON lines). */
  readonly lines: Array<Record<string, unknown>> = [];
  /** The partitions this process holds a lease on, from its events. */
  readonly owned = new Set<string>();
  paused = false;
  generation = 0;

  constructor(
    readonly index: number,
    private readonly launch: NodeLaunch,
  ) {}

  get id(): string {
    return `node-${this.index}-${this.generation}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Invariant 1. */
  async start(): Promise<void> {
    this.generation++;
    const { cliMain, execArgv, module, args, env } = this.launch;
    const child = spawn(process.execPath, [...execArgv, cliMain, 'worker', module, '--node-id', this.id, '--events', ...args], {
      env: { ...process.env, WARDEN_LOG_LEVEL: process.env.WARDEN_LOG_LEVEL ?? 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child);
    this.child = child;
    this.paused = false;
    this.owned.clear();
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          this.lines.push(parsed);
          const partition = typeof parsed.partition === 'string' ? parsed.partition : undefined;
          if (parsed.event === 'lease-acquired' && partition) this.owned.add(partition);
          if ((parsed.event === 'lease-released' || parsed.event === 'lease-lost') && partition) this.owned.delete(partition);
          if (parsed.ready === true) resolve();
        } catch {
          // not a JSON line
        }
      });
      child.once('exit', (code, signal) => reject(new Error(`node ${this.id} exited (${String(code ?? signal)}) before it was ready: ${stderr.trim()}`)));
    });
  }

  /** SIGKILL; resolves when it has exited. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** SIGTERM: hands its partitions over; resolves when it has exited. */
  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  /** SIGSTOP: a zombie in the making. */
  pause(): void {
    if (!this.running || this.paused) return;
    this.child!.kill('SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT. */
  resume(): void {
    if (!this.running || !this.paused) return;
    this.child!.kill('SIGCONT');
    this.paused = false;
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (this.paused && sig !== 'SIGKILL') child.kill('SIGCONT'); // a stopped process ignores SIGTERM until continued
    child.kill(sig);
    this.paused = false;
    await exited;
  }
}
