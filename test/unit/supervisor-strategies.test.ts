/**
 * Restart strategies, restart types, intensity and escalation, nested trees: the applicable
 * cases of OTP's supervisor_SUITE (named in the titles), all on the simulated clock.
 * Titles cite the invariants of lib/supervision/supervisor.ts ("supervisor invariant N").
 */
import test from 'ava';
import { WardenError } from '../../lib/core/errors.js';
import type { SupervisorChildSpec, SupervisorOptions } from '../../lib/supervision/types.js';
import { Lab } from '../helpers/supervision-lab.js';

const HOUR = 3_600_000;

async function started(lab: Lab, options: SupervisorOptions) {
  const sup = lab.supervisor(options);
  await sup.start();
  return sup;
}

function nested(id: string, supervisor: SupervisorOptions): SupervisorChildSpec {
  return { kind: 'supervisor', id, supervisor };
}

// ---- restart types (OTP normal_termination / abnormal_termination / shutdown_termination) ----

for (const [restart, normal, abnormal] of [
  ['permanent', true, true],
  ['transient', false, true],
  ['temporary', false, false],
] as const) {
  test(`supervisor invariant 3: ${restart} child after a normal exit is ${normal ? '' : 'not '}restarted (OTP ${restart}_normal)`, async (t) => {
    const lab = new Lab();
    const sup = await started(lab, { intensity: 2, periodMs: HOUR, children: [lab.worker('child1', { restart })] });
    const first = lab.w('child1');
    first.exit();
    await lab.settle();
    t.is(lab.w('child1') !== first, normal);
    const expected = normal
      ? { which: [{ id: 'child1', kind: 'worker', status: 'running', restart }], counts: { specs: 1, active: 1, supervisors: 0, workers: 1 } }
      : restart === 'transient'
        ? { which: [{ id: 'child1', kind: 'worker', status: 'terminated', restart }], counts: { specs: 1, active: 0, supervisors: 0, workers: 1 } }
        : { which: [], counts: { specs: 0, active: 0, supervisors: 0, workers: 0 } };
    t.deepEqual(sup.whichChildren(), expected.which);
    t.deepEqual(sup.countChildren(), expected.counts);
    t.is(lab.eventsOf('child-exited').length, 1);
    await sup.stop();
  });

  test(`supervisor invariant 3: ${restart} child after a crash is ${abnormal ? '' : 'not '}restarted (OTP ${restart}_abnormal)`, async (t) => {
    const lab = new Lab();
    const sup = await started(lab, { intensity: 2, periodMs: HOUR, children: [lab.worker('child1', { restart })] });
    const first = lab.w('child1');
    first.crash();
    await lab.settle();
    t.is(lab.w('child1') !== first, abnormal);
    t.deepEqual(sup.countChildren(), abnormal ? { specs: 1, active: 1, supervisors: 0, workers: 1 } : { specs: 0, active: 0, supervisors: 0, workers: 0 });
    t.is(lab.eventsOf('child-crashed').length, 1);
    await sup.stop();
  });

  test(`supervisor invariant 2: ${restart} child terminated by its supervisor is not restarted (OTP ${restart}_shutdown)`, async (t) => {
    const lab = new Lab();
    const sup = await started(lab, { intensity: 2, periodMs: HOUR, children: [lab.worker('child1', { restart })] });
    await sup.terminateChild('child1');
    await lab.settle(HOUR);
    t.deepEqual(lab.log, ['start:child1', 'stop:child1']);
    t.is(lab.eventsOf('child-crashed').length, 0, 'the rejected done of a stopped child is not a crash');
    if (restart === 'temporary') {
      t.deepEqual(sup.whichChildren(), [], 'a temporary spec is not saved (OTP do_not_save_child_specs_for_temporary_children)');
      await sup.startChild(lab.worker('child1', { restart }));
    } else {
      t.deepEqual(sup.countChildren(), { specs: 1, active: 0, supervisors: 0, workers: 1 });
      await t.throwsAsync(sup.startChild(lab.worker('child1', { restart })), { message: /already present/ });
      await sup.restartChild('child1');
    }
    t.is(sup.countChildren().active, 1);
    await sup.stop();
  });
}

