/**
 * Suite `guarantees`: what each delivery guarantee costs, on the real servers (NATS JetStream at
 * `WARDEN_NATS_URL`, default nats://127.0.0.1:4222; Redis at `WARDEN_REDIS_URL`, default
 * redis://127.0.0.1:6379), side by side in one run.
 *
 * 1. Throughput. N = 100k `inc` envelopes over 1,000 keys (`key-0..key-999`, round robin) are
 *    published once into the first stage's stream before anything consumes them; every run then
 *    consumes that same stream from sequence 1 into a per-key counter:
 *    - raw: an ordered consumer of @nats-io/jetstream (`consume({ callback })`, the client's
 *      fastest form, pull batch 1024), each message's JSON decoded and a `Map<key, count>` bumped;
 *    - warden: `startNode` on `JetStreamTransport` + `RedisCheckpointStore`, one sink stage (an
 *      xstate machine with context `{ n }` incrementing on `inc`), 1 partition, at each
 *      `guarantee`, with a checkpoint every second (`checkpoint: { intervalMs: 1000, everyEvents:
 *      10 * N }`, so only the interval cuts, unless `BENCH_GUARANTEES_EVERY_EVENTS` says otherwise),
 *      exactly-once again with `checkpoint: { intervalMs: 1000 }` (`everyEvents` at its default,
 *      1000: on 1,000 keys each cut rewrites every key), and with `checkpoint: { enabled: false }` (the checkpoint
 *      overhead ratio is exactly-once with / without checkpoints), and exactly-once on 4
 *      partitions (its own 4-partition stream holding the same events).
 *    A run's rate is (N - 1) / (time of the last apply - time of the first apply), both taken
 *    inside the machine's action (for raw: inside the consume callback), so no polling (of
 *    `whenCaughtUp` or `status()`) biases it, and connection/worker start-up is left out (warden's
 *    start -> first apply is reported apart). Each warden run has a store of its own (a fresh key
 *    prefix, deleted after), so it starts from no checkpoint; after it, `whenCaughtUp`, then every
 *    key's count is checked (100 each) through `node.inspect`, untimed.
 *    One warm-up run each of raw and exactly-once, then `BENCH_GUARANTEES_ROUNDS` (default 3)
 *    rounds in which the order of the sides rotates; medians are reported.
 *    - floor: the same ordered consume, each envelope decoded and validated as warden does, and
 *      an xstate `send` to the key's actor of the same machine (`floorConsume`): what any engine
 *      must do per event here; warden's runs are reported as a fraction of it.
 *    - BullMQ: the same counting in a BullMQ `Worker` (concurrency 50, jobs `removeOnComplete`)
 *      on the same Redis, over N / 2 = 50k jobs (adding them takes longer than processing them;
 *      `BENCH_GUARANTEES_BULLMQ_N`) added with `addBulk` (chunks of 5,000) before the worker
 *      starts; only processing is timed (first to last job processed, as above); one run.
 * 2. Latency per hop at 2,000 events/s, exactly-once: a pipeline A -> B (A emits one event per
 *    input, routed to B with `to`). Inputs are ingested at a steady rate, paced by a 1 ms timer
 *    that sends whatever is due (no busy loop): first 2,000 warm-up inputs (every key twice, so
 *    its actors exist and the code is compiled), not counted, then, once all of their outputs
 *    were seen, 5 s of measured inputs. Each input carries its send time
 *    (`performance.timeOrigin + performance.now()`) as `ts`, which A's output keeps. Latency =
 *    receipt of A's output by a raw ordered consumer of B's stream - send time, p50/p99. Alongside
 *    (extra figures): send time -> B's apply of A's output. Baseline: raw `js.publish` (with a
 *    msgID) -> ordered consumer of the same stream, same rate, warm-up and span. In a full run this
 *    part runs in a child process (the parent's flags, `BENCH_GUARANTEES_ONLY=latency`), as the memory
 *    part does: a node running the hop, not one whose heap still holds what the throughput sides and
 *    BullMQ left behind (their mark-compacts would land in the measured seconds).
 * 3. Memory, in a child process started with `--expose-gc` (the parent's tsx flags plus that,
 *    so the heap holds nothing of the runs above): a node on the embedded in-memory transport and
 *    store drives 50k distinct keys once each through the counter. After the last checkpoint
 *    covers everything, heapUsed (after forced GCs, median of 3 samples) is taken, every scope
 *    the store was written is cleared and heapUsed taken again: (heap without the store's copy - heap before
 *    the node started, with the inputs already in the log) / keys = bytes per active idle actor;
 *    the store's share is reported apart. The same with `idleMs: 200` gives bytes per passivated
 *    key, once `status().actors` shows the actors left memory; until passivation exists it
 *    reports `n/a`.
 *
 *    Two more exactly-once sides measure what metrics cost: `metrics: false` (no latency
 *    observation) against the default with `registerNodeMetrics` on a registry scraped every second.
 *
 * Goals are printed next to the figures, never enforced. Streams, checkpoints and BullMQ keys the
 * run created are deleted at the end. Knobs: `BENCH_GUARANTEES_N`, `_ROUNDS`, `_BULLMQ_N`,
 * `_EVERY_EVENTS`, `_MEMORY_KEYS`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { assign, createActor, emit, setup, type Actor } from 'xstate';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  SystemClock,
  defineActor,
  definePipeline,
  silentLogger,
  startNode,
  type CheckpointPolicyOptions,
  type CheckpointScope,
  type CheckpointWrite,
  type PartitionStatus,
  type Pipeline,
  type StageOptions,
  type Transport,
  type WardenNode,
  type WriteResult,
} from '../../../lib/index.js';
import { Registry } from 'prom-client';
import { registerNodeMetrics } from '../../../lib/index.js';
import { decodeEnvelope, encodeEnvelope } from '../../../lib/core/envelope.js';
import { validateInput } from '../../../lib/actor/validate.js';
import { partitionOf } from '../../../lib/core/ids.js';
import { scopeId } from '../../../lib/checkpoint/checkpoint-store.js';
import type { Guarantee } from '../../../lib/pipeline/define-pipeline.js';
import { JetStreamTransport } from '../../../lib/adapters/nats/index.js';
import { RedisCheckpointStore } from '../../../lib/adapters/redis/index.js';
import { fmt, median, type Suite } from '../suite.js';

const NATS_URL = process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.WARDEN_REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = Number(process.env.BENCH_GUARANTEES_N ?? 100_000);
const KEYS = 1_000;
const ROUNDS = Number(process.env.BENCH_GUARANTEES_ROUNDS ?? 3);
/** BullMQ's rate does not depend on the count; half of N keeps the suite within its time. */
const BULLMQ_N = Number(process.env.BENCH_GUARANTEES_BULLMQ_N ?? Math.round(N / 2));
/** `BENCH_GUARANTEES_ONLY=metrics`: only the metrics on/off sides (more rounds for a small difference), no other part. */
const ONLY_METRICS = process.env.BENCH_GUARANTEES_ONLY === 'metrics';
/** `BENCH_GUARANTEES_ONLY=latency`: only the hop latency (raw and warden), no other part. */
const ONLY_LATENCY = process.env.BENCH_GUARANTEES_ONLY === 'latency';
/** `BENCH_GUARANTEES_ONLY=throughput`: only raw, floor, exactly-once (with and without checkpoints) and at-least-once (a quick A/B). */
const ONLY_THROUGHPUT = process.env.BENCH_GUARANTEES_ONLY === 'throughput';
/** `BENCH_GUARANTEES_ONLY=memory`: only the heap figures (the child process), no server needed. */
const ONLY_MEMORY = process.env.BENCH_GUARANTEES_ONLY === 'memory';
const THROUGHPUT_SIDES = new Set(['raw', 'floor', 'exactly-once', 'at-least-once', 'exactly-once, no checkpoints', 'exactly-once, default everyEvents']);
const EVERY_EVENTS = process.env.BENCH_GUARANTEES_EVERY_EVENTS === undefined ? undefined : Number(process.env.BENCH_GUARANTEES_EVERY_EVENTS);
/** Checkpoint policy of the latency pipeline (`BENCH_GUARANTEES_LAT_CHECKPOINT` as JSON, to see what checkpoints cost in latency). */
const LAT_CHECKPOINT = JSON.parse(process.env.BENCH_GUARANTEES_LAT_CHECKPOINT ?? '{"intervalMs":1000}') as CheckpointPolicyOptions;
const MEMORY_KEYS = Number(process.env.BENCH_GUARANTEES_MEMORY_KEYS ?? 50_000);
/** Keys of the one-node heap figure (`heapAt1MKeysMB`). */
const MILLION_KEYS = Number(process.env.BENCH_GUARANTEES_MILLION_KEYS ?? 1_000_000);
const BATCH = 1_024;
const PUBLISH_WINDOW = 1_024;
const RATE = 2_000;
/** The second latency rate (`latencyP99At10kMs`). */
const RATE_HIGH = 10_000;
const MEASURE_MS = 5_000;
const BULLMQ_CONCURRENCY = 50;
const MEMORY_CHILD_ENV = 'WARDEN_BENCH_GUARANTEES_MEMORY_CHILD';

