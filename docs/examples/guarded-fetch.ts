/**
 * A guarded HTTP call with fetch: a flaky local server (fails twice with 503 and a Retry-After,
 * then answers), a guard that retries it with the same idempotency key, and what the guard saw.
 *
 * Run: npx tsx docs/examples/guarded-fetch.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineCall, retryAfterFrom, TerminalError } from 'warden';

// A payments API that is briefly overloaded.
let requests = 0;
const api = createServer((req, res) => {
  requests++;
  console.log(`server: ${req.method} ${req.url} idempotency-key=${String(req.headers['idempotency-key'])}`);
  if (requests <= 2) res.writeHead(503, { 'retry-after': '0.2' }).end();
  else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ receipt: `r-${requests}` }));
});
await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
const PAYMENTS_URL = `http://127.0.0.1:${(api.address() as AddressInfo).port}/charges`;

interface Charge {
  orderId: string;
  cents: number;
}

// --- the guard (quoted in docs/guarded-calls.md) ---
const charge = defineCall(
  'payments.charge',
  async (req: Charge, { signal, idempotencyKey }) => {
    const res = await fetch(PAYMENTS_URL, {
      method: 'POST',
      body: JSON.stringify(req),
      headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      signal, // the timeout really cancels the request
    });
    if (res.status === 429 || res.status >= 500) {
      throw Object.assign(new Error(`payments: HTTP ${res.status}`), { retryAfterMs: retryAfterFrom(res) });
    }
    if (!res.ok) throw new TerminalError(`payments: HTTP ${res.status}`); // 4xx: never retried
    return (await res.json()) as { receipt: string };
  },
  {
    timeoutMs: 2_000,
    retry: { retries: 4, minTimeoutMs: 100, maxRetryTimeMs: 15_000 },
    breaker: { volumeThreshold: 10, resetTimeoutMs: 10_000 },
    idempotencyKey: (req) => `charge:${req.orderId}`,
  },
);
charge.on((event) => console.log('guard:', JSON.stringify(event)));

const { value, attempts } = await charge.callDetailed({ orderId: 'o-1001', cents: 4_200 });
console.log(`receipt ${value.receipt} after ${attempts} attempts`);
// --- end of the quoted part ---

await charge.close();
api.close();
