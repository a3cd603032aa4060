/**
 * Start, stop, shutdown, dynamic children, backoff, tree(), events, supervise() and option
 * validation: the applicable cases of OTP's supervisor_SUITE (named in the titles) and the Akka
 * backoff on top, all on the simulated clock. Titles cite the invariants of
 * lib/supervision/supervisor.ts ("supervisor invariant N") and lib/supervision/child.ts
 * ("child invariant N").
 */
import test from 'ava';
import { ConfigError, WardenError } from '../../lib/core/errors.js';
import { backoffDelay, resolveBackoff } from '../../lib/supervision/backoff.js';
import { SupervisorRefusedError } from '../../lib/supervision/errors.js';
import { resolveSupervisorOptions } from '../../lib/supervision/options.js';
import { createSupervisor } from '../../lib/supervision/supervisor.js';
import { supervise } from '../../lib/supervision/supervise.js';
import type { ChildContext, ChildHandle, ChildSpec, SupervisionEvent, SupervisorChildSpec, SupervisorOptions } from '../../lib/supervision/types.js';
import { Lab } from '../helpers/supervision-lab.js';

const HOUR = 3_600_000;

// ---- start and stop ----

test('supervisor invariant 8: an empty supervisor starts and stops; done resolves (OTP sup_start_normal)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ intensity: 2, periodMs: HOUR });
  await sup.start();
  t.is(sup.tree().status, 'running');
  await sup.stop();
  await sup.done;
  t.deepEqual(lab.events, [{ type: 'supervisor-stopped', path: 'root' }]);
  t.is(sup.tree().status, 'stopped');
});

test('supervisor invariant 1: children start in spec order and stop in reverse order', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: ['a', 'b', 'c'].map((id) => lab.worker(id)) });
  await sup.start();
  await sup.startChild(lab.worker('d'));
  await sup.stop();
  t.deepEqual(lab.log, ['start:a', 'start:b', 'start:c', 'start:d', 'stop:d', 'stop:c', 'stop:b', 'stop:a']);
  t.deepEqual(lab.eventsOf('child-stopped').map((e) => [e.id, e.how]), [['d', 'graceful'], ['c', 'graceful'], ['b', 'graceful'], ['a', 'graceful']]);
  t.is(lab.eventsOf('child-crashed').length, 0, 'exits caused by the supervisor are not crashes');
  t.true(['a', 'b', 'c', 'd'].every((id) => lab.w(id).signal.aborted), 'each incarnation signal is aborted');
});

test('supervisor invariant 7: a child failing to start stops the started ones in reverse order and rejects naming it (OTP sup_start_fail)', async (t) => {
  const lab = new Lab();
  lab.failStarts('c');
  const sup = lab.supervisor({ children: ['a', 'b', 'c', 'd'].map((id) => lab.worker(id)) });
  const err = await t.throwsAsync(sup.start(), { instanceOf: WardenError });
  t.regex(err?.message ?? '', /supervisor root failed to start child c: c cannot start/);
  t.is((err?.cause as Error).message, 'c cannot start');
  t.is(err?.details.child, 'c');
  t.deepEqual(lab.log, ['start:a', 'start:b', 'fail-start:c', 'stop:b', 'stop:a']);
  await t.throwsAsync(sup.done, { is: err });
  t.deepEqual(lab.eventsOf('child-start-failed').map((e) => [e.id, e.attempt]), [['c', 0]]);
  t.is(lab.fatal.length, 0, 'a failed start is the caller’s to handle, not fatal');
  t.is(sup.tree().status, 'failed');
});

test('supervisor invariant 1: shutdown infinity waits for stop() without limit (OTP sup_stop_infinity)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('child1', { shutdown: 'infinity' }), lab.worker('child2', { shutdown: 'infinity' })] });
  await sup.start();
  lab.hangStop('child2');
  let stopped = false;
  const stopping = sup.stop().then(() => (stopped = true));
  await lab.settle(10 * HOUR);
  t.false(stopped);
  t.deepEqual(lab.log.slice(2), ['stop:child2']);
  t.is(lab.clock.pending, 0, 'no timer for infinity');
  lab.releaseStop('child2');
  await stopping;
  t.deepEqual(lab.log.slice(2), ['stop:child2', 'stop:child1']);
});

