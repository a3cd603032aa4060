/**
 * JetStreamTransport across a nats-server crash (SIGKILL) and restart on the same port and data
 * (`chaos/servers.ts`): publishes retried with their msgId land exactly once, and an ordered
 * reader yields every stored message once, in order, across the restart (adapter invariants
 * 1-3; port invariants 1-3).
 */
import test from 'ava';
import { JetStreamTransport, type JetStreamTransportEvent } from '../../lib/adapters/nats/index.js';
import { startNatsServer } from '../../chaos/servers.js';
import type { StoredMessage } from '../../lib/transport/transport.js';

const N = 5_000;
const WINDOW = 256;

test('5,000 msgId publishes and a concurrent reader survive a SIGKILL + restart of the server: each message stored and read exactly once, in order', async (t) => {
  t.timeout(120_000);
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  const transport = await JetStreamTransport.connect({
    servers: nats.url, publishTimeoutMs: 1_000, publishRetry: { initialMs: 50, maxMs: 500 }, reconnectTimeWaitMs: 100, reconnectJitterMs: 100,
  });
  t.teardown(() => transport.close());
  const events: JetStreamTransportEvent[] = [];
  transport.on((e) => events.push(e));
  await transport.ensureStream({ name: 'restart', subjects: ['restart.>'] });

  const t0 = Date.now();
  // The reader consumes while the publisher runs.
  const reader = transport.openReader('restart', { startSeq: 1 });
  const read: StoredMessage[] = [];
  const reading = (async () => {
    while (read.length < N) read.push(...(await reader.next(500, 1_000)));
  })();

  // The publisher keeps up to WINDOW publishes in flight; the server is killed half-way and restarted
  // 700 ms later (publishes time out and are retried meanwhile).
  let acked = 0;
  let killed: Promise<void> | undefined;
  const inFlight = new Set<Promise<unknown>>();
  const failures: unknown[] = [];
  for (let i = 0; i < N; i++) {
    while (inFlight.size >= WINDOW) await Promise.race(inFlight);
    const p: Promise<unknown> = transport.publish(`restart.${i % 8}`, new TextEncoder().encode(String(i)), { msgId: `m-${i}` }).then(
      () => {
        acked++;
        if (acked === N / 2) {
          t.log(`${Date.now() - t0} ms: killing at ${acked} acked, ${read.length} read`);
          killed = nats.kill().then(() => new Promise((resolve) => setTimeout(resolve, 700))).then(() => nats.restart()).then(() => t.log(`${Date.now() - t0} ms: restarted; ${acked} acked, ${read.length} read`));
        }
      },
      (err: unknown) => failures.push(err),
    ).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  await killed;
  t.log(`${Date.now() - t0} ms: all acked; ${read.length} read`);
  t.deepEqual(failures, []);
  t.is(acked, N);

  await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error(`reader stuck at ${read.length}`)), 60_000))]);
  t.log(`${Date.now() - t0} ms: all read`);
  t.is(read.length, N);
  t.deepEqual(read.map((m) => m.seq), Array.from({ length: N }, (_, i) => i + 1), 'every stored message once, in sequence order');
  const bodies = new Set(read.map((m) => new TextDecoder().decode(m.data)));
  t.is(bodies.size, N, 'no message stored twice');
  t.true(read.every((m) => m.msgId === `m-${new TextDecoder().decode(m.data)}`));
  t.like(await transport.streamInfo('restart'), { firstSeq: 1, lastSeq: N, messages: N });
  t.true(events.some((e) => e.type === 'disconnected'), JSON.stringify(events));
  t.true(events.some((e) => e.type === 'reconnected'), JSON.stringify(events));
  t.true(transport.stats().retries > 0, 'publishes in flight at the crash were sent again');
  t.log(`retries ${transport.stats().retries}, duplicates ${transport.stats().duplicates}, events ${events.map((e) => e.type).join(',')}`);
  await reader.close();
});

test('a publish made while the server is down is buffered and retried, and lands once after the restart', async (t) => {
  t.timeout(60_000);
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  const transport = await JetStreamTransport.connect({
    servers: nats.url, publishTimeoutMs: 300, publishRetry: { initialMs: 50, maxMs: 200 }, reconnectTimeWaitMs: 100, reconnectJitterMs: 50,
  });
  t.teardown(() => transport.close());
  await transport.ensureStream({ name: 'outage', subjects: ['outage.*'] });
  await transport.publish('outage.a', new TextEncoder().encode('before'), { msgId: 'before' });
  await nats.kill();
  const during = transport.publish('outage.a', new TextEncoder().encode('during'), { msgId: 'during' });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  t.true(transport.stats().retries >= 1, 'retried while the server was down');
  await nats.restart();
  const ack = await during;
  t.is(ack.seq, 2);
  t.like(await transport.streamInfo('outage'), { lastSeq: 2, messages: 2 });
  const reader = transport.openReader('outage');
  const got: StoredMessage[] = [];
  while (got.length < 2) got.push(...(await reader.next(10, 5_000)));
  t.deepEqual(got.map((m) => new TextDecoder().decode(m.data)), ['before', 'during']);
  await reader.close();
});

test('a durable consumer keeps its position and its unacked deliveries across a graceful server restart (port invariant 4)', async (t) => {
  t.timeout(60_000);
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  const transport = await JetStreamTransport.connect({ servers: nats.url, reconnectTimeWaitMs: 100, reconnectJitterMs: 50 });
  t.teardown(() => transport.close());
  await transport.ensureStream({ name: 'durable', subjects: ['durable.*'] });
  for (let i = 1; i <= 6; i++) await transport.publish('durable.a', new TextEncoder().encode(String(i)), { msgId: `d-${i}` });
  const consumer = await transport.consumer('durable', { name: 'worker', ackWaitMs: 1_000 });
  const first = await consumer.pull(3, 2_000);
  t.deepEqual(first.map((d) => d.message.seq), [1, 2, 3]);
  first[0]!.ack();
  first[1]!.ack();
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the acks reach the server
  // SIGTERM: the server writes its consumer state. (After a SIGKILL, acks of the last moments
  // may not be on disk yet and those messages come again: consumers are at-least-once.)
  await nats.stop();
  await nats.restart();
  const seen = new Map<number, number>();
  const until = Date.now() + 15_000;
  while (![3, 4, 5, 6].every((s) => seen.has(s)) && Date.now() < until) {
    for (const d of await consumer.pull(10, 1_000)) {
      seen.set(d.message.seq, d.deliveryCount);
      d.ack();
    }
  }
  // Consumers are at-least-once: an ack is asynchronous, so one sent just before the restart may
  // not have reached the consumer's stored state, and that message may come once more. What the
  // port promises: every unacked message comes again, and the consumer does not invent others.
  const keys = [...seen.keys()].sort((a, b) => a - b);
  t.true([3, 4, 5, 6].every((s) => seen.has(s)), `unacked and new messages delivered: ${keys.join(',')}`);
  t.true(keys.every((s) => s >= 1 && s <= 6), `only stored messages: ${keys.join(',')}`);
  // (Its deliveryCount after the restart is not asserted: NATS 2.9 does not always keep it.)
  await consumer.close();
});
