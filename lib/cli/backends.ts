/**
 * The backends of a CLI command: the embedded default (in-memory log and store), or real servers
 * named on the command line (`--nats <url>`, `--redis <url>`).
 *
 * The adapters are imported only when asked for: their client packages (`@nats-io/*`,
 * `ioredis`) are optional peer dependencies of warden, so an embedded run works without them,
 * and a run that needs a missing one fails with a `ConfigError` that says what to install.
 */
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { LeaseStore } from '../cluster/leases.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { redactUrl } from '../core/redact.js';
import type { Transport } from '../transport/transport.js';

/** The client packages of each adapter, as a user installs them. */
export const NATS_PACKAGES = ['@nats-io/transport-node', '@nats-io/jetstream', '@nats-io/kv'] as const;
export const REDIS_PACKAGES = ['ioredis'] as const;

/** Open backends and a line that says what they are (credentials redacted). */
export interface Backends {
  transport?: Transport;
  checkpointStore?: CheckpointStore;
  label: string;
  close(): Promise<void>;
}

/**
 * Connects to what `options` names; a server that does not answer fails the call at once
 * (no waiting for it to come up), and whatever was opened is closed again.
 */
export async function openBackends(options: { nats?: string | undefined; redis?: string | undefined }): Promise<Backends> {
  const transport = options.nats ? await connectNats(options.nats) : undefined;
  let checkpointStore: CheckpointStore | undefined;
  try {
    checkpointStore = options.redis ? await connectRedis(options.redis) : undefined;
  } catch (err) {
    await transport?.close();
    throw err;
  }
  const label = [
    transport ? `NATS JetStream at ${redactUrl(options.nats!)}` : 'in-memory log',
    checkpointStore ? `Redis at ${redactUrl(options.redis!)}` : 'in-memory checkpoints',
  ].join(', ');
  return {
    ...(transport ? { transport } : {}),
    ...(checkpointStore ? { checkpointStore } : {}),
    label,
    async close() {
      await transport?.close();
      await checkpointStore?.close();
    },
  };
}

/** Connects to NATS JetStream (comma-separated URLs), failing fast. */
export async function connectNats(url: string, o: { logger?: Logger; name?: string; replicas?: number } = {}): Promise<Transport> {
  const { JetStreamTransport } = await importAdapter(() => import('../adapters/nats/index.js'), '--nats', NATS_PACKAGES);
  return JetStreamTransport.connect({
    servers: url.split(','), waitOnFirstConnect: false, ...(o.logger ? { logger: o.logger } : {}), ...(o.name ? { name: o.name } : {}),
    ...(o.replicas ? { streamDefaults: { replicas: o.replicas } } : {}),
  });
}

/**
 * Opens the cluster's lease bucket on NATS KV (created if missing, unless `create` is false: then a
 * missing bucket rejects with `STREAM_NOT_FOUND`), failing fast.
 */
export async function connectLeases(url: string | undefined, o: { bucket: string; ttlMs?: number; replicas: number; logger?: Logger; create?: boolean }): Promise<LeaseStore> {
  const { KvLeaseStore } = await importAdapter(() => import('../adapters/nats/index.js'), '--nats', NATS_PACKAGES);
  return KvLeaseStore.connect({
    servers: url ?? process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222', bucket: o.bucket, replicas: o.replicas,
    ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }), ...(o.logger ? { logger: o.logger } : {}), ...(o.create === false ? { create: false } : {}),
  });
}

/** Connects to Redis, failing fast. */
export async function connectRedis(url: string, o: { logger?: Logger; keyPrefix?: string } = {}): Promise<CheckpointStore> {
  const { RedisCheckpointStore } = await importAdapter(() => import('../adapters/redis/index.js'), '--redis', REDIS_PACKAGES);
  return RedisCheckpointStore.connect({ url, ...(o.logger ? { logger: o.logger } : {}), ...(o.keyPrefix ? { keyPrefix: o.keyPrefix } : {}) });
}

/** Imports an adapter; if one of its client packages is not installed, says which to install. */
async function importAdapter<T>(load: () => Promise<T>, field: string, packages: readonly string[]): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const missing = packages.filter((name) => isMissingPackage(err, name));
    if (missing.length === 0) throw err;
    const what = packages.length > 1 ? 'optional peer dependencies of warden, not installed with it' : 'an optional peer dependency of warden, not installed with it';
    throw new ConfigError(field, `needs ${packages.join(', ')} (${what}); ${missing.join(', ')} is missing. Install: npm install ${packages.join(' ')}`, { cause: err });
  }
}

/** Node reports a package it cannot find as ERR_MODULE_NOT_FOUND, "Cannot find package '<name>' imported from ...". */
function isMissingPackage(err: unknown, name: string): boolean {
  if (!(err instanceof Error) || (err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') return false;
  return err.message.includes(`'${name}'`) || err.message.includes(`/node_modules/${name}/`);
}
