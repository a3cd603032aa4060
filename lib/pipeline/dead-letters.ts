/**
 * Dead letters of a pipeline: listed, shown, and re-injected after a fix (`warden dlq`).
 *
 * A replay publishes the dead letter's original input again to its stage (the partition of its
 * key), as a new input at a new position of the log, so the stage applies it as it applies any
 * input, under its guarantee; then it records the replay in the dead-letter stream (subject
 * `<pipeline>.dlq._replayed`, which no stage can have: stage names start with a letter).
 *
 * Invariants:
 *  1. A dead letter is re-injected at most once: a replay skips one whose replay is recorded. A
 *     replay cut short between the publish and the record is finished by the next one with the
 *     same message ID (`dlq-replay:<pipeline>:<seq>`), which the stage stream's duplicate window
 *     drops if the first publish landed.
 *  2. Only what can be replayed as it was is: a body cut when it was dead-lettered
 *     (`bodyTruncated`), an output the log refused (`unpublishable`) and a forged timer or call
 *     record (`forged`) are skipped with the reason, never published.
 *  3. Listing and showing read only; nothing is acknowledged or deleted (the dead-letter stream's
 *     retention decides how long they stay).
 */
import { SystemClock, type Clock } from '../core/clock.js';
import { ConfigError, WardenError } from '../core/errors.js';
import { checkPort } from '../core/ports.js';
import { partitionOf } from '../core/ids.js';
import type { DeadLetter } from '../worker/dead-letter.js';
import type { StoredMessage, Transport } from '../transport/transport.js';
import type { Pipeline } from './define-pipeline.js';

/** One dead letter as stored, with its replay if there was one. */
export interface StoredDeadLetter {
  /** Its sequence in the dead-letter stream: what `show` and `replay` take. */
  seq: number;
  /** When it was dead-lettered (the log's time), ms. */
  timestampMs: number;
  letter: DeadLetter;
  /** Set once it was re-injected. */
  replayed?: DeadLetterReplay;
}

/** The record of a replay. */
export interface DeadLetterReplay {
  /** Dead-letter stream sequence of the letter. */
  seq: number;
  /** Stream and sequence the input was published at again. */
  stream: string;
  inputSeq: number;
  atMs: number;
}

/** Which dead letters. */
export interface DeadLetterFilter {
  stage?: string;
  reason?: string;
  /** Only these dead-letter stream sequences. */
  seqs?: number[];
}

/** Options of `listDeadLetters` and `replayDeadLetters`. */
export interface DeadLetterOptions extends DeadLetterFilter {
  pipeline: Pipeline;
  transport: Transport;
}

/** What a replay did with each dead letter it was asked for. */
export interface ReplayResult {
  replayed: DeadLetterReplay[];
  skipped: Array<{ seq: number; why: 'already-replayed' | 'truncated' | 'unpublishable' | 'forged' | 'not-found' | 'not-a-dead-letter' }>;
}

const dec = new TextDecoder();
const enc = new TextEncoder();
const replaySubject = (pipeline: Pipeline): string => `${pipeline.name}.dlq._replayed`;

/** Every message of the dead-letter stream, in order (invariant 3). */
async function readAll(transport: Transport, pipeline: Pipeline): Promise<StoredMessage[]> {
  let info;
  try {
    info = await transport.streamInfo(pipeline.deadLetterStream);
  } catch (err) {
    if (err instanceof WardenError && err.code === 'STREAM_NOT_FOUND') return [];
    throw err;
  }
  if (info.messages === 0) return [];
  const reader = transport.openReader(pipeline.deadLetterStream, { startSeq: info.firstSeq });
  const out: StoredMessage[] = [];
  try {
    while (out.length === 0 || out[out.length - 1]!.seq < info.lastSeq) {
      const batch = await reader.next(1_024, 2_000);
      if (batch.length === 0) break; // deleted since the info: what is there was read
      out.push(...batch);
    }
  } finally {
    await reader.close();
  }
  return out.filter((m) => m.seq <= info.lastSeq);
}

function checkFilter(pipeline: Pipeline, filter: DeadLetterFilter): void {
  if (pipeline?.kind !== 'warden.pipeline') throw new ConfigError('pipeline', 'must be made by definePipeline()');
  if (filter.stage !== undefined) pipeline.stage(filter.stage); // ConfigError naming an unknown stage
  for (const s of filter.seqs ?? []) if (!Number.isSafeInteger(s) || s < 1) throw new ConfigError('seqs', `must be dead-letter sequences (integers >= 1), got ${String(s)}`);
}

