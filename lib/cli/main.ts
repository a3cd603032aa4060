/**
 * The `warden` command. For now: `warden demo` (the clickstream scenario on the embedded
 * runtime) and `warden version`; the operations commands come with the cluster.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string };

const program = new Command('warden').description('fault-tolerant pipelines of supervised xstate actors').version(pkg.version);

program
  .command('demo')
  .description('run the clickstream pipeline with chaos on the embedded runtime')
  .option('--events <n>', 'clicks to send', '5000')
  .option('--json', 'end with one JSON line of figures')
  .action((opts: { events: string; json?: boolean }) => {
    const args = ['--import', 'tsx', `${root}scenarios/clickstream/main.ts`, '--events', opts.events, ...(opts.json ? ['--json'] : [])];
    const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
    process.exitCode = r.status ?? 1;
  });

program.command('version').description('print the version').action(() => console.log(pkg.version));

await program.parseAsync();
