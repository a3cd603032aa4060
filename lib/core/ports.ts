/**
 * The check every entry point makes of a backend it is given (a transport, a checkpoint store, a
 * clock, a lease store): an object with the port's methods, or a `ConfigError` naming the field
 * and what is missing, before anything is started or sent. Only the shape is checked; a backend
 * that has the methods but breaks their contract fails where it breaks it.
 */
import { ConfigError, describeValue } from './errors.js';

const PORTS = {
  transport: {
    what: 'a Transport (InMemoryTransport, JetStreamTransport...)',
    methods: ['ensureStream', 'streamInfo', 'publish', 'openReader', 'deleteStream', 'close'],
  },
  checkpointStore: {
    what: 'a CheckpointStore (InMemoryCheckpointStore, RedisCheckpointStore...)',
    methods: ['claim', 'readClaim', 'write', 'readMeta', 'readActor', 'readActors', 'clear', 'drop', 'close'],
  },
  clock: { what: 'a Clock (SystemClock, SimulatedClock...)', methods: ['now', 'setTimeout', 'clearTimeout'] },
  leases: {
    what: 'a LeaseStore (InMemoryLeaseStore, KvLeaseStore...)',
    methods: ['acquire', 'renew', 'release', 'revoke', 'get', 'list', 'watch', 'close'],
  },
} as const;

/** A kind of backend `checkPort` knows. */
export type PortKind = keyof typeof PORTS;

/**
 * Throws a `ConfigError` on `field` unless `value` is an object with every method of `port`.
 *
 * @example
 * checkPort('transport', 'transport', {}); // ConfigError: transport must be a Transport (...): it has no ensureStream, ... method
 */
export function checkPort(port: PortKind, field: string, value: unknown): void {
  const { what, methods } = PORTS[port];
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) throw new ConfigError(field, `must be ${what}, got ${describeValue(value)}`);
  const missing = methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0) throw new ConfigError(field, `must be ${what}: it has no ${missing.join(', ')} method${missing.length > 1 ? 's' : ''}`);
}
