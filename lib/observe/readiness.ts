/**
 * Readiness of a node: is it doing its share? A node is ready when it runs, and every partition
 * it runs (alone: all of them; in a cluster: those whose leases it holds) has a running worker
 * (restored, not restarting, not down) within `maxLag` inputs of its log end. A node that just
 * took partitions over is not ready until it has restored and replayed them to within the bound.
 */
import { ConfigError } from '../core/errors.js';
import type { WardenNode } from '../pipeline/node-types.js';

/** Options of readiness. */
export interface ReadinessOptions {
  /** Inputs a partition may have in its log not yet applied and still count as caught up. @default 1_000 */
  maxLag?: number;
}

/** Why a node is not ready, per partition. */
export interface NotReadyReason {
  stage: string;
  partition: number;
  /** `starting` (restoring, replaying its start, or restarting), `down` (with the error code), `lagging`. */
  why: 'starting' | 'down' | 'lagging';
  lag: number;
  code?: string;
}

/** The answer of `/ready`. */
export interface Readiness {
  ready: boolean;
  node: string;
  /** The node stopped or its tree gave up. */
  stopped: boolean;
  /** Partitions this node runs. */
  partitions: number;
  maxLag: number;
  notReady: NotReadyReason[];
}

/**
 * @example
 * const check = readiness(node, { maxLag: 100 });
 * (await check()).ready
 */
export function readiness(node: WardenNode, options: ReadinessOptions = {}): () => Promise<Readiness> {
  const maxLag = options.maxLag ?? 1_000;
  if (!Number.isSafeInteger(maxLag) || maxLag < 0) throw new ConfigError('readiness.maxLag', `must be an integer >= 0, got ${String(options.maxLag)}`);
  return async () => {
    if (!node.alive) return { ready: false, node: node.nodeId, stopped: true, partitions: 0, maxLag, notReady: [] };
    const local = (await node.status()).filter((p) => p.local);
    const notReady: NotReadyReason[] = [];
    for (const p of local) {
      if (p.down) notReady.push({ stage: p.stage, partition: p.partition, why: 'down', lag: p.lag, code: p.down.code });
      else if (!p.running) notReady.push({ stage: p.stage, partition: p.partition, why: 'starting', lag: p.lag });
      else if (p.lag > maxLag) notReady.push({ stage: p.stage, partition: p.partition, why: 'lagging', lag: p.lag });
    }
    return { ready: notReady.length === 0, node: node.nodeId, stopped: false, partitions: local.length, maxLag, notReady };
  };
}
