/**
 * Runs the clickstream scenario: feeds clicks, injects bad input, crashes one actor and kills
 * two operators mid-stream, waits for recovery, then checks the sink's durable state with the
 * semantics checker. Used by `npm run demo` and by the end-to-end tests.
 */
import { faults } from '../../chaos/faults.js';
import {
  InMemoryCheckpointStore,
  InMemoryTransport,
  SystemClock,
  silentLogger,
  startNode,
  type CheckpointStore,
  type Guarantee,
  type Logger,
  type NodeEvent,
  type Transport,
  type WardenNode,
} from '../../lib/index.js';
import type { Failpoint } from '../../lib/worker/worker.js';
import { SemanticsChecker, type SemanticsReport } from '../../lib/testing/index.js';
import type { PageAggregate } from '../../actors/clickstream/pages.js';
import { generateClicks } from './generate.js';
import { clickstreamPipeline } from './pipeline.js';

/** Options of a scenario run. */
export interface ClickstreamOptions {
  /** Clicks to send. @default 5000 */
  events?: number;
  /** Operators to kill, with the fraction of the stream after which each dies. @default sessions at 0.4, pages at 0.7 */
  kills?: Array<{ stage: string; at: number }>;
  /** Fractions of the stream after which one sessions actor crashes once (a transient fault). @default [0.2] */
  actorCrashesAt?: number[];
  transport?: Transport;
  checkpointStore?: CheckpointStore;
  logger?: Logger;
  /** Called with progress lines. */
  progress?: (line: string) => void;
  name?: string;
  /** Duplicate window of the streams. @default 120_000 */
  duplicateWindowMs?: number;
  /** Seed of the generated clicks. @default 42 */
  seed?: number;
  /** Distinct users clicking (fewer users: more clicks per user). @default 200 */
  users?: number;
  /** Delete the run's streams, checkpoints and claims at the end (for runs on shared servers). @default false */
  cleanup?: boolean;
  /** Checkpoint policy of every stage. @default { everyEvents: 200, intervalMs: 250 } */
  checkpoint?: { everyEvents?: number; intervalMs?: number };
  /** Guarantee of every stage. @default 'exactly-once' */
  guarantee?: Guarantee;
  /**
   * Chaos: crash a worker at a failpoint of lib/actor/partition-worker.ts. Each arming kills the
   * worker of `stage` (the one of `partition`, or whichever partition gets there) from inside the
   * hook the `nth` time that point is reached there, once. Points are counted from the moment the
   * node has started (so a `'during-restore'` arming needs a kill to restart a worker first) until
   * the clicks are all sent and applied; nothing fires during the final stop. @default []
   */
  failpoints?: FailpointArming[];
}

/** One crash at a failpoint (see `ClickstreamOptions.failpoints`). */
export interface FailpointArming {
  point: Failpoint;
  stage: string;
  partition?: number;
  /** 1-based. */
  nth: number;
}

/** A failpoint arming that fired: where, and at which sequence of the partition's stream. */
export interface FailpointFired {
  arming: number;
  point: Failpoint;
  stage: string;
  partition: number;
  seq: number;
}

/** What the run measured. */
export interface ClickstreamResult extends SemanticsReport {
  /** Bad inputs sent on purpose, and dead letters the pipeline reported. */
  badInputs: number;
  deadLettered: number;
  kills: number;
  actorCrashes: number;
  workerRestarts: number;
  /** Longest time from a kill to the restarted operator applying its first input, ms. */
  recoveryMs: number;
  checkpoints: number;
  durationMs: number;
  /** The `failpoints` armings that fired (each at most once), in firing order. */
  failpointsFired: FailpointFired[];
}

