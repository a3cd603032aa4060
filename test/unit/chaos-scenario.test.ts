/**
 * Chaos scenarios without servers: what defineScenario accepts and refuses, the fault schedule a
 * seed gives (the same seed, the same schedule; a step the run could not carry out refused before
 * anything starts), how recovery is timed from when inputs were sent and arrived, and the
 * invariant table's verdicts.
 */
import test from 'ava';
import { defineScenario, rngOf, runScenario, scheduleOf, type ScenarioOptions } from 'warden/chaos';
import { ConfigError } from '../../lib/core/errors.js';
import { recoveries, verdicts, type InputTiming } from '../../chaos/invariants.js';
import { SemanticsChecker } from '../../lib/testing/semantics-checker.js';
import killWorker from '../../scenarios/chaos/kill-worker.js';
import everything from '../../scenarios/chaos/everything.js';
import { SHIPPED, scenarioModule } from '../../lib/cli/commands/chaos.js';

const base: ScenarioOptions = { name: 'mine', faults: () => [] };

test('defineScenario fills the defaults a scenario leaves out', (t) => {
  const s = defineScenario(base);
  t.is(s.nodes, 3);
  t.is(s.natsServers, 1);
  t.is(s.pipeline, 'audit');
  t.is(s.durationMs, 30_000);
  t.is(s.leaseTtlMs, 2_000);
  t.is(s.livenessMs, 60_000);
  t.is(s.lateAfterMs, 1_000);
  t.deepEqual(s.workload, { ratePerSec: 100, keys: 24, count: undefined });
  t.is(s.recoveryBoundMs, undefined);
});

const goodModule = { module: './p.js', observe: { stage: 'sink', seqs: () => [] as number[] } };

test('defineScenario refuses a bad field with a ConfigError naming it', (t) => {
  const cases: Array<[Partial<ScenarioOptions> & Record<string, unknown>, string]> = [
    [{ name: 'Has Spaces' }, 'scenario.name'],
    [{ faults: 'not a function' as unknown as ScenarioOptions['faults'] }, 'scenario.faults'],
    [{ nodes: 0 }, 'scenario.nodes'],
    [{ nodes: 2.5 }, 'scenario.nodes'],
    [{ natsServers: 2 as 1 }, 'scenario.natsServers'],
    [{ durationMs: -1 }, 'scenario.durationMs'],
    [{ leaseTtlMs: Number.NaN }, 'scenario.leaseTtlMs'],
    [{ workload: { ratePerSec: 0 } }, 'scenario.workload.ratePerSec'],
    [{ workload: { count: -5 } }, 'scenario.workload.count'],
    [{ lateAfterMs: 0 }, 'scenario.lateAfterMs'],
    [{ recoveryBoundMs: -1 }, 'scenario.recoveryBoundMs'],
    [{ pipeline: { module: './p.js' } as unknown as 'audit' }, 'scenario.pipeline.observe'],
    [{ pipeline: null as unknown as 'audit' }, 'scenario.pipeline'],
    [{ pipeline: { ...goodModule, module: 5 } as never }, 'scenario.pipeline.module'],
    [{ pipeline: { ...goodModule, observe: { seqs: goodModule.observe.seqs } } as never }, 'scenario.pipeline.observe.stage'],
    [{ pipeline: { ...goodModule, observe: { stage: goodModule.observe.stage } } as never }, 'scenario.pipeline.observe.seqs'],
    [{ pipeline: { ...goodModule, observe: { ...goodModule.observe, arrivals: 1 } } as never }, 'scenario.pipeline.observe.arrivals'],
    [{ workload: 5 as never }, 'scenario.workload'],
    [{ workload: null as never }, 'scenario.workload'],
    [{ nodes: null as never }, 'scenario.nodes'],
    [{ durationMs: null as never }, 'scenario.durationMs'],
    [{ pipeline: 'nope' as 'audit' }, 'scenario.pipeline'],
    [{ workload: { keys: 0.4 } }, 'scenario.workload.keys'],
    [{ workload: { count: 2.5 } }, 'scenario.workload.count'],
    [{ description: 5 as unknown as string }, 'scenario.description'],
    ...(['api', 'exactlyOnce', 'ordered'] as const).map((field): [Partial<ScenarioOptions>, string] => [{ pipeline: { ...goodModule, [field]: 'yes' } }, `scenario.pipeline.${field}`]),
    [{ pipeline: { ...goodModule, input: 5 } as never }, 'scenario.pipeline.input'],
    [{ pipeline: { ...goodModule, observe: { ...goodModule.observe, seqOf: 'seq' } } as never }, 'scenario.pipeline.observe.seqOf'],
    [{ pipeline: { ...goodModule, module: '' } }, 'scenario.pipeline.module'],
  ];
  t.notThrows(() => defineScenario({ ...base, pipeline: goodModule }), 'the module pipeline itself is fine');
  for (const [patch, field] of cases) {
    const err = t.throws(() => defineScenario({ ...base, ...patch }), { instanceOf: ConfigError }, JSON.stringify(patch));
    t.true(err.message.includes(field), `${err.message} names ${field}`);
  }
});