test('child invariant 4: a numeric shutdown kills a child that does not stop in time (OTP sup_stop_timeout)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('child1', { shutdown: 1_000 }), lab.worker('child2', { shutdown: 1_000 })] });
  await sup.start();
  lab.hangStop('child2');
  const stopping = sup.stop();
  await lab.settle(999);
  t.deepEqual(lab.log.slice(2), ['stop:child2']);
  await lab.settle(1);
  await stopping;
  t.deepEqual(lab.log.slice(2), ['stop:child2', 'kill:child2', 'stop:child1']);
  t.deepEqual(lab.eventsOf('child-stopped').map((e) => [e.id, e.how]), [['child2', 'killed'], ['child1', 'graceful']]);
  t.is(lab.clock.pending, 0);
});

test('child invariant 4: a child without kill() that does not stop in time is abandoned', async (t) => {
  const lab = new Lab();
  lab.noKill.add('child1');
  lab.hangStop('child1');
  const sup = lab.supervisor({ children: [lab.worker('child1', { shutdown: 50 })] });
  await sup.start();
  const stopping = sup.stop();
  await lab.settle(50);
  await stopping;
  t.deepEqual(lab.eventsOf('child-stopped').map((e) => e.how), ['abandoned']);
  t.is(lab.clock.pending, 0);
});

test('child invariant 4: brutal-kill kills at once without stop() (OTP sup_stop_brutal_kill)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('child1', { shutdown: 1_000 }), lab.worker('child2', { shutdown: 'brutal-kill' })] });
  await sup.start();
  await sup.stop();
  t.deepEqual(lab.log.slice(2), ['kill:child2', 'stop:child1']);
  t.deepEqual(lab.eventsOf('child-stopped').map((e) => [e.id, e.how]), [['child2', 'killed'], ['child1', 'graceful']]);
});

test('supervisor invariant 8: stop() is idempotent; start() after it and calls on a stopped supervisor are refused', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a')] });
  await sup.start();
  await t.throwsAsync(sup.start(), { message: /cannot start: it is running/ });
  await Promise.all([sup.stop(), sup.stop()]);
  await sup.stop();
  t.is(lab.eventsOf('supervisor-stopped').length, 1);
  await t.throwsAsync(sup.start(), { instanceOf: WardenError, message: /stopped/ });
  await t.throwsAsync(sup.startChild(lab.worker('b')), { message: /not running/ });
  await t.throwsAsync(sup.terminateChild('a'), { message: /not running/ });
  const idle = lab.supervisor();
  await idle.stop();
  await idle.done;
});

test('supervisor invariant 8: stop() during a start that never settles aborts it and completes', async (t) => {
  const lab = new Lab();
  lab.hangStart.add('slow');
  const sup = lab.supervisor({ children: [lab.worker('a'), lab.worker('slow')] });
  const starting = sup.start();
  await lab.settle();
  await sup.stop();
  await t.throwsAsync(starting, { message: /not running/ });
  await sup.done;
  t.deepEqual(lab.log, ['start:a', 'hang-start:slow', 'stop:a']);
});

test('supervisor invariant 8: stop() during a startChild whose start never settles aborts it and completes', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a')] });
  await sup.start();
  lab.hangStart.add('late');
  const adding = sup.startChild(lab.worker('late'));
  await lab.settle();
  await sup.stop();
  await t.throwsAsync(adding, { message: /failed to start child late/ });
  t.deepEqual(sup.whichChildren().map((c) => c.id), ['a']);
  t.deepEqual(lab.log, ['start:a', 'hang-start:late', 'stop:a']);
});

test('child invariant 3: a handle that arrives after its start was aborted is killed and dropped', async (t) => {
  const lab = new Lab();
  let deliver: (h: ChildHandle) => void = () => undefined;
  const contexts: ChildContext[] = [];
  const sup = lab.supervisor({
    id: 'svc',
    children: [
      {
        id: 'slow',
        start: (ctx) => {
          contexts.push(ctx);
          return new Promise<ChildHandle>((resolve) => (deliver = resolve));
        },
      },
    ],
  });
  const starting = sup.start();
  await lab.settle();
  t.like(contexts[0], { id: 'slow', path: 'svc/slow', attempt: 0, clock: lab.clock });
  await sup.stop();
  await t.throwsAsync(starting);
  t.true(contexts[0]?.signal.aborted);
  const late: string[] = [];
  deliver({ stop: () => Promise.resolve(void late.push('stop')), kill: () => void late.push('kill'), done: Promise.reject(new Error('late crash')) });
  await lab.settle();
  t.deepEqual(late, ['kill']);
  t.deepEqual(lab.eventsOf('child-started'), []);
});

