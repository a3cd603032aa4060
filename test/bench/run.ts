/**
 * `npm run bench -- <suite> [--json]`: runs one benchmark suite. Each suite prints a human
 * table and, with `--json`, one JSON object on the last line with its figures and ratios.
 * Suites measure side by side in one run, never against stored numbers.
 */
import { parseArgs } from 'node:util';
import { checkpoint } from './suites/checkpoint.js';
import { embedded } from './suites/embedded.js';
import { failover } from './suites/failover.js';
import { guarantees } from './suites/guarantees.js';
import { guards } from './suites/guards.js';
import { restart } from './suites/restart.js';
import { transport } from './suites/transport.js';
import type { Suite } from './suite.js';

const suites: Record<string, Suite> = { embedded, restart, checkpoint, transport, guarantees, guards, failover };

const { values, positionals } = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean', default: false } } });
const name = positionals[0];
const suite = name ? suites[name] : undefined;
if (!suite) {
  console.error(`usage: npm run bench -- <suite> [--json]\nsuites: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
const result = await suite.run((line) => console.log(line));
console.log('');
const width = Math.max(...result.rows.map(([k]) => k.length));
for (const [k, v] of result.rows) console.log(`${k.padEnd(width)}  ${v}`);
if (values.json) console.log(JSON.stringify({ suite: name, ...result.figures }));
