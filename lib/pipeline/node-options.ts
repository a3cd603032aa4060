/**
 * The time bounds of `startNode` (`duplicateWindowMs`, `maxRecoveryMs`), resolved and validated
 * once: a bad value is a `ConfigError` naming the field, never a silently disabled check.
 */
import { ConfigError } from '../core/errors.js';

/** `duplicateWindowMs` and `maxRecoveryMs` with defaults applied. */
export interface NodeTiming {
  duplicateWindowMs: number;
  maxRecoveryMs: number;
}

function finiteMs(field: string, value: unknown, fallback: number, min: 'positive' | 'non-negative'): number {
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
