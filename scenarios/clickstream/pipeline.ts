/**
 * The clickstream pipeline: parse -> sessions (per user) -> pages (per page, the sink).
 */
import { definePipeline, type Guarantee } from '../../lib/index.js';
import { pages } from '../../actors/clickstream/pages.js';
import { parse } from '../../actors/clickstream/parse.js';
import { sessions } from '../../actors/clickstream/sessions.js';

/** Builds the pipeline; `everyEvents` sets how often partitions checkpoint, `guarantee` applies to every stage. */
export function clickstreamPipeline(options: { name?: string; everyEvents?: number; intervalMs?: number; guarantee?: Guarantee } = {}) {
  const checkpoint = { everyEvents: options.everyEvents ?? 200, intervalMs: options.intervalMs ?? 250 };
  const guarantee = options.guarantee ?? 'exactly-once';
  return definePipeline({
    name: options.name ?? 'clicks',
    stages: [
      // Only page views go on; rejected lines stay counted in the parse actor.
      { actor: parse, partitions: 2, keyBy: (e, key) => (typeof e.user === 'string' ? e.user : key), to: (e) => (e.type === 'page-view' ? 'sessions' : undefined), checkpoint, guarantee },
      // Session views are re-keyed by page for the sink; session-closed events end here.
      { actor: sessions, partitions: 4, to: (e) => (e.type === 'session-view' ? 'pages' : undefined), keyBy: (e) => String(e.page), checkpoint, guarantee },
      { actor: pages, partitions: 2, checkpoint, guarantee },
    ],
  });
}
