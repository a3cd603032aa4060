/**
 * What the `warden` commands that act on a user's pipeline share: loading the pipeline from a
 * module, connecting to the pipeline's NATS and Redis, and writing to the terminal.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { ConfigError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { redactUrl } from '../core/redact.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Pipeline } from '../pipeline/define-pipeline.js';
import type { Transport } from '../transport/transport.js';
import { connectNats, connectRedis } from './backends.js';

/** Where a command writes (the process's stdout and stderr; tests capture them). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** The process's stdout and stderr. @example register(program, processIo) */
export const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * The pipeline a module exports: a named export `pipeline`, else the default export; either may
 * be a pipeline or a function (sync or async) returning one. The path is resolved from the
 * current directory; TypeScript modules load too. The module should only define the pipeline:
 * whatever else it does at import time (starting a node) happens too.
 *
 * @example const pipeline = await loadPipeline('./dist/pipeline.js');
 */
export async function loadPipeline(modulePath: string, cwd = process.cwd()): Promise<Pipeline> {
  const url = pathToFileURL(resolve(cwd, modulePath)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError('module', `${modulePath} could not be loaded: ${(err as Error).message}`, { cause: err });
  }
  let candidate = mod.pipeline ?? mod.default;
  if (typeof candidate === 'function') candidate = await (candidate as () => unknown)();
  if ((candidate as Partial<Pipeline> | undefined)?.kind !== 'warden.pipeline') {
    throw new ConfigError(
      'module',
      `${modulePath} exports no pipeline: expected a named export 'pipeline' or a default export, made by definePipeline() or a function returning one (it exports: ${Object.keys(mod).join(', ') || 'nothing'})`,
    );
  }
  return candidate as Pipeline;
}

/** The `--nats`, `--redis` and `--redis-prefix` options of a command. */
export interface BackendOptions {
  nats?: string;
  redis?: string;
  redisPrefix?: string;
  /** Replicas of the streams a node creates (3 on a NATS cluster). @default 1 */
  replicas?: number;
}

/** Adds `--nats URL`, `--redis URL` and `--redis-prefix P` to `command`. @example withBackendOptions(program.command('inspect')) */
export function withBackendOptions(command: Command): Command {
  return command
    .option('--nats <url>', 'NATS server URL(s), comma-separated (default: $WARDEN_NATS_URL or nats://127.0.0.1:4222)')
    .option('--redis <url>', 'Redis URL (default: $WARDEN_REDIS_URL or redis://127.0.0.1:6379)')
    .option('--redis-prefix <prefix>', 'key prefix of the checkpoint store (default: warden)');
}

/** The pipeline's log and checkpoint store, connected; `close()` closes both. */
export interface Backends {
  transport: Transport;
  checkpointStore: CheckpointStore;
  /** Where they are, credentials redacted. */
  label: string;
  close(): Promise<void>;
}

/**
 * Connects to NATS and Redis, failing fast (no waiting for a server that is down).
 *
 * @example const { transport, checkpointStore, close } = await connectBackends({ nats: 'nats://127.0.0.1:4222' });
 */
export async function connectBackends(options: BackendOptions): Promise<Backends> {
  const nats = options.nats ?? process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
  const redis = options.redis ?? process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const logger = createLogger({ name: 'warden-cli' });
  const transport = await connectNats(nats, { logger, name: 'warden-cli', ...(options.replicas ? { replicas: options.replicas } : {}) });
  let checkpointStore: CheckpointStore;
  try {
    checkpointStore = await connectRedis(redis, { logger, ...(options.redisPrefix ? { keyPrefix: options.redisPrefix } : {}) });
  } catch (err) {
    await transport.close();
    throw err;
  }
  return {
    transport,
    checkpointStore,
    label: `NATS at ${nats.split(',').map(redactUrl).join(',')}, Redis at ${redactUrl(redis)}`,
    async close() {
      await transport.close();
      await checkpointStore.close();
    },
  };
}

/**
 * A node's operations endpoint given on the command line: an http:// or https:// URL, without a
 * trailing slash; anything else is a bad argument (the usage, exit 1).
 *
 * @example endpointUrl('http://127.0.0.1:9464/') // 'http://127.0.0.1:9464'
 */
export function endpointUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError("It must be an http:// URL of a node's operations endpoint, e.g. http://127.0.0.1:9464.");
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError('It must be an http:// or https:// URL.');
  return v.replace(/\/+$/, '');
}
