/**
 * @internal prom-client, loaded on first use, and a histogram whose buckets are read from
 * snapshots. Kept apart from the public modules so their declarations never name prom-client's
 * types (an optional peer dependency a consumer may not have).
 */
import { createRequire } from 'node:module';
import type * as PromClientModule from 'prom-client';
import type { Histogram } from 'prom-client';
import { ConfigError } from '../core/errors.js';

type PromClient = typeof PromClientModule;
type HistogramValues = Awaited<ReturnType<Histogram<string>['get']>>;

let loaded: PromClientParts | undefined;

/** What warden uses of prom-client. */
export interface PromClientParts {
  Counter: PromClient['Counter'];
  Gauge: PromClient['Gauge'];
  Registry: PromClient['Registry'];
  SnapshotHistogram: SnapshotHistogramClass;
}

/** @internal A prom-client histogram whose values are read from snapshots at scrape time. */
export type SnapshotHistogramClass = new (
  metricName: string,
  helpText: string,
  labelNames: string[],
  source: () => HistogramSeries[] | Promise<HistogramSeries[]>,
) => Histogram<string>;

/**
 * @internal prom-client, loaded once, on first use; a `ConfigError` naming `what` and what to
 * install if it is missing.
 *
 * @example const { Counter } = promClient('registerNodeMetrics');
 */
export function promClient(what = 'registerCallMetrics'): PromClientParts {
  if (loaded) return loaded;
  let prom: PromClient;
  try {
    prom = createRequire(import.meta.url)('prom-client') as PromClient;
  } catch (err) {
    throw new ConfigError(what, 'needs prom-client, which is not installed next to warden: npm install prom-client', { cause: err });
  }
  loaded = { Counter: prom.Counter, Gauge: prom.Gauge, Registry: prom.Registry, SnapshotHistogram: defineSnapshotHistogram(prom.Histogram) };
  return loaded;
}

/** @internal One labelled series of a `SnapshotHistogram`: per-bucket counts (not cumulative), in ms. */
export interface HistogramSeries {
  labels: Record<string, string | number>;
  boundsMs: readonly number[];
  /** `boundsMs.length` counts, or one more for `+Inf`. */
  counts: readonly number[];
  sumMs: number;
  count: number;
}

/**
 * A histogram whose buckets are read from snapshots (in seconds, from ms). prom-client has no
 * setter for bucket counts, so it renders its own values: prom-client 15's registry asks a metric
 * for `getForPromString()` when it has one (text format), else `get()` (JSON); both are served.
 * Defined on first use, as a subclass of the loaded prom-client's `Histogram`.
 */
function defineSnapshotHistogram(Base: PromClient['Histogram']): SnapshotHistogramClass {
  return class SnapshotHistogram extends Base<string> {
    constructor(
      private readonly metricName: string,
      private readonly helpText: string,
      labelNames: string[],
      private readonly source: () => HistogramSeries[] | Promise<HistogramSeries[]>,
    ) {
      super({ name: metricName, help: helpText, labelNames, buckets: [1], registers: [] }); // registered by the caller, not in prom-client's default registry
    }

    override get(): ReturnType<Histogram<string>['get']> {
      return this.values();
    }

    getForPromString(): ReturnType<Histogram<string>['get']> {
      return this.values();
    }

    private async values(): Promise<HistogramValues> {
      const name = this.metricName;
      const values: HistogramValues['values'] = [];
      for (const s of await this.source()) {
        let cumulative = 0;
        s.boundsMs.forEach((ms, i) => {
          cumulative += s.counts[i] ?? 0;
          values.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: ms / 1000 }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
        values.push({ metricName: `${name}_sum`, labels: s.labels, value: s.sumMs / 1000 });
        values.push({ metricName: `${name}_count`, labels: s.labels, value: s.count });
      }
      // `type` is a string at run time ('histogram'); the typings declare an enum prom-client does not export.
      return { name, help: this.helpText, type: 'histogram' as unknown as HistogramValues['type'], aggregator: 'sum', collect: () => undefined, values };
    }
  };
}
