/**
 * Logs an operator reads: one line per partition lifecycle event with stage, partition and epoch;
 * credentials and payloads redacted; errors with their cause chain (lib/core/logger.ts,
 * lib/pipeline/partitions.ts invariant 5).
 */
import test from 'ava';
import { ConfigError, createLogger, definePipeline, InMemoryCheckpointStore, silentLogger, startNode, WardenError } from '../../lib/index.js';
import { counter } from '../helpers/counter.js';

function capture(level: 'debug' | 'info' = 'info'): { lines: Array<Record<string, unknown>>; logger: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level, destination: { write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  return { lines, logger };
}

test('credentials and payloads are written as [redacted], at the top level and one level down', (t) => {
  const { lines, logger } = capture();
  logger.info({ password: 'hunter2', nats: { token: 's3cret', url: 'nats://h:4222' }, payload: { card: '4111' }, input: { body: 'x', key: 'k1' } }, 'hello');
  const line = lines[0]!;
  t.is(line.password, '[redacted]');
  t.deepEqual(line.nats, { token: '[redacted]', url: 'nats://h:4222' });
  t.is(line.payload, '[redacted]');
  t.deepEqual(line.input, { body: '[redacted]', key: 'k1' });
  t.false(JSON.stringify(lines).includes('hunter2') || JSON.stringify(lines).includes('4111'));
});

test('more paths can be redacted, and an error is written with its code and cause chain', (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'info', redact: ['user.email'], destination: { write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const err = new WardenError('TIMEOUT', 'checkpoint write timed out', { cause: new Error('ECONNRESET') });
  logger.error({ user: { email: 'a@b.c', id: 7 }, err }, 'failed');
  const line = lines[0]! as { user: unknown; err: { type: string; message: string; code: string; chain: Array<{ message: string }> } };
  t.deepEqual(line.user, { email: '[redacted]', id: 7 });
  t.is(line.err.code, 'TIMEOUT');
  t.deepEqual(line.err.chain.map((c) => c.message), ['checkpoint write timed out', 'ECONNRESET']);
});

test('createLogger refuses an unknown level, and WARDEN_LOG_LEVEL naming one, with a ConfigError naming where it came from', (t) => {
  t.is(t.throws(() => createLogger({ level: 'loud' as never }), { instanceOf: ConfigError })?.field, 'level');
  const before = process.env.WARDEN_LOG_LEVEL;
  process.env.WARDEN_LOG_LEVEL = 'verbose';
  try {
    const err = t.throws(() => createLogger(), { instanceOf: ConfigError });
    t.is(err?.field, 'WARDEN_LOG_LEVEL');
    t.regex(err?.message ?? '', /must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"/);
    t.notThrows(() => createLogger({ level: 'info' }), 'an explicit level wins over the environment');
  } finally {
    if (before === undefined) delete process.env.WARDEN_LOG_LEVEL;
    else process.env.WARDEN_LOG_LEVEL = before;
  }
});

test('a partition restored, killed and stopped each log one line with stage, partition and epoch', async (t) => {
  const { lines, logger } = capture();
  const pipeline = definePipeline({ name: 'logs-lifecycle', stages: [{ actor: counter, partitions: 1 }] });
  const node = await startNode({ pipeline, logger });
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  node.kill('counter', 0);
  await new Promise((resolve) => setTimeout(resolve, 200));
  await node.whenCaughtUp();
  await node.stop();
  const of = (msg: string): Array<Record<string, unknown>> => lines.filter((l) => l.msg === msg);
  t.is(of('partition restored').length, 2, 'started, then restarted after the kill');
  t.is(of('partition worker killed').length, 1);
  t.is(of('partition stopped').length, 1);
  for (const l of [...of('partition restored'), ...of('partition worker killed'), ...of('partition stopped')]) {
    t.like(l, { stage: 'counter', partition: 0 });
    t.true(typeof l.epoch === 'number' && l.epoch > 0, JSON.stringify(l));
  }
  const [first, second] = of('partition restored');
  t.true((second!.epoch as number) > (first!.epoch as number), 'the restart took a newer epoch');
  t.is(silentLogger.child({}), silentLogger);
});

test('a partition that fails and stays down, and the child that crashed, are logged with their error as an object: type, message, code, stack and chain', async (t) => {
  const { lines, logger } = capture();
  const pipeline = definePipeline({ name: 'logs-errors', stages: [{ actor: counter, partitions: 1, checkpoint: { everyEvents: 1, intervalMs: 20 } }] });
  const store = new InMemoryCheckpointStore();
  const node = await startNode({ pipeline, logger, checkpointStore: store });
  t.teardown(() => node.stop());
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  await node.whenCaughtUp();
  node.kill('counter', 0); // its supervisor logs the crashed child
  await new Promise((r) => setTimeout(r, 200));
  await node.whenCaughtUp();
  // Another owner takes the partition over (a newer epoch): this worker's next checkpoint is fenced.
  const scope = pipeline.stage('counter').scopeOf(0);
  const meta = await store.readMeta(scope);
  await store.write({ scope, seq: meta!.seq, epoch: meta!.epoch + 10, machineVersion: meta!.machineVersion, actors: {}, removed: [], outbox: [], timers: [], calls: [] });
  await node.ingest({ key: 'a', type: 'add', payload: { amount: 1 } });
  for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'partition stays down'); i++) await new Promise((r) => setTimeout(r, 20));
  for (const msg of ['partition worker failed', 'partition stays down', 'child crashed']) {
    const line = lines.find((l) => l.msg === msg);
    t.truthy(line, msg);
    const err = line?.err as { type?: string; message?: string; code?: string; stack?: string; chain?: unknown[] } | undefined;
    t.is(typeof err, 'object', `${msg}: err is an object`);
    t.truthy(err?.type && err.message && err.stack, `${msg}: ${JSON.stringify(err)}`);
    t.true(Array.isArray(err?.chain) && err.chain.length >= 1, `${msg}: chain`);
  }
  t.is((lines.find((l) => l.msg === 'partition stays down')?.err as { code?: string }).code, 'CHECKPOINT_FENCED');
});
