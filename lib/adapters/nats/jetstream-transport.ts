/**
 * `JetStreamTransport`: the production `Transport` on NATS JetStream. It keeps the port's
 * invariants 1-5 (`lib/transport/transport.ts`) with the server doing the storing, numbering,
 * deduplicating and redelivering, and is checked by the same contract suite as the in-memory
 * twin (`test/contract/transport.contract.ts`).
 *
 * Invariants of the adapter:
 *  1. One connection, reconnecting forever (`maxReconnectAttempts: -1`, `waitOnFirstConnect`);
 *     its status changes are reported as typed events (`on`), never with credentials.
 *  2. Publishes take the fast path of `PubAckCollector` (no per-publish round trip awaited
 *     before the next send); one without a PubAck in `publishTimeoutMs` is sent again with the
 *     same msgId until it is acknowledged or the transport closes, and after a reconnect every
 *     publish in flight is sent again at once (the client drops what it buffered while
 *     disconnected) (see `puback-collector.ts`).
 *  3. Readers are JetStream ordered consumers (`jetstream-reader.ts`), recreated from their
 *     cursor after a reconnect, when their heartbeats stop and when they stall; consumers are
 *     durable pull consumers with explicit acks (`jetstream-consumer.ts`).
 *  4. Every failure is a `WardenError` with the driver's error as cause (`errors.ts`), and no
 *     user name, password, token or URL userinfo appears in an error, an event or a log line.
 *  5. After `close()` every operation fails with `TRANSPORT_CLOSED`; readers and consumers are
 *     closed; publishes in flight get up to `publishTimeoutMs` to be acknowledged, the rest fail
 *     with `TRANSPORT_CLOSED`; then the connection is drained.
 *  6. A request that may be sent again waits `attemptTimeoutMs` (2 s, or `apiTimeoutMs` if
 *     shorter) per try, not `apiTimeoutMs`: one sent while its stream elects a leader, or whose
 *     answer was lost with a connection, is never answered. The idempotent reads (`streamInfo`,
 *     `lastSeqOf`, `getMessage`) are asked again after a try that timed out, up to
 *     `ceil(apiTimeoutMs / attemptTimeoutMs)` tries, so they find a leader elected meanwhile;
 *     readers recreate their consumer with tries of that length (`jetstream-reader.ts`).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamClient, type JetStreamManager, type StreamInfo as JsStreamInfo } from '@nats-io/jetstream';
import { ConfigError, WardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { retrySetup } from './setup-retry.js';
import type {
  Consumer,
  ConsumerOptions,
  PubAck,
  PublishOptions,
  Reader,
  ReaderOptions,
  StoredMessage,
  StreamConfig,
  StreamInfo,
  Transport,
} from '../../transport/transport.js';
import { redactUrl, toWardenError, type NatsErrorContext, type Redactor } from './errors.js';
import { DurableBook, JetStreamConsumer, type ConsumerHost } from './jetstream-consumer.js';
import { ensureDurable } from './durables.js';
import { JetStreamReader, type ReaderHost } from './jetstream-reader.js';
import * as messages from './messages.js';
import { checkFilter, storedMessage } from './messages.js';
import { atLeast, resolveOptions, versionOf, type JetStreamTransportEvent, type JetStreamTransportOptions, type JetStreamTransportStats, type ResolvedOptions } from './options.js';
import { PubAckCollector } from './puback-collector.js';
import { checkConsumerOptions, normalFilter, toInfo, toJsConfig } from './stream-config.js';

/**
 * The transport's option, event and stats types (defined in `options.ts`).
 *
 * @example import type { JetStreamTransportOptions } from './jetstream-transport.js';
 */
export type { JetStreamStreamDefaults, JetStreamTransportEvent, JetStreamTransportOptions, JetStreamTransportStats, PublishRetryOptions } from './options.js';

