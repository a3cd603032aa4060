/**
 * `parse`: turns a raw click line (`user=u1 page=/home n=3 ts=1700000000000`) into a
 * `page-view`. A line that does not parse is emitted as `rejected` (a domain outcome, kept in
 * the actor's counters), not thrown: a crash is for bugs, not for bad data.
 */
import { assign, emit, setup } from 'xstate';
import { defineActor } from '../../lib/index.js';

/** A parsed click. */
export interface PageView {
  type: 'page-view';
  user: string;
  page: string;
  /** Per-user sequence number of the click (1, 2, 3...). */
  n: number;
  /** Event time, ms. */
  ts: number;
}

const FIELD = /(\w+)=(\S+)/g;

/** Parses one raw line; undefined if a field is missing or malformed. */
export function parseLine(line: string): Omit<PageView, 'type'> | undefined {
  const fields = new Map<string, string>();
  for (const m of line.matchAll(FIELD)) fields.set(m[1]!, m[2]!);
  const user = fields.get('user');
  const page = fields.get('page');
  const n = Number(fields.get('n'));
  const ts = Number(fields.get('ts'));
  if (!user || !page?.startsWith('/') || !Number.isInteger(n) || n < 1 || !Number.isFinite(ts)) return undefined;
  return { user, page, n, ts };
}

const machine = setup({
  types: {
    context: {} as { parsed: number; rejected: number },
    events: {} as { type: 'raw'; line: string },
    emitted: {} as PageView | { type: 'rejected'; line: string },
  },
}).createMachine({
  id: 'parse',
  context: { parsed: 0, rejected: 0 },
  on: {
    raw: [
      {
        guard: ({ event }) => parseLine(event.line) !== undefined,
        actions: [
          assign({ parsed: ({ context }) => context.parsed + 1 }),
          emit(({ event }) => ({ type: 'page-view' as const, ...parseLine(event.line)! })),
        ],
      },
      {
        actions: [
          assign({ rejected: ({ context }) => context.rejected + 1 }),
          emit(({ event }) => ({ type: 'rejected' as const, line: event.line })),
        ],
      },
    ],
  },
});

/** The parse operator: keyed by user, emits `page-view` (and `rejected`). */
export const parse = defineActor({
  name: 'parse',
  machine,
  version: 1,
  events: {
    raw: (p) => (typeof p.line === 'string' ? true : `line must be a string, got ${typeof p.line}`),
  },
});
