/**
 * The supervisor's API around its children: references returned by `startChild`, `child(id)` and
 * `supervisorOf(id)` (nested supervisors reached through their parent), the codes of refused
 * calls, and `onFatal` on nested supervisors; all on the simulated clock. Titles cite the
 * invariants of lib/supervision/supervisor.ts ("supervisor invariant N") and
 * lib/supervision/child-ref.ts ("child-ref invariant N").
 */
import test, { type ExecutionContext } from 'ava';
import { ConfigError, WardenError } from '../../lib/core/errors.js';
import { SupervisorRefusedError } from '../../lib/supervision/errors.js';
import type { SupervisionEvent, SupervisorChildSpec, SupervisorOptions } from '../../lib/supervision/types.js';
import { Lab } from '../helpers/supervision-lab.js';

const HOUR = 3_600_000;

function nested(id: string, supervisor: SupervisorOptions, extra: Partial<SupervisorChildSpec> = {}): SupervisorChildSpec {
  return { kind: 'supervisor', id, supervisor, ...extra };
}

/** The error a call refused with: its class, code and details. */
async function refusal(t: ExecutionContext, call: Promise<unknown> | (() => unknown)): Promise<SupervisorRefusedError | undefined> {
  const err = typeof call === 'function' ? t.throws(call) : await t.throwsAsync(call);
  t.true(err instanceof SupervisorRefusedError, String(err));
  return err as SupervisorRefusedError | undefined;
}

// ---- codes of refused calls ----

test('supervisor invariant 2: each refused call carries a code to switch on, its OTP reason and the child and supervisor it names (OTP child_adm)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ id: 'svc', intensity: 5, periodMs: HOUR, children: [lab.worker('a'), lab.worker('b', { backoff: { minBackoffMs: 1_000, randomFactor: 0 } })] });
  const idle = await refusal(t, sup.startChild(lab.worker('x')));
  t.like(idle, { code: 'SUPERVISOR_NOT_RUNNING', reason: 'not running', details: { path: 'svc', id: 'x', state: 'idle', op: 'startChild', reason: 'not running' } });
  await sup.start();

  t.like(await refusal(t, sup.terminateChild('nope')), { code: 'CHILD_NOT_FOUND', reason: 'not found', details: { id: 'nope', path: 'svc' } });
  t.like(await refusal(t, () => sup.child('nope')), { code: 'CHILD_NOT_FOUND', reason: 'not found' });
  t.like(await refusal(t, () => sup.supervisorOf('a')), { code: 'CHILD_NOT_FOUND', reason: 'not a supervisor', message: 'child "a" not a supervisor (supervisor svc)' });
  t.like(await refusal(t, sup.startChild(lab.worker('a'))), { code: 'CHILD_EXISTS', reason: 'already started', details: { id: 'a' } });
  t.like(await refusal(t, sup.restartChild('a')), { code: 'CHILD_RUNNING', reason: 'running' });
  t.like(await refusal(t, sup.deleteChild('a')), { code: 'CHILD_RUNNING', reason: 'running' });
  await sup.terminateChild('a');
  t.like(await refusal(t, sup.startChild(lab.worker('a'))), { code: 'CHILD_EXISTS', reason: 'already present' });

  lab.w('b').crash(); // waits 1 s for its restart
  await lab.settle();
  t.like(await refusal(t, sup.restartChild('b')), { code: 'CHILD_RESTARTING', reason: 'restarting', details: { id: 'b', path: 'svc' } });
  t.like(await refusal(t, sup.deleteChild('b')), { code: 'CHILD_RESTARTING', reason: 'restarting' });

  await sup.stop();
  for (const [call, id] of [[sup.startChild(lab.worker('c')), 'c'], [sup.terminateChild('a'), 'a'], [sup.restartChild('a'), 'a'], [sup.deleteChild('a'), 'a']] as const) {
    const err = await refusal(t, call);
    t.like(err, { code: 'SUPERVISOR_NOT_RUNNING', details: { path: 'svc', id, state: 'stopped' } });
    t.true(err instanceof WardenError);
  }
});

// ---- onFatal on a nested supervisor ----

