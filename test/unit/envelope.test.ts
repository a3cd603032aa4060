import test from 'ava';
import { decodeEnvelope, encodeEnvelope, envelopeBody, type Envelope } from '../../lib/core/envelope.js';
import {
  ActorCrashedError,
  ConfigError,
  TerminalError,
  ValidationError,
  WardenError,
  describeError,
  errorChain,
} from '../../lib/core/errors.js';
import { deadLetterMessageId, hash32, outputMessageId, partitionOf } from '../../lib/core/ids.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const sample: Envelope = {
  id: 'clicks:alice:7:0',
  key: 'alice',
  type: 'click',
  payload: { page: '/home', n: 3, nested: { ok: true, list: [1, 'two', null] } },
  headers: { 'trace-id': 'abc', 'x-origin': 'test' },
  ts: 1_700_000_000_123,
};

function undecodable(data: Uint8Array, seq: number): ValidationError {
  try {
    decodeEnvelope(data, seq);
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError, the message decoded');
}

// --- envelope --------------------------------------------------------------------------------

test('encode/decode round trip: every field survives and the seq is attached on decode', (t) => {
  const decoded = decodeEnvelope(encodeEnvelope(sample), 42);
  t.deepEqual(decoded, { ...sample, seq: 42 });
});

test('the encoded body never carries seq, even when the envelope has one', (t) => {
  const withSeq: Envelope = { ...sample, seq: 99 };
  const body = JSON.parse(dec(encodeEnvelope(withSeq))) as Record<string, unknown>;
  t.false('seq' in body);
  t.deepEqual(Object.keys(body), ['id', 'key', 'type', 'payload', 'headers', 'ts']);
  t.is(dec(encodeEnvelope(withSeq)), envelopeBody(withSeq));
  // Re-delivered at another position, it gets the new position.
  t.is(decodeEnvelope(encodeEnvelope(withSeq), 7).seq, 7);
  t.is(envelopeBody(withSeq), envelopeBody(sample));
});

test('encode is UTF-8: non-ASCII keys and payloads round-trip byte-exactly', (t) => {
  const e: Envelope = { ...sample, key: 'zoë-東京', payload: { text: 'naïve ☕ 🚀' } };
  const bytes = encodeEnvelope(e);
  t.is(bytes.length, Buffer.byteLength(envelopeBody(e), 'utf8'));
  t.deepEqual(decodeEnvelope(bytes, 1), { ...e, seq: 1 });
});

test('decode defaults: missing payload and headers become {}, a missing or non-number ts becomes 0', (t) => {
  t.deepEqual(decodeEnvelope(enc('{"id":"i","key":"k","type":"t"}'), 3), { id: 'i', key: 'k', type: 't', payload: {}, headers: {}, ts: 0, seq: 3 });
  t.is(decodeEnvelope(enc('{"id":"i","key":"k","type":"t","ts":"yesterday"}'), 3).ts, 0);
});

test('decode: invalid UTF-8 is undecodable, naming the seq, with the decoder error as cause', (t) => {
  const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"\xff\xfe"}
  const err = undecodable(bytes, 17);
  t.is(err.code, 'VALIDATION');
  t.is(err.reason, 'undecodable');
  t.regex(err.message, /seq 17/);
  t.regex(err.message, /UTF-8/);
  t.true(err.cause instanceof TypeError);
});

test('decode: text that is not JSON is undecodable, naming the seq', (t) => {
  for (const text of ['', 'hello', '{"id":', "{'id':'x'}"]) {
    const err = undecodable(enc(text), 5);
    t.is(err.reason, 'undecodable', text);
    t.regex(err.message, /message at seq 5 is not valid UTF-8 JSON/);
    t.true(err.cause instanceof SyntaxError);
  }
});

test('decode: JSON that is not an object (array, null, scalar) is undecodable', (t) => {
  for (const text of ['[]', '[{"id":"i","key":"k","type":"t"}]', 'null', '42', '"str"', 'true']) {
    const err = undecodable(enc(text), 9);
    t.is(err.reason, 'undecodable', text);
    t.is(err.message, 'message at seq 9 is not a JSON object');
  }
});

for (const field of ['id', 'key', 'type'] as const) {
  test(`decode: a missing, empty or non-string '${field}' is undecodable, naming the field and seq`, (t) => {
    const good: Record<string, unknown> = { id: 'i', key: 'k', type: 't', payload: {}, headers: {}, ts: 1 };
    const variants: Array<Record<string, unknown>> = [
      Object.fromEntries(Object.entries(good).filter(([f]) => f !== field)),
      { ...good, [field]: '' },
      { ...good, [field]: 12 },
      { ...good, [field]: null },
      { ...good, [field]: ['x'] },
    ];
    for (const v of variants) {
      const err = undecodable(enc(JSON.stringify(v)), 31);
      t.is(err.reason, 'undecodable');
      t.is(err.message, `message at seq 31: field '${field}' must be a non-empty string`);
    }
  });
}

for (const field of ['payload', 'headers'] as const) {
  test(`decode: a non-object '${field}' is undecodable, naming the field and seq`, (t) => {
    for (const bad of [[], [1, 2], 'text', 5, true]) {
      const err = undecodable(enc(JSON.stringify({ id: 'i', key: 'k', type: 't', [field]: bad })), 8);
      t.is(err.reason, 'undecodable', JSON.stringify(bad));
      t.is(err.message, `message at seq 8: field '${field}' must be an object`);
    }
  });
}

// --- ids -------------------------------------------------------------------------------------

