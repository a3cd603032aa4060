/**
 * `createProducer`: publishes inputs to a pipeline's stages, and does nothing else. It is what
 * `node.ingest` runs, for processes that only feed a pipeline (an HTTP front end, a batch
 * loader): no stream is created, no partition is claimed, nothing is read.
 *
 * Invariants:
 *  1. One code path: `node.ingest(input, stage)` is `producer.send(input, stage)`, so an input gets
 *     the same checks, the same envelope, the same partition (`fnv1a32(key) % partitions`), the same
 *     subject and the same message ID (`input.id`, or a random UUID) from either.
 *  2. Every refusal is a rejected promise, never a synchronous throw: a `ConfigError` for an
 *     unknown stage, a `ValidationError` naming the field (`input.key`, `input.payload.items[2]`)
 *     for a bad input. A refused input publishes nothing; `sendMany` publishes nothing unless
 *     every input passes.
 *  3. A producer creates nothing: a stage whose stream does not exist yet fails with
 *     `NO_STREAM_FOR_SUBJECT` naming the stream and saying that a node creates it (a retryable
 *     error: the send succeeds once a node has started).
 *  4. With an OpenTelemetry SDK registered, each input sent has a `send <stage>` span (a child of
 *     the active span, or of the trace context its own headers carry) whose context goes in the
 *     envelope's headers (`traceparent`), so the stage's `process` span continues the trace.
 */
import { SystemClock, type Clock } from '../core/clock.js';
import { encodeEnvelope } from '../core/envelope.js';
import { ConfigError, describeValue, ValidationError, WardenError } from '../core/errors.js';
import { checkPort } from '../core/ports.js';
import { partitionOf } from '../core/ids.js';
import { SpanKinds, startSpan, type TraceSpan } from '../core/tracing.js';
import type { PubAck, Transport } from '../transport/transport.js';
import type { Pipeline, ResolvedStage } from './define-pipeline.js';

/** An input for a stage (the first one unless another is named). */
export interface IngestInput {
  /** Routing key: which keyed actor receives the input. Any non-empty string. */
  key: string;
  /** Event type, as the stage's machine knows it. Types starting with `warden.` or `xstate.` are reserved. */
  type: string;
  /**
   * The event's fields: a plain object of JSON values (no class instances such as `Date`, no
   * `BigInt`, `NaN`, functions or cycles). A property whose value is `undefined` is left out, as
   * JSON does. @default {}
   */
  payload?: Record<string, unknown>;
  /** Message ID, for dedupe of re-sent inputs within the stream's duplicate window. @default a random UUID */
  id?: string;
  /** String headers carried in the envelope. @default {} */
  headers?: Record<string, string>;
  /** Event time, ms. @default clock.now() */
  ts?: number;
}

/** Options of `createProducer`. */
export interface ProducerOptions {
  pipeline: Pipeline;
  /** The log the pipeline's nodes run on. */
  transport: Transport;
  /** Source of the default event time `ts`. @default new SystemClock() */
  clock?: Clock;
}

/** Publishes inputs to a pipeline's stages (see the file comment for what it promises). */
export interface Producer {
  readonly pipeline: Pipeline;
  /** Publishes one input to the first stage, or to `stage`; resolves with the log's acknowledgement. */
  send(input: IngestInput, stage?: string): Promise<PubAck>;
  /**
   * Checks every input, then publishes them in order (pipelined, not one round trip each);
   * resolves with their acknowledgements in the same order. If one input is refused, nothing
   * is published.
   */
  sendMany(inputs: readonly IngestInput[], stage?: string): Promise<PubAck[]>;
}

/** One checked input, ready to publish. */
interface Outgoing {
  subject: string;
  msgId: string;
  body: Uint8Array;
  span?: TraceSpan;
}

