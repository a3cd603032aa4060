/**
 * The options of `startNode`, compiled once: every default applied, every bound validated (a bad
 * value is a `ConfigError` naming the field, never a silently disabled check), the embedded
 * backends created when none are given.
 */
import { InMemoryCheckpointStore } from '../checkpoint/in-memory-checkpoint-store.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { SystemClock, type Clock } from '../core/clock.js';
import { checkPort } from '../core/ports.js';
import { ConfigError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/logger.js';
import { resolveBackoff, withBackoffDefaults } from '../supervision/backoff.js';
import type { BackoffOptions } from '../supervision/types.js';
import { InMemoryTransport } from '../transport/in-memory-transport.js';
import type { Transport } from '../transport/transport.js';
import type { Pipeline } from './define-pipeline.js';

/** `duplicateWindowMs` and `maxRecoveryMs` with defaults applied. */
export interface NodeTiming {
  duplicateWindowMs: number;
  maxRecoveryMs: number;
}

export function finiteMs(field: string, value: unknown, fallback: number, min: 'positive' | 'non-negative'): number {
  const v = value ?? fallback;
  const ok = typeof v === 'number' && Number.isFinite(v) && (min === 'positive' ? v > 0 : v >= 0);
  if (!ok) throw new ConfigError(field, `must be a finite number of ms ${min === 'positive' ? '> 0' : '>= 0'}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v)}`);
  return v;
}

/**
 * Validates the node's time bounds (`NaN`, `Infinity`, negative values and non-numbers are refused).
 *
 * @example const { duplicateWindowMs, maxRecoveryMs } = resolveNodeTiming(options);
 */
export function resolveNodeTiming(options: { duplicateWindowMs?: number | undefined; maxRecoveryMs?: number | undefined }): NodeTiming {
  return {
    duplicateWindowMs: finiteMs('duplicateWindowMs', options.duplicateWindowMs, 120_000, 'positive'),
    maxRecoveryMs: finiteMs('maxRecoveryMs', options.maxRecoveryMs, 60_000, 'non-negative'),
  };
}

/** What `compileNodeOptions` reads (a subset of `NodeOptions`). */
export interface NodeOptionsInput {
  pipeline: Pipeline;
  transport?: Transport | undefined;
  checkpointStore?: CheckpointStore | undefined;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  duplicateWindowMs?: number | undefined;
  maxRecoveryMs?: number | undefined;
  supervision?: { intensity?: number; periodMs?: number; backoff?: BackoffOptions } | undefined;
  metrics?: boolean | undefined;
  yieldEvery?: { inputs?: number; ms?: number } | undefined;
  onFatal?: unknown;
  onEvent?: unknown;
  random?: unknown;
}

/** The node's options, compiled. */
export interface CompiledNodeOptions extends NodeTiming {
  clock: Clock;
  transport: Transport;
  checkpointStore: CheckpointStore;
  /** The node created the backend and closes it on stop. */
  ownsTransport: boolean;
  ownsCheckpointStore: boolean;
  logger: Logger;
  /** Of every supervisor of the node's tree. */
  supervision: { intensity: number; periodMs: number; backoff: BackoffOptions };
}

/**
 * @example
 * const o = compileNodeOptions({ pipeline });
 * o.supervision.intensity; // 10
 */
export function compileNodeOptions(options: NodeOptionsInput): CompiledNodeOptions {
  const { pipeline } = options;
  if (pipeline?.kind !== 'warden.pipeline') throw new ConfigError('pipeline', 'must be made by definePipeline()');
  if (options.transport !== undefined) checkPort('transport', 'transport', options.transport);
  if (options.checkpointStore !== undefined) checkPort('checkpointStore', 'checkpointStore', options.checkpointStore);
  if (options.clock !== undefined) checkPort('clock', 'clock', options.clock);
  const clock = options.clock ?? new SystemClock();
  const sup = options.supervision ?? {};
  const intensity = sup.intensity ?? 10;
  if (!Number.isSafeInteger(intensity) || intensity < 0) throw new ConfigError('supervision.intensity', `must be an integer >= 0, got ${String(intensity)}`);
  for (const field of ['onFatal', 'onEvent', 'random'] as const) {
    const v = options[field];
    if (v !== undefined && typeof v !== 'function') throw new ConfigError(field, `must be a function, got ${typeof v}`);
  }
  if (options.metrics !== undefined && typeof options.metrics !== 'boolean') throw new ConfigError('metrics', `must be true or false, got ${JSON.stringify(options.metrics)}`);
  for (const field of ['inputs', 'ms'] as const) {
    const v = options.yieldEvery?.[field];
    if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw new ConfigError(`yieldEvery.${field}`, `must be a positive integer, got ${String(v)}`);
  }
  return {
    ...resolveNodeTiming(options),
    clock,
    transport: options.transport ?? new InMemoryTransport({ clock }),
    checkpointStore: options.checkpointStore ?? new InMemoryCheckpointStore({ clock }),
    ownsTransport: !options.transport,
    ownsCheckpointStore: !options.checkpointStore,
    logger: (options.logger ?? createLogger()).child({ pipeline: pipeline.name }),
    supervision: {
      intensity,
      periodMs: finiteMs('supervision.periodMs', sup.periodMs, 60_000, 'positive'),
      backoff: resolveBackoff(withBackoffDefaults(sup.backoff, { minBackoffMs: 10, maxBackoffMs: 5_000 }), {}, 'supervision.backoff'),
    },
  };
}
