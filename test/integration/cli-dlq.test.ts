/**
 * `warden dlq` against the shared JetStream (127.0.0.1:4222): an input a bug crashes is
 * dead-lettered; `dlq list` and `dlq show` show it; after the fix, `dlq replay` re-injects it and
 * it is applied exactly once, across a second replay and a restart of the partition.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { InMemoryCheckpointStore, silentLogger, startNode, type StoredDeadLetter } from '../../lib/index.js';
import { JetStreamTransport } from '../../lib/adapters/nats/index.js';
import { runDlqList, runDlqReplay, runDlqShow } from '../../lib/cli/commands/dlq.js';
import { runCheckpointShow } from '../../lib/cli/commands/checkpoint.js';
import { RedisCheckpointStore } from '../../lib/adapters/redis/index.js';
import type { CliIo } from '../../lib/cli/pipeline-module.js';
import { ledgerBug, pipeline as ledgerPipeline } from '../fixtures/ledger-pipeline.js';

const MODULE = 'test/fixtures/ledger-pipeline.ts';

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

test.serial('a dead-lettered input is replayed after the fix and applied exactly once, however often replay runs and across a restart', async (t) => {
  process.env.WARDEN_TEST_LEDGER = `it-dlq-${randomBytes(4).toString('hex')}`;
  const pipeline = ledgerPipeline();
  const transport = await JetStreamTransport.connect({ name: 'it-dlq', logger: silentLogger });
  const node = await startNode({ pipeline, transport, checkpointStore: new InMemoryCheckpointStore(), logger: silentLogger });
  t.teardown(async () => {
    await node.stop();
    for (const s of [...pipeline.stages.map((x) => x.stream), pipeline.deadLetterStream]) await transport.deleteStream(s).catch(() => undefined);
    await transport.close();
  });
  const total = async (): Promise<{ total: number; posts: number }> => (await node.readState('ledger', 'acct-1'))!.context as { total: number; posts: number };

  ledgerBug.rejectNegative = true;
  t.teardown(() => void (ledgerBug.rejectNegative = true));
  await node.ingest({ key: 'acct-1', type: 'post', payload: { amount: 5 } });
  await node.ingest({ key: 'acct-1', type: 'post', payload: { amount: -3 } }); // the bug crashes the actor on it
  await node.ingest({ key: 'acct-1', type: 'post', payload: { amount: 2 } });
  await node.whenCaughtUp();
  t.deepEqual(await total(), { total: 7, posts: 2 });

  const list = capture();
  t.is(await runDlqList(MODULE, { json: true }, list), 0, list.stderr);
  const letters = JSON.parse(list.stdout) as StoredDeadLetter[];
  t.is(letters.length, 1);
  const [dl] = letters;
  t.like(dl!.letter, { stage: 'ledger', reason: 'crashed', key: 'acct-1', type: 'post' });
  t.is(dl!.replayed, undefined);
  const table = capture();
  await runDlqList(MODULE, {}, table);
  t.regex(table.stdout, /^1 dead letter in /);
  t.regex(table.stdout, /crashed\s+acct-1/);
  const show = capture();
  t.is(await runDlqShow(MODULE, dl!.seq, {}, show), 0);
  t.regex(show.stdout, /cannot post -3/);
  t.is(await runDlqShow(MODULE, dl!.seq + 1000, {}, capture()), 1, 'no such dead letter');

  ledgerBug.rejectNegative = false; // the fix is deployed
  const replay = capture();
  t.is(await runDlqReplay(MODULE, [dl!.seq], {}, replay), 0, replay.stderr);
  t.regex(replay.stdout, /1 replayed, 0 skipped/);
  await node.whenCaughtUp();
  t.deepEqual(await total(), { total: 4, posts: 3 }, 'applied once');

  const again = capture();
  t.is(await runDlqReplay(MODULE, [dl!.seq], {}, again), 1, 'asked by sequence and skipped: exit 1');
  t.regex(again.stdout, /skipped \d+: already-replayed/);
  const all = capture();
  t.is(await runDlqReplay(MODULE, [], { all: true }, all), 0);
  t.regex(all.stdout, /0 replayed, 1 skipped/);
  const none = capture();
  t.is(await runDlqReplay(MODULE, [], {}, none), 1, 'neither sequences nor --all');
  t.regex(none.stderr, /--all/);

  for (const p of [0, 1]) node.kill('ledger', p);
  await new Promise((r) => setTimeout(r, 300));
  await node.whenCaughtUp();
  t.deepEqual(await total(), { total: 4, posts: 3 }, 'still once after the partition restarted and replayed its log');
  const after = capture();
  await runDlqList(MODULE, { json: true }, after);
  t.truthy((JSON.parse(after.stdout) as StoredDeadLetter[])[0]!.replayed, 'the list shows the replay');
});

test.serial('warden checkpoint show prints what a restore of a key would load: the partition checkpoint and the key’s actor entry', async (t) => {
  process.env.WARDEN_TEST_LEDGER = `it-cps-${randomBytes(4).toString('hex')}`;
  const pipeline = ledgerPipeline();
  const redisPrefix = process.env.WARDEN_TEST_LEDGER;
  const transport = await JetStreamTransport.connect({ name: 'it-cps', logger: silentLogger });
  const store = await RedisCheckpointStore.connect({ url: 'redis://127.0.0.1:6379', keyPrefix: redisPrefix, logger: silentLogger });
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger });
  t.teardown(async () => {
    await node.stop();
    for (const s of [...pipeline.stages.map((x) => x.stream), pipeline.deadLetterStream]) await transport.deleteStream(s).catch(() => undefined);
    for (let p = 0; p < 2; p++) await store.drop(pipeline.stage('ledger').scopeOf(p)).catch(() => undefined);
    await transport.close();
    await store.close();
  });
  const none = capture();
  t.is(await runCheckpointShow({ module: MODULE, stage: 'ledger', key: 'acct-9', redisPrefix }, none), 1, 'no checkpoint yet');
  t.regex(none.stdout, /no checkpoint: a restore starts from the beginning of the log/);
  for (const amount of [5, 6]) await node.ingest({ key: 'acct-9', type: 'post', payload: { amount } });
  await node.whenCaughtUp();
  await new Promise((r) => setTimeout(r, 200)); // a checkpoint (every 2 inputs, or 50 ms)
  const json = capture();
  t.is(await runCheckpointShow({ module: MODULE, stage: 'ledger', key: 'acct-9', redisPrefix, json: true }, json), 0, json.stderr);
  const shown = JSON.parse(json.stdout) as { partition: number; checkpoint: { seq: number; epoch: number }; actor: { seq: number; snapshot: { context: unknown } } };
  t.is(shown.checkpoint.seq, 2);
  t.true(shown.checkpoint.epoch >= 1);
  t.deepEqual(shown.actor.snapshot.context, { total: 11, posts: 2 });
  const text = capture();
  await runCheckpointShow({ module: MODULE, stage: 'ledger', key: 'acct-9', redisPrefix }, text);
  t.regex(text.stdout, new RegExp(`^ledger/${shown.partition} checkpoint at seq 2, epoch \\d+`));
  t.regex(text.stdout, /"total": 11/);
  const bad = capture();
  t.is(await runCheckpointShow({ module: MODULE, stage: 'nope', key: 'k', redisPrefix }, bad), 2);
  t.regex(bad.stderr, /nope/);
});
