/**
 * `sessions`: one state machine per user. A session opens on the first view and closes when
 * a view arrives more than `gapMs` (event time) after the previous one; every view is passed
 * on tagged with its session number. Event time comes in with the data, so the machine is
 * deterministic and a replay regenerates the same outputs.
 */
import { assign, emit, setup } from 'xstate';
import { defineActor } from '../../lib/index.js';
import { faults } from '../../chaos/faults.js';
import type { PageView } from './parse.js';

/** A view inside a session. */
export interface SessionView {
  type: 'session-view';
  user: string;
  page: string;
  n: number;
  session: number;
  ts: number;
}

/** Inactivity that closes a session (event time). */
export const SESSION_GAP_MS = 30 * 60 * 1000;

interface Ctx {
  session: number;
  views: number;
  lastTs: number;
}

const machine = setup({
  types: {
    context: {} as Ctx,
    events: {} as PageView,
    emitted: {} as SessionView | { type: 'session-closed'; user: string; session: number; views: number },
  },
  actions: {
    // A fault-injector hook: lets chaos scenarios crash this actor at a chosen point.
    maybeCrash: ({ event }) => faults.check('sessions', event.user),
    open: assign({ session: ({ context }) => context.session + 1, views: 0 }),
    close: emit(({ context, event }) => ({ type: 'session-closed' as const, user: event.user, session: context.session, views: context.views })),
    count: assign({ views: ({ context }) => context.views + 1, lastTs: ({ event }) => event.ts }),
    forward: emit(({ context, event }) => ({
      type: 'session-view' as const, user: event.user, page: event.page, n: event.n, session: context.session, ts: event.ts,
    })),
  },
  guards: {
    gapExceeded: ({ context, event }) => event.ts - context.lastTs > SESSION_GAP_MS,
  },
}).createMachine({
  id: 'sessions',
  initial: 'idle',
  context: { session: 0, views: 0, lastTs: 0 },
  states: {
    idle: {
      on: { 'page-view': { target: 'active', actions: ['maybeCrash', 'open', 'count', 'forward'] } },
    },
    active: {
      on: {
        'page-view': [
          { guard: 'gapExceeded', actions: ['maybeCrash', 'close', 'open', 'count', 'forward'] },
          { actions: ['maybeCrash', 'count', 'forward'] },
        ],
      },
    },
  },
});

/** The sessions operator: keyed by user. */
export const sessions = defineActor({ name: 'sessions', machine, version: 1 });