/**
 * The pipeline's dead letters, oldest first, with their replays (invariant 3).
 *
 * @example
 * for (const d of await listDeadLetters({ pipeline, transport, stage: 'orders' })) console.log(d.seq, d.letter.reason);
 */
export async function listDeadLetters(options: DeadLetterOptions): Promise<StoredDeadLetter[]> {
  const { pipeline, transport } = options;
  checkFilter(pipeline, options);
  checkPort('transport', 'transport', transport);
  const replays = new Map<number, DeadLetterReplay>();
  const letters: StoredDeadLetter[] = [];
  for (const m of await readAll(transport, pipeline)) {
    if (m.subject === replaySubject(pipeline)) {
      const r = JSON.parse(dec.decode(m.data)) as DeadLetterReplay;
      replays.set(r.seq, r);
      continue;
    }
    let letter: DeadLetter;
    try {
      letter = JSON.parse(dec.decode(m.data)) as DeadLetter;
    } catch {
      continue; // not a dead letter warden wrote
    }
    letters.push({ seq: m.seq, timestampMs: m.timestampMs, letter });
  }
  const seqs = options.seqs ? new Set(options.seqs) : undefined;
  return letters
    .filter((d) => (!options.stage || d.letter.stage === options.stage) && (!options.reason || d.letter.reason === options.reason) && (!seqs || seqs.has(d.seq)))
    .map((d) => (replays.has(d.seq) ? { ...d, replayed: replays.get(d.seq)! } : d));
}

/** Why a dead letter cannot be replayed as it was (invariant 2); undefined when it can. */
function unreplayable(letter: DeadLetter): ReplayResult['skipped'][number]['why'] | undefined {
  if (letter.bodyTruncated) return 'truncated';
  if (letter.reason === 'unpublishable') return 'unpublishable';
  if (letter.reason === 'forged') return 'forged';
  return undefined;
}

/**
 * Re-injects dead letters (those the filter selects; `seqs` names them one by one) into their
 * stages, each at most once (invariant 1). Run it after the fix is deployed: the inputs are
 * applied by the running nodes.
 *
 * @example
 * const { replayed, skipped } = await replayDeadLetters({ pipeline, transport, seqs: [3, 4] });
 */
export async function replayDeadLetters(options: DeadLetterOptions & { dryRun?: boolean; clock?: Clock }): Promise<ReplayResult> {
  const { pipeline, transport } = options;
  if (options.clock !== undefined) checkPort('clock', 'clock', options.clock);
  const clock = options.clock ?? new SystemClock();
  const all = await listDeadLetters({ pipeline, transport });
  const wanted = await listDeadLetters(options);
  const result: ReplayResult = { replayed: [], skipped: [] };
  for (const s of options.seqs ?? []) {
    if (!all.some((d) => d.seq === s)) result.skipped.push({ seq: s, why: 'not-found' });
  }
  for (const d of wanted) {
    if (d.replayed) {
      result.skipped.push({ seq: d.seq, why: 'already-replayed' });
      continue;
    }
    const why = unreplayable(d.letter);
    if (why) {
      result.skipped.push({ seq: d.seq, why });
      continue;
    }
    const stage = pipeline.stages.find((s) => s.name === d.letter.stage);
    if (!stage) {
      result.skipped.push({ seq: d.seq, why: 'not-a-dead-letter' });
      continue;
    }
    const subject = d.letter.key !== undefined ? stage.subjectOf(partitionOf(d.letter.key, stage.partitions)) : d.letter.subject;
    const body = d.letter.bodyEncoding === 'base64' ? Buffer.from(d.letter.body, 'base64') : enc.encode(d.letter.body);
    if (options.dryRun) {
      result.replayed.push({ seq: d.seq, stream: stage.stream, inputSeq: 0, atMs: 0 });
      continue;
    }
    const ack = await transport.publish(subject, body, {
      msgId: `dlq-replay:${pipeline.name}:${d.seq}`, // invariant 1
      headers: { 'warden-replayed-from': `${pipeline.deadLetterStream}:${d.seq}` },
    });
    const replay: DeadLetterReplay = { seq: d.seq, stream: ack.stream, inputSeq: ack.seq, atMs: clock.now() };
    await transport.publish(replaySubject(pipeline), enc.encode(JSON.stringify(replay)), { msgId: `dlq-replayed:${pipeline.name}:${d.seq}` });
    result.replayed.push(replay);
  }
  return result;
}
