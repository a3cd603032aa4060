/**
 * The live view of a node: a snapshot of its tree, partitions and breakers, and a stream of
 * snapshots (server-sent events) that the dashboard page renders (`/dashboard`, `/events`).
 *
 * Invariants:
 *  1. A subscriber gets a snapshot at once, then one after every change the node reports (a
 *     crash, a restart, a checkpoint, a lease, a breaker transition), and one every `refreshMs`
 *     regardless (lag and checkpoint age move without events); no two closer than `minGapMs`.
 *  2. A snapshot carries no payload or credential: ids, states, counts, positions, and the error
 *     messages of crashes cut to 200 characters. Keys appear only where an actor crashed (the
 *     tree lists restarted actors by key, a crash message names its actor), as in `/tree`.
 *  3. A subscriber that goes away (its connection closes) is dropped with its timers; a node
 *     that stops sends one last snapshot (`alive: false`) and ends the streams.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { NodeEvent, PartitionStatus, WardenNode } from '../pipeline/node-types.js';
import { eachCall, listCalls } from '../resilience/registry.js';
import type { TreeNode } from '../supervision/types.js';

/** What the dashboard shows of one node at one moment. */
export interface LiveSnapshot {
  node: string;
  pipeline: string;
  alive: boolean;
  at: number;
  tree: TreeNode;
  partitions: Array<Pick<PartitionStatus, 'stage' | 'partition' | 'running' | 'lag' | 'checkpointAgeMs' | 'restarts' | 'epoch' | 'appliedSeq' | 'outbox' | 'actors'> & { down?: string }>;
  breakers: Array<{ call: string; state: string; consecutiveFailures: number; failedCalls: number }>;
  /** The latest lifecycle events, newest last. */
  events: Array<{ at: number; type: string; where: string; detail?: string }>;
}

const SHOWN = new Set(['child-crashed', 'child-restarting', 'child-started', 'escalated', 'fatal', 'partition-down', 'actor-crashed', 'actor-restarted', 'dead-letter', 'checkpoint-failed', 'restored', 'killed', 'failed', 'lease-acquired', 'lease-lost', 'lease-released']);

/**
 * Invariant 2: the tree as the endpoints show it. A keyed actor that never crashed (not restarted,
 * not failed) is left out (its key may be a customer's id); its partition's `info.actors` still counts it.
 *
 * @example publicTree(node.tree()) // the tree without keys of actors that never crashed
 */
export function publicTree(node: TreeNode): TreeNode {
  if (!node.children) return node;
  const children = node.children.filter((c) => c.kind !== 'actor' || c.restarts > 0 || c.status === 'failed').map(publicTree);
  return { ...node, children };
}

function describe(e: NodeEvent): { where: string; detail?: string } {
  const cut = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}...` : s);
  const r = e as Record<string, unknown>;
  const where = typeof r.path === 'string' ? r.path : typeof r.stage === 'string' ? `${r.stage}/${String(r.partition)}` : typeof r.partition === 'string' ? r.partition : '';
  const detail = typeof r.error === 'string' ? cut(r.error) : typeof r.reason === 'string' ? r.reason : typeof r.attempt === 'number' ? `attempt ${r.attempt}` : undefined;
  return detail === undefined ? { where } : { where, detail };
}

/** Options of the live view. */
export interface LiveOptions {
  /** @default 1_000 */
  refreshMs?: number;
  /** @default 100 */
  minGapMs?: number;
  /** @default new SystemClock() */
  clock?: Clock;
}

/**
 * The live view of `node`: `snapshot()`, and `stream(req, res)` serving server-sent events.
 *
 * @example
 * const live = liveView(node);
 * http.createServer((req, res) => live.stream(req, res));
 */
export function liveView(node: WardenNode, options: LiveOptions = {}): { snapshot(): Promise<LiveSnapshot>; stream(req: IncomingMessage, res: ServerResponse): void; close(): void } {
  const refreshMs = options.refreshMs ?? 1_000;
  const minGapMs = options.minGapMs ?? 100;
  const clock = options.clock ?? new SystemClock();
  const events: LiveSnapshot['events'] = [];
  const subscribers = new Set<() => void>();
  const off = node.on((e) => {
    if (SHOWN.has(e.type)) {
      events.push({ at: clock.now(), type: e.type, ...describe(e) });
      if (events.length > 50) events.shift();
    } else if (e.type !== 'checkpoint') {
      return; // nothing the page shows changed (a checkpoint moves the checkpoint age)
    }
    for (const poke of subscribers) poke();
  });
  // Every call, those defined later included (registry invariant 4).
  const offCalls: Array<() => void> = [];
  offCalls.push(eachCall((c) => offCalls.push(c.on((e) => {
    if (e.type === 'breaker-open' || e.type === 'breaker-half-open' || e.type === 'breaker-closed') for (const poke of subscribers) poke();
  }))));

  async function snapshot(): Promise<LiveSnapshot> {
    const status = await node.status().catch(() => [] as PartitionStatus[]);
    return {
      node: node.nodeId,
      pipeline: node.pipeline.name,
      alive: node.alive,
      at: clock.now(),
      tree: publicTree(node.tree()),
      partitions: status.filter((p) => p.local).map((p) => ({
        stage: p.stage, partition: p.partition, running: p.running, lag: p.lag, checkpointAgeMs: p.checkpointAgeMs, restarts: p.restarts,
        epoch: p.epoch, appliedSeq: p.appliedSeq, outbox: p.outbox, actors: p.actors, ...(p.down ? { down: p.down.code } : {}),
      })),
      breakers: listCalls().map((c) => {
        const m = c.metrics();
        return { call: m.call, state: m.breaker.state, consecutiveFailures: m.consecutiveFailures, failedCalls: m.failedCalls };
      }),
      events: [...events],
    };
  }

  function stream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    let closed = false;
    let sending = false;
    let again = false;
    let lastSent = 0;
    let gapTimer: TimerHandle;
    let refreshTimer: TimerHandle;
    const send = async (): Promise<void> => {
      if (closed) return;
      if (sending) {
        again = true;
        return;
      }
      sending = true;
      try {
        const s = await snapshot();
        if (!closed) res.write(`event: snapshot\ndata: ${JSON.stringify(s)}\n\n`);
        lastSent = clock.now();
        if (!s.alive) end(); // invariant 3
      } finally {
        sending = false;
        if (again && !closed) {
          again = false;
          poke();
        }
      }
    };
    const poke = (): void => {
      if (closed || gapTimer) return;
      const wait = Math.max(0, lastSent + minGapMs - clock.now()); // invariant 1
      gapTimer = clock.setTimeout(() => {
        gapTimer = undefined;
        void send();
      }, wait);
    };
    const refresh = (): void => {
      refreshTimer = clock.setTimeout(() => {
        poke(); // the periodic snapshot keeps the same spacing as the others (invariant 1)
        if (!closed) refresh();
      }, refreshMs);
    };
    refresh();
    const end = (): void => {
      if (closed) return;
      closed = true;
      subscribers.delete(poke);
      clock.clearTimeout(refreshTimer);
      clock.clearTimeout(gapTimer);
      res.end();
    };
    subscribers.add(poke);
    req.on('close', end); // invariant 3
    void send();
  }

  return {
    snapshot,
    stream,
    close() {
      off();
      for (const o of offCalls) o();
      for (const poke of subscribers) poke();
    },
  };
}