test('a seed gives the same choices every time, and another seed other ones', (t) => {
  const draw = (seed: number): number[] => {
    const rng = rngOf(seed);
    return Array.from({ length: 20 }, () => rng.next());
  };
  t.deepEqual(draw(7), draw(7));
  t.notDeepEqual(draw(7), draw(8));
  const rng = rngOf(3);
  for (let i = 0; i < 1000; i++) {
    const n = rng.int(5);
    t.true(Number.isInteger(n) && n >= 0 && n < 5);
    const x = rng.between(2, 4);
    t.true(x >= 2 && x < 4);
  }
});

test('the same scenario and seed give the same fault schedule, in time order', (t) => {
  for (const scenario of [killWorker, everything]) {
    const a = scheduleOf(scenario, 42);
    t.deepEqual(a, scheduleOf(scenario, 42));
    t.notDeepEqual(a, scheduleOf(scenario, 43));
    t.true(a.length > 0);
    for (let i = 1; i < a.length; i++) t.true(a[i - 1]!.atMs <= a[i]!.atMs);
    for (const step of a) t.true(step.atMs >= 0 && step.atMs <= scenario.durationMs);
  }
  // A shorter run draws its faults within the shorter duration.
  for (const step of scheduleOf(killWorker, 1, 10_000)) t.true(step.atMs < 10_000);
});

test('a schedule step the run could not carry out is refused before anything starts, naming the step', (t) => {
  const refused = (faults: ScenarioOptions['faults'], extra: Partial<ScenarioOptions> = {}): string =>
    t.throws(() => scheduleOf(defineScenario({ ...base, ...extra, faults }), 1), { instanceOf: ConfigError }).message;
  t.regex(refused(() => [{ atMs: 10, fault: { kind: 'kill-node', node: 3 } }]), /faults\(\)\[0\]\.fault\.node.*0\.\.2/);
  t.regex(refused(() => [{ atMs: -1, fault: { kind: 'kill-node', node: 0 } }]), /faults\(\)\[0\]\.atMs/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'melt-cpu' } as never }]), /fault\.kind.*kill-node/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'kill-nats-leader' } }]), /natsServers: 3/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'kill-nats-server', server: 1 } }]), /fault\.server/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'api', mode: 'down', forMs: 100 } }]), /payments/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'api', mode: 'angry' as 'down', forMs: 100 } }], { pipeline: 'payments' }), /fault\.mode/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'pause-node', node: 0, forMs: Number.NaN } }]), /fault\.forMs/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'network', target: 'dns' as 'nats', forMs: 10 } }]), /fault\.target/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'network', target: 'nats', forMs: 10, reset: 'yes' as never } }]), /fault\.reset must be true or false/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'network', target: 'nats', forMs: 10, blackhole: 'false' as never } }]), /fault\.blackhole must be true or false/);
  for (const rate of [5, -1, 'half', Number.NaN]) {
    t.regex(refused(() => [{ atMs: 5, fault: { kind: 'api', mode: 'flaky', forMs: 100, rate: rate as number } }], { pipeline: 'payments' }), /fault\.rate must be a number in 0\.\.1/, String(rate));
  }
  t.regex(refused(() => 'soon' as never), /must return an array/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'kill-node' } as never }]), /faults\(\)\[0\]\.fault\.node is required/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'stop-node' } as never }]), /fault\.node is required/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'pause-node', node: 0 } as never }]), /fault\.forMs is required/);
  t.regex(refused(() => [{ atMs: 5, fault: { kind: 'network', target: 'nats' } as never }]), /fault\.forMs is required/);
  // The same steps are fine where the run can carry them out.
  t.is(scheduleOf(defineScenario({ ...base, natsServers: 3, faults: () => [{ atMs: 5, fault: { kind: 'kill-nats-leader' } }] }), 1).length, 1);
  t.is(scheduleOf(defineScenario({ ...base, pipeline: 'payments', faults: () => [{ atMs: 5, fault: { kind: 'api', mode: 'down', forMs: 100 } }] }), 1).length, 1);
});

