/**
 * The pipelines the shipped chaos scenarios run in their node processes (the runner names them
 * through the environment: `WARDEN_CHAOS_PIPELINE` the pipeline's name, `WARDEN_CHAOS_VARIANT`
 * `audit` or `payments`, `WARDEN_CHAOS_API_URL` the flaky API of the run):
 *
 *   audit:    orders (6 partitions) -> ledger (2 partitions) -> receipts (1)
 *   payments: orders (6) -> payments (4, one actor per order, a guarded HTTP call) -> ledger (2) -> receipts (1)
 *
 * Every stage is exactly-once. `orders` stamps each input `{ seq }` of a key; `ledger` keeps, per
 * key, the sequences it applied in order: the effects the invariants are checked against. It
 * emits an `applied` receipt for each, so the receipts log tells when each effect happened. In
 * `payments`, each order charges the flaky API through `fromCall` with its idempotency key, so a
 * charge takes effect once whatever the retries and crashes.
 */
import { assign, emit, setup } from 'xstate';
import { defineActor, defineCall, definePipeline, fromCall, retryAfterFrom, TerminalError, type Pipeline } from '../../lib/index.js';

const checkpoint = { everyEvents: 200, intervalMs: 250 };

const orders = defineActor({
  name: 'orders',
  machine: setup({
    types: {
      context: {} as { key: string; last: number },
      input: {} as { key: string },
      events: {} as { type: 'order'; seq: number },
      emitted: {} as { type: 'placed'; key: string; seq: number },
    },
  }).createMachine({
    context: ({ input }) => ({ key: input.key, last: 0 }),
    on: {
      order: {
        actions: [
          assign({ last: ({ event }) => event.seq }),
          emit(({ context, event }) => ({ type: 'placed' as const, key: context.key, seq: event.seq })),
        ],
      },
    },
  }),
  input: (key) => ({ key }),
  events: { order: (p) => (Number.isInteger(p.seq) ? true : 'seq must be an integer') },
});

const ledger = defineActor({
  name: 'ledger',
  machine: setup({
    types: {
      context: {} as { seqs: number[]; failed: number },
      events: {} as { type: 'placed'; key: string; seq: number } | { type: 'recorded'; key: string; seq: number; receipt: string | null },
      emitted: {} as { type: 'applied'; key: string; seq: number },
    },
  }).createMachine({
    context: { seqs: [], failed: 0 },
    on: {
      placed: {
        actions: [assign({ seqs: ({ context, event }) => [...context.seqs, event.seq] }), emit(({ event }) => ({ type: 'applied' as const, key: event.key, seq: event.seq }))],
      },
      recorded: {
        actions: [
          assign({ seqs: ({ context, event }) => [...context.seqs, event.seq], failed: ({ context, event }) => context.failed + (event.receipt === null ? 1 : 0) }),
          emit(({ event }) => ({ type: 'applied' as const, key: event.key, seq: event.seq })),
        ],
      },
    },
  }),
});

/** The sink of the ledger's receipts: their log is what the run times effects by. */
const receipts = defineActor({
  name: 'receipts',
  machine: setup({ types: { events: {} as { type: 'applied'; key: string; seq: number } } }).createMachine({ on: { applied: {} } }),
});

/** The charge, guarded: retries with backoff through 503s and timeouts, a breaker, the order's idempotency key. */
function chargeCall(url: string) {
  return defineCall(
    'chaos.charge',
    async (req: { key: string; seq: number }, { signal, idempotencyKey }) => {
      const res = await fetch(`${url}/charge`, { method: 'POST', body: JSON.stringify(req), headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey }, signal });
      if (res.status === 429 || res.status >= 500) throw Object.assign(new Error(`charge: HTTP ${res.status}`), { retryAfterMs: retryAfterFrom(res) });
      if (!res.ok) throw new TerminalError(`charge: HTTP ${res.status}`);
      return (await res.json()) as { receipt: string };
    },
    { timeoutMs: 1_000, retry: { retries: 20, minTimeoutMs: 50, maxTimeoutMs: 1_000, maxRetryTimeMs: 60_000 }, breaker: { volumeThreshold: 20, resetTimeoutMs: 1_000 }, replace: true },
  );
}

function payments(url: string) {
  const charge = chargeCall(url);
  return defineActor({
    name: 'payments',
    machine: setup({
      types: {
        context: {} as { key: string; seq: number },
        events: {} as { type: 'placed'; key: string; seq: number },
        emitted: {} as { type: 'recorded'; key: string; seq: number; receipt: string | null },
      },
      actors: { charge: fromCall(charge) },
    }).createMachine({
      id: 'payment',
      initial: 'idle',
      context: { key: '', seq: 0 },
      states: {
        idle: { on: { placed: { target: 'charging', actions: assign({ key: ({ event }) => event.key, seq: ({ event }) => event.seq }) } } },
        charging: {
          invoke: {
            id: 'charge',
            src: 'charge',
            input: ({ context }) => ({ key: context.key, seq: context.seq }),
            onDone: { target: 'done', actions: emit(({ context, event }) => ({ type: 'recorded' as const, key: context.key, seq: context.seq, receipt: (event.output).receipt })) },
            onError: { target: 'done', actions: emit(({ context }) => ({ type: 'recorded' as const, key: context.key, seq: context.seq, receipt: null })) },
          },
        },
        done: { type: 'final' },
      },
    }),
  });
}

/** The pipeline of this run, from the environment (see the file comment). */
export function pipeline(): Pipeline {
  const name = process.env.WARDEN_CHAOS_PIPELINE ?? 'chaos';
  if (process.env.WARDEN_CHAOS_VARIANT === 'payments') {
    return definePipeline({
      name,
      stages: [
        { actor: orders, partitions: 6, to: 'payments', keyBy: (ev) => `${String(ev.key)}:${String(ev.seq)}`, checkpoint },
        { actor: payments(process.env.WARDEN_CHAOS_API_URL ?? 'http://127.0.0.1:1'), partitions: 4, to: 'ledger', keyBy: (ev) => String(ev.key), checkpoint },
        { actor: ledger, partitions: 2, to: 'receipts', checkpoint },
        { actor: receipts, partitions: 1, checkpoint },
      ],
    });
  }
  return definePipeline({
    name,
    stages: [
      { actor: orders, partitions: 6, to: 'ledger', keyBy: (ev) => String(ev.key), checkpoint },
      { actor: ledger, partitions: 2, to: 'receipts', checkpoint },
      { actor: receipts, partitions: 1, checkpoint },
    ],
  });
}
