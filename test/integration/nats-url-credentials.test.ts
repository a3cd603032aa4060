/**
 * Credentials written in NATS server URLs (`nats://user:pass@host`, `nats://token@host`) log the
 * transport and the lease store in, as the docs say (the NATS client itself does not read them
 * there), and never show in an error. On nats-servers of the test's own that require them.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { JetStreamTransport, KvLeaseStore } from '../../lib/adapters/nats/index.js';
import { binary, freePort, spawnOwned, waitUntil } from '../../chaos/processes.js';
import { WardenError } from '../../lib/core/errors.js';

const SECRET = 'Zq9-s3cret-pw';

/** A JetStream nats-server of its own on a free port, with `auth` arguments; killed and removed at teardown. */
async function ownServer(t: { teardown(fn: () => void): void }, auth: string[], login: { user?: string; pass?: string; token?: string }): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'warden-nats-auth-'));
  const proc = spawnOwned(binary('nats-server'), ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, ...auth], join(dir, 'nats.log'));
  t.teardown(() => {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitUntil('nats-server', async () => {
    const nc = await connect({ servers: `nats://127.0.0.1:${port}`, ...login, reconnect: false });
    await nc.close();
    return true;
  }, proc);
  return port;
}

test('user and password in the URL log the transport and the lease store in; a wrong password is refused without showing it', async (t) => {
  const port = await ownServer(t, ['--user', 'alice', '--pass', SECRET], { user: 'alice', pass: SECRET });
  for (const servers of [`nats://alice:${SECRET}@127.0.0.1:${port}`, `alice:${SECRET}@127.0.0.1:${port}`]) {
    const transport = await JetStreamTransport.connect({ servers, waitOnFirstConnect: false });
    await transport.ensureStream({ name: 'creds', subjects: ['creds.>'] });
    t.is((await transport.streamInfo('creds')).name, 'creds');
    await transport.close();
  }
  const leases = await KvLeaseStore.connect({ servers: `nats://alice:${SECRET}@127.0.0.1:${port}`, bucket: 'creds-leases', ttlMs: 2_000 });
  t.truthy(await leases.acquire('p0', 'me'));
  await leases.close();
  const err = await t.throwsAsync(JetStreamTransport.connect({ servers: `nats://alice:wrong-${SECRET}@127.0.0.1:${port}`, waitOnFirstConnect: false }), { instanceOf: WardenError });
  t.false(JSON.stringify({ message: err.message, details: err.details }).includes(SECRET), err.message);
});

test('a token in the URL logs the transport in; URLs with different credentials are a ConfigError', async (t) => {
  const port = await ownServer(t, ['--auth', SECRET], { token: SECRET });
  const transport = await JetStreamTransport.connect({ servers: `nats://${SECRET}@127.0.0.1:${port}`, waitOnFirstConnect: false });
  t.is((await t.throwsAsync(transport.streamInfo('nope'), { instanceOf: WardenError })).code, 'STREAM_NOT_FOUND', 'logged in: JetStream answers');
  await transport.close();
  await t.throwsAsync(JetStreamTransport.connect({ servers: [`nats://a:b@127.0.0.1:${port}`, `nats://c:d@127.0.0.1:${port}`], waitOnFirstConnect: false }), { code: 'CONFIG', message: /different credentials/ });
});
