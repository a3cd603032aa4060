#!/usr/bin/env node
// Runs the test suite: ensures the servers, runs ava (TAP), streams its output, and ends with
// one line `N passed, N failed[, N skipped]` that CI reads. Extra arguments go to ava
// (e.g. `npm test -- test/unit`).
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';

const ensure = spawnSync('bash', ['scripts/services.sh', 'ensure'], { stdio: 'inherit' });
if (ensure.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(ensure.status ?? 1);
}

const ava = spawn('npx', ['ava', '--tap', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] });
let passed = 0;
let failed = 0;
let skipped = 0;
const rl = createInterface({ input: ava.stdout });
rl.on('line', (line) => {
  console.log(line);
  const m = /^(not ok|ok)\s+\d+/.exec(line);
  if (!m) return;
  if (/#\s*(SKIP|TODO)/i.test(line)) skipped++;
  else if (m[1] === 'ok') passed++;
  else failed++;
});
ava.on('close', (code) => {
  // An uncaught error in a test file shows as a failure without an `ok` line; count it.
  if (code !== 0 && failed === 0) failed = 1;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code ?? 1);
});