// ---- dynamic children ----

test('supervisor invariant 2: startChild/terminateChild/restartChild/deleteChild/whichChildren/countChildren (OTP child_adm)', async (t) => {
  const lab = new Lab();
  const child = lab.worker('child1', { shutdown: 1_000 });
  const sup = lab.supervisor({ intensity: 2, periodMs: HOUR, children: [child] });
  await sup.start();
  t.deepEqual(sup.whichChildren(), [{ id: 'child1', kind: 'worker', status: 'running', restart: 'permanent' }]);
  t.deepEqual(sup.countChildren(), { specs: 1, active: 1, supervisors: 0, workers: 1 });

  const started = await t.throwsAsync(sup.startChild(child), { instanceOf: SupervisorRefusedError, message: /"child1" already started/ });
  t.is(started?.details.reason, 'already started');
  await t.throwsAsync(sup.terminateChild('hej'), { instanceOf: SupervisorRefusedError, message: /"hej" not found/ });
  await sup.terminateChild('child1');
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['terminated']);
  t.deepEqual(sup.countChildren(), { specs: 1, active: 0, supervisors: 0, workers: 1 });
  await sup.terminateChild('child1'); // terminating a terminated child is fine
  await t.throwsAsync(sup.startChild(child), { message: /already present/ });

  await sup.restartChild('child1');
  t.deepEqual(sup.countChildren(), { specs: 1, active: 1, supervisors: 0, workers: 1 });
  await t.throwsAsync(sup.restartChild('child1'), { message: /"child1" running/ });
  await t.throwsAsync(sup.restartChild('child2'), { message: /"child2" not found/ });

  await t.throwsAsync(sup.deleteChild('child1'), { message: /"child1" running/ });
  await t.throwsAsync(sup.deleteChild('hej'), { message: /not found/ });
  await sup.terminateChild('child1');
  await sup.deleteChild('child1');
  await t.throwsAsync(sup.restartChild('child1'), { message: /not found/ });
  t.deepEqual(sup.whichChildren(), []);
  t.deepEqual(sup.countChildren(), { specs: 0, active: 0, supervisors: 0, workers: 0 });

  await sup.startChild(child);
  t.deepEqual(sup.countChildren(), { specs: 1, active: 1, supervisors: 0, workers: 1 });
  t.deepEqual(lab.log, ['start:child1', 'stop:child1', 'start:child1', 'stop:child1', 'start:child1']);
  await sup.stop();
});

test('supervisor invariant 2: startChild and restartChild reject with the start error and keep nothing running', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a')] });
  await sup.start();
  lab.failStarts('b', 1);
  const err = await t.throwsAsync(sup.startChild(lab.worker('b')), { instanceOf: WardenError, message: /failed to start child b/ });
  t.is((err?.cause as Error).message, 'b cannot start');
  t.deepEqual(sup.whichChildren().map((c) => c.id), ['a'], 'the spec of a child that failed to start is not kept');
  await sup.terminateChild('a');
  lab.failStarts('a', 1);
  await t.throwsAsync(sup.restartChild('a'), { message: /failed to restart child a/ });
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['terminated']);
  await sup.stop();
});

test('supervisor invariant 2: counts group actor groups with workers and nested supervisors apart (OTP count_children)', async (t) => {
  const lab = new Lab();
  const group: ChildSpec = { kind: 'actors', id: 'partition-0', start: () => Promise.resolve({ stop: () => Promise.resolve() }) };
  const sup = lab.supervisor({ children: [lab.worker('a'), group, { kind: 'supervisor', id: 'sub', supervisor: { children: [lab.worker('b')] } }] });
  await sup.start();
  t.deepEqual(sup.countChildren(), { specs: 3, active: 3, supervisors: 1, workers: 2 });
  t.deepEqual(sup.whichChildren().map((c) => c.kind), ['worker', 'actors', 'supervisor']);
  await sup.terminateChild('sub');
  t.deepEqual(sup.countChildren(), { specs: 3, active: 2, supervisors: 1, workers: 2 });
  await sup.stop();
});

// ---- restart loops ----

