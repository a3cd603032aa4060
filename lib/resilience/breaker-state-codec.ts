/**
 * The rules every `BreakerStateStore` applies the same way, so the in-memory twin and the NATS KV
 * store accept, refuse and decode exactly the same things (the contract suite checks both):
 *
 *  1. A breaker name is a non-empty, well-formed Unicode string (no lone surrogate) of at most
 *     `MAX_BREAKER_NAME_LENGTH` UTF-16 units; anything else is a `ConfigError` (field
 *     `breaker.name`). Every such name maps to a distinct KV key (`breakerKey` in the NATS adapter).
 *  2. A published state is `{ state, node, atMs }` with `state` one of open, half-open, closed,
 *     `node` a non-empty string and `atMs` a finite number; anything else is refused with a
 *     `ValidationError` (reason `schema`) before anything is stored. Other fields are dropped.
 *  3. The stored form is one JSON object `{"v":1,"state":...,"node":...,"atMs":...}`. Decoding
 *     checks it as strictly as publishing does: text that is not JSON is `undecodable`, JSON of
 *     another shape or version is `schema`. The store assigns `revision`, never the value.
 */
import { ConfigError, ValidationError } from '../core/errors.js';
import type { SharedBreakerState } from './breaker-state.js';

/** Longest breaker name, in UTF-16 units. @example name.length <= MAX_BREAKER_NAME_LENGTH */
export const MAX_BREAKER_NAME_LENGTH = 256;

/** Version of the stored form written by this code. @example JSON.parse(text).v === STORED_STATE_VERSION */
export const STORED_STATE_VERSION = 1;

const STATES: ReadonlySet<string> = new Set(['open', 'half-open', 'closed']);
// With the `u` flag a well-formed surrogate pair is one code point, so this only matches lone halves.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Throws a `ConfigError` (field `breaker.name`) unless `name` is a usable breaker name
 * (invariant 1).
 *
 * @example
 * checkBreakerName('payments-api'); // ok
 * checkBreakerName('');             // throws ConfigError: breaker.name must not be empty
 */
export function checkBreakerName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new ConfigError('breaker.name', `must be a string (got ${typeof name})`);
  if (name.length === 0) throw new ConfigError('breaker.name', 'must not be empty');
  if (name.length > MAX_BREAKER_NAME_LENGTH) {
    throw new ConfigError('breaker.name', `must be at most ${MAX_BREAKER_NAME_LENGTH} characters (got ${name.length}: "${name.slice(0, 32)}...")`, {
      details: { length: name.length, limit: MAX_BREAKER_NAME_LENGTH },
    });
  }
  if (LONE_SURROGATE.test(name)) {
    throw new ConfigError('breaker.name', `must be well-formed Unicode: ${JSON.stringify(name)} holds a lone surrogate, which has no UTF-8 form`);
  }
}

function schemaProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `expected an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
  const v = value as Record<string, unknown>;
  if (typeof v.state !== 'string' || !STATES.has(v.state)) return `state must be 'open', 'half-open' or 'closed' (got ${JSON.stringify(v.state) ?? 'undefined'})`;
  if (typeof v.node !== 'string' || v.node.length === 0) return `node must be a non-empty string (got ${JSON.stringify(v.node) ?? 'undefined'})`;
  if (typeof v.atMs !== 'number' || !Number.isFinite(v.atMs)) return `atMs must be a finite number (got ${String(v.atMs)})`;
  return undefined;
}

/**
 * The stored form of a state to publish (invariants 2 and 3); throws `ValidationError` (reason
 * `schema`) naming the breaker and the bad field.
 *
 * @example
 * encodeSharedState('payments', { state: 'open', node: 'n1', atMs: 1_700_000_000_000 });
 * // '{"v":1,"state":"open","node":"n1","atMs":1700000000000}'
 */
export function encodeSharedState(name: string, state: Omit<SharedBreakerState, 'revision'>): string {
  const problem = schemaProblem(state);
  if (problem !== undefined) {
    throw new ValidationError('schema', `breaker "${name}": cannot publish this state: ${problem}`, { details: { breaker: name } });
  }
  return JSON.stringify({ v: STORED_STATE_VERSION, state: state.state, node: state.node, atMs: state.atMs });
}

/**
 * A stored value read back (invariant 3); throws `ValidationError` (`undecodable` or `schema`)
 * naming the breaker, for the store to report and skip.
 *
 * @example
 * decodeSharedState('payments', '{"v":1,"state":"open","node":"n1","atMs":5}'); // { state: 'open', node: 'n1', atMs: 5 }
 * decodeSharedState('payments', 'garbage'); // throws ValidationError (undecodable)
 */
export function decodeSharedState(name: string, text: string): Omit<SharedBreakerState, 'revision'> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('undecodable', `breaker "${name}": stored state is not JSON: ${JSON.stringify(text.slice(0, 80))}`, { cause: err, details: { breaker: name } });
  }
  const problem = schemaProblem(value);
  const version = (value as { v?: unknown } | null)?.v;
  if (problem !== undefined || version !== STORED_STATE_VERSION) {
    const why = problem ?? `version must be ${STORED_STATE_VERSION} (got ${JSON.stringify(version) ?? 'undefined'})`;
    throw new ValidationError('schema', `breaker "${name}": stored state is malformed: ${why}`, { details: { breaker: name } });
  }
  const v = value as { state: SharedBreakerState['state']; node: string; atMs: number };
  return { state: v.state, node: v.node, atMs: v.atMs };
}
