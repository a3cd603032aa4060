/**
 * A rig for driving one `PartitionWorker` directly on a `SimulatedClock` shared by the transport,
 * the store and the worker: counter (1 partition) -> tally, plus transports and stores that can
 * hold or fail. Used by the worker's unit tests.
 */
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  WardenError,
  definePipeline,
  silentLogger,
  type ActorDefinition,
  type CheckpointPolicyOptions,
  type CheckpointScope,
  type CheckpointStore,
  type CheckpointWrite,
  type Pipeline,
  type PubAck,
  type PublishOptions,
  type Reader,
  type ReaderOptions,
  type StageOptions,
  type StoredMessage,
  type StreamConfig,
  type Transport,
  type WorkerEvent,
  type WriteResult,
} from '../../lib/index.js';
import { PartitionWorker, type PartitionWorkerOptions } from '../../lib/worker/worker.js';
import { SimulatedClock } from '../../lib/core/clock.js';
import { encodeEnvelope } from '../../lib/core/envelope.js';
import { flushMicrotasks } from '../../lib/core/clock.js';
import { MAC_HEADER, macOf } from '../../lib/worker/records.js';
import { DelegatingTransport } from './delegating-transport.js';
import { counter, tally } from './counter.js';

export interface CounterCtx {
  count: number;
  total: number;
  seen: number[];
}

export type EventOf<T extends WorkerEvent['type']> = Extract<WorkerEvent, { type: T }>;

export function ofType<T extends WorkerEvent['type']>(events: readonly WorkerEvent[], type: T): Array<EventOf<T>> {
  return events.filter((e): e is EventOf<T> => e.type === type);
}

export const dec = new TextDecoder();

/** Lets the worker run until it waits for input again (on the simulated clock, no time passes). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

export interface PipelineOptions {
  checkpoint?: CheckpointPolicyOptions;
  actor?: ActorDefinition;
  /** Further options of the counter stage (guarantee, outputs, idleMs...). */
  stage?: Partial<Omit<StageOptions, 'actor' | 'to' | 'checkpoint'>>;
}

/** counter (1 partition) -> tally (1 partition). */
export function counterPipeline(name: string, o: PipelineOptions = {}): Pipeline {
  return definePipeline({
    name,
    stages: [
      { ...o.stage, actor: o.actor ?? counter, to: 'tally', checkpoint: o.checkpoint ?? { everyEvents: 1000, intervalMs: 1000 } },
      { actor: tally },
    ],
  });
}

export interface WorkerOverrides {
  pipeline?: Pipeline;
  transport?: Transport;
  store?: CheckpointStore;
  epoch?: number;
  failpoint?: PartitionWorkerOptions['failpoint'];
  maxOutboxSize?: number;
  batchSize?: number;
  yieldEvery?: PartitionWorkerOptions['yieldEvery'];
}

/** One pipeline on its own clock, transport and store. */
export class Rig {
  readonly clock: SimulatedClock;
  readonly transport: InMemoryTransport;
  readonly store: InMemoryCheckpointStore;
  private constructor(readonly pipeline: Pipeline, shared?: Rig) {
    this.clock = shared?.clock ?? new SimulatedClock(0);
    this.transport = shared?.transport ?? new InMemoryTransport({ clock: this.clock });
    this.store = shared?.store ?? new InMemoryCheckpointStore({ clock: this.clock });
  }

  static async create(name: string, o: PipelineOptions & { counterStream?: Partial<StreamConfig> } = {}): Promise<Rig> {
    const rig = new Rig(counterPipeline(name, o));
    for (const stage of rig.pipeline.stages) {
      await rig.transport.ensureStream({ ...(stage.name === 'counter' ? o.counterStream : {}), name: stage.stream, subjects: [`${name}.${stage.name}.*`] });
    }
    await rig.transport.ensureStream({ name: rig.pipeline.deadLetterStream, subjects: [`${name}.dlq.>`] });
    return rig;
  }

  /** Checkpoint scope of the counter stage's partition 0. */
  get scope(): CheckpointScope {
    return this.pipeline.stage('counter').scopeOf(0);
  }

  /** Another pipeline definition (same name, other options) on this rig's clock, transport and store. */
  static sharing(rig: Rig, name: string, o: PipelineOptions = {}): Rig {
    return new Rig(counterPipeline(name, o), rig);
  }

  /** A worker of partition 0 of the counter stage, with the events it reported. */
  worker(o: WorkerOverrides = {}): { worker: PartitionWorker; events: WorkerEvent[] } {
    const events: WorkerEvent[] = [];
    const pipeline = o.pipeline ?? this.pipeline;
    const worker = new PartitionWorker({
      stage: pipeline.stage('counter'),
      routing: pipeline.routing('counter'),
      partition: 0,
      transport: o.transport ?? this.transport,
      store: o.store ?? this.store,
      clock: this.clock,
      logger: silentLogger,
      ...(o.epoch === undefined ? {} : { epoch: o.epoch }),
      ...(o.failpoint === undefined ? {} : { failpoint: o.failpoint }),
      ...(o.maxOutboxSize === undefined ? {} : { maxOutboxSize: o.maxOutboxSize }),
      ...(o.batchSize === undefined ? {} : { batchSize: o.batchSize }),
      ...(o.yieldEvery === undefined ? {} : { yieldEvery: o.yieldEvery }),
      onEvent: (e) => events.push(e),
    });
    return { worker, events };
  }

