/** A small keyed counter operator used across tests. */
import { assign, emit, setup } from 'xstate';
import { defineActor } from '../../lib/index.js';

/** Values that make the counter's action throw: `poison` always, others as the test arms them. */
export const crashOn = new Set<number>();

export const counterMachine = setup({
  types: {
    context: {} as { count: number; total: number; seen: number[] },
    events: {} as { type: 'add'; amount: number } | { type: 'finish' },
    emitted: {} as { type: 'added'; count: number; total: number },
  },
  actions: {
    guardPoison: ({ event }) => {
      if (event.type === 'add' && (event.amount === 666 || crashOn.has(event.amount))) {
        crashOn.delete(event.amount);
        throw new Error(`cannot add ${event.amount}`);
      }
    },
  },
}).createMachine({
  id: 'counter',
  initial: 'counting',
  context: { count: 0, total: 0, seen: [] },
  states: {
    counting: {
      on: {
        add: {
          actions: [
            'guardPoison',
            assign(({ context, event }) => ({ count: context.count + 1, total: context.total + event.amount, seen: [...context.seen, event.amount] })),
            emit(({ context }) => ({ type: 'added' as const, count: context.count, total: context.total })),
          ],
        },
        finish: 'finished',
      },
    },
    finished: { type: 'final' },
  },
});

/** `counter` counts `add` inputs per key; `add` with amount 666 always crashes it. */
export const counter = defineActor({
  name: 'counter',
  machine: counterMachine,
  events: { add: (p) => (typeof p.amount === 'number' ? true : 'amount must be a number'), finish: null },
});

/** Collects the `added` outputs of the counter, keyed, as a downstream sink. */
export const tally = defineActor({
  name: 'tally',
  machine: setup({
    types: { context: {} as { got: Array<[number, number]> }, events: {} as { type: 'added'; count: number; total: number } },
  }).createMachine({
    context: { got: [] },
    on: { added: { actions: assign(({ context, event }) => ({ got: [...context.got, [event.count, event.total] as [number, number]] })) } },
  }),
});
