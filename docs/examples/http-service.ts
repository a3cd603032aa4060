/**
 * An existing plain `node:http` service that embeds a warden supervisor:
 * - a background job (a poller that sometimes crashes) runs under `supervise`-style supervision;
 * - a warden pipeline runs in the same process, its partitions supervised;
 * - GET /tree shows the supervision tree, GET /healthz says whether it is healthy;
 * - SIGTERM stops accepting requests, stops the tree gracefully (final checkpoints), exits 0.
 *
 * Run: node --import tsx docs/examples/http-service.ts [port]   (prints `listening on <port>`; not through
 *      npx, which does not pass SIGTERM on to the process it runs)
 */
import { createServer } from 'node:http';
import { assign, setup } from 'xstate';
import { createSupervisor, defineActor, definePipeline, startNode } from 'warden';

// 1. Something the service already does: a loop that polls, and crashes now and then.
let polls = 0;
const poller = {
  id: 'poller',
  backoff: { minBackoffMs: 100, maxBackoffMs: 2_000 },
  start({ signal }: { signal: AbortSignal }) {
    const done = (async () => {
      while (!signal.aborted) {
        polls++;
        if (polls % 7 === 0) throw new Error(`poll ${polls} failed`); // a crash: the supervisor restarts it
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return Promise.resolve({ stop: () => done.catch(() => undefined), done });
  },
};

// 2. A warden pipeline in the same process.
const hits = defineActor({
  name: 'hits',
  machine: setup({ types: { context: {} as { n: number }, events: {} as { type: 'hit' } } }).createMachine({
    context: { n: 0 },
    on: { hit: { actions: assign({ n: ({ context }) => context.n + 1 }) } },
  }),
});
const node = await startNode({ pipeline: definePipeline({ name: 'svc', stages: [{ actor: hits, partitions: 2 }] }) });

// 3. The supervisor the service embeds.
const supervisor = createSupervisor({
  id: 'service',
  strategy: 'one-for-one',
  intensity: 10,
  periodMs: 10_000,
  children: [poller],
  onFatal: (err) => {
    console.error(`supervision gave up: ${err.message}`);
    process.exitCode = 1;
  },
});
await supervisor.start();

const server = createServer((req, res) => {
  if (req.url === '/tree') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ service: supervisor.tree(), pipeline: node.tree() }));
  } else if (req.url === '/healthz') {
    const ok = supervisor.whichChildren().every((c) => c.status !== 'terminated');
    res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'degraded');
  } else if (req.url?.startsWith('/hit/')) {
    void node.ingest({ key: req.url.slice(5), type: 'hit' }).then(() => res.writeHead(202).end());
  } else {
    res.writeHead(404).end();
  }
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const addr = server.address();
  console.log(`listening on ${typeof addr === 'object' && addr ? addr.port : addr}`);
});

process.once('SIGTERM', () => {
  console.log('SIGTERM: shutting down');
  server.close();
  void Promise.all([supervisor.stop(), node.stop()]).then(() => {
    console.log('stopped cleanly');
  });
});
