/**
 * `warden dlq list | show | replay <module>`: a pipeline's dead letters on NATS, inspected and
 * re-injected after a fix (lib/pipeline/dead-letters.ts). `list` and `show` only read.
 *
 * Exit status: 0; `show` 1 when there is no such dead letter; `replay` 1 when a letter asked for
 * by sequence was skipped; 2 when the log could not be read or written.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { describeError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { listDeadLetters, replayDeadLetters, type DeadLetterFilter, type StoredDeadLetter } from '../../pipeline/dead-letters.js';
import type { DeadLetterReason } from '../../worker/dead-letter.js';
import type { Pipeline } from '../../pipeline/define-pipeline.js';
import type { Transport } from '../../transport/transport.js';
import { connectNats } from '../backends.js';
import { loadPipeline, processIo, type BackendOptions, type CliIo } from '../pipeline-module.js';

interface DlqOptions extends Pick<BackendOptions, 'nats'> {
  stage?: string;
  reason?: string;
  json?: boolean;
}

/** Every reason a dead letter can carry (`DeadLetterReason`). */
const REASONS: readonly DeadLetterReason[] = ['undecodable', 'too-large', 'schema', 'unknown-event', 'forged', 'crashed', 'unroutable', 'unpublishable'];

function reason(v: string): string {
  if (!(REASONS as readonly string[]).includes(v)) throw new InvalidArgumentError(`It must be one of ${REASONS.join(', ')}.`);
  return v;
}

function seq(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('It must be a dead-letter sequence (an integer >= 1), as `warden dlq list` shows.');
  return n;
}