test('outputMessageId is <operator>:<key>:<inputSeq>:<n> and is deterministic', (t) => {
  t.is(outputMessageId('sessions', 'alice', 42, 0), 'sessions:alice:42:0');
  t.is(outputMessageId('sessions', 'alice', 42, 3), 'sessions:alice:42:3');
  t.is(outputMessageId('sessions', 'alice', 42, 3), outputMessageId('sessions', 'alice', 42, 3));
  t.not(outputMessageId('sessions', 'alice', 42, 0), outputMessageId('sessions', 'alice', 43, 0));
  t.is(deadLetterMessageId('sessions', 42), 'dlq:sessions:42');
});

test('hash32 is FNV-1a 32-bit (known vectors) and unsigned', (t) => {
  t.is(hash32(''), 0x811c9dc5);
  t.is(hash32('a'), 0xe40c292c);
  t.is(hash32('foobar'), 0xbf9cf968);
  for (const s of ['x', 'alice', 'a long key with spaces', '東京']) {
    const h = hash32(s);
    t.true(Number.isInteger(h) && h >= 0 && h <= 0xffff_ffff, s);
  }
});

test('partitionOf is stable and always in range', (t) => {
  for (const partitions of [2, 3, 8, 16, 100]) {
    for (let i = 0; i < 500; i++) {
      const key = `user-${i}`;
      const p = partitionOf(key, partitions);
      t.true(Number.isInteger(p) && p >= 0 && p < partitions, `${key} -> ${p} of ${partitions}`);
      t.is(partitionOf(key, partitions), p);
    }
  }
  // Fixed values (FNV-1a computed independently), so a change of hash, which would re-route
  // every key of every deployed pipeline, is noticed.
  t.is(hash32('alice'), 2_267_157_479);
  t.is(partitionOf('alice', 8), 7);
  t.is(partitionOf('bob', 8), 4);
  t.is(partitionOf('user-42', 16), 11);
  t.is(partitionOf('alice', 1), 0);
  t.throws(() => partitionOf('alice', 0), { message: /partitions must be an integer >= 1/ }, 'no partition of none');
});

test('partitionOf spreads 10k keys over 8 partitions: each gets between 10% and 15%', (t) => {
  const counts = new Array<number>(8).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const p = partitionOf(`key-${i}`, 8);
    counts[p] = (counts[p] ?? 0) + 1;
  }
  t.is(counts.reduce((a, b) => a + b, 0), 10_000);
  for (const [p, n] of counts.entries()) t.true(n >= 1_000 && n <= 1_500, `partition ${p} got ${n}`);
});

// --- errors ----------------------------------------------------------------------------------

test('describeError renders a cause chain as one line', (t) => {
  const root = new Error('connection refused');
  const mid = new Error('publish failed', { cause: root });
  const top = new WardenError('TIMEOUT', 'checkpoint timed out', { cause: mid });
  t.is(describeError(top), 'checkpoint timed out (caused by publish failed (caused by connection refused))');
  t.is(describeError(root), 'connection refused');
  t.is(describeError('plain string'), 'plain string');
  t.is(describeError(new Error('wrapped', { cause: { code: 42 } })), 'wrapped (caused by {"code":42})');
  t.is(describeError(new Error('wrapped', { cause: 'why' })), 'wrapped (caused by why)');
});

test('describeError keeps a multi-line message on one line and does not repeat a cause the message already quotes', (t) => {
  const syntax = new Error('Transform failed with 1 error:\n/x/m.ts:1:24: ERROR: Unexpected ";"');
  const top = new Error(`module m.ts could not be loaded: ${syntax.message}`, { cause: syntax });
  t.is(describeError(top), 'module m.ts could not be loaded: Transform failed with 1 error: /x/m.ts:1:24: ERROR: Unexpected ";"');
  t.is(describeError(new Error('a', { cause: new Error('b\r\n  c') })), 'a (caused by b c)');
});

test('describeError stops at depth 8 on a cyclic cause chain', (t) => {
  const a = new Error('a');
  const b = new Error('b', { cause: a });
  (a as { cause?: unknown }).cause = b;
  t.is(describeError(b), 'b (caused by a (caused by b (caused by a (caused by b (caused by a (caused by b (caused by a)))))))');
});

test('errorChain lists name, message and code down the cause chain', (t) => {
  const root = new TypeError('bad input');
  const v = new ValidationError('schema', 'payload invalid', { cause: root });
  const crash = new ActorCrashedError('counter', 'alice', v);
  t.deepEqual(errorChain(crash), [
    { name: 'ActorCrashedError', message: 'actor counter[alice] crashed: payload invalid (caused by bad input)', code: 'ACTOR_CRASHED' },
    { name: 'ValidationError', message: 'payload invalid', code: 'VALIDATION' },
    { name: 'TypeError', message: 'bad input' },
  ]);
  t.deepEqual(errorChain(new Error('x', { cause: 7 })), [{ name: 'Error', message: 'x' }, { name: 'number', message: '7' }]);
  t.deepEqual(errorChain(undefined), []);
});

test('error classes carry their code, nonRetryable flag and details', (t) => {
  const c = new ConfigError('checkpoint.everyEvents', 'must be a positive integer', { details: { value: -1 } });
  t.is(c.code, 'CONFIG');
  t.is(c.name, 'ConfigError');
  t.is(c.message, 'checkpoint.everyEvents must be a positive integer');
  t.deepEqual(c.details, { field: 'checkpoint.everyEvents', value: -1 });
  t.true(c.nonRetryable);
  const term = new TerminalError('give up');
  t.is(term.code, 'TERMINAL');
  t.true(term.nonRetryable);
  const plain = new WardenError('TIMEOUT', 'slow');
  t.false(plain.nonRetryable);
  t.deepEqual(plain.details, {});
  t.is(plain.cause, undefined);
  t.true(plain instanceof Error);
});
