/**
 * Guarded calls over real HTTP: a `node:http` server on 127.0.0.1 (port 0) that each test
 * scripts, called with `fetch` and the guard's signal. Covers retries with growing delays,
 * timeouts that really close the request, the breaker opening, probing and closing when the
 * server heals, Retry-After on 429, terminal 4xx, and the idempotency key on the wire.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as wait } from 'node:timers/promises';
import { TerminalError, WardenError } from '../../lib/core/errors.js';
import { defineCall } from '../../lib/resilience/guarded-call.js';
import { retryAfterFrom } from '../../lib/resilience/retry-after.js';
import type { CallEvent, GuardedCallOptions } from '../../lib/resilience/types.js';

interface Seen {
  at: number;
  idempotencyKey: string | undefined;
  /** True once the client closed the connection before the response ended. */
  abandoned: boolean;
}

/** A server whose answer to request n (0-based) the test decides; `undefined` leaves it hanging. */
async function server(t: ExecutionContext, answer: (n: number, res: ServerResponse) => void) {
  const seen: Seen[] = [];
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const entry: Seen = { at: performance.now(), idempotencyKey: req.headers['idempotency-key'] as string | undefined, abandoned: false };
    seen.push(entry);
    res.on('close', () => {
      if (!res.writableEnded) entry.abandoned = true;
    });
    answer(seen.length - 1, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    http.closeAllConnections();
    http.close();
  });
  const { port } = http.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen };
}

const reply = (res: ServerResponse, status: number, body = '', headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'text/plain', ...headers });
  res.end(body);
};

let seq = 0;

/** The guarded fetch a service would write: 429/5xx retryable (with Retry-After), other 4xx terminal. */
function httpCall(t: ExecutionContext, url: string, options: GuardedCallOptions<string, string>) {
  const call = defineCall(
    `http.${++seq}`,
    async (path: string, { signal, idempotencyKey }) => {
      const res = await fetch(`${url}${path}`, { signal, headers: { 'idempotency-key': idempotencyKey } });
      const body = await res.text();
      if (res.ok) return body;
      if (res.status === 429 || res.status >= 500) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status, retryAfterMs: retryAfterFrom(res) });
      throw new TerminalError(`HTTP ${res.status}: ${body}`);
    },
    options,
  );
  const events: CallEvent[] = [];
  call.on((e) => events.push(e));
  t.teardown(() => call.close());
  return { call, events };
}

const gaps = (seen: Seen[]): number[] => seen.slice(1).map((s, i) => s.at - seen[i]!.at);

test('a server failing 3 times with 500 then answering: retries with growing delays, then success', async (t) => {
  const { url, seen } = await server(t, (n, res) => (n < 3 ? reply(res, 500, 'oops') : reply(res, 200, 'hello')));
  const { call, events } = httpCall(t, url, { retry: { retries: 3, minTimeoutMs: 50, factor: 2, randomize: false } });
  const r = await call.callDetailed('/greeting');
  t.like(r, { value: 'hello', fallback: false, attempts: 4 });
  t.is(seen.length, 4);
  const g = gaps(seen);
  t.true(g[0]! >= 49 && g[1]! >= 99 && g[2]! >= 199, `gaps ${g.map((x) => x.toFixed(0)).join(', ')} ms`);
  t.true(g[0]! < g[1]! && g[1]! < g[2]!, 'delays grow');
  t.deepEqual(events.filter((e) => e.type === 'retry').map((e) => (e as { delayMs: number }).delayMs), [50, 100, 200]);
});

test('a server that never answers: each attempt is aborted on the wire, the breaker opens, probes, and closes once the server heals', async (t) => {
  let healed = false;
  const { url, seen } = await server(t, (_n, res) => {
    if (healed) reply(res, 200, 'back');
  });
  const { call, events } = httpCall(t, url, { timeoutMs: 100, retry: { retries: 0 }, breaker: { volumeThreshold: 3, resetTimeoutMs: 300 } });
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const err = await t.throwsAsync(call.call('/slow'), { instanceOf: WardenError });
    const took = performance.now() - t0;
    t.is((err?.cause as WardenError).code, 'TIMEOUT');
    t.true(took >= 95 && took < 1_000, `attempt took ${took.toFixed(0)} ms`);
  }
  await wait(50); // let the server see the closes
  t.is(seen.length, 3);
  t.true(
    seen.every((s) => s.abandoned),
    'the server saw every timed-out request’s connection closed',
  );
  t.is(call.breakerState, 'open');
  const fast = performance.now();
  const refused = await t.throwsAsync(call.call('/slow'), { instanceOf: WardenError });
  t.is(refused?.code, 'BREAKER_OPEN');
  t.true(performance.now() - fast < 50, 'fails fast');
  t.is(seen.length, 3, 'the open breaker sent nothing');
  healed = true;
  await wait(350);
  t.is(call.breakerState, 'half-open');
  t.is(await call.call('/slow'), 'back');
  t.is(call.breakerState, 'closed');
  t.deepEqual(
    events.filter((e) => e.type.startsWith('breaker-')).map((e) => e.type),
    ['breaker-open', 'breaker-half-open', 'breaker-closed'],
  );
  t.is(call.metrics().failures.timeout, 3);
});

test('429 with Retry-After: 1 makes the guard wait about a second before the next attempt', async (t) => {
  const { url, seen } = await server(t, (n, res) => (n === 0 ? reply(res, 429, 'slow down', { 'retry-after': '1' }) : reply(res, 200, 'ok')));
  const { call, events } = httpCall(t, url, { retry: { retries: 2, minTimeoutMs: 10 } });
  t.is(await call.call('/limited'), 'ok');
  t.is(seen.length, 2);
  const gap = gaps(seen)[0]!;
  t.true(gap >= 990, `waited ${gap.toFixed(0)} ms`);
  t.true(gap < 1_500, `waited ${gap.toFixed(0)} ms`);
  t.like(events.find((e) => e.type === 'retry'), { delayMs: 1_000, retryAfterMs: 1_000 });
});

test('a terminal 400 is not retried', async (t) => {
  const { url, seen } = await server(t, (_n, res) => reply(res, 400, 'missing field amount'));
  const { call } = httpCall(t, url, { retry: { retries: 5, minTimeoutMs: 10 } });
  const err = await t.throwsAsync(call.call('/charge'), { instanceOf: WardenError });
  t.is(err?.code, 'CALL_FAILED');
  t.true(err?.nonRetryable);
  t.true(err?.cause instanceof TerminalError);
  t.regex((err?.cause as Error).message, /HTTP 400: missing field amount/);
  await wait(100);
  t.is(seen.length, 1);
  t.is(call.breakerState, 'closed');
});

test('the idempotency-key header is the same on every retry of a call, and the caller’s key is used as given', async (t) => {
  const { url, seen } = await server(t, (n, res) => (n % 3 < 2 ? reply(res, 503) : reply(res, 200, 'done')));
  // Two calls of 2 failures + 1 success would open a default breaker (4 of 5 fires failed).
  const { call } = httpCall(t, url, { retry: { retries: 3, minTimeoutMs: 10 }, breaker: { volumeThreshold: 100 } });
  const first = await call.callDetailed('/pay');
  t.is(seen.length, 3);
  t.true(seen.every((s) => s.idempotencyKey === first.idempotencyKey));
  await call.call('/pay', { idempotencyKey: 'payments:user-1:42.0' });
  t.is(seen.length, 6);
  t.deepEqual(
    seen.slice(3).map((s) => s.idempotencyKey),
    ['payments:user-1:42.0', 'payments:user-1:42.0', 'payments:user-1:42.0'],
  );
});
