/**
 * The Transport contract: the same cases, run against every implementation of the port
 * (`lib/transport/transport.ts`), citing its invariants 1-5. Each test makes its own transport,
 * uses stream names and subjects with a random suffix, and deletes its streams at the end.
 * Time-based cases run on real time with short windows (dedupe 300 ms, ack wait 500 ms).
 *
 * @example
 * transportContract('in-memory', async () => {
 *   const transport = new InMemoryTransport();
 *   return { transport, cleanup: () => transport.close() };
 * });
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { WardenError } from '../../lib/core/errors.js';
import type { Delivery, StoredMessage, StreamConfig, Transport } from '../../lib/transport/transport.js';

/**
 * Makes a fresh transport for one test, and what closes it.
 *
 * @example const make: TransportFactory = async () => { const transport = new InMemoryTransport(); return { transport, cleanup: () => transport.close() }; };
 */
export type TransportFactory = () => Promise<{ transport: Transport; cleanup: () => Promise<void> }>;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const seqs = (ms: Array<StoredMessage | Delivery>): number[] => ms.map((m) => ('message' in m ? m.message.seq : m.seq));
const bodies = (ms: StoredMessage[]): string[] => ms.map((m) => dec(m.data));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const code = (err: unknown): string | undefined => (err instanceof WardenError ? err.code : undefined);

interface Env {
  transport: Transport;
  /** A unique token for subjects and names. */
  id: string;
  /** Creates a stream `<base>_<id>` (deleted at the end of the test). */
  stream: (base: string, config: Omit<StreamConfig, 'name'>) => Promise<string>;
}

/** Reads until `n` messages came, or `timeoutMs` passed. */
async function readN(reader: { next(max: number, waitMs?: number): Promise<StoredMessage[]> }, n: number, max = 100, timeoutMs = 5_000): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  const until = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < until) out.push(...(await reader.next(max, Math.max(1, until - Date.now()))));
  return out;
}

/** Pulls until `n` deliveries came, or `timeoutMs` passed. */
async function pullN(consumer: { pull(max: number, waitMs?: number): Promise<Delivery[]> }, n: number, timeoutMs = 5_000): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const until = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < until) out.push(...(await consumer.pull(n - out.length, Math.max(1, until - Date.now()))));
  return out;
}

/**
 * Registers the contract's tests for one implementation, each titled `<label>: ...`.
 *
 * @example
 * transportContract('jetstream', async () => {
 *   const transport = await JetStreamTransport.connect({ servers: 'nats://127.0.0.1:4222' });
 *   return { transport, cleanup: () => transport.close() };
 * });
 */