/** Loads the pipeline, connects to its log, runs `fn`; failures are one line and exit 2. */
async function withLog(command: string, module: string, o: DlqOptions, io: CliIo, fn: (pipeline: Pipeline, transport: Transport) => Promise<number>): Promise<number> {
  let transport: Transport | undefined;
  try {
    const pipeline = await loadPipeline(module);
    transport = await connectNats(o.nats ?? process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222', { logger: createLogger({ name: 'warden-cli' }), name: 'warden-cli' });
    return await fn(pipeline, transport);
  } catch (err) {
    io.err(`warden dlq ${command}: ${describeError(err)}\n`);
    return 2;
  } finally {
    await transport?.close().catch(() => undefined);
  }
}

const filterOf = (o: DlqOptions): DeadLetterFilter => ({ ...(o.stage ? { stage: o.stage } : {}), ...(o.reason ? { reason: o.reason } : {}) });

function line(d: StoredDeadLetter): string {
  const l = d.letter;
  const when = new Date(d.timestampMs).toISOString();
  const replayed = d.replayed ? `replayed to ${d.replayed.stream}@${d.replayed.inputSeq}` : '';
  return [String(d.seq).padEnd(6), when.padEnd(25), `${l.stage}/${l.partition}`.padEnd(16), l.reason.padEnd(14), (l.key ?? '-').padEnd(16), `${l.stream}@${l.seq}`.padEnd(20), replayed || l.error.slice(0, 60)].join(' ');
}

/**
 * Runs `warden dlq list`.
 *
 * @example process.exitCode = await runDlqList('./pipeline.js', { stage: 'orders' });
 */
export function runDlqList(module: string, o: DlqOptions, io: CliIo = processIo): Promise<number> {
  return withLog('list', module, o, io, async (pipeline, transport) => {
    const letters = await listDeadLetters({ pipeline, transport, ...filterOf(o) });
    if (o.json) {
      io.out(`${JSON.stringify(letters)}\n`);
      return 0;
    }
    const replayed = letters.filter((d) => d.replayed).length;
    io.out(`${letters.length} dead letter${letters.length === 1 ? '' : 's'} in ${pipeline.deadLetterStream}${replayed ? ` (${replayed} replayed)` : ''}\n`);
    if (letters.length > 0) {
      io.out(`${['seq'.padEnd(6), 'dead-lettered at'.padEnd(25), 'partition'.padEnd(16), 'reason'.padEnd(14), 'key'.padEnd(16), 'input'.padEnd(20), 'error or replay'].join(' ')}\n`);
      for (const d of letters) io.out(`${line(d)}\n`);
    }
    return 0;
  });
}

/** Runs `warden dlq show`. @example process.exitCode = await runDlqShow('./pipeline.js', 3, {}); */
export function runDlqShow(module: string, at: number, o: DlqOptions, io: CliIo = processIo): Promise<number> {
  return withLog('show', module, o, io, async (pipeline, transport) => {
    const [d] = await listDeadLetters({ pipeline, transport, seqs: [at] });
    if (!d) {
      io.err(`warden dlq show: no dead letter at ${pipeline.deadLetterStream} seq ${at}\n`);
      return 1;
    }
    io.out(`${JSON.stringify(d, null, o.json ? undefined : 2)}\n`);
    return 0;
  });
}

const NOTHING_NAMED = 'name the dead letters (their sequences, from `warden dlq list`) or pass --all (with --stage or --reason to narrow it)';

/** Runs `warden dlq replay`. @example process.exitCode = await runDlqReplay('./pipeline.js', [3], {}); */
export function runDlqReplay(module: string, seqs: number[], o: DlqOptions & { all?: boolean; dryRun?: boolean }, io: CliIo = processIo): Promise<number> {
  if (seqs.length === 0 && !o.all) {
    io.err(`warden dlq replay: ${NOTHING_NAMED}\n`); // a bad argument: nothing is loaded or connected
    return Promise.resolve(1);
  }
  return withLog('replay', module, o, io, async (pipeline, transport) => {
    const r = await replayDeadLetters({ pipeline, transport, ...filterOf(o), ...(seqs.length > 0 ? { seqs } : {}), ...(o.dryRun ? { dryRun: true } : {}) });
    if (o.json) io.out(`${JSON.stringify(r)}\n`);
    else {
      for (const x of r.replayed) io.out(o.dryRun ? `would replay ${x.seq} to ${x.stream}\n` : `replayed ${x.seq} -> ${x.stream}@${x.inputSeq}\n`);
      for (const x of r.skipped) io.out(`skipped ${x.seq}: ${x.why}\n`);
      io.out(`${r.replayed.length} ${o.dryRun ? 'to replay' : 'replayed'}, ${r.skipped.length} skipped\n`);
    }
    return seqs.length > 0 && r.skipped.length > 0 ? 1 : 0;
  });
}

/**
 * Adds `dlq` to the `warden` program.
 *
 * @example register(program);
 */
export function register(program: Command, io: CliIo = processIo): void {
  const dlq = program.command('dlq').description("a pipeline's dead letters: list, show, replay after a fix");
  const common = (c: Command): Command => c
    .option('--nats <url>', 'NATS server URL(s), comma-separated (default: $WARDEN_NATS_URL or nats://127.0.0.1:4222)')
    .option('--stage <stage>', 'only the dead letters of this stage')
    .option('--reason <reason>', `only those dead-lettered for this reason (${REASONS.join(', ')})`, reason)
    .option('--json', 'print JSON');
  common(dlq.command('list').description('list the dead letters, oldest first, with their replays').argument('<module>', 'module exporting the pipeline'))
    .action(async (module: string, o: DlqOptions) => {
      process.exitCode = await runDlqList(module, o, io);
    });
  dlq.command('show').description('print one dead letter: the error chain, the original input, its replay')
    .argument('<module>', 'module exporting the pipeline')
    .argument('<seq>', 'its sequence, as `warden dlq list` shows', seq)
    .option('--nats <url>', 'NATS server URL(s), comma-separated (default: $WARDEN_NATS_URL or nats://127.0.0.1:4222)')
    .option('--json', 'one JSON line')
    .action(async (module: string, at: number, o: DlqOptions) => {
      process.exitCode = await runDlqShow(module, at, o, io);
    });
  common(dlq.command('replay').description('re-inject dead letters into their stages (after a fix), each at most once')
    .argument('<module>', 'module exporting the pipeline')
    .argument('[seq...]', 'the dead letters to replay (their sequences)', (v: string, prev: number[] = []) => [...prev, seq(v)]))
    .option('--all', 'every dead letter the filters select')
    .option('--dry-run', 'say what would be replayed, publish nothing')
    .action(async (module: string, seqs: number[] | undefined, o: DlqOptions & { all?: boolean; dryRun?: boolean }, command: Command) => {
      if ((seqs ?? []).length === 0 && !o.all) command.error(`error: ${NOTHING_NAMED}`, { exitCode: 1 }); // prints the usage too
      process.exitCode = await runDlqReplay(module, seqs ?? [], o, io);
    });
}
