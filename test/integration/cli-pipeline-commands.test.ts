/**
 * `warden inspect` and `warden teardown` (lib/cli/commands/) against the real servers
 * (JetStream on 127.0.0.1:4222, Redis on 6379), on a pipeline loaded from a module, while a node
 * runs and after it stopped. Each run has its own pipeline name and Redis key prefix.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { silentLogger, startNode } from '../../lib/index.js';
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';
import { register as registerInspect, runInspect } from '../../lib/cli/commands/inspect.js';
import { register as registerTeardown, runTeardown } from '../../lib/cli/commands/teardown.js';
import type { CliIo } from '../../lib/cli/pipeline-module.js';
import { makePipeline } from '../fixtures/pipelines.js';

const MODULE = 'test/fixtures/pipeline-named.ts';

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (text: string) => {
      io.stdout += text;
    },
    err: (text: string) => {
      io.stderr += text;
    },
  };
  return io;
}

test.serial('inspect reads a key of a running pipeline from NATS and Redis; teardown refuses while it runs and deletes everything once it stopped', async (t) => {
  const id = randomBytes(4).toString('hex');
  const name = `it-cli-${id}`;
  const redisPrefix = `it-cli-${id}`;
  process.env.WARDEN_FIXTURE_PIPELINE = name; // read by the fixture module's pipeline function
  const pipeline = makePipeline(name);
  const transport = await JetStreamTransport.connect({ name: 'it-cli', waitOnFirstConnect: false });
  const store = await RedisCheckpointStore.connect({ url: 'redis://127.0.0.1:6379', keyPrefix: redisPrefix, logger: silentLogger });
  const backends = { nats: 'nats://127.0.0.1:4222', redis: 'redis://127.0.0.1:6379', redisPrefix };
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await node.stop();
    await runTeardown({ module: MODULE, ...backends, yes: true, force: true }, capture());
    await transport.close();
    await store.close();
    process.exitCode = undefined;
  });
  for (const amount of [5, 6, 7]) await node.ingest({ key: 'alice', type: 'add', payload: { amount } });
  await node.whenCaughtUp();

  // inspect, while the node runs: the durable state (checkpoint + log), read-only.
  const io = capture();
  t.is(await runInspect({ module: MODULE, stage: 'counter', key: 'alice', json: true, ...backends }, io), 0, io.stderr);
  const state = JSON.parse(io.stdout) as { source: string; status: string; seq: number; context: { count: number; total: number } };
  t.like(state, { source: 'durable', status: 'active', seq: 3 });
  t.like(state.context, { count: 3, total: 18 });
  const none = capture();
  t.is(await runInspect({ module: MODULE, stage: 'counter', key: 'nobody', json: true, ...backends }, none), 1);
  t.is(none.stdout, 'null\n');
  const human = capture();
  t.is(await runInspect({ module: MODULE, stage: 'counter', key: 'alice', ...backends }, human), 0);
  t.regex(human.stdout, /^counter\[alice\] partition \d, current to seq 3: active/);
  const badStage = capture();
  t.is(await runInspect({ module: MODULE, stage: 'nope', key: 'alice', ...backends }, badStage), 2);
  t.regex(badStage.stderr, /^warden inspect: stage names no stage of pipeline it-cli-/);

  // Through commander, as `warden inspect ... --json` parses it.
  const program = new Command('warden').exitOverride();
  const viaCli = capture();
  registerInspect(program, viaCli);
  registerTeardown(program, viaCli);
  await program.parseAsync(['inspect', MODULE, 'counter', 'alice', '--json', '--nats', backends.nats, '--redis', backends.redis, '--redis-prefix', redisPrefix], { from: 'user' });
  t.is(process.exitCode, 0);
  t.like(JSON.parse(viaCli.stdout), { key: 'alice', stage: 'counter' });

  // teardown: without --yes a dry run; with --yes it refuses while the node runs.
  const dry = capture();
  t.is(await runTeardown({ module: MODULE, ...backends }, dry), 1);
  t.regex(dry.stdout, new RegExp(`would delete, for pipeline ${name}:\\n  stream ${name}-counter \\(3 messages, 3 consumers\\)`));
  t.regex(dry.stdout, /Nothing was deleted: run again with --yes/);
  const refused = capture();
  t.is(await runTeardown({ module: MODULE, ...backends, yes: true }, refused), 2);
  t.regex(refused.stderr, new RegExp(`pipeline ${name} is in use: stream ${name}-counter has 3 consumers`));
  t.regex(refused.stderr, /Pass --force to delete anyway\n$/, 'the advice names the flag');
  t.is((await transport.streamInfo(`${name}-counter`)).messages, 3, 'nothing deleted');

  // Once the node stopped (its readers' consumers go away), teardown deletes streams and checkpoints.
  await node.stop();
  stopped = true;
  const done = capture();
  t.is(await runTeardown({ module: MODULE, ...backends, yes: true }, done), 0, done.stderr);
  t.regex(done.stdout, new RegExp(`^deleted, for pipeline ${name}:`));
  for (const stream of [`${name}-counter`, `${name}-tally`, `${name}-dlq`]) {
    await t.throwsAsync(transport.streamInfo(stream), { message: /not found/ }, stream);
  }
  for (const stage of pipeline.stages) {
    for (let p = 0; p < stage.partitions; p++) t.is(await store.readMeta(stage.scopeOf(p)), undefined);
  }
});
