/**
 * An external API of the test's own, on loopback, that turns slow, flaky or down on command: the
 * outside world behind a pipeline's guarded calls. `POST /charge` with an `Idempotency-Key` header
 * applies the charge once per key (the effect) and answers a receipt; a repeated key answers the
 * same receipt without a second effect, as a payment provider does.
 *
 * Invariants:
 *  1. An effect is applied at most once per idempotency key, whatever the retries.
 *  2. `slow(ms)` delays every answer; `flaky(rate)` fails that share of requests with 503 (a
 *     seeded choice, so a run is repeatable) before applying anything; `down()` refuses
 *     connections (the listener closes) until `up()` reopens it on the same port.
 *  3. `close()` leaves no listener, connection or timer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { seededRandom as seeded } from '../lib/core/random.js';
import { freePort } from './processes.js';

/** What the API saw. */
export interface ApiStats {
  requests: number;
  /** Requests answered 503 (flaky) or never answered (down). */
  failed: number;
  /** Charges applied (distinct idempotency keys). */
  effects: number;
  /** Requests repeating a key already applied (answered without a new effect). */
  repeats: number;
}

/** The API's controls. */
export interface FlakyApi {
  readonly port: number;
  readonly url: string;
  slow(ms: number): void;
  flaky(rate: number): void;
  down(): Promise<void>;
  up(): Promise<void>;
  /** Back to fast and reliable (and up). */
  heal(): Promise<void>;
  stats(): ApiStats;
  /** The keys applied, in order. */
  appliedKeys(): string[];
  close(): Promise<void>;
}

/**
 * @example
 * const api = await startFlakyApi({ seed: 7 });
 * api.flaky(0.3); // 30 % of requests fail with 503
 */
export async function startFlakyApi(options: { seed?: number; port?: number } = {}): Promise<FlakyApi> {
  const port = options.port ?? (await freePort());
  const random = seeded(options.seed ?? 1);
  const applied = new Map<string, string>();
  const order: string[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const stats: ApiStats = { requests: 0, failed: 0, effects: 0, repeats: 0 };
  let delayMs = 0;
  let failRate = 0;
  let server: Server | undefined;

  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    stats.requests++;
    if (failRate > 0 && random() < failRate) {
      stats.failed++;
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' }).end('{"error":"unavailable"}');
      return;
    }
    const key = req.headers['idempotency-key'];
    if (req.method !== 'POST' || req.url !== '/charge' || typeof key !== 'string' || key === '') {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"POST /charge with an Idempotency-Key"}');
      return;
    }
    let receipt = applied.get(key);
    if (receipt === undefined) {
      receipt = `r-${applied.size + 1}`;
      applied.set(key, receipt); // invariant 1
      order.push(key);
      stats.effects++;
    } else {
      stats.repeats++;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ receipt, key }));
  };

  const listen = async (): Promise<void> => {
    const s = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (delayMs <= 0) return answer(req, res);
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer(req, res);
        }, delayMs);
        timers.add(timer);
      });
    });
    s.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
  };

  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    slow: (ms) => {
      delayMs = Math.max(0, ms);
    },
    flaky: (rate) => {
      failRate = Math.min(1, Math.max(0, rate));
    },
    down: stop,
    up: async () => {
      if (!server) await listen();
    },
    heal: async () => {
      delayMs = 0;
      failRate = 0;
      if (!server) await listen();
    },
    stats: () => ({ ...stats }),
    appliedKeys: () => [...order],
    close: stop,
  };
}
