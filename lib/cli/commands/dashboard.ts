/**
 * `warden dashboard <url...>`: a local page with the live view of one or more running nodes
 * (their operations endpoints: `warden worker --http`, or `createOpsHandler` in a service). The
 * page's streams go through this server (`/events?node=i` relays node i's `/events`), so the
 * nodes need not be reachable from the browser, only from here.
 *
 * Runs until SIGINT or SIGTERM; prints one JSON line `{"dashboard":"http://..."}` once it listens.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { describeError } from '../../core/errors.js';
import { dashboardPage } from '../../observe/dashboard-page.js';
import { endpointUrl, processIo, type CliIo } from '../pipeline-module.js';

function nodeUrl(v: string, prev: string[] = []): string[] {
  return [...prev, endpointUrl(v)];
}

/** Relays node `i`'s event stream to `res` until either side closes. */
async function relay(url: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ac = new AbortController();
  req.on('close', () => ac.abort());
  try {
    const upstream = await fetch(`${url}/events`, { signal: ac.signal });
    if (!upstream.ok || !upstream.body) throw new Error(`${url}/events answered ${upstream.status}`);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
    for await (const chunk of upstream.body) res.write(chunk);
    res.end();
  } catch (err) {
    if (ac.signal.aborted) return;
    if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`cannot reach ${url}: ${describeError(err)}\n`);
  }
}

/**
 * Serves the dashboard until the process is told to stop; resolves with the exit status.
 *
 * @example process.exitCode = await runDashboard(['http://127.0.0.1:9464'], { port: 8080, host: '127.0.0.1' });
 */
export async function runDashboard(urls: string[], o: { port: number; host: string }, io: CliIo = processIo, stop?: Promise<void>): Promise<number> {
  const page = dashboardPage(urls.map((_, i) => `events?node=${i}`), 'warden dashboard');
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    if (u.pathname === '/' || u.pathname === '/dashboard') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(page);
    } else if (u.pathname === '/events' && urls[Number(u.searchParams.get('node'))] !== undefined) {
      void relay(urls[Number(u.searchParams.get('node'))]!, req, res);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => resolve());
    });
  } catch (err) {
    io.err(`warden dashboard: cannot listen on ${o.host}:${o.port}: ${describeError(err)}\n`);
    return 1;
  }
  io.out(`${JSON.stringify({ dashboard: `http://${o.host}:${(server.address() as AddressInfo).port}/`, nodes: urls })}\n`);
  await (stop ?? new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  }));
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}

/**
 * Adds `dashboard` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  program.command('dashboard')
    .description('serve a live page of running nodes: supervision tree, restarts, lag, checkpoint age, breakers, events')
    .argument('<url...>', "the nodes' operations endpoints (warden worker --http), e.g. http://127.0.0.1:9464", nodeUrl)
    .option('--port <port>', 'port of the page (0: a free one)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('It must be a port number, 0 to 65535.');
      return n;
    }, 8080)
    .option('--host <host>', 'address the page listens on', '127.0.0.1')
    .action(async (urls: string[], o: { port: number; host: string }) => {
      process.exitCode = await runDashboard(urls, o, io);
    });
}
