import test from 'ava';
import { SimulatedClock, flushMicrotasks } from '../../lib/core/clock.js';
import { WardenError } from '../../lib/core/errors.js';
import { InMemoryTransport, type ConsumerAdvisory } from '../../lib/transport/in-memory-transport.js';
import type { Delivery, StoredMessage } from '../../lib/transport/transport.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const seqs = (ms: Array<StoredMessage | Delivery>): number[] => ms.map((m) => ('message' in m ? m.message.seq : m.seq));
const bodies = (ms: StoredMessage[]): string[] => ms.map((m) => dec(m.data));

function setup(): { clock: SimulatedClock; transport: InMemoryTransport; advisories: ConsumerAdvisory[] } {
  const clock = new SimulatedClock(1_000);
  const advisories: ConsumerAdvisory[] = [];
  const transport = new InMemoryTransport({ clock, onAdvisory: (a) => advisories.push(a) });
  return { clock, transport, advisories };
}

/** Observes a promise without awaiting it. */
function watch<T>(p: Promise<T>): { settled: boolean; value: T | undefined } {
  const state: { settled: boolean; value: T | undefined } = { settled: false, value: undefined };
  p.then((v) => {
    state.settled = true;
    state.value = v;
  }, () => {
    state.settled = true;
  });
  return state;
}

function code(err: unknown): string | undefined {
  return err instanceof WardenError ? err.code : undefined;
}

test('sequences start at 1, increase by one across subjects, and messages are stored as published', async (t) => {
  const { transport, clock } = setup();
  const created = await transport.ensureStream({ name: 'orders', subjects: ['orders.>'] });
  t.deepEqual(created, { name: 'orders', subjects: ['orders.>'], firstSeq: 1, lastSeq: 0, messages: 0, bytes: 0, consumers: 0 });
  const buffer = Buffer.from('first');
  t.deepEqual(await transport.publish('orders.eu', buffer, { msgId: 'm1', headers: { h: 'v' } }), { stream: 'orders', seq: 1, duplicate: false });
  buffer.write('XXXXX'); // the caller reuses its buffer: the stored copy must not change
  clock.advance(5);
  t.is((await transport.publish('orders.us', enc('second'))).seq, 2);
  t.is((await transport.publish('orders.eu', enc('third'))).seq, 3);
  t.deepEqual(await transport.streamInfo('orders'), { name: 'orders', subjects: ['orders.>'], firstSeq: 1, lastSeq: 3, messages: 3, bytes: 16, consumers: 0 });
  const first = await transport.getMessage('orders', 1);
  t.like(first, { stream: 'orders', subject: 'orders.eu', seq: 1, headers: { h: 'v' }, timestampMs: 1_000, msgId: 'm1' });
  t.is(dec(first?.data ?? new Uint8Array()), 'first');
  first?.data.fill(0); // a reader mutating its copy does not change the log either
  t.is(dec((await transport.getMessage('orders', 1))?.data ?? new Uint8Array()), 'first');
  t.is((await transport.getMessage('orders', 2))?.timestampMs, 1_005);
  t.is(await transport.getMessage('orders', 4), undefined);
  t.is(await transport.lastSeqOf('orders', 'orders.eu'), 3);
  t.is(await transport.lastSeqOf('orders', 'orders.us'), 2);
  t.is(await transport.lastSeqOf('orders', 'orders.asia'), 0);
});

test('a msgId is deduplicated inside the window (not extended by duplicates) and accepted after it', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s.*'], duplicateWindowMs: 1_000 });
  t.deepEqual(await transport.publish('s.a', enc('one'), { msgId: 'x' }), { stream: 'S', seq: 1, duplicate: false });
  t.is((await transport.publish('s.b', enc('other'), { msgId: 'y' })).seq, 2);
  clock.advance(999);
  t.deepEqual(await transport.publish('s.a', enc('one again'), { msgId: 'x' }), { stream: 'S', seq: 1, duplicate: true });
  t.is((await transport.streamInfo('S')).messages, 2);
  clock.advance(1); // 1000 ms after the original: the window has passed
  t.deepEqual(await transport.publish('s.a', enc('one later'), { msgId: 'x' }), { stream: 'S', seq: 3, duplicate: false });
  t.deepEqual(await transport.publish('s.a', enc('dup'), { msgId: 'x' }), { stream: 'S', seq: 3, duplicate: true });
  t.is(dec((await transport.getMessage('S', 3))?.data ?? new Uint8Array()), 'one later');
  t.deepEqual(await transport.streamInfo('S'), { name: 'S', subjects: ['s.*'], firstSeq: 1, lastSeq: 3, messages: 3, bytes: 17, consumers: 0 });
});

