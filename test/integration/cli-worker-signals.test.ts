/**
 * `warden worker` and a stop signal that comes while it is still starting (its module loading):
 * the node is stopped gracefully as soon as it runs and the process exits 0, never killed
 * half-started. On the real servers (NATS 127.0.0.1:4222, Redis 127.0.0.1:6379).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';

const MAIN = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
const MODULE = fileURLToPath(new URL('../fixtures/pipeline-slow.ts', import.meta.url));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test.serial(`a ${signal} while the worker is still starting stops it cleanly: exit 0, no ready line`, async (t) => {
    const name = `it-sig-${randomBytes(3).toString('hex')}`;
    t.teardown(async () => {
      const transport = await JetStreamTransport.connect({ servers: 'nats://127.0.0.1:4222' });
      const store = await RedisCheckpointStore.connect({ url: 'redis://127.0.0.1:6379' });
      await store.drop({ operator: `${name}.counter`, partition: 0 });
      for (const stream of [`${name}-counter`, `${name}-dlq`, `KV_${name}-leases`]) await transport.deleteStream(stream).catch(() => undefined);
      await store.close();
      await transport.close();
    });
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker', MODULE, '--lease-ttl', '2000'], {
      env: { ...process.env, WARDEN_TEST_PIPELINE: name, WARDEN_TEST_LOAD_MS: '1500', WARDEN_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
    // The worker runs and its module is loading (the fixture says so, then waits 1.5 s).
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (err.includes('pipeline-slow: loading')) resolve();
        else setTimeout(check, 10);
      };
      check();
    });
    child.kill(signal);
    const [code, sig] = await exited;
    t.is(sig, null, `not killed by the signal (stderr: ${err})`);
    t.is(code, 0, `stderr: ${err}`);
    t.false(out.includes('"ready":true'), 'it never announced itself ready');
  });
}
