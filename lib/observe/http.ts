/**
 * `createOpsHandler`: the operations endpoints of a node as one request handler, served by
 * `warden worker --http` and mountable in a `node:http`, Express or Fastify server.
 *
 *   GET /metrics  Prometheus text (the node's metrics and the guarded calls')
 *   GET /health   liveness: 200 while the node runs, 503 once stopped or its tree gave up
 *   GET /ready    readiness: 200 once every partition this node runs is running and within
 *                 `maxLag` of its log end; 503 with the reasons otherwise
 *   GET /tree     the supervision tree as JSON (states, restart counts, uptimes)
 *   GET /dashboard  a live page of the tree, partitions, breakers and events (lib/observe/dashboard-page.ts)
 *   GET /events   server-sent events of live snapshots, which the page renders (lib/observe/live.ts)
 *
 * Invariants:
 *  1. The handler answers only its paths (under `basePath`); any other request goes to
 *     `next()` when one is given (Express), else gets 404. A method other than GET or HEAD on one
 *     of its paths gets 405 with `Allow: GET, HEAD`.
 *  2. A failure while answering (a backend that does not answer a status read) is a 500 or, for
 *     `/ready`, a 503 naming it; it never throws out of the handler or leaves a request open.
 *  3. The bodies carry no payload or credential: positions, counts, states, error codes, and the
 *     keys of actors that crashed (the tree lists restarted actors) with their crash messages.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { ConfigError, describeError } from '../core/errors.js';
import type { WardenNode } from '../pipeline/node-types.js';
import type { MetricsRegistry } from '../resilience/prometheus.js';
import { promClient } from '../resilience/prom-loader.js';
import { registerNodeMetrics, type NodeMetricsOptions } from './metrics.js';
import { readiness, type ReadinessOptions } from './readiness.js';
import { dashboardPage } from './dashboard-page.js';
import { liveView, publicTree, type LiveOptions } from './live.js';

/** Options of `createOpsHandler`. */
export interface OpsHandlerOptions {
  node: WardenNode;
  /**
   * Where `/metrics` reads from: your registry, on which you called `registerNodeMetrics` (and
   * anything else of yours); `false` serves no `/metrics`. @default a registry of its own with the
   * node's metrics (needs prom-client)
   */
  registry?: MetricsRegistry | false;
  /** Options of the metrics registered on the handler's own registry. */
  metrics?: NodeMetricsOptions;
  readiness?: ReadinessOptions;
  /** A path prefix the handler strips (`'/ops'` serves `/ops/metrics`...). @default '' */
  basePath?: string;
  /** Pacing of the live snapshots of `/events`. */
  live?: LiveOptions;
}

/** A request handler for `node:http` (`createServer(handler)`) and Express (`app.use(handler)`). */
export type OpsHandler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void) & {
  /** Removes the metrics the handler registered on its own registry, and ends the live streams' subscriptions. */
  close(): void;
};

const PATHS = new Set(['/metrics', '/health', '/ready', '/tree', '/dashboard', '/events']);

/**
 * @example
 * const node = await startNode({ pipeline });
 * http.createServer(createOpsHandler({ node })).listen(9464);
 * // Express: app.use('/ops', createOpsHandler({ node }));
 * // Fastify: app.get('/ops/*', (req, reply) => { reply.hijack(); ops(req.raw, reply.raw); }) with basePath '/ops'
 */
export function createOpsHandler(options: OpsHandlerOptions): OpsHandler {
  const { node } = options;
  if (!node || typeof node.metrics !== 'function') throw new ConfigError('node', 'must be a running node (startNode)');
  const basePath = options.basePath ?? '';
  if (typeof basePath !== 'string' || (basePath !== '' && (!basePath.startsWith('/') || basePath.endsWith('/')))) {
    throw new ConfigError('basePath', `must be '' or a path that starts with / and does not end with one, got ${JSON.stringify(basePath)}`);
  }
  const check = readiness(node, options.readiness);
  let registry: Registry | undefined;
  let unregister = (): void => undefined;
  if (options.registry === undefined) {
    const { Registry: PromRegistry } = promClient('createOpsHandler');
    registry = new PromRegistry();
    unregister = registerNodeMetrics(registry, node, options.metrics);
  } else if (options.registry !== false) {
    registry = options.registry as unknown as Registry;
  }

  const live = liveView(node, options.live);

  const handler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    const url = req.url ?? '/';
    let path = url.split('?', 1)[0]!;
    if (basePath && (path === basePath || path.startsWith(`${basePath}/`))) path = path.slice(basePath.length) || '/';
    else if (basePath) path = ''; // not ours (invariant 1)
    if (!PATHS.has(path) || (path === '/metrics' && !registry)) {
      if (next) next();
      else send(res, 404, 'application/json', { error: `not found: ${path || url}`, paths: [...PATHS].filter((p) => p !== '/metrics' || registry).map((p) => basePath + p) });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'application/json', { error: `method ${String(req.method)} not allowed on ${path}` });
      return;
    }
    if (path === '/events' && req.method === 'GET') {
      live.stream(req, res);
      return;
    }
    answer(path, req.method === 'HEAD').then(
      ([status, type, body]) => send(res, status, type, body, req.method === 'HEAD'),
      (err: unknown) => send(res, path === '/ready' ? 503 : 500, 'application/json', { error: describeError(err) }), // invariant 2
    );
  }) as OpsHandler;
  handler.close = () => {
    unregister();
    live.close();
  };

  async function answer(path: string, _head: boolean): Promise<[number, string, unknown]> {
    switch (path) {
      case '/metrics':
        return [200, registry!.contentType, await registry!.metrics()];
      case '/health':
        return node.alive ? [200, 'application/json', { status: 'up', node: node.nodeId }] : [503, 'application/json', { status: 'down', node: node.nodeId }];
      case '/dashboard':
        return [200, 'text/html; charset=utf-8', dashboardPage(['events'], `warden · ${node.pipeline.name} · ${node.nodeId}`)];
      case '/events':
        return [200, 'text/event-stream; charset=utf-8', '']; // HEAD
      case '/ready': {
        const r = await check();
        return [r.ready ? 200 : 503, 'application/json', r];
      }
      default:
        return [200, 'application/json', { node: node.nodeId, pipeline: node.pipeline.name, tree: publicTree(node.tree()) }];
    }
  }
  return handler;
}

function send(res: ServerResponse, status: number, type: string, body: unknown, head = false): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.statusCode = status;
  res.setHeader('Content-Type', type.includes('json') ? 'application/json; charset=utf-8' : type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(head ? undefined : text);
}