test('supervisor invariant 5: restarts spread wider than periodMs never exceed the intensity (OTP multiple_restarts)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { intensity: 1, periodMs: 1_000, children: [lab.worker('child1', { shutdown: 'brutal-kill' })] });
  for (let i = 0; i < 4; i++) {
    lab.w('child1').crash();
    await lab.settle(1_000);
  }
  t.is(lab.eventsOf('child-started').length, 5);
  t.is(lab.eventsOf('escalated').length, 0);
  await sup.terminateChild('child1');
  await sup.deleteChild('child1');
  await sup.stop();
  await sup.done;
});

test('supervisor invariant 5: a restart leaves the window exactly periodMs later; two within it exceed intensity 1', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { intensity: 1, periodMs: 1_000, children: [lab.worker('a')] });
  lab.w('a').crash(); // t = 0
  await lab.settle(999);
  lab.w('a').crash(); // t = 999: 2 restarts within 1000 ms
  await lab.settle();
  t.is(lab.eventsOf('escalated').length, 1);
  await t.throwsAsync(sup.done, { instanceOf: WardenError });

  const lab2 = new Lab();
  const sup2 = await started(lab2, { intensity: 1, periodMs: 1_000, children: [lab2.worker('a')] });
  lab2.w('a').crash(); // t = 0
  await lab2.settle(1_000);
  lab2.w('a').crash(); // t = 1000: the first one has left the window
  await lab2.settle();
  t.is(lab2.eventsOf('escalated').length, 0);
  await sup2.stop();
});

// ---- one-for-one ----

test('supervisor invariant 4: one-for-one restarts only the crashed child; one restart too many gives up (OTP one_for_one)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-one', intensity: 2, periodMs: HOUR, children: ['child1', 'child2', 'child3'].map((id) => lab.worker(id)) });
  const child2 = lab.w('child2');
  lab.w('child1').crash();
  await lab.settle();
  t.is(lab.w('child2'), child2, 'a sibling keeps running');
  t.deepEqual(lab.log.slice(3), ['start:child1']);
  t.deepEqual(sup.countChildren(), { specs: 3, active: 3, supervisors: 0, workers: 3 });

  lab.w('child2').crash(); // restart 2 of 2
  await lab.settle();
  const mark = lab.log.length;
  lab.w('child2').crash(); // restart 3 > intensity 2
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:child3', 'stop:child1'], 'the others stop in reverse order');
  const err = await t.throwsAsync(sup.done, { instanceOf: WardenError });
  t.is(err?.code, 'STOPPED');
  t.regex(err?.message ?? '', /root gave up: 3 restarts within 3600000 ms exceed its intensity 2/);
  t.is((err?.cause as Error).message, 'child2 crashed');
  t.is(lab.fatal.length, 1);
  t.is(lab.fatal[0], err);
  t.deepEqual(lab.events.slice(-4).map((e) => e.type), ['escalated', 'child-stopped', 'child-stopped', 'fatal']);
});

test('supervisor invariant 6: one-for-one: a child whose restart keeps failing escalates, siblings stopped (OTP one_for_one_escalation)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { intensity: 4, periodMs: HOUR, children: [lab.worker('child1'), lab.worker('child2')] });
  lab.failStarts('child1');
  lab.w('child1').crash();
  await lab.settle();
  t.deepEqual(lab.eventsOf('child-start-failed').map((e) => e.attempt), [1, 2, 3, 4], 'crash + 4 failed restarts = 5 > 4');
  t.deepEqual(lab.eventsOf('escalated').map((e) => [e.path, e.restarts, e.periodMs]), [['root', 5, HOUR]]);
  t.true(lab.log.includes('stop:child2'));
  await t.throwsAsync(sup.done, { message: /gave up/ });
  t.is(lab.fatal.length, 1);
  t.is(lab.clock.pending, 0);
});

// ---- one-for-all ----

