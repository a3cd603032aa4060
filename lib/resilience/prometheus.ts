/**
 * `registerCallMetrics`: guarded calls' metrics as Prometheus metrics (prom-client 15), with a
 * `call` label. Values are read from `GuardedCall.metrics()` when the registry is scraped, so a
 * call pays nothing per call for being exported.
 *
 * Families (prefix `warden_call_` by default): `calls_total`, `successes_total`,
 * `failed_calls_total`, `attempts_total`, `attempt_failures_total{kind}`, `retries_total`,
 * `fallbacks_total`, `alerts_total`, `consecutive_failures`, `breaker_state{state}` (1 for the
 * current state, 0 for the others), `breaker_transitions_total{to}`, and the histogram
 * `duration_seconds` (the latency histogram's buckets, in seconds).
 *
 * prom-client is an optional peer dependency: it is loaded on the first call, from where warden
 * is installed, so the metrics are built by the same prom-client as the application's registry
 * (two copies would keep two default registries), and an application without metrics never
 * loads it. The public types name only `MetricsRegistry`, so warden's declarations do not
 * need prom-client's.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { promClient } from './prom-loader.js';
import { ConfigError } from '../core/errors.js';
import { listCalls } from './registry.js';
import type { BreakerState, CallMetrics, GuardedCall } from './types.js';


/**
 * What `registerCallMetrics` uses of a registry: a prom-client 15 `Registry` (the default
 * `register` or one of your own) has all of it.
 */
export interface MetricsRegistry {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: never): void;
  removeSingleMetric(name: string): void;
}

/** Options of `registerCallMetrics`. */
export interface CallMetricsOptions {
  /** Prefix of every metric name. @default 'warden_call_' */
  prefix?: string;
}

type Source = () => CallMetrics[];

const KINDS = [
  ['timeout', 'timeout'],
  ['error', 'error'],
  ['terminal', 'terminal'],
  ['breakerOpen', 'breaker-open'],
  ['aborted', 'aborted'],
] as const;
const STATES: readonly BreakerState[] = ['closed', 'open', 'half-open'];

/**
 * Exposes the metrics of `calls` (default: every call registered at scrape time) in `registry`;
 * returns a function that removes them. Throws `ConfigError` if `registry` already has one of
 * the names.
 *
 * @example
 * const registry = new Registry();
 * registerCallMetrics(registry);
 * http.createServer(async (_req, res) => res.end(await registry.metrics())).listen(9464);
 */
export function registerCallMetrics(metricsRegistry: MetricsRegistry, calls?: Iterable<GuardedCall> | (() => Iterable<GuardedCall>), options: CallMetricsOptions = {}): () => void {
  const prefix = options.prefix ?? 'warden_call_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw new ConfigError('prefix', `must be a Prometheus metric name prefix (got ${JSON.stringify(prefix)})`);
  const { Counter, Gauge, SnapshotHistogram } = promClient();
  const registry = metricsRegistry as unknown as Registry;
  const list = typeof calls === 'function' ? calls : calls === undefined ? listCalls : () => calls;
  const source: Source = () => {
    const seen = new Set<string>();
    const out: CallMetrics[] = [];
    for (const call of list()) {
      if (seen.has(call.name)) continue;
      seen.add(call.name);
      out.push(call.metrics());
    }
    return out;
  };
  const names: string[] = [];
  const name = (suffix: string): string => {
    const full = `${prefix}${suffix}`;
    if (registry.getSingleMetric(full) !== undefined) throw new ConfigError('registry', `already has a metric named ${full}`, { details: { metric: full } });
    names.push(full);
    return full;
  };
  const perCall = (suffix: string, help: string, read: (m: CallMetrics) => number, kind: 'counter' | 'gauge' = 'counter'): void => {
    const config = { name: name(suffix), help, labelNames: ['call'] as const, registers: [registry] };
    if (kind === 'counter') {
      new Counter({ ...config, collect(this: Counter<'call'>) { this.reset(); for (const m of source()) this.inc({ call: m.call }, read(m)); } });
    } else {
      new Gauge({ ...config, collect(this: Gauge<'call'>) { this.reset(); for (const m of source()) this.set({ call: m.call }, read(m)); } });
    }
  };
  perCall('calls_total', 'Guarded calls started.', (m) => m.calls);
  perCall('successes_total', 'Guarded calls that returned the function’s value.', (m) => m.successes);
  perCall('failed_calls_total', 'Guarded calls that failed (rejected, or answered by the fallback).', (m) => m.failedCalls);
  perCall('attempts_total', 'Times the guarded function ran.', (m) => m.attempts);
  perCall('retries_total', 'Retries started.', (m) => m.retries);
  perCall('fallbacks_total', 'Calls answered by the fallback.', (m) => m.fallbacks);
  perCall('alerts_total', 'Alerts raised (one per episode of consecutive failures).', (m) => m.alerts);
  perCall('consecutive_failures', 'Failed calls since the last success.', (m) => m.consecutiveFailures, 'gauge');
  new Counter({
    name: name('attempt_failures_total'),
    help: 'Failed attempts by kind (breaker-open: refused without running).',
    labelNames: ['call', 'kind'] as const,
    registers: [registry],
    collect(this: Counter<'call' | 'kind'>) {
      this.reset();
      for (const m of source()) for (const [field, kind] of KINDS) this.inc({ call: m.call, kind }, m.failures[field]);
    },
  });
  new Gauge({
    name: name('breaker_state'),
    help: 'Circuit breaker state: 1 for the current one.',
    labelNames: ['call', 'state'] as const,
    registers: [registry],
    collect(this: Gauge<'call' | 'state'>) {
      this.reset();
      for (const m of source()) for (const state of STATES) this.set({ call: m.call, state }, m.breaker.state === state ? 1 : 0);
    },
  });
  new Counter({
    name: name('breaker_transitions_total'),
    help: 'Circuit breaker transitions by target state.',
    labelNames: ['call', 'to'] as const,
    registers: [registry],
    collect(this: Counter<'call' | 'to'>) {
      this.reset();
      for (const m of source()) {
        this.inc({ call: m.call, to: 'open' }, m.breaker.opened);
        this.inc({ call: m.call, to: 'half-open' }, m.breaker.halfOpened);
        this.inc({ call: m.call, to: 'closed' }, m.breaker.closed);
      }
    },
  });
  registry.registerMetric(new SnapshotHistogram(name('duration_seconds'), 'Guarded call latency, first attempt to settling.', ['call'],
    () => source().map((m) => ({ labels: { call: m.call }, boundsMs: m.latencyMs.bucketsMs, counts: m.latencyMs.counts, sumMs: m.latencyMs.sum, count: m.latencyMs.count }))));
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
  };
}
