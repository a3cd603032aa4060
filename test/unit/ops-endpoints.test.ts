/**
 * The operations endpoints of a node, read over HTTP as Prometheus and a load balancer would:
 * crashes, restarts, dead letters, an open breaker and failing checkpoints each move the metrics
 * they should; /health, /ready and /tree answer (lib/observe).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import {
  createOpsHandler,
  defineCall,
  definePipeline,
  InMemoryCheckpointStore,
  InMemoryLeaseStore,
  InMemoryTransport,
  registerNodeMetrics,
  silentLogger,
  startNode,
  type CheckpointStore,
  type OpsHandlerOptions,
  type WardenNode,
} from '../../lib/index.js';
import { FlakyCheckpoints } from '../helpers/flaky-checkpoints.js';
import { counter, tally } from '../helpers/counter.js';
import { metric, total } from '../helpers/prom-text.js';
import { runTree } from '../../lib/cli/commands/tree.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Serves `createOpsHandler` on a loopback port; `get(path)` answers status, headers and body. */
async function serve(options: OpsHandlerOptions): Promise<{ get(path: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: string }>; url(path: string): string; server: Server }> {
  const handler = createOpsHandler(options);
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    async get(path, init) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
      return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
    },
  };
}

function pipelineOf(name: string) {
  return definePipeline({ name, stages: [{ actor: counter, partitions: 2, to: 'tally', checkpoint: { everyEvents: 5, intervalMs: 50 } }, { actor: tally, partitions: 1 }] });
}

async function ingest(node: WardenNode, from: number, to: number, amount: (i: number) => number = () => 1): Promise<void> {
  for (let i = from; i < to; i++) await node.ingest({ key: `k${i % 4}`, type: 'add', payload: { amount: amount(i) }, id: `in-${i}` });
}

test('inputs applied, outputs published, lag, offsets and the latency histogram are on /metrics with node, stage and partition labels, and no key', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-basic'), logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node });
  t.teardown(() => ops.server.close());
  await ingest(node, 0, 20);
  await node.whenCaughtUp();
  const res = await ops.get('/metrics');
  t.is(res.status, 200);
  t.regex(res.type ?? '', /^text\/plain/);
  const page = res.body;
  t.is(total(page, 'warden_inputs_applied_total', { stage: 'counter' }), 20);
  t.is(total(page, 'warden_inputs_applied_total', { stage: 'tally' }), 20, 'each counter input emits one output the tally applies');
  t.is(total(page, 'warden_outputs_published_total', { stage: 'counter' }), 20);
  t.is(total(page, 'warden_lag_inputs'), 0);
  t.is(metric(page, 'warden_applied_offset', { stage: 'tally', partition: 0, node: node.nodeId }), 20);
  t.is(metric(page, 'warden_processing_latency_seconds_count', { stage: 'counter' }), 20);
  t.is(metric(page, 'warden_processing_latency_seconds_bucket', { stage: 'counter', le: '+Inf' }), 20);
  t.is(metric(page, 'warden_node_up', { node: node.nodeId }), 1);
  t.is(metric(page, 'warden_partition_running', { stage: 'counter', partition: 1 }), 1);
  t.false(/k[0-3]/.test(page.replace(/\bwarden_[a-z_]+/g, '')), 'no key appears in a label');
  t.is(metric(page, 'warden_leases_held'), undefined, 'a node alone holds no leases');
});

test('an actor crash, a poisoned input dead-lettered and a killed partition worker each move their counters', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-faults'), logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node });
  t.teardown(() => ops.server.close());
  await ingest(node, 0, 8);
  await node.whenCaughtUp();
  const before = (await ops.get('/metrics')).body;
  t.is(total(before, 'warden_actor_crashes_total'), 0);
  t.is(total(before, 'warden_dead_letters_total'), 0);
  t.is(total(before, 'warden_partition_restarts_total'), 0);

  await ingest(node, 8, 9, () => 666); // crashes the counter every time: restarted, then dead-lettered
  await node.whenCaughtUp();
  const afterPoison = (await ops.get('/metrics')).body;
  t.true(total(afterPoison, 'warden_actor_crashes_total', { stage: 'counter' }) >= 1);
  t.is(total(afterPoison, 'warden_dead_letters_total', { stage: 'counter', reason: 'crashed' }), 1);

  const partition = (await node.status()).find((p) => p.stage === 'counter' && p.applied > 0)!.partition;
  node.kill('counter', partition);
  await sleep(100);
  await ingest(node, 9, 13);
  await node.whenCaughtUp();
  const afterKill = (await ops.get('/metrics')).body;
  t.is(metric(afterKill, 'warden_partition_restarts_total', { stage: 'counter', partition }), 1);
  const applied = total(afterKill, 'warden_inputs_applied_total', { stage: 'counter' });
  // Not reset by the restart; inputs after the partition's last checkpoint are applied again by its replay, and counted again.
  t.true(applied >= 13 && applied <= 13 + 9, `inputs applied across the restart: ${applied}`);
});

