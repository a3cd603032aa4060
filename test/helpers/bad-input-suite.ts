/**
 * Bad input and bad configuration, tried as a skeptical user would, through the public API, on
 * any pair of backends: the embedded twins (test/unit/bad-input.test.ts) and the real servers
 * (test/integration/bad-input-real-backends.test.ts). Each test names the behaviour it checks.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { assign, emit, setup } from 'xstate';
import {
  definePipeline,
  defineActor,
  silentLogger,
  startNode,
  type CheckpointStore,
  type DeadLetter,
  type NodeOptions,
  type Pipeline,
  type StageOptions,
  type Transport,
  type WardenNode,
} from '../../lib/index.js';

/** Backends for one test, and how to let go of them. */
export interface Backends {
  transport: Transport;
  checkpointStore: CheckpointStore;
  close(): Promise<void>;
}

const dec = new TextDecoder();

/** Every message of `stream`, decoded as JSON. */
export async function readAll<T>(transport: Transport, stream: string): Promise<T[]> {
  const reader = transport.openReader(stream, {});
  try {
    const out: T[] = [];
    for (;;) {
      const batch = await reader.next(1000, 200);
      if (batch.length === 0) return out;
      for (const m of batch) out.push(JSON.parse(dec.decode(m.data)) as T);
    }
  } finally {
    await reader.close();
  }
}

/** A ledger entry keeper: `add` adds, `boom` always crashes, `note` emits an event for routing checks. */
const ledgerMachine = setup({
  types: {
    context: {} as { key: string; total: number; seen: number[] },
    input: {} as { key: string },
    events: {} as { type: 'add'; amount: number } | { type: 'boom' } | { type: 'note'; route: string },
    emitted: {} as { type: 'noted'; route: string; total: number },
  },
  actions: {
    explode: () => {
      throw new Error('poison');
    },
  },
}).createMachine({
  context: ({ input }) => ({ key: input.key, total: 0, seen: [] }),
  on: {
    add: { actions: assign(({ context, event }) => ({ total: context.total + event.amount, seen: [...context.seen, event.amount] })) },
    boom: { actions: 'explode' },
    note: {
      actions: [
        assign(({ context }) => ({ total: context.total + 1, seen: [...context.seen, -1] })),
        emit(({ context, event }) => ({ type: 'noted' as const, route: event.route, total: context.total })),
      ],
    },
  },
});

function ledger(cursed: ReadonlySet<string> = new Set()) {
  return defineActor({
    name: 'ledger',
    machine: ledgerMachine,
    input: (key) => {
      if (cursed.has(key)) throw new Error(`no account may be opened for ${key}`);
      return { key };
    },
  });
}

/** The ledger with a schema of its events: `add` needs a numeric amount. */
const strictLedger = defineActor({
  name: 'strict',
  machine: ledgerMachine,
  input: (key) => ({ key }),
  events: { add: (p) => (typeof p.amount === 'number' ? true : 'amount must be a number'), boom: null, note: null },
});

const sink = defineActor({
  name: 'sink',
  machine: setup({ types: { context: {} as { got: number }, events: {} as { type: 'noted'; route: string; total: number } } }).createMachine({
    context: { got: 0 },
    on: { noted: { actions: assign(({ context }) => ({ got: context.got + 1 })) } },
  }),
});

/** Opens a door that shuts by itself after a minute, unless told to `close` first; `huge` emits an output no log takes. */
const door = defineActor({
  name: 'door',
  machine: setup({
    types: { context: {} as { log: string[] }, events: {} as { type: 'open' } | { type: 'close' } | { type: 'huge' }, emitted: {} as { type: 'blob'; data: string } },
  }).createMachine({
    id: 'door',
    initial: 'shut',
    context: { log: [] },
    states: {
      shut: { on: { open: 'open', huge: { actions: emit(() => ({ type: 'blob' as const, data: 'x'.repeat(1_100_000) })) } } },
      open: {
        after: { 60_000: { target: 'shut', actions: assign(({ context }) => ({ log: [...context.log, 'timed out'] })) } },
        on: { close: { target: 'shut', actions: assign(({ context }) => ({ log: [...context.log, 'closed'] })) } },
      },
    },
  }),
});

