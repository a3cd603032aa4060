/**
 * `startNode` with `cluster`: the node joins a cluster of nodes running the same pipeline, and runs
 * the partitions the cluster gives it through leases (coordinator.ts). Without `cluster` it is the
 * node of lib/pipeline/node.ts, running every partition itself.
 *
 *   const leases = await KvLeaseStore.connect({ servers, bucket: 'shop-leases', ttlMs: 5_000, replicas: 3 });
 *   const node = await startNode({ pipeline, transport, checkpointStore, cluster: { leases } });
 */
import { SystemClock } from '../core/clock.js';
import { ConfigError, describeValue } from '../core/errors.js';
import { checkPort } from '../core/ports.js';
import { createLogger } from '../core/logger.js';
import { startNode as startAlone } from '../pipeline/node.js';
import type { NodeOptions, WardenNode } from '../pipeline/node-types.js';
import type { PartitionOwnership } from '../pipeline/ownership.js';
import { checkClusterNames, Coordinator, defaultNodeId, type PlacedPartition } from './coordinator.js';
import type { LeaseStore } from './leases.js';

/** How a node joins its cluster. */
export interface ClusterOptions {
  /** Where partition and membership leases live: a `KvLeaseStore` (NATS KV), or an `InMemoryLeaseStore` for nodes of one process. */
  leases: LeaseStore;
  /** Cluster name, the prefix of its lease keys (lower-case letters, digits, `-`). @default the pipeline's name */
  name?: string;
  /** This node's id: unique among live nodes. @default `<host>-<pid>-<random>` */
  nodeId?: string;
  /** Lease renewals this often. @default a third of the lease TTL */
  renewEveryMs?: number;
  /** Placement is re-checked at least this often (lease expiries are not always told). @default half the TTL */
  pollEveryMs?: number;
}

/** Options of `startNode`: a node alone, or one of a cluster. */
export interface ClusterNodeOptions extends NodeOptions {
  cluster?: ClusterOptions;
}

/** The ownership of a cluster node: leases through a coordinator. */
function leaseOwnership(options: ClusterNodeOptions, cluster: ClusterOptions): PartitionOwnership {
  const { pipeline } = options;
  const name = cluster.name ?? pipeline.name;
  const nodeId = cluster.nodeId ?? defaultNodeId();
  checkClusterNames(name, nodeId);
  const idOf = (stage: string, partition: number): string => `${pipeline.name}.${stage}.${partition}`;
  const partitions: PlacedPartition[] = pipeline.stages.flatMap((s) => Array.from({ length: s.partitions }, (_, partition) => ({ id: idOf(s.name, partition), stage: s.name, partition })));
  const byId = new Map(partitions.map((p) => [p.id, p]));
  let coordinator: Coordinator | undefined;
  const clock = options.clock ?? new SystemClock();
  return {
    nodeId,
    async start(control) {
      coordinator = new Coordinator({
        cluster: name, nodeId, leases: cluster.leases, clock,
        logger: (options.logger ?? createLogger()).child({ pipeline: pipeline.name, node: nodeId }),
        partitions,
        onGain: (p) => control.gain(p.stage, p.partition),
        onLose: (p) => control.lose(p.stage, p.partition),
        onEvent: (e) => control.report(e),
        ...(cluster.renewEveryMs === undefined ? {} : { renewEveryMs: cluster.renewEveryMs }),
        ...(cluster.pollEveryMs === undefined ? {} : { pollEveryMs: cluster.pollEveryMs }),
      });
      await coordinator.start();
    },
    epochFor: (stage, partition) => coordinator!.epochFor(idOf(stage, partition)),
    valid: (stage, partition) => coordinator?.valid(idOf(stage, partition)) ?? false,
    lapsed: (stage, partition) => coordinator?.lapsed(idOf(stage, partition)),
    async owners() {
      const prefix = `${name}.parts.`;
      return (await cluster.leases.list(prefix)).flatMap((e) => {
        const p = byId.get(e.key.slice(prefix.length));
        return p ? [{ stage: p.stage, partition: p.partition, node: e.owner, epoch: e.epoch }] : []; // the fencing epoch, not the revision of the last renewal
      });
    },
    stop: () => coordinator?.stop() ?? Promise.resolve(),
  };
}

/**
 * Starts a node of `pipeline`: alone (every partition, the default), or as one node of a cluster
 * (`cluster`), which runs the partitions the cluster gives it and takes over those of nodes that
 * die. Bad options throw a `ConfigError` naming the field.
 *
 * @example
 * const node = await startNode({ pipeline, transport, checkpointStore, cluster: { leases, nodeId: 'node-a' } });
 */
export async function startNode(options: ClusterNodeOptions): Promise<WardenNode> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', `must be an object with at least a pipeline, got ${describeValue(options)}`);
  const { cluster, ...rest } = options;
  if (cluster === undefined) return startAlone(rest);
  if (typeof cluster !== 'object' || cluster === null) throw new ConfigError('cluster', `must be an object with at least leases, got ${describeValue(cluster)}`);
  if (rest.pipeline?.kind !== 'warden.pipeline') throw new ConfigError('pipeline', 'must be made by definePipeline()');
  checkPort('leases', 'cluster.leases', cluster.leases);
  return startAlone({ ...rest, ownership: leaseOwnership(options, cluster) });
}
