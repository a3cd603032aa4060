/**
 * The state of a pipeline's cluster as anyone can read it from its backends, without being a
 * node: the live members, and for every partition its owner and epoch (the lease), how far the
 * log runs past its last checkpoint, and how old that checkpoint is. `warden status` prints it.
 */
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { Clock } from '../core/clock.js';
import { SystemClock } from '../core/clock.js';
import type { Pipeline } from '../pipeline/define-pipeline.js';
import type { Transport } from '../transport/transport.js';
import type { LeaseStore } from './leases.js';

/** One partition of the cluster. */
export interface ClusterPartitionStatus {
  stage: string;
  partition: number;
  /** The node holding the partition's lease, if any. */
  owner: string | undefined;
  /** The epoch its checkpoints are written under (the owner's latest claim). */
  epoch: number;
  /** Last sequence of the partition in its stream. */
  lastSeq: number;
  /** Sequence of its last checkpoint. */
  checkpointSeq: number;
  /** Inputs in the log past the last checkpoint (an upper bound of what the owner has still to apply). */
  lag: number;
  /** Age of the last checkpoint, ms (undefined: none written). */
  checkpointAgeMs: number | undefined;
}

/** A cluster's state. */
export interface ClusterStatus {
  cluster: string;
  pipeline: string;
  members: string[];
  partitions: ClusterPartitionStatus[];
}

/**
 * Reads a cluster's state.
 *
 * @example
 * const s = await clusterStatus({ pipeline, transport, checkpointStore, leases });
 * console.table(s.partitions);
 */
export async function clusterStatus(o: { pipeline: Pipeline; transport: Transport; checkpointStore: CheckpointStore; leases: LeaseStore; cluster?: string; clock?: Clock }): Promise<ClusterStatus> {
  const cluster = o.cluster ?? o.pipeline.name;
  const clock = o.clock ?? new SystemClock();
  const members = (await o.leases.list(`${cluster}.members.`)).map((e) => e.owner).sort();
  const owners = new Map((await o.leases.list(`${cluster}.parts.`)).map((e) => [e.key.slice(`${cluster}.parts.`.length), e.owner]));
  const partitions: ClusterPartitionStatus[] = [];
  for (const stage of o.pipeline.stages) {
    for (let p = 0; p < stage.partitions; p++) {
      const scope = stage.scopeOf(p);
      const [meta, claim, lastSeq] = await Promise.all([
        o.checkpointStore.readMeta(scope).catch(() => undefined),
        o.checkpointStore.readClaim(scope),
        o.transport.lastSeqOf(stage.stream, stage.subjectOf(p)).catch(() => 0),
      ]);
      const checkpointSeq = meta?.seq ?? 0;
      partitions.push({
        stage: stage.name,
        partition: p,
        owner: owners.get(`${o.pipeline.name}.${stage.name}.${p}`),
        epoch: claim?.epoch ?? meta?.epoch ?? 0,
        lastSeq,
        checkpointSeq,
        lag: Math.max(0, lastSeq - checkpointSeq),
        checkpointAgeMs: meta ? Math.max(0, clock.now() - meta.writtenAtMs) : undefined,
      });
    }
  }
  return { cluster, pipeline: o.pipeline.name, members, partitions };
}