// ---------------------------------------------------------------------------------------------
// Probes: the time of the first and of the N-th apply, taken where the work happens.

class Probe {
  count = 0;
  first = 0;
  last = 0;
  private target = 0;
  private resolve: (() => void) | undefined;

  /** Arms the probe for `target` hits; the promise resolves on the last one. */
  arm(target: number): Promise<void> {
    this.count = 0;
    this.first = 0;
    this.last = 0;
    this.target = target;
    return new Promise<void>((resolve) => (this.resolve = resolve));
  }

  hit(): void {
    const n = ++this.count;
    if (n === 1) this.first = performance.now();
    if (n === this.target) {
      this.last = performance.now();
      this.resolve?.();
    }
  }

  /** Events per second between the first and the last hit. */
  get perSec(): number {
    return (this.target - 1) / ((this.last - this.first) / 1000);
  }
}

const probe = new Probe();

/** The per-key counting operator: context `{ n }`, `inc` adds one. */
const counterMachine = setup({
  types: { context: {} as { n: number }, events: {} as { type: 'inc' } },
  actions: { probe: () => probe.hit() },
}).createMachine({ context: { n: 0 }, on: { inc: { actions: [assign({ n: ({ context }) => context.n + 1 }), 'probe'] } } });
const counter = defineActor({ name: 'counter', machine: counterMachine });

/** Wall-clock ms with sub-ms resolution (the same clock on both ends: one process). */
function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Latency samples of B's applies (index = input number), for the hop pipeline. */
/** Send -> A's apply, per input (where in the hop the time goes). */
let firstApplyLatency: Float64Array = new Float64Array(0);
let applyLatency: Float64Array = new Float64Array(0);

const hopA = defineActor({
  name: 'hop-a',
  machine: setup({
    types: { context: {} as { n: number }, events: {} as { type: 'in'; t: number; i: number }, emitted: {} as { type: 'inc'; t: number; i: number } },
    actions: {
      record: ({ event }) => {
        if (event.i < firstApplyLatency.length) firstApplyLatency[event.i] = wallNow() - event.t;
      },
    },
  }).createMachine({
    context: { n: 0 },
    on: { in: { actions: [assign({ n: ({ context }) => context.n + 1 }), 'record', emit(({ event }) => ({ type: 'inc' as const, t: event.t, i: event.i }))] } },
  }),
});
const hopB = defineActor({
  name: 'hop-b',
  machine: setup({
    types: { context: {} as { n: number }, events: {} as { type: 'inc'; t: number; i: number } },
    actions: {
      record: ({ event }) => {
        if (event.i < applyLatency.length) applyLatency[event.i] = wallNow() - event.t;
      },
    },
  }).createMachine({ context: { n: 0 }, on: { inc: { actions: [assign({ n: ({ context }) => context.n + 1 }), 'record'] } } }),
});

// ---------------------------------------------------------------------------------------------
// Helpers

