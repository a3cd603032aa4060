/**
 * chaos/tcp-proxy.ts in front of a `node:net` echo server (and the shared Redis): it forwards,
 * delays in order, resets, blackholes and refuses, each switchable while connections are open,
 * and leaves nothing behind when closed. Time bounds are lower bounds only (a loaded machine
 * only makes things slower).
 */
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as natsConnect } from '@nats-io/transport-node';
import { freePort } from '../../chaos/processes.js';
import { startTcpProxy, type TcpProxy } from '../../chaos/tcp-proxy.js';

async function echoServer(t: ExecutionContext): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

async function proxyTo(t: ExecutionContext, port: number): Promise<TcpProxy> {
  const proxy = await startTcpProxy({ target: { port } });
  t.teardown(() => proxy.close());
  return proxy;
}

async function dial(t: ExecutionContext, port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  s.on('error', () => undefined);
  t.teardown(() => void s.destroy());
  await once(s, 'connect');
  return s;
}

/** The next `n` bytes `s` receives; rejects on close or after `timeoutMs`. */
function read(s: Socket, n: number, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) done();
    };
    const onClose = (): void => done(new Error(`closed after ${got} of ${n} bytes`));
    const timer = setTimeout(() => done(new Error(`timed out after ${got} of ${n} bytes`)), timeoutMs);
    s.on('data', onData);
    s.once('close', onClose);
  });
}

async function roundTrip(s: Socket, text: string, timeoutMs?: number): Promise<string> {
  const answer = read(s, Buffer.byteLength(text), timeoutMs);
  s.write(text);
  return (await answer).toString();
}

/** Resolves when `s` closes; with the error code it saw, if any. */
async function closedWith(s: Socket, timeoutMs = 5_000): Promise<string> {
  let code = '';
  s.once('error', (err: NodeJS.ErrnoException) => (code = err.code ?? 'error'));
  if (!s.destroyed) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise((resolve) => s.once('close', resolve)),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('not closed')), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
  }
  return code;
}

test('forwards both ways, in order and with half-close, and counts the bytes', async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  t.regex(proxy.url('nats'), /^nats:\/\/127\.0\.0\.1:\d+$/);
  const s = await dial(t, proxy.port);
  t.is(await roundTrip(s, 'hello'), 'hello');
  const big = Buffer.alloc(4 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
  const echoed = read(s, big.length, 30_000);
  s.write(big);
  t.true((await echoed).equals(big));
  s.end(); // the echo server ends in turn
  await once(s, 'end');
  t.deepEqual({ ...proxy.stats(), open: 0 }, { accepted: 1, open: 0, refused: 0, reset: 0, bytesToTarget: 5 + big.length, bytesToClient: 5 + big.length, droppedToTarget: 0, droppedToClient: 0 });
});

test('forwards a raw PING to the shared Redis on 6379 and its PONG back', async (t) => {
  const proxy = await proxyTo(t, 6379);
  const s = await dial(t, proxy.port);
  const answer = read(s, 7);
  s.write('PING\r\n');
  t.is((await answer).toString(), '+PONG\r\n');
});

test('a NATS client through the proxy to the shared server on 4222 reconnects after a reset', async (t) => {
  const proxy = await proxyTo(t, 4222);
  const nc = await natsConnect({ servers: proxy.url('nats'), reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  t.teardown(() => nc.close());
  await nc.flush();
  const reconnected = (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') return;
  })();
  proxy.reset();
  await reconnected;
  await nc.flush();
  t.like(proxy.stats(), { accepted: 2, reset: 1 });
});

test('latency delays each chunk both ways by at least the delay, and jitter keeps the byte order', async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const s = await dial(t, proxy.port);
  proxy.latency(100);
  let t0 = performance.now();
  t.is(await roundTrip(s, 'slow'), 'slow');
  const rtt = performance.now() - t0;
  t.log(`round trip with 100 ms each way: ${rtt.toFixed(0)} ms`);
  t.true(rtt >= 200);

  proxy.latency(30, 30); // 0-60 ms per chunk: later chunks may draw shorter delays
  const expected = Array.from({ length: 40 }, (_, i) => `<${i}>`).join('');
  const echoed = read(s, expected.length);
  t0 = performance.now();
  for (let i = 0; i < 40; i++) {
    s.write(`<${i}>`);
    await new Promise((r) => setTimeout(r, 2));
  }
  t.is((await echoed).toString(), expected);
  t.log(`40 chunks with 30 ± 30 ms each way: ${(performance.now() - t0).toFixed(0)} ms`);

  proxy.latency(0);
  t.is(await roundTrip(s, 'fast'), 'fast');
});

