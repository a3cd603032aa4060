/**
 * Durable pull consumers with explicit acks: created with the options asked, or bound to and
 * brought in line with them (ack wait, max deliveries, filter where the server can change it).
 */
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type ConsumerConfig, type ConsumerInfo, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ConfigError } from '../../core/errors.js';
import type { ConsumerOptions } from '../../transport/transport.js';
import { toWardenError, type NatsErrorContext } from './errors.js';
import { atLeast } from './options.js';
import { normalFilter } from './stream-config.js';

/**
 * Creates the durable `options.name` on `stream`, or updates it to the options; `startSeq` only
 * counts at creation. A push consumer of that name is refused (`CONFIG`).
 *
 * @example
 * await ensureDurable(jsm, 'orders', { name: 'billing' }, { ackWaitMs: 30_000, maxDeliver: -1, filter: undefined, serverVersion: [2, 10, 0] }, ctx);
 */
export async function ensureDurable(
  jsm: JetStreamManager,
  stream: string,
  options: ConsumerOptions,
  o: { ackWaitMs: number; maxDeliver: number; filter: string | undefined; serverVersion: [number, number, number] },
  ctx: NatsErrorContext,
): Promise<void> {
  const { ackWaitMs, maxDeliver, filter } = o;
  let info: ConsumerInfo | undefined;
  try {
    info = await jsm.consumers.info(stream, options.name);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw toWardenError(err, ctx);
  }
  try {
    if (!info) {
      const cfg: Partial<ConsumerConfig> = {
        durable_name: options.name,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(ackWaitMs),
        max_deliver: maxDeliver,
        max_ack_pending: -1,
        deliver_policy: DeliverPolicy.All,
      };
      if (options.startSeq !== undefined && options.startSeq > 1) {
        cfg.deliver_policy = DeliverPolicy.StartSequence;
        cfg.opt_start_seq = options.startSeq;
      }
      if (filter !== undefined) cfg.filter_subject = filter;
      await jsm.consumers.add(stream, cfg);
    } else {
      if (typeof info.config.deliver_subject === 'string') {
        throw new ConfigError('consumer.name', `"${options.name}" is a push consumer of stream "${stream}"`);
      }
      const update: Partial<ConsumerConfig> = {};
      if (info.config.ack_wait !== nanos(ackWaitMs)) update.ack_wait = nanos(ackWaitMs);
      if ((info.config.max_deliver ?? -1) !== maxDeliver) update.max_deliver = maxDeliver;
      if (normalFilter(info.config.filter_subject) !== filter) {
        if (!atLeast(o.serverVersion, [2, 10, 0])) {
          throw new ConfigError('consumer.filterSubject', `of durable "${options.name}" cannot change on NATS server ${o.serverVersion.join('.')} ` +
            `(was "${info.config.filter_subject ?? '>'}", asked "${filter ?? '>'}")`);
        }
        update.filter_subject = filter ?? '';
      }
      if (Object.keys(update).length > 0) await jsm.consumers.update(stream, options.name, update);
    }
  } catch (err) {
    throw toWardenError(err, ctx);
  }
}
