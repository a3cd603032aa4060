/**
 * `registerNodeMetrics`: a node's figures as Prometheus metrics (prom-client 15), prefixed
 * `warden_`, read from `node.metrics()` when the registry is scraped: the hot path pays one
 * histogram observation per input and nothing else for being exported.
 *
 * Invariants:
 *  1. Labels are `node`, `stage`, `partition` (and `reason`, `code` from small fixed sets); never
 *     a key, a payload or an error message, so the number of series is bounded by the pipeline's
 *     partitions.
 *  2. One scrape reads the node once: every metric of a scrape is filled from the same
 *     `node.metrics()` snapshot (collects started together share it).
 *  3. Counters only grow while the node runs (partition totals, invariant 3 of partitions.ts);
 *     gauges of a partition are reported only while this node runs it, so a cluster's nodes
 *     never report two values for one partition's lag.
 *  4. The returned function removes every metric it registered; registering twice on one
 *     registry throws `ConfigError` naming the metric.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { ConfigError } from '../core/errors.js';
import type { NodeMetrics, PartitionStatus, PartitionTotals, WardenNode } from '../pipeline/node-types.js';
import { registerCallMetrics, type MetricsRegistry } from '../resilience/prometheus.js';
import { promClient } from '../resilience/prom-loader.js';
import type { GuardedCall } from '../resilience/types.js';

/** Options of `registerNodeMetrics`. */
export interface NodeMetricsOptions {
  /** Prefix of every metric name. @default 'warden_' */
  prefix?: string;
  /**
   * Also register the guarded calls' metrics (`<prefix>call_*`, see `registerCallMetrics`): every
   * call of the process (true), these calls, or none (false). @default true
   */
  calls?: boolean | Iterable<GuardedCall> | (() => Iterable<GuardedCall>);
}

type PartitionLabels = 'node' | 'stage' | 'partition';

/** A counter of every partition's totals. */
const COUNTERS: Array<[suffix: string, help: string, field: keyof PartitionTotals]> = [
  ['inputs_applied_total', 'Inputs applied by the partition on this node (dead-lettered ones included).', 'applied'],
  ['outputs_published_total', 'Outputs, dead letters, timer and call records the log acknowledged.', 'published'],
  ['actor_crashes_total', 'Actor crashes (restarted from the checkpoint entry, or the input dead-lettered).', 'crashes'],
  ['checkpoints_total', 'Checkpoints written.', 'checkpoints'],
  ['checkpoint_failures_total', 'Checkpoint writes that failed (timeouts included).', 'checkpointFailures'],
  ['checkpoint_timeouts_total', 'Checkpoint writes that outlasted checkpoint.timeoutMs.', 'checkpointTimeouts'],
  ['actors_passivated_total', 'Idle actors dropped from memory (idleMs).', 'passivated'],
  ['actors_compacted_total', 'Idle live actors replaced by their persisted snapshot in memory (compactMs, maxLiveActors).', 'compacted'],
  ['timers_fired_total', 'Durable timers fired.', 'timersFired'],
  ['calls_issued_total', 'Guarded calls started by the partition’s actors.', 'callsIssued'],
];

/** A gauge of every partition this node runs. */
const GAUGES: Array<[suffix: string, help: string, read: (p: PartitionStatus) => number]> = [
  ['lag_inputs', 'Inputs in the partition’s log not yet applied (source end offset minus applied offset).', (p) => p.lag],
  ['applied_offset', 'Stream sequence of the last input applied (the source offset).', (p) => p.appliedSeq],
  ['end_offset', 'Stream sequence of the newest input of the partition (the log end).', (p) => p.appliedSeq + p.lag],
  ['checkpoint_offset', 'Stream sequence the last checkpoint covers.', (p) => p.checkpointSeq],
  ['outbox_outputs', 'Outputs published and not yet acknowledged by the log (backpressure).', (p) => p.outbox],
  ['held_outputs', 'Outputs held until the next checkpoint (outputs: after-checkpoint).', (p) => p.held],
  ['checkpoint_age_seconds', 'Time since the partition’s last successful checkpoint on this node, across restarts (since the node began running it, before the first).', (p) => p.checkpointAgeMs / 1000],
  ['checkpoint_last_bytes', 'Size of the last checkpoint written.', (p) => p.lastCheckpointBytes],
  ['checkpoint_last_duration_seconds', 'Duration of the last checkpoint write.', (p) => p.lastCheckpointDurationMs / 1000],
  ['actors_in_memory', 'Live actors of the partition held in memory.', (p) => p.actors],
  ['actors_compact', 'Idle actors of the partition held in memory as their persisted snapshot (the compact tier).', (p) => p.compact],
  ['timers_pending', 'Durable timers armed.', (p) => p.timers],
  ['calls_pending', 'Guarded calls started and not yet settled in the log.', (p) => p.callsPending],
  ['partition_running', '1 while the partition’s worker runs, 0 while it starts, restarts or is down.', (p) => (p.running ? 1 : 0)],
  ['partition_epoch', 'Fencing epoch of the partition’s current worker.', (p) => p.epoch],
];

