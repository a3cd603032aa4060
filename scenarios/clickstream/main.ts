/**
 * `npm run demo`: the clickstream pipeline on the embedded runtime (in-memory log and
 * checkpoint store, no servers), with chaos: one actor crash and two operator kills
 * mid-stream. Ends with what the semantics checker found at the sink; exits 1 if anything
 * was lost or applied twice.
 *
 *   npm run demo -- [--events 5000] [--json] [--nats nats://127.0.0.1:4222] [--redis redis://127.0.0.1:6379]
 *
 * With --nats and/or --redis the same pipeline runs on real servers, under a pipeline name of
 * its own, and deletes its streams and checkpoints at the end.
 */
import { parseArgs } from 'node:util';
import { openBackends } from './backends.js';
import { runClickstream } from './run.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    events: { type: 'string', default: '5000' },
    nats: { type: 'string' },
    redis: { type: 'string' },
  },
});
const events = Number(values.events);
if (!Number.isInteger(events) || events < 100) {
  console.error(`--events must be an integer >= 100, got ${values.events}`);
  process.exit(2);
}

const backends = await openBackends({ nats: values.nats, redis: values.redis });
const real = Boolean(backends.transport ?? backends.checkpointStore);
console.log(`warden demo: clickstream parse -> sessions -> pages, ${events} clicks, on ${backends.label}`);
const r = await runClickstream({
  events,
  progress: (line) => console.log(line),
  ...(backends.transport ? { transport: backends.transport } : {}),
  ...(backends.checkpointStore ? { checkpointStore: backends.checkpointStore } : {}),
  ...(real ? { name: `clicks-${Date.now().toString(36)}`, cleanup: true } : {}),
});
await backends.close();
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
console.log('\nsummary (computed from the sink\'s checkpointed state by the semantics checker)');
for (const [k, v] of rows) console.log(`  ${k.padEnd(52)} ${v}`);
console.log(ok ? '\nOK: every click took effect exactly once' : `\nFAILED: ${JSON.stringify(r.examples)}`);
if (values.json) {
  console.log(JSON.stringify({
    sent: r.sent, applied: r.applied, lost: r.lost, duplicated: r.duplicated, outOfOrder: r.outOfOrder,
    deadLettered: r.deadLettered, badInputs: r.badInputs, kills: r.kills, workerRestarts: r.workerRestarts,
    actorCrashes: r.actorCrashes, checkpoints: r.checkpoints, recoveryMs: r.recoveryMs, durationMs: r.durationMs,
  }));
}
process.exitCode = ok ? 0 : 1;
