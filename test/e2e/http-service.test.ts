/**
 * The embedding example (docs/examples/http-service.ts) as a user runs it: a plain node:http
 * service with a supervisor inside. It serves its tree, restarts its crashing poller, and on
 * SIGTERM stops gracefully and exits 0.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TreeNode } from '../../lib/index.js';

test('the http service embeds a supervisor, exposes its tree, and shuts down gracefully on SIGTERM', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'docs/examples/http-service.ts', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'listening on' line: ${out}`)), 20_000);
    child.stdout.on('data', () => {
      const m = /listening on (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  const base = `http://127.0.0.1:${port}`;
  t.is((await fetch(`${base}/hit/alice`)).status, 202);
  t.is((await fetch(`${base}/healthz`)).status, 200);

  // The poller crashes every 7th poll (about every 350 ms); its supervisor restarts it.
  let tree: { service: TreeNode; pipeline: TreeNode } | undefined;
  for (let i = 0; i < 60; i++) {
    tree = (await (await fetch(`${base}/tree`)).json()) as { service: TreeNode; pipeline: TreeNode };
    if ((tree.service.children?.[0]?.restarts ?? 0) >= 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const poller = tree!.service.children?.[0];
  t.is(poller?.id, 'poller');
  t.true((poller?.restarts ?? 0) >= 1, 'the poller was restarted after a crash');
  t.true(poller?.status === 'running' || poller?.status === 'restarting', String(poller?.status));
  t.deepEqual(tree!.pipeline.children?.map((c) => c.id), ['hits']);
  t.deepEqual(tree!.pipeline.children?.[0]?.children?.map((c) => c.id), ['partition-0', 'partition-1']);

  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 0, out);
  t.regex(out, /SIGTERM: shutting down/);
  t.regex(out, /stopped cleanly/);
});