test('an open breaker shows as warden_call_breaker_state{state="open"} 1', async (t) => {
  const name = `ops-breaker-${process.pid}`;
  const call = defineCall(name, () => Promise.reject(new Error('down')), { retry: { retries: 0 }, breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 } });
  t.teardown(() => call.close());
  const node = await startNode({ pipeline: pipelineOf('ops-breaker'), logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node });
  t.teardown(() => ops.server.close());
  t.is(metric((await ops.get('/metrics')).body, 'warden_call_breaker_state', { call: name, state: 'closed' }), 1);
  for (let i = 0; i < 3; i++) await call.call(i).catch(() => undefined);
  const page = (await ops.get('/metrics')).body;
  t.is(metric(page, 'warden_call_breaker_state', { call: name, state: 'open' }), 1);
  t.is(metric(page, 'warden_call_breaker_state', { call: name, state: 'closed' }), 0);
  t.true((metric(page, 'warden_call_failed_calls_total', { call: name }) ?? 0) >= 2);
});

test('failing checkpoints move the failure counter and the checkpoint age grows', async (t) => {
  const checkpointStore = new FlakyCheckpoints();
  const node = await startNode({ pipeline: pipelineOf('ops-cp'), checkpointStore, logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node });
  t.teardown(() => ops.server.close());
  await ingest(node, 0, 10);
  await node.whenCaughtUp();
  await sleep(150);
  const ok = (await ops.get('/metrics')).body;
  t.true(total(ok, 'warden_checkpoints_total') > 0);
  t.is(total(ok, 'warden_checkpoint_failures_total'), 0);
  t.true((metric(ok, 'warden_checkpoint_duration_seconds_count', { stage: 'counter' }) ?? 0) > 0);
  checkpointStore.failing = true;
  await ingest(node, 10, 20);
  await sleep(400);
  const failing = (await ops.get('/metrics')).body;
  t.true(total(failing, 'warden_checkpoint_failures_total', { stage: 'counter' }) > 0, 'failures counted');
  const ages = [0, 1].map((p) => metric(failing, 'warden_checkpoint_age_seconds', { stage: 'counter', partition: p }) ?? 0);
  t.true(Math.max(...ages) >= 0.3, `checkpoint age grows while writes fail: ${ages.join(', ')} s`);
  checkpointStore.failing = false;
});

test('/health is 200 while the node runs and 503 once it stopped; /tree is the supervision tree as JSON', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-health'), logger: silentLogger });
  const ops = await serve({ node, registry: false });
  t.teardown(() => ops.server.close());
  const up = await ops.get('/health');
  t.is(up.status, 200);
  t.like(JSON.parse(up.body), { status: 'up', node: node.nodeId });
  const tree = JSON.parse((await ops.get('/tree')).body) as { pipeline: string; tree: { id: string; children: Array<{ id: string; children: Array<{ id: string; restarts: number; status: string }> }> } };
  t.is(tree.pipeline, 'ops-health');
  t.deepEqual(tree.tree.children.map((c) => c.id), ['counter', 'tally']);
  t.deepEqual(tree.tree.children[0]!.children.map((c) => [c.id, c.status, c.restarts]), [['partition-0', 'running', 0], ['partition-1', 'running', 0]]);
  t.is((await ops.get('/metrics')).status, 404, 'registry: false serves no /metrics');
  await node.stop();
  const down = await ops.get('/health');
  t.is(down.status, 503);
  t.like(JSON.parse(down.body), { status: 'down' });
  t.is((await ops.get('/ready')).status, 503);
});

test('a stopped node on the embedded default (its transport closed with it) still serves /metrics: warden_node_up 0 and the counts it ended with', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-stopped'), logger: silentLogger });
  const ops = await serve({ node });
  t.teardown(() => ops.server.close());
  await ingest(node, 0, 6);
  await node.whenCaughtUp();
  await node.stop();
  const page = await ops.get('/metrics');
  t.is(page.status, 200, page.body);
  t.is(metric(page.body, 'warden_node_up', { node: node.nodeId }), 0);
  t.is(total(page.body, 'warden_inputs_applied_total', { stage: 'counter' }), 6);
  const m = await node.metrics();
  t.true(m.stopped);
  t.deepEqual((await node.status()).map((p) => `${p.stage}/${p.partition}`), ['counter/0', 'counter/1', 'tally/0']);
  t.is(node.inspect('counter', 'k1')?.status, 'stopped');
  await t.throwsAsync(node.readState('counter', 'k1'), { code: 'TRANSPORT_CLOSED' });
});

