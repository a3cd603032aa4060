/**
 * A stage may route to itself and to earlier stages (cycles). Outputs keep their exactly-once IDs
 * (`<stage>:<key>:<inputSeq>:<n>`, unique per input), so a self-routed output is deduplicated in
 * its own stream like any other (worker invariant 4).
 */
import test from 'ava';
import { assign, emit, setup } from 'xstate';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  createProducer,
  defineActor,
  definePipeline,
  silentLogger,
  startNode,
  type NodeEvent,
  type WardenNode,
} from '../../lib/index.js';
import { counter, tally } from '../helpers/counter.js';

interface Account {
  account: string;
  balance: number;
  /** Transfer ids debited here. */
  sent: string[];
  /** Transfer ids credited here. */
  credited: string[];
}

/** One ledger operator: `transfer` debits this account and emits a `credit` for the other one, in the same stage. */
const ledger = defineActor({
  name: 'ledger',
  input: (key) => ({ account: key }),
  events: {
    deposit: (p) => (typeof p.amount === 'number' ? true : 'amount must be a number'),
    transfer: (p) => (typeof p.id === 'string' && typeof p.to === 'string' && typeof p.amount === 'number' ? true : 'needs id, to, amount'),
    credit: (p) => (typeof p.id === 'string' && typeof p.amount === 'number' ? true : 'needs id, amount'),
  },
  machine: setup({
    types: {
      context: {} as Account,
      input: {} as { account: string },
      events: {} as { type: 'deposit'; amount: number } | { type: 'transfer'; id: string; to: string; amount: number } | { type: 'credit'; id: string; amount: number },
      emitted: {} as { type: 'credit'; id: string; to: string; amount: number },
    },
  }).createMachine({
    context: ({ input }) => ({ account: input.account, balance: 0, sent: [], credited: [] }),
    on: {
      deposit: { actions: assign({ balance: ({ context, event }) => context.balance + event.amount }) },
      transfer: {
        actions: [
          assign({ balance: ({ context, event }) => context.balance - event.amount, sent: ({ context, event }) => [...context.sent, event.id] }),
          emit(({ event }) => ({ type: 'credit' as const, id: event.id, to: event.to, amount: event.amount })),
        ],
      },
      credit: { actions: assign({ balance: ({ context, event }) => context.balance + event.amount, credited: ({ context, event }) => [...context.credited, event.id] }) },
    },
  }),
});

test('definePipeline accepts a stage routing to itself and to an earlier stage', (t) => {
  t.notThrows(() => definePipeline({ name: 'self', stages: [{ actor: counter, to: 'counter' }] }));
  t.notThrows(() => definePipeline({ name: 'back', stages: [{ actor: counter, to: 'tally' }, { actor: tally, to: (e) => (e.type === 'again' ? 'counter' : undefined) }] }));
});

test('ledger transfers routed back into the same stage conserve the sum of balances and apply every credit exactly once, across kills of the partition workers', async (t) => {
  const transport = new InMemoryTransport();
  const store = new InMemoryCheckpointStore();
  t.teardown(async () => {
    await transport.close();
    await store.close();
  });
  const pipeline = definePipeline({
    name: 'cyc-ledger',
    stages: [{ actor: ledger, partitions: 2, to: (e) => (e.type === 'credit' ? 'ledger' : undefined), keyBy: (e) => String(e.to), checkpoint: { everyEvents: 15, intervalMs: 50 } }],
  });
  const ACCOUNTS = 8;
  const TRANSFERS = 240;
  const ref: { node?: WardenNode } = {}; // the failpoint may fire before startNode returns
  let afterPublish = 0;
  let failpointKills = 0;
  const events: NodeEvent[] = [];
  const node = await startNode({
    pipeline,
    transport,
    checkpointStore: store,
    logger: silentLogger,
    onEvent: (e) => events.push(e),
    supervision: { intensity: 100, backoff: { minBackoffMs: 1, maxBackoffMs: 5 } },
    // Crashes with outputs published and the cut not yet written: the replay re-sends the same credits.
    failpoint: (point, info) => {
      if (point !== 'after-publish' || info.stage !== 'ledger') return;
      if (++afterPublish % 97 === 0) {
        failpointKills++;
        ref.node?.kill('ledger', info.partition);
      }
    },
  });
  ref.node = node;
  t.teardown(() => node.stop());
  const producer = createProducer({ pipeline, transport });
  const account = (i: number): string => `acct-${i % ACCOUNTS}`;
  await producer.sendMany(Array.from({ length: ACCOUNTS }, (_, i) => ({ key: account(i), type: 'deposit', payload: { amount: 1_000 } })));
  for (let i = 0; i < TRANSFERS; i++) {
    const from = account(i * 7);
    const to = account(i * 7 + 1 + (i % (ACCOUNTS - 1)));
    await producer.send({ key: from, type: 'transfer', payload: { id: `tx-${i}`, to, amount: 1 + (i % 13) } });
    if (i % 60 === 30) node.kill('ledger'); // both partitions, mid-stream
    if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await node.whenCaughtUp({ timeoutMs: 60_000 });

  // After a kill an account is in memory again only once it gets an input: read its durable state.
  const accounts = await Promise.all(Array.from({ length: ACCOUNTS }, async (_, i) => (await node.readState('ledger', account(i)))?.context as Account));
  t.true(accounts.every(Boolean), 'every account has a state');
  t.is(accounts.reduce((sum, a) => sum + a.balance, 0), ACCOUNTS * 1_000, 'the sum of balances is conserved');
  const credited = accounts.flatMap((a) => a.credited).sort();
  const sent = accounts.flatMap((a) => a.sent).sort();
  const all = Array.from({ length: TRANSFERS }, (_, i) => `tx-${i}`).sort();
  t.deepEqual(sent, all, 'every transfer debited exactly once');
  t.deepEqual(credited, all, 'every credit applied exactly once');
  // The self-routed credits are in the stage's own stream once each: replays re-sent them with the same IDs.
  const reader = transport.openReader('cyc-ledger-ledger');
  let credits = 0;
  for (let batch = await reader.next(500, 0); batch.length > 0; batch = await reader.next(500, 0)) {
    credits += batch.filter((m) => (JSON.parse(new TextDecoder().decode(m.data)) as { type: string }).type === 'credit').length;
  }
  await reader.close();
  t.is(credits, TRANSFERS, 'one credit message per transfer in the stream');
  t.true(failpointKills >= 2, `killed at the failpoint ${failpointKills} times`);
  t.true(events.filter((e) => e.type === 'killed').length >= failpointKills + 2, 'and killed mid-stream by node.kill');
  t.is(events.filter((e) => e.type === 'dead-letter').length, 0);
});
