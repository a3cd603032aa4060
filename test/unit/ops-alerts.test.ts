/**
 * Alerts as events and hooks (lib/observe/alerts.ts): each opens once per episode and is resolved
 * once when its condition ends.
 */
import test from 'ava';
import { SimulatedClock } from 'warden/testing';
import {
  defineCall,
  definePipeline,
  createLogger,
  silentLogger,
  startNode,
  watchAlerts,
  type NodeEvent,
  type PartitionStatus,
  type WardenAlert,
  type WardenNode,
} from '../../lib/index.js';
import { FlakyCheckpoints } from '../helpers/flaky-checkpoints.js';
import { counter } from '../helpers/counter.js';

/** A node whose status and events the test sets: what the watcher reads of a node. */
function fakeNode(): { node: WardenNode; lag: number; ageMs: number; appliedSeq: number; checkpointSeq: number; local: boolean; emit(e: NodeEvent): void } {
  const listeners = new Set<(e: NodeEvent) => void>();
  const state = {
    local: true,
    lag: 0,
    ageMs: 0,
    appliedSeq: 10,
    checkpointSeq: 5,
    emit: (e: NodeEvent) => listeners.forEach((l) => l(e)),
    node: undefined as unknown as WardenNode,
  };
  state.node = {
    nodeId: 'n1',
    on: (l: (e: NodeEvent) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    status: () => Promise.resolve([{ stage: 'orders', partition: 0, local: state.local, running: state.local, lag: state.lag, checkpointAgeMs: state.ageMs, appliedSeq: state.appliedSeq, checkpointSeq: state.checkpointSeq } as PartitionStatus]),
  } as unknown as WardenNode;
  return state;
}

test('lag above the bound opens one alert however many checks see it, and it is resolved once the lag is back under', async (t) => {
  const f = fakeNode();
  const clock = new SimulatedClock();
  const opened: WardenAlert[] = [];
  const resolved: WardenAlert[] = [];
  const w = watchAlerts(f.node, { logger: silentLogger, lagAbove: 100, clock, calls: false, onAlert: (a) => opened.push(a), onResolved: (a) => resolved.push(a) });
  t.teardown(() => w.stop());
  f.lag = 50;
  await w.check();
  t.is(opened.length, 0);
  f.lag = 500;
  await w.check();
  await w.check();
  t.is(opened.length, 1);
  t.like(opened[0], { alert: 'lag', severity: 'warning', node: 'n1', stage: 'orders', partition: 0, value: 500, bound: 100 });
  t.deepEqual(w.active().map((a) => a.alert), ['lag']);
  f.lag = 0;
  await w.check();
  t.is(resolved.length, 1);
  t.deepEqual(w.active(), []);
});

test('the watcher checks every pollMs on its clock; a stale checkpoint opens an alert; stop() ends every check and hook', async (t) => {
  const f = fakeNode();
  const clock = new SimulatedClock();
  const opened: WardenAlert[] = [];
  const w = watchAlerts(f.node, { logger: silentLogger, checkpointAgeMs: 60_000, pollMs: 1_000, clock, calls: false, onAlert: (a) => opened.push(a) });
  f.ageMs = 120_000;
  await clock.advanceAsync(999);
  t.is(opened.length, 0, 'not checked before pollMs');
  await clock.advanceAsync(1);
  t.deepEqual(opened.map((a) => a.alert), ['checkpoint-stale']);
  w.stop();
  f.lag = 1e9;
  await clock.advanceAsync(10_000);
  t.is(opened.length, 1, 'nothing after stop()');
});

test('an idle partition whose last checkpoint covers everything it applied is not stale, however old the checkpoint', async (t) => {
  const f = fakeNode();
  const clock = new SimulatedClock();
  const opened: WardenAlert[] = [];
  const resolved: WardenAlert[] = [];
  const w = watchAlerts(f.node, { logger: silentLogger, checkpointAgeMs: 60_000, pollMs: 1_000, clock, calls: false, onAlert: (a) => opened.push(a), onResolved: (a) => resolved.push(a) });
  t.teardown(() => w.stop());
  f.ageMs = 3_600_000;
  f.appliedSeq = f.checkpointSeq = 42;
  await clock.advanceAsync(5_000);
  t.deepEqual(opened, [], 'covered: no alert');
  f.appliedSeq = 43; // an input the checkpoint does not hold, and no checkpoint lands
  await clock.advanceAsync(1_000);
  t.deepEqual(opened.map((a) => a.alert), ['checkpoint-stale']);
  f.checkpointSeq = 43; // a checkpoint covers it (the age is the fake's, unchanged)
  await clock.advanceAsync(1_000);
  t.deepEqual(resolved.map((a) => a.alert), ['checkpoint-stale']);
});

test('bad bounds throw ConfigError naming the option', (t) => {
  const f = fakeNode();
  t.throws(() => watchAlerts(f.node, { lagAbove: -1 }), { message: /lagAbove/ });
  t.throws(() => watchAlerts(f.node, { pollMs: 0 }), { message: /pollMs/ });
});

test('lag and checkpoint-stale alerts of a partition handed over to another node are resolved: it is that node\'s to watch now', async (t) => {
  const f = fakeNode();
  const clock = new SimulatedClock();
  const opened: WardenAlert[] = [];
  const resolved: WardenAlert[] = [];
  const w = watchAlerts(f.node, { logger: silentLogger, lagAbove: 100, checkpointAgeMs: 60_000, clock, calls: false, onAlert: (a) => opened.push(a), onResolved: (a) => resolved.push(a) });
  t.teardown(() => w.stop());
  f.lag = 500;
  f.ageMs = 120_000;
  await w.check();
  t.deepEqual(opened.map((a) => a.alert).sort(), ['checkpoint-stale', 'lag']);
  f.local = false; // another node took the partition over; this node's last view of it stays behind
  await w.check();
  t.deepEqual(resolved.map((a) => a.alert).sort(), ['checkpoint-stale', 'lag']);
  t.deepEqual(w.active(), []);
  await w.check();
  t.is(opened.length, 2, 'nothing opens again for a partition this node does not run');
});

test('a hook that throws does not stop the watcher; the alert and the hook failure are logged', async (t) => {
  const f = fakeNode();
  let calls = 0;
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line) => void lines.push(JSON.parse(line) as { level: number; msg: string }) } });
  const w = watchAlerts(f.node, { lagAbove: 1, clock: new SimulatedClock(), calls: false, logger, onAlert: () => { calls++; throw new Error('pager down'); } });
  t.teardown(() => w.stop());
  f.lag = 5;
  await w.check();
  f.emit({ type: 'partition-down', stage: 'orders', partition: 0, code: 'LOG_TRUNCATED', error: 'gone' });
  t.is(calls, 2);
  t.true(lines.some((l) => l.level === 50 && l.msg.startsWith('alert: ')), 'each alert at error level');
  t.true(lines.some((l) => l.msg === 'alert hook threw'), 'the failing hook');
});

