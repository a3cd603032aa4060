/**
 * `checkDeterminism`: does an operator behave as a pure function of its log? warden restores an
 * actor by replaying its inputs onto its last checkpoint, and dedupes the outputs a replay
 * regenerates by their IDs; both are right only if the machine, given the same inputs at the
 * same log points, reaches the same state, emits the same outputs and arms the same timers.
 * An action that reads `Date.now()`, `Math.random()` or any other outside state breaks that.
 *
 * The check runs the inputs twice:
 *  - run A, straight through, one host per key;
 *  - run B, with every host persisted and restored after every `restoreEvery` steps (a
 *    checkpoint and a crash), while `Date.now` and `new Date()` answer a day later and `Math.random` another
 *    sequence, so an action that reads them gives other values.
 * Due timers fire between inputs as the worker would (the firing dated at its deadline). The
 * first step where the runs differ in state, outputs or timers is reported.
 *
 * Invariants:
 *  1. A deterministic machine is reported `ok` (no false alarm): both runs apply the same
 *     inputs and firings at the same log points, and restore is exact (actor-host invariant 4).
 *  2. `Date`, `Date.now` and `Math.random` are restored after run B, whatever happens in it.
 */
import { ActorHost, type EmittedEvent, type LogPoint } from '../actor/actor-host.js';
import type { ActorDefinition } from '../actor/define-actor.js';
import { SimulatedClock } from '../core/clock.js';
import { inputEvent, type Json } from '../core/envelope.js';

/** One input of the check: an event for a key, at a log time. */
export interface DeterminismInput {
  key: string;
  type: string;
  payload?: Record<string, unknown>;
  /** Log time of the input, ms. @default the previous input's time + 1000 (the first: 0) */
  timeMs?: number;
}

/** Where the two runs parted. */
export interface Divergence {
  /** 0-based index of the step (input or timer firing). */
  step: number;
  key: string;
  /** What was applied: the input's type, or `timer <id>`. */
  applied: string;
  what: 'state' | 'outputs' | 'timers' | 'crash';
  straight: string;
  restored: string;
}

export interface DeterminismReport {
  ok: boolean;
  steps: number;
  divergence?: Divergence;
}

interface Step {
  key: string;
  applied: string;
  state: string;
  outputs: string;
  timers: string;
}

type Applied = { kind: 'input'; input: DeterminismInput & { timeMs: number } } | { kind: 'timer'; key: string; id: string; dueMs: number };

/**
 * @example
 * const report = checkDeterminism(counter, [
 *   { key: 'a', type: 'add', payload: { amount: 1 } },
 *   { key: 'a', type: 'add', payload: { amount: 2 }, timeMs: 5_000 },
 * ]);
 * assert(report.ok, JSON.stringify(report.divergence));
 */
export function checkDeterminism(actor: ActorDefinition, inputs: readonly DeterminismInput[], options: { restoreEvery?: number } = {}): DeterminismReport {
  const dated: Array<DeterminismInput & { timeMs: number }> = [];
  let t = 0;
  for (const [i, input] of inputs.entries()) {
    t = input.timeMs ?? (i === 0 ? 0 : t + 1000);
    dated.push({ ...input, timeMs: t });
  }
  const straight = run(actor, dated, 0);
  // This check exists to catch wall-clock reads; it swaps the globals it watches for, and only here.
  // eslint-disable-next-line no-restricted-properties
  const realNow = Date.now;
  const realRandom = Math.random;
  const RealDate = globalThis.Date;
  let restored: Step[];
  try {
    // eslint-disable-next-line no-restricted-properties
    Date.now = () => realNow() + 86_400_000;
    // `new Date()` reads the clock too: a Date whose no-argument form is a day later.
    globalThis.Date = class ShiftedDate extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length === 0) super(realNow() + 86_400_000);
        else super(...(args as ConstructorParameters<DateConstructor>));
      }
    } as DateConstructor;
    let x = 0x2545f491;
    Math.random = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 4_294_967_296;
    };
    restored = run(actor, dated, Math.max(1, options.restoreEvery ?? 1));
  } finally {
    globalThis.Date = RealDate; // invariant 2
    // eslint-disable-next-line no-restricted-properties
    Date.now = realNow;
    Math.random = realRandom;
  }
  const steps = Math.max(straight.length, restored.length);
  for (let i = 0; i < steps; i++) {
    const a = straight[i];
    const b = restored[i];
    if (!a || !b) {
      return { ok: false, steps, divergence: { step: i, key: (a ?? b)!.key, applied: (a ?? b)!.applied, what: 'timers', straight: a ? a.applied : 'nothing', restored: b ? b.applied : 'nothing' } };
    }
    for (const what of ['state', 'outputs', 'timers'] as const) {
      if (a[what] !== b[what]) {
        const crash = a.state.startsWith('crash') || b.state.startsWith('crash');
        return { ok: false, steps, divergence: { step: i, key: a.key, applied: a.applied, what: crash ? 'crash' : what, straight: a[what], restored: b[what] } };
      }
    }
  }
  return { ok: true, steps };
}

/** Applies `inputs` (and the timers they arm, when due); restores every host after every `restoreEvery` steps (0 = never). */
function run(actor: ActorDefinition, inputs: ReadonlyArray<DeterminismInput & { timeMs: number }>, restoreEvery: number): Step[] {
  const clock = new SimulatedClock(0);
  const hosts = new Map<string, ActorHost>();
  const steps: Step[] = [];
  let seq = 0;
  const apply = (a: Applied): void => {
    const key = a.kind === 'input' ? a.input.key : a.key;
    const at: LogPoint = { seq: ++seq, timeMs: a.kind === 'input' ? a.input.timeMs : a.dueMs };
    let host = hosts.get(key);
    if (!host || host.status === 'done') {
      if (a.kind === 'timer') return;
      host = new ActorHost(actor, key, { clock, at });
      hosts.set(key, host);
    }
    let outputs: EmittedEvent[] = [];
    let state: string;
    try {
      outputs = a.kind === 'input' ? host.handle(inputEvent(a.input), at) : host.fireTimer(a.id, at);
      state = JSON.stringify(host.status === 'active' ? host.persisted() : host.status);
    } catch (err) {
      state = `crash: ${err instanceof Error ? err.message : String(err)}`;
      hosts.delete(key);
    }
    steps.push({ key, applied: a.kind === 'input' ? a.input.type : `timer ${a.id}`, state, outputs: JSON.stringify(outputs), timers: JSON.stringify(hosts.get(key)?.timers() ?? []) });
    if (restoreEvery > 0 && steps.length % restoreEvery === 0) {
      for (const [k, h] of hosts) {
        if (h.status !== 'active') continue;
        const saved: Json = h.persisted();
        h.stop();
        hosts.set(k, new ActorHost(actor, k, { clock, snapshot: saved }));
      }
    }
  };
  const fireDue = (until: number): void => {
    // A machine that re-arms a timer on every firing would never be done firing at `Infinity`.
    for (let fired = 0; fired < 10_000; fired++) {
      let next: { key: string; id: string; dueMs: number } | undefined;
      for (const [key, h] of hosts) {
        for (const tm of h.timers()) if (tm.dueMs <= until && (!next || tm.dueMs < next.dueMs)) next = { key, ...tm };
      }
      if (!next) return;
      apply({ kind: 'timer', ...next });
    }
  };
  for (const input of inputs) {
    fireDue(input.timeMs);
    apply({ kind: 'input', input });
  }
  fireDue(Infinity);
  for (const h of hosts.values()) h.stop();
  return steps;
}