test('reset drops every open connection with a reset, and new connections still work', async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const a = await dial(t, proxy.port);
  const b = await dial(t, proxy.port);
  t.is(await roundTrip(a, 'a'), 'a');
  t.is(await roundTrip(b, 'b'), 'b');
  const closed = [closedWith(a), closedWith(b)];
  proxy.reset();
  t.deepEqual(await Promise.all(closed), ['ECONNRESET', 'ECONNRESET']);
  t.is(proxy.stats().reset, 2);
  const c = await dial(t, proxy.port);
  t.is(await roundTrip(c, 'c'), 'c');
});

test('blackhole stops traffic both ways until lifted; a client times out; connections opened meanwhile are held', async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const s = await dial(t, proxy.port);
  t.is(await roundTrip(s, 'before'), 'before');

  proxy.blackhole(true);
  s.setTimeout(300);
  const lost = read(s, 4, 10_000);
  s.write('lost');
  await once(s, 'timeout'); // no byte came back within 300 ms
  s.setTimeout(0);
  const held = await dial(t, proxy.port);
  held.write('dropped');
  await new Promise((r) => setTimeout(r, 200));
  t.like(proxy.stats(), { open: 2, droppedToTarget: 4 + 7, bytesToClient: 6 });

  proxy.blackhole(false);
  s.write('back'); // 'lost' was dropped, not delayed
  t.is((await lost).toString(), 'back');
  t.is(await roundTrip(held, 'held'), 'held');
});

test('refuse resets new connections at once and leaves open ones alone', async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const open = await dial(t, proxy.port);
  proxy.refuse(true);
  const refused = connect({ host: '127.0.0.1', port: proxy.port });
  t.teardown(() => void refused.destroy());
  let got = 0;
  refused.on('data', (c: Buffer) => (got += c.length));
  refused.write('anyone?');
  t.is(await closedWith(refused), 'ECONNRESET');
  t.is(got, 0);
  t.is(await roundTrip(open, 'still'), 'still');
  t.like(proxy.stats(), { accepted: 2, refused: 1 });
  proxy.refuse(false);
  t.is(await roundTrip(await dial(t, proxy.port), 'again'), 'again');
});

test('a connection to a target that is down is reset', async (t) => {
  const proxy = await proxyTo(t, await freePort()); // nothing listens there
  const s = connect({ host: '127.0.0.1', port: proxy.port });
  t.teardown(() => void s.destroy());
  t.is(await closedWith(s), 'ECONNRESET');
});

test.serial('close leaves no listener, connection or timer behind', async (t) => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const baseline = timers();
  const proxy = await startTcpProxy({ target: { port: await echoServer(t) } });
  const s = await dial(t, proxy.port);
  proxy.latency(1_000);
  s.write('in flight');
  for (let i = 0; i < 100 && timers() <= baseline; i++) await new Promise((r) => setImmediate(r)); // the chunk waits on a timer
  t.true(timers() > baseline);
  await proxy.close();
  await closedWith(s);
  t.is(proxy.stats().open, 0);
  const late = connect({ host: '127.0.0.1', port: proxy.port });
  t.is((await once(late, 'error').then(([err]) => err as NodeJS.ErrnoException)).code, 'ECONNREFUSED');
  t.true(timers() <= baseline, `timers before ${baseline}, after ${timers()}`);
});