test('supervisor invariant 8: a hanging restart loop can be shut down; no timer remains (OTP hanging_restart_loop)', async (t) => {
  const lab = new Lab();
  const backoff = { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0 };
  const sup = lab.supervisor({ intensity: 8, periodMs: 10_000, children: [lab.worker('child1', { shutdown: 'brutal-kill', backoff })] });
  await sup.start();
  lab.failStarts('child1');
  lab.w('child1').crash();
  await lab.settle(250); // restarts at 100 and 300 ms: one failed so far
  t.deepEqual(lab.eventsOf('child-start-failed').length, 1);
  await t.throwsAsync(sup.startChild(lab.worker('child1')), { message: /already present/ });
  await t.throwsAsync(sup.restartChild('child1'), { message: /restarting/ });
  await t.throwsAsync(sup.deleteChild('child1'), { message: /restarting/ });
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['restarting']);
  t.deepEqual(sup.countChildren(), { specs: 1, active: 0, supervisors: 0, workers: 1 });
  t.is(lab.clock.pending, 1);

  await sup.terminateChild('child1');
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['terminated']);
  t.is(lab.clock.pending, 0, 'the pending restart is cancelled');

  lab.fixStarts('child1');
  await sup.restartChild('child1');
  lab.failStarts('child1');
  lab.w('child1').crash();
  await lab.settle(1_000);
  t.is(lab.clock.pending, 1);
  await sup.stop();
  t.is(lab.clock.pending, 0);
  await sup.done;
  const failures = lab.eventsOf('child-start-failed').length;
  await lab.settle(HOUR);
  t.is(lab.eventsOf('child-start-failed').length, failures, 'nothing restarts after stop()');
});

test('supervisor invariant 8: stop() during a restart whose start hangs completes', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a'), lab.worker('b')] });
  await sup.start();
  lab.hangStart.add('b');
  lab.w('b').crash();
  await lab.settle();
  t.is(lab.log.at(-1), 'hang-start:b');
  await sup.stop();
  await sup.done;
  t.is(lab.log.at(-1), 'stop:a');
  t.is(lab.clock.pending, 0);
});

// ---- backoff ----

test('backoffDelay grows as minBackoffMs * 2^attempt, capped at maxBackoffMs', (t) => {
  const options = { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0 };
  t.deepEqual([0, 1, 2, 3, 4, 5, 60, 5_000].map((n) => backoffDelay(n, options)), [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
  t.is(backoffDelay(7, { minBackoffMs: 0 }), 0, 'min 0: immediate restarts (OTP)');
});

test('backoffDelay jitter stays within [base, base * (1 + randomFactor)] and under maxBackoffMs', (t) => {
  const options = { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0.5 };
  t.is(backoffDelay(0, options, () => 0), 100);
  t.is(backoffDelay(0, options, () => 0.5), 125);
  t.is(backoffDelay(0, options, () => 0.999999), 150);
  t.is(backoffDelay(3, options, () => 1), 1_000, '800 * 1.5 is capped at 1000');
  for (let attempt = 0; attempt < 8; attempt++) {
    for (let i = 0; i < 50; i++) {
      const base = Math.min(1_000, 100 * 2 ** attempt);
      const delay = backoffDelay(attempt, options);
      t.true(delay >= base && delay <= Math.min(1_000, base * 1.5), `${delay} for attempt ${attempt}`);
    }
  }
});

test('resolveBackoff applies the defaults and names bad fields', (t) => {
  t.deepEqual(resolveBackoff({}), { minBackoffMs: 0, maxBackoffMs: 30_000, randomFactor: 0.2, resetBackoffAfterMs: 30_000 });
  t.deepEqual(resolveBackoff({ maxBackoffMs: 5_000 }, { minBackoffMs: 10, maxBackoffMs: 100 }), { minBackoffMs: 10, maxBackoffMs: 5_000, randomFactor: 0.2, resetBackoffAfterMs: 5_000 });
  t.is(t.throws(() => resolveBackoff({ minBackoffMs: 10, maxBackoffMs: 5 }), { instanceOf: ConfigError })?.field, 'backoff.minBackoffMs');
  t.is(t.throws(() => resolveBackoff({ randomFactor: -1 }), { instanceOf: ConfigError })?.field, 'backoff.randomFactor');
  t.is(t.throws(() => resolveBackoff({ minBackoffMs: Number.NaN }), { instanceOf: ConfigError })?.field, 'backoff.minBackoffMs');
});

test('supervisor invariant 6: restarts wait the backoff on the clock; it grows, caps, and resets after resetBackoffAfterMs of uptime', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ intensity: 100, periodMs: 1_000, backoff: { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0 }, children: [lab.worker('a')] });
  await sup.start();
  for (const expected of [100, 200, 400, 800, 1_000, 1_000]) {
    const before = lab.w('a');
    before.crash();
    await lab.settle(expected - 1);
    t.is(lab.w('a'), before, `not restarted before ${expected} ms`);
    t.deepEqual(sup.whichChildren().map((c) => c.status), ['restarting']);
    await lab.settle(1);
    t.not(lab.w('a'), before, `restarted after ${expected} ms`);
  }
  await lab.settle(1_000); // up for resetBackoffAfterMs (= maxBackoffMs)
  lab.w('a').crash();
  await lab.settle();
  t.deepEqual(lab.eventsOf('child-restarting').map((e) => e.delayMs), [100, 200, 400, 800, 1_000, 1_000, 100]);
  await sup.stop();
});