test('supervisor invariant 4: one-for-all stops the others in reverse order and restarts all in order (OTP one_for_all)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-all', intensity: 2, periodMs: HOUR, children: ['child1', 'child2', 'child3'].map((id) => lab.worker(id)) });
  const old = ['child1', 'child2', 'child3'].map((id) => lab.w(id));
  const mark = lab.log.length;
  lab.w('child2').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:child3', 'stop:child1', 'start:child1', 'start:child2', 'start:child3']);
  t.true(['child1', 'child2', 'child3'].every((id, i) => lab.w(id) !== old[i]), 'no old incarnation survives');
  t.deepEqual(sup.countChildren(), { specs: 3, active: 3, supervisors: 0, workers: 3 });
  t.deepEqual(sup.tree().children?.map((c) => c.restarts), [1, 1, 1]);

  lab.w('child1').crash();
  await lab.settle();
  t.is(lab.eventsOf('escalated').length, 0, 'a group restart counts once');
  lab.w('child3').crash();
  await lab.settle();
  await t.throwsAsync(sup.done);
  t.is(lab.eventsOf('escalated').length, 1);
});

test('supervisor invariant 6: one-for-all: a restart failing for ever escalates (OTP one_for_all_escalation)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-all', intensity: 4, periodMs: HOUR, children: [lab.worker('child1'), lab.worker('child2')] });
  lab.failStarts('child2');
  lab.w('child1').crash();
  await lab.settle();
  await t.throwsAsync(sup.done);
  t.is(lab.eventsOf('child-start-failed').length, 4);
  t.deepEqual(lab.log.slice(-2), ['fail-start:child2', 'stop:child1'], 'the child started by the last attempt is stopped');
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['terminated', 'terminated']);
});

test('supervisor invariant 6: one-for-all: when another child fails to restart, the restarted one is stopped and all retried (OTP one_for_all_other_child_fails_restart)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-all', intensity: 3, periodMs: HOUR, children: [lab.worker('child1'), lab.worker('child2')] });
  lab.failStarts('child2', 1);
  const mark = lab.log.length;
  lab.w('child1').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:child2', 'start:child1', 'fail-start:child2', 'stop:child1', 'start:child1', 'start:child2']);
  t.deepEqual(sup.countChildren(), { specs: 2, active: 2, supervisors: 0, workers: 2 });
  await sup.stop();
});

// ---- rest-for-one ----

test('supervisor invariant 4: rest-for-one restarts the child and those after it (OTP rest_for_one)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'rest-for-one', intensity: 2, periodMs: HOUR, children: ['child1', 'child2', 'child3'].map((id) => lab.worker(id)) });
  const child1 = lab.w('child1');
  let mark = lab.log.length;
  lab.w('child2').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:child3', 'start:child2', 'start:child3']);
  t.is(lab.w('child1'), child1);
  t.deepEqual(sup.countChildren(), { specs: 3, active: 3, supervisors: 0, workers: 3 });

  mark = lab.log.length;
  lab.w('child3').crash(); // the last one: nothing after it
  await lab.settle();
  t.deepEqual(lab.since(mark), ['start:child3']);
  lab.w('child2').crash(); // 3 > 2
  await lab.settle();
  await t.throwsAsync(sup.done);
});

test('supervisor invariant 6: rest-for-one: a restart failing for ever escalates (OTP rest_for_one_escalation)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'rest-for-one', intensity: 4, periodMs: HOUR, children: [lab.worker('child1'), lab.worker('child2')] });
  lab.failStarts('child2');
  lab.w('child1').crash();
  await lab.settle();
  await t.throwsAsync(sup.done);
  t.deepEqual(lab.log.filter((l) => l === 'start:child1').length, 2, 'child1 restarted once, not again on each retry of child2');
  t.is(lab.log.at(-1), 'stop:child1');
});

test('supervisor invariant 6: rest-for-one: a later child failing to restart is retried alone (OTP rest_for_one_other_child_fails_restart)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'rest-for-one', intensity: 3, periodMs: HOUR, children: [lab.worker('child1'), lab.worker('child2')] });
  lab.failStarts('child2', 1);
  const mark = lab.log.length;
  lab.w('child1').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:child2', 'start:child1', 'fail-start:child2', 'start:child2']);
  await sup.stop();
});

// ---- temporaries and bystanders ----

