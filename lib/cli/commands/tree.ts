/**
 * `warden tree <url>`: the live supervision tree of a running node, read from its `/tree`
 * endpoint (`warden worker --http`, or `createOpsHandler` in your service), printed as an
 * indented tree with each child's status, restarts and uptime.
 *
 * Exit status: 0; 2 when the node could not be read.
 */
import type { Command } from 'commander';
import { describeError } from '../../core/errors.js';
import type { TreeNode } from '../../supervision/types.js';
import { endpointUrl, processIo, type CliIo } from '../pipeline-module.js';

function uptime(ms: number): string {
  if (ms <= 0) return '-';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min`;
}

/** The tree as lines: `├─ id  status  restarts  uptime  info`. */
export function renderTree(node: TreeNode, prefix = '', last = true, root = true): string[] {
  const info = node.info ? Object.entries(node.info).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `${k}=${String(v)}`).join(' ') : '';
  const head = `${root ? '' : `${prefix}${last ? '└─ ' : '├─ '}`}${node.id}  ${node.status}  restarts ${node.restarts}  up ${uptime(node.uptimeMs)}${info ? `  ${info}` : ''}`;
  const kids = node.children ?? [];
  const childPrefix = root ? '' : `${prefix}${last ? '   ' : '│  '}`;
  return [head, ...kids.flatMap((c, i) => renderTree(c, childPrefix, i === kids.length - 1, false))];
}

/**
 * Runs `warden tree`.
 *
 * @example process.exitCode = await runTree('http://127.0.0.1:9464', {});
 */
export async function runTree(url: string, o: { json?: boolean }, io: CliIo = processIo): Promise<number> {
  try {
    const base = url.replace(/\/+$/, '');
    const res = await fetch(`${base}/tree`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`${base}/tree answered ${res.status}`);
    const body = (await res.json()) as { node: string; pipeline: string; tree: TreeNode };
    if (o.json) io.out(`${JSON.stringify(body)}\n`);
    else io.out(`node ${body.node}, pipeline ${body.pipeline}\n${renderTree(body.tree).join('\n')}\n`);
    return 0;
  } catch (err) {
    io.err(`warden tree: ${describeError(err)}\n`);
    return 2;
  }
}

/**
 * Adds `tree` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  program.command('tree')
    .description('print the live supervision tree of a running node, from its operations endpoint (warden worker --http)')
    .argument('<url>', "the node's endpoint, e.g. http://127.0.0.1:9464", endpointUrl)
    .option('--json', 'print the /tree JSON')
    .action(async (url: string, o: { json?: boolean }) => {
      process.exitCode = await runTree(url, o, io);
    });
}
