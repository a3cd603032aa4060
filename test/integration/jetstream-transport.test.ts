/**
 * JetStreamTransport against the shared nats-server (no restarts): error translation, connection
 * events, credential redaction, and the publish path's timeout/retry rules (adapter invariants
 * 1, 2 and 4; `puback-collector.ts` invariants 1-3). A plain NATS subscriber on a subject no
 * stream captures stands in for JetStream where a test needs to withhold or forge a PubAck.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { connect, headers as natsHeaders, type Msg, type MsgHdrsImpl, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamTransport, type JetStreamTransportEvent } from '../../lib/adapters/nats/index.js';
import { freePort } from '../../chaos/servers.js';
import { Redactor, redactUrl } from '../../lib/adapters/nats/errors.js';
import { parseHeaderBlock } from '../../lib/adapters/nats/messages.js';
import { copyBytes, encodePublish, parsePubAck, SubjectCache, type PublishBytes } from '../../lib/adapters/nats/wire.js';
import { WardenError, errorChain } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/logger.js';

const URL = process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const code = (err: unknown): string | undefined => (err instanceof WardenError ? err.code : undefined);
const uid = (): string => randomBytes(5).toString('hex');

/** Everything an error exposes: messages, stacks, details and causes, as one string. */
function exposed(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    parts.push(current.message, current.stack ?? '', JSON.stringify((current as { details?: unknown }).details ?? {}));
    current = current.cause;
  }
  return parts.join('\n');
}

/** A core NATS responder on `subject.>`; `reply` decides what (if anything) each request gets back. */
async function responder(subject: string, reply: (msg: Msg, n: number) => string | undefined): Promise<{ nc: NatsConnection; seen: Msg[] }> {
  const nc = await connect({ servers: URL });
  const seen: Msg[] = [];
  nc.subscribe(`${subject}.>`, {
    callback: (_err, msg) => {
      seen.push(msg);
      const answer = reply(msg, seen.length);
      if (answer !== undefined) msg.respond(enc(answer));
    },
  });
  await nc.flush();
  return { nc, seen };
}

