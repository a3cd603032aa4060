#!/usr/bin/env node
// Runs the test suite: ensures the servers, runs ava (TAP), streams its output, and ends with
// one line `N passed, N failed[, N skipped]` that CI reads. Extra arguments go to ava
// (e.g. `npm test -- test/unit`).
//
// The servers (nats-server and redis-server, scripts/services.sh) are ensured only when the run
// may need them. When every path given is under test/unit (in memory, simulated clock, no
// network) or is an in-memory contract suite (test/contract/*in-memory*), they are not: such a
// run needs neither server, and works on a machine that has none. With no path at all, the
// whole suite runs and the servers are ensured.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';

const args = process.argv.slice(2);

/** ava options that take a value as the next argument (`-m title`), so that value is no path. */
const VALUE_OPTIONS = new Set(['-m', '--match', '-T', '--timeout', '-c', '--concurrency', '--node-arguments', '--config']);

/** The test paths (files, folders, globs) among ava's arguments. */
function pathArguments(argv) {
  const paths = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('-')) {
      if (VALUE_OPTIONS.has(arg)) i++;
      continue;
    }
    paths.push(arg);
  }
  return paths;
}

/** Is `arg` (a path, a glob, or `file:lines`) one that needs no server? */
function serverless(arg) {
  const rel = path.relative(process.cwd(), path.resolve(arg.replace(/:[\d,-]+$/, ''))).split(path.sep).join('/');
  if (rel === 'test/unit' || rel.startsWith('test/unit/')) return true;
  return rel.startsWith('test/contract/') && path.posix.basename(rel).includes('in-memory');
}

const paths = pathArguments(args);
if (paths.length > 0 && paths.every(serverless)) {
  console.error('servers not ensured: every path given is a unit test or an in-memory contract suite');
} else {
  const ensure = spawnSync('bash', ['scripts/services.sh', 'ensure'], { stdio: 'inherit' });
  if (ensure.status !== 0) {
    console.log('0 passed, 1 failed');
    process.exit(ensure.status ?? 1);
  }
}

const ava = spawn('npx', ['ava', '--tap', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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
