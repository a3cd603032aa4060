/**
 * `warden status <module>`: the nodes of a pipeline's cluster and, for every partition, its
 * owner, epoch, lag past its last checkpoint and the checkpoint's age; a table, or `--json`.
 * Reads only: it creates nothing, not even the lease bucket (before any node started there is none).
 */
import type { Command } from 'commander';
import { describeError, WardenError } from '../../core/errors.js';
import { InMemoryLeaseStore } from '../../cluster/in-memory-leases.js';
import { clusterStatus, type ClusterStatus } from '../../cluster/status.js';
import { connectLeases } from '../backends.js';
import { connectBackends, loadPipeline, processIo, withBackendOptions, type BackendOptions, type CliIo } from '../pipeline-module.js';

/** Arguments of `warden status`. */
export interface StatusArgs extends BackendOptions {
  module: string;
  cluster?: string;
  json?: boolean;
}

/** The status as an aligned text table. */
export function statusTable(s: ClusterStatus): string {
  const rows = [['stage', 'partition', 'owner', 'epoch', 'last seq', 'checkpoint', 'lag', 'checkpoint age']];
  for (const p of s.partitions) {
    rows.push([p.stage, String(p.partition), p.owner ?? '(none)', String(p.epoch), String(p.lastSeq), String(p.checkpointSeq), String(p.lag), p.checkpointAgeMs === undefined ? '-' : `${(p.checkpointAgeMs / 1000).toFixed(1)} s`]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  return `cluster ${s.cluster} (pipeline ${s.pipeline}): ${s.members.length} node${s.members.length === 1 ? '' : 's'}: ${s.members.join(', ') || '(none)'}\n${lines.join('\n')}\n`;
}

/** Runs `warden status`; resolves with the exit status (0, or 2 when the read failed). */
export async function runStatus(args: StatusArgs, io: CliIo = processIo): Promise<number> {
  try {
    const pipeline = await loadPipeline(args.module);
    const cluster = args.cluster ?? pipeline.name;
    const backends = await connectBackends(args);
    try {
      // A reader creates nothing: before any node started there is no bucket, and no node or owner to list.
      const leases = await connectLeases(args.nats, { bucket: `${cluster}-leases`, replicas: 1, create: false }).catch((err: unknown) => {
        if (err instanceof WardenError && err.code === 'STREAM_NOT_FOUND') return new InMemoryLeaseStore();
        throw err;
      });
      try {
        const s = await clusterStatus({ pipeline, transport: backends.transport, checkpointStore: backends.checkpointStore, leases, cluster });
        io.out(args.json ? `${JSON.stringify(s)}\n` : statusTable(s));
      } finally {
        await leases.close();
      }
    } finally {
      await backends.close();
    }
    return 0;
  } catch (err) {
    io.err(`warden status: ${describeError(err)}\n`);
    return 2;
  }
}

/**
 * Adds `status` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  withBackendOptions(
    program
      .command('status')
      .description("show a pipeline's cluster: its nodes, and every partition's owner, epoch, lag and checkpoint age")
      .argument('<module>', "JS or TS module exporting the pipeline ('pipeline', default, or a function returning one)"),
  )
    .option('--cluster <name>', "cluster name (default: the pipeline's name)")
    .option('--json', 'print one JSON object')
    .action(async (module: string, opts: Omit<StatusArgs, 'module'>) => {
      process.exitCode = await runStatus({ module, ...opts }, io);
    });
}
