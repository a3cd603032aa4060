/**
 * The mapping between the port's stream and consumer settings and JetStream's, with the checks
 * the in-memory twin makes (so both refuse the same configs with `CONFIG`). No I/O.
 */
import { nanos } from '@nats-io/transport-node';
import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig as JsStreamConfig, type StreamInfo as JsStreamInfo } from '@nats-io/jetstream';
import { ConfigError } from '../../core/errors.js';
import { resolveStreamConfig, type ConsumerOptions, type StreamConfig, type StreamInfo } from '../../transport/transport.js';
import { checkFilter, isValidSubject, NAME } from './messages.js';
import { DEFAULT_DUPLICATE_WINDOW_MS, type ResolvedOptions } from './options.js';

/**
 * Validates a port `StreamConfig` (as the in-memory twin does) and maps it to JetStream's,
 * applying the transport's stream defaults: subjects, limits retention, storage, replicas,
 * discard old, `max_msgs` (0 = -1), `max_age` and `duplicate_window` in nanoseconds (a window of
 * 0 becomes 1 ms: JetStream cannot turn deduplication off), `max_msg_size`.
 *
 * @example
 * await jsm.streams.add(toJsConfig({ name: 'orders', subjects: ['orders.>'] }, resolved.defaults));
 */
export function toJsConfig(config: StreamConfig, d: ResolvedOptions['defaults']): JsStreamConfig {
  if (!NAME.test(config.name)) throw new ConfigError('stream.name', `must match ${NAME.source} (got "${config.name}")`);
  const withDefaults: StreamConfig = { ...config };
  if (withDefaults.duplicateWindowMs === undefined && d.duplicateWindowGiven) withDefaults.duplicateWindowMs = d.duplicateWindowMs;
  if (withDefaults.maxAgeMs === undefined && d.maxAgeGiven) withDefaults.maxAgeMs = d.maxAgeMs;
  if (withDefaults.maxMsgSize === undefined && d.maxMsgSizeGiven) withDefaults.maxMsgSize = d.maxMsgSize;
  const r = resolveStreamConfig(withDefaults);
  if (r.subjects.length === 0) throw new ConfigError('stream.subjects', 'must list at least one subject');
  for (const [i, subject] of r.subjects.entries()) {
    if (!isValidSubject(subject, true)) throw new ConfigError('stream.subjects', `"${subject}" is not a valid subject`);
    if (r.subjects.indexOf(subject) !== i) throw new ConfigError('stream.subjects', `"${subject}" is listed twice`);
  }
  for (const key of ['duplicateWindowMs', 'maxAgeMs', 'maxMsgSize', 'maxMsgs'] as const) {
    const value = r[key];
    if (!(Number.isFinite(value) && value >= 0)) throw new ConfigError(`stream.${key}`, `must be a number >= 0 (got ${value})`);
  }
  // JetStream: the duplicate window defaults to, and may not exceed, a shorter max age.
  if (r.maxAgeMs > 0) {
    if (withDefaults.duplicateWindowMs === undefined) r.duplicateWindowMs = Math.min(DEFAULT_DUPLICATE_WINDOW_MS, r.maxAgeMs);
    else if (r.duplicateWindowMs > r.maxAgeMs) {
      throw new ConfigError('stream.duplicateWindowMs', `must not exceed maxAgeMs ${r.maxAgeMs} (got ${r.duplicateWindowMs})`);
    }
  }
  return {
    name: r.name,
    subjects: r.subjects,
    retention: RetentionPolicy.Limits,
    storage: d.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: d.replicas,
    discard: DiscardPolicy.Old,
    max_msgs: r.maxMsgs > 0 ? r.maxMsgs : -1,
    max_bytes: -1,
    max_age: nanos(r.maxAgeMs),
    max_msg_size: r.maxMsgSize > 0 ? r.maxMsgSize : -1,
    duplicate_window: nanos(Math.max(1, r.duplicateWindowMs)),
  } as JsStreamConfig;
}

/**
 * JetStream's stream info as the port's (`firstSeq` is `lastSeq + 1` when the stream is empty;
 * `consumers` is the server's consumer count: durables and the readers' ordered consumers).
 *
 * @example const info = toInfo(await jsm.streams.info('orders'));
 */
export function toInfo(si: JsStreamInfo): StreamInfo {
  const s = si.state;
  return {
    name: si.config.name, subjects: [...(si.config.subjects ?? [])], firstSeq: s.messages === 0 ? s.last_seq + 1 : s.first_seq, lastSeq: s.last_seq, messages: s.messages, bytes: s.bytes,
    consumers: s.consumer_count,
  };
}

/** A filter with "everything" (`>`, empty, none) as undefined. @example normalFilter('>') // undefined */
export function normalFilter(filter: string | undefined): string | undefined {
  return filter === undefined || filter === '' || filter === '>' ? undefined : filter;
}

/** Throws `CONFIG` for consumer options the in-memory twin refuses too. @example checkConsumerOptions({ name: 'billing' }) */
export function checkConsumerOptions(o: ConsumerOptions): void {
  if (!NAME.test(o.name)) throw new ConfigError('consumer.name', `must match ${NAME.source} (got "${o.name}")`);
  checkFilter(o.filterSubject, 'filterSubject');
  if (o.startSeq !== undefined && (!Number.isInteger(o.startSeq) || o.startSeq < 1)) {
    throw new ConfigError('consumer.startSeq', `must be an integer >= 1 (got ${o.startSeq})`);
  }
  if (o.ackWaitMs !== undefined && !(o.ackWaitMs > 0 && Number.isFinite(o.ackWaitMs))) {
    throw new ConfigError('consumer.ackWaitMs', `must be a positive number of ms (got ${o.ackWaitMs})`);
  }
  if (o.maxDeliver !== undefined && !(o.maxDeliver === -1 || (Number.isInteger(o.maxDeliver) && o.maxDeliver >= 1))) {
    throw new ConfigError('consumer.maxDeliver', `must be -1 (unlimited) or an integer >= 1 (got ${o.maxDeliver})`);
  }
}