test('a reader yields matching messages from its start sequence, in order, in batches (* and > filters)', async (t) => {
  const { transport } = setup();
  await transport.ensureStream({ name: 'ev', subjects: ['ev.>'] });
  const subjects = ['ev.eu.click', 'ev.us.click', 'ev.eu.view', 'ev.eu.click', 'ev.eu.click.extra', 'ev.us.view', 'ev.eu.click'];
  for (const [i, s] of subjects.entries()) await transport.publish(s, enc(`m${i + 1}`));

  const star = transport.openReader('ev', { filterSubject: 'ev.*.click', startSeq: 2 });
  t.deepEqual(seqs(await star.next(2, 0)), [2, 4]);
  t.deepEqual(bodies(await star.next(10, 0)), ['m7']);
  t.deepEqual(await star.next(10, 0), []);

  const tail = transport.openReader('ev', { filterSubject: 'ev.eu.>' });
  t.deepEqual(seqs(await tail.next(10, 0)), [1, 3, 4, 5, 7]);

  const all = transport.openReader('ev', { startSeq: 6 });
  const got = await all.next(10, 0);
  t.deepEqual(got.map((m) => [m.seq, m.subject]), [[6, 'ev.us.view'], [7, 'ev.eu.click']]);

  const exact = transport.openReader('ev', { filterSubject: 'ev.us.view' });
  t.deepEqual(seqs(await exact.next(10, 0)), [6]);
});

test('a waiting reader wakes on a matching publish only, without polling the clock', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'ev', subjects: ['ev.>'] });
  await transport.publish('ev.a', enc('old'));
  const reader = transport.openReader('ev', { filterSubject: 'ev.b', startSeq: 1 });
  const pending = watch(reader.next(10, 60_000));
  await flushMicrotasks();
  t.false(pending.settled);
  t.is(clock.pending, 1); // only the waitMs timer
  await transport.publish('ev.a', enc('not for me'));
  await flushMicrotasks();
  t.false(pending.settled);
  await transport.publish('ev.b', enc('mine'));
  await flushMicrotasks();
  t.true(pending.settled);
  t.deepEqual(pending.value?.map((m) => [m.seq, dec(m.data)]), [[3, 'mine']]);
  t.is(clock.pending, 0); // the wait timer was cleared
  t.is(clock.now(), 1_000);
});

test('a waiting reader resolves [] when waitMs passes on the clock, and when it is closed', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'ev', subjects: ['ev.>'] });
  const reader = transport.openReader('ev');
  const timed = watch(reader.next(5, 500));
  await clock.advanceAsync(499);
  t.false(timed.settled);
  await clock.advanceAsync(1);
  t.true(timed.settled);
  t.deepEqual(timed.value, []);

  const forever = watch(reader.next(5));
  await flushMicrotasks();
  t.false(forever.settled);
  t.false(reader.closed);
  await reader.close();
  await flushMicrotasks();
  t.true(forever.settled);
  t.deepEqual(forever.value, []);
  t.true(reader.closed);
  await transport.publish('ev.x', enc('late'));
  t.deepEqual(await reader.next(5, 0), []); // closed readers stay empty
});

