/**
 * A keyed actor (named `counter`, to sit in a rig's first stage) that pays through a guarded call:
 * `add` invokes `charge` with `{ amount }` and keeps each receipt; `cancel` leaves the paying state.
 */
import { assign, setup } from 'xstate';
import { defineActor, fromCall, type CallTarget } from '../../lib/index.js';

export function payer(charge: CallTarget<{ amount: number }, { receipt: string }>) {
  return defineActor({
    name: 'counter',
    events: { add: null, cancel: null },
    machine: setup({
      types: { context: {} as { receipts: string[] }, events: {} as { type: 'add'; amount: number } | { type: 'cancel' } },
      actors: { charge: fromCall(charge) },
    }).createMachine({
      id: 'payer',
      initial: 'idle',
      context: { receipts: [] },
      states: {
        idle: { on: { add: 'paying' } },
        paying: {
          invoke: {
            id: 'charge',
            src: 'charge',
            input: ({ event }) => ({ amount: (event as { amount: number }).amount }),
            onDone: { target: 'idle', actions: assign({ receipts: ({ context, event }) => [...context.receipts, event.output.receipt] }) },
          },
          on: { cancel: 'idle' },
        },
      },
    }),
  });
}

