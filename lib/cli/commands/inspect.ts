/**
 * `warden inspect <module> <stage> <key>`: the durable state of one key (its checkpoint entry plus
 * a replay of its log since), read from the pipeline's NATS and Redis. Reads only: it writes,
 * publishes and calls nothing, so it is safe against a running pipeline.
 *
 * Exit status: 0 with a state, 1 when the key has no state, 2 when the read failed.
 */
import type { Command } from 'commander';
import { describeError } from '../../core/errors.js';
import { readKeyState, type KeyState } from '../../pipeline/read-state.js';
import { connectBackends, loadPipeline, processIo, withBackendOptions, type BackendOptions, type CliIo } from '../pipeline-module.js';

/** Arguments of `warden inspect`. */
export interface InspectArgs extends BackendOptions {
  module: string;
  stage: string;
  key: string;
  json?: boolean;
}

/**
 * Runs `warden inspect`; resolves with the exit status.
 *
 * @example process.exitCode = await runInspect({ module: './pipeline.js', stage: 'accounts', key: 'acct-1', json: true });
 */
export async function runInspect(args: InspectArgs, io: CliIo = processIo): Promise<number> {
  let state: KeyState | undefined;
  try {
    const pipeline = await loadPipeline(args.module);
    const backends = await connectBackends(args);
    try {
      state = await readKeyState({ pipeline, transport: backends.transport, checkpointStore: backends.checkpointStore, stage: args.stage, key: args.key });
    } finally {
      await backends.close();
    }
  } catch (err) {
    io.err(`warden inspect: ${describeError(err)}\n`);
    return 2;
  }
  if (args.json) {
    io.out(`${JSON.stringify(state ?? null)}\n`);
    return state ? 0 : 1;
  }
  if (!state) {
    io.out(`${args.stage}[${args.key}]: no state (the key never received an input, or its actor finished before the last checkpoint)\n`);
    return 1;
  }
  const from = state.checkpointSeq > 0 ? `the checkpoint at seq ${state.checkpointSeq}` : 'no checkpoint';
  io.out(
    `${state.stage}[${state.key}] partition ${state.partition}, current to seq ${state.seq}: ${state.status} ` +
      `(${from}, then ${state.replayed} record${state.replayed === 1 ? '' : 's'} replayed from the log)\n` +
      `state: ${JSON.stringify(state.value)}\n` +
      `context: ${JSON.stringify(state.context, null, 2)}\n`,
  );
  return 0;
}

/**
 * Adds `inspect` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  withBackendOptions(
    program
      .command('inspect')
      .description("print the durable state of a key (checkpoint + log), from the pipeline's NATS and Redis")
      .argument('<module>', "JS or TS module exporting the pipeline ('pipeline', default, or a function returning one)")
      .argument('<stage>', 'stage name')
      .argument('<key>', 'key'),
  )
    .option('--json', 'print the state as one JSON line (null when the key has no state)')
    .action(async (module: string, stage: string, key: string, opts: BackendOptions & { json?: boolean }) => {
      process.exitCode = await runInspect({ module, stage, key, ...opts }, io);
    });
}