/**
 * A producer for `pipeline` on `transport`. Throws a `ConfigError` (synchronously) only for a
 * missing pipeline or transport; everything about an input is reported by the returned promise.
 *
 * @example
 * const producer = createProducer({ pipeline, transport: await JetStreamTransport.connect() });
 * await producer.send({ key: 'acct-1', type: 'deposit', payload: { amount: 25 } });
 * await producer.sendMany(rows.map((r) => ({ key: r.account, type: 'deposit', payload: { amount: r.amount } })));
 */
export function createProducer(options: ProducerOptions): Producer {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object { pipeline, transport }');
  const { pipeline, transport } = options;
  if (pipeline?.kind !== 'warden.pipeline') throw new ConfigError('pipeline', 'must be made by definePipeline()');
  checkPort('transport', 'transport', transport);
  const clock = options.clock ?? new SystemClock();

  const stageOf = (name: string | undefined): ResolvedStage => {
    if (name === undefined) return pipeline.stages[0]!;
    if (typeof name !== 'string' || !pipeline.stages.some((s) => s.name === name)) {
      throw new ConfigError('stage', `names no stage of pipeline ${pipeline.name}: ${JSON.stringify(name)} (stages: ${pipeline.stages.map((s) => s.name).join(', ')})`);
    }
    return pipeline.stage(name);
  };

  const publish = async (stage: ResolvedStage, out: Outgoing): Promise<PubAck> => {
    try {
      const ack = await transport.publish(out.subject, out.body, { msgId: out.msgId });
      out.span?.setAttribute('messaging.message.id', ack.seq);
      return ack;
    } catch (err) {
      out.span?.fail(err);
      if (err instanceof WardenError && err.code === 'NO_STREAM_FOR_SUBJECT') {
        throw new WardenError(
          'NO_STREAM_FOR_SUBJECT',
          `stream ${stage.stream} of stage ${stage.name} (pipeline ${pipeline.name}) does not exist: a node creates its pipeline's streams when it starts (startNode); a producer creates nothing`,
          { cause: err, details: { stream: stage.stream, subject: out.subject } },
        );
      }
      throw err;
    } finally {
      out.span?.end();
    }
  };

  return {
    pipeline,
    send(input, stageName) {
      let stage: ResolvedStage;
      let out: Outgoing;
      try {
        stage = stageOf(stageName);
        out = prepare(stage, input, 'input', clock);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return publish(stage, out);
    },
    sendMany(inputs, stageName) {
      let stage: ResolvedStage;
      let outs: Outgoing[];
      try {
        stage = stageOf(stageName);
        if (!Array.isArray(inputs)) throw new ValidationError('undecodable', `inputs must be an array of inputs, got ${describeValue(inputs)}`, { details: { field: 'inputs' } });
        outs = (inputs as readonly IngestInput[]).map((input, i) => prepare(stage, input, `inputs[${i}]`, clock));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return Promise.all(outs.map((out) => publish(stage, out)));
    },
  };
}

/** Checks one input (invariant 2) and builds its envelope, subject and message ID (invariant 1). */
function prepare(stage: ResolvedStage, input: IngestInput, at: string, clock: Clock): Outgoing {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) refuse(at, `must be an object { key, type, payload? }, got ${describeValue(input)}`);
  const { key, type } = input;
  if (typeof key !== 'string' || key.length === 0) refuse(`${at}.key`, `must be a non-empty string, got ${describeValue(key)}`);
  if (typeof type !== 'string' || type.length === 0) refuse(`${at}.type`, `must be a non-empty string, got ${describeValue(type)}`);
  if (type.startsWith('warden.') || type.startsWith('xstate.')) {
    throw new ValidationError('unknown-event', `${at}.type must be an event type the stage handles; 'warden.' and 'xstate.' types are reserved, got ${JSON.stringify(type)}`, {
      details: { field: `${at}.type`, type },
    });
  }
  const payload = input.payload === undefined ? {} : input.payload;
  checkPlainObject(payload, `${at}.payload`);
  const headers = input.headers === undefined ? {} : input.headers;
  checkHeaders(headers, `${at}.headers`);
  if (input.id !== undefined && (typeof input.id !== 'string' || input.id.length === 0 || input.id !== input.id.trim() || /[\r\n]/.test(input.id))) {
    refuse(`${at}.id`, `must be a non-empty string without surrounding whitespace or line breaks, got ${describeValue(input.id)}`);
  }
  if (input.ts !== undefined && (typeof input.ts !== 'number' || !Number.isFinite(input.ts))) refuse(`${at}.ts`, `must be a finite number of ms, got ${describeValue(input.ts)}`);
  const id = input.id ?? crypto.randomUUID();
  const partition = partitionOf(key, stage.partitions);
  // Invariant 4: a span per input sent, its trace context in the envelope's headers.
  const span = startSpan(`send ${stage.name}`, SpanKinds.producer, headers, () => ({ 'warden.stage': stage.name, 'warden.partition': partition, 'warden.type': type }));
  const traced = span ? { ...headers, ...span.headers() } : headers;
  const body = encodeEnvelope({ id, key, type, payload, headers: traced, ts: input.ts ?? clock.now() });
  return { subject: stage.subjectOf(partition), msgId: id, body, ...(span ? { span } : {}) };
}

function refuse(field: string, message: string): never {
  throw new ValidationError('undecodable', `${field} ${message}`, { details: { field } });
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkPlainObject(value: unknown, path: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !isPlain(value)) {
    refuse(path, `must be a plain object of JSON values, got ${describeValue(value)}`);
  }
  checkJson(value, [path], []);
}

/**
 * Where a value sits, as the parts of its path: the root's name, then property names and array
 * indexes. The path is spelled only when a value is refused, so a valid payload builds no string.
 */
type PathParts = Array<string | number>;

function spell(parts: PathParts): string {
  let out = String(parts[0]);
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    out += typeof p === 'number' ? `[${p}]` : `.${p}`;
  }
  return out;
}

