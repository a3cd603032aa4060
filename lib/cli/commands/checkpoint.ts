/**
 * `warden checkpoint show <module> <stage> <key>`: what a restore of the key's partition would
 * load from the checkpoint store: the partition's checkpoint (position, epoch, outputs not yet
 * acknowledged, timers, calls) and the key's actor entry (its persisted snapshot and the position
 * it reflects). Unlike `warden inspect`, it replays nothing. Reads only.
 *
 * Exit status: 0; 1 when the partition has no checkpoint; 2 when the read failed.
 */
import type { Command } from 'commander';
import { describeError } from '../../core/errors.js';
import { partitionOf } from '../../core/ids.js';
import { connectBackends, loadPipeline, processIo, withBackendOptions, type BackendOptions, type CliIo } from '../pipeline-module.js';

/**
 * Runs `warden checkpoint show`.
 *
 * @example process.exitCode = await runCheckpointShow({ module: './pipeline.js', stage: 'accounts', key: 'acct-1' });
 */
export async function runCheckpointShow(args: BackendOptions & { module: string; stage: string; key: string; json?: boolean }, io: CliIo = processIo): Promise<number> {
  try {
    const pipeline = await loadPipeline(args.module);
    const stage = pipeline.stage(args.stage);
    const partition = partitionOf(args.key, stage.partitions);
    const scope = stage.scopeOf(partition);
    const backends = await connectBackends(args);
    try {
      const [meta, actor] = await Promise.all([backends.checkpointStore.readMeta(scope), backends.checkpointStore.readActor(scope, args.key)]);
      const out = {
        stage: stage.name, partition, key: args.key,
        checkpoint: meta ? { seq: meta.seq, epoch: meta.epoch, writtenAt: new Date(meta.writtenAtMs).toISOString(), machineVersion: meta.machineVersion, actors: meta.actorCount, outbox: meta.outbox.length, timers: meta.timers.filter((t) => t.key === args.key), calls: meta.calls.filter((c) => c.key === args.key) } : null,
        actor: actor ? { seq: actor.seq, machineVersion: actor.machineVersion, snapshot: actor.snapshot } : null,
      };
      if (args.json) io.out(`${JSON.stringify(out)}\n`);
      else if (!meta) io.out(`${stage.name}/${partition}: no checkpoint: a restore starts from the beginning of the log\n`);
      else {
        io.out(`${stage.name}/${partition} checkpoint at seq ${meta.seq}, epoch ${meta.epoch}, written ${out.checkpoint!.writtenAt}: ${meta.actorCount} actors, ${meta.outbox.length} outputs unacknowledged, ${meta.timers.length} timers, ${meta.calls.length} calls\n`);
        io.out(actor
          ? `${stage.name}[${args.key}] as of seq ${actor.seq} (machine ${actor.machineVersion}); inputs after it are replayed from the log:\n${JSON.stringify(actor.snapshot, null, 2)}\n`
          : `${stage.name}[${args.key}]: no actor entry: a restore builds it from its initial state and the log after seq ${meta.seq}\n`);
      }
      return meta ? 0 : 1;
    } finally {
      await backends.close();
    }
  } catch (err) {
    io.err(`warden checkpoint show: ${describeError(err)}\n`);
    return 2;
  }
}

/**
 * Adds `checkpoint` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  const checkpoint = program.command('checkpoint').description('checkpoints in the store: what a restore would load');
  withBackendOptions(
    checkpoint.command('show')
      .description("print what a restore would load for a key: its partition's checkpoint and the key's actor entry (no replay)")
      .argument('<module>', 'module exporting the pipeline')
      .argument('<stage>', 'stage name')
      .argument('<key>', 'key'),
  )
    .option('--json', 'one JSON line')
    .action(async (module: string, stage: string, key: string, o: BackendOptions & { json?: boolean }) => {
      process.exitCode = await runCheckpointShow({ module, stage, key, ...o }, io);
    });
}
