/**
 * Tracing (lib/core/tracing.ts) with an OpenTelemetry SDK registered and an in-memory exporter:
 * an input sent by a producer through three stages, the first of which makes a guarded call, is
 * one connected trace: every span shares the trace id and each one's parent is another of them.
 */
import test from 'ava';
import { context, propagation, trace, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { assign, emit, setup } from 'xstate';
import { defineActor, defineCall, definePipeline, fromCall, silentLogger, startNode } from '../../lib/index.js';

const exporter = new InMemorySpanExporter();

test.before(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});

test.after.always(() => {
  trace.disable();
  propagation.disable();
  context.disable();
});

const charge = defineCall('trace-charge', (input: { amount: number }) => Promise.resolve({ charged: input.amount }), { replace: true });

const orders = defineActor({
  name: 'orders',
  machine: setup({
    types: { context: {} as { amount: number }, events: {} as { type: 'place'; amount: number }, emitted: {} as { type: 'paid'; amount: number } },
    actors: { charge: fromCall(charge) },
  }).createMachine({
    initial: 'new',
    context: { amount: 0 },
    states: {
      new: { on: { place: { target: 'charging', actions: assign({ amount: ({ event }) => event.amount }) } } },
      charging: {
        invoke: { src: 'charge', input: ({ context: c }) => ({ amount: c.amount }), onDone: { target: 'paid', actions: emit(({ context: c }) => ({ type: 'paid' as const, amount: c.amount })) } },
      },
      paid: {},
    },
  }),
  events: { place: (p) => (typeof p.amount === 'number' ? true : 'amount must be a number') },
});

const ledger = defineActor({
  name: 'ledger',
  machine: setup({ types: { context: {} as { total: number }, events: {} as { type: 'paid'; amount: number }, emitted: {} as { type: 'posted'; total: number } } }).createMachine({
    context: { total: 0 },
    on: { paid: { actions: [assign({ total: ({ context: c, event }) => c.total + event.amount }), emit(({ context: c }) => ({ type: 'posted' as const, total: c.total }))] } },
  }),
});

const receipts = defineActor({
  name: 'receipts',
  machine: setup({ types: { context: {} as { n: number }, events: {} as { type: 'posted'; total: number } } }).createMachine({
    context: { n: 0 },
    on: { posted: { actions: assign({ n: ({ context: c }) => c.n + 1 }) } },
  }),
});

test('an input through three stages and a guarded call is one connected trace, from the producer’s span to the last stage', async (t) => {
  const pipeline = definePipeline({
    name: 'traced',
    stages: [
      { actor: orders, partitions: 2, to: 'ledger' },
      { actor: ledger, partitions: 2, to: 'receipts' },
      { actor: receipts, partitions: 1 },
    ],
  });
  const node = await startNode({ pipeline, logger: silentLogger });
  t.teardown(() => node.stop());
  const root = trace.getTracer('test').startSpan('checkout request', { kind: SpanKind.SERVER });
  await context.with(trace.setSpan(context.active(), root), () => node.ingest({ key: 'order-1', type: 'place', payload: { amount: 42 } }));
  root.end();
  await node.whenCaughtUp();
  t.is(((await node.readState('receipts', 'order-1'))?.context as { n: number }).n, 1);

  const spans = exporter.getFinishedSpans();
  const traceId = root.spanContext().traceId;
  const ours = spans.filter((s) => s.spanContext().traceId === traceId);
  const names = ours.map((s) => s.name).sort();
  t.deepEqual(names, ['call trace-charge', 'checkout request', 'process ledger', 'process orders', 'process orders', 'process receipts', 'send orders'].sort(), JSON.stringify(spans.map((s) => s.name)));
  t.is(ours.length, spans.length, 'every span is in this trace');
  const byId = new Map(ours.map((s) => [s.spanContext().spanId, s]));
  const parentOf = (s: ReadableSpan): ReadableSpan | undefined => (s.parentSpanContext ? byId.get(s.parentSpanContext.spanId) : undefined);
  for (const s of ours) if (s.name !== 'checkout request') t.truthy(parentOf(s), `${s.name} has its parent in the trace`);
  const one = (name: string): ReadableSpan => ours.find((s) => s.name === name)!;
  t.is(parentOf(one('send orders'))!.name, 'checkout request');
  t.is(one('send orders').kind, SpanKind.PRODUCER);
  const [placed, resolved] = ours.filter((s) => s.name === 'process orders').sort((a, b) => Number(a.attributes['warden.seq']) - Number(b.attributes['warden.seq']));
  t.is(parentOf(placed!)!.name, 'send orders');
  t.is(placed!.kind, SpanKind.CONSUMER);
  t.is(parentOf(one('call trace-charge'))!.name, 'process orders', 'the call runs under the input that started it');
  t.is(one('call trace-charge').kind, SpanKind.CLIENT);
  t.is(resolved!.attributes['warden.type'], 'warden.call', 'the call result is applied as a record');
  t.is(parentOf(one('process ledger'))!.name, 'process orders');
  t.is(parentOf(one('process ledger')), resolved, 'the output of the call result continues from it');
  t.is(parentOf(one('process receipts')), one('process ledger'));
  t.like(one('process ledger').attributes, { 'warden.stage': 'ledger', 'warden.type': 'paid' });
});