/** Something `close`/`deleteStream` must shut down. */
interface Handle {
  readonly streamName: string;
  shutdown(): void;
}

// Bound once: a module namespace access per publish costs a getter under tsx.
const { checkPublishSubject } = messages;

/**
 * The production Transport on NATS JetStream (see the file comment for its invariants).
 *
 * Where it differs from the in-memory twin, and why:
 *  - `maxMsgSize` is the server's `max_msg_size`, which counts the header block (the msgId and
 *    headers) with the body; a message over the server's `max_payload` is refused by the client.
 *    Both fail with `MESSAGE_TOO_LARGE`.
 *  - `duplicateWindowMs: 0` becomes 1 ms (JetStream cannot turn deduplication off), and an entry
 *    leaves the window up to ~50 ms late (the server purges it on a timer).
 *  - `StreamInfo.bytes` is the server's figure (subjects, headers and overhead included).
 *  - Headers follow NATS rules in both (names `!`..`~` without `:`, no line breaks, values
 *    trimmed, `Nats-*` names reserved: `CONFIG`); `Nats-Msg-Id` comes back as `msgId`.
 *  - `timestampMs` is the server's clock; `pending()` of a consumer is kept locally.
 *  - A durable's `filterSubject` cannot change on a server older than 2.10 (`CONFIG`).
 *
 * @example
 * const transport = await JetStreamTransport.connect({ servers: 'nats://127.0.0.1:4222', logger });
 * const off = transport.on((e) => logger.info(e, 'nats'));
 * await transport.ensureStream({ name: 'orders', subjects: ['orders.>'] });
 * const ack = await transport.publish('orders.eu', bytes, { msgId: 'o-1' });
 * const reader = transport.openReader('orders', { startSeq: ack.seq });
 * console.log(await reader.next(100, 1_000));
 * off(); await transport.close();
 */
