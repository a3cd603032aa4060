/**
 * `npm run bench -- <suite> [--json]`: runs one benchmark suite. Each suite prints a human
 * table and, with `--json`, one JSON object on the last line with its figures and ratios.
 * Suites measure side by side in one run, never against stored numbers.
 */
import { parseArgs } from 'node:util';
import { alloc } from './suites/alloc.js';
import { checkpoint } from './suites/checkpoint.js';
import { coldload } from './suites/coldload.js';
import { embedded } from './suites/embedded.js';
import { failover } from './suites/failover.js';
import { guarantees } from './suites/guarantees.js';
import { guards } from './suites/guards.js';
import { restart } from './suites/restart.js';
import { transport } from './suites/transport.js';
import type { Suite } from './suite.js';

const suites: Record<string, Suite> = { embedded, restart, checkpoint, coldload, alloc, transport, guarantees, guards, failover };

const USAGE = `usage: npm run bench -- <suite> [--json]

suites:
  embedded     the embedded pipeline: ActorHost against bare xstate, events per second
  restart      from an actor crash to its next event (p50, p99); restarts per second a supervisor sustains
  checkpoint   checkpoint writes per second through RedisCheckpointStore against its Lua script called raw
  coldload     a node restarted with 10,000 keys in Redis: how fast their first inputs are applied (actor loads)
  alloc        bytes allocated per input on the embedded path, by warden, by xstate, by the rest (heap sampling)
  transport    JetStreamTransport publish and in-order read against the raw NATS client
  guarantees   exactly-once, at-least-once, at-most-once sinks against raw consume and BullMQ; latency per hop; memory per actor
  guards       guarded calls: the cost of timeout, retry and breaker around a call
  failover     a cluster of node processes: failover time after a SIGKILL, throughput on 1, 2, 3 nodes

options:
  --json       end with one JSON line of the suite's figures
  -h, --help   print this`;

let parsed: { values: { json?: boolean; help?: boolean }; positionals: string[] };
try {
  parsed = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
} catch (err) {
  console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
  process.exit(1);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const name = positionals[0];
const suite = name ? suites[name] : undefined;
if (!suite || positionals.length > 1) {
  console.error(`${name && !suite ? `bench: no suite named ${JSON.stringify(name)}\n\n` : positionals.length > 1 ? 'bench: one suite at a time\n\n' : ''}${USAGE}`);
  process.exit(1);
}
const result = await suite.run((line) => console.log(line));
console.log('');
const width = Math.max(...result.rows.map(([k]) => k.length));
for (const [k, v] of result.rows) console.log(`${k.padEnd(width)}  ${v}`);
if (values.json) console.log(JSON.stringify({ suite: name, ...result.figures }));
