/**
 * The process-wide registry of guarded calls by name, so a machine (`fromCall('name')`) or a
 * metrics exporter can find a call without holding it.
 *
 * Invariants:
 *  1. One call per name: `defineCall` of a taken name throws `ConfigError` (field `name`) unless
 *     `replace: true`, which makes the new call the registered one (the old one keeps working
 *     for its holders until they close it).
 *  2. A closed call leaves the registry, if it is still the registered one, so its name is free.
 *  3. The registry is `fromCall`'s default lookup: `fromCall('name')` finds the call registered
 *     under that name when the machine invokes it, unless its node was given its own `calls`.
 *  4. `eachCall(fn)` calls `fn` for every registered call and for every call registered later,
 *     until the returned function is called (watchers of "every call": alerts, the live view).
 */
import { ConfigError } from '../core/errors.js';
import type { GuardedCall } from './types.js';

const calls = new Map<string, GuardedCall>();

/** Throws `ConfigError` if `name` is taken and `replace` is false (invariant 1). */
export function checkCallName(name: string, replace: boolean): void {
  if (typeof name !== 'string' || name.length === 0) throw new ConfigError('name', `must be a non-empty string (got ${JSON.stringify(name) ?? String(name)})`);
  if (!replace && calls.has(name)) {
    throw new ConfigError('name', `${JSON.stringify(name)} is already defined in this process (close it first, or pass replace: true)`, { details: { name } });
  }
}

const watchers = new Set<(call: GuardedCall) => void>();

/** Makes `call` the registered call of its name (invariant 4: watchers are told). */
export function registerCall(call: GuardedCall): void {
  calls.set(call.name, call);
  for (const w of watchers) w(call);
}

/**
 * Invariant 4: `fn` for every registered call now and every one registered later; returns the
 * function that stops the later ones.
 *
 * @example const stop = eachCall((call) => offs.push(call.on(listener)));
 */
export function eachCall(fn: (call: GuardedCall) => void): () => void {
  for (const call of [...calls.values()]) fn(call);
  watchers.add(fn);
  return () => watchers.delete(fn);
}

/** Invariant 2. */
export function unregisterCall(call: GuardedCall): void {
  if (calls.get(call.name) === call) calls.delete(call.name);
}

/**
 * The call defined under `name`, if any. The types are the caller's claim: the registry knows
 * only names.
 *
 * @example
 * const charge = getCall<ChargeRequest, Receipt>('payments.charge');
 * if (charge) await charge.call(request);
 */
export function getCall<I = unknown, O = unknown>(name: string): GuardedCall<I, O> | undefined {
  return calls.get(name) as GuardedCall<I, O> | undefined;
}

/**
 * Every registered call, in definition order.
 *
 * @example
 * for (const call of listCalls()) console.log(call.name, call.metrics().breaker.state);
 */
export function listCalls(): GuardedCall[] {
  return [...calls.values()];
}