test('messages removed by maxMsgs are skipped by readers and their sequences are not reused', async (t) => {
  const { transport } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'], maxMsgs: 3 });
  const reader = transport.openReader('S');
  for (let i = 1; i <= 2; i++) await transport.publish('s', enc(`m${i}`));
  t.deepEqual(seqs(await reader.next(1, 0)), [1]);
  for (let i = 3; i <= 6; i++) await transport.publish('s', enc(`m${i}`));
  t.deepEqual(await transport.streamInfo('S'), { name: 'S', subjects: ['s'], firstSeq: 4, lastSeq: 6, messages: 3, bytes: 6, consumers: 1 });
  t.deepEqual(bodies(await reader.next(10, 0)), ['m4', 'm5', 'm6']); // 2 and 3 were removed before being read
  t.is(await transport.getMessage('S', 3), undefined);
  t.is((await transport.publish('s', enc('m7'))).seq, 7);
  t.deepEqual(seqs(await transport.openReader('S', { startSeq: 1 }).next(10, 0)), [5, 6, 7]);
  // Lowering the limit trims at once.
  await transport.ensureStream({ name: 'S', subjects: ['s'], maxMsgs: 1 });
  t.deepEqual(await transport.streamInfo('S'), { name: 'S', subjects: ['s'], firstSeq: 7, lastSeq: 7, messages: 1, bytes: 2, consumers: 2 });
});

test('messages older than maxAgeMs are removed lazily and skipped; sequences continue', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s.*'], maxAgeMs: 1_000 });
  await transport.publish('s.a', enc('a1'));
  clock.advance(400);
  await transport.publish('s.b', enc('b2'));
  clock.advance(600); // a1 is exactly maxAge old: kept
  t.is((await transport.streamInfo('S')).messages, 2);
  clock.advance(1); // a1 is older than maxAge
  t.deepEqual(await transport.streamInfo('S'), { name: 'S', subjects: ['s.*'], firstSeq: 2, lastSeq: 2, messages: 1, bytes: 2, consumers: 0 });
  t.is(await transport.lastSeqOf('S', 's.a'), 0);
  t.is(await transport.getMessage('S', 1), undefined);
  t.deepEqual(bodies(await transport.openReader('S').next(10, 0)), ['b2']);
  clock.advance(400); // b2 expires too
  t.deepEqual(await transport.streamInfo('S'), { name: 'S', subjects: ['s.*'], firstSeq: 3, lastSeq: 2, messages: 0, bytes: 0, consumers: 1 }, 'the reader above is still open');
  t.is((await transport.publish('s.a', enc('a3'))).seq, 3);
});

test('a long stream stays consistent when its storage is compacted', async (t) => {
  const { transport } = setup();
  await transport.ensureStream({ name: 'big', subjects: ['big.*'], maxMsgs: 1_500 });
  for (let i = 1; i <= 5_000; i++) await transport.publish(i % 2 === 0 ? 'big.even' : 'big.odd', enc(String(i)));
  t.deepEqual(await transport.streamInfo('big'), { name: 'big', subjects: ['big.*'], firstSeq: 3_501, lastSeq: 5_000, messages: 1_500, bytes: 6_000, consumers: 0 });
  t.is(await transport.getMessage('big', 3_500), undefined);
  t.is(dec((await transport.getMessage('big', 4_321))?.data ?? new Uint8Array()), '4321');
  const even = transport.openReader('big', { filterSubject: 'big.even', startSeq: 3_000 });
  const got: number[] = [];
  for (let batch = await even.next(100, 0); batch.length > 0; batch = await even.next(100, 0)) got.push(...seqs(batch));
  t.is(got.length, 750);
  t.is(got[0], 3_502);
  t.is(got.at(-1), 5_000);
  t.true(got.every((s, i) => i === 0 || s === (got[i - 1] ?? 0) + 2));
});

test('NO_STREAM_FOR_SUBJECT and MESSAGE_TOO_LARGE store nothing and consume no sequence or msgId', async (t) => {
  const { transport } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s.>'], maxMsgSize: 4 });
  const none = await t.throwsAsync(transport.publish('other.x', enc('x')));
  t.is(code(none), 'NO_STREAM_FOR_SUBJECT');
  t.regex(none?.message ?? '', /other\.x/);
  const large = await t.throwsAsync(transport.publish('s.x', enc('12345'), { msgId: 'big' }));
  t.is(code(large), 'MESSAGE_TOO_LARGE');
  t.deepEqual(await transport.streamInfo('S'), { name: 'S', subjects: ['s.>'], firstSeq: 1, lastSeq: 0, messages: 0, bytes: 0, consumers: 0 });
  t.deepEqual(await transport.publish('s.x', enc('1234'), { msgId: 'big' }), { stream: 'S', seq: 1, duplicate: false });
  const wildcard = await t.throwsAsync(transport.publish('s.*', enc('x')));
  t.is(code(wildcard), 'CONFIG');
  t.is((await transport.streamInfo('S')).lastSeq, 1);
});

