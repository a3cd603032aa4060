/**
 * Deterministic identifiers. A replay regenerates outputs with the same message IDs, so the
 * stream's duplicate window drops the copies: `<operator>:<key>:<inputSeq>:<n>`.
 *
 * Invariants:
 *  1. Every string is a valid key: inside an ID a key is written with `idPart`, which escapes
 *     `%`, whitespace and control characters as `%XX` (a message ID travels in a NATS header,
 *     which cannot hold CR or LF and loses leading and trailing blanks). Ordinary keys are
 *     unchanged, so IDs stay the same for them.
 *  2. `idPart` is injective: two different keys never give the same part.
 */
import { ConfigError, describeValue } from './errors.js';

// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const UNSAFE = /[%\x00-\x20\x7f]/g;

/**
 * A key as it is written inside a message ID or an idempotency key (invariant 1).
 *
 * @example
 * idPart('alice'); // 'alice'
 * idPart('line\nbreak'); // 'line%0Abreak'
 */
export function idPart(key: string): string {
  UNSAFE.lastIndex = 0;
  if (!UNSAFE.test(key)) return key;
  return key.replace(UNSAFE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The message ID of the `n`-th output (0-based) produced by `operator` for `key` at input sequence `inputSeq`. */
export function outputMessageId(operator: string, key: string, inputSeq: number, n: number): string {
  return `${operator}:${idPart(key)}:${inputSeq}:${n}`;
}

/** The message ID of the dead letter for input `inputSeq` of `operator`. */
export function deadLetterMessageId(operator: string, inputSeq: number): string {
  return `dlq:${operator}:${inputSeq}`;
}

/**
 * A stable 32-bit FNV-1a hash of a string. Used for partitioning: the same key always lands
 * on the same partition, on every node and every run.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The partition (0..partitions-1) a key belongs to; a key that is not a string, or a count that is not an integer >= 1, is a `ConfigError`. */
export function partitionOf(key: string, partitions: number): number {
  if (typeof key !== 'string') throw new ConfigError('key', `must be a string, got ${describeValue(key)}`);
  if (!Number.isSafeInteger(partitions) || partitions < 1) throw new ConfigError('partitions', `must be an integer >= 1, got ${describeValue(partitions)}`);
  return partitions === 1 ? 0 : hash32(key) % partitions;
}

/** Type of the log record that fires an actor's timer (lib/actor/timers.ts). Reserved: inputs may not use `warden.` types. */
export const TIMER_EVENT = 'warden.timer';

/**
 * The message ID of the record firing timer `timerId` of `key` in `operator`, sent by the worker of
 * fencing epoch `epoch`: a retry within one incarnation is dropped by the stream; a successor's
 * re-send is not (the original may be at or below its restored position, never to be applied
 * again), and the second record finds the timer no longer pending.
 */
export function timerRecordId(operator: string, key: string, timerId: string, epoch: number): string {
  return `${operator}:${idPart(key)}:t${timerId}:e${epoch}`;
}

/** Type of the log record carrying the result of a guarded call started by `fromCall` (lib/actor/calls.ts). */
export const CALL_EVENT = 'warden.call';

/** The message ID of the record carrying the result of call `callId` of `key` in `operator` (per epoch, as `timerRecordId`). */
export function callRecordId(operator: string, key: string, callId: string, epoch: number): string {
  return `${operator}:${idPart(key)}:c${callId}:e${epoch}`;
}

/** The idempotency key of call `callId` of `key` in `operator`: the same on every attempt and after every restore. */
export function callIdempotencyKey(operator: string, key: string, callId: string): string {
  return `${operator}:${idPart(key)}:${callId}`;
}
