/**
 * `npm run chaos:all`: every shipped chaos scenario at three seeds (1, 2, 3), one after the other,
 * each with its report under `.warden/chaos/<scenario>-<seed>/`; then a table of the figures and
 * one JSON line. Exits non-zero if any run failed an invariant; a bad argument prints the error and
 * the usage and exits 1. Options: `--seeds 1,2,3`, `--duration 30s`, `--only kill-worker,flaky-api`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SHIPPED } from '../lib/cli/commands/chaos.js';

const USAGE = `usage: npm run chaos:all [-- --seeds 1,2,3] [--only ${SHIPPED.join(',')}] [--duration 30s]

every shipped chaos scenario at each seed, one after the other; reports under .warden/chaos/<scenario>-<seed>/

options:
  --seeds LIST     seeds, comma-separated integers (default 1,2,3)
  --only LIST      scenarios, comma-separated (default: every shipped one)
  --duration D     passed to each run (e.g. 30s)
  -h, --help       print this`;

function usageError(message: string): never {
  console.error(`chaos:all: ${message}\n\n${USAGE}`);
  process.exit(1);
}

let values: { seeds: string; duration?: string | undefined; only?: string | undefined; help?: boolean | undefined };
try {
  ({ values } = parseArgs({ options: { seeds: { type: 'string', default: '1,2,3' }, duration: { type: 'string' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
} catch (err) {
  usageError((err as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const seeds = values.seeds.split(',').map((s) => (/^\d+$/.test(s.trim()) ? Number(s) : usageError(`--seeds: ${JSON.stringify(s)} is not an integer`)));
const scenarios = values.only ? values.only.split(',') : [...SHIPPED];
for (const s of scenarios) if (!(SHIPPED as readonly string[]).includes(s)) usageError(`--only: no shipped scenario named ${JSON.stringify(s)} (${SHIPPED.join(', ')})`);
interface Figures { sent?: number | undefined; lost?: number | undefined; duplicated?: number | undefined; staleWritesAccepted?: number | undefined; recoveryMsMax?: number | null | undefined; recoveryMsP99?: number | null | undefined; passed?: boolean }
const rows: Array<Figures & { scenario: string; seed: number; passed: boolean }> = [];
let failed = 0;
for (const scenario of scenarios) {
  for (const seed of seeds) {
    const dir = `.warden/chaos/${scenario}-${seed}`;
    const args = ['--import', 'tsx', 'lib/cli/main.ts', 'chaos', scenario, '--seed', String(seed), '--report', dir, ...(values.duration ? ['--duration', values.duration] : [])];
    rmSync(dir, { recursive: true, force: true }); // a run that writes no report must not read the last one's
    console.error(`\n== ${scenario} seed ${seed}`);
    // A run still going after 8 minutes (the longest takes about 2) is stuck: killed, it counts as failed.
    const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 8 * 60_000, killSignal: 'SIGKILL' });
    let report: Figures;
    try {
      report = JSON.parse(readFileSync(`${dir}/report.json`, 'utf8')) as Figures;
    } catch {
      report = { passed: false };
    }
    if (r.status !== 0) failed++;
    rows.push({ scenario, seed, sent: report.sent, lost: report.lost, duplicated: report.duplicated, staleWritesAccepted: report.staleWritesAccepted, recoveryMsMax: report.recoveryMsMax, recoveryMsP99: report.recoveryMsP99, passed: report.passed === true && r.status === 0 });
  }
}
console.log('\nscenario          seed  sent   lost  dup  stale  recovery max  p99     passed');
for (const r of rows) {
  console.log(`${String(r.scenario).padEnd(18)}${String(r.seed).padEnd(6)}${String(r.sent ?? '-').padEnd(7)}${String(r.lost ?? '-').padEnd(6)}${String(r.duplicated ?? '-').padEnd(5)}${String(r.staleWritesAccepted ?? '-').padEnd(7)}${String(r.recoveryMsMax ?? '-').padEnd(14)}${String(r.recoveryMsP99 ?? '-').padEnd(8)}${r.passed ? 'yes' : 'NO'}`);
}
console.log(JSON.stringify({ runs: rows.length, failed, rows }));
process.exitCode = failed > 0 ? 1 : 0;