test('the handler answers only its paths: others are 404 (or next() in Express), other methods 405, and basePath is stripped', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-paths'), logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node, basePath: '/ops' });
  t.teardown(() => ops.server.close());
  t.is((await ops.get('/ops/health')).status, 200);
  t.is((await ops.get('/health')).status, 404, 'outside basePath');
  t.is((await ops.get('/ops/nope')).status, 404);
  const post = await ops.get('/ops/metrics', { method: 'POST' });
  t.is(post.status, 405);
  const head = await ops.get('/ops/ready', { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.body, '');
  let nexted = 0;
  const handler = createOpsHandler({ node, registry: false });
  handler({ url: '/elsewhere', method: 'GET' } as never, {} as never, () => nexted++);
  t.is(nexted, 1, 'a path that is not its own goes to next()');
  t.throws(() => createOpsHandler({ node, basePath: 'ops' }), { message: /basePath/ });
  t.throws(() => createOpsHandler({ node, readiness: { maxLag: -1 } }), { message: /maxLag/ });
});

test('registerNodeMetrics on a user registry: the names are warden_*, a second registration throws naming the metric, and the remover removes them', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-registry'), logger: silentLogger });
  t.teardown(() => node.stop());
  const registry = new Registry();
  const remove = registerNodeMetrics(registry, node, { calls: false });
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
  t.true(names.length > 20);
  t.true(names.every((n) => n.startsWith('warden_')));
  t.false(names.some((n) => n.startsWith('warden_call_')), 'calls: false registers no call metrics');
  t.throws(() => registerNodeMetrics(registry, node), { message: /already has a metric named warden_inputs_applied_total/ });
  t.is((await registry.getMetricsAsJSON()).length, names.length, 'a refused registration adds nothing');
  remove();
  t.is((await registry.getMetricsAsJSON()).length, 0);
  t.throws(() => registerNodeMetrics(registry, node, { prefix: 'bad prefix' }), { message: /prefix/ });
});

/** A checkpoint store whose restores (reads) wait for `gate` while it is set. */
class SlowRestores extends InMemoryCheckpointStore {
  gate: Promise<void> | undefined;
  override async readMeta(...args: Parameters<CheckpointStore['readMeta']>): ReturnType<CheckpointStore['readMeta']> {
    if (this.gate) await this.gate;
    return super.readMeta(...args);
  }
}

test('/ready is 503 while a node restores the partitions it took over, and 200 once it has caught up', async (t) => {
  const transport = new InMemoryTransport();
  const checkpointStore = new SlowRestores();
  const leases = new InMemoryLeaseStore({ ttlMs: 400 });
  const pipeline = pipelineOf('ops-ready');
  const start = (nodeId: string): Promise<WardenNode> => startNode({ pipeline, transport, checkpointStore, logger: silentLogger, cluster: { leases, nodeId } });
  const a = await start('a');
  const b = await start('b');
  t.teardown(() => b.stop());
  await sleep(300);
  const ops = await serve({ node: b, registry: false, readiness: { maxLag: 0 } });
  t.teardown(() => ops.server.close());
  await ingest(a, 0, 20);
  await Promise.all([a.whenCaughtUp(), b.whenCaughtUp()]);
  const before = await ops.get('/ready');
  t.is(before.status, 200, before.body);
  let open!: () => void;
  checkpointStore.gate = new Promise((resolve) => (open = resolve));
  await a.stop(); // hands its partitions over: b takes them and restores them, slowly
  let sawStarting = false;
  for (let i = 0; i < 50 && !sawStarting; i++) {
    const r = await ops.get('/ready');
    const body = JSON.parse(r.body) as { ready: boolean; notReady: Array<{ why: string }> };
    if (r.status === 503 && body.notReady.some((n) => n.why === 'starting')) sawStarting = true;
    else await sleep(20);
  }
  t.true(sawStarting, '/ready said 503 (starting) while the takeover restored');
  checkpointStore.gate = undefined;
  open();
  await b.whenCaughtUp();
  const after = await ops.get('/ready');
  t.is(after.status, 200, after.body);
  const body = JSON.parse(after.body) as { partitions: number };
  t.is(body.partitions, 3, 'b runs every partition now');
});

test('the sample Prometheus alert rules name only metrics a node exports', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-rules'), logger: silentLogger });
  t.teardown(() => node.stop());
  const registry = new Registry();
  registerNodeMetrics(registry, node);
  const exported = new Set((await registry.getMetricsAsJSON()).flatMap((m) => [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]));
  const rules = readFileSync('docs/examples/prometheus-alerts.yml', 'utf8');
  const used = new Set([...rules.matchAll(/\b(warden_[a-z_]+)/g)].map((m) => m[1]!));
  t.true(used.size >= 10, `${used.size} metrics used`);
  for (const name of used) t.true(exported.has(name), `${name} is exported`);
  t.is((rules.match(/^ {6}- alert: /gm) ?? []).length, 12);
});

