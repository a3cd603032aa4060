/**
 * A pipeline on the production backends: the log on NATS JetStream (`warden/nats`), the
 * checkpoints in Redis (`warden/redis`). Each run counts one more hit for the key `home`: the
 * count survives restarts, restored from the checkpoint and the log.
 *
 * Run: npx tsx docs/examples/real-servers.ts [pipeline-name]   (prints { n: 1 }, then { n: 2 }...)
 * Servers: WARDEN_NATS_URL and WARDEN_REDIS_URL, default nats://127.0.0.1:4222 and redis://127.0.0.1:6379.
 */
import { assign, setup } from 'xstate';
import { defineActor, definePipeline, startNode } from 'warden';
import { JetStreamTransport } from 'warden/nats';
import { RedisCheckpointStore } from 'warden/redis';

const hits = defineActor({
  name: 'hits',
  machine: setup({ types: { context: {} as { n: number }, events: {} as { type: 'hit' } } }).createMachine({
    context: { n: 0 },
    on: { hit: { actions: assign({ n: ({ context }) => context.n + 1 }) } },
  }),
});
const pipeline = definePipeline({ name: process.argv[2] ?? 'site', stages: [{ actor: hits, partitions: 4 }] });

const transport = await JetStreamTransport.connect(); // servers: WARDEN_NATS_URL
const checkpointStore = await RedisCheckpointStore.connect(); // url: WARDEN_REDIS_URL
const node = await startNode({ pipeline, transport, checkpointStore });
await node.ingest({ key: 'home', type: 'hit' });
await node.whenCaughtUp();
console.log(node.inspect('hits', 'home')?.context);
await node.stop(); // final checkpoints
await checkpointStore.close();
await transport.close();