/**
 * Exposes `node`'s metrics (and by default every guarded call's) in `registry`; returns a
 * function that removes them. Throws `ConfigError` if prom-client is not installed, the prefix is
 * not a metric name prefix, or the registry already has one of the names.
 *
 * @example
 * const registry = new Registry();
 * registerNodeMetrics(registry, node);
 * http.createServer(async (_req, res) => res.end(await registry.metrics())).listen(9464);
 */
export function registerNodeMetrics(metricsRegistry: MetricsRegistry, node: WardenNode, options: NodeMetricsOptions = {}): () => void {
  const prefix = options.prefix ?? 'warden_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw new ConfigError('prefix', `must be a Prometheus metric name prefix (got ${JSON.stringify(prefix)})`);
  const { Counter, Gauge, SnapshotHistogram } = promClient('registerNodeMetrics');
  const registry = metricsRegistry as unknown as Registry;
  const names: string[] = [];
  const name = (suffix: string): string => {
    const full = `${prefix}${suffix}`;
    if (registry.getSingleMetric(full) !== undefined || names.includes(full)) throw new ConfigError('registry', `already has a metric named ${full}`, { details: { metric: full } });
    names.push(full);
    return full;
  };
  // Check every name before registering any, so a clash leaves the registry as it was (invariant 4).
  const suffixes = [
    ...COUNTERS.map(([s]) => s), 'dead_letters_total', 'partition_restarts_total', ...GAUGES.map(([s]) => s), 'partition_down',
    'processing_latency_seconds', 'checkpoint_duration_seconds', 'node_up',
    'leases_held', 'lease_acquisitions_total', 'lease_releases_total', 'lease_losses_total', 'lease_renew_failures_total',
  ];
  for (const s of suffixes) name(s);
  names.length = 0;

  const read = snapshotPerScrape(() => node.metrics()); // invariant 2
  const labelsOf = (m: NodeMetrics, p: PartitionStatus): Record<PartitionLabels, string> => ({ node: m.node, stage: p.stage, partition: String(p.partition) });
  const partitionLabels = ['node', 'stage', 'partition'] as const;

  for (const [suffix, help, field] of COUNTERS) {
    new Counter({
      name: name(suffix), help, labelNames: partitionLabels, registers: [registry],
      async collect(this: Counter<PartitionLabels>) {
        const m = await read();
        this.reset();
        for (const p of m.partitions) this.inc(labelsOf(m, p), p.totals[field]);
      },
    });
  }
  new Counter({
    name: name('dead_letters_total'), help: 'Inputs dead-lettered, by reason.', labelNames: [...partitionLabels, 'reason'] as const, registers: [registry],
    async collect(this: Counter<PartitionLabels | 'reason'>) {
      const m = await read();
      this.reset();
      for (const p of m.partitions) for (const [reason, n] of Object.entries(p.deadLettersByReason)) this.inc({ ...labelsOf(m, p), reason }, n);
    },
  });
  new Counter({
    name: name('partition_restarts_total'), help: 'Restarts of the partition’s worker on this node (crashes, escalations, kills).', labelNames: partitionLabels, registers: [registry],
    async collect(this: Counter<PartitionLabels>) {
      const m = await read();
      this.reset();
      for (const p of m.partitions) this.inc(labelsOf(m, p), p.restarts);
    },
  });
  for (const [suffix, help, value] of GAUGES) {
    new Gauge({
      name: name(suffix), help, labelNames: partitionLabels, registers: [registry],
      async collect(this: Gauge<PartitionLabels>) {
        const m = await read();
        this.reset();
        for (const p of m.partitions) if (p.local) this.set(labelsOf(m, p), value(p)); // invariant 3
      },
    });
  }
  new Gauge({
    name: name('partition_down'), help: '1 while the partition stays down after a non-retryable failure, by error code.', labelNames: [...partitionLabels, 'code'] as const, registers: [registry],
    async collect(this: Gauge<PartitionLabels | 'code'>) {
      const m = await read();
      this.reset();
      for (const p of m.partitions) if (p.local && p.down) this.set({ ...labelsOf(m, p), code: p.down.code }, 1);
    },
  });
  const stageSeries = (pick: 'latency' | 'checkpointDuration') => async () => {
    const m = await read();
    return m.stages.map((s) => ({ labels: { node: m.node, stage: s.stage }, boundsMs: s[pick].boundsMs, counts: s[pick].counts, sumMs: s[pick].sumMs, count: s[pick].count }));
  };
  registry.registerMetric(new SnapshotHistogram(name('processing_latency_seconds'), 'From the log storing an input to the end of its apply (replays after a restart included).', ['node', 'stage'], stageSeries('latency')));
  registry.registerMetric(new SnapshotHistogram(name('checkpoint_duration_seconds'), 'Duration of successful checkpoint writes.', ['node', 'stage'], stageSeries('checkpointDuration')));
  new Gauge({
    name: name('node_up'), help: '1 while the node runs; 0 once it was stopped or its supervision tree gave up.', labelNames: ['node'] as const, registers: [registry],
    async collect(this: Gauge<'node'>) {
      const m = await read();
      this.reset();
      this.set({ node: m.node }, m.stopped ? 0 : 1);
    },
  });
  const leaseMetric = (suffix: string, help: string, field: 'held' | 'acquired' | 'released' | 'lost' | 'renewFailures', kind: 'gauge' | 'counter'): void => {
    const config = { name: name(suffix), help, labelNames: ['node'] as const, registers: [registry] };
    const fill = async (metric: { reset(): void; set?: unknown }, put: (labels: { node: string }, v: number) => void): Promise<void> => {
      const m = await read();
      metric.reset();
      if (m.leases) put({ node: m.node }, m.leases[field]);
    };
    if (kind === 'gauge') new Gauge({ ...config, async collect(this: Gauge<'node'>) { await fill(this, (l, v) => this.set(l, v)); } });
    else new Counter({ ...config, async collect(this: Counter<'node'>) { await fill(this, (l, v) => this.inc(l, v)); } });
  };
  leaseMetric('leases_held', 'Partition leases this node holds (a cluster node).', 'held', 'gauge');
  leaseMetric('lease_acquisitions_total', 'Partition leases acquired.', 'acquired', 'counter');
  leaseMetric('lease_releases_total', 'Partition leases released in a handoff.', 'released', 'counter');
  leaseMetric('lease_losses_total', 'Partition leases lost (expired, revoked, taken): each stopped its partition here.', 'lost', 'counter');
  leaseMetric('lease_renew_failures_total', 'Lease renewals that failed while the lease was still valid (retried).', 'renewFailures', 'counter');

  let removeCalls = (): void => undefined;
  if (options.calls !== false) {
    try {
      removeCalls = registerCallMetrics(metricsRegistry, options.calls === true || options.calls === undefined ? undefined : options.calls, { prefix: `${prefix}call_` });
    } catch (err) {
      for (const n of names) registry.removeSingleMetric(n);
      throw err;
    }
  }
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
    removeCalls();
  };
}

/** Invariant 2: collects started together share one read; the next scrape reads again. */
function snapshotPerScrape<T>(fetch: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    if (!pending) {
      const p = fetch();
      pending = p;
      const clear = (): void => {
        setImmediate(() => {
          if (pending === p) pending = undefined;
        });
      };
      p.then(clear, clear);
    }
    return pending;
  };
}