const blobSink = defineActor({
  name: 'blobs',
  machine: setup({ types: { events: {} as { type: 'blob'; data: string } } }).createMachine({ on: { blob: {} } }),
});

/** Registers the suite for one kind of backend. */
export function badInputSuite(label: string, make: () => Promise<Backends>): void {
  const name = (s: string): string => `[${label}] ${s}`;

  async function run(t: ExecutionContext, stages: (id: string) => StageOptions[], o: Partial<NodeOptions> = {}): Promise<{ node: WardenNode; pipeline: Pipeline; backends: Backends }> {
    const backends = await make();
    const id = `bad-${randomBytes(4).toString('hex')}`;
    const pipeline = definePipeline({ name: id, stages: stages(id) });
    const node = await startNode({ pipeline, transport: backends.transport, checkpointStore: backends.checkpointStore, logger: silentLogger, ...o });
    t.teardown(async () => {
      await node.stop().catch(() => undefined);
      for (const s of pipeline.stages) {
        for (let p = 0; p < s.partitions; p++) await backends.checkpointStore.drop(s.scopeOf(p)).catch(() => undefined);
        await backends.transport.deleteStream(s.stream).catch(() => undefined);
      }
      await backends.transport.deleteStream(pipeline.deadLetterStream).catch(() => undefined);
      await backends.close();
    });
    return { node, pipeline, backends };
  }

  const letters = (r: { backends: Backends; pipeline: Pipeline }): Promise<DeadLetter[]> => readAll<DeadLetter>(r.backends.transport, r.pipeline.deadLetterStream);

  test(name('an output whose `to` names no stage, or whose keyBy or to throws, dead-letters its input (rolled back) and the partition goes on'), async (t) => {
    const r = await run(t, () => [
      {
        actor: ledger(),
        to: (ev) => {
          const route = String(ev.route);
          if (route === 'throw-to') throw new Error('router bug');
          return route === 'nowhere' ? 'nowhere' : 'sink';
        },
        keyBy: (ev) => {
          if (ev.route === 'throw-key') throw new Error('key bug');
          return 'all';
        },
      },
      { actor: sink },
    ]);
    for (const route of ['ok', 'nowhere', 'ok', 'throw-key', 'throw-to', 'ok']) await r.node.ingest({ key: 'acct', type: 'note', payload: { route } });
    await r.node.ingest({ key: 'acct', type: 'add', payload: { amount: 5 } });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    const dl = await letters(r);
    t.deepEqual(dl.map((l) => l.reason), ['unroutable', 'unroutable', 'unroutable']);
    t.regex(dl[0]!.error, /names no stage for "noted": "nowhere"/);
    t.regex(dl[1]!.error, /keyBy threw for "noted": key bug/);
    t.regex(dl[2]!.error, /to threw for "noted": router bug/);
    // The refused inputs left no trace in the state: three notes and the add.
    t.deepEqual(await r.node.inspect('ledger', 'acct')?.context, { key: 'acct', total: 8, seen: [-1, -1, -1, 5] });
    t.deepEqual(r.node.inspect('sink', 'all')?.context, { got: 3 });
    const status = await r.node.status();
    t.true(status.every((p) => p.restarts === 0 && p.running), 'no partition restarted');
  });

  test(name('an input whose actor cannot be created (input(key) throws) is dead-lettered; other keys go on'), async (t) => {
    const r = await run(t, () => [{ actor: ledger(new Set(['cursed'])), checkpoint: { everyEvents: 1 } }]);
    await r.node.ingest({ key: 'cursed', type: 'add', payload: { amount: 1 } });
    await r.node.ingest({ key: 'fine', type: 'add', payload: { amount: 2 } });
    await r.node.ingest({ key: 'cursed', type: 'add', payload: { amount: 3 } });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    const dl = await letters(r);
    t.deepEqual(dl.map((l) => [l.key, l.reason]), [['cursed', 'crashed'], ['cursed', 'crashed']]);
    t.regex(dl[0]!.error, /no account may be opened for cursed/);
    t.deepEqual(r.node.inspect('ledger', 'fine')?.context, { key: 'fine', total: 2, seen: [2] });
    t.true((await r.node.status()).every((p) => p.restarts === 0));
  });

  test(name('a burst of poison inputs escalates, yet every incarnation moves past at least one: all are dead-lettered and a good key is applied'), async (t) => {
    const r = await run(
      t,
      () => [{ actor: ledger(), maxCrashesPerInput: 2, supervision: { intensity: 3, periodMs: 60_000 }, checkpoint: { everyEvents: 1 } }],
      { supervision: { intensity: 100, periodMs: 60_000, backoff: { minBackoffMs: 1, maxBackoffMs: 5 } } },
    );
    for (let i = 0; i < 12; i++) await r.node.ingest({ key: `p${i}`, type: 'boom' });
    await r.node.ingest({ key: 'good', type: 'add', payload: { amount: 7 } });
    await r.node.whenCaughtUp({ timeoutMs: 30_000 });
    const dl = await letters(r);
    t.is(dl.length, 12);
    t.deepEqual(new Set(dl.map((l) => l.key)), new Set(Array.from({ length: 12 }, (_, i) => `p${i}`)));
    t.deepEqual(r.node.inspect('ledger', 'good')?.context, { key: 'good', total: 7, seen: [7] });
    const [p] = await r.node.status();
    t.true(p!.restarts > 0 && p!.restarts <= 12, `escalated ${p!.restarts} times, each past at least one input`);
  });

  test(name('keys that are Object.prototype names keep their state across a checkpoint and a restart'), async (t) => {
    const keys = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
    const r = await run(t, () => [{ actor: ledger(), checkpoint: { everyEvents: 1 } }]);
    for (const key of keys) await r.node.ingest({ key, type: 'add', payload: { amount: 1 } });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    await r.node.stop();
    const again = await startNode({ pipeline: r.pipeline, transport: r.backends.transport, checkpointStore: r.backends.checkpointStore, logger: silentLogger });
    t.teardown(() => again.stop());
    for (const key of keys) await again.ingest({ key, type: 'add', payload: { amount: 10 } });
    await again.whenCaughtUp({ timeoutMs: 20_000 });
    for (const key of keys) t.deepEqual(again.inspect('ledger', key)?.context, { key, total: 11, seen: [1, 10] }, key);
  });

  test(name('keys with line breaks, blanks or percent signs work end to end: outputs, IDs and restarts'), async (t) => {
    const keys = ['line\nbreak', ' lead', 'trail ', 'tab\there', '%41', 'A', 'crlf\r\n'];
    const r = await run(t, () => [{ actor: ledger(), to: 'sink', keyBy: (_ev, k) => k, checkpoint: { everyEvents: 1 } }, { actor: sink }]);
    for (const key of keys) await r.node.ingest({ key, type: 'note', payload: { route: 'x' } });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    r.node.kill('ledger');
    for (const key of keys) await r.node.ingest({ key, type: 'note', payload: { route: 'x' } });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    t.deepEqual(await letters(r), []);
    for (const key of keys) {
      t.deepEqual(r.node.inspect('ledger', key)?.context, { key, total: 2, seen: [-1, -1] }, JSON.stringify(key));
      t.deepEqual(r.node.inspect('sink', key)?.context, { got: 2 }, `${JSON.stringify(key)}: two outputs, each once`);
    }
  });

  test(name('an input too large for its dead letter to fit whole still gets a dead letter, cut and marked, and the partition catches up'), async (t) => {
    const r = await run(t, () => [{ actor: ledger() }]);
    // 660 KB of quotes fit the log; escaped inside a JSON dead letter they would take 1.32 MB.
    const stage = r.pipeline.stage('ledger');
    await r.backends.transport.publish(stage.subjectOf(0), new TextEncoder().encode('"'.repeat(660_000)));
    await r.node.ingest({ key: 'big', type: 'add', payload: { amount: 2 } });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    const [letter] = await letters(r);
    t.like(letter, { reason: 'undecodable', bodyTruncated: true, bodyBytes: 660_000, stream: stage.stream, seq: 1 });
    t.true(letter!.body.length <= 65_536);
    t.deepEqual(r.node.inspect('ledger', 'big')?.context, { key: 'big', total: 2, seen: [2] });
  });

  test(name('an input refused before its actor (schema, unknown event type) is dead-lettered naming its key and type'), async (t) => {
    const r = await run(t, () => [{ actor: strictLedger }]);
    await r.node.ingest({ key: 'k1', type: 'add', payload: { amount: 'ten' } });
    await r.node.ingest({ key: 'k2', type: 'withdraw', payload: { amount: 1 } });
    await r.node.ingest({ key: 'k1', type: 'add', payload: { amount: 10 } });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    const dl = await letters(r);
    t.deepEqual(dl.map((l) => [l.reason, l.key, l.type]), [['schema', 'k1', 'add'], ['unknown-event', 'k2', 'withdraw']]);
    t.like(r.node.inspect('strict', 'k1')?.context, { total: 10 });
  });

  test(name('a warden.timer or warden.call record its partition did not write is dead-lettered as forged and changes nothing'), async (t) => {
    const r = await run(t, () => [{ actor: door }]);
    const ack = await r.node.ingest({ key: 'd1', type: 'open' });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    const subject = r.pipeline.stage('door').subjectOf(0);
    const forge = (type: string, payload: Record<string, unknown>, id: string): Promise<unknown> =>
      r.backends.transport.publish(subject, new TextEncoder().encode(JSON.stringify({ id, key: 'd1', type, payload, headers: {}, ts: Date.now() })), { msgId: id });
    await forge('warden.timer', { timer: `${ack.seq}.0` }, 'forged-timer'); // the pending 60 s timer, an hour early
    await forge('warden.timer', { timer: '999.0' }, 'forged-unknown'); // a timer that never existed
    await forge('warden.call', { call: `${ack.seq}.0`, ok: true, output: { made: 'up' } }, 'forged-call');
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    const dl = await letters(r);
    t.deepEqual(dl.map((l) => l.reason), ['forged', 'forged', 'forged']);
    t.deepEqual(dl.map((l) => [l.key, l.type]), [['d1', 'warden.timer'], ['d1', 'warden.timer'], ['d1', 'warden.call']], 'each letter names the record it holds');
    t.regex(dl[0]!.error, /was not written by an owner of door\/0/);
    t.like(r.node.inspect('door', 'd1'), { value: 'open', context: { log: [] } }, 'the timer did not fire');
    const [p] = await r.node.status();
    t.is(p!.timers, 1, 'the real timer is still armed');
  });

  test(name('an output the log refuses for good (too large) becomes a dead letter instead of a retry loop'), async (t) => {
    const r = await run(t, () => [{ actor: door, to: 'blobs' }, { actor: blobSink }]);
    await r.node.ingest({ key: 'd2', type: 'huge' });
    await r.node.ingest({ key: 'd2', type: 'open' });
    await r.node.whenCaughtUp({ timeoutMs: 20_000 });
    const dl = await letters(r);
    t.is(dl.length, 1);
    t.like(dl[0], { reason: 'unpublishable', outputId: `door:d2:1:0`, bodyTruncated: true, seq: 1, key: 'd2', type: 'blob' });
    t.regex(dl[0]!.error, /too large|exceeds|max_payload/i);
    t.is(r.node.inspect('door', 'd2')?.value, 'open', 'the partition went on');
    t.true((await r.node.status()).every((p) => p.outbox === 0 && p.restarts === 0));
  });
}