test('supervisor invariant 6: a child that ran resetBackoffAfterMs starts over even when a sibling\'s group restart ended its run', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ strategy: 'one-for-all', intensity: 100, periodMs: 1_000, backoff: { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0, resetBackoffAfterMs: 1_000 }, children: [lab.worker('a'), lab.worker('b')] });
  await sup.start();
  for (const delay of [100, 200, 400]) {
    lab.w('a').crash();
    await lab.settle(delay);
  }
  await lab.settle(5_000); // a runs well past resetBackoffAfterMs
  lab.w('b').crash(); // the group restart (after b's 100 ms backoff) ends a's long run
  await lab.settle(150);
  lab.w('a').crash(); // 50 ms into its new run: its own uptime resets nothing
  await lab.settle();
  const aDelays = lab.eventsOf('child-restarting').filter((e) => e.id === 'a').map((e) => e.delayMs);
  t.is(aDelays.at(-1), 100, `a starts over: ${aDelays.join(', ')}`);
  await sup.stop();
});

test('supervisor invariant 6: jitter comes from the random source; a child backoff overrides the supervisor one field by field', async (t) => {
  const lab = new Lab();
  const sup = createSupervisor({
    clock: lab.clock,
    random: () => 1,
    backoff: { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0.5 },
    children: [lab.worker('a'), lab.worker('b', { backoff: { minBackoffMs: 10 } })],
    intensity: 5,
  });
  sup.on((e) => lab.events.push(e));
  await sup.start();
  lab.w('a').crash();
  lab.w('b').crash();
  await lab.settle();
  t.deepEqual(lab.eventsOf('child-restarting').map((e) => [e.id, e.delayMs]), [['a', 150], ['b', 15]]);
  await sup.stop();
  t.is(lab.clock.pending, 0);
});

test('supervisor invariant 6: with minBackoffMs 0 the restart is immediate but asynchronous, through a 0 ms timer', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a')] });
  await sup.start();
  const first = lab.w('a');
  first.crash();
  await Promise.resolve();
  t.is(lab.w('a'), first);
  await lab.settle(0);
  t.not(lab.w('a'), first);
  t.is(lab.clock.now(), 0);
  await sup.stop();
});

// ---- tree and events ----

test('supervisor: tree() reports status, restarts per child and uptime of the current incarnation', async (t) => {
  const lab = new Lab();
  const group: ChildSpec = {
    kind: 'actors',
    id: 'partition-0',
    start: (ctx: ChildContext) =>
      Promise.resolve({
        stop: () => Promise.resolve(),
        describe: () => [{ id: 'k1', path: `${ctx.path}/k1`, kind: 'actor' as const, status: 'running' as const, restarts: 0, uptimeMs: 5 }],
      }),
  };
  const sup = lab.supervisor({ id: 'svc', intensity: 5, children: [lab.worker('a'), group, { kind: 'supervisor', id: 'sub', supervisor: { children: [lab.worker('b')] } }] });
  await sup.start();
  await lab.settle(500);
  lab.w('a').crash();
  await lab.settle(250);
  const tree = sup.tree();
  t.like(tree, { id: 'svc', path: 'svc', kind: 'supervisor', status: 'running', restarts: 0, uptimeMs: 750 });
  t.like(tree.info, { strategy: 'one-for-one', intensity: 5, restartsInPeriod: 1 });
  t.deepEqual(tree.children?.map((c) => [c.path, c.kind, c.status, c.restarts, c.uptimeMs]), [
    ['svc/a', 'worker', 'running', 1, 250],
    ['svc/partition-0', 'actors', 'running', 0, 750],
    ['svc/sub', 'supervisor', 'running', 0, 750],
  ]);
  t.deepEqual(tree.children?.[1]?.children?.map((c) => c.path), ['svc/partition-0/k1']);
  t.deepEqual(tree.children?.[2]?.children?.map((c) => [c.path, c.uptimeMs]), [['svc/sub/b', 750]]);
  await sup.terminateChild('a');
  t.like(sup.tree().children?.[0], { status: 'terminated', uptimeMs: 0, restarts: 1 });
  await sup.stop();
  t.like(sup.tree(), { status: 'stopped', uptimeMs: 0 });
});

