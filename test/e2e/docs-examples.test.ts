/**
 * The examples in docs/examples run as a user runs them (`node --import tsx <file>`, importing
 * `warden` by its package name), and print what the docs say they print. Every example is either
 * run here or named with the test that runs it, so a new example cannot go unrun.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Examples that run to completion without servers, with a line of their output. */
const RUN_HERE: Record<string, RegExp> = {
  'define-actor.ts': /^\{ account: 'acct-1', total: 25 \}$/m,
  'guarded-fetch.ts': /^receipt r-3 after 3 attempts$/m,
};

/** Examples run by another test (a long-running service). */
const RUN_ELSEWHERE: Record<string, string> = {
  'http-service.ts': 'test/e2e/http-service.test.ts',
  'real-servers.ts': 'test/integration/example-real-servers.test.ts',
};

test('every docs/examples file is run by a test', (t) => {
  const files = readdirSync('docs/examples').filter((f) => f.endsWith('.ts')).sort();
  t.deepEqual(files, [...Object.keys(RUN_HERE), ...Object.keys(RUN_ELSEWHERE)].sort());
});

for (const [file, expected] of Object.entries(RUN_HERE)) {
  test(`docs/examples/${file} runs to completion and prints what the docs say`, async (t) => {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', `docs/examples/${file}`], { timeout: 60_000 });
    t.regex(stdout, expected, `stdout:\n${stdout}\nstderr:\n${stderr}`);
  });
}
