/**
 * `warden chaos <scenario>`: runs a chaos scenario (a shipped one by name, or a module of your own)
 * on servers of its own, shows its progress, prints a summary, writes a report, and exits non-zero
 * when an invariant failed. docs/chaos.md describes the scenarios and how to write one.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { describeError } from '../../core/errors.js';
import { processIo, type CliIo } from '../pipeline-module.js';

/** The scenarios shipped with warden. */
export const SHIPPED = ['kill-worker', 'pause-worker', 'kill-nats-server', 'restart-redis', 'flaky-api', 'slow-network', 'rolling-restart', 'everything'] as const;

/** Parses `60s`, `2m`, `500ms` or a number of ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError('It must be a duration such as 30s, 2m or 500ms.');
  const n = Number(m[1]);
  const ms = m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1_000 : n;
  if (ms < 1_000) throw new InvalidArgumentError('It must be at least 1s.');
  return Math.round(ms);
}

function parseSeed(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('It must be an integer >= 0.');
  return n;
}

/** The module of a scenario: a shipped name, or a path. */
export function scenarioModule(nameOrPath: string): string {
  if ((SHIPPED as readonly string[]).includes(nameOrPath)) {
    const here = fileURLToPath(import.meta.url);
    const ext = here.endsWith('.ts') ? '.ts' : '.js';
    return resolve(here, `../../../../scenarios/chaos/${nameOrPath}${ext}`);
  }
  const path = resolve(process.cwd(), nameOrPath);
  if (!existsSync(path)) throw new Error(`no scenario ${JSON.stringify(nameOrPath)}: not a shipped one (${SHIPPED.join(', ')}) nor a file`);
  return path;
}

/** Arguments of `warden chaos`. */
export interface ChaosArgs {
  scenario: string;
  seed: number;
  duration?: number;
  report?: string;
  json?: boolean;
}

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

/** Runs `warden chaos`; resolves with the exit status (0 passed, 1 an invariant failed, 2 the run failed). */
export async function runChaos(args: ChaosArgs, io: CliIo = processIo): Promise<number> {
  try {
    const { runScenario } = await import('../../../chaos/runner.js');
    const { summaryTable, writeReport } = await import('../../../chaos/report.js');
    const path = scenarioModule(args.scenario);
    const mod = (await import(pathToFileURL(path).href)) as { default?: unknown; scenario?: unknown };
    const scenario = (mod.default ?? mod.scenario) as Parameters<typeof runScenario>[0] | undefined;
    if (scenario?.kind !== 'warden.scenario') throw new Error(`${args.scenario} exports no scenario (a default export made by defineScenario)`);
    const tty = process.stderr.isTTY === true;
    let lastLine = 0;
    let lastPhase = '';
    const report = await runScenario(scenario, {
      seed: args.seed,
      baseDir: dirname(path),
      ...(args.duration ? { durationMs: args.duration } : {}),
      log: (line) => { if (!args.json) io.err(`${tty ? '\r\x1b[K' : ''}  ${line}\n`); },
      onProgress: (p) => {
        if (args.json) return;
        const line = `${bar(p.elapsedMs / p.totalMs)} ${p.phase} ${(p.elapsedMs / 1000).toFixed(0)}/${(p.totalMs / 1000).toFixed(0)} s  sent ${p.sent}  delivered ${p.delivered}  lag ${p.lag}  faults ${p.faultsDone}/${p.faultsTotal}`;
        if (tty) io.err(`\r\x1b[K${line}`);
        else if (p.elapsedMs - lastLine >= 5_000 || p.phase !== lastPhase) {
          // Off a terminal: a line when the phase changes, and every 5 s within a phase.
          lastLine = p.elapsedMs;
          lastPhase = p.phase;
          io.err(`${line}\n`);
        }
      },
    });
    if (tty && !args.json) io.err('\r\x1b[K');
    if (args.report) {
      const files = await writeReport(args.report, report);
      if (!args.json) io.err(`report: ${files.json}, ${files.html}\n`);
    }
    if (args.json) io.out(`${JSON.stringify({ ...report, timeline: undefined })}\n`);
    else io.out(`${summaryTable(report)}\n`);
    return report.passed ? 0 : 1;
  } catch (err) {
    io.err(`warden chaos: ${describeError(err)}\n`);
    return 2;
  }
}

/**
 * Adds `chaos` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  program
    .command('chaos')
    .description('run a chaos scenario (faults on nodes, NATS, Redis, the network, an API) on servers of its own and check the invariants')
    .argument('<scenario>', `a shipped scenario (${SHIPPED.join(', ')}) or a module exporting one (defineScenario)`)
    .option('--seed <n>', 'seed of the fault schedule (the same seed, the same faults)', parseSeed, 1)
    .option('--duration <time>', "how long the workload runs, e.g. 60s (default: the scenario's)", parseDuration)
    .option('--report <dir>', 'write dir/report.json and dir/report.html')
    .option('--json', 'print the report as one JSON line (without the timeline) instead of the summary')
    .action(async (scenario: string, opts: Omit<ChaosArgs, 'scenario'>) => {
      const code = await runChaos({ scenario, ...opts }, io);
      process.exitCode = code;
      // Everything the run opened is closed and its output written (stdout and stderr are
      // synchronous for files and pipes). Exit now: Node's own teardown of sockets that killed
      // servers reset has been seen to spin instead of ending the process.
      if (io === processIo) process.exit(code);
    });
}