test('supervisor: events report every lifecycle step in order', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a'), lab.worker('b', { restart: 'transient' })] });
  await sup.start();
  lab.w('a').crash(new WardenError('TIMEOUT', 'upstream timed out', { cause: new Error('socket hang up') }));
  await lab.settle();
  lab.w('b').exit();
  await lab.settle();
  await sup.stop();
  const expected: SupervisionEvent[] = [
    { type: 'child-started', path: 'root/a', id: 'a', attempt: 0 },
    { type: 'child-started', path: 'root/b', id: 'b', attempt: 0 },
    {
      type: 'child-crashed',
      path: 'root/a',
      id: 'a',
      error: 'upstream timed out (caused by socket hang up)',
      errorChain: [
        { name: 'WardenError', message: 'upstream timed out', code: 'TIMEOUT' },
        { name: 'Error', message: 'socket hang up' },
      ],
    },
    { type: 'child-restarting', path: 'root/a', id: 'a', attempt: 1, delayMs: 0 },
    { type: 'child-started', path: 'root/a', id: 'a', attempt: 1 },
    { type: 'child-exited', path: 'root/b', id: 'b', reason: 'normal' },
    { type: 'child-stopped', path: 'root/a', id: 'a', how: 'graceful' },
    { type: 'supervisor-stopped', path: 'root' },
  ];
  t.deepEqual(lab.events, expected);
  t.is(lab.w('a').attempt, 1, 'ctx.attempt counts the starts');
});

test('supervisor: a listener that throws does not break the supervisor; on() returns a remover', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a')] });
  const seen: string[] = [];
  sup.on(() => {
    throw new Error('bad listener');
  });
  const off = sup.on((e) => seen.push(e.type));
  await sup.start();
  off();
  lab.w('a').crash();
  await lab.settle();
  t.deepEqual(seen, ['child-started']);
  t.is(lab.eventsOf('child-started').length, 2);
  await sup.stop();
});