for (const strategy of ['one-for-all', 'rest-for-one'] as const) {
  test(`supervisor invariant 4: ${strategy}: a temporary child stopped by a group restart is deleted, not restarted (OTP temporary_bystander)`, async (t) => {
    const lab = new Lab();
    const sup = await started(lab, { strategy, intensity: 2, periodMs: 300, children: [lab.worker('child1', { shutdown: 100 }), lab.worker('child2', { restart: 'temporary', shutdown: 100 })] });
    lab.w('child1').exit(); // permanent: restarted even after a normal exit
    await lab.settle(350);
    t.deepEqual(sup.whichChildren().map((c) => c.id), ['child1']);
    t.is(lab.log.filter((l) => l === 'start:child2').length, 1);
    t.is(lab.eventsOf('escalated').length, 0);
    await sup.stop();
  });
}

test('supervisor invariant 3: one-for-all: a child that needs no restart does not disturb its siblings', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-all', children: [lab.worker('a'), lab.worker('b', { restart: 'transient' }), lab.worker('c', { restart: 'temporary' })] });
  const mark = lab.log.length;
  lab.w('b').exit();
  lab.w('c').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), []);
  t.deepEqual(sup.whichChildren().map((c) => [c.id, c.status]), [['a', 'running'], ['b', 'terminated']]);
  await sup.stop();
});

test('supervisor invariant 4: one-for-all restarts a transient child that had exited normally with the rest of its group (OTP restart_multiple_children)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-all', intensity: 2, periodMs: HOUR, children: [lab.worker('a'), lab.worker('b', { restart: 'transient' }), lab.worker('c')] });
  lab.w('b').exit(); // its spec is kept; nobody restarts it yet
  await lab.settle();
  t.deepEqual(sup.whichChildren().map((c) => [c.id, c.status]), [['a', 'running'], ['b', 'terminated'], ['c', 'running']]);
  const mark = lab.log.length;
  lab.w('a').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:c', 'start:a', 'start:b', 'start:c'], 'b starts again in its place in the spec order');
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['running', 'running', 'running']);
  t.deepEqual(sup.tree().children?.map((c) => c.restarts), [1, 1, 1]);
  t.deepEqual(lab.eventsOf('child-restarting').map((e) => e.id), ['a', 'b', 'c']);
  await sup.stop();
});

test('supervisor invariant 4: rest-for-one restarts a transient child after the failed one that had exited normally; one before it stays down (OTP restart_multiple_children)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, {
    strategy: 'rest-for-one',
    intensity: 2,
    periodMs: HOUR,
    children: [lab.worker('a', { restart: 'transient' }), lab.worker('b'), lab.worker('c', { restart: 'transient' }), lab.worker('d')],
  });
  lab.w('a').exit();
  lab.w('c').exit();
  await lab.settle();
  const mark = lab.log.length;
  lab.w('b').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:d', 'start:b', 'start:c', 'start:d']);
  t.deepEqual(sup.whichChildren().map((c) => [c.id, c.status]), [['a', 'terminated'], ['b', 'running'], ['c', 'running'], ['d', 'running']]);
  await sup.stop();
});

test('supervisor invariant 4: a child terminated through terminateChild and started again with restartChild rejoins group restarts', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-all', intensity: 2, periodMs: HOUR, children: [lab.worker('a'), lab.worker('b')] });
  await sup.terminateChild('b');
  await sup.restartChild('b');
  const mark = lab.log.length;
  lab.w('a').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:b', 'start:a', 'start:b']);
  await sup.stop();
});

test('supervisor invariant 4: one-for-all leaves a child terminated through terminateChild terminated', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { strategy: 'one-for-all', children: [lab.worker('a'), lab.worker('b'), lab.worker('c')] });
  await sup.terminateChild('b');
  const mark = lab.log.length;
  lab.w('a').crash();
  await lab.settle();
  t.deepEqual(lab.since(mark), ['stop:c', 'start:a', 'start:c']);
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['running', 'terminated', 'running']);
  await sup.stop();
});

// ---- nested trees ----