export function transportContract(label: string, make: TransportFactory): void {
  async function setup(t: ExecutionContext): Promise<Env> {
    const { transport, cleanup } = await make();
    const id = randomBytes(5).toString('hex');
    const streams: string[] = [];
    t.teardown(async () => {
      for (const name of streams) await transport.deleteStream(name).catch(() => undefined);
      await cleanup();
    });
    return {
      transport,
      id,
      stream: async (base, config) => {
        const name = `${base}_${id}`;
        streams.push(name);
        await transport.ensureStream({ name, ...config });
        return name;
      },
    };
  }

  test(`${label}: sequences start at 1 and go up by one across subjects; streamInfo counts them (invariant 1)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('seq', { subjects: [`seq${id}.*`] });
    const info0 = await transport.streamInfo(name);
    t.like(info0, { name, firstSeq: 1, lastSeq: 0, messages: 0, bytes: 0 });
    const acks = [];
    for (const s of ['a', 'b', 'a', 'c', 'b']) acks.push(await transport.publish(`seq${id}.${s}`, enc(s)));
    t.deepEqual(acks.map((a) => a.seq), [1, 2, 3, 4, 5]);
    t.true(acks.every((a) => a.stream === name && !a.duplicate));
    // Publishes not awaited one by one still get distinct, increasing sequences.
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => transport.publish(`seq${id}.x`, enc(String(i)))));
    t.deepEqual(many.map((a) => a.seq).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 6));
    const info = await transport.streamInfo(name);
    t.like(info, { name, firstSeq: 1, lastSeq: 55, messages: 55 });
    t.true(info.bytes > 0);
  });

  test(`${label}: a msgId is dropped within the duplicate window and accepted after it (invariant 2)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('dedupe', { subjects: [`dd${id}.>`], duplicateWindowMs: 300 });
    t.deepEqual(await transport.publish(`dd${id}.x`, enc('1'), { msgId: 'a' }), { stream: name, seq: 1, duplicate: false });
    t.deepEqual(await transport.publish(`dd${id}.y`, enc('1 again'), { msgId: 'a' }), { stream: name, seq: 1, duplicate: true });
    t.deepEqual(await transport.publish(`dd${id}.x`, enc('2'), { msgId: 'b' }), { stream: name, seq: 2, duplicate: false });
    t.is((await transport.streamInfo(name)).messages, 2);
    await sleep(700);
    t.deepEqual(await transport.publish(`dd${id}.x`, enc('1 later'), { msgId: 'a' }), { stream: name, seq: 3, duplicate: false });
    t.deepEqual(bodies(await readN(transport.openReader(name), 3)), ['1', '2', '1 later']);
  });

  test(`${label}: readers yield matching messages from a sequence, in order, once each (* and > filters) (invariant 3)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('read', { subjects: [`rd${id}.>`] });
    const subjects = ['a.x', 'b.x', 'a.y', 'a.x.deep', 'b.y', 'a.z', 'a.x'];
    for (const [i, s] of subjects.entries()) await transport.publish(`rd${id}.${s}`, enc(`${i + 1}:${s}`));
    // A fresh reader with waitMs 0 yields what is stored (replay relies on this).
    const all = transport.openReader(name);
    const first = await all.next(100, 0);
    t.true(first.length > 0, 'next(max, 0) on a fresh reader returns stored messages');
    const rest = await readN(all, 7 - first.length);
    t.deepEqual(seqs([...first, ...rest]), [1, 2, 3, 4, 5, 6, 7]);
    t.deepEqual(await all.next(100, 0), [], 'caught up: next(max, 0) is []');
    await all.close();

    const star = transport.openReader(name, { filterSubject: `rd${id}.a.*` });
    t.deepEqual(seqs(await readN(star, 4)), [1, 3, 6, 7]);
    await star.close();

    const gt = transport.openReader(name, { filterSubject: `rd${id}.a.>`, startSeq: 3 });
    t.deepEqual(seqs(await readN(gt, 4)), [3, 4, 6, 7]);
    await gt.close();

    const exact = transport.openReader(name, { filterSubject: `rd${id}.b.y` });
    const [only] = await readN(exact, 1);
    t.like(only, { stream: name, subject: `rd${id}.b.y`, seq: 5 });
    t.deepEqual(await exact.next(10, 100), []);
    await exact.close();

    // Small batches: every message once, in order.
    const batched = transport.openReader(name, { startSeq: 2 });
    const got: StoredMessage[] = [];
    for (let i = 0; i < 20 && got.length < 6; i++) {
      const batch = await batched.next(2, 2_000);
      t.true(batch.length <= 2);
      got.push(...batch);
    }
    t.deepEqual(seqs(got), [2, 3, 4, 5, 6, 7]);
    await batched.close();
  });

  test(`${label}: a waiting reader wakes on a matching publish, returns [] after waitMs and on close (invariant 3)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('wait', { subjects: [`wt${id}.*`] });
    await transport.publish(`wt${id}.a`, enc('old'));
    const reader = transport.openReader(name, { filterSubject: `wt${id}.a`, startSeq: 2 });
    t.deepEqual(await reader.next(10, 0), []);

    let t0 = Date.now();
    const parked = reader.next(10, 10_000);
    await sleep(100);
    await transport.publish(`wt${id}.b`, enc('other subject'));
    await transport.publish(`wt${id}.a`, enc('new'));
    const woke = await parked;
    t.deepEqual(bodies(woke), ['new']);
    t.like(woke[0], { seq: 3 });
    t.true(Date.now() - t0 < 5_000, 'woken by the publish, not by waitMs');

    t0 = Date.now();
    t.deepEqual(await reader.next(10, 300), []);
    const waited = Date.now() - t0;
    t.true(waited >= 250 && waited < 3_000, `[] after about waitMs (${waited} ms)`);

    t0 = Date.now();
    const closing = reader.next(10, 20_000);
    await sleep(100);
    await reader.close();
    t.deepEqual(await closing, []);
    t.true(Date.now() - t0 < 5_000);
    t.true(reader.closed);
    t.deepEqual(await reader.next(10, 1_000), []);
  });

  test(`${label}: NO_STREAM_FOR_SUBJECT and MESSAGE_TOO_LARGE store nothing (invariant 5)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('limits', { subjects: [`lim${id}.>`], maxMsgSize: 1_024 });
    const none = await t.throwsAsync(transport.publish(`nostream${id}.x`, enc('x'), { msgId: 'n' }));
    t.is(code(none), 'NO_STREAM_FOR_SUBJECT');
    t.regex(none?.message ?? '', new RegExp(`nostream${id}`));
    const large = await t.throwsAsync(transport.publish(`lim${id}.x`, new Uint8Array(4_096), { msgId: 'big' }));
    t.is(code(large), 'MESSAGE_TOO_LARGE');
    t.like(await transport.streamInfo(name), { firstSeq: 1, lastSeq: 0, messages: 0 });
    // The refused msgId was not remembered; the sequence was not used.
    t.deepEqual(await transport.publish(`lim${id}.x`, new Uint8Array(512), { msgId: 'big' }), { stream: name, seq: 1, duplicate: false });
    const wildcard = await t.throwsAsync(transport.publish(`lim${id}.*`, enc('x')));
    t.is(code(wildcard), 'CONFIG');
    t.is((await transport.streamInfo(name)).lastSeq, 1);
  });

  test(`${label}: maxMsgs removes the oldest messages; sequences are not reused (invariants 1, 3)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('maxmsgs', { subjects: [`mm${id}.*`], maxMsgs: 3 });
    for (let i = 1; i <= 5; i++) await transport.publish(`mm${id}.a`, enc(String(i)));
    t.like(await transport.streamInfo(name), { firstSeq: 3, lastSeq: 5, messages: 3 });
    t.is(await transport.getMessage(name, 1), undefined);
    t.deepEqual(bodies(await readN(transport.openReader(name), 3)), ['3', '4', '5']);
    t.is((await transport.publish(`mm${id}.b`, enc('6'))).seq, 6);
    t.like(await transport.streamInfo(name), { firstSeq: 4, lastSeq: 6, messages: 3 });
  });

  test(`${label}: lastSeqOf, getMessage and streamInfo; STREAM_NOT_FOUND for a missing stream`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('query', { subjects: [`q${id}.*`] });
    const before = Date.now();
    await transport.publish(`q${id}.a`, enc('a1'));
    await transport.publish(`q${id}.b`, enc('b1'));
    await transport.publish(`q${id}.a`, enc('a2'));
    const after = Date.now();
    t.is(await transport.lastSeqOf(name, `q${id}.a`), 3);
    t.is(await transport.lastSeqOf(name, `q${id}.b`), 2);
    t.is(await transport.lastSeqOf(name, `q${id}.c`), 0);
    const m = await transport.getMessage(name, 2);
    t.like(m, { stream: name, subject: `q${id}.b`, seq: 2, headers: {} });
    t.is(dec(m!.data), 'b1');
    t.true(m!.timestampMs >= before - 2_000 && m!.timestampMs <= after + 2_000, 'timestampMs is the time it was stored');
    t.is(await transport.getMessage(name, 99), undefined);
    t.like(await transport.streamInfo(name), { name, firstSeq: 1, lastSeq: 3, messages: 3 });
    const missing = `missing_${id}`;
    t.is(code(await t.throwsAsync(transport.streamInfo(missing))), 'STREAM_NOT_FOUND');
    t.is(code(await t.throwsAsync(transport.lastSeqOf(missing, `q${id}.a`))), 'STREAM_NOT_FOUND');
    t.is(code(await t.throwsAsync(transport.getMessage(missing, 1))), 'STREAM_NOT_FOUND');
    t.is(code(await t.throwsAsync(transport.deleteStream(missing))), 'STREAM_NOT_FOUND');
    t.is(code(await t.throwsAsync(readN(transport.openReader(missing), 1, 10, 2_000))), 'STREAM_NOT_FOUND');
  });

  test(`${label}: ensureStream is idempotent, updates subjects, and refuses overlapping subjects`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('ensure', { subjects: [`en${id}.a.*`] });
    await transport.publish(`en${id}.a.x`, enc('1'));
    t.like(await transport.ensureStream({ name, subjects: [`en${id}.a.*`] }), { name, lastSeq: 1, messages: 1 });
    t.is(code(await t.throwsAsync(transport.publish(`en${id}.b.x`, enc('2')))), 'NO_STREAM_FOR_SUBJECT');
    t.like(await transport.ensureStream({ name, subjects: [`en${id}.a.*`, `en${id}.b.>`] }), { name, lastSeq: 1, messages: 1 });
    t.deepEqual((await transport.streamInfo(name)).subjects, [`en${id}.a.*`, `en${id}.b.>`], 'streamInfo names the subjects');
    t.is((await transport.publish(`en${id}.b.x`, enc('2'))).seq, 2);
    const clash = await t.throwsAsync(stream('other', { subjects: [`en${id}.b.y`] }));
    t.is(code(clash), 'CONFIG');
    for (const bad of [{ name: `a.b${id}`, subjects: [`x${id}`] }, { name: `ok${id}`, subjects: [] }, { name: `ok${id}`, subjects: [`x${id}..y`] },
      { name: `ok${id}`, subjects: [`x${id}`], maxAgeMs: 1_000, duplicateWindowMs: 2_000 }]) {
      t.is(code(await t.throwsAsync(transport.ensureStream(bad))), 'CONFIG', JSON.stringify(bad));
    }
  });

  test(`${label}: headers and msgId round trip through readers, getMessage and consumers`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('hdrs', { subjects: [`h${id}.*`] });
    const headers = { 'x-trace': 'trace-1', 'Content-Type': 'application/json', empty: '' };
    await transport.publish(`h${id}.a`, enc('{}'), { msgId: 'm-1', headers });
    await transport.publish(`h${id}.a`, enc('plain'));
    const [withHeaders, plain] = await readN(transport.openReader(name), 2);
    t.deepEqual(withHeaders?.headers, headers);
    t.is(withHeaders?.msgId, 'm-1');
    t.deepEqual(plain?.headers, {});
    t.is(plain?.msgId, undefined);
    const got = await transport.getMessage(name, 1);
    t.deepEqual(got?.headers, headers);
    t.is(got?.msgId, 'm-1');
    const consumer = await transport.consumer(name, { name: 'hdr' });
    const [d] = await pullN(consumer, 1);
    t.deepEqual(d?.message.headers, headers);
    t.is(d?.message.msgId, 'm-1');
    d?.ack();
    await consumer.close();
  });

  test(`${label}: header names, values and msgIds follow NATS rules; Nats-* headers are reserved (CONFIG, nothing stored)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('hrules', { subjects: [`hr${id}.*`] });
    const subject = `hr${id}.a`;
    const refused = [
      { headers: { 'Nats-Expected-Stream': 'x' } },
      { headers: { 'nats-msg-id': 'x' } },
      { headers: { 'has space': 'x' } },
      { headers: { 'colon:name': 'x' } },
      { headers: { '': 'x' } },
      { headers: { ok: 'line\nbreak' } },
      { msgId: '' },
      { msgId: ' padded' },
      { msgId: 'line\r\nbreak' },
    ];
    for (const options of refused) t.is(code(await t.throwsAsync(transport.publish(subject, enc('x'), options))), 'CONFIG', JSON.stringify(options));
    t.is((await transport.streamInfo(name)).lastSeq, 0);
    await transport.publish(subject, enc('x'), { msgId: 'ok-1', headers: { padded: '  value  ', 'X-Dash_und.ok~': 'ünïcode' } });
    const [m] = await readN(transport.openReader(name), 1);
    t.deepEqual(m?.headers, { padded: 'value', 'X-Dash_und.ok~': 'ünïcode' }, 'values are trimmed, as the NATS client does');
    t.is(m?.msgId, 'ok-1');
  });

  test(`${label}: maxAgeMs removes old messages; sequences continue; a reader skips what was removed`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('age', { subjects: [`ag${id}.*`], maxAgeMs: 500 });
    await transport.publish(`ag${id}.a`, enc('1'), { msgId: 'm1' });
    await transport.publish(`ag${id}.a`, enc('2'));
    await sleep(1_300);
    t.like(await transport.streamInfo(name), { firstSeq: 3, lastSeq: 2, messages: 0, bytes: 0 });
    t.deepEqual(await transport.openReader(name).next(10, 0), []);
    // The duplicate window defaulted to maxAgeMs: the msgId is accepted again.
    t.deepEqual(await transport.publish(`ag${id}.a`, enc('3'), { msgId: 'm1' }), { stream: name, seq: 3, duplicate: false });
    t.deepEqual(seqs(await readN(transport.openReader(name), 1)), [3]);
  });

  test(`${label}: a reader started past the end waits for that sequence; consumer() of a missing stream is STREAM_NOT_FOUND`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('ahead', { subjects: [`ah${id}.*`] });
    await transport.publish(`ah${id}.a`, enc('1'));
    const reader = transport.openReader(name, { startSeq: 4 });
    t.deepEqual(await reader.next(10, 200), []);
    for (let i = 2; i <= 5; i++) await transport.publish(`ah${id}.a`, enc(String(i)));
    t.deepEqual(seqs(await readN(reader, 2)), [4, 5]);
    t.is(code(await t.throwsAsync(transport.consumer(`missing_${id}`, { name: 'c' }))), 'STREAM_NOT_FOUND');
    t.is(code(await t.throwsAsync(transport.consumer(name, { name: 'bad.name' }))), 'CONFIG');
  });

  test(`${label}: binary data round trips, and buffers are copies on publish and on read`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('bin', { subjects: [`bin${id}.*`] });
    const body = new Uint8Array(1_024);
    for (let i = 0; i < body.length; i++) body[i] = i % 256;
    body.set(randomBytes(256), 512);
    const expected = body.slice();
    const publishing = transport.publish(`bin${id}.a`, body, { msgId: 'bin-1' });
    body.fill(0); // the caller reuses its buffer at once
    await publishing;
    await transport.publish(`bin${id}.a`, new Uint8Array(0));
    const [read, empty] = await readN(transport.openReader(name), 2);
    t.deepEqual(read?.data, expected);
    t.is(empty?.data.byteLength, 0);
    read!.data.fill(7);
    t.deepEqual((await transport.getMessage(name, 1))?.data, expected);
    const [again] = await readN(transport.openReader(name), 1);
    t.deepEqual(again?.data, expected);
  });

  test(`${label}: consumer: ack stops redelivery; unacked deliveries come again after ackWait with deliveryCount + 1 (invariant 4)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('ack', { subjects: [`ack${id}.*`] });
    for (const s of ['a', 'b', 'a']) await transport.publish(`ack${id}.${s}`, enc(s));
    const consumer = await transport.consumer(name, { name: 'acker', ackWaitMs: 500 });
    const first = await pullN(consumer, 3);
    t.deepEqual(seqs(first), [1, 2, 3]);
    t.true(first.every((d) => d.deliveryCount === 1));
    t.is(consumer.pending(), 3);
    first[0]!.ack();
    first[2]!.ack();
    first[0]!.ack(); // acking twice is harmless
    t.is(consumer.pending(), 1);
    const t0 = Date.now();
    const again = await pullN(consumer, 1, 3_000);
    t.deepEqual(seqs(again), [2]);
    t.is(again[0]?.deliveryCount, 2);
    t.true(Date.now() - t0 >= 300, 'redelivered after the ack wait');
    again[0]!.ack();
    t.deepEqual(await consumer.pull(10, 1_000), [], 'nothing redelivered after the ack');
    t.is(consumer.pending(), 0);
    await consumer.close();
  });

  test(`${label}: consumer: nak(delay) redelivers after the delay, nak() at once (invariant 4)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('nak', { subjects: [`nak${id}.*`] });
    await transport.publish(`nak${id}.a`, enc('x'));
    const consumer = await transport.consumer(name, { name: 'naker', ackWaitMs: 10_000 });
    const [d1] = await pullN(consumer, 1);
    t.is(d1?.deliveryCount, 1);
    let t0 = Date.now();
    d1!.nak(400);
    const [d2] = await pullN(consumer, 1, 3_000);
    t.is(d2?.message.seq, 1);
    t.is(d2?.deliveryCount, 2);
    const delayed = Date.now() - t0;
    t.true(delayed >= 300, `redelivered after the nak delay (${delayed} ms)`);
    t0 = Date.now();
    d2!.nak();
    const [d3] = await pullN(consumer, 1, 3_000);
    t.is(d3?.deliveryCount, 3);
    t.true(Date.now() - t0 < 2_000, 'nak() redelivers at once');
    d3!.ack();
    t.deepEqual(await consumer.pull(10, 600), []);
    await consumer.close();
  });

  test(`${label}: consumer: maxDeliver stops redelivery; term stops redelivery (invariant 4)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('maxdel', { subjects: [`md${id}.*`] });
    await transport.publish(`md${id}.a`, enc('poison'));
    await transport.publish(`md${id}.a`, enc('terminated'));
    await transport.publish(`md${id}.a`, enc('fine'));
    const consumer = await transport.consumer(name, { name: 'limited', ackWaitMs: 400, maxDeliver: 2 });
    const first = await pullN(consumer, 3);
    t.deepEqual(seqs(first), [1, 2, 3]);
    first[1]!.term('bad input');
    first[2]!.ack();
    const second = await pullN(consumer, 1, 3_000);
    t.deepEqual(seqs(second), [1], 'only the unacked one comes again; the terminated one never');
    t.is(second[0]?.deliveryCount, 2);
    const after = await consumer.pull(10, 1_200);
    t.deepEqual(seqs(after), [], 'after maxDeliver deliveries it is left alone');
    t.is(consumer.pending(), 0);
    await consumer.close();
  });

  test(`${label}: consumer: filter and start sequence; a waiting pull wakes on a publish; [] after waitMs`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('filt', { subjects: [`cf${id}.*`] });
    for (const s of ['a', 'b', 'a', 'b', 'a']) await transport.publish(`cf${id}.${s}`, enc(s));
    const consumer = await transport.consumer(name, { name: 'filtered', filterSubject: `cf${id}.a`, startSeq: 2 });
    const got = await pullN(consumer, 2);
    t.deepEqual(seqs(got), [3, 5]);
    for (const d of got) d.ack();
    let t0 = Date.now();
    t.deepEqual(await consumer.pull(10, 300), []);
    const waited = Date.now() - t0;
    t.true(waited >= 250 && waited < 3_000, `[] after about waitMs (${waited} ms)`);
    t0 = Date.now();
    const parked = consumer.pull(10, 10_000);
    await sleep(100);
    await transport.publish(`cf${id}.b`, enc('no'));
    await transport.publish(`cf${id}.a`, enc('yes'));
    const woke = await parked;
    t.deepEqual(seqs(woke), [7]);
    t.true(Date.now() - t0 < 5_000);
    woke[0]!.ack();
    await consumer.close();
  });

  test(`${label}: consumer: a durable bound again continues where it stopped, pending redeliveries included (invariant 4)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('durable', { subjects: [`du${id}.*`] });
    for (let i = 1; i <= 4; i++) await transport.publish(`du${id}.a`, enc(String(i)));
    const options = { name: 'worker', ackWaitMs: 500 };
    const first = await transport.consumer(name, options);
    const taken = await pullN(first, 2);
    t.deepEqual(seqs(taken), [1, 2]);
    taken[0]!.ack();
    await first.close();
    const second = await transport.consumer(name, options);
    const seen = new Map<number, number>();
    const until = Date.now() + 5_000;
    while (seen.size < 3 && Date.now() < until) {
      for (const d of await second.pull(10, 1_000)) {
        seen.set(d.message.seq, d.deliveryCount);
        d.ack();
      }
    }
    t.deepEqual([...seen.keys()].sort(), [2, 3, 4]);
    t.is(seen.get(2), 2, 'the unacked delivery comes again with deliveryCount 2');
    t.is(seen.get(3), 1);
    t.deepEqual(await second.pull(10, 700), [], 'acked before the rebind: never again');
    await second.close();
  });

  test(`${label}: streamInfo counts consumers: open readers and durables; a closed reader stops counting; deleteStream removes the durables (invariant 6)`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('count', { subjects: [`cnt${id}.*`] });
    await transport.publish(`cnt${id}.a`, enc('1'));
    t.is((await transport.streamInfo(name)).consumers, 0);
    const reader = transport.openReader(name, { filterSubject: `cnt${id}.a` });
    t.is((await readN(reader, 1)).length, 1);
    t.is((await transport.streamInfo(name)).consumers, 1, 'a reader that has read counts');
    const other = transport.openReader(name);
    t.is((await readN(other, 1)).length, 1);
    const durable = await transport.consumer(name, { name: 'audit' });
    t.is((await transport.streamInfo(name)).consumers, 3, 'two readers and a durable');
    await reader.close();
    await other.close();
    await durable.close();
    // A closed reader's consumer is removed (JetStream: by a delete request, so poll briefly); a durable stays.
    const until = Date.now() + 5_000;
    let info = await transport.streamInfo(name);
    while (info.consumers !== 1 && Date.now() < until) {
      await sleep(100);
      info = await transport.streamInfo(name);
    }
    t.is(info.consumers, 1, 'only the durable is left after the readers closed');
    t.is((await transport.ensureStream({ name, subjects: [`cnt${id}.*`] })).consumers, 1, 'ensureStream reports it too');
    await transport.deleteStream(name);
    t.is(code(await t.throwsAsync(transport.streamInfo(name))), 'STREAM_NOT_FOUND');
    t.is((await transport.ensureStream({ name, subjects: [`cnt${id}.*`] })).consumers, 0, 'a stream created again has no consumers: deleting removed the durable');
  });

  test(`${label}: after close every operation fails with TRANSPORT_CLOSED and waits resolve []`, async (t) => {
    const { transport, id, stream } = await setup(t);
    const name = await stream('closing', { subjects: [`cl${id}.*`] });
    const reader = transport.openReader(name, { startSeq: 1 });
    const parked = reader.next(10, 20_000);
    const consumer = await transport.consumer(name, { name: 'c' });
    const pulling = consumer.pull(10, 20_000);
    await sleep(100);
    // Delete before closing (teardown cannot once closed).
    await transport.deleteStream(name);
    t.deepEqual(await parked, []);
    t.deepEqual(await pulling, []);
    await transport.close();
    await transport.close(); // idempotent
    t.is(code(await t.throwsAsync(transport.publish(`cl${id}.a`, enc('x')))), 'TRANSPORT_CLOSED');
    t.is(code(await t.throwsAsync(transport.streamInfo(name))), 'TRANSPORT_CLOSED');
    t.is(code(t.throws(() => transport.openReader(name))), 'TRANSPORT_CLOSED');
    t.is(code(await t.throwsAsync(transport.consumer(name, { name: 'c' }))), 'TRANSPORT_CLOSED');
  });
}
