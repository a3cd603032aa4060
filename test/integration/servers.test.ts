/** chaos/servers.ts: own servers on free ports that survive kill and restart with their data. */
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { startNatsServer, startRedisServer } from '../../chaos/servers.js';

test('an own nats-server keeps its JetStream data across a SIGKILL and restart on the same port', async (t) => {
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  t.not(nats.port, 4222);
  const firstPid = nats.pid;
  let nc = await connect({ servers: nats.url });
  let jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'survivor', subjects: ['survivor.>'] });
  const js = jsm.jetstream();
  for (let i = 0; i < 10; i++) await js.publish('survivor.x', new TextEncoder().encode(String(i)));
  await nc.close();
  await nats.kill();
  t.false(nats.running);
  await nats.restart();
  t.not(nats.pid, firstPid);
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  t.is((await jsm.streams.info('survivor')).state.messages, 10);
  await nc.close();
});

test('an own redis-server with AOF keeps acknowledged writes across a SIGKILL and restart', async (t) => {
  const redis = await startRedisServer({ appendonly: true });
  t.teardown(() => redis.destroy());
  t.not(redis.port, 6379);
  let client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  await client.set('k', 'v1');
  client.disconnect();
  await redis.kill();
  await redis.restart();
  client = new Redis(redis.url, { lazyConnect: true });
  await client.connect();
  t.is(await client.get('k'), 'v1');
  client.disconnect();
});