test('every shipped scenario is a valid scenario whose schedule for seeds 1 to 3 the run can carry out', async (t) => {
  for (const name of SHIPPED) {
    const mod = (await import(scenarioModule(name))) as { default: ReturnType<typeof defineScenario> };
    t.is(mod.default.kind, 'warden.scenario', name);
    t.is(mod.default.name, name);
    for (const seed of [1, 2, 3]) t.true(scheduleOf(mod.default, seed).length > 0, `${name} seed ${seed}`);
  }
  t.throws(() => scenarioModule('no-such-scenario'), { message: /no scenario "no-such-scenario"/ });
});

const fault = (atMs: number, endMs = atMs) => ({ kind: 'kill-node', target: 'node 0', atMs, endMs });
/** An input every 10 ms from t0, each arriving `latency(sentAt)` later (undefined: never). */
function inputs(t0: number, untilMs: number, latency: (at: number) => number | undefined): InputTiming[] {
  const out: InputTiming[] = [];
  for (let at = 0; at < untilMs; at += 10) {
    const l = latency(at);
    out.push({ sentAt: t0 + at, deliveredAt: l === undefined ? undefined : t0 + at + l });
  }
  return out;
}

test('recovery: a fault that delayed nothing recovered after 0 ms', (t) => {
  const [r] = recoveries([fault(1_000)], inputs(5_000, 5_000, () => 20), { lateAfterMs: 1_000, graceMs: 2_000, t0: 5_000 });
  t.is(r!.recoveryMs, 0);
});

test('recovery: lasts from the fault until the last input it delayed arrived', (t) => {
  // Inputs sent between 2.0 s and 4.0 s wait until 4.5 s (a partition without an owner).
  const timings = inputs(0, 8_000, (at) => (at >= 2_000 && at < 4_000 ? 4_500 - at : 15));
  const [r] = recoveries([fault(2_000)], timings, { lateAfterMs: 1_000, graceMs: 2_000, t0: 0 });
  t.is(r!.recoveryMs, 2_500);
});

test('recovery: inputs sent just after an instant fault, which it delayed, count toward it', (t) => {
  // A node killed at 2.0 s (gone 20 ms later); its partitions take inputs sent from 2.05 s only at 4.0 s.
  const timings = inputs(0, 8_000, (at) => (at >= 2_050 && at < 4_000 ? 4_000 - at : 15));
  const [r] = recoveries([fault(2_000, 2_020)], timings, { lateAfterMs: 1_000, graceMs: 2_000, t0: 0 });
  t.is(r!.recoveryMs, 2_000);
});

test('recovery: an input that never arrived means the fault never recovered', (t) => {
  const timings = inputs(0, 5_000, (at) => (at === 2_850 ? undefined : 15));
  const [r] = recoveries([fault(2_800, 2_900)], timings, { lateAfterMs: 1_000, graceMs: 2_000, t0: 0 });
  t.is(r!.recoveryMs, undefined);
});

test('recovery: delays that start more than the grace after the fault was lifted belong to no fault', (t) => {
  const timings = inputs(0, 10_000, (at) => (at >= 6_000 && at < 7_000 ? 3_000 : 15));
  const [r] = recoveries([fault(1_000, 2_000)], timings, { lateAfterMs: 1_000, graceMs: 2_000, t0: 0 });
  t.is(r!.recoveryMs, 0);
});

test('recovery: overlapping faults share the stretch they delayed', (t) => {
  const timings = inputs(0, 10_000, (at) => (at >= 1_000 && at < 5_000 ? 6_000 - at : 15));
  const rs = recoveries([fault(1_000), fault(2_000, 3_000)], timings, { lateAfterMs: 1_000, graceMs: 2_000, t0: 0 });
  t.deepEqual(rs.map((f) => f.recoveryMs), [5_000, 4_000]);
});