test('stream config: idempotent ensure, update, invalid names and subjects, overlapping subjects', async (t) => {
  const { transport } = setup();
  await transport.ensureStream({ name: 'orders', subjects: ['orders.*', 'refunds.>'] });
  await transport.publish('orders.eu', enc('o'));
  t.deepEqual(await transport.ensureStream({ name: 'orders', subjects: ['orders.*', 'refunds.>'] }),
    { name: 'orders', subjects: ['orders.*', 'refunds.>'], firstSeq: 1, lastSeq: 1, messages: 1, bytes: 1, consumers: 0 });
  const overlap = async (subjects: string[], clash: string): Promise<void> => {
    const err = await t.throwsAsync(transport.ensureStream({ name: 'other', subjects }));
    t.is(code(err), 'CONFIG');
    t.true(err?.message.includes(`"${clash}"`), err?.message);
  };
  await overlap(['orders.eu'], 'orders.eu');
  await overlap(['*.eu'], '*.eu');
  await overlap(['>'], '>');
  await overlap(['refunds.a.b'], 'refunds.a.b');
  // Disjoint patterns are fine: 'orders.*' takes exactly two tokens.
  await transport.ensureStream({ name: 'other', subjects: ['orders.eu.late', 'orders'] });
  t.is((await transport.publish('orders.eu.late', enc('l'))).stream, 'other');
  // Updating a stream is checked against the other streams, not against itself.
  await transport.ensureStream({ name: 'other', subjects: ['orders.eu.late'] });
  t.is(code(await t.throwsAsync(transport.publish('orders', enc('o')))), 'NO_STREAM_FOR_SUBJECT');
  const moved = await t.throwsAsync(transport.ensureStream({ name: 'orders', subjects: ['orders.>'] }));
  t.is(code(moved), 'CONFIG');
  for (const bad of [{ name: 'a.b', subjects: ['x'] }, { name: '', subjects: ['x'] }, { name: 'ok', subjects: [] },
    { name: 'ok', subjects: ['x..y'] }, { name: 'ok', subjects: ['x.>.y'] }, { name: 'ok', subjects: ['x', 'x'] },
    { name: 'ok', subjects: ['x'], maxAgeMs: 1_000, duplicateWindowMs: 2_000 }]) {
    t.is(code(await t.throwsAsync(transport.ensureStream(bad))), 'CONFIG', JSON.stringify(bad));
  }
  t.is(code(await t.throwsAsync(transport.streamInfo('ok'))), 'STREAM_NOT_FOUND');
});

test('consumer: redeliveries come first; ack stops redelivery; acking twice is harmless', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s.*'] });
  for (const s of ['s.a', 's.b', 's.a', 's.a']) await transport.publish(s, enc(s));
  const consumer = await transport.consumer('S', { name: 'c', filterSubject: 's.a', ackWaitMs: 1_000 });
  const first = await consumer.pull(2, 0);
  t.deepEqual(first.map((d) => [d.message.seq, d.deliveryCount]), [[1, 1], [3, 1]]);
  t.is(consumer.pending(), 2);
  first[0]?.ack();
  first[0]?.ack();
  t.is(consumer.pending(), 1);
  await clock.advanceAsync(1_000);
  const second = await consumer.pull(10, 0);
  t.deepEqual(second.map((d) => [d.message.seq, d.deliveryCount]), [[3, 2], [4, 1]]);
  for (const d of second) d.ack();
  first[1]?.ack(); // a stale delivery of an acked message: no effect
  t.is(consumer.pending(), 0);
  await clock.advanceAsync(10_000);
  t.deepEqual(await consumer.pull(10, 0), []);
});