test('on a running node: failing checkpoints, dead letters and a guarded call failing in a row each open one alert, resolved when they end', async (t) => {
  const checkpointStore = new FlakyCheckpoints();
  const pipeline = definePipeline({ name: 'alerts-node', stages: [{ actor: counter, partitions: 1, checkpoint: { everyEvents: 1, intervalMs: 20 } }] });
  const node = await startNode({ pipeline, checkpointStore, logger: silentLogger });
  t.teardown(() => node.stop());
  const name = `alerts-call-${process.pid}`;
  let up = false;
  const call = defineCall(name, () => (up ? Promise.resolve(1) : Promise.reject(new Error('503'))), { retry: { retries: 0 }, alertAfter: 2, breaker: { volumeThreshold: 100 } });
  t.teardown(() => call.close());
  const opened: WardenAlert[] = [];
  const resolved: WardenAlert[] = [];
  const w = watchAlerts(node, { logger: silentLogger, checkpointFailures: 2, deadLetterQuietMs: 50, onAlert: (a) => opened.push(a), onResolved: (a) => resolved.push(a) });
  t.teardown(() => w.stop());

  checkpointStore.failing = true;
  for (let i = 0; i < 5; i++) await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await new Promise((r) => setTimeout(r, 300));
  t.is(opened.filter((a) => a.alert === 'checkpoint-failing').length, 1, 'one alert for the episode');
  checkpointStore.failing = false;
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await new Promise((r) => setTimeout(r, 200));
  t.is(resolved.filter((a) => a.alert === 'checkpoint-failing').length, 1);

  await node.ingest({ key: 'a', type: 'add', payload: { amount: 'x' } }); // fails the actor's payload check
  await node.transport.publish('alerts-node.counter.0', new TextEncoder().encode('not json'));
  await node.transport.publish('alerts-node.counter.0', new TextEncoder().encode('not json either'));
  await node.whenCaughtUp();
  const dl = opened.filter((a) => a.alert === 'dead-letters');
  t.is(dl.length, 1);
  t.is(dl[0]!.value, 1, 'onAlert got the alert as it opened (a copy the watcher does not change)');
  t.is(w.active().find((a) => a.alert === 'dead-letters')?.value, 3, 'the episode counts its dead letters');
  await new Promise((r) => setTimeout(r, 60));
  await w.check();
  const dlResolved = resolved.filter((a) => a.alert === 'dead-letters');
  t.is(dlResolved.length, 1, 'resolved after deadLetterQuietMs without one');
  t.is(dlResolved[0]!.value, 3, "onResolved gets the episode's total");

  for (let i = 0; i < 3; i++) await call.call(i).catch(() => undefined);
  // Other tests of this file define calls too, and the watcher sees every call of the process.
  t.deepEqual(opened.filter((a) => a.alert === 'call-failures' && a.subject === name).map((a) => a.subject), [name]);
  up = true;
  await call.call(9);
  t.deepEqual(resolved.filter((a) => a.alert === 'call-failures' && a.subject === name).map((a) => a.subject), [name]);
});

