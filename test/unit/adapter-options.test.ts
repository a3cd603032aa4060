/**
 * Numeric options of the real-server adapters and of a cluster node are checked when they are
 * given, before any connection: a `ConfigError` naming the option.
 */
import test from 'ava';
import { ConfigError, InMemoryLeaseStore, createLogger, definePipeline, silentLogger, startNode } from '../../lib/index.js';
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';
import { counter } from '../helpers/counter.js';

test('RedisCheckpointStore refuses a timeout, retry count or scan setting out of range, naming it', (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ commandTimeoutMs: -1 }, 'commandTimeoutMs'],
    [{ connectTimeoutMs: Number.NaN }, 'connectTimeoutMs'],
    [{ maxRetriesPerRequest: 1.5 }, 'maxRetriesPerRequest'],
    [{ scanCount: 0 }, 'scanCount'],
    [{ scanAttempts: 0 }, 'scanAttempts'],
  ];
  for (const [options, field] of cases) {
    const err = t.throws(() => new RedisCheckpointStore({ url: 'redis://127.0.0.1:1', ...options }), { instanceOf: ConfigError }, JSON.stringify(options));
    t.is(err?.field, field);
  }
});

test('JetStreamTransport refuses streamDefaults.replicas that is not an integer from 1 to 5, before it connects', async (t) => {
  for (const replicas of [0, 1.5, 6]) {
    const err = await t.throwsAsync(JetStreamTransport.connect({ servers: 'nats://127.0.0.1:1', logger: silentLogger, streamDefaults: { replicas } }), { instanceOf: ConfigError });
    t.is(err?.field, 'streamDefaults.replicas');
  }
});

test('a cluster node refuses a renewEveryMs or pollEveryMs below 1 ms, naming it', async (t) => {
  const pipeline = definePipeline({ name: 'opts-cluster', stages: [{ actor: counter }] });
  for (const [cluster, field] of [[{ renewEveryMs: -5 }, 'cluster.renewEveryMs'], [{ pollEveryMs: 0 }, 'cluster.pollEveryMs']] as const) {
    const err = await t.throwsAsync(startNode({ pipeline, logger: silentLogger, cluster: { leases: new InMemoryLeaseStore({ ttlMs: 3_000 }), nodeId: 'a', ...cluster } }), { instanceOf: ConfigError });
    t.is(err?.field, field);
  }
});

test('RedisCheckpointStore.connect to a server that is not there rejects with the error and logs nothing of its own', async (t) => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  const err = await t.throwsAsync(RedisCheckpointStore.connect({ url: 'redis://127.0.0.1:1', logger, retry: { maxAttempts: 0 } }));
  t.like(err, { code: 'TRANSPORT_CLOSED' });
  t.deepEqual(lines.filter((l) => l.includes('"level":40') || l.includes('"level":50')), [], 'no warning or error line: the rejection is the report');
});