test('consumer: ack-wait expiry redelivers with deliveryCount incremented; a waiting pull wakes when due', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  await transport.publish('s', enc('payload'));
  const consumer = await transport.consumer('S', { name: 'c', ackWaitMs: 1_000 });
  t.deepEqual((await consumer.pull(10, 0)).map((d) => d.deliveryCount), [1]);
  const waiting = watch(consumer.pull(10, 5_000));
  await clock.advanceAsync(999);
  t.false(waiting.settled);
  await clock.advanceAsync(1);
  t.true(waiting.settled);
  t.deepEqual(waiting.value?.map((d) => [d.message.seq, d.deliveryCount, dec(d.message.data)]), [[1, 2, 'payload']]);
  t.deepEqual(await consumer.pull(10, 0), []); // the redelivery has a fresh ack wait
  await clock.advanceAsync(999);
  t.deepEqual(await consumer.pull(10, 0), []);
  await clock.advanceAsync(1);
  t.deepEqual((await consumer.pull(10, 0)).map((d) => d.deliveryCount), [3]);
  t.is(consumer.pending(), 1);
});

test('consumer: nak redelivers after its delay; nak() without delay wakes a waiting pull at once', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  await transport.publish('s', enc('a'));
  await transport.publish('s', enc('b'));
  const consumer = await transport.consumer('S', { name: 'c', ackWaitMs: 60_000 });
  const [a, b] = await consumer.pull(2, 0);
  a?.nak(500);
  clock.advance(499);
  t.deepEqual(await consumer.pull(10, 0), []);
  clock.advance(1);
  const again = await consumer.pull(10, 0);
  t.deepEqual(again.map((d) => [d.message.seq, d.deliveryCount]), [[1, 2]]);
  again[0]?.ack();

  const waiting = watch(consumer.pull(10, 30_000));
  await flushMicrotasks();
  t.false(waiting.settled);
  b?.nak();
  await flushMicrotasks();
  t.true(waiting.settled);
  t.deepEqual(waiting.value?.map((d) => [d.message.seq, d.deliveryCount]), [[2, 2]]);
  t.is(clock.now(), 1_500);
  t.is(clock.pending, 0);
});

test('consumer: a waiting pull wakes on a matching publish', async (t) => {
  const { transport } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s.*'] });
  const consumer = await transport.consumer('S', { name: 'c', filterSubject: 's.b' });
  const waiting = watch(consumer.pull(10, 1_000));
  await transport.publish('s.a', enc('skip'));
  await flushMicrotasks();
  t.false(waiting.settled);
  await transport.publish('s.b', enc('take'));
  await flushMicrotasks();
  t.deepEqual(waiting.value?.map((d) => [d.message.seq, dec(d.message.data)]), [[2, 'take']]);
});

test('consumer: after maxDeliver deliveries without ack the message is left alone and reported', async (t) => {
  const { transport, clock, advisories } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  await transport.publish('s', enc('poison'));
  await transport.publish('s', enc('fine'));
  const consumer = await transport.consumer('S', { name: 'c', ackWaitMs: 100, maxDeliver: 2 });
  const first = await consumer.pull(10, 0);
  t.deepEqual(first.map((d) => [d.message.seq, d.deliveryCount]), [[1, 1], [2, 1]]);
  first[1]?.ack();
  await clock.advanceAsync(100);
  t.deepEqual((await consumer.pull(10, 0)).map((d) => [d.message.seq, d.deliveryCount]), [[1, 2]]);
  t.deepEqual(advisories, []);
  const waiting = watch(consumer.pull(10, 1_000));
  await clock.advanceAsync(100); // the last ack wait expires: reported, not delivered
  t.false(waiting.settled);
  t.deepEqual(advisories, [{ kind: 'max-deliveries', stream: 'S', consumer: 'c', seq: 1, deliveries: 2 }]);
  t.is(consumer.pending(), 0);
  await clock.advanceAsync(900);
  t.deepEqual(waiting.value, []);
  await clock.advanceAsync(10_000);
  t.deepEqual(await consumer.pull(10, 0), []);
  t.is(advisories.length, 1);
});

test('consumer: term stops redelivery and is reported with its reason', async (t) => {
  const { transport, clock, advisories } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  await transport.publish('s', enc('bad'));
  const consumer = await transport.consumer('S', { name: 'c', ackWaitMs: 100 });
  const [d] = await consumer.pull(1, 0);
  d?.term('unparseable');
  d?.term('again');
  t.is(consumer.pending(), 0);
  await clock.advanceAsync(1_000);
  t.deepEqual(await consumer.pull(10, 0), []);
  t.deepEqual(advisories, [{ kind: 'terminated', stream: 'S', consumer: 'c', seq: 1, deliveries: 1, reason: 'unparseable' }]);
});

