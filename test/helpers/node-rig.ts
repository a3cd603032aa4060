/**
 * A rig for races of nodes, actor groups and partition workers on a `SimulatedClock` shared by the
 * node, its transport and its store: counter (1 partition) -> tally, a store whose reads and writes
 * a test can hold or fail, and a node whose events are recorded. Used by supervision-races.test.ts,
 * worker-kill-races.test.ts and node-listeners.test.ts.
 */
import { SimulatedClock } from '../../lib/core/clock.js';
import {
  WardenError,
  definePipeline,
  silentLogger,
  startNode,
  type CheckpointMeta,
  type CheckpointPolicyOptions,
  type CheckpointScope,
  type CheckpointStore,
  type CheckpointWrite,
  type InMemoryCheckpointStore,
  type NodeEvent,
  type Pipeline,
  type PubAck,
  type StoredMessage,
  type Transport,
  type WardenNode,
  type WriteResult,
} from '../../lib/index.js';
import { counter, tally } from './counter.js';

/** Advances `clock` in `stepMs` steps until `promise` settles (at most `maxMs`), then returns it. */
export async function drive<T>(clock: SimulatedClock, promise: Promise<T>, { stepMs = 5, maxMs = 60_000 } = {}): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let elapsed = 0; !settled && elapsed < maxMs; elapsed += stepMs) await clock.advanceAsync(stepMs);
  if (!settled) throw new Error(`did not settle within ${maxMs} ms of simulated time`);
  return promise;
}

/** counter (1 partition) -> tally (1 partition). */
export function counterToTally(name: string, extra: { checkpoint?: CheckpointPolicyOptions; supervision?: Record<string, unknown> } = {}): Pipeline {
  return definePipeline({
    name,
    stages: [
      { actor: counter, to: 'tally', ...(extra.checkpoint ? { checkpoint: extra.checkpoint } : {}), ...(extra.supervision ? { supervision: extra.supervision } : {}) },
      { actor: tally },
    ],
  });
}

/** Every message stored in `stream`. */
export async function messages(transport: Transport, stream: string): Promise<StoredMessage[]> {
  const reader = transport.openReader(stream, {});
  try {
    return await reader.next(10_000, 0);
  } finally {
    await reader.close();
  }
}

/** Ingests `add {amount}` for `key`. */
export function add(node: WardenNode, key: string, amount: number): Promise<PubAck> {
  return node.ingest({ id: `in:${key}:${amount}`, key, type: 'add', payload: { amount } });
}

export function ofType<T extends NodeEvent['type']>(events: readonly NodeEvent[], type: T): Array<Extract<NodeEvent, { type: T }>> {
  return events.filter((e): e is Extract<NodeEvent, { type: T }> => e.type === type);
}

/** Checkpoint scope of partition 0 of `stage` in `pipeline`. */
export const scopeIn = (pipeline: Pipeline, stage = 'counter'): CheckpointScope => pipeline.stage(stage).scopeOf(0);

/** A CheckpointStore over an in-memory one whose reads and writes a test can hold, or make fail. */
export class GateStore implements CheckpointStore {
  /** `readMeta` waits for `release()` while true. */
  holdMeta = false;
  /** `readMeta` rejects while true. */
  failMeta = false;
  /** `readActor` waits for `release()` while true. */
  holdActorReads = false;
  /** The next this-many writes wait for `release()`. */
  holdWrites = 0;
  heldMeta = 0;
  heldWrites: CheckpointWrite[] = [];
  private waiting: Array<() => void> = [];

  constructor(readonly inner: InMemoryCheckpointStore) {}

  async write(cp: CheckpointWrite): Promise<WriteResult> {
    if (this.holdWrites > 0) {
      this.holdWrites--;
      this.heldWrites.push(cp);
      await this.gate();
    }
    return this.inner.write(cp);
  }
  async readMeta(scope: CheckpointScope): Promise<CheckpointMeta | undefined> {
    if (this.failMeta) throw new WardenError('TIMEOUT', 'checkpoint store unreachable');
    if (this.holdMeta) {
      this.heldMeta++;
      await this.gate();
    }
    return this.inner.readMeta(scope);
  }
  async readActor(scope: CheckpointScope, key: string): ReturnType<CheckpointStore['readActor']> {
    if (this.holdActorReads) await this.gate();
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
  /** Lets every held call go on and stops holding. */
  release(): void {
    this.holdMeta = false;
    this.holdActorReads = false;
    this.holdWrites = 0;
    for (const go of this.waiting.splice(0)) go();
  }
  private gate(): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }
}

/** Streams of `pipeline` on `transport`, as startNode would create them. */
export async function ensureStreams(transport: Transport, pipeline: Pipeline): Promise<void> {
  for (const stage of pipeline.stages) await transport.ensureStream({ name: stage.stream, subjects: [`${pipeline.name}.${stage.name}.*`] });
  await transport.ensureStream({ name: pipeline.deadLetterStream, subjects: [`${pipeline.name}.dlq.>`] });
}

/** A node on a simulated clock with its events recorded; stopped (driving the clock) at teardown. */
export async function nodeRig(
  t: { teardown(fn: () => Promise<void>): void },
  pipeline: Pipeline,
  extra: { clock?: SimulatedClock; store?: CheckpointStore; transport?: Transport; supervision?: Parameters<typeof startNode>[0]['supervision']; onFatal?: (e: Error) => void } = {},
) {
  const clock = extra.clock ?? new SimulatedClock(0);
  const events: NodeEvent[] = [];
  const node = await startNode({
    pipeline,
    clock,
    logger: silentLogger,
    random: () => 0.5,
    onEvent: (e) => events.push(e),
    ...(extra.store ? { checkpointStore: extra.store } : {}),
    ...(extra.transport ? { transport: extra.transport } : {}),
    ...(extra.supervision ? { supervision: extra.supervision } : {}),
    ...(extra.onFatal ? { onFatal: extra.onFatal } : {}),
  });
  t.teardown(() => drive(clock, node.stop()).catch(() => undefined));
  return { clock, events, node };
}