test('supervisor invariant 9: crashes, failed starts and escalations never surface as unhandled rejections', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const lab = new Lab();
    lab.failStarts('x');
    const failed = lab.supervisor({ children: [lab.worker('x')] }); // its done is never awaited
    await t.throwsAsync(failed.start());
    const sup = lab.supervisor({ intensity: 0, children: [lab.worker('a')] });
    await sup.start();
    lab.w('a').crash(); // escalates at once; done rejects with nobody listening
    await lab.settle();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    t.deepEqual(unhandled, []);
    t.is(lab.fatal.length, 1);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

// ---- supervise() ----

test('supervise refuses an fn that is not a function, or options that are not an object, with a rejected ConfigError and starts nothing', async (t) => {
  const err = await t.throwsAsync(supervise(5 as never), { instanceOf: ConfigError });
  t.is(err.field, 'fn');
  t.regex(err.message, /^fn must be the async function to supervise, got 5$/);
  t.is((await t.throwsAsync(supervise(() => Promise.resolve(), null as never), { instanceOf: ConfigError })).field, 'options');
});

test('supervise: restarts a crashing function with backoff and stops it through its signal', async (t) => {
  const lab = new Lab();
  const runs: AbortSignal[] = [];
  let fail = true;
  const sup = await supervise(
    async ({ signal }) => {
      runs.push(signal);
      if (fail) throw new Error('poll failed');
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
    { id: 'poller', clock: lab.clock },
  );
  sup.on((e) => lab.events.push(e));
  await lab.settle();
  t.is(runs.length, 1);
  t.like(sup.tree().children?.[0], { path: 'root/poller', status: 'restarting', restarts: 1 });
  fail = false;
  await lab.settle(99);
  t.is(runs.length, 1, 'backoff min 100 ms by default');
  await lab.settle(21); // jitter <= 20 %
  t.is(runs.length, 2);
  await sup.stop();
  t.true(runs[1]?.aborted);
  await sup.done;
  t.deepEqual(lab.eventsOf('child-stopped').map((e) => e.how), ['graceful']);
  t.is(lab.clock.pending, 0);
});

test('supervise: a transient function that returns is not restarted; intensity exceeded calls onFatal', async (t) => {
  const lab = new Lab();
  let runs = 0;
  const sup = await supervise(() => Promise.resolve(void runs++), { restart: 'transient', clock: lab.clock });
  await lab.settle(HOUR);
  t.is(runs, 1);
  t.deepEqual(sup.whichChildren().map((c) => c.status), ['terminated']);
  await sup.stop();

  const fatal: Error[] = [];
  let crashes = 0;
  const doomed = await supervise(() => Promise.reject(new Error(`crash ${++crashes}`)), {
    clock: lab.clock,
    intensity: 2,
    periodMs: HOUR,
    backoff: { minBackoffMs: 10, randomFactor: 0 },
    onFatal: (e) => fatal.push(e),
  });
  await lab.settle(1_000);
  t.is(crashes, 3);
  t.is(fatal.length, 1);
  await t.throwsAsync(doomed.done, { is: fatal[0] as Error });
  t.is((fatal[0]?.cause as Error).message, 'crash 3');
});

test('supervise: a function that ignores its signal is abandoned after the shutdown time', async (t) => {
  const lab = new Lab();
  const sup = await supervise(() => new Promise<void>(() => undefined), { clock: lab.clock, shutdown: 50 });
  const events: SupervisionEvent[] = [];
  sup.on((e) => events.push(e));
  const stopping = sup.stop();
  await lab.settle(50);
  await stopping;
  t.deepEqual(events.map((e) => (e.type === 'child-stopped' ? e.how : e.type)), ['abandoned', 'supervisor-stopped']);
});

// ---- options ----

const badOptions: Array<[string, SupervisorOptions, string]> = [
  ['negative intensity', { intensity: -1 }, 'intensity'],
  ['fractional intensity', { intensity: 1.5 }, 'intensity'],
  ['periodMs 0', { periodMs: 0 }, 'periodMs'],
  ['infinite periodMs', { periodMs: Number.POSITIVE_INFINITY }, 'periodMs'],
  ['unknown strategy', { strategy: 'none-for-one' as never }, 'strategy'],
  ['empty id', { id: '' }, 'id'],
  ['id with a slash', { id: 'a/b' }, 'id'],
  ['minBackoffMs > maxBackoffMs', { backoff: { minBackoffMs: 10, maxBackoffMs: 1 } }, 'backoff.minBackoffMs'],
  ['negative randomFactor', { backoff: { randomFactor: -0.1 } }, 'backoff.randomFactor'],
  ['duplicate child ids', { children: [{ id: 'a', start: () => Promise.reject(new Error()) }, { id: 'a', start: () => Promise.reject(new Error()) }] }, 'children[1].id'],
  ['unknown restart type', { children: [{ id: 'a', restart: 'prmanent' as never, start: () => Promise.reject(new Error()) }] }, 'children[0].restart'],
  ['negative shutdown', { children: [{ id: 'a', shutdown: -10, start: () => Promise.reject(new Error()) }] }, 'children[0].shutdown'],
  ['unknown shutdown', { children: [{ id: 'a', shutdown: 'gentle' as never, start: () => Promise.reject(new Error()) }] }, 'children[0].shutdown'],
  ['unknown kind', { children: [{ id: 'a', kind: 'wrker' as never, start: () => Promise.reject(new Error()) }] }, 'children[0].kind'],
  ['missing start', { children: [{ id: 'a' } as never] }, 'children[0].start'],
  ['missing child id', { children: [{ start: () => Promise.reject(new Error()) } as never] }, 'children[0].id'],
  ['bad child backoff', { children: [{ id: 'a', backoff: { maxBackoffMs: -1 }, start: () => Promise.reject(new Error()) }] }, 'children[0].backoff.maxBackoffMs'],
  ['bad nested supervisor', { children: [{ kind: 'supervisor', id: 's', supervisor: { periodMs: -5 } }] }, 'children[0].supervisor.periodMs'],
];

for (const [name, options, field] of badOptions) {
  test(`createSupervisor throws a ConfigError naming the field: ${name} (OTP sup_flags / child_specs)`, (t) => {
    const err = t.throws(() => createSupervisor(options), { instanceOf: ConfigError });
    t.is(err?.field, field);
    t.regex(err?.message ?? '', new RegExp(`^${field.replace(/[[\].]/g, '\\$&')} `));
  });
}

test('resolveSupervisorOptions applies the OTP defaults (OTP sup_start_map)', (t) => {
  const start = (): Promise<ChildHandle> => Promise.reject(new Error());
  const resolved = resolveSupervisorOptions({ children: [{ id: 'child1', start }, { id: 'child2', start, shutdown: 'brutal-kill' }, { kind: 'supervisor', id: 'child3', supervisor: {} }] });
  t.like(resolved, { id: 'root', strategy: 'one-for-one', intensity: 1, periodMs: 5_000 });
  t.deepEqual(
    resolved.children.map((c) => [c.id, c.kind, c.restart, c.shutdown]),
    [['child1', 'worker', 'permanent', 5_000], ['child2', 'worker', 'permanent', 'brutal-kill'], ['child3', 'supervisor', 'permanent', 'infinity']],
  );
  t.deepEqual(resolved.children[0]?.backoff, { minBackoffMs: 0, maxBackoffMs: 30_000, randomFactor: 0.2, resetBackoffAfterMs: 30_000 });
});

test('startChild rejects a bad spec with a ConfigError naming the field (OTP child_specs)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor();
  await sup.start();
  const err = await t.throwsAsync(sup.startChild({ id: 'a', shutdown: -10, start: () => Promise.reject(new Error()) }), { instanceOf: ConfigError });
  t.is(err?.field, 'spec.shutdown');
  await t.throwsAsync(sup.startChild({ id: 'a', start: () => Promise.resolve({} as never) }), { message: /must resolve to a ChildHandle/ });
  t.deepEqual(sup.whichChildren(), []);
  await sup.stop();
});

test('child invariant 4: a nested supervisor that does not stop in time is killed with its whole subtree before its parent\'s stop resolves (OTP exit(Sup, kill))', async (t) => {
  const lab = new Lab();
  const inner: SupervisorChildSpec = { kind: 'supervisor', id: 'inner', shutdown: 1_000, supervisor: { children: [lab.worker('a'), lab.worker('b', { shutdown: 'infinity' })] } };
  const sup = lab.supervisor({ id: 'root', children: [lab.worker('first'), inner] });
  await sup.start();
  lab.hangStop('b'); // inner's stop waits for b for ever
  let resolved = false;
  const stopping = sup.stop().then(() => (resolved = true));
  await lab.settle(999);
  t.false(resolved, 'the parent waits the nested supervisor\'s shutdown');
  await lab.settle(1);
  await stopping;
  t.deepEqual(lab.log.filter((l) => l.startsWith('kill:') || l.startsWith('stop:')), ['stop:b', 'kill:b', 'kill:a', 'stop:first'], 'b (stopping) and a killed, then the parent goes on');
  t.deepEqual(lab.eventsOf('child-stopped').map((e) => [e.id, e.how]), [['b', 'killed'], ['a', 'killed'], ['inner', 'killed'], ['first', 'graceful']]);
  t.is(lab.clock.pending, 0);
});

test('child invariant 4: a grandchild killed with its supervisor in the middle of its own timed stop leaves no timer behind and is killed once', async (t) => {
  const lab = new Lab();
  const inner: SupervisorChildSpec = { kind: 'supervisor', id: 'inner', shutdown: 100, supervisor: { children: [lab.worker('y', { shutdown: 10_000 })] } };
  const sup = lab.supervisor({ id: 'root', children: [inner] });
  await sup.start();
  lab.hangStop('y');
  const stopping = sup.stop();
  await lab.settle(100);
  await stopping;
  t.is(lab.clock.pending, 0, "no timer of y's own graceful stop is left on the clock");
  await lab.settle(20_000);
  t.deepEqual(lab.log.filter((l) => l.startsWith('kill:')), ['kill:y'], 'killed once, not again when its own shutdown would have run out');
});

test('child invariant 4: a nested supervisor with shutdown brutal-kill is killed with its subtree at once, no child stopped gracefully', async (t) => {
  const lab = new Lab();
  const inner: SupervisorChildSpec = { kind: 'supervisor', id: 'inner', shutdown: 'brutal-kill', supervisor: { children: [lab.worker('a'), lab.worker('b')] } };
  const sup = lab.supervisor({ id: 'root', children: [inner] });
  await sup.start();
  await sup.stop();
  t.deepEqual(lab.log.filter((l) => l.startsWith('kill:') || l.startsWith('stop:')), ['kill:b', 'kill:a']);
  t.deepEqual(lab.eventsOf('supervisor-stopped').map((e) => e.path), ['root/inner', 'root'], 'the subtree ended before its parent');
});