test('a partition restart does not make its checkpoint younger: the age keeps growing and checkpoint-stale stays open until a checkpoint lands', async (t) => {
  const checkpointStore = new FlakyCheckpoints();
  const pipeline = definePipeline({ name: 'alerts-stale-restart', stages: [{ actor: counter, partitions: 1, checkpoint: { everyEvents: 1, intervalMs: 20 } }] });
  const node = await startNode({ pipeline, checkpointStore, logger: silentLogger });
  t.teardown(() => node.stop());
  const opened: WardenAlert[] = [];
  const resolved: WardenAlert[] = [];
  const w = watchAlerts(node, { logger: silentLogger, checkpointAgeMs: 150, pollMs: 20, calls: false, checkpointFailures: 0, onAlert: (a) => opened.push(a), onResolved: (a) => resolved.push(a) });
  t.teardown(() => w.stop());
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  await new Promise((r) => setTimeout(r, 60)); // a checkpoint landed
  checkpointStore.failing = true;
  for (let i = 0; i < 6; i++) {
    await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
    await new Promise((r) => setTimeout(r, 40));
  }
  t.is(opened.filter((a) => a.alert === 'checkpoint-stale').length, 1, 'open while writes fail');
  const before = (await node.status())[0]!.checkpointAgeMs;
  node.kill('counter', 0);
  await new Promise((r) => setTimeout(r, 150));
  const after = (await node.status())[0]!;
  t.true(after.restarts >= 1, 'the partition restarted');
  t.true(after.checkpointAgeMs >= before, `age ${after.checkpointAgeMs} ms after the restart, ${before} ms before`);
  t.deepEqual(resolved.filter((a) => a.alert === 'checkpoint-stale'), [], 'not resolved by the restart');
  checkpointStore.failing = false;
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await new Promise((r) => setTimeout(r, 150));
  t.is(resolved.filter((a) => a.alert === 'checkpoint-stale').length, 1, 'resolved once a checkpoint lands');
  await new Promise((r) => setTimeout(r, 200)); // idle, everything covered: the age grows past the bound
  t.true((await node.status())[0]!.checkpointAgeMs > 150);
  t.is(opened.filter((a) => a.alert === 'checkpoint-stale').length, 1, 'an idle, covered partition does not open it again');
});

test('a bound of 0 turns its alert off: no dead-letters alert with deadLetterQuietMs 0, no lag alert with lagAbove 0', async (t) => {
  const f = fakeNode();
  const clock = new SimulatedClock();
  const opened: WardenAlert[] = [];
  const w = watchAlerts(f.node, { logger: silentLogger, deadLetterQuietMs: 0, lagAbove: 0, pollMs: 1_000, clock, calls: false, onAlert: (a) => opened.push(a) });
  t.teardown(() => w.stop());
  f.lag = 1e6;
  for (let i = 0; i < 3; i++) f.emit({ type: 'dead-letter', stage: 'orders', partition: 0, seq: i + 1, reason: 'schema', error: 'bad' });
  await clock.advanceAsync(5_000);
  t.deepEqual(opened, []);
});

test('a restart-intensity alert carries the restarts that crossed the intensity, and the intensity as its bound', (t) => {
  const f = fakeNode();
  const opened: WardenAlert[] = [];
  const w = watchAlerts(f.node, { logger: silentLogger, calls: false, onAlert: (a) => opened.push(a) });
  t.teardown(() => w.stop());
  f.emit({ type: 'escalated', path: 'orders', restarts: 2, intensity: 1, periodMs: 60_000, error: 'boom' });
  t.like(opened[0], { alert: 'restart-intensity', subject: 'orders', value: 2, bound: 1 });
});

test('with calls at their default, a guarded call defined after the watcher started raises call-failures too', async (t) => {
  const f = fakeNode();
  const opened: WardenAlert[] = [];
  const w = watchAlerts(f.node, { logger: silentLogger, onAlert: (a) => opened.push(a) });
  t.teardown(() => w.stop());
  const name = `late-call-${process.pid}`;
  const call = defineCall(name, () => Promise.reject(new Error('503')), { retry: { retries: 0 }, alertAfter: 2, breaker: { volumeThreshold: 100 } });
  t.teardown(() => call.close());
  for (let i = 0; i < 2; i++) await call.call(i).catch(() => undefined);
  const mine = (): WardenAlert[] => opened.filter((a) => a.subject?.startsWith(name)); // other tests' calls are seen too
  t.deepEqual(mine().map((a) => [a.alert, a.subject]), [['call-failures', name]]);
  w.stop();
  for (let i = 0; i < 3; i++) await call.call(i).catch(() => undefined);
  const later = defineCall(`${name}-after-stop`, () => Promise.reject(new Error('503')), { retry: { retries: 0 }, alertAfter: 1 });
  t.teardown(() => later.close());
  await later.call(0).catch(() => undefined);
  t.is(mine().length, 1, 'nothing after stop(), for calls defined before or after');
});
