/** chaos/servers.ts: own servers on free ports that survive kill and restart with their data. */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { startNatsServer, startRedisServer } from '../../chaos/servers.js';

test('an own nats-server keeps its JetStream data across a SIGKILL and restart on the same port', async (t) => {
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  t.not(nats.port, 4222);
  const firstPid = nats.pid;
  let nc = await connect({ servers: nats.url });
  let jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'survivor', subjects: ['survivor.>'] });
  const js = jsm.jetstream();
  for (let i = 0; i < 10; i++) await js.publish('survivor.x', new TextEncoder().encode(String(i)));
  await nc.close();
  await nats.kill();
  t.false(nats.running);
  await nats.restart();
  t.not(nats.pid, firstPid);
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  t.is((await jsm.streams.info('survivor')).state.messages, 10);
  await nc.close();
});

test('an own redis-server with AOF keeps acknowledged writes across a SIGKILL and restart', async (t) => {
  const redis = await startRedisServer({ appendonly: true });
  t.teardown(() => redis.destroy());
  t.not(redis.port, 6379);
  let client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  await client.set('k', 'v1');
  client.disconnect();
  await redis.kill();
  await redis.restart();
  client = new Redis(redis.url, { lazyConnect: true });
  await client.connect();
  t.is(await client.get('k'), 'v1');
  client.disconnect();
});

/** Runs the fixture, waits for its JSON line, sends `signal`, and resolves how it ended with what it had started. */
async function interrupted(signal: NodeJS.Signals, args: string[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null; pids: number[]; dirs: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/servers-then-wait.ts', import.meta.url)), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const started = await new Promise<{ pids: number[]; dirs: string[] }>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as { pids: number[]; dirs: string[] });
    });
    child.once('exit', (code) => reject(new Error(`the fixture exited (${String(code)}) before it started its servers`)));
  });
  const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  child.kill(signal);
  const [code, sig] = await ended;
  return { code, signal: sig, ...started };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The servers' PIDs may take a moment to be reaped after their SIGKILL. */
async function gone(pids: number[]): Promise<boolean> {
  for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  return !pids.some(alive);
}

test('a process interrupted by SIGINT or SIGTERM takes the servers it started with it, removes their data directories, and still ends by the signal', async (t) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const r = await interrupted(signal);
    t.is(r.signal, signal, `${signal}: the process ended by the signal`);
    t.true(await gone(r.pids), `${signal}: no server left running (${r.pids.join(', ')})`);
    for (const dir of r.dirs) t.false(existsSync(dir), `${signal}: ${dir} removed`);
  }
});

test('a process that handles SIGTERM itself keeps its shutdown; its exit still takes the servers with it', async (t) => {
  const r = await interrupted('SIGTERM', ['--handle']);
  t.is(r.code, 0, 'its own handler ended it');
  t.true(await gone(r.pids));
  for (const dir of r.dirs) t.false(existsSync(dir));
});
