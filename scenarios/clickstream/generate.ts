/**
 * A deterministic clickstream: `users` users each clicking through pages, with per-user click
 * numbers 1, 2, 3... and event time that now and then jumps past the session gap.
 */
import { seededRandom } from '../../lib/core/random.js';

/** One raw click, as it enters the pipeline. */
export interface RawClick {
  user: string;
  n: number;
  line: string;
}

/** mulberry32: a tiny seeded PRNG, so every run of the demo sends the same clicks. */
export const prng: (seed: number) => () => number = seededRandom;

/** `count` clicks over `users` users and `pages` pages, from `seed`. */
export function generateClicks(count: number, options: { users?: number; pages?: number; seed?: number; startTs?: number } = {}): RawClick[] {
  const users = options.users ?? 200;
  const pages = options.pages ?? 25;
  const rand = prng(options.seed ?? 42);
  const nextN = new Map<string, number>();
  const clock = new Map<string, number>();
  const start = options.startTs ?? 1_700_000_000_000;
  const out: RawClick[] = [];
  for (let i = 0; i < count; i++) {
    const user = `u${Math.floor(rand() * users)}`;
    const n = (nextN.get(user) ?? 0) + 1;
    nextN.set(user, n);
    // Mostly seconds apart; one click in twelve comes after a gap that closes the session.
    const step = rand() < 1 / 12 ? 45 * 60_000 : Math.floor(rand() * 90_000);
    const ts = (clock.get(user) ?? start) + step;
    clock.set(user, ts);
    const page = `/p${Math.floor(rand() * pages)}`;
    out.push({ user, n, line: `user=${user} page=${page} n=${n} ts=${ts}` });
  }
  return out;
}
