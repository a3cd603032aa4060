/**
 * The README's pipeline on the real servers (docs/examples/real-servers.ts), run as a user runs
 * it, twice under a pipeline name of its own: the second run finds the first run's count, restored
 * from the Redis checkpoint and the JetStream log. The streams and checkpoints are deleted after.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';

const NATS = 'nats://127.0.0.1:4222';
const REDIS = 'redis://127.0.0.1:6379';

function runExample(name: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, WARDEN_NATS_URL: NATS, WARDEN_REDIS_URL: REDIS };
    const child = spawn(process.execPath, ['--import', 'tsx', 'docs/examples/real-servers.ts', name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

test.serial('docs/examples/real-servers.ts: a second run continues the count of the first, on JetStream + Redis', async (t) => {
  const name = `it-example-${Math.random().toString(36).slice(2, 8)}`;
  t.teardown(async () => {
    const transport = await JetStreamTransport.connect({ servers: NATS });
    const store = await RedisCheckpointStore.connect({ url: REDIS });
    for (const stream of [`${name}-hits`, `${name}-dlq`]) await transport.deleteStream(stream).catch(() => undefined);
    for (let p = 0; p < 4; p++) await store.drop({ operator: `${name}.hits`, partition: p });
    await store.close();
    await transport.close();
  });
  const first = await runExample(name);
  t.is(first.code, 0, first.out);
  t.regex(first.out, /^\{ n: 1 \}$/m);
  const second = await runExample(name);
  t.is(second.code, 0, second.out);
  t.regex(second.out, /^\{ n: 2 \}$/m);
});
