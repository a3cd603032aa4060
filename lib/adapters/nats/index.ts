/**
 * `warden/nats`: the production Transport on NATS JetStream.
 *
 * Invariants (detailed in `jetstream-transport.ts` and the modules it names):
 *  1. `JetStreamTransport` keeps every invariant of the `Transport` port; the contract suite
 *     (`test/contract/transport.contract.ts`) runs against it and the in-memory twin.
 *  2. Publishes are pipelined (one PubAck inbox) and retried with the same msgId until
 *     acknowledged; readers are ordered consumers that survive reconnects and server restarts.
 *  3. No credential appears in a log line, an event or an error (`redactUrl`).
 *
 * @example
 * import { JetStreamTransport } from 'warden/nats';
 * const transport = await JetStreamTransport.connect({ servers: process.env.WARDEN_NATS_URL });
 * const node = await startNode({ pipeline, transport, checkpointStore });
 */
export {
  JetStreamTransport,
  type JetStreamTransportOptions,
  type JetStreamTransportEvent,
  type JetStreamTransportStats,
  type JetStreamStreamDefaults,
  type PublishRetryOptions,
} from './jetstream-transport.js';
export { KvLeaseStore, type KvLeaseStoreOptions, type KvLeaseStoreConnectOptions } from './kv-leases.js';
export { KvBreakerStateStore, breakerKey, DEFAULT_BREAKER_BUCKET, type KvBreakerStateStoreOptions, type KvBreakerStateConnectOptions } from './kv-breaker-state.js';
