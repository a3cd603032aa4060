/**
 * `watchAlerts`: a node's alerts as events and hooks. An alert is raised once when a condition
 * starts and resolved once when it ends (an episode), never once per failure:
 *
 *   lag                 a partition's lag above `lagAbove` inputs (checked every `pollMs`)
 *   checkpoint-failing  `checkpointFailures` consecutive failed checkpoints of a partition
 *   checkpoint-stale    a partition's checkpoint older than `checkpointAgeMs` while it holds applied
 *                       inputs that checkpoint does not cover (checked every `pollMs`)
 *   restart-intensity   a supervisor gave up: restarts beyond its intensity (the stage, or the node)
 *   dead-letters        dead letters arriving on a partition; resolved after `deadLetterQuietMs` without one
 *   call-failures       a guarded call's `alertAfter` consecutive failures (its own `alert` event)
 *   partition-down      a partition stays down after a non-retryable failure
 *
 * Invariants:
 *  1. For each (alert, stage, partition or call) at most one episode is open: `onAlert` is told
 *     when it opens and `onResolved` when it closes, in that order, each once.
 *  2. Time is the injected clock's; `stop()` leaves no timer and no listener, and tells nothing more.
 *  3. A hook that throws is logged and does not stop the watcher.
 */
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/logger.js';
import type { NodeEvent, WardenNode } from '../pipeline/node-types.js';
import { eachCall } from '../resilience/registry.js';
import type { GuardedCall } from '../resilience/types.js';

export type AlertKind = 'lag' | 'checkpoint-failing' | 'checkpoint-stale' | 'restart-intensity' | 'dead-letters' | 'call-failures' | 'partition-down';

/** One alert episode. */
export interface WardenAlert {
  alert: AlertKind;
  severity: 'warning' | 'critical';
  node: string;
  stage?: string;
  partition?: number;
  /** The guarded call (`call-failures`) or the supervisor path (`restart-intensity`). */
  subject?: string;
  /** The figure that crossed the bound (lag, failures, age in ms, restarts, dead letters). */
  value: number;
  bound: number;
  message: string;
  /** Clock time the episode opened. */
  sinceMs: number;
}

/** Options of `watchAlerts`; a bound of 0 turns its alert off. */
export interface AlertOptions {
  /** @default 10_000 inputs */
  lagAbove?: number;
  /** @default 3 */
  checkpointFailures?: number;
  /** @default 300_000 (5 minutes) */
  checkpointAgeMs?: number;
  /** A dead-letters episode ends after this long without one. @default 60_000 */
  deadLetterQuietMs?: number;
  /** Also watch these guarded calls' alerts (true: every call in this process, those defined after the watcher started included). @default true */
  calls?: boolean | Iterable<GuardedCall>;
  /** How often lag and checkpoint age are checked. @default 5_000 */
  pollMs?: number;
  onAlert?: (alert: WardenAlert) => void;
  onResolved?: (alert: WardenAlert & { resolvedAtMs: number }) => void;
  clock?: Clock;
  /** Where each alert (error level), resolution (warn) and failing hook is logged. @default createLogger() (`WARDEN_LOG_LEVEL`, default warn) */
  logger?: Logger;
}

/** What `watchAlerts` returns. */
export interface AlertWatcher {
  /** The open episodes. */
  active(): WardenAlert[];
  /** Checks lag and checkpoint age now (the watcher does every `pollMs`). */
  check(): Promise<void>;
  stop(): void;
}

function bound(name: keyof AlertOptions, value: unknown, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(name, `must be a finite number >= 0, got ${String(value)}`);
  return v;
}

/**
 * @example
 * const alerts = watchAlerts(node, { lagAbove: 5_000, onAlert: (a) => pager.page(a.message) });
 * // later
 * alerts.stop();
 */
