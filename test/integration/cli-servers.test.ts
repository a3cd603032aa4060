/**
 * `warden demo` against servers that do not answer (closed loopback ports): the run fails at
 * once with one line that names the server, exit code 1, no stack trace. (test/unit/cli.test.ts
 * covers the command line; test/package the same bin from the tarball, on the shared servers.)
 */
import test from 'ava';
import { spawn } from 'node:child_process';

function warden(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

for (const [flag, url] of [['--nats', 'nats://127.0.0.1:1'], ['--redis', 'redis://127.0.0.1:1']] as const) {
  test(`warden demo ${flag} with no server there fails with one line naming it, exit 1, no stack trace`, async (t) => {
    const r = await warden('demo', '--events', '100', flag, url);
    t.is(r.code, 1);
    t.regex(r.stderr, new RegExp(`^warden: .*${url.replace(/[.:/]/g, '\\$&')}`, 'm'));
    t.notRegex(r.stdout + r.stderr, /^\s+at .+:\d+:\d+\)?$/m);
    t.notRegex(r.stdout, /summary/, 'nothing ran');
  });
}
