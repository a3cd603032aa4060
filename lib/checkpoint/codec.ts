/**
 * How checkpoint entries are serialised and checksummed. Shared by every store so an entry
 * written by one implementation verifies in another.
 */
import { hash } from 'node:crypto';
import { WardenError } from '../core/errors.js';

/** Hex SHA-1 of a string (an integrity check, not a security boundary). */
export function checksumOf(body: string): string {
  return hash('sha1', body, 'hex'); // one-shot: no Hash object per entry
}

/** Serialises a value with its checksum: `<40 hex chars><json>`. */
export function sealEntry(value: unknown): string {
  const body = JSON.stringify(value);
  return checksumOf(body) + body;
}

/** Verifies and parses a sealed entry; a mismatch raises `CHECKPOINT_CORRUPT` naming `what`. */
export function openEntry<T>(sealed: string, what: string): T {
  const sum = sealed.slice(0, 40);
  const body = sealed.slice(40);
  if (checksumOf(body) !== sum) {
    throw new WardenError('CHECKPOINT_CORRUPT', `checkpoint entry ${what} fails its checksum`, {
      nonRetryable: true,
      details: { what },
    });
  }
  try {
    return JSON.parse(body) as T;
  } catch (err) {
    throw new WardenError('CHECKPOINT_CORRUPT', `checkpoint entry ${what} is not valid JSON`, { cause: err, nonRetryable: true, details: { what } });
  }
}

/** `openEntry` of one result of a batch read (null: no entry), as a settled result: a corrupt entry fails its key only. */
export function openSettled<T>(sealed: string | null, what: string): PromiseSettledResult<T | undefined> {
  if (sealed === null) return { status: 'fulfilled', value: undefined };
  try {
    return { status: 'fulfilled', value: openEntry<T>(sealed, what) };
  } catch (reason) {
    return { status: 'rejected', reason };
  }
}