export function watchAlerts(node: WardenNode, options: AlertOptions = {}): AlertWatcher {
  const lagAbove = bound('lagAbove', options.lagAbove, 10_000);
  const checkpointFailures = bound('checkpointFailures', options.checkpointFailures, 3);
  const checkpointAgeMs = bound('checkpointAgeMs', options.checkpointAgeMs, 300_000);
  const deadLetterQuietMs = bound('deadLetterQuietMs', options.deadLetterQuietMs, 60_000);
  const pollMs = bound('pollMs', options.pollMs, 5_000);
  if (pollMs === 0) throw new ConfigError('pollMs', 'must be > 0');
  const clock = options.clock ?? new SystemClock();
  const logger = options.logger ?? createLogger();
  const open = new Map<string, WardenAlert>();
  const failuresInARow = new Map<string, number>();
  const lastDeadLetter = new Map<string, number>();
  let stopped = false;
  let timer: TimerHandle;

  const call = (fn: (() => void) | undefined): void => {
    try {
      fn?.();
    } catch (err) {
      logger.error({ err: err }, 'alert hook threw'); // invariant 3
    }
  };
  const raise = (id: string, a: Omit<WardenAlert, 'node' | 'sinceMs'>): void => {
    if (stopped || open.has(id)) return; // invariant 1
    const alert: WardenAlert = { ...a, node: node.nodeId, sinceMs: clock.now() };
    open.set(id, alert);
    logger.error({ alert: alert.alert, stage: alert.stage, partition: alert.partition, subject: alert.subject, value: alert.value, bound: alert.bound }, `alert: ${alert.message}`);
    call(options.onAlert && (() => options.onAlert!({ ...alert }))); // a copy: the watcher's own may count on (dead letters)
  };
  const resolve = (id: string): void => {
    const alert = open.get(id);
    if (stopped || !alert) return;
    open.delete(id);
    logger.warn({ alert: alert.alert, stage: alert.stage, partition: alert.partition, subject: alert.subject }, `alert resolved: ${alert.message}`);
    call(options.onResolved && (() => options.onResolved!({ ...alert, resolvedAtMs: clock.now() })));
  };
  const where = (stage: string, partition: number): string => `${stage}/${partition}`;

  const onEvent = (e: NodeEvent): void => {
    switch (e.type) {
      case 'checkpoint-failed': {
        const at = where(e.stage, e.partition);
        const n = (failuresInARow.get(at) ?? 0) + 1;
        failuresInARow.set(at, n);
        if (checkpointFailures > 0 && n >= checkpointFailures) {
          raise(`checkpoint-failing ${at}`, { alert: 'checkpoint-failing', severity: 'critical', stage: e.stage, partition: e.partition, value: n, bound: checkpointFailures, message: `${n} checkpoints of ${at} failed in a row: ${e.error}` });
        }
        break;
      }
      case 'checkpoint': {
        const at = where(e.stage, e.partition);
        failuresInARow.delete(at);
        resolve(`checkpoint-failing ${at}`);
        break;
      }
      case 'dead-letter': {
        if (deadLetterQuietMs === 0) break; // the alert is off
        const at = where(e.stage, e.partition);
        lastDeadLetter.set(at, clock.now());
        const current = open.get(`dead-letters ${at}`);
        if (current) current.value++; // dead letters in the episode
        else raise(`dead-letters ${at}`, { alert: 'dead-letters', severity: 'warning', stage: e.stage, partition: e.partition, value: 1, bound: 0, message: `inputs of ${at} are being dead-lettered (${e.reason}: ${e.error})` });
        break;
      }
      case 'escalated':
        raise(`restart-intensity ${e.path}`, { alert: 'restart-intensity', severity: 'critical', subject: e.path, value: e.restarts, bound: e.intensity, message: `${e.path} restarted ${e.restarts} times within ${e.periodMs} ms (intensity ${e.intensity}) and gave up: ${e.error}` });
        break;
      case 'partition-down':
        raise(`partition-down ${where(e.stage, e.partition)}`, { alert: 'partition-down', severity: 'critical', stage: e.stage, partition: e.partition, value: 1, bound: 0, message: `${where(e.stage, e.partition)} stays down (${e.code}): ${e.error}` });
        break;
      case 'restored':
        resolve(`partition-down ${where(e.stage, e.partition)}`);
        break;
      default:
        break;
    }
  };
  const off = node.on(onEvent);

  const offCalls: Array<() => void> = [];
  const watchCall = (c: GuardedCall): void => {
    offCalls.push(c.on((e) => {
      if (e.type === 'alert') raise(`call-failures ${e.call}`, { alert: 'call-failures', severity: 'warning', subject: e.call, value: e.consecutiveFailures, bound: e.consecutiveFailures, message: `guarded call ${e.call} failed ${e.consecutiveFailures} times in a row: ${e.error}` });
      else if (e.type === 'recovered') resolve(`call-failures ${e.call}`);
    }));
  };
  if (options.calls === undefined || options.calls === true) offCalls.push(eachCall(watchCall)); // every call, those defined later included
  else if (options.calls !== false) for (const c of options.calls) watchCall(c);

  async function check(): Promise<void> {
    if (stopped) return;
    const now = clock.now();
    for (const [at, t] of lastDeadLetter) {
      if (now - t >= deadLetterQuietMs) {
        lastDeadLetter.delete(at);
        resolve(`dead-letters ${at}`);
      }
    }
    let status;
    try {
      status = await node.status();
    } catch (err) {
      logger.warn({ err: err }, 'alerts: status read failed; lag and checkpoint age not checked this time');
      return;
    }
    for (const p of status) {
      const at = where(p.stage, p.partition);
      if (!p.local) {
        // Another node runs it now (a handover): its lag and checkpoints are that node's to watch.
        resolve(`lag ${at}`);
        resolve(`checkpoint-stale ${at}`);
        continue;
      }
      if (lagAbove > 0 && p.lag > lagAbove) raise(`lag ${at}`, { alert: 'lag', severity: 'warning', stage: p.stage, partition: p.partition, value: p.lag, bound: lagAbove, message: `${at} is ${p.lag} inputs behind its log (bound ${lagAbove})` });
      else resolve(`lag ${at}`);
      // An idle partition whose last checkpoint covers everything it applied is not stale, however old that checkpoint.
      const uncovered = p.appliedSeq > p.checkpointSeq;
      if (checkpointAgeMs > 0 && p.running && uncovered && p.checkpointAgeMs > checkpointAgeMs) {
        raise(`checkpoint-stale ${at}`, { alert: 'checkpoint-stale', severity: 'warning', stage: p.stage, partition: p.partition, value: p.checkpointAgeMs, bound: checkpointAgeMs, message: `the last checkpoint of ${at} is ${Math.round(p.checkpointAgeMs / 1000)} s old (bound ${Math.round(checkpointAgeMs / 1000)} s) and does not cover inputs up to seq ${p.appliedSeq}` });
      } else if (p.checkpointAgeMs <= checkpointAgeMs || (p.running && !uncovered)) {
        resolve(`checkpoint-stale ${at}`); // not while the partition restarts: its age says it all then
      }
    }
  }
  const arm = (): void => {
    timer = clock.setTimeout(() => {
      void check().finally(() => {
        if (!stopped) arm();
      });
    }, pollMs);
  };
  arm();

  return {
    active: () => [...open.values()].map((a) => ({ ...a })),
    check,
    stop() {
      stopped = true; // invariant 2
      clock.clearTimeout(timer);
      off();
      for (const o of offCalls) o();
    },
  };
}
