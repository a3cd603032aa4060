/**
 * The operations handler mounted as docs/operations.md shows: in Express under a path (it sees the
 * path stripped, and passes other requests on) and in Fastify (hijacked reply, `basePath`).
 */
import test from 'ava';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { createOpsHandler, definePipeline, silentLogger, startNode } from '../../lib/index.js';
import { counter } from '../helpers/counter.js';

const pipeline = definePipeline({ name: 'ops-frameworks', stages: [{ actor: counter, partitions: 1 }] });

test('in Express: app.use("/ops", handler) serves /ops/metrics, /ops/ready, /ops/tree, and the app keeps its own routes', async (t) => {
  const node = await startNode({ pipeline, logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = createOpsHandler({ node });
  t.teardown(() => ops.close());
  const app = express();
  app.use('/ops', ops);
  app.get('/ops/custom', (_req, res) => void res.send('mine'));
  app.get('/hello', (_req, res) => void res.send('hello'));
  const server = app.listen(0);
  t.teardown(() => server.close());
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const metrics = await fetch(`${base}/ops/metrics`);
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /^warden_node_up\{node="[^"]+"\} 1$/m);
  t.is((await fetch(`${base}/ops/ready`)).status, 200);
  t.like(await (await fetch(`${base}/ops/tree`)).json(), { pipeline: 'ops-frameworks' });
  t.is(await (await fetch(`${base}/ops/custom`)).text(), 'mine', 'a path the handler does not own goes to the next route');
  t.is(await (await fetch(`${base}/hello`)).text(), 'hello');
});

test('in Fastify: a hijacked reply with basePath "/ops" serves the endpoints', async (t) => {
  const node = await startNode({ pipeline, logger: silentLogger });
  t.teardown(() => node.stop());
  const ops = createOpsHandler({ node, basePath: '/ops' });
  t.teardown(() => ops.close());
  const app = Fastify();
  app.get('/ops/*', (req, reply) => {
    reply.hijack();
    ops(req.raw, reply.raw);
  });
  app.get('/hello', () => 'hello');
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const metrics = await fetch(`${base}/ops/metrics`);
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /^warden_inputs_applied_total\{/m);
  t.like(await (await fetch(`${base}/ops/health`)).json(), { status: 'up' });
  t.is((await fetch(`${base}/ops/nope`)).status, 404);
  t.is(await (await fetch(`${base}/hello`)).text(), 'hello');
});