test('a nested supervisor with onFatal is refused at resolution with a ConfigError naming the field: only the root\'s onFatal is called (OTP: only the top supervisor\'s exit reaches the application)', async (t) => {
  const onFatal = (): void => undefined;
  const lab = new Lab();
  const direct = t.throws(() => lab.supervisor({ children: [nested('stage', { onFatal })] }), { instanceOf: ConfigError });
  t.is(direct?.field, 'children[0].supervisor.onFatal');
  t.regex(direct?.message ?? '', /only the root's onFatal/);
  const deep = t.throws(() => lab.supervisor({ children: [nested('stage', { children: [nested('inner', { onFatal })] })] }), { instanceOf: ConfigError });
  t.is(deep?.field, 'children[0].supervisor.children[0].supervisor.onFatal');

  const sup = lab.supervisor();
  await sup.start();
  const dynamic = await t.throwsAsync(sup.startChild(nested('late', { onFatal })), { instanceOf: ConfigError });
  t.is(dynamic?.field, 'spec.supervisor.onFatal');
  t.deepEqual(sup.whichChildren(), []);
  await sup.stop();
});

// ---- references ----

test('startChild resolves to a reference to a worker: id, path, its whichChildren row and the handle of its current incarnation, across restarts (child-ref invariant 1)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ id: 'svc', intensity: 5, periodMs: HOUR });
  await sup.start();
  const ref = await sup.startChild(lab.worker('poller', { restart: 'transient' }));
  t.like(ref, { id: 'poller', path: 'svc/poller', kind: 'worker' });
  t.deepEqual(ref.info(), { id: 'poller', kind: 'worker', status: 'running', restart: 'transient' });
  const first = ref.handle();
  t.is(typeof first?.stop, 'function');
  lab.w('poller').crash();
  await lab.settle();
  t.not(ref.handle(), first, 'the handle of the new incarnation');
  const again = sup.child('poller');
  t.is(again.kind === 'worker' ? again.handle() : undefined, ref.handle(), 'child(id) reaches the same incarnation');
  await sup.terminateChild('poller');
  t.is(ref.handle(), undefined);
  t.is(ref.info()?.status, 'terminated');
  await sup.deleteChild('poller');
  t.is(ref.info(), undefined);
  await sup.stop();
});

test('startChild of a supervisor spec resolves to a SupervisorRef that adds, terminates, restarts and deletes children of the nested supervisor and sees its tree and events', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ id: 'svc', intensity: 5, periodMs: HOUR });
  await sup.start();
  const ingest = await sup.startChild(nested('ingest', { strategy: 'one-for-all', intensity: 3, periodMs: HOUR, children: [lab.worker('reader')] }));
  t.like(ingest, { id: 'ingest', path: 'svc/ingest', kind: 'supervisor' });
  const seen: SupervisionEvent[] = [];
  ingest.on((e) => seen.push(e));

  const parser = await ingest.startChild(lab.worker('parser'));
  t.like(parser, { id: 'parser', path: 'svc/ingest/parser', kind: 'worker' });
  t.deepEqual(ingest.whichChildren().map((c) => [c.id, c.status]), [['reader', 'running'], ['parser', 'running']]);
  t.deepEqual(ingest.countChildren(), { specs: 2, active: 2, supervisors: 0, workers: 2 });
  t.like(ingest.tree(), { id: 'ingest', path: 'svc/ingest', kind: 'supervisor', status: 'running', info: { strategy: 'one-for-all' } });
  t.deepEqual(sup.tree().children?.[0]?.children?.map((c) => c.path), ['svc/ingest/reader', 'svc/ingest/parser'], 'the root sees the added child');

  await ingest.terminateChild('parser');
  await ingest.restartChild('parser');
  await ingest.terminateChild('parser');
  await ingest.deleteChild('parser');
  t.deepEqual(ingest.whichChildren().map((c) => c.id), ['reader']);
  t.like(await refusal(t, ingest.deleteChild('parser')), { code: 'CHILD_NOT_FOUND', details: { path: 'svc/ingest', id: 'parser' } });
  t.deepEqual(lab.since(0), ['start:reader', 'start:parser', 'stop:parser', 'start:parser', 'stop:parser']);
  t.deepEqual(seen.map((e) => `${e.type} ${e.path}`), [
    'child-started svc/ingest/parser',
    'child-stopped svc/ingest/parser',
    'child-started svc/ingest/parser',
    'child-stopped svc/ingest/parser',
  ]);
  await sup.stop();
  t.deepEqual(seen.slice(4).map((e) => `${e.type} ${e.path}`), ['child-stopped svc/ingest/reader', 'supervisor-stopped svc/ingest'], 'its own stop, not the parent\'s child-stopped about it');
});