function verdictsOf(o: { lost?: number; dup?: number; stale?: number; recoveryMs?: number | undefined; bound?: number; delivered?: number | undefined }) {
  const checker = new SemanticsChecker();
  for (let seq = 1; seq <= 3; seq++) checker.sent('k', seq);
  const seen = [1, 2, 3].slice(0, 3 - (o.lost ?? 0));
  for (const seq of seen) checker.observe('k', seq, 'stage');
  for (let i = 0; i < (o.dup ?? 0); i++) checker.observe('k', 1, 'stage');
  return verdicts({
    report: checker.report(),
    exactlyOnce: true,
    ordered: true,
    stale: { stale: o.stale ?? 0, examples: o.stale ? ['s seq 9: p epoch 1 after epoch 2'] : [] },
    liveness: { deliveredAllAfterMs: 'delivered' in o ? o.delivered : 100, boundMs: 1_000 },
    faults: [{ ...fault(10), recoveryMs: 'recoveryMs' in o ? o.recoveryMs : 50 }],
    recoveryBoundMs: o.bound,
  });
}
/** What `verdicts` needs besides the faults: a run with nothing wrong. */
function baseVerdicts(): Omit<Parameters<typeof verdicts>[0], 'faults'> {
  const checker = new SemanticsChecker();
  checker.sent('k', 1);
  checker.observe('k', 1, 'stage');
  return { report: checker.report(), exactlyOnce: true, ordered: true, stale: { stale: 0, examples: [] }, liveness: { deliveredAllAfterMs: 100, boundMs: 1_000 } };
}
const failing = (rows: ReturnType<typeof verdictsOf>): string[] => rows.filter((r) => !r.passed).map((r) => r.name);

test('the invariant table: each violation fails its own invariant, with examples', (t) => {
  t.deepEqual(failing(verdictsOf({})), []);
  t.deepEqual(failing(verdictsOf({ lost: 1 })), ['no lost inputs']);
  t.deepEqual(failing(verdictsOf({ dup: 1 })), ['no duplicated effects', 'in order per key']);
  t.deepEqual(failing(verdictsOf({ stale: 1 })), ['no stale writes accepted']);
  t.deepEqual(failing(verdictsOf({ delivered: undefined })), ['liveness']);
  t.deepEqual(failing(verdictsOf({ delivered: 5_000 })), ['liveness']);
  t.deepEqual(failing(verdictsOf({ recoveryMs: undefined })), ['recovery time']);
  t.deepEqual(failing(verdictsOf({ recoveryMs: 900, bound: 500 })), ['recovery time']);
  t.deepEqual(failing(verdictsOf({ recoveryMs: 400, bound: 500 })), []);
  const many = verdicts({ ...baseVerdicts(), faults: Array.from({ length: 12 }, (_, i) => ({ ...fault(10 + i), recoveryMs: undefined })) }).find((r) => r.name === 'recovery time')!;
  t.false(many.passed);
  t.is(many.examples?.length, 10, 'up to 10 examples, as for the other invariants');
  const lost = verdictsOf({ lost: 1 }).find((r) => r.name === 'no lost inputs')!;
  t.is(lost.value, '1 lost of 3');
  t.true((lost.examples ?? []).length > 0);
});

test('scheduleOf and runScenario refuse a seed, duration, sample period, scenario or options of the wrong kind with a ConfigError naming it, before anything starts', async (t) => {
  const scenario = defineScenario({ ...base, faults: () => [] });
  for (const seed of [-1, 1.5, Number.NaN, undefined, 'abc']) t.is(t.throws(() => scheduleOf(scenario, seed as number), { instanceOf: ConfigError })?.field, 'seed', String(seed));
  for (const durationMs of [0, -5, Number.POSITIVE_INFINITY, '2s']) t.is(t.throws(() => scheduleOf(scenario, 1, durationMs as number), { instanceOf: ConfigError })?.field, 'durationMs', String(durationMs));
  t.is(t.throws(() => scheduleOf({ name: 'x', faults: () => [] } as never, 1), { instanceOf: ConfigError })?.field, 'scenario');
  t.is((await t.throwsAsync(runScenario(scenario, undefined as never), { instanceOf: ConfigError })).field, 'options');
  t.is((await t.throwsAsync(runScenario(scenario, { seed: 1, sampleMs: 0 }), { instanceOf: ConfigError })).field, 'sampleMs');
  t.is((await t.throwsAsync(runScenario(scenario, { seed: 1, durationMs: -5 }), { instanceOf: ConfigError })).field, 'durationMs');
  t.is((await t.throwsAsync(runScenario(scenario, { seed: 'abc' as never }), { instanceOf: ConfigError })).field, 'seed');
});