  /** Publishes `add {amount}` for `key` to the counter's partition 0. */
  add(key: string, amount: number, id = `in:${key}:${amount}`): Promise<PubAck> {
    return this.send(key, 'add', { amount }, id);
  }

  send(key: string, type: string, payload: Record<string, unknown>, id: string, headers: Record<string, string> = {}): Promise<PubAck> {
    const body = encodeEnvelope({ id, key, type, payload, headers, ts: this.clock.now() });
    return this.transport.publish(this.pipeline.stage('counter').subjectOf(0), body, { msgId: id });
  }

  /** Publishes a `warden.timer` / `warden.call` record signed as the partition's owner would (`worker` holds the key). */
  sendRecord(worker: PartitionWorker, key: string, type: string, payload: Record<string, unknown>, id: string): Promise<PubAck> {
    const mac = macOf(worker.recordKey, { id, key, type, payload, headers: {}, ts: 0 });
    return this.send(key, type, payload, id, { [MAC_HEADER]: mac });
  }

  /** Every message stored in the stream of `stage`. */
  async messages(stage: string): Promise<StoredMessage[]> {
    const reader = this.transport.openReader(this.pipeline.stage(stage).stream, {});
    try {
      return await reader.next(10_000, 0);
    } finally {
      await reader.close();
    }
  }

  async entry(key: string): Promise<{ seq: number; machineVersion: string; context: CounterCtx } | undefined> {
    const e = await this.store.readActor(this.scope, key);
    return e && { seq: e.seq, machineVersion: e.machineVersion, context: (e.snapshot as unknown as { context: CounterCtx }).context };
  }
}

export function ctxOf(worker: PartitionWorker, key: string): CounterCtx | undefined {
  return worker.inspect(key)?.context as CounterCtx | undefined;
}

/** A Transport that delegates to another but can hold (never resolve) or fail publishes to matching subjects. */
export class FaultyTransport extends DelegatingTransport {
  /** Publishes to matching subjects hang forever while true. */
  hold = false;
  /** Publishes to matching subjects reject while true. */
  reject = false;
  /** msgIds of the publishes left hanging. */
  readonly hung: string[] = [];
  /** Publish attempts to matching subjects, by msgId. */
  readonly attempts: string[] = [];

  constructor(inner: Transport, private readonly matches: (subject: string) => boolean) {
    super(inner);
  }

  override publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PubAck> {
    if (this.matches(subject)) {
      this.attempts.push(options?.msgId ?? '?');
      if (this.hold) {
        this.hung.push(options?.msgId ?? '?');
        return new Promise<PubAck>(() => undefined);
      }
      if (this.reject) return Promise.reject(new WardenError('TIMEOUT', `publish to ${subject} timed out`));
    }
    return this.inner.publish(subject, data, options);
  }
  override openReader(stream: string, options?: ReaderOptions): Reader {
    return this.inner.openReader(stream, options);
  }
}

/** A CheckpointStore that delegates to an in-memory one, records every write, and can hold actor reads. */
export class SpyStore implements CheckpointStore {
  readonly written: CheckpointWrite[] = [];
  /** `readActor` hangs (forever) while true. */
  holdReads = false;
  /** Microtask ticks a write takes before it reaches the inner store (a store with latency). */
  writeDelayTicks = 0;
  private held: Array<() => void> = [];

  constructor(readonly inner: InMemoryCheckpointStore) {}

  write(cp: CheckpointWrite): Promise<WriteResult> {
    this.written.push(structuredClone(cp));
    if (this.writeDelayTicks === 0) return this.inner.write(cp);
    const ticks = this.writeDelayTicks;
    return (async () => {
      for (let i = 0; i < ticks; i++) await Promise.resolve();
      return this.inner.write(cp);
    })();
  }
  readMeta(scope: CheckpointScope): ReturnType<CheckpointStore['readMeta']> {
    return this.inner.readMeta(scope);
  }
  async readActor(scope: CheckpointScope, key: string): ReturnType<CheckpointStore['readActor']> {
    if (this.holdReads) await new Promise<void>((resolve) => this.held.push(resolve));
    return this.inner.readActor(scope, key);
  }
  readActors(scope: CheckpointScope): ReturnType<CheckpointStore['readActors']> {
    return this.inner.readActors(scope);
  }
  claim(scope: CheckpointScope, epoch?: number): ReturnType<CheckpointStore['claim']> {
    return this.inner.claim(scope, epoch);
  }
  readClaim(scope: CheckpointScope): ReturnType<CheckpointStore['readClaim']> {
    return this.inner.readClaim(scope);
  }
  clear(scope: CheckpointScope): Promise<void> {
    return this.inner.clear(scope);
  }
  drop(scope: CheckpointScope): Promise<void> {
    return this.inner.drop(scope);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  get heldReads(): number {
    return this.held.length;
  }
  /** Lets held reads go on. */
  releaseReads(): void {
    this.holdReads = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}


/** The records of `type` (`warden.timer`, `warden.call`, an input type) among `msgs`, with their payloads. */
export function records(msgs: StoredMessage[], type: string): Array<{ seq: number; msgId: string | undefined; payload: Record<string, unknown> }> {
  return msgs
    .map((m) => ({ m, env: JSON.parse(dec.decode(m.data)) as { type: string; payload: Record<string, unknown> } }))
    .filter(({ env }) => env.type === type)
    .map(({ m, env }) => ({ seq: m.seq, msgId: m.msgId, payload: env.payload }));
}
