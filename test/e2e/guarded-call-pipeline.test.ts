/**
 * A pipeline stage whose machine invokes a guarded HTTP call (`fromCall` + `defineCall`) against a
 * real `node:http` server: the worker crashes mid-call, and after the restore the call is issued
 * again with the same idempotency key (the server sees the key twice, not two keys); the result
 * reaches the machine through the log once.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { assign, setup } from 'xstate';
import { defineActor, defineCall, definePipeline, fromCall, InMemoryCheckpointStore, InMemoryTransport, silentLogger, startNode, TerminalError } from '../../lib/index.js';

interface Request {
  key: string | undefined;
  body: string;
  abandoned: boolean;
  answer: (status: number, body: string) => void;
}

/** A server that holds every request until the test answers it. */
async function heldServer(t: ExecutionContext): Promise<{ url: string; requests: Request[]; arrived: (n: number) => Promise<void> }> {
  const requests: Request[] = [];
  const waiters: Array<() => void> = [];
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r: Request = {
        key: req.headers['idempotency-key'] as string | undefined,
        body,
        abandoned: false,
        answer: (status, text) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(text);
        },
      };
      res.on('close', () => {
        if (!res.writableEnded) r.abandoned = true;
      });
      requests.push(r);
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    http.closeAllConnections();
    http.close();
  });
  const arrived = async (n: number): Promise<void> => {
    while (requests.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, requests, arrived };
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a worker killed mid-call re-issues the call after the restore with the same idempotency key; the result lands once', async (t) => {
  const server = await heldServer(t);
  const charge = defineCall(
    'e2e.charge',
    async (input: { order: string; amount: number }, { signal, idempotencyKey }) => {
      const res = await fetch(`${server.url}/charge`, { method: 'POST', signal, headers: { 'idempotency-key': idempotencyKey }, body: JSON.stringify(input) });
      if (!res.ok) throw new TerminalError(`HTTP ${res.status}`);
      return (await res.json()) as { receipt: string };
    },
    { timeoutMs: 30_000, retry: { retries: 0 } },
  );
  t.teardown(() => charge.close());
  const orders = defineActor({
    name: 'orders',
    events: { place: null },
    machine: setup({
      types: { context: {} as { receipt: string | null }, events: {} as { type: 'place'; amount: number } },
      actors: { charge: fromCall(charge) },
    }).createMachine({
      id: 'order',
      initial: 'new',
      context: { receipt: null },
      states: {
        new: { on: { place: 'charging' } },
        charging: {
          invoke: {
            id: 'charge',
            src: 'charge',
            input: ({ event, self }) => ({ order: self.id, amount: (event as { amount: number }).amount }),
            onDone: { target: 'paid', actions: assign({ receipt: ({ event }) => event.output.receipt }) },
            onError: 'failed',
          },
        },
        paid: {},
        failed: {},
      },
    }),
  });
  const transport = new InMemoryTransport();
  const checkpointStore = new InMemoryCheckpointStore();
  const pipeline = definePipeline({ name: 'e2e-calls', stages: [{ actor: orders, checkpoint: { everyEvents: 1, intervalMs: 50 } }] });
  const node = await startNode({ pipeline, transport, checkpointStore, logger: silentLogger });
  t.teardown(() => node.stop());

  await node.ingest({ key: 'o-1', type: 'place', payload: { amount: 42 } });
  await server.arrived(1);
  t.is(server.requests[0]!.key, 'orders:o-1:1.0');
  t.deepEqual(JSON.parse(server.requests[0]!.body), { order: 'orders:o-1', amount: 42 });

  node.kill('orders', 0); // the worker dies with the call in flight
  await until(() => server.requests[0]!.abandoned, 'the killed worker to abort its request');
  await server.arrived(2); // the restarted worker issues it again
  t.is(server.requests[1]!.key, 'orders:o-1:1.0', 'the same idempotency key, not a new one');
  server.requests[1]!.answer(200, JSON.stringify({ receipt: 'r-42' }));

  await until(() => node.inspect('orders', 'o-1')?.value === 'paid', 'the order to be paid');
  t.deepEqual(node.inspect('orders', 'o-1')?.context, { receipt: 'r-42' });
  await node.whenCaughtUp();
  t.is(server.requests.length, 2);
  const [status] = await node.status();
  t.like(status, { callsPending: 0, restarts: 1 });
});