test('supervisor invariant 5: a nested supervisor that gives up is a crashed child of its parent (OTP tree)', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, {
    strategy: 'one-for-all',
    intensity: 4,
    periodMs: HOUR,
    children: [
      nested('supchild1', { intensity: 4, periodMs: HOUR, children: [lab.worker('child1'), lab.worker('child2')] }),
      nested('supchild2', { intensity: 4, periodMs: HOUR, children: [lab.worker('child3'), lab.worker('child4')] }),
    ],
  });
  t.deepEqual(sup.countChildren(), { specs: 2, active: 2, supervisors: 2, workers: 0 });
  const [child1, child2, child3] = ['child1', 'child2', 'child3'].map((id) => lab.w(id));

  lab.w('child4').crash(); // only child4 restarts
  await lab.settle();
  t.deepEqual([lab.w('child1'), lab.w('child2'), lab.w('child3')], [child1, child2, child3]);
  t.is(lab.log.filter((l) => l === 'start:child4').length, 2);

  lab.failStarts('child3', 3); // child4's restart, child3's crash, 3 failed restarts: 5 > 4, supchild2 gives up
  lab.w('child3').crash();
  await lab.settle();
  t.deepEqual(lab.eventsOf('escalated').map((e) => e.path), ['root/supchild2']);
  t.deepEqual(lab.eventsOf('child-crashed').map((e) => e.path), ['root/supchild2/child4', 'root/supchild2/child3', 'root/supchild2']);
  const crash = lab.eventsOf('child-crashed').at(-1);
  t.deepEqual(crash?.errorChain.map((e) => e.code ?? e.name), ['STOPPED', 'Error']);
  t.true([child1, child2].every((w) => w?.signal.aborted === true), 'one-for-all at the root restarted supchild1 as well');
  t.not(lab.w('child1'), child1);
  const tree = sup.tree();
  t.deepEqual(tree.children?.map((c) => [c.path, c.status, c.restarts]), [['root/supchild1', 'running', 1], ['root/supchild2', 'running', 1]]);
  t.deepEqual(tree.children?.[0]?.children?.map((c) => [c.path, c.kind, c.status]), [['root/supchild1/child1', 'worker', 'running'], ['root/supchild1/child2', 'worker', 'running']]);
  t.deepEqual(sup.countChildren(), { specs: 2, active: 2, supervisors: 2, workers: 0 });
  t.is(lab.fatal.length, 0);
  await sup.stop();
  t.is(lab.clock.pending, 0);
});

test('supervisor invariant 5: escalation climbs the tree to onFatal at the root; events bubble with full paths', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, {
    intensity: 1,
    periodMs: 60_000,
    children: [lab.worker('http'), nested('stage', { intensity: 1, periodMs: 60_000, children: [lab.worker('partition-0')] })],
  });
  for (let round = 0; round < 2; round++) {
    lab.w('partition-0').crash();
    await lab.settle();
    lab.w('partition-0').crash(); // 2 > 1: stage gives up; the root restarts it (round 0) or gives up too (round 1)
    await lab.settle();
  }
  t.deepEqual(lab.eventsOf('escalated').map((e) => e.path), ['root/stage', 'root/stage', 'root']);
  t.deepEqual(lab.eventsOf('fatal').map((e) => e.path), ['root']);
  t.true(lab.eventsOf('child-crashed').some((e) => e.path === 'root/stage/partition-0'));
  t.is(lab.fatal.length, 1);
  const err = lab.fatal[0];
  t.regex(err?.message ?? '', /supervisor root gave up/);
  t.regex((err?.cause as Error).message, /supervisor root\/stage gave up/);
  await t.throwsAsync(sup.done, { is: err as Error });
  t.true(lab.log.includes('stop:http'));
  t.is(lab.clock.pending, 0);
});

test('supervisor invariant 1: stopping a tree stops nested children in reverse order, depth first', async (t) => {
  const lab = new Lab();
  const sup = await started(lab, { children: [lab.worker('a'), nested('mid', { children: [lab.worker('b'), lab.worker('c')] }), lab.worker('d')] });
  t.deepEqual(lab.log, ['start:a', 'start:b', 'start:c', 'start:d']);
  await sup.stop();
  t.deepEqual(lab.log.slice(4), ['stop:d', 'stop:c', 'stop:b', 'stop:a']);
  t.deepEqual(lab.eventsOf('supervisor-stopped').map((e) => e.path), ['root/mid', 'root']);
});
