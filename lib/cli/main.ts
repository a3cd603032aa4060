#!/usr/bin/env node
/**
 * The `warden` command. Each command lives in `./commands/<name>.ts` and exports a function
 * that registers it on the program; `commands` below lists them, in the order `warden --help`
 * shows them. Add a command by adding its file and one entry here.
 *
 * Exit codes: 0 on success; 1 when a command fails (one line on stderr, no stack trace) or the
 * command line is wrong (commander's message, then the usage of the command).
 */
import { Command, CommanderError } from 'commander';
import { describeError } from '../core/errors.js';
import { register as registerChaos } from './commands/chaos.js';
import { register as registerCheckpoint } from './commands/checkpoint.js';
import { register as registerDashboard } from './commands/dashboard.js';
import { registerDemo } from './commands/demo.js';
import { register as registerDlq } from './commands/dlq.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerTeardown } from './commands/teardown.js';
import { register as registerTree } from './commands/tree.js';
import { registerVersion } from './commands/version.js';
import { register as registerWorker } from './commands/worker.js';
import { packageVersion } from './package-info.js';

const commands: ReadonlyArray<(program: Command) => void> = [
  registerDemo,
  registerChaos,
  registerInspect,
  registerStatus,
  registerTree,
  registerDashboard,
  registerDlq,
  registerCheckpoint,
  registerTeardown,
  registerWorker,
  registerVersion,
];

const program = new Command('warden')
  .description('fault-tolerant real-time pipelines of supervised xstate actors')
  .version(packageVersion(), '-V, --version', 'print the version')
  .exitOverride()
  .showHelpAfterError();
for (const register of commands) register(program);

program.parseAsync(process.argv).then(
  () => undefined,
  (err: unknown) => {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode; // commander has printed the message (and the usage)
    } else {
      console.error(`warden: ${describeError(err)}`);
      process.exitCode = 1;
    }
  },
);