test('warden tree prints the live tree of a node from its /tree endpoint, with states and restarts', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-tree'), logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node, registry: false });
  t.teardown(() => ops.server.close());
  node.kill('counter', 1);
  await sleep(200);
  const { port } = ops.server.address() as AddressInfo;
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  t.is(await runTree(`http://127.0.0.1:${port}/`, {}, io), 0);
  t.regex(out, /^node .+, pipeline ops-tree$/m);
  t.regex(out, /^ops-tree {2}running/m);
  t.regex(out, /^├─ counter {2}running/m);
  t.regex(out, /^│ {2}└─ partition-1 {2}running {2}restarts 1/m);
  t.regex(out, /^└─ tally {2}running/m);
  let err = '';
  t.is(await runTree('http://127.0.0.1:1', {}, { out: () => undefined, err: (s) => void (err += s) }), 2);
  t.regex(err, /^warden tree: /);
});

test('metrics: false leaves the latency histogram empty and keeps every counter; a value that is not a boolean is refused at start', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-nometrics'), logger: silentLogger, metrics: false });
  t.teardown(() => node.stop());
  await ingest(node, 0, 6);
  await node.whenCaughtUp();
  const m = await node.metrics();
  t.is(m.stages.find((s) => s.stage === 'counter')!.latency.count, 0);
  t.is(m.partitions.filter((p) => p.stage === 'counter').reduce((n, p) => n + p.totals.applied, 0), 6);
  await t.throwsAsync(startNode({ pipeline: pipelineOf('ops-badmetrics'), logger: silentLogger, metrics: 'yes' as never }), { message: /metrics/ });
});

test('docs/operations.md names every metric a node registers, and only those', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-doclist'), logger: silentLogger });
  t.teardown(() => node.stop());
  const registry = new Registry();
  registerNodeMetrics(registry, node, { calls: false });
  const registered = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  const doc = readFileSync('docs/operations.md', 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `(warden_[a-z_]+)` \|/gm)].map((m) => m[1]!));
  t.deepEqual([...registered].filter((n) => !documented.has(n)), [], 'registered but not documented');
  t.deepEqual([...documented].filter((n) => !registered.has(n)), [], 'documented but not registered');
});

test('/tree and /events show the key of an actor that crashed, and no key of an actor that never did', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-keys'), logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node, registry: false });
  t.teardown(() => ops.server.close());
  await node.ingest({ key: 'secret-customer-a', type: 'add', payload: { amount: 1 } });
  await node.ingest({ key: 'crashy', type: 'add', payload: { amount: 666 } }); // crashes the counter every time
  await node.whenCaughtUp();
  const tree = (await ops.get('/tree')).body;
  t.true(tree.includes('"crashy"'), 'the crashed actor is listed by key');
  t.false(tree.includes('secret-customer-a'), 'a quiet actor is not');
  const controller = new AbortController();
  const res = await fetch(ops.url('/events'), { signal: controller.signal });
  const reader = res.body!.getReader();
  let first = '';
  while (!first.includes('\n\n')) first += new TextDecoder().decode((await reader.read()).value as Uint8Array);
  controller.abort();
  t.true(first.includes('event: snapshot') && first.includes('"crashy"'));
  t.false(first.includes('secret-customer-a'));
});

test.serial('/events sends a snapshot on a breaker transition of a guarded call defined after the handler (serial: no call of another test may poke it)', async (t) => {
  const node = await startNode({ pipeline: pipelineOf('ops-late-call'), logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = await serve({ node, registry: false, live: { refreshMs: 600_000 } }); // no periodic snapshot: only changes send one
  t.teardown(() => ops.server.close());
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const res = await fetch(ops.url('/events'), { signal: controller.signal });
  const reader = res.body!.getReader();
  let text = '';
  const snapshots = (): string[] => text.split('\n\n').filter((s) => s.includes('event: snapshot'));
  while (snapshots().length < 1) text += new TextDecoder().decode((await reader.read()).value as Uint8Array);
  const name = `late-breaker-${process.pid}`;
  const call = defineCall(name, () => Promise.reject(new Error('503')), { retry: { retries: 0 }, breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 } });
  t.teardown(() => call.close());
  for (let i = 0; i < 3; i++) await call.call(i).catch(() => undefined);
  t.is(call.breakerState, 'open');
  const shown = (): boolean => snapshots().some((s) => s.includes(name) && s.includes('"open"'));
  const deadline = Date.now() + 5_000; // far below the refresh period: only the transition can send it
  while (!shown() && Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 250))]);
    if (chunk?.value) text += new TextDecoder().decode(chunk.value as Uint8Array);
  }
  t.true(shown(), 'a snapshot showed the open breaker without waiting for the periodic refresh');
});
