/**
 * Input validation: what stands between the log and a machine. An input that fails here never
 * reaches the machine; the caller dead-letters it with the reason.
 */
import type { Envelope } from '../core/envelope.js';
import { ValidationError } from '../core/errors.js';
import { isStandardSchema, type ActorDefinition } from './define-actor.js';

/**
 * Throws a `ValidationError` naming what is wrong with `env` for `def`, or returns quietly.
 * `sizeBytes` is the size of the stored message.
 */
export function validateInput(def: ActorDefinition, env: Envelope, sizeBytes: number): void {
  if (sizeBytes > def.maxPayloadBytes) {
    throw new ValidationError('too-large', `input ${env.type} to ${def.name} is ${sizeBytes} bytes, over maxPayloadBytes ${def.maxPayloadBytes}`, {
      details: { sizeBytes, maxPayloadBytes: def.maxPayloadBytes },
    });
  }
  if (env.type.startsWith('warden.')) {
    throw new ValidationError('unknown-event', `event type '${env.type}' is reserved by warden and may not come from outside (actor ${def.name})`, {
      details: { type: env.type },
    });
  }
  if (env.type.startsWith('xstate.')) {
    throw new ValidationError('unknown-event', `event type '${env.type}' is reserved by xstate and may not come from the log (actor ${def.name})`, {
      details: { type: env.type },
    });
  }
  const schema = def.schemas.get(env.type);
  if (schema === undefined) {
    if (def.acceptsAny || def.acceptedPrefixes.some((p) => env.type === p || env.type.startsWith(`${p}.`))) return;
    throw new ValidationError('unknown-event', `event type '${env.type}' is not handled by actor ${def.name} (known: ${[...def.schemas.keys()].join(', ')})`, {
      details: { type: env.type },
    });
  }
  if (schema === null) return;
  if (typeof schema === 'function') {
    let verdict: true | undefined | string;
    try {
      verdict = schema(env.payload);
    } catch (err) {
      throw new ValidationError('schema', `payload of ${env.type} to ${def.name} failed validation: ${(err as Error).message}`, { cause: err });
    }
    if (verdict !== true && verdict !== undefined) {
      throw new ValidationError('schema', `payload of ${env.type} to ${def.name} is invalid: ${verdict}`);
    }
    return;
  }
  if (isStandardSchema(schema)) {
    const result = schema['~standard'].validate(env.payload);
    if (result instanceof Promise) {
      throw new ValidationError('schema', `schema of ${env.type} in ${def.name} is asynchronous; warden validates synchronously`);
    }
    const issues = (result as { issues?: ReadonlyArray<{ message: string }> }).issues;
    if (issues && issues.length > 0) {
      throw new ValidationError('schema', `payload of ${env.type} to ${def.name} is invalid: ${issues.map((i) => i.message).join('; ')}`);
    }
  }
}

/** A `warden.timer` record (lib/actor/timers.ts) must name the timer it fires. */
export function validateTimerRecord(env: Envelope): void {
  if (typeof env.payload.timer !== 'string' || !/^\d+\.\d+$/.test(env.payload.timer)) {
    throw new ValidationError('schema', `timer record for ${env.key} names no timer (payload.timer ${JSON.stringify(env.payload.timer)})`, { details: { timer: env.payload.timer } });
  }
}

/** A `warden.call` record (lib/actor/calls.ts) must name the call and carry an output or an error. */
export function validateCallRecord(env: Envelope): void {
  const p = env.payload;
  const errorOk = typeof p.error === 'object' && p.error !== null && typeof (p.error as { message?: unknown }).message === 'string';
  if (typeof p.call !== 'string' || !/^\d+\.\d+$/.test(p.call) || typeof p.ok !== 'boolean' || (p.ok ? !('output' in p) : !errorOk)) {
    throw new ValidationError('schema', `call record for ${env.key} is malformed: needs call "<seq>.<n>", ok, and an output or an error with a message`, { details: { call: p.call } });
  }
}
