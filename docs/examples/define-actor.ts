import { assign, emit, setup } from 'xstate';
import { defineActor, definePipeline, startNode } from 'warden';

// An operator is an xstate v5 machine, run as one actor per key.
const machine = setup({
  types: {
    context: {} as { account: string; total: number },
    input: {} as { account: string },
    events: {} as { type: 'deposit'; amount: number },
    emitted: {} as { type: 'balance'; account: string; total: number },
  },
}).createMachine({
  context: ({ input }) => ({ account: input.account, total: 0 }),
  on: {
    deposit: {
      actions: [
        assign({ total: ({ context, event }) => context.total + event.amount }),
        emit(({ context }) => ({ type: 'balance' as const, account: context.account, total: context.total })),
      ],
    },
  },
});

export const accounts = defineActor({
  name: 'accounts',
  machine,
  version: 1,
  input: (key) => ({ account: key }),
  events: { deposit: (p) => (typeof p['amount'] === 'number' ? true : 'amount must be a number') },
});

// Wire it into a pipeline and run it embedded (in-memory log and checkpoints, no servers).
const pipeline = definePipeline({ name: 'bank', stages: [{ actor: accounts, partitions: 4 }] });
const node = await startNode({ pipeline });
await node.ingest({ key: 'acct-1', type: 'deposit', payload: { amount: 25 } });
await node.whenCaughtUp();
console.log(node.inspect('accounts', 'acct-1')?.context); // { account: 'acct-1', total: 25 }
await node.stop();
