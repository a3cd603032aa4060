/**
 * `pages`: the sink. One aggregate per page: views, distinct sessions, and the list of
 * `user#n` click ids it applied, in order. The list is what lets a checker prove, from the
 * sink's own durable state, that every click took effect exactly once.
 */
import { assign, setup } from 'xstate';
import { defineActor } from '../../lib/index.js';
import type { SessionView } from './sessions.js';

/** The aggregate of one page. */
export interface PageAggregate {
  views: number;
  sessions: string[];
  applied: string[];
}

const machine = setup({
  types: { context: {} as PageAggregate, events: {} as SessionView },
}).createMachine({
  id: 'pages',
  context: { views: 0, sessions: [], applied: [] },
  on: {
    'session-view': {
      actions: assign(({ context, event }) => {
        const session = `${event.user}/${event.session}`;
        return {
          views: context.views + 1,
          sessions: context.sessions.includes(session) ? context.sessions : [...context.sessions, session],
          applied: [...context.applied, `${event.user}#${event.n}`],
        };
      }),
    },
  },
});

/** The pages operator: keyed by page; a sink. */
export const pages = defineActor({ name: 'pages', machine, version: 1 });