test('consumer: a durable rebound after close continues with its pending redeliveries and position', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  for (let i = 1; i <= 3; i++) await transport.publish('s', enc(`m${i}`));
  const first = await transport.consumer('S', { name: 'durable', ackWaitMs: 1_000 });
  const got = await first.pull(3, 0);
  got[0]?.ack();
  const parked = watch(first.pull(10, 60_000));
  await first.close();
  await flushMicrotasks();
  t.deepEqual(parked.value, []);
  t.deepEqual(await first.pull(10, 0), []); // a closed binding stays empty
  await transport.publish('s', enc('m4'));
  await clock.advanceAsync(1_000);

  const again = await transport.consumer('S', { name: 'durable', ackWaitMs: 1_000 });
  t.is(again.pending(), 2);
  const next = await again.pull(10, 0);
  t.deepEqual(next.map((d) => [d.message.seq, d.deliveryCount, dec(d.message.data)]), [[2, 2, 'm2'], [3, 2, 'm3'], [4, 1, 'm4']]);
  got[1]?.ack(); // an ack from the old binding still counts
  t.is(again.pending(), 2);

  const other = await transport.consumer('S', { name: 'other', startSeq: 3 });
  t.deepEqual(seqs(await other.pull(10, 0)), [3, 4]);
});

test('deleteStream wakes and closes its readers and consumers, and removes its consumers', async (t) => {
  const { transport } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  const reader = transport.openReader('S');
  const consumer = await transport.consumer('S', { name: 'c' });
  const read = watch(reader.next(10));
  const pulled = watch(consumer.pull(10));
  await flushMicrotasks();
  await transport.deleteStream('S');
  await flushMicrotasks();
  t.deepEqual(read.value, []);
  t.deepEqual(pulled.value, []);
  t.true(reader.closed);
  t.is(code(await t.throwsAsync(transport.streamInfo('S'))), 'STREAM_NOT_FOUND');
  t.is(code(await t.throwsAsync(transport.deleteStream('S'))), 'STREAM_NOT_FOUND');
  t.is(code(await t.throwsAsync(transport.consumer('S', { name: 'c' }))), 'STREAM_NOT_FOUND');
  t.is(code(await t.throwsAsync(transport.openReader('missing').next(1, 0))), 'STREAM_NOT_FOUND');
  t.is(code(await t.throwsAsync(transport.publish('s', enc('x')))), 'NO_STREAM_FOR_SUBJECT');
  // Recreated, the stream starts over without the old durable state.
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  t.is((await transport.publish('s', enc('x'))).seq, 1);
  t.is((await transport.consumer('S', { name: 'c' })).pending(), 0);
});

test('close resolves waits with [] and every later operation rejects with TRANSPORT_CLOSED', async (t) => {
  const { transport, clock } = setup();
  await transport.ensureStream({ name: 'S', subjects: ['s'] });
  await transport.publish('s', enc('x'));
  const reader = transport.openReader('S', { startSeq: 2 });
  const consumer = await transport.consumer('S', { name: 'c' });
  await consumer.pull(1, 0);
  const read = watch(reader.next(1, 10_000));
  const pulled = watch(consumer.pull(1, 10_000));
  await flushMicrotasks();
  await transport.close();
  await flushMicrotasks();
  t.deepEqual(read.value, []);
  t.deepEqual(pulled.value, []);
  t.is(clock.pending, 0);
  await transport.close(); // idempotent
  const closed = async (p: Promise<unknown>): Promise<void> => {
    t.is(code(await t.throwsAsync(p)), 'TRANSPORT_CLOSED');
  };
  await closed(transport.ensureStream({ name: 'S', subjects: ['s'] }));
  await closed(transport.streamInfo('S'));
  await closed(transport.lastSeqOf('S', 's'));
  await closed(transport.publish('s', enc('y')));
  await closed(transport.getMessage('S', 1));
  await closed(transport.consumer('S', { name: 'c' }));
  await closed(transport.deleteStream('S'));
  await closed(reader.next(1, 0));
  await closed(consumer.pull(1, 0));
  t.is(code(t.throws(() => transport.openReader('S'))), 'TRANSPORT_CLOSED');
});
