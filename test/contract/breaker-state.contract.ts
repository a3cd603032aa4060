/**
 * The `BreakerStateStore` contract: one suite of ava tests that every implementation must pass
 * (`test/unit/breaker-state.test.ts` runs it on the in-memory twin, `test/integration/
 * kv-breaker-state.test.ts` on NATS KV). It checks the numbered invariants of
 * `lib/resilience/breaker-state.ts`:
 *
 *  1. Every watcher of a name, on any node (the publisher's own included), is told its publishes
 *     in publish order; with `everyChange` each one, else (KV, history 1) a watcher that lags may
 *     skip superseded states but never reorders them and always ends on the latest.
 *  2. A watcher is told the current state, and nothing older, when it starts.
 *  3. States carry node and atMs as published; `revision` is a positive integer that grows with
 *     every publish, is the same for every watcher, and never goes back for a watcher, even
 *     under publishes racing from two nodes.
 *  4. After the unsubscribe or `close()`, nothing is called again (even deliveries already on
 *     their way); after `close()` `publish` rejects and `watch` throws `STOPPED`.
 *
 * and the rules of `breaker-state-codec.ts` both stores share: odd names map to distinct
 * states; names that cannot be mapped are `CONFIG`; malformed states are `VALIDATION` on publish
 * and reported-and-skipped on read. Delivery is never synchronous, and a watcher that throws
 * keeps its subscription.
 *
 * Every test uses breaker names with a random suffix; "no call" is checked after a barrier (a
 * watcher on the same node that did get a later publish) plus a short quiet period.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { WardenError } from '../../lib/core/errors.js';
import type { BreakerStateStore, SharedBreakerState } from '../../lib/resilience/breaker-state.js';

/**
 * What `make` returns: nodes sharing one storage, and what the implementation offers tests.
 *
 * @example
 * const bucket = new InMemoryBreakerBucket();
 * const subject: BreakerStateSubject = { node: async (o) => new InMemoryBreakerStateStore({ bucket, ...o }), everyChange: true, cleanup: async () => {} };
 */
export interface BreakerStateSubject {
  /** A new store: one more node on the storage shared by every store of this subject. */
  node: (options?: { onError?: (error: WardenError) => void }) => Promise<BreakerStateStore>;
  /** Stores `text` as the raw value of `name` (to plant a malformed state), if the implementation can. */
  writeRaw?: (name: string, text: string) => Promise<void>;
  /** Is a lagging watcher told every change (true), or may it skip superseded states (false)? */
  everyChange: boolean;
  /** Closes the nodes `node` made (closing one twice is harmless). */
  cleanup: () => Promise<void>;
}

type Published = Omit<SharedBreakerState, 'revision'>;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const QUIET_MS = 150;

/** Collects what one watcher is told. */
class Recorder {
  readonly seen: SharedBreakerState[] = [];
  readonly fn = (state: SharedBreakerState): void => {
    this.seen.push(state);
  };

  last(): SharedBreakerState | undefined {
    return this.seen.at(-1);
  }

  revisions(): number[] {
    return this.seen.map((s) => s.revision ?? Number.NaN);
  }