test('redactUrl replaces URL userinfo and keeps everything else', (t) => {
  t.is(redactUrl('nats://alice:s3cret@nats.internal:4222'), 'nats://***@nats.internal:4222');
  t.is(redactUrl('tls://token@10.0.0.1:4443'), 'tls://***@10.0.0.1:4443');
  t.is(redactUrl('alice:s3cret@127.0.0.1:4222'), '***@127.0.0.1:4222');
  t.is(redactUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  t.is(redactUrl('127.0.0.1:4222'), '127.0.0.1:4222');
  t.is(redactUrl('nats://a%40b:p%3Aw@h:1'), 'nats://***@h:1');
  t.is(redactUrl('ws://host:80/path@x'), 'ws://host:80/path@x');
});

test('a failed connect is TRANSPORT_CLOSED and names the server without its credentials (invariant 4)', async (t) => {
  const port = await freePort();
  const err = await t.throwsAsync(JetStreamTransport.connect({
    servers: `nats://alice:s3cretPw0rd@127.0.0.1:${port}`, waitOnFirstConnect: false, connectTimeoutMs: 1_000,
  }));
  t.is(code(err), 'TRANSPORT_CLOSED');
  t.true(err?.message.includes(`nats://***@127.0.0.1:${port}`), err?.message);
  const everything = exposed(err);
  t.false(everything.includes('s3cretPw0rd'), everything);
  t.false(everything.includes('alice'), everything);
  const tokenErr = await t.throwsAsync(JetStreamTransport.connect({
    servers: [`127.0.0.1:${port}`], token: 'tok-s3cret', user: 'bob', pass: 'pw-s3cret', waitOnFirstConnect: false, connectTimeoutMs: 1_000,
  }));
  t.is(code(tokenErr), 'TRANSPORT_CLOSED');
  t.false(/tok-s3cret|pw-s3cret/.test(exposed(tokenErr)));
});

test('ensureStream on an existing stream keeps its replica count: a transport with other streamDefaults.replicas neither scales it nor fails', async (t) => {
  const id = uid();
  const one = await JetStreamTransport.connect({ servers: URL });
  const three = await JetStreamTransport.connect({ servers: URL, streamDefaults: { replicas: 3 } });
  t.teardown(async () => {
    await one.deleteStream(`keep_${id}`).catch(() => undefined);
    await one.close();
    await three.close();
  });
  await one.ensureStream({ name: `keep_${id}`, subjects: [`keep${id}.>`], duplicateWindowMs: 60_000 });
  // On one server a replica count of 3 cannot be created; asked of an existing stream, it is not applied.
  await t.notThrowsAsync(three.ensureStream({ name: `keep_${id}`, subjects: [`keep${id}.>`], duplicateWindowMs: 30_000 }));
  const nc = await connect({ servers: URL });
  t.teardown(() => nc.close());
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const info = await (await jetstreamManager(nc)).streams.info(`keep_${id}`);
  t.is(info.config.num_replicas, 1, 'the replica count it was created with');
  t.is(info.config.duplicate_window, 30_000 * 1_000_000, 'the rest of the config is updated');
});

test('bad stream configs the server refuses are CONFIG, with the JetStream error kept as cause', async (t) => {
  const id = uid();
  const replicated = await JetStreamTransport.connect({ servers: URL, streamDefaults: { replicas: 3 } });
  t.teardown(() => replicated.close());
  const err = await t.throwsAsync(replicated.ensureStream({ name: `rep_${id}`, subjects: [`rep${id}.>`] }));
  t.is(code(err), 'CONFIG');
  t.regex(err?.message ?? '', /replicas/);
  t.like((err as WardenError).details, { op: 'ensureStream', stream: `rep_${id}`, errCode: 10074 });
  t.is(errorChain(err)[1]?.name, 'JetStreamApiError');

  const file = await JetStreamTransport.connect({ servers: URL });
  const memory = await JetStreamTransport.connect({ servers: URL, streamDefaults: { storage: 'memory' } });
  t.teardown(async () => {
    await file.deleteStream(`st_${id}`).catch(() => undefined);
    await file.close();
    await memory.close();
  });
  await file.ensureStream({ name: `st_${id}`, subjects: [`st${id}.>`] });
  const storage = await t.throwsAsync(memory.ensureStream({ name: `st_${id}`, subjects: [`st${id}.>`] }));
  t.is(code(storage), 'CONFIG');
  t.regex(storage?.message ?? '', /storage/);
  t.is(code(await t.throwsAsync(file.ensureStream({ name: `api_${id}`, subjects: ['$JS.API.>'] }))), 'CONFIG');
});

test('connection events: on() reports closed, a throwing listener is harmless, and the remover stops delivery (invariant 1)', async (t) => {
  const transport = await JetStreamTransport.connect({ servers: URL });
  const events: JetStreamTransportEvent[] = [];
  const removed: JetStreamTransportEvent[] = [];
  transport.on(() => {
    throw new Error('listener bug');
  });
  transport.on((e) => events.push(e));
  const off = transport.on((e) => removed.push(e));
  off();
  await transport.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(events, [{ type: 'closed' }]);
  t.deepEqual(removed, []);
});

test('a publish without PubAck is sent again with the same msgId until acknowledged; stats count the retries (invariant 2)', async (t) => {
  const id = uid();
  const { nc, seen } = await responder(`noack${id}`, (_msg, n) => (n < 3 ? undefined : JSON.stringify({ stream: 'fake', seq: 7 })));
  const transport = await JetStreamTransport.connect({ servers: URL, publishTimeoutMs: 200, publishRetry: { initialMs: 20, maxMs: 50 } });
  t.teardown(async () => {
    await transport.close();
    await nc.close();
  });
  const ack = await transport.publish(`noack${id}.x`, enc('body'), { msgId: 'same-id', headers: { trace: 't' } });
  t.deepEqual(ack, { stream: 'fake', seq: 7, duplicate: false });
  t.is(seen.length, 3);
  t.deepEqual(seen.map((m) => m.headers?.get('Nats-Msg-Id')), ['same-id', 'same-id', 'same-id']);
  t.true(seen.every((m) => m.headers?.get('trace') === 't' && new TextDecoder().decode(m.data) === 'body' && m.reply === seen[0]?.reply));
  t.like(transport.stats(), { published: 1, acked: 1, retries: 2, failed: 0, inFlight: 0 });
});

test('a publish without msgId is never sent twice: TIMEOUT; close fails what is still retrying with TRANSPORT_CLOSED (invariants 2, 5)', async (t) => {
  const id = uid();
  const { nc, seen } = await responder(`silent${id}`, () => undefined);
  const transport = await JetStreamTransport.connect({ servers: URL, publishTimeoutMs: 150, publishRetry: { initialMs: 10, maxMs: 20 } });
  t.teardown(() => nc.close());
  const once = await t.throwsAsync(transport.publish(`silent${id}.x`, enc('x')));
  t.is(code(once), 'TIMEOUT');
  t.is(seen.length, 1);
  const retrying = transport.publish(`silent${id}.x`, enc('y'), { msgId: 'forever' });
  const outcome = retrying.then(() => 'acked', (err: unknown) => code(err));
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.true(transport.stats().retries >= 2);
  await transport.close();
  t.is(await outcome, 'TRANSPORT_CLOSED');
});

test('JetStream error replies to a publish are translated; the body of the error is kept in details (invariant 4)', async (t) => {
  const id = uid();
  const errors: Record<string, object> = {
    big: { error: { code: 400, err_code: 10054, description: 'message size exceeds maximum allowed' } },
    down: { error: { code: 503, err_code: 10008, description: 'JetStream system temporarily unavailable' } },
    weird: { error: { code: 400, err_code: 10999, description: 'something invalid' } },
  };
  const { nc } = await responder(`errs${id}`, (msg) => JSON.stringify(errors[msg.subject.split('.').pop() ?? ''] ?? {}));
  const transport = await JetStreamTransport.connect({ servers: URL });
  t.teardown(async () => {
    await transport.close();
    await nc.close();
  });
  const big = await t.throwsAsync(transport.publish(`errs${id}.big`, enc('x'), { msgId: 'b' }));
  t.is(code(big), 'MESSAGE_TOO_LARGE');
  t.like((big as WardenError).details, { subject: `errs${id}.big`, errCode: 10054, size: 1 });
  t.true((big as WardenError).nonRetryable);
  t.is(code(await t.throwsAsync(transport.publish(`errs${id}.down`, enc('x')))), 'TIMEOUT');
  t.is(code(await t.throwsAsync(transport.publish(`errs${id}.weird`, enc('x')))), 'CONFIG');
  const huge = await t.throwsAsync(transport.publish(`errs${id}.big`, new Uint8Array(2 * 1024 * 1024)));
  t.is(code(huge), 'MESSAGE_TOO_LARGE', 'over the server max_payload: refused by the client');
  t.like(transport.stats(), { published: 4, failed: 4, inFlight: 0 });
});

test('a slow reader far behind: the reader pauses and recreates its consumer, and still yields every message once, in order (reader invariants 1, 2)', async (t) => {
  const id = uid();
  let pauses = 0;
  const logger = { ...silentLogger, debug: (_o: object, msg?: string) => void (msg?.startsWith('reader paused') && pauses++) };
  const transport = await JetStreamTransport.connect({ servers: URL, readerBatch: 32, logger });
  const name = `slow_${id}`;
  t.teardown(async () => {
    await transport.deleteStream(name).catch(() => undefined);
    await transport.close();
  });
  await transport.ensureStream({ name, subjects: [`slow${id}.*`] });
  const N = 5_000;
  const acks = [];
  for (let i = 0; i < N; i++) acks.push(transport.publish(`slow${id}.${i % 3}`, enc(String(i)), { msgId: `s-${i}` }));
  await Promise.all(acks);
  const reader = transport.openReader(name, { filterSubject: `slow${id}.*` });
  // Let deliveries pile up past the pause limit (16 batches of 32) before reading slowly.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const got: number[] = [];
  while (got.length < N) {
    const batch = await reader.next(100, 5_000);
    if (batch.length === 0) break;
    for (const m of batch) got.push(m.seq);
    if (got.length % 1_000 < 100) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.is(got.length, N);
  t.true(got.every((seq, i) => seq === i + 1), 'every message once, in order');
  t.deepEqual(await reader.next(10, 0), []);
  t.true(pauses > 0, 'the reader paused at least once');
  await reader.close();
});

test('wire helpers agree with the NATS client: header blocks, PubAcks, header parsing (wire invariants 1, 2)', (t) => {
  const cases = [{ msgId: 'o-1' }, { headers: { trace: '  t1 ', 'X-Y': 'ünï' } }, { msgId: 'm-2', headers: { a: '1', b: '' } }];
  for (const options of cases) {
    const out: PublishBytes = { buf: new ArrayBuffer(0), headerAt: 0, bodyAt: 0, bodyLength: 0 };
    encodePublish(enc('body'), options, out);
    const h = natsHeaders() as MsgHdrsImpl; // the client's own encoder is the reference
    for (const [k, v] of Object.entries(options.headers ?? {})) h.set(k, v);
    if (options.msgId !== undefined) h.set('Nats-Msg-Id', options.msgId);
    t.deepEqual(new Uint8Array(out.buf, out.headerAt, out.bodyAt - out.headerAt), h.encode(), JSON.stringify(options));
    t.deepEqual(new Uint8Array(out.buf, out.bodyAt, out.bodyLength), enc('body'));
    const parsed = parseHeaderBlock(h.encode());
    t.is(parsed.msgId, options.msgId);
    t.deepEqual(parsed.headers, Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k, v.trim()])));
  }
  const streams = new SubjectCache();
  t.deepEqual(parsePubAck(enc('{"stream":"S", "seq":42}'), streams), { stream: 'S', seq: 42, duplicate: false });
  t.deepEqual(parsePubAck(enc('{"stream":"S", "seq":42,"duplicate": true}'), streams), { stream: 'S', seq: 42, duplicate: true });
  t.deepEqual(parsePubAck(enc('{"stream":"S", "domain":"hub", "seq":7}'), streams), { stream: 'S', seq: 7, duplicate: false });
  t.is(parsePubAck(enc('{"error":{"code":400,"err_code":10054,"description":"x"},"stream":"S","seq":0}'), streams), undefined);
  t.is(parsePubAck(enc('{"stream":"S\\"x", "seq":1}'), streams), undefined, 'escapes go through JSON.parse');
  const a = copyBytes(enc('abc'));
  const b = copyBytes(enc('def'));
  a.fill(0);
  t.deepEqual(b, enc('def'), 'slab copies never overlap');
});

test('the redactor scrubs URL userinfo and given secrets from messages and error chains (invariant 4)', (t) => {
  const r = new Redactor(['hunter22']);
  t.is(r.text('dial nats://bob:hunter22@10.0.0.1:4222 failed; token hunter22'), 'dial nats://***@10.0.0.1:4222 failed; token ***');
  const err = new Error('auth failed for tok-hunter22', { cause: new Error('at nats://x:y@h:1') });
  const scrubbed = r.error(err) as Error;
  t.not(scrubbed, err);
  t.false(exposed(scrubbed).includes('hunter22'));
  t.false(exposed(scrubbed).includes('x:y@'));
  const clean = new Error('nothing secret');
  t.is(r.error(clean), clean, 'an error without secrets is kept as is');
});