/** Refuses what `JSON.stringify` would throw on, or silently change: the path names the first such value. */
function checkJson(value: unknown, at: PathParts, ancestors: object[]): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) refuse(spell(at), `is ${value}, which JSON cannot hold (it would become null)`);
      return;
    case 'bigint':
      refuse(spell(at), `is a BigInt (${value}n), which JSON cannot hold: send it as a string or a number`);
      break;
    case 'object': {
      if (value === null) return;
      if (ancestors.includes(value)) refuse(spell(at), 'refers back to an object that contains it (a cycle), which JSON cannot hold');
      if (Array.isArray(value)) {
        ancestors.push(value);
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          at.push(i);
          if (item === undefined) refuse(spell(at), 'is undefined, which JSON turns into null in an array');
          checkJson(item, at, ancestors);
          at.pop();
        }
        ancestors.pop();
        return;
      }
      if (!isPlain(value)) {
        const hint = value instanceof Date ? ' (send date.getTime() or date.toISOString())' : '';
        refuse(spell(at), `is ${describeValue(value)}, not a plain JSON object${hint}`);
      }
      ancestors.push(value);
      const record = value as Record<string, unknown>;
      for (const k of Object.keys(record)) {
        const v = record[k];
        if (v === undefined) continue;
        at.push(k);
        checkJson(v, at, ancestors);
        at.pop();
      }
      ancestors.pop();
      return;
    }
    default:
      // undefined at the top of an array item is handled above; functions and symbols never serialise.
      refuse(spell(at), `is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}, which JSON cannot hold`);
  }
}

function checkHeaders(headers: unknown, path: string): void {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || !isPlain(headers)) {
    refuse(path, `must be a plain object of string values, got ${describeValue(headers)}`);
  }
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') refuse(`${path}.${name}`, `must be a string, got ${describeValue(value)}`);
  }
}