  /** Resolves once `pred(seen)` holds; rejects naming `what` after `timeoutMs`. */
  async until(pred: (seen: SharedBreakerState[]) => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.seen)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; seen ${JSON.stringify(this.seen)}`);
      await sleep(2);
    }
  }

  /** Resolves once the last state told has this `atMs` (a unique marker of one publish). */
  untilAt(atMs: number, timeoutMs?: number): Promise<void> {
    return this.until((seen) => seen.at(-1)?.atMs === atMs, `atMs ${atMs}`, timeoutMs);
  }
}

const strip = (s: SharedBreakerState): Published => ({ state: s.state, node: s.node, atMs: s.atMs });
const STATES = ['open', 'half-open', 'closed'] as const;
const nth = (i: number): SharedBreakerState['state'] => STATES[i % 3] ?? 'open';

function isSubsequence<T>(sub: T[], of: T[], eq: (a: T, b: T) => boolean): boolean {
  let j = 0;
  for (const x of of) if (j < sub.length && eq(sub[j] as T, x)) j++;
  return j === sub.length;
}
const sameState = (a: Published, b: Published): boolean => a.state === b.state && a.node === b.node && a.atMs === b.atMs;

function strictlyIncreasing(t: ExecutionContext, revisions: number[], who: string): void {
  t.true(revisions.every((r) => Number.isSafeInteger(r) && r > 0), `${who}: revisions are positive integers: ${revisions.join(',')}`);
  t.true(revisions.every((r, i) => i === 0 || r > (revisions[i - 1] ?? 0)), `${who}: revisions only grow: ${revisions.join(',')}`);
}

/**
 * Registers the contract's tests for one implementation, each titled `[label] ...`.
 *
 * @example
 * breakerStateContract('in-memory', async () => {
 *   const bucket = new InMemoryBreakerBucket();
 *   const stores: InMemoryBreakerStateStore[] = [];
 *   const node = async () => { const s = new InMemoryBreakerStateStore({ bucket }); stores.push(s); return s; };
 *   return { node, everyChange: true, cleanup: async () => { for (const s of stores) await s.close(); } };
 * });
 */
export function breakerStateContract(label: string, make: () => Promise<BreakerStateSubject>): void {
  async function fixture(t: ExecutionContext): Promise<BreakerStateSubject & { name: (suffix?: string) => string }> {
    const subject = await make();
    t.teardown(() => subject.cleanup());
    const id = randomBytes(5).toString('hex');
    return { ...subject, name: (suffix = '') => `cb-${id}${suffix}` };
  }
  const title = (s: string): string => `[${label}] ${s}`;
  const at = (() => {
    let n = 1_000;
    return () => ++n;
  })();

  // --- invariant 1 ---------------------------------------------------------------------------

  test(title('invariant 1: a watcher on another node is told the publishes of its name in publish order, with state, node and atMs as published'), async (t) => {
    const { node, name, everyChange } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const w = new Recorder();
    b.watch(name(), w.fn);
    const first: Published = { state: 'closed', node: 'node-a', atMs: at() };
    await a.publish(name(), first);
    await w.untilAt(first.atMs);
    const published: Published[] = [];
    for (let i = 0; i < 12; i++) {
      const s: Published = { state: nth(i), node: 'node-a', atMs: at() };
      published.push(s);
      await a.publish(name(), s);
    }
    await w.untilAt(published.at(-1)!.atMs);
    const told = w.seen.slice(1).map(strip);
    if (everyChange) t.deepEqual(told, published, 'each publish, once, in order');
    else t.true(isSubsequence(told, published, sameState), `publish order kept (some superseded states may be skipped): ${JSON.stringify(told)}`);
    t.deepEqual(strip(w.seen[0]!), first);
    strictlyIncreasing(t, w.revisions(), 'watcher');
  });

  test(title('invariant 1: the publishing node\'s own watcher is told its own publishes'), async (t) => {
    const { node, name } = await fixture(t);
    const a = await node();
    const w = new Recorder();
    a.watch(name(), w.fn);
    const s: Published = { state: 'open', node: 'node-a', atMs: at() };
    await a.publish(name(), s);
    await w.untilAt(s.atMs);
    t.like(w.last(), s);
  });

  test(title('invariant 1: two nodes see each other\'s publishes'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const wa = new Recorder();
    const wb = new Recorder();
    a.watch(name(), wa.fn);
    b.watch(name(), wb.fn);
    const fromA: Published = { state: 'open', node: 'node-a', atMs: at() };
    await a.publish(name(), fromA);
    await Promise.all([wa.untilAt(fromA.atMs), wb.untilAt(fromA.atMs)]);
    const fromB: Published = { state: 'half-open', node: 'node-b', atMs: at() };
    await b.publish(name(), fromB);
    await Promise.all([wa.untilAt(fromB.atMs), wb.untilAt(fromB.atMs)]);
    t.like(wa.last(), fromB);
    t.like(wb.last(), fromB);
    t.deepEqual(wa.revisions(), wb.revisions(), 'both nodes see the same revisions');
  });

  // --- invariant 2 ---------------------------------------------------------------------------

  test(title('invariant 2: a watcher started after publishes is told the current state first, once, and nothing older'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const states: Published[] = [0, 1, 2].map((i) => ({ state: nth(i), node: 'node-a', atMs: at() }));
    for (const s of states) await a.publish(name(), s);
    const w = new Recorder();
    b.watch(name(), w.fn);
    await w.untilAt(states[2]!.atMs);
    await sleep(QUIET_MS);
    t.is(w.seen.length, 1, JSON.stringify(w.seen));
    t.like(w.seen[0], states[2]!);
    t.true(Number.isSafeInteger(w.seen[0]!.revision) && w.seen[0]!.revision! > 0);
  });

  test(title('invariant 2: a watcher of a name never published is told nothing until the first publish'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const w = new Recorder();
    b.watch(name(), w.fn);
    await sleep(QUIET_MS);
    t.deepEqual(w.seen, []);
    const s: Published = { state: 'open', node: 'node-a', atMs: at() };
    await a.publish(name(), s);
    await w.untilAt(s.atMs);
    t.is(w.seen.length, 1);
  });

  // --- invariant 3 ---------------------------------------------------------------------------

  test(title('invariant 3: revision is a positive integer growing with every publish, the same for watchers on every node'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const [wa, wb] = [new Recorder(), new Recorder()];
    a.watch(name(), wa.fn);
    b.watch(name(), wb.fn);
    for (let i = 0; i < 5; i++) {
      const last = at();
      await a.publish(name(), { state: nth(i), node: 'node-a', atMs: last });
      await Promise.all([wa.untilAt(last), wb.untilAt(last)]);
    }
    strictlyIncreasing(t, wa.revisions(), 'node a');
    t.deepEqual(wb.seen, wa.seen, 'the same states with the same revisions on both nodes');
    t.is(wa.seen.length, 5, 'publishes awaited one by one, each delivered before the next: none skipped');
  });

  test(title('invariant 3: racing publishes from two nodes: every watcher (one started mid-race too) only goes forward, keeps each node\'s order and ends on the same state'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b, c] = [await node(), await node(), await node()];
    const watchers = { a: new Recorder(), b: new Recorder(), c: new Recorder(), late: new Recorder() };
    a.watch(name(), watchers.a.fn);
    b.watch(name(), watchers.b.fn);
    c.watch(name(), watchers.c.fn);
    const burst = async (store: BreakerStateStore, who: string): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        await store.publish(name(), { state: nth(i), node: who, atMs: i });
        if (who === 'node-b' && i === 12) c.watch(name(), watchers.late.fn);
      }
    };
    await Promise.all([burst(a, 'node-a'), burst(b, 'node-b')]);
    const sentinel: Published = { state: 'closed', node: 'node-a', atMs: -1 };
    await a.publish(name(), sentinel);
    for (const [who, w] of Object.entries(watchers)) {
      await w.untilAt(-1);
      strictlyIncreasing(t, w.revisions(), who);
      for (const n of ['node-a', 'node-b']) {
        const ats = w.seen.filter((s) => s.node === n && s.atMs >= 0).map((s) => s.atMs);
        t.true(ats.every((x, i) => i === 0 || x > (ats[i - 1] ?? -1)), `${who} sees ${n}'s publishes in its order: ${ats.join(',')}`);
      }
    }
    const finals = Object.values(watchers).map((w) => w.last());
    t.true(finals.every((f) => f?.revision === finals[0]?.revision), 'every watcher ends on the same revision');
    const fresh = new Recorder();
    b.watch(name(), fresh.fn);
    await fresh.untilAt(-1);
    t.is(fresh.last()?.revision, finals[0]?.revision, 'a new watcher starts from that state');
  });

  // --- invariant 4 ---------------------------------------------------------------------------

  test(title('invariant 4: unsubscribing before the first delivery means no call at all, even with a current state'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    await a.publish(name(), { state: 'open', node: 'node-a', atMs: at() });
    const gone = new Recorder();
    const off = b.watch(name(), gone.fn);
    off();
    off(); // idempotent
    const control = new Recorder();
    b.watch(name(), control.fn);
    await control.until((s) => s.length === 1, 'the current state');
    const next: Published = { state: 'closed', node: 'node-a', atMs: at() };
    await a.publish(name(), next);
    await control.untilAt(next.atMs);
    await sleep(QUIET_MS);
    t.deepEqual(gone.seen, []);
  });

  test(title('invariant 4: after unsubscribe a watcher is never called again, even for a publish already on its way'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const w = new Recorder();
    const off = b.watch(name(), w.fn);
    const control = new Recorder();
    b.watch(name(), control.fn);
    const first: Published = { state: 'open', node: 'node-a', atMs: at() };
    await a.publish(name(), first);
    await w.untilAt(first.atMs);
    const pending = a.publish(name(), { state: 'half-open', node: 'node-a', atMs: at() });
    off();
    await pending;
    const last: Published = { state: 'closed', node: 'node-a', atMs: at() };
    await a.publish(name(), last);
    await control.untilAt(last.atMs);
    await sleep(QUIET_MS);
    t.deepEqual(w.seen.map(strip), [first]);
  });

  test(title('invariant 4: after close() no watcher of the store is called, publish rejects and watch throws STOPPED; other nodes go on'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const [wa, wb] = [new Recorder(), new Recorder()];
    a.watch(name(), wa.fn);
    a.watch(name('-other'), wa.fn);
    b.watch(name(), wb.fn);
    const first: Published = { state: 'open', node: 'node-b', atMs: at() };
    await b.publish(name(), first);
    await wa.untilAt(first.atMs);
    const pending = b.publish(name(), { state: 'half-open', node: 'node-b', atMs: at() });
    await a.close();
    await a.close(); // idempotent
    await pending;
    const last: Published = { state: 'closed', node: 'node-b', atMs: at() };
    await b.publish(name(), last);
    await b.publish(name('-other'), last);
    await wb.untilAt(last.atMs);
    await sleep(QUIET_MS);
    t.deepEqual(wa.seen.map(strip), [first]);
    await t.throwsAsync(a.publish(name(), last), { instanceOf: WardenError, code: 'STOPPED' });
    t.throws(() => a.watch(name(), wa.fn), { instanceOf: WardenError, code: 'STOPPED' });
  });

  // --- names and values ----------------------------------------------------------------------

  test(title('names with dots, colons, slashes, spaces, "=", "_" and non-ASCII work and never see each other\'s states'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const names = ['', '.a', '=2Ea', ':a', ' a', '/a', '_a', '.', '..', 'é', '\u{1F600}', '=', '==3D', '-a.b', 'a-b'].map((s) => name(s));
    names.push(`_${name()}`, `.${name()}`, `${name()}`.toUpperCase());
    t.is(new Set(names).size, names.length);
    const recorders = names.map((n) => {
      const r = new Recorder();
      b.watch(n, r.fn);
      return r;
    });
    await Promise.all(names.map((n, i) => a.publish(n, { state: 'open', node: 'node-a', atMs: i })));
    await Promise.all(recorders.map((r, i) => r.untilAt(i)));
    await sleep(QUIET_MS);
    recorders.forEach((r, i) => t.deepEqual(r.seen.map((s) => s.atMs), [i], `${JSON.stringify(names[i])} sees only its own state`));
  });

  test(title('names that cannot be mapped are refused with CONFIG: empty, a lone surrogate, over 256 characters (publish rejects, watch throws)'), async (t) => {
    const { node, name } = await fixture(t);
    const a = await node();
    const s: Published = { state: 'open', node: 'node-a', atMs: at() };
    for (const bad of ['', `${name()}\uD800`, `\uDC00${name()}`, 'x'.repeat(257)]) {
      let p: Promise<void> | undefined;
      t.notThrows(() => {
        p = a.publish(bad, s);
      }, 'publish fails by rejecting');
      await t.throwsAsync(p!, { instanceOf: WardenError, code: 'CONFIG' });
      t.throws(() => a.watch(bad, () => undefined), { instanceOf: WardenError, code: 'CONFIG' });
    }
    const longest = `${name()}-`.padEnd(256, 'é');
    const w = new Recorder();
    a.watch(longest, w.fn);
    await a.publish(longest, s);
    await w.untilAt(s.atMs);
    t.pass('a 256-character name works');
  });

  test(title('a state that is not a SharedBreakerState is refused with VALIDATION and changes nothing'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const good: Published = { state: 'open', node: 'node-a', atMs: at() };
    await a.publish(name(), good);
    const bad = [
      { state: 'sideways', node: 'node-a', atMs: 1 },
      { state: 'open', node: '', atMs: 1 },
      { state: 'open', node: 'node-a', atMs: Number.NaN },
      { state: 'open', node: 'node-a', atMs: Number.POSITIVE_INFINITY },
      { state: 'open', atMs: 1 },
    ] as unknown as Published[];
    for (const s of bad) await t.throwsAsync(a.publish(name(), s), { instanceOf: WardenError, code: 'VALIDATION' }, JSON.stringify(s));
    const w = new Recorder();
    b.watch(name(), w.fn);
    await w.untilAt(good.atMs);
    await sleep(QUIET_MS);
    t.deepEqual(w.seen.map(strip), [good]);
  });

  test(title('delivery is asynchronous: a watcher is never called from inside watch() or publish()'), async (t) => {
    const { node, name } = await fixture(t);
    const a = await node();
    await a.publish(name(), { state: 'open', node: 'node-a', atMs: at() });
    let inside = false;
    let calledInside = 0;
    const w = new Recorder();
    const fn = (s: SharedBreakerState): void => {
      if (inside) calledInside++;
      w.fn(s);
    };
    inside = true;
    a.watch(name(), fn);
    inside = false;
    await w.until((s) => s.length === 1, 'the current state');
    const next: Published = { state: 'closed', node: 'node-a', atMs: at() };
    inside = true;
    const p = a.publish(name(), next);
    inside = false;
    await p;
    await w.untilAt(next.atMs);
    t.is(calledInside, 0);
  });

  test(title('a watcher that throws keeps its subscription, and other watchers are unaffected'), async (t) => {
    const { node, name } = await fixture(t);
    const [a, b] = [await node(), await node()];
    const thrower = new Recorder();
    const other = new Recorder();
    b.watch(name(), (s) => {
      thrower.fn(s);
      throw new Error('watcher bug');
    });
    b.watch(name(), other.fn);
    for (let i = 0; i < 3; i++) {
      const s: Published = { state: nth(i), node: 'node-a', atMs: at() };
      await a.publish(name(), s);
      await Promise.all([thrower.untilAt(s.atMs), other.untilAt(s.atMs)]);
    }
    t.is(thrower.seen.length, 3);
    t.deepEqual(other.seen, thrower.seen);
  });

  test(title('a malformed stored value is reported through onError (VALIDATION naming the breaker) and skipped; watchers go on'), async (t) => {
    const { node, name, writeRaw } = await fixture(t);
    if (!writeRaw) {
      t.pass('this implementation cannot store a malformed value');
      return;
    }
    const errors: WardenError[] = [];
    const [a, b] = [await node(), await node({ onError: (e) => errors.push(e) })];
    const w = new Recorder();
    b.watch(name(), w.fn);
    const good: Published = { state: 'open', node: 'node-a', atMs: at() };
    await a.publish(name(), good);
    await w.untilAt(good.atMs);
    const reported = async (n: number): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (errors.length < n && Date.now() < deadline) await sleep(2);
    };
    // One at a time, each reported before the next, so a store that skips superseded values skips none.
    await writeRaw(name(), 'not json {');
    await reported(1);
    await writeRaw(name(), JSON.stringify({ v: 1, state: 'sideways', node: 'node-x', atMs: 1 }));
    await reported(2);
    await writeRaw(name(), JSON.stringify({ v: 99, state: 'open', node: 'node-x', atMs: 1 }));
    await reported(3);
    const late = new Recorder();
    b.watch(name(), late.fn); // starts on the malformed current value
    await reported(4);
    const next: Published = { state: 'closed', node: 'node-a', atMs: at() };
    await a.publish(name(), next);
    await Promise.all([w.untilAt(next.atMs), late.untilAt(next.atMs)]);
    t.deepEqual(w.seen.map(strip), [good, next]);
    t.deepEqual(late.seen.map(strip), [next]);
    t.is(errors.length, 4, errors.map((e) => e.message).join('; '));
    t.true(errors.every((e) => e.code === 'VALIDATION' && e.details.breaker === name()));
    t.deepEqual(errors.slice(0, 3).map((e) => e.details.reason), ['undecodable', 'schema', 'schema']);
  });
}
