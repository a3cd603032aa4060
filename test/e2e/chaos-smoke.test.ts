/**
 * A short chaos run end to end, on servers the run starts itself: three node processes under load,
 * two SIGKILLed at seeded times and restarted. Every invariant must hold, each kill must have
 * recovered, and the CLI must write the report and exit 0; a scenario whose bound cannot hold must
 * make the CLI exit 1 with the failed invariant in its report.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { runScenario, type ChaosReport } from 'warden/chaos';
import killWorker from '../../scenarios/chaos/kill-worker.js';

const launch = { execArgv: ['--import', 'tsx'] };

/** Runs `warden ...args` (without blocking this process: the other test runs a scenario meanwhile). */
function warden(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

test('kill-worker, short: two nodes SIGKILLed under load lose nothing, double nothing, and recover', async (t) => {
  const phases = new Set<string>();
  const report = await runScenario(killWorker, { seed: 1, durationMs: 12_000, ...launch, onProgress: (p) => phases.add(p.phase) });
  t.log(`sent ${report.sent}; recovery ${report.faults.map((f) => `${f.target}: ${f.recoveryMs} ms`).join(', ')}`);
  t.deepEqual(report.invariants.filter((i) => !i.passed), []);
  t.true(report.passed);
  t.true(report.sent > 500, `sent ${report.sent}`);
  t.is(report.lost, 0);
  t.is(report.duplicated, 0);
  t.is(report.outOfOrder, 0);
  t.is(report.staleWritesAccepted, 0);
  t.is(report.faults.length, 2);
  for (const f of report.faults) {
    t.is(f.kind, 'kill-node');
    t.not(f.recoveryMs, undefined);
  }
  t.deepEqual([...phases], ['starting', 'running', 'draining', 'checking']);
  // The timeline covers the run and ends with every input delivered.
  t.true(report.timeline.length > 20);
  const last = report.timeline.at(-1)!;
  t.is(last.delivered, report.sent);
  t.is(last.lag, 0);
});

test('warden chaos exits 1 and reports the failed invariant when a recovery bound cannot hold', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-chaos-'));
  const scenario = join(dir, 'strict.ts');
  // One node, killed: its partitions wait for its lease to expire, far longer than 1 ms.
  writeFileSync(scenario, `import { defineScenario } from '${resolve('chaos/index.ts')}';
export default defineScenario({
  name: 'strict', nodes: 1, durationMs: 4_000, leaseTtlMs: 1_000, recoveryBoundMs: 1,
  workload: { ratePerSec: 50, keys: 4 },
  faults: () => [{ atMs: 1_000, fault: { kind: 'kill-node', node: 0 } }],
});
`);
  const out = await warden(['chaos', scenario, '--seed', '5', '--report', join(dir, 'out')]);
  t.is(out.status, 1, out.stderr);
  t.regex(out.stdout, /FAILED\s+strict/);
  const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as ChaosReport;
  t.is(report.seed, 5);
  t.false(report.passed);
  t.is(report.lost, 0);
  t.deepEqual(report.invariants.filter((i) => !i.passed).map((i) => i.name), ['recovery time']);
  t.true(readFileSync(join(dir, 'out', 'report.html'), 'utf8').includes('<svg'));
});

test('warden chaos refuses an unknown scenario and a bad duration, exiting 2 and 1 without starting anything', async (t) => {
  const unknown = await warden(['chaos', 'no-such-scenario']);
  t.is(unknown.status, 2);
  t.regex(unknown.stderr, /no scenario "no-such-scenario"/);
  const badDuration = await warden(['chaos', 'kill-worker', '--duration', 'soon']);
  t.not(badDuration.status, 0);
  t.regex(badDuration.stderr, /duration such as 30s/);
});
