/**
 * The demo behind `warden demo` (and `npm run demo`): the clickstream pipeline on the embedded
 * runtime (in-memory log and checkpoint store, no servers), with chaos: one actor crash and two
 * operator kills mid-stream. It ends with what the semantics checker found at the sink, and
 * answers exit code 1 if anything was lost or applied twice.
 *
 *   warden demo [--events 5000] [--json] [--nats nats://127.0.0.1:4222] [--redis redis://127.0.0.1:6379]
 *
 * With `nats` and/or `redis` the same pipeline runs on real servers, under a pipeline name of
 * its own, and deletes its streams and checkpoints at the end. The command line is parsed by
 * `lib/cli/commands/demo.ts`; this module only runs.
 */
import { openBackends } from '../../lib/cli/backends.js';
import { runClickstream } from './run.js';

/** What `warden demo` was asked for. */
export interface DemoOptions {
  /** Clicks to send. */
  events: number;
  /** End with one JSON line of figures. @default false */
  json?: boolean | undefined;
  /** NATS URL: keep the log on JetStream there instead of in memory. */
  nats?: string | undefined;
  /** Redis URL: keep checkpoints there instead of in memory. */
  redis?: string | undefined;
}

/** Runs the demo, printing with `print`; resolves to the exit code (0: every click took effect exactly once). */
export async function runDemo(options: DemoOptions, print: (line: string) => void = console.log): Promise<number> {
  const { events } = options;
  const backends = await openBackends({ nats: options.nats, redis: options.redis });
  const real = Boolean(backends.transport ?? backends.checkpointStore);
  print(`warden demo: clickstream parse -> sessions -> pages, ${events} clicks, on ${backends.label}`);
  let r: Awaited<ReturnType<typeof runClickstream>>;
  try {
    r = await runClickstream({
      events,
      progress: print,
      ...(backends.transport ? { transport: backends.transport } : {}),
      ...(backends.checkpointStore ? { checkpointStore: backends.checkpointStore } : {}),
      ...(real ? { name: `clicks-${Date.now().toString(36)}`, cleanup: true } : {}),
    });
  } finally {
    await backends.close();
  }
  const ok = r.lost === 0 && r.duplicated === 0 && r.outOfOrder === 0 && r.unexpected === 0 && r.deadLettered === r.badInputs;
  const rows: Array<[string, string | number]> = [
    ['clicks sent', r.sent],
    ['clicks applied at the sink', r.applied],
    ['lost', r.lost],
    ['duplicated', r.duplicated],
    ['out of order', r.outOfOrder],
    ['bad inputs sent / dead-lettered', `${r.badInputs} / ${r.deadLettered}`],
    ['operator kills / worker restarts', `${r.kills} / ${r.workerRestarts}`],
    ['actor crashes recovered', r.actorCrashes],
    ['checkpoints written', r.checkpoints],
    ['time to recover (kill -> first input applied), ms', r.recoveryMs],
    ['run time, ms', r.durationMs],
  ];
  print('\nsummary (computed from the sink\'s checkpointed state by the semantics checker)');
  for (const [k, v] of rows) print(`  ${k.padEnd(52)} ${v}`);
  print(ok ? '\nOK: every click took effect exactly once' : `\nFAILED: ${JSON.stringify(r.examples)}`);
  if (options.json) {
    print(JSON.stringify({
      sent: r.sent, applied: r.applied, lost: r.lost, duplicated: r.duplicated, outOfOrder: r.outOfOrder,
      deadLettered: r.deadLettered, badInputs: r.badInputs, kills: r.kills, workerRestarts: r.workerRestarts,
      actorCrashes: r.actorCrashes, checkpoints: r.checkpoints, recoveryMs: r.recoveryMs, durationMs: r.durationMs,
    }));
  }
  return ok ? 0 : 1;
}
