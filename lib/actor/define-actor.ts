/**
 * `defineActor`: how users declare an operator. An operator is an xstate v5 machine (built
 * with `setup()`), run as one actor instance per key. Its inputs are the events the machine
 * knows; its outputs are the events it `emit`s.
 */
import type { AnyStateMachine, InputFrom } from 'xstate';
import { ConfigError, describeValue } from '../core/errors.js';
import type { Json } from '../core/envelope.js';

/** The Standard Schema v1 shape (zod, valibot, arktype...): only what warden calls. */
export interface StandardSchemaV1 {
  readonly '~standard': {
    readonly version: 1;
    readonly validate: (value: unknown) =>
      | { readonly value?: unknown; readonly issues?: ReadonlyArray<{ readonly message: string }> }
      | Promise<unknown>;
  };
}

/**
 * A payload validator: a Standard Schema, or a function returning `true`/`undefined` for a
 * valid payload and a reason string for an invalid one.
 */
export type PayloadSchema = StandardSchemaV1 | ((payload: Record<string, unknown>) => true | undefined | string);

/** Options of `defineActor`. */
export interface ActorOptions<TMachine extends AnyStateMachine> {
  /** Operator name: lower-case letters, digits and `-`; used in stream subjects. */
  name: string;
  /** The xstate v5 machine, built with `setup({...}).createMachine({...})`. */
  machine: TMachine;
  /** Version of the machine's persisted shape; stored with every checkpoint. @default '1' */
  version?: string | number;
  /** Input given to a fresh actor for `key`. @default no input */
  input?: (key: string) => InputFrom<TMachine>;
  /**
   * Schemas of the accepted input events, by event type. When given, only these types are
   * accepted; otherwise every event type the machine handles is. @default derived from the machine
   */
  events?: Record<string, PayloadSchema | null>;
  /** Largest accepted input message, in bytes. @default 65_536 */
  maxPayloadBytes?: number;
  /**
   * Turns a snapshot persisted by another machine version into one this version can restore.
   * Without it, a checkpoint of another version is never restored blindly.
   */
  migrate?: (snapshot: Json, fromVersion: string) => Json;
}

/** A validated actor definition. */
export interface ActorDefinition<TMachine extends AnyStateMachine = AnyStateMachine> {
  readonly kind: 'warden.actor';
  readonly name: string;
  readonly machine: TMachine;
  readonly version: string;
  readonly input: ((key: string) => InputFrom<TMachine>) | undefined;
  readonly maxPayloadBytes: number;
  readonly migrate: ((snapshot: Json, fromVersion: string) => Json) | undefined;
  /** Schemas by accepted event type (`null` = no schema). */
  readonly schemas: ReadonlyMap<string, PayloadSchema | null>;
  /** Accepts every type (the machine has a `*` transition and no `events` were given). */
  readonly acceptsAny: boolean;
  /** Partial wildcard descriptors without the `.*` (`order.*` -> `order`): accepts `order` and `order.<anything>`. */
  readonly acceptedPrefixes: readonly string[];
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Declares an operator.
 *
 * @example
 * const counter = defineActor({
 *   name: 'counter',
 *   machine: setup({ types: {} as { events: { type: 'inc' }; emitted: { type: 'counted'; n: number } } })
 *     .createMachine({ context: { n: 0 }, on: { inc: { actions: [assign({ n: ({ context }) => context.n + 1 }),
 *       emit(({ context }) => ({ type: 'counted' as const, n: context.n }))] } } }),
 * });
 */
export function defineActor<TMachine extends AnyStateMachine>(options: ActorOptions<TMachine>): ActorDefinition<TMachine> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', `must be an object { name, machine, ... }, got ${describeValue(options)}`);
  if (typeof options.name !== 'string' || !NAME.test(options.name)) {
    throw new ConfigError('name', `must match ${NAME} (lower-case letters, digits, '-'), got ${JSON.stringify(options.name)}`);
  }
  const machine = options.machine as AnyStateMachine | undefined;
  if (!machine || typeof machine !== 'object' || !('root' in machine) || typeof machine.getInitialSnapshot !== 'function') {
    throw new ConfigError(`actor ${options.name}: machine`, 'must be an xstate v5 machine (setup({...}).createMachine({...}))');
  }
  const maxPayloadBytes = options.maxPayloadBytes ?? 65_536;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes <= 0) {
    throw new ConfigError(`actor ${options.name}: maxPayloadBytes`, `must be a positive integer, got ${String(maxPayloadBytes)}`);
  }
  const rawVersion: unknown = options.version ?? '1';
  if (typeof rawVersion !== 'string' && !(typeof rawVersion === 'number' && Number.isFinite(rawVersion))) {
    throw new ConfigError(`actor ${options.name}: version`, `must be a string or a finite number, got ${typeof rawVersion}`);
  }
  const version = String(rawVersion);
  if (version.length === 0) throw new ConfigError(`actor ${options.name}: version`, 'must not be empty');
  for (const field of ['input', 'migrate'] as const) {
    if (options[field] !== undefined && typeof options[field] !== 'function') {
      throw new ConfigError(`actor ${options.name}: ${field}`, `must be a function, got ${typeof options[field]}`);
    }
  }
  if (options.events !== undefined && (typeof options.events !== 'object' || options.events === null || Array.isArray(options.events))) {
    throw new ConfigError(`actor ${options.name}: events`, 'must be an object of event type -> schema (a Standard Schema, a validator function, or null)');
  }

  const schemas = new Map<string, PayloadSchema | null>();
  let acceptsAny = false;
  const acceptedPrefixes: string[] = [];
  if (options.events) {
    for (const [type, schema] of Object.entries(options.events)) {
      if (schema !== null && typeof schema !== 'function' && !isStandardSchema(schema)) {
        throw new ConfigError(`actor ${options.name}: events.${type}`, 'must be a Standard Schema, a validator function, or null');
      }
      if (type.startsWith('xstate.') || type.startsWith('warden.')) {
        throw new ConfigError(`actor ${options.name}: events.${type}`, "is reserved: 'xstate.' and 'warden.' event types never reach a machine as inputs");
      }
      schemas.set(type, schema);
    }
  } else {
    for (const descriptor of machine.events as string[]) {
      if (descriptor === '*') acceptsAny = true;
      else if (descriptor.endsWith('.*')) acceptedPrefixes.push(descriptor.slice(0, -2));
      else if (!descriptor.startsWith('xstate.')) schemas.set(descriptor, null);
    }
  }
  return {
    kind: 'warden.actor',
    name: options.name,
    machine: options.machine,
    version,
    input: options.input,
    maxPayloadBytes,
    migrate: options.migrate,
    schemas,
    acceptsAny,
    acceptedPrefixes,
  };
}

/** Is `value` a Standard Schema object? */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  return typeof value === 'object' && value !== null && '~standard' in value;
}
