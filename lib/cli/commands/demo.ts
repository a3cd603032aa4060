/**
 * `warden demo`: the clickstream scenario with chaos (scenarios/clickstream/demo.ts), run in
 * this process from the installed code. It is imported when the command runs, so `warden
 * --help` loads nothing of the runtime, and the NATS and Redis adapters only with `--nats` and
 * `--redis`.
 */
import { InvalidArgumentError, type Command } from 'commander';

/** Fewer clicks than this leave the chaos no room: the kills are placed at fractions of the stream. */
const MIN_EVENTS = 100;

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the clickstream pipeline with chaos (an actor crash, two operator kills), embedded or on NATS and Redis')
    .option('--events <n>', `clicks to send, an integer >= ${MIN_EVENTS}`, parseEvents, 5000)
    .option('--json', 'end with one JSON line of figures')
    .option('--nats <url>', 'keep the log on NATS JetStream at <url> (needs @nats-io/transport-node, @nats-io/jetstream, @nats-io/kv)')
    .option('--redis <url>', 'keep checkpoints in Redis at <url> (needs ioredis)')
    .addHelpText('after', '\nExit code 0 when every click took effect exactly once, 1 otherwise.\nExample: warden demo --events 2000 --nats nats://127.0.0.1:4222 --redis redis://127.0.0.1:6379')
    .action(async (options: { events: number; json?: true; nats?: string; redis?: string }) => {
      const { runDemo } = await import('../../../scenarios/clickstream/demo.js');
      process.exitCode = await runDemo(options);
    });
}

function parseEvents(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < MIN_EVENTS) throw new InvalidArgumentError(`It must be an integer >= ${MIN_EVENTS}.`);
  return n;
}
