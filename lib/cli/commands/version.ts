/** `warden version`: prints the version (as `warden --version` does). */
import type { Command } from 'commander';
import { packageVersion } from '../package-info.js';

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print the version of warden')
    .action(() => {
      console.log(packageVersion());
    });
}