/** Runs the scenario once. */
export async function runClickstream(options: ClickstreamOptions = {}): Promise<ClickstreamResult> {
  const clock = new SystemClock();
  const total = options.events ?? 5000;
  const kills = options.kills ?? [{ stage: 'sessions', at: 0.4 }, { stage: 'pages', at: 0.7 }];
  const crashPoints = new Set((options.actorCrashesAt ?? [0.2]).map((f) => Math.floor(total * f)));
  const say = options.progress ?? (() => undefined);
  const transport = options.transport ?? new InMemoryTransport({ clock });
  const store = options.checkpointStore ?? new InMemoryCheckpointStore({ clock });
  const pipeline = clickstreamPipeline({ ...options.checkpoint, ...(options.name ? { name: options.name } : {}), ...(options.guarantee ? { guarantee: options.guarantee } : {}) });
  const t0 = clock.now();

  const killedAt = new Map<string, number>();
  const recovery: number[] = [];
  let deadLettered = 0;
  let actorCrashes = 0;
  let restarts = 0;
  let checkpoints = 0;
  const onEvent = (e: NodeEvent): void => {
    if (e.type === 'dead-letter') deadLettered++;
    else if (e.type === 'actor-crashed') actorCrashes++;
    else if (e.type === 'child-restarting') restarts++;
    else if (e.type === 'checkpoint') checkpoints++;
    else if (e.type === 'first-input') {
      const at = killedAt.get(`${e.stage}/${e.partition}`);
      if (at !== undefined) {
        recovery.push(clock.now() - at);
        killedAt.delete(`${e.stage}/${e.partition}`);
        say(`  ${e.stage}/${e.partition} recovered: restored from checkpoint, replaying from seq ${e.seq}`);
      }
    }
  };
  // Failpoints: counted only while `chaos.live` (the node exists and the run is not stopping).
  const armings = (options.failpoints ?? []).map((a) => ({ ...a, reached: 0, fired: false }));
  const fired: FailpointFired[] = [];
  const chaos: { node?: WardenNode; live: boolean } = { live: false };
  const failpoint = (point: Failpoint, info: { stage: string; partition: number; seq: number }): void => {
    if (!chaos.live || !chaos.node) return;
    for (const [i, a] of armings.entries()) {
      if (a.fired || a.point !== point || a.stage !== info.stage || (a.partition !== undefined && a.partition !== info.partition)) continue;
      if (++a.reached < a.nth) continue;
      a.fired = true;
      fired.push({ arming: i, point, stage: info.stage, partition: info.partition, seq: info.seq });
      say(`  chaos: killed ${info.stage}/${info.partition} at failpoint '${point}' (seq ${info.seq})`);
      chaos.node.kill(info.stage, info.partition); // synchronously, from inside the hook: the worker dies right here
    }
  };
  const node = await startNode({
    pipeline, transport, checkpointStore: store, clock, logger: options.logger ?? silentLogger, onEvent,
    ...(options.duplicateWindowMs === undefined ? {} : { duplicateWindowMs: options.duplicateWindowMs }),
    ...(armings.length > 0 ? { failpoint } : {}),
  });
  chaos.node = node;
  chaos.live = armings.length > 0;

  const clicks = generateClicks(total, { seed: options.seed ?? 42, ...(options.users === undefined ? {} : { users: options.users }) });
  const checker = new SemanticsChecker();
  const pendingKills = [...kills].sort((a, b) => a.at - b.at);
  let badInputs = 0;
  let armedCrashes = faults.fired.get('sessions') ?? 0;
  for (let i = 0; i < clicks.length; i++) {
    const c = clicks[i]!;
    checker.sent(c.user, c.n);
    await node.ingest({ id: `click:${c.user}:${c.n}`, key: c.user, type: 'raw', payload: { line: c.line } });
    if (crashPoints.has(i)) {
      // One crash at a time: the previous one fires before the next is armed (arming replaces), however
      // the partitions and this loop interleave. A worker catching up may need a turn of the event loop.
      const firedBefore = faults.fired.get('sessions') ?? 0;
      for (let waited = 0; armedCrashes > firedBefore && waited < 2000; waited++) await new Promise((resolve) => setTimeout(resolve, 1));
      armedCrashes = firedBefore + 1;
      faults.arm('sessions', { times: 1 });
      say(`  chaos: armed a one-time crash in a sessions actor`);
    }
    while (pendingKills.length > 0 && i >= Math.floor(total * pendingKills[0]!.at)) {
      const k = pendingKills.shift()!;
      for (let p = 0; p < pipeline.stage(k.stage).partitions; p++) killedAt.set(`${k.stage}/${p}`, clock.now());
      node.kill(k.stage);
      say(`  chaos: killed operator '${k.stage}' (all partitions) after ${i + 1} clicks`);
    }
    if (i === Math.floor(total / 2)) badInputs += await sendBadInputs(node, transport, pipeline.stage('parse').subjectOf(0));
    if ((i + 1) % 1000 === 0) {
      const st = await node.status();
      const lag = st.reduce((s, p) => s + p.lag, 0);
      say(`  sent ${i + 1}/${total}  applied ${st.reduce((s, p) => s + p.applied, 0)}  lag ${lag}  checkpoints ${checkpoints}`);
      await node.whenCaughtUp({ timeoutMs: 60_000 }).catch(() => undefined); // let the pipeline breathe
    }
  }
  await node.whenCaughtUp({ timeoutMs: 60_000 });
  if (chaos.live) {
    // A failpoint may have fired during that wait: catch up again with none armed, so no worker
    // is killed while the node stops (a worker killed then would not be restarted).
    chaos.live = false;
    await node.whenCaughtUp({ timeoutMs: 60_000 });
  }
  await node.stop(); // final checkpoints
  faults.disarm();

  // What durably reached the sink: read it back from the checkpoints, as a restarted node would.
  for (let p = 0; p < pipeline.stage('pages').partitions; p++) {
    for (const entry of await store.readActors(pipeline.stage('pages').scopeOf(p))) {
      const ctx = (entry.snapshot as unknown as { context: PageAggregate }).context;
      for (const id of ctx.applied) {
        const [user, n] = id.split('#') as [string, string];
        checker.observe(user, Number(n), entry.key);
      }
    }
  }
  if (options.cleanup) {
    for (const stage of pipeline.stages) {
      await transport.deleteStream(stage.stream);
      for (let p = 0; p < stage.partitions; p++) await store.drop(stage.scopeOf(p));
    }
    await transport.deleteStream(pipeline.deadLetterStream);
  }
  if (!options.transport) await transport.close();
  return {
    ...checker.report(),
    badInputs,
    deadLettered,
    kills: kills.length,
    actorCrashes,
    workerRestarts: restarts,
    recoveryMs: recovery.length ? Math.max(...recovery) : 0,
    checkpoints,
    durationMs: clock.now() - t0,
    failpointsFired: fired,
  };
}

/** Publishes three inputs the pipeline must refuse and dead-letter; returns how many. */
async function sendBadInputs(node: Awaited<ReturnType<typeof startNode>>, transport: Transport, subject: string): Promise<number> {
  await node.ingest({ id: 'bad:1', key: 'u-bad', type: 'raw', payload: { line: 42 } }); // fails the schema
  await node.ingest({ id: 'bad:2', key: 'u-bad', type: 'purchase', payload: {} }); // unknown event type
  await transport.publish(subject, new TextEncoder().encode('{not json'), { msgId: 'bad:3' }); // undecodable
  return 3;
}
