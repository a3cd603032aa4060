/**
 * The demo's backends: the embedded default (in-memory log and store), or real servers named
 * on the command line (`--nats <url>`, `--redis <url>`, each optional).
 */
import type { CheckpointStore, Transport } from '../../lib/index.js';
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { redactUrl } from '../../lib/core/redact.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';

/** Open backends and a line that says what they are (credentials redacted). */
export interface Backends {
  transport?: Transport;
  checkpointStore?: CheckpointStore;
  label: string;
  close(): Promise<void>;
}

export async function openBackends(options: { nats?: string | undefined; redis?: string | undefined }): Promise<Backends> {
  const transport = options.nats ? await JetStreamTransport.connect({ servers: options.nats }) : undefined;
  const checkpointStore = options.redis ? await RedisCheckpointStore.connect({ url: options.redis }) : undefined;
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
