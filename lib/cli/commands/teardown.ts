/**
 * `warden teardown <module>`: deletes a pipeline's streams (stages and dead letters) and the
 * checkpoints of its partitions from NATS and Redis. Without `--yes` it only lists what it would
 * delete. It refuses while nodes run (a stream with consumers), unless `--force`.
 *
 * Exit status: 0 deleted, 1 nothing deleted (no `--yes`), 2 refused or failed.
 */
import type { Command } from 'commander';
import { describeError } from '../../core/errors.js';
import { teardownPipeline, type TeardownReport } from '../../pipeline/teardown.js';
import { connectBackends, loadPipeline, processIo, withBackendOptions, type BackendOptions, type CliIo } from '../pipeline-module.js';

/** Arguments of `warden teardown`. */
export interface TeardownArgs extends BackendOptions {
  module: string;
  yes?: boolean;
  force?: boolean;
}

function describeReport(name: string, report: TeardownReport): string {
  const lines = [
    ...report.streams.map((s) => `  stream ${s.name} (${s.messages} message${s.messages === 1 ? '' : 's'}, ${s.consumers} consumer${s.consumers === 1 ? '' : 's'})`),
    ...report.missing.map((s) => `  stream ${s} (does not exist)`),
    `  checkpoints of ${report.checkpoints.length} partition${report.checkpoints.length === 1 ? '' : 's'}: ${report.checkpoints.map((c) => `${c.operator}/${c.partition}`).join(', ')}`,
  ];
  return `${report.deleted ? 'deleted' : 'would delete'}, for pipeline ${name}:\n${lines.join('\n')}\n`;
}

/**
 * Runs `warden teardown`; resolves with the exit status.
 *
 * @example process.exitCode = await runTeardown({ module: './pipeline.js', yes: true });
 */
export async function runTeardown(args: TeardownArgs, io: CliIo = processIo): Promise<number> {
  try {
    const pipeline = await loadPipeline(args.module);
    const backends = await connectBackends(args);
    try {
      const report = await teardownPipeline({
        pipeline, transport: backends.transport, checkpointStore: backends.checkpointStore, dryRun: !args.yes, force: args.force ?? false,
      });
      io.out(describeReport(pipeline.name, report));
      if (!report.deleted) {
        const busy = report.streams.filter((s) => s.consumers > 0);
        if (busy.length > 0 && !args.force) io.out(`streams with consumers (running nodes?): ${busy.map((s) => s.name).join(', ')}; teardown refuses them without --force\n`);
        io.out('Nothing was deleted: run again with --yes to delete.\n');
        return 1;
      }
      return 0;
    } finally {
      await backends.close();
    }
  } catch (err) {
    // The library's advice names its option; on the command line it is the flag.
    io.err(`warden teardown: ${describeError(err).replace('Pass force: true to delete anyway', 'Pass --force to delete anyway')}\n`);
    return 2;
  }
}

/**
 * Adds `teardown` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  withBackendOptions(
    program
      .command('teardown')
      .description("delete a pipeline's streams (stages, dead letters) and checkpoints from NATS and Redis")
      .argument('<module>', "JS or TS module exporting the pipeline ('pipeline', default, or a function returning one)"),
  )
    .option('--yes', 'delete (without it, only list what would be deleted)')
    .option('--force', 'delete even while streams have consumers (running nodes, durable consumers)')
    .action(async (module: string, opts: BackendOptions & { yes?: boolean; force?: boolean }) => {
      process.exitCode = await runTeardown({ module, ...opts }, io);
    });
}