export class JetStreamTransport implements Transport {
  private closedFlag = false;
  private closing: Promise<void> | undefined;
  private readonly collector: PubAckCollector;
  private readonly js: JetStreamClient;
  private readonly listeners = new Set<(event: JetStreamTransportEvent) => void>();
  private readonly handles = new Set<Handle>();
  private readonly books = new Map<string, DurableBook>();
  private readonly counters = { disconnects: 0, reconnects: 0 };
  private readonly logger: Logger;
  private readonly readerHost: ReaderHost;
  private readonly consumerHost: ConsumerHost;
  private readonly serverVersion: [number, number, number];

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    /** The same API with tries of `attemptTimeoutMs` (invariant 6). */
    private readonly retryJsm: JetStreamManager,
    private readonly o: ResolvedOptions,
    private readonly redactor: Redactor,
    retry: { initialMs: number; maxMs: number },
  ) {
    this.logger = o.logger;
    this.js = jsm.jetstream();
    this.serverVersion = versionOf(nc.info?.version);
    this.collector = new PubAckCollector({
      nc, clock: o.clock, logger: o.logger, redactor, timeoutMs: o.publishTimeoutMs, retryInitialMs: retry.initialMs, retryMaxMs: retry.maxMs,
    });
    const assertOpen = (): void => this.assertOpen();
    const release = (h: Handle): void => {
      this.handles.delete(h);
    };
    this.readerHost = { js: retryJsm.jetstream(), clock: o.clock, logger: o.logger, redactor, batch: o.readerBatch, assertOpen, release };
    this.consumerHost = {
      nc, clock: o.clock, logger: o.logger, redactor, apiPrefix: jsm.getOptions().apiPrefix ?? '$JS.API', requestTimeoutMs: o.apiTimeoutMs,
      termWithReason: atLeast(this.serverVersion, [2, 11, 0]), assertOpen, release,
    };
    this.watchStatus().catch((err: unknown) => this.logger.error({ err: this.redactor.error(err) }, 'NATS status watcher failed'));
    nc.closed().then((err) => this.onConnectionClosed(err), () => undefined);
  }

  /**
   * Connects (reconnecting forever afterwards) and checks that JetStream answers. Rejects with
   * `TRANSPORT_CLOSED` when no server can be reached (only with `waitOnFirstConnect: false`),
   * `CONFIG` for refused credentials, bad options or a server without JetStream.
   *
   * @example
   * const transport = await JetStreamTransport.connect({ servers: process.env.NATS_URL, user: 'warden', pass: secret });
   */
  static async connect(options: JetStreamTransportOptions = {}): Promise<JetStreamTransport> {
    const { servers, redactor, resolved, retry, connection: co } = resolveOptions(options);
    const where = servers.map(redactUrl).join(', ');
    let nc: NatsConnection;
    try {
      nc = await connect(co);
    } catch (err) {
      throw toWardenError(err, { op: `connect to ${where}`, redactor });
    }
    let jsm: JetStreamManager;
    let retryJsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc, { timeout: resolved.apiTimeoutMs });
      retryJsm = await jetstreamManager(nc, { ...jsm.getOptions(), timeout: resolved.attemptTimeoutMs, checkAPI: false });
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw toWardenError(err, { op: `JetStream check on ${where}`, redactor });
    }
    resolved.logger.info({ servers: where, server: redactUrl(nc.getServer()), version: nc.info?.version }, 'connected to NATS');
    return new JetStreamTransport(nc, jsm, retryJsm, resolved, redactor, retry);
  }

  /**
   * Registers a listener of connection events (invariant 1); returns its remover. A listener
   * that throws is logged, never breaks the transport.
   *
   * @example
   * const off = transport.on((e) => console.log(e.type)); // 'disconnected', 'reconnecting', 'reconnected'...
   * off();
   */
  on(listener: (event: JetStreamTransportEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Counters of the publish path (`retries`: publishes sent again after `publishTimeoutMs`)
   * and of connection changes.
   *
   * @example
   * const { retries, inFlight } = transport.stats();
   */
  stats(): JetStreamTransportStats {
    return { ...this.collector.stats(), ...this.counters };
  }

  /**
   * Creates the stream, or updates it when it exists with another config. The replica count is
   * chosen when the stream is created: an update keeps the stream's own (scaling a stream is an
   * operator's act, and a node started with another `streamDefaults.replicas`, or none, must not
   * scale production streams up or down). While JetStream does not answer (`TIMEOUT`) it asks
   * again for up to `setupTimeoutMs`.
   */
  async ensureStream(config: StreamConfig): Promise<StreamInfo> {
    this.assertOpen();
    const cfg = toJsConfig(config, this.o.defaults);
    const ctx = this.ctx('ensureStream', { stream: cfg.name });
    const existing = async (): Promise<JsStreamInfo | undefined> => {
      try {
        return await this.jsm.streams.info(cfg.name);
      } catch (err) {
        const e = toWardenError(err, ctx);
        if (e.code === 'STREAM_NOT_FOUND') return undefined;
        throw e;
      }
    };
    const update = async (current: JsStreamInfo): Promise<StreamInfo> => {
      try {
        return toInfo(await this.jsm.streams.update(cfg.name, { ...cfg, num_replicas: current.config.num_replicas }));
      } catch (err) {
        throw toWardenError(err, ctx);
      }
    };
    const once = async (): Promise<StreamInfo> => {
      const current = await existing(); // first: the server judges a create's replicas before it sees the stream exists
      if (current) return update(current);
      try {
        return toInfo(await this.jsm.streams.add(cfg));
      } catch (err) {
        const e = toWardenError(err, ctx);
        if (e.code !== 'STREAM_EXISTS') throw e;
      }
      const raced = await existing(); // created by another node meanwhile
      if (!raced) throw new WardenError('STREAM_NOT_FOUND', `stream ${cfg.name} was reported to exist, then not found`, { details: { stream: cfg.name } });
      return update(raced);
    };
    return retrySetup(once, { withinMs: this.o.setupTimeoutMs, clock: this.o.clock, logger: this.logger, what: `ensureStream ${cfg.name}` });
  }

  /** Asked again after a try without an answer (invariant 6). */
  async streamInfo(stream: string): Promise<StreamInfo> {
    return toInfo(await this.read('streamInfo', { stream }, (jsm) => jsm.streams.info(stream)));
  }

  /** Sequence of the newest message on `subject` in `stream`, 0 if none (asked again as `streamInfo` is). */
  async lastSeqOf(stream: string, subject: string): Promise<number> {
    const m = await this.read('lastSeqOf', { stream, subject }, (jsm) => jsm.streams.getMessage(stream, { last_by_subj: subject }));
    return m ? m.seq : 0;
  }

  /**
   * Publishes on the fast path (invariant 2). Rejects with `NO_STREAM_FOR_SUBJECT`,
   * `MESSAGE_TOO_LARGE`, `CONFIG` (bad subject or header), `TIMEOUT` (no PubAck and no msgId to
   * retry with) or `TRANSPORT_CLOSED`.
   */
  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PubAck> {
    if (this.closedFlag) return Promise.reject(closedError());
    try {
      checkPublishSubject(subject);
      // The body and headers are encoded into a copy at once: the client keeps a reference
      // until it flushes, and a retry sends the same bytes again.
      return this.collector.publish(subject, data, options);
    } catch (err) {
      return Promise.reject(toWardenError(err, this.ctx('publish', { subject })));
    }
  }

  async getMessage(stream: string, seq: number): Promise<StoredMessage | undefined> {
    if (!Number.isInteger(seq) || seq < 1) {
      this.assertOpen();
      return undefined;
    }
    const m = await this.read('getMessage', { stream }, (jsm) => jsm.streams.getMessage(stream, { seq }));
    return m ? storedMessage(stream, m.subject, m.seq, m.data, m.header, m.time.getTime()) : undefined;
  }

  /**
   * An ordered reader (invariant 3). Throws `TRANSPORT_CLOSED` (synchronously) after `close()`
   * and `CONFIG` for a bad filter or start; a missing stream is reported by `next()`.
   */
  openReader(stream: string, options: ReaderOptions = {}): Reader {
    this.assertOpen();
    checkFilter(options.filterSubject);
    const startSeq = options.startSeq ?? 1;
    if (!Number.isInteger(startSeq) || startSeq < 1) throw new ConfigError('reader.startSeq', `must be an integer >= 1 (got ${startSeq})`);
    const reader = new JetStreamReader(this.readerHost, stream, startSeq, options.filterSubject);
    this.handles.add(reader);
    return reader;
  }

  /**
   * Creates, or binds to, a durable pull consumer with explicit acks. Binding again with another
   * `ackWaitMs` or `maxDeliver` updates the durable; `startSeq` only counts at creation.
   */
  async consumer(stream: string, options: ConsumerOptions): Promise<Consumer> {
    this.assertOpen();
    checkConsumerOptions(options);
    const ackWaitMs = options.ackWaitMs ?? 30_000;
    const maxDeliver = options.maxDeliver ?? -1;
    const filter = normalFilter(options.filterSubject);
    const ctx = this.ctx('consumer', { stream, consumer: options.name });
    await ensureDurable(this.jsm, stream, options, { ackWaitMs, maxDeliver, filter, serverVersion: this.serverVersion }, ctx);
    const key = `${stream}\u0000${options.name}`;
    let book = this.books.get(key);
    if (book) {
      book.ackWaitMs = ackWaitMs;
      book.maxDeliver = maxDeliver;
    } else {
      book = new DurableBook(ackWaitMs, maxDeliver);
      this.books.set(key, book);
    }
    this.assertOpen();
    const consumer = new JetStreamConsumer(this.consumerHost, stream, options.name, book);
    this.handles.add(consumer);
    return consumer;
  }

  /** Deletes the stream with its consumers; this transport's readers and consumers of it are closed. */
  async deleteStream(stream: string): Promise<void> {
    this.assertOpen();
    for (const h of [...this.handles]) if (h.streamName === stream) h.shutdown();
    for (const key of [...this.books.keys()]) if (key.startsWith(`${stream}\u0000`)) this.books.delete(key);
    await this.api('deleteStream', { stream }, () => this.jsm.streams.delete(stream));
  }

  /** Invariant 5. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closedFlag = true;
    for (const h of [...this.handles]) h.shutdown();
    await this.collector.settle(this.o.publishTimeoutMs);
    this.collector.close();
    try {
      if (!this.nc.isClosed()) await this.nc.drain();
    } catch (err) {
      this.logger.debug({ err: this.redactor.error(err) }, 'drain failed; closing');
      await this.nc.close().catch(() => undefined);
    }
  }

  private assertOpen(): void {
    if (this.closedFlag) throw closedError();
  }

  private ctx(op: string, extra: Omit<NatsErrorContext, 'op' | 'redactor'> = {}): NatsErrorContext {
    return { op, ...extra, redactor: this.redactor };
  }

  /** Invariant 6: an idempotent read, asked again after a try that timed out, for about `apiTimeoutMs` in all. */
  private async read<T>(op: string, extra: Omit<NatsErrorContext, 'op' | 'redactor'>, fn: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
    const tries = Math.ceil(this.o.apiTimeoutMs / this.o.attemptTimeoutMs);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.api(op, extra, () => fn(this.retryJsm));
      } catch (err) {
        if ((err as WardenError).code !== 'TIMEOUT' || attempt >= tries || this.closedFlag) throw err;
        this.logger.debug({ op, ...extra, attempt }, 'no answer in time; asking again');
      }
    }
  }

  private async api<T>(op: string, extra: Omit<NatsErrorContext, 'op' | 'redactor'>, fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await fn();
    } catch (err) {
      throw toWardenError(err, this.ctx(op, extra));
    }
  }

  private emit(event: JetStreamTransportEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err: this.redactor.error(err), event: event.type }, 'transport event listener threw');
      }
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.counters.disconnects++;
          this.logger.warn({ server: redactUrl(s.server) }, 'disconnected from NATS');
          this.emit({ type: 'disconnected', server: redactUrl(s.server) });
          break;
        case 'reconnecting':
          this.emit({ type: 'reconnecting' });
          break;
        case 'reconnect':
          this.counters.reconnects++;
          this.logger.info({ server: redactUrl(s.server), resent: this.collector.resendAll() }, 'reconnected to NATS');
          for (const h of this.handles) {
            if (h instanceof JetStreamReader) h.restart('reconnected');
            else if (h instanceof JetStreamConsumer) h.reconnected();
          }
          this.emit({ type: 'reconnected', server: redactUrl(s.server) });
          break;
        case 'error': {
          const error = toWardenError(s.error, this.ctx('connection'));
          this.logger.error({ err: error }, 'NATS connection error');
          this.emit({ type: 'error', error });
          break;
        }
        default:
          break;
      }
    }
  }

  private onConnectionClosed(err: void | Error): void {
    const error = err ? toWardenError(err, this.ctx('connection')) : undefined;
    if (!this.closedFlag) {
      // Closed under us (e.g. credentials refused on reconnect): nothing more can work.
      this.logger.error({ err: error }, 'NATS connection closed');
      this.closedFlag = true;
      for (const h of [...this.handles]) h.shutdown();
      this.collector.close();
      this.closing ??= Promise.resolve();
    }
    this.emit(error ? { type: 'closed', error } : { type: 'closed' });
  }
}

function closedError(): WardenError {
  return new WardenError('TRANSPORT_CLOSED', 'transport is closed', { nonRetryable: true });
}