function percentile(sorted: ArrayLike<number>, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function sortedSamples(xs: Float64Array, from: number): Float64Array {
  return xs.slice(from).filter((x) => !Number.isNaN(x)).sort();
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects after `ms` with `what` unless `p` settles first. */
async function within<T>(p: Promise<T>, ms: number, what: () => string | Promise<string>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void Promise.resolve(what()).then((msg) => reject(new Error(msg)), reject);
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `send(i)` for i = from..to-1 at `rate` per second: a 1 ms timer sends whatever the
 * schedule says is due, so the sends follow the schedule without a busy loop.
 */
function paced(from: number, to: number, rate: number, send: (i: number) => void): Promise<void> {
  return new Promise((resolve) => {
    const start = performance.now();
    let sent = from;
    const tick = (): void => {
      const due = Math.min(to, from + Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      while (sent < due) send(sent++);
      if (sent >= to) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
}

function asError(x: unknown): Error {
  return x instanceof Error ? x : new Error(JSON.stringify(x));
}

const keyOf = (i: number): string => `key-${i % KEYS}`;

/** Publishes the N `inc` envelopes into the stage's stream, up to PUBLISH_WINDOW in flight. */
async function prepublish(transport: Transport, pipeline: Pipeline, count: number): Promise<void> {
  const stage = pipeline.stages[0]!;
  await transport.ensureStream({ name: stage.stream, subjects: [`${pipeline.name}.${stage.name}.*`], duplicateWindowMs: 120_000 });
  let inFlight: Array<Promise<unknown>> = [];
  for (let i = 0; i < count; i++) {
    const key = keyOf(i);
    const id = `in-${i}`;
    const body = encodeEnvelope({ id, key, type: 'inc', payload: {}, headers: {}, ts: 0 });
    inFlight.push(transport.publish(stage.subjectOf(partitionOf(key, stage.partitions)), body, { msgId: id }));
    if (inFlight.length >= PUBLISH_WINDOW) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  const info = await transport.streamInfo(stage.stream);
  if (info.messages !== count) throw new Error(`stream ${stage.stream} holds ${info.messages} messages, expected ${count}`);
}

function counterPipeline(name: string, guarantee: Guarantee, checkpoint: CheckpointPolicyOptions, partitions: number): Pipeline {
  return definePipeline({ name, stages: [{ actor: counter, guarantee, checkpoint, partitions }] });
}

// ---------------------------------------------------------------------------------------------
// Throughput

interface Backends {
  transport: JetStreamTransport;
  js: JetStreamClient;
  /** A plain client, to delete what a run's checkpoint store wrote. */
  redis: Redis;
  /** Each warden run gets its own store under `<keyPrefix>-<n>`, so it starts from no checkpoint. */
  keyPrefix: string;
  runs: number;
}

/** Runs `fn` with a fresh `RedisCheckpointStore` (its own key prefix), then deletes its keys. */
async function withStore<T>(b: Backends, fn: (store: RedisCheckpointStore) => Promise<T>): Promise<T> {
  const prefix = `${b.keyPrefix}-${++b.runs}`;
  const store = await RedisCheckpointStore.connect({ url: REDIS_URL, keyPrefix: prefix, logger: silentLogger });
  try {
    return await fn(store);
  } finally {
    await store.close();
    await deleteKeys(b.redis, `${prefix}:*`);
  }
}

/**
 * Consumes `stream` from seq 1 with an ordered consumer (`consume({ callback })`, the client's
 * fastest form), calling `onMessage` for each message, until the probe has N hits. A message
 * `onMessage` throws on counts as a hit (so nothing stalls) and fails the run.
 */
async function consumeAll(js: JetStreamClient, stream: string, label: string, onMessage: (m: JsMsg) => void): Promise<void> {
  const reached = probe.arm(N);
  const consumer = await js.consumers.get(stream, { opt_start_seq: 1 });
  let failure: unknown;
  const messages = await consumer.consume({
    max_messages: BATCH,
    callback: (m) => {
      try {
        onMessage(m);
      } catch (err) {
        failure ??= err;
        probe.hit();
      }
    },
  });
  try {
    await within(reached, 120_000, () => `${label} consume stalled at ${probe.count}/${N}`);
  } finally {
    await messages.close();
  }
  if (failure !== undefined) throw asError(failure);
}

/** Raw: each message's JSON decoded and a per-key count bumped. */
async function rawConsume(js: JetStreamClient, stream: string): Promise<number> {
  const counts = new Map<string, number>();
  await consumeAll(js, stream, 'raw', (m) => {
    const { key } = m.json<{ key: string }>();
    counts.set(key, (counts.get(key) ?? 0) + 1);
    probe.hit();
  });
  for (const [key, n] of counts) if (n !== N / KEYS) throw new Error(`raw: ${key} counted ${n}, expected ${N / KEYS}`);
  if (counts.size !== KEYS) throw new Error(`raw: ${counts.size} keys counted, expected ${KEYS}`);
  return probe.perSec;
}

/**
 * The floor: what any engine must do per event here, with nothing of warden's own (no log
 * bookkeeping, no checkpoints, no outputs): the same ordered consume, the envelope decoded and
 * validated against the actor's events as warden does, and an xstate `send` to the key's actor
 * of the same machine (created on its first event, kept in a Map). The probe is hit in the
 * machine's action, as in warden's runs.
 */
async function floorConsume(js: JetStreamClient, stream: string): Promise<number> {
  const actors = new Map<string, Actor<typeof counterMachine>>();
  await consumeAll(js, stream, 'floor', (m) => {
    const env = decodeEnvelope(m.data, m.seq);
    validateInput(counter, env, m.data.length);
    let actor = actors.get(env.key);
    if (!actor) actors.set(env.key, (actor = createActor(counterMachine).start()));
    actor.send({ ...(env.payload as object), type: env.type } as { type: 'inc' });
  });
  for (const [key, actor] of actors) if (actor.getSnapshot().context.n !== N / KEYS) throw new Error(`floor: ${key} counted ${actor.getSnapshot().context.n}, expected ${N / KEYS}`);
  if (actors.size !== KEYS) throw new Error(`floor: ${actors.size} keys counted, expected ${KEYS}`);
  for (const actor of actors.values()) actor.stop();
  return probe.perSec;
}

interface WardenRun {
  perSec: number;
  startupMs: number;
}

/** One warden run over the pre-published stream of `pipeline`, from an empty checkpoint. */
/** How a run exposes metrics: `off` (`metrics: false`), the default, or `scraped` (registered and scraped every second). */
type MetricsMode = 'default' | 'off' | 'scraped';

function wardenConsume(b: Backends, pipeline: Pipeline, metrics: MetricsMode = 'default'): Promise<WardenRun> {
  return withStore(b, (store) => wardenConsumeWith(b.transport, store, pipeline, metrics));
}

async function wardenConsumeWith(transport: Transport, store: RedisCheckpointStore, pipeline: Pipeline, metrics: MetricsMode = 'default'): Promise<WardenRun> {
  const stage = pipeline.stages[0]!;
  const reached = probe.arm(N);
  let fatal: Error | undefined;
  const t0 = performance.now();
  const node = await startNode({ pipeline, transport, checkpointStore: store, logger: silentLogger, onFatal: (err) => (fatal = err), ...(metrics === 'off' ? { metrics: false } : {}) });
  let scraper: ReturnType<typeof setInterval> | undefined;
  if (metrics === 'scraped') {
    const registry = new Registry();
    registerNodeMetrics(registry, node);
    scraper = setInterval(() => void registry.metrics(), 1_000); // as Prometheus would, every second
  }
  try {
    await within(reached, 120_000, async () =>
      `warden ${stage.guarantee} stalled at ${probe.count}/${N}${fatal ? ` (fatal: ${fatal.message})` : ''}: ${JSON.stringify(await node.status())}`);
    const run = { perSec: probe.perSec, startupMs: probe.first - t0 };
    await node.whenCaughtUp({ timeoutMs: 30_000 });
    checkCounts(node, stage.name);
    return run;
  } finally {
    clearInterval(scraper);
    await node.stop();
  }
}

function checkCounts(node: WardenNode, stage: string): void {
  for (let k = 0; k < KEYS; k++) {
    const n = (node.inspect(stage, `key-${k}`)?.context as { n?: number } | undefined)?.n;
    if (n !== N / KEYS) throw new Error(`warden: key-${k} counted ${String(n)}, expected ${N / KEYS}`);
  }
}

/** BullMQ: the same per-key count in a Worker (concurrency 50); jobs added in bulk beforehand. */
async function bullmq(prefix: string, log: (line: string) => void): Promise<number> {
  const url = new URL(REDIS_URL);
  const connection = {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    maxRetriesPerRequest: null,
  };
  const name = 'counts';
  const queue = new Queue<{ key: string }>(name, { connection, prefix });
  let worker: Worker<{ key: string }> | undefined;
  try {
    const t0 = performance.now();
    for (let i = 0; i < BULLMQ_N; i += 5_000) {
      const jobs = [];
      for (let j = i; j < Math.min(BULLMQ_N, i + 5_000); j++) jobs.push({ name: 'inc', data: { key: keyOf(j) }, opts: { removeOnComplete: true } });
      await queue.addBulk(jobs);
    }
    log(`  BullMQ: ${fmt(BULLMQ_N)} jobs added with addBulk in ${((performance.now() - t0) / 1000).toFixed(1)} s (not timed)`);
    const counts = new Map<string, number>();
    const reached = probe.arm(BULLMQ_N);
    worker = new Worker<{ key: string }>(
      name,
      (job) => {
        counts.set(job.data.key, (counts.get(job.data.key) ?? 0) + 1);
        probe.hit();
        return Promise.resolve();
      },
      { connection, prefix, concurrency: BULLMQ_CONCURRENCY },
    );
    let failed = 0;
    worker.on('failed', () => failed++);
    await within(reached, 150_000, () => `BullMQ stalled at ${probe.count}/${BULLMQ_N}`);
    const perSec = probe.perSec;
    if (failed > 0) throw new Error(`BullMQ: ${failed} jobs failed`);
    const expected = BULLMQ_N / KEYS;
    for (const [key, n] of counts) if (n !== expected) throw new Error(`BullMQ: ${key} counted ${n}, expected ${expected}`);
    return perSec;
  } finally {
    await worker?.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Latency

interface Latency {
  p50: number;
  p99: number;
  samples: number;
}

function summarize(xs: Float64Array, from: number): Latency {
  const s = sortedSamples(xs, from);
  return { p50: percentile(s, 50), p99: percentile(s, 99), samples: s.length };
}

/** Warm-up inputs (every key twice: its actors exist and the code is compiled), not counted. */
const LAT_WARMUP = 2 * KEYS;
/** Inputs of a latency run at `rate` per second: the warm-up, then `MEASURE_MS` of measured ones. */
const latTotal = (rate: number): number => LAT_WARMUP + Math.round((MEASURE_MS / 1000) * rate);

/**
 * Sends the warm-up inputs at `rate`, waits until all of them were seen, then sends the measured
 * ones at `rate` and waits for them; `seen()` counts what the observer received.
 */
async function drive(what: string, send: (i: number) => void, seen: () => number, failed: () => unknown, rate = RATE): Promise<void> {
  const total = latTotal(rate);
  const until = async (n: number): Promise<void> => {
    await within((async () => {
      while (seen() < n && failed() === undefined) await sleepMs(5);
    })(), 30_000, () => `${what}: ${seen()}/${n} seen`);
    const failure = failed();
    if (failure !== undefined) throw asError(failure);
  };
  await paced(0, LAT_WARMUP, rate, send);
  await until(LAT_WARMUP);
  await paced(LAT_WARMUP, total, rate, send);
  await until(total);
}

/** Reads `stream` with an ordered consumer; `onEnvelope` gets each message's JSON. Resolves once started. */
async function watch(js: JetStreamClient, stream: string, onMessage: (body: { ts: number; payload: { i: number } }) => void): Promise<{ close(): Promise<void> }> {
  const consumer = await js.consumers.get(stream, { opt_start_seq: 1 });
  const messages = await consumer.consume({ max_messages: BATCH, callback: (m) => onMessage(m.json()) });
  return { close: () => messages.close().then(() => undefined) };
}

/** Publish of the input -> receipt of A's output in B's stream, and at B's apply. */
function wardenLatency(b: Backends, name: string, rate = RATE): Promise<{ hop: Latency; apply: Latency; firstApply: Latency }> {
  return withStore(b, (store) => wardenLatencyWith(b, store, name, rate));
}

async function wardenLatencyWith(b: Backends, store: RedisCheckpointStore, name: string, rate = RATE): Promise<{ hop: Latency; apply: Latency; firstApply: Latency }> {
  const pipeline = definePipeline({
    name,
    stages: [
      { actor: hopA, to: 'hop-b', guarantee: 'exactly-once', checkpoint: LAT_CHECKPOINT },
      { actor: hopB, guarantee: 'exactly-once', checkpoint: LAT_CHECKPOINT },
    ],
  });
  const hop = new Float64Array(latTotal(rate)).fill(Number.NaN);
  applyLatency = new Float64Array(latTotal(rate)).fill(Number.NaN);
  firstApplyLatency = new Float64Array(latTotal(rate)).fill(Number.NaN);
  let received = 0;
  let failure: unknown;
  const node = await startNode({ pipeline, transport: b.transport, checkpointStore: store, logger: silentLogger });
  const watcher = await watch(b.js, pipeline.stage('hop-b').stream, (env) => {
    hop[env.payload.i] = wallNow() - env.ts;
    received++;
  });
  try {
    const send = (i: number): void => {
      const t = wallNow();
      node.ingest({ id: `in-${i}`, key: keyOf(i), type: 'in', payload: { t, i }, ts: t }).catch((err: unknown) => (failure ??= err));
    };
    await drive("hop latency (outputs in B's stream)", send, () => received, () => failure, rate);
    await node.whenCaughtUp({ timeoutMs: 30_000 });
  } finally {
    await watcher.close();
    await node.stop();
    for (const stream of [...pipeline.stages.map((s) => s.stream), pipeline.deadLetterStream]) await b.transport.deleteStream(stream).catch(() => undefined);
  }
  return { hop: summarize(hop, LAT_WARMUP), apply: summarize(applyLatency, LAT_WARMUP), firstApply: summarize(firstApplyLatency, LAT_WARMUP) };
}

/** Raw: `js.publish` (msgID) at the same pace -> ordered consumer of the same stream. */
async function rawLatency(jsm: JetStreamManager, js: JetStreamClient, stream: string): Promise<Latency> {
  const subject = `${stream}.p`;
  await jsm.streams.add({
    name: stream, subjects: [`${stream}.>`], storage: StorageType.File, num_replicas: 1, retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old, max_msgs: -1, max_bytes: -1, duplicate_window: 120_000 * 1_000_000,
  });
  const lat = new Float64Array(latTotal(RATE)).fill(Number.NaN);
  let received = 0;
  let failure: unknown;
  const watcher = await watch(js, stream, (env) => {
    lat[env.payload.i] = wallNow() - env.ts;
    received++;
  });
  try {
    const send = (i: number): void => {
      const t = wallNow();
      const body = encodeEnvelope({ id: `in-${i}`, key: keyOf(i), type: 'in', payload: { t, i }, headers: {}, ts: t });
      js.publish(subject, body, { msgID: `in-${i}` }).catch((err: unknown) => (failure ??= err));
    };
    await drive('raw latency', send, () => received, () => failure);
  } finally {
    await watcher.close();
    await jsm.streams.delete(stream);
  }
  return summarize(lat, LAT_WARMUP);
}

/** The latency figures of a run (JSON keys of the suite). */
type LatencyFigures = {
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyP50At10kMs: number;
  latencyP99At10kMs: number;
  applyLatencyP50Ms: number;
  applyLatencyP99Ms: number;
  firstApplyLatencyP50Ms: number;
  firstApplyLatencyP99Ms: number;
  rawLatencyP50Ms: number;
  rawLatencyP99Ms: number;
};

type WardenLatency = Awaited<ReturnType<typeof wardenLatency>>;

function latencyFigures(raw: Latency, lat: WardenLatency, lat10k: WardenLatency): LatencyFigures {
  const ms = (x: number): number => Number(x.toFixed(3));
  return {
    latencyP50Ms: ms(lat.hop.p50),
    latencyP99Ms: ms(lat.hop.p99),
    latencyP50At10kMs: ms(lat10k.hop.p50),
    latencyP99At10kMs: ms(lat10k.hop.p99),
    applyLatencyP50Ms: ms(lat.apply.p50),
    applyLatencyP99Ms: ms(lat.apply.p99),
    firstApplyLatencyP50Ms: ms(lat.firstApply.p50),
    firstApplyLatencyP99Ms: ms(lat.firstApply.p99),
    rawLatencyP50Ms: ms(raw.p50),
    rawLatencyP99Ms: ms(raw.p99),
  };
}

/**
 * The latency part of a full run, in a child process (`BENCH_GUARANTEES_ONLY=latency`, the parent's
 * flags): a node that runs the hop, not one whose heap still holds what eight throughput sides and
 * BullMQ left (its mark-compacts then land in the measured seconds).
 */
async function latencyInChild(): Promise<LatencyFigures> {
  const runner = fileURLToPath(new URL('../run.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, runner, 'guarantees', '--json'], {
    env: { ...process.env, BENCH_GUARANTEES_ONLY: 'latency' },
    timeout: 300_000,
    maxBuffer: 1 << 20,
  });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  const { suite: _suite, ...figures } = JSON.parse(last) as LatencyFigures & { suite: string };
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Memory (child process with --expose-gc)

interface MemoryFigures {
  bytesPerActiveActor: number;
  bytesPerBareXstateActor: number;
  storeBytesPerActor: number;
  bytesPerIdleCompact: number | 'n/a';
  compactAfterIdle: number;
  bytesPerPassivatedKey: number | 'n/a';
  storeBytesPerPassivatedKey: number | 'n/a';
  actorsAfterIdle: number;
  heapAt1MKeysMB: number;
  heapWithLogAndStoreAt1MKeysMB: number;
  liveAt1MKeys: number;
  compactAt1MKeys: number;
  million: number;
  millionSeconds: number;
}

async function heapSample(gc: () => void): Promise<number> {
  const xs: number[] = [];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    xs.push(process.memoryUsage().heapUsed);
  }
  return median(xs);
}

/** The embedded store, remembering the scopes written so that they can all be cleared. */
class RecordingStore extends InMemoryCheckpointStore {
  readonly scopes = new Map<string, CheckpointScope>();
  override write(cp: CheckpointWrite): Promise<WriteResult> {
    this.scopes.set(scopeId(cp.scope), cp.scope);
    return super.write(cp);
  }
  async clearAll(): Promise<void> {
    for (const scope of this.scopes.values()) await this.clear(scope);
  }
}

/**
 * Drives `keys` distinct keys once each through the counter on the embedded runtime, with `stage`
 * options; once the last checkpoint covers everything and `settled` holds, heap per key without
 * and with the store's copy (the log is in the heap before the node starts, so not counted).
 */
async function memoryOf(gc: () => void, stageOptions: Partial<StageOptions>, keys: number, settled: (s: PartitionStatus) => boolean): Promise<{ perKey: number; storePerKey: number; heapMB: number; heapWithLogAndStoreMB: number; status: PartitionStatus; seconds: number }> {
  const clock = new SystemClock();
  const transport = new InMemoryTransport({ clock });
  const store = new RecordingStore({ clock });
  const pipeline = definePipeline({ name: 'mem', stages: [{ actor: counter, checkpoint: { intervalMs: 1000 }, ...stageOptions }] });
  const stage = pipeline.stages[0]!;
  await transport.ensureStream({ name: stage.stream, subjects: [`${pipeline.name}.${stage.name}.*`], duplicateWindowMs: 120_000 });
  for (let i = 0; i < keys; i++) {
    await transport.publish(stage.subjectOf(0), encodeEnvelope({ id: `m-${i}`, key: `key-${i}`, type: 'inc', payload: {}, headers: {}, ts: 0 }), { msgId: `m-${i}` });
  }
  const before = await heapSample(gc);
  const t0 = performance.now();
  const node = await startNode({ pipeline, transport, checkpointStore: store, clock, logger: silentLogger });
  await node.whenCaughtUp({ timeoutMs: 600_000 });
  const seconds = (performance.now() - t0) / 1000;
  const deadline = performance.now() + 10_000;
  let status = (await node.status())[0]!;
  while (!(status.checkpointSeq === status.appliedSeq && settled(status)) && performance.now() < deadline) {
    await sleepMs(50);
    status = (await node.status())[0]!;
  }
  const withStore = await heapSample(gc);
  await store.clearAll();
  const withoutStore = await heapSample(gc);
  await node.stop();
  await transport.close();
  await store.close();
  const mb = (x: number): number => Math.round(x / 1e6);
  return { perKey: (withoutStore - before) / keys, storePerKey: (withStore - withoutStore) / keys, heapMB: mb(withoutStore - before), heapWithLogAndStoreMB: mb(withStore), status, seconds };
}

/** The same counter as bare xstate actors (createActor, start, one send each): what the machine library itself holds per actor. */
async function bareXstatePerActor(gc: () => void, keys: number): Promise<number> {
  const before = await heapSample(gc);
  const actors: unknown[] = [];
  for (let i = 0; i < keys; i++) {
    const a = createActor(counterMachine, { id: `key-${i}` });
    a.start();
    a.send({ type: 'inc' });
    actors.push(a);
  }
  const after = await heapSample(gc);
  if (actors.length !== keys) throw new Error('unreachable');
  return (after - before) / keys;
}

async function memoryChild(): Promise<void> {
  const gcFn = globalThis.gc;
  if (!gcFn) throw new Error('the memory child needs --expose-gc');
  const gc = (): void => {
    gcFn();
  };
  const bare = await bareXstatePerActor(gc, MEMORY_KEYS);
  const active = await memoryOf(gc, { compactMs: 0 }, MEMORY_KEYS, () => true);
  if (active.status.actors !== MEMORY_KEYS) throw new Error(`${active.status.actors} actors in memory after driving ${MEMORY_KEYS} keys`);
  const fewLive = (s: PartitionStatus): boolean => s.actors < MEMORY_KEYS / 100;
  const compact = await memoryOf(gc, { compactMs: 200 }, MEMORY_KEYS, fewLive);
  const idle = await memoryOf(gc, { compactMs: 0, idleMs: 200 }, MEMORY_KEYS, fewLive);
  // A million keys with the stage defaults (compact tier after 30 s, at most 50,000 live actors per partition).
  const million = await memoryOf(gc, {}, MILLION_KEYS, () => true);
  const out: MemoryFigures = {
    bytesPerActiveActor: Math.round(active.perKey),
    bytesPerBareXstateActor: Math.round(bare),
    storeBytesPerActor: Math.round(active.storePerKey),
    // A figure only when the tier is in effect; otherwise the count says why not.
    bytesPerIdleCompact: fewLive(compact.status) ? Math.round(compact.perKey) : 'n/a',
    compactAfterIdle: compact.status.compact,
    bytesPerPassivatedKey: fewLive(idle.status) ? Math.round(idle.perKey) : 'n/a',
    storeBytesPerPassivatedKey: fewLive(idle.status) ? Math.round(idle.storePerKey) : 'n/a',
    actorsAfterIdle: idle.status.actors,
    heapAt1MKeysMB: million.heapMB,
    heapWithLogAndStoreAt1MKeysMB: million.heapWithLogAndStoreMB,
    liveAt1MKeys: million.status.actors,
    compactAt1MKeys: million.status.compact,
    million: MILLION_KEYS,
    millionSeconds: Number(million.seconds.toFixed(1)),
  };
  console.log(JSON.stringify(out));
}

async function memory(): Promise<MemoryFigures> {
  const file = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, '--expose-gc', file], {
    env: { ...process.env, [MEMORY_CHILD_ENV]: '1' },
    timeout: 900_000,
    maxBuffer: 1 << 20,
  });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as MemoryFigures;
}

if (process.env[MEMORY_CHILD_ENV] === '1' && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await memoryChild();
}

// ---------------------------------------------------------------------------------------------
// The suite

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

const goal = (met: boolean): string => (met ? 'met' : 'NOT met');

/**
 * The suite (see the file comment).
 *
 * @example npm run bench -- guarantees --json
 */
export const guarantees: Suite = {
  async run(log) {
    const id = randomBytes(4).toString('hex');
    const base = `g-${id}`;
    const keyPrefix = `warden-bench-${id}`;
    const bullPrefix = `warden-bench-bull-${id}`;
    // A checkpoint every second (the goals' "1 s interval"): everyEvents above N unless the knob says otherwise.
    const checkpoint: CheckpointPolicyOptions = { intervalMs: 1000, everyEvents: EVERY_EVENTS ?? 10 * N };
    log(`guarantees: ${fmt(N)} events over ${KEYS} keys, ${ROUNDS} rounds (median), warden checkpoint ${JSON.stringify(checkpoint)}, on ${NATS_URL} + ${REDIS_URL}`);

    const transport = await JetStreamTransport.connect({ servers: NATS_URL, name: 'warden-bench-guarantees', logger: silentLogger, readerBatch: BATCH });
    const redis = new Redis(REDIS_URL);
    const nc = await connect({ servers: NATS_URL, name: 'raw-bench-guarantees' });
    const jsm = await jetstreamManager(nc);
    const js = jsm.jetstream();
    const b: Backends = { transport, js, redis, keyPrefix, runs: 0 };
    const p1 = (g: Guarantee, cp: CheckpointPolicyOptions): Pipeline => counterPipeline(base, g, cp, 1);
    const eo4 = counterPipeline(`${base}-p4`, 'exactly-once', checkpoint, 4);
    try {
      if (ONLY_MEMORY) {
        const mem = await memory();
        return { rows: Object.entries(mem).map(([k, v]) => [k, String(v)]), figures: { ...mem } };
      }
      if (ONLY_LATENCY) {
        const rawLat = await rawLatency(jsm, js, `${base}-rawlat`);
        const lat = await wardenLatency(b, `${base}-hop`);
        const lat10k = await wardenLatency(b, `${base}-hop10k`, RATE_HIGH);
        return {
          rows: [
            [`hop A -> B's stream at ${RATE}/s, exactly-once, p50 / p99 ms`, `${lat.hop.p50.toFixed(3)} / ${lat.hop.p99.toFixed(3)}`],
            [`hop A -> B's stream at ${RATE_HIGH}/s, exactly-once, p50 / p99 ms`, `${lat10k.hop.p50.toFixed(3)} / ${lat10k.hop.p99.toFixed(3)}`],
            [`publish -> B's apply, p50 / p99 ms`, `${lat.apply.p50.toFixed(3)} / ${lat.apply.p99.toFixed(3)}`],
            [`publish -> A's apply, p50 / p99 ms`, `${lat.firstApply.p50.toFixed(3)} / ${lat.firstApply.p99.toFixed(3)}`],
            [`raw js.publish -> ordered consumer at ${RATE}/s, p50 / p99 ms`, `${rawLat.p50.toFixed(3)} / ${rawLat.p99.toFixed(3)}`],
          ],
          figures: latencyFigures(rawLat, lat, lat10k),
        };
      }
      const t0 = performance.now();
      await prepublish(transport, p1('exactly-once', checkpoint), N);
      await prepublish(transport, eo4, N);
      log(`  published ${fmt(N)} events into a 1-partition and a 4-partition stream in ${((performance.now() - t0) / 1000).toFixed(1)} s (not timed)`);

      const stream1 = p1('exactly-once', checkpoint).stages[0]!.stream;
      const startups: number[] = [];
      const sides: Array<{ label: string; run: () => Promise<number> }> = [
        { label: 'raw', run: () => rawConsume(js, stream1) },
        { label: 'floor', run: () => floorConsume(js, stream1) },
        {
          label: 'exactly-once',
          run: async () => {
            const r = await wardenConsume(b, p1('exactly-once', checkpoint));
            startups.push(r.startupMs);
            return r.perSec;
          },
        },
        { label: 'at-least-once', run: async () => (await wardenConsume(b, p1('at-least-once', checkpoint))).perSec },
        { label: 'at-most-once', run: async () => (await wardenConsume(b, p1('at-most-once', checkpoint))).perSec },
        { label: 'exactly-once, no checkpoints', run: async () => (await wardenConsume(b, p1('exactly-once', { enabled: false }))).perSec },
        { label: 'exactly-once, default everyEvents', run: async () => (await wardenConsume(b, p1('exactly-once', { intervalMs: 1000 }))).perSec },
        { label: 'exactly-once, 4 partitions', run: async () => (await wardenConsume(b, eo4)).perSec },
        { label: 'exactly-once, metrics off', run: async () => (await wardenConsume(b, p1('exactly-once', checkpoint), 'off')).perSec },
        { label: 'exactly-once, metrics scraped', run: async () => (await wardenConsume(b, p1('exactly-once', checkpoint), 'scraped')).perSec },
      ].filter((side) => (!ONLY_METRICS || side.label.includes('metrics')) && (!ONLY_THROUGHPUT || THROUGHPUT_SIDES.has(side.label)));
      await rawConsume(js, stream1); // warm-up (JIT, server caches)
      await wardenConsume(b, p1('exactly-once', checkpoint));
      const results = new Map<string, number[]>(sides.map((s) => [s.label, []]));
      for (let round = 0; round < ROUNDS; round++) {
        const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
        const line: string[] = [];
        for (const side of order) {
          await sleepMs(200);
          const v = await side.run();
          results.get(side.label)!.push(v);
          line.push(`${side.label} ${fmt(v)}/s`);
        }
        log(`  round ${round + 1}: ${line.join(', ')}`);
      }
      const med = (label: string): number => median(results.get(label)!);
      if (ONLY_METRICS) {
        const on = med('exactly-once, metrics scraped');
        const off = med('exactly-once, metrics off');
        const r = Number((on / off).toFixed(3));
        const pairs = results.get('exactly-once, metrics scraped')!.map((v, i) => v / results.get('exactly-once, metrics off')![i]!).sort((x, y) => x - y);
        return {
          rows: [
            ['warden exactly-once, metrics off / scraped every second, events/s (median)', `${fmt(off)} / ${fmt(on)}`],
            ['metrics cost: scraped / off, ratio of medians (goal >= 0.97)', `${r.toFixed(3)} ${goal(r >= 0.97)}`],
            ['  per-round ratios (each round runs both, order alternating)', pairs.map((x) => x.toFixed(3)).join(' ')],
          ],
          figures: { exactlyOnceMetricsOffPerSec: Math.round(off), exactlyOnceMetricsScrapedPerSec: Math.round(on), metricsOverheadRatio: r, metricsRoundRatios: pairs.map((x) => x.toFixed(3)).join(' ') },
        };
      }
      const rawPerSec = med('raw');
      const floorPerSec = med('floor');
      const eo = med('exactly-once');
      const alo = med('at-least-once');
      if (ONLY_THROUGHPUT) {
        const eoOff = med('exactly-once, no checkpoints');
        const eoDefault = med('exactly-once, default everyEvents');
        const r = (x: number): number => Number((x / floorPerSec).toFixed(3));
        return {
          rows: [
            ['raw / floor / exactly-once / at-least-once / exactly-once without checkpoints, events/s (median)', [rawPerSec, floorPerSec, eo, alo, eoOff].map(fmt).join(' / ')],
            ['exactly-once / floor, at-least-once / floor, checkpoint overhead', `${r(eo)}, ${r(alo)}, ${(eo / eoOff).toFixed(3)}`],
            ['exactly-once with the default everyEvents (1000), events/s', fmt(eoDefault)],
          ],
          figures: { rawConsumePerSec: Math.round(rawPerSec), floorPerSec: Math.round(floorPerSec), exactlyOncePerSec: Math.round(eo), atLeastOncePerSec: Math.round(alo), exactlyOnceOfFloor: r(eo), atLeastOnceOfFloor: r(alo), checkpointOverheadRatio: Number((eo / eoOff).toFixed(3)) },
        };
      }
      const amo = med('at-most-once');
      const eoOff = med('exactly-once, no checkpoints');
      const eoDefault = med('exactly-once, default everyEvents');
      const eo4PerSec = med('exactly-once, 4 partitions');
      const metricsOff = med('exactly-once, metrics off');
      const metricsScraped = med('exactly-once, metrics scraped');

      const bull = await bullmq(bullPrefix, log);
      log(`  BullMQ: ${fmt(bull)} jobs/s`);

      const latFig = await latencyInChild();
      log(`  raw publish -> consume at ${RATE}/s: p50 ${latFig.rawLatencyP50Ms} ms, p99 ${latFig.rawLatencyP99Ms} ms; warden hop at ${RATE}/s: p50 ${latFig.latencyP50Ms} ms, p99 ${latFig.latencyP99Ms} ms; at ${RATE_HIGH}/s: p99 ${latFig.latencyP99At10kMs} ms (child process)`);

      const mem = await memory();

      const ratio = (x: number, y: number): number => Number((x / y).toFixed(3));
      const cpRatio = ratio(eo, eoOff);
      const perKb = (x: number | 'n/a', left: number): string => (x === 'n/a' ? `n/a (not in effect: ${fmt(left)} of ${fmt(MEMORY_KEYS)} actors still live)` : fmt(x));
      return {
        rows: [
          ['raw JetStream ordered consume + JSON + Map count, events/s', fmt(rawPerSec)],
          ['floor: raw consume + envelope decode/validate + xstate send of the same machine, events/s', fmt(floorPerSec)],
          ['warden exactly-once (1 partition, checkpoint intervalMs 1000), events/s', fmt(eo)],
          ['warden at-least-once, events/s', fmt(alo)],
          ['warden at-most-once, events/s', fmt(amo)],
          ['warden exactly-once, 4 partitions, events/s', fmt(eo4PerSec)],
          ['warden exactly-once, checkpoint { enabled: false }, events/s', fmt(eoOff)],
          ['warden exactly-once, checkpoint { intervalMs: 1000 } (everyEvents at its default, 1000: a cut of every key per 1000 inputs), events/s', fmt(eoDefault)],
          [`BullMQ worker (concurrency ${BULLMQ_CONCURRENCY}), jobs/s`, fmt(bull)],
          ['warden exactly-once startNode -> first apply, ms (median)', median(startups).toFixed(1)],
          [`floor / raw`, ratio(floorPerSec, rawPerSec).toFixed(3)],
          [`exactly-once / floor (goal >= 0.85)`, `${ratio(eo, floorPerSec).toFixed(3)} ${goal(eo >= 0.85 * floorPerSec)}`],
          [`at-least-once / floor (goal >= 0.85)`, `${ratio(alo, floorPerSec).toFixed(3)} ${goal(alo >= 0.85 * floorPerSec)}`],
          [`exactly-once / raw`, ratio(eo, rawPerSec).toFixed(3)],
          [`at-least-once / raw`, ratio(alo, rawPerSec).toFixed(3)],
          [`at-most-once / raw`, ratio(amo, rawPerSec).toFixed(3)],
          [`exactly-once / BullMQ (goal >= 4)`, `${ratio(eo, bull).toFixed(3)} ${goal(eo >= 4 * bull)}`],
          [`at-least-once / BullMQ (goal >= 4)`, `${ratio(alo, bull).toFixed(3)} ${goal(alo >= 4 * bull)}`],
          [`checkpoint overhead: with / without checkpoints (goal >= 0.97)`, `${cpRatio.toFixed(3)} ${goal(cpRatio >= 0.97)}`],
          ['warden exactly-once, metrics off / scraped every second, events/s', `${fmt(metricsOff)} / ${fmt(metricsScraped)}`],
          [`metrics cost: scraped every second / off (goal >= 0.97)`, `${ratio(metricsScraped, metricsOff).toFixed(3)} ${goal(metricsScraped >= 0.97 * metricsOff)}`],
          [`hop A -> B's stream at ${RATE}/s, exactly-once, p50 ms (goal < 1)`, `${latFig.latencyP50Ms.toFixed(3)} ${goal(latFig.latencyP50Ms < 1)}`],
          [`hop A -> B's stream at ${RATE}/s, exactly-once, p99 ms (goal < 5)`, `${latFig.latencyP99Ms.toFixed(3)} ${goal(latFig.latencyP99Ms < 5)}`],
          [`publish -> B's apply, p50 / p99 ms`, `${latFig.applyLatencyP50Ms.toFixed(3)} / ${latFig.applyLatencyP99Ms.toFixed(3)}`],
          [`publish -> A's apply, p50 / p99 ms`, `${latFig.firstApplyLatencyP50Ms.toFixed(3)} / ${latFig.firstApplyLatencyP99Ms.toFixed(3)}`],
          [`hop A -> B's stream at ${RATE_HIGH}/s, exactly-once, p50 / p99 ms`, `${latFig.latencyP50At10kMs.toFixed(3)} / ${latFig.latencyP99At10kMs.toFixed(3)}`],
          [`raw js.publish -> ordered consumer at ${RATE}/s, p50 / p99 ms`, `${latFig.rawLatencyP50Ms.toFixed(3)} / ${latFig.rawLatencyP99Ms.toFixed(3)}`],
          [`heap bytes per live actor (goal < 4096)`, `${fmt(mem.bytesPerActiveActor)} ${goal(mem.bytesPerActiveActor < 4096)}`],
          [`  the same machine as a bare xstate actor (createActor + start + send), bytes`, fmt(mem.bytesPerBareXstateActor)],
          [`  + embedded store's sealed copy, bytes per actor`, fmt(mem.storeBytesPerActor)],
          [`heap bytes per idle actor in the compact tier (goal < 500)`, mem.bytesPerIdleCompact === 'n/a' ? perKb('n/a', MEMORY_KEYS - mem.compactAfterIdle) : `${fmt(mem.bytesPerIdleCompact)} ${goal(mem.bytesPerIdleCompact < 500)}`],
          [`heap bytes per passivated key`, perKb(mem.bytesPerPassivatedKey, mem.actorsAfterIdle)],
          [`  + embedded store's sealed copy, bytes per passivated key`, perKb(mem.storeBytesPerPassivatedKey, mem.actorsAfterIdle)],
          [`${fmt(mem.million)} keys through one node (stage defaults): node heap, MB (log and store copy excluded)`, `${fmt(mem.heapAt1MKeysMB)} (${fmt(mem.liveAt1MKeys)} live, ${fmt(mem.compactAt1MKeys)} compact; applied in ${mem.millionSeconds} s)`],
          [`  heap with the in-memory log and the store's copy, MB`, fmt(mem.heapWithLogAndStoreAt1MKeysMB)],
        ],
        figures: {
          rawConsumePerSec: Math.round(rawPerSec),
          floorPerSec: Math.round(floorPerSec),
          exactlyOnceOfFloor: ratio(eo, floorPerSec),
          atLeastOnceOfFloor: ratio(alo, floorPerSec),
          exactlyOncePerSec: Math.round(eo),
          atLeastOncePerSec: Math.round(alo),
          atMostOncePerSec: Math.round(amo),
          exactlyOnce4pPerSec: Math.round(eo4PerSec),
          exactlyOnceNoCheckpointsPerSec: Math.round(eoOff),
          exactlyOnceDefaultEveryEventsPerSec: Math.round(eoDefault),
          exactlyOnceMetricsOffPerSec: Math.round(metricsOff),
          exactlyOnceMetricsScrapedPerSec: Math.round(metricsScraped),
          metricsOverheadRatio: ratio(metricsScraped, metricsOff),
          bullmqPerSec: Math.round(bull),
          checkpointOverheadRatio: cpRatio,
          exactlyOnceVsRaw: ratio(eo, rawPerSec),
          atLeastOnceVsRaw: ratio(alo, rawPerSec),
          exactlyOnceVsBullmq: ratio(eo, bull),
          ...latFig,
          bytesPerActiveActor: mem.bytesPerActiveActor,
          bytesPerBareXstateActor: mem.bytesPerBareXstateActor,
          storeBytesPerActor: mem.storeBytesPerActor,
          bytesPerIdleCompact: mem.bytesPerIdleCompact,
          heapAt1MKeysMB: mem.heapAt1MKeysMB,
          heapWithLogAndStoreAt1MKeysMB: mem.heapWithLogAndStoreAt1MKeysMB,
          bytesPerPassivatedKey: mem.bytesPerPassivatedKey,
          storeBytesPerPassivatedKey: mem.storeBytesPerPassivatedKey,
          startupMs: Number(median(startups).toFixed(1)),
          actorsAfterIdle: mem.actorsAfterIdle,
        },
      };
    } finally {
      // Every stream of this run's pipelines (their names start with `base`), whatever the node made.
      const mine: string[] = [];
      for await (const name of jsm.streams.names()) if (name.startsWith(base)) mine.push(name);
      for (const s of mine) await transport.deleteStream(s).catch(() => undefined);
      await transport.close();
      await nc.close();
      await deleteKeys(redis, `${keyPrefix}-*`);
      await deleteKeys(redis, `${bullPrefix}:*`);
      redis.disconnect();
    }
  },
};