test('supervisorOf reaches a nested supervisor of the static spec, two levels down too; the reference and its listener follow it across restarts (child-ref invariants 1, 3)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({
    id: 'node',
    intensity: 5,
    periodMs: HOUR,
    children: [nested('stage', { intensity: 0, children: [lab.worker('p0'), nested('inner', { children: [lab.worker('deep')] })] })],
  });
  await sup.start();
  const stage = sup.supervisorOf('stage');
  const inner = stage.supervisorOf('inner');
  t.is(inner.path, 'node/stage/inner');
  t.deepEqual(inner.whichChildren().map((c) => c.id), ['deep']);
  const seen: string[] = [];
  stage.on((e) => seen.push(`${e.type} ${e.path}`));
  await stage.startChild(lab.worker('extra'));

  lab.w('p0').crash(); // intensity 0: the stage gives up; the node restarts it from its spec
  await lab.settle();
  t.true(seen.includes('escalated node/stage'));
  t.is(lab.eventsOf('child-crashed').at(-1)?.path, 'node/stage');
  t.deepEqual(stage.whichChildren().map((c) => [c.id, c.status]), [['p0', 'running'], ['inner', 'running']], 'the new incarnation, from its spec: the added child is gone (OTP)');
  t.deepEqual(inner.whichChildren().map((c) => [c.id, c.status]), [['deep', 'running']], 'a reference two levels down follows the restart');
  t.like(stage.tree(), { status: 'running', restarts: 1 });

  const mark = seen.length;
  lab.w('deep').crash();
  await lab.settle();
  t.deepEqual(seen.slice(mark, mark + 2), ['child-crashed node/stage/inner/deep', 'child-restarting node/stage/inner/deep'], 'the listener survived the restart');
  await sup.stop();
});

test('a SupervisorRef refuses with SUPERVISOR_NOT_RUNNING while its supervisor waits to be restarted, shows it as restarting in tree(), and with CHILD_NOT_FOUND once deleted (child-ref invariant 2)', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({
    id: 'node',
    intensity: 5,
    periodMs: HOUR,
    children: [nested('stage', { intensity: 0, children: [lab.worker('p0')] }, { backoff: { minBackoffMs: 1_000, randomFactor: 0 } })],
  });
  await sup.start();
  const stage = sup.supervisorOf('stage');
  lab.w('p0').crash();
  await lab.settle(500);
  t.is(stage.info()?.status, 'restarting');
  t.like(await refusal(t, stage.startChild(lab.worker('x'))), { code: 'SUPERVISOR_NOT_RUNNING', details: { path: 'node/stage', state: 'restarting', op: 'startChild' } });
  t.like(await refusal(t, () => stage.whichChildren()), { code: 'SUPERVISOR_NOT_RUNNING' });
  t.like(await refusal(t, () => stage.child('p0')), { code: 'SUPERVISOR_NOT_RUNNING' });
  t.like(stage.tree(), { path: 'node/stage', status: 'restarting', restarts: 1 });
  await lab.settle(500);
  t.deepEqual(stage.whichChildren().map((c) => c.status), ['running'], 'served again once restarted');

  await sup.terminateChild('stage');
  t.like(await refusal(t, stage.terminateChild('p0')), { code: 'SUPERVISOR_NOT_RUNNING', details: { state: 'terminated' } });
  await sup.deleteChild('stage');
  t.is(stage.info(), undefined);
  t.like(await refusal(t, stage.restartChild('p0')), { code: 'CHILD_NOT_FOUND', details: { path: 'node', id: 'stage' } });
  t.like(await refusal(t, () => stage.tree()), { code: 'CHILD_NOT_FOUND' });
  await sup.stop();
});

test('child(id) returns a reference narrowed by kind; startChild types a supervisor spec as a SupervisorRef', async (t) => {
  const lab = new Lab();
  const sup = lab.supervisor({ children: [lab.worker('a'), nested('s', { children: [lab.worker('b')] })] });
  await sup.start();
  const a = sup.child('a');
  const s = sup.child('s');
  t.is(a.kind, 'worker');
  t.is(s.kind, 'supervisor');
  if (s.kind === 'supervisor') t.deepEqual(s.whichChildren().map((c) => c.id), ['b']);
  if (a.kind !== 'supervisor') t.is(typeof a.handle()?.stop, 'function');
  const added = await sup.startChild(nested('t', {}));
  const grand = await added.startChild(nested('u', { children: [lab.worker('c')] }));
  t.is(grand.path, 'root/t/u');
  t.deepEqual(grand.whichChildren().map((c) => c.id), ['c']);
  await sup.stop();
  t.deepEqual(lab.log.filter((l) => l.startsWith('stop:')), ['stop:c', 'stop:b', 'stop:a']);
});
