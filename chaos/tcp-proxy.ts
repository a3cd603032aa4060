/**
 * A TCP proxy a test puts between a client and a server to inject network faults: latency with
 * jitter, connection resets, a blackhole, refused connections. It listens on a free loopback
 * port and forwards every connection to the target; each fault can be switched at any time and
 * applies to the connections already open as well as to new ones. Node's `net` only.
 *
 * Invariants:
 *  1. It listens on 127.0.0.1 only; every accepted connection gets a connection of its own to
 *     the target, opened at once (or, if accepted while blackholed, when the blackhole lifts).
 *  2. Per direction, bytes leave in the order they arrived and none before its sampled delay
 *     (`delay-line.ts`).
 *  3. While blackholed nothing is forwarded in either direction, and data arriving or falling
 *     due meanwhile is dropped silently (counted in `stats()`); new connections are accepted
 *     and held without a target connection, their data dropped too. Lifting the blackhole
 *     resumes forwarding of new data and connects the held connections.
 *  4. A reset (`reset()`, an error on either side, a target that cannot be reached) destroys
 *     both sockets of a connection with a TCP RST, so both peers see a reset; while refusing,
 *     a new connection is reset at once.
 *  5. A clean end (FIN) on one side is passed on to the other after the data before it, and a
 *     half-closed connection keeps forwarding the other way.
 *  6. After `close()` resolves no listener, socket or timer of the proxy is left.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { DelayLine, LinkConditions, type LineCounts } from './delay-line.js';

/** Options of `startTcpProxy`. */
export interface TcpProxyOptions {
  /** Where connections are forwarded; `host` @default '127.0.0.1' */
  target: { host?: string; port: number };
  /**
   * The port to listen on (127.0.0.1).
   * @default 0 (a free port)
   */
  port?: number;
}

/** What the proxy has done so far. */
export interface TcpProxyStats {
  /** Connections accepted (refused ones included). */
  accepted: number;
  /** Connections open now (held ones included). */
  open: number;
  /** Connections reset at once because the proxy was refusing. */
  refused: number;
  /** Connections reset by `reset()`. */
  reset: number;
  /** Bytes written to the target and to clients. */
  bytesToTarget: number;
  bytesToClient: number;
  /** Bytes dropped by the blackhole (or because the other side was gone), each way. */
  droppedToTarget: number;
  droppedToClient: number;
}

/** A running proxy. */
export interface TcpProxy {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** `<scheme>://127.0.0.1:<port>`, e.g. `proxy.url('nats')`. */
  url(scheme: string): string;
  /** Delays each chunk, both ways, by `ms` ± `jitterMs` (uniform, never below 0), keeping order; `latency(0)` ends it. */
  latency(ms: number, jitterMs?: number): void;
  /** Resets every open connection now (invariant 4); new connections are forwarded as before. */
  reset(): void;
  /** Switches the blackhole on or off (invariant 3). */
  blackhole(on: boolean): void;
  /** While on, every new connection is reset at once (invariant 4); open ones are untouched. */
  refuse(on: boolean): void;
  stats(): TcpProxyStats;
  /** Stops listening and resets every connection; resolves when nothing is left (invariant 6). */
  close(): Promise<void>;
}

/** A client connection and, once opened, its connection to the target. */
class ProxiedConnection {
  private upstream: Socket | undefined;
  private lines: DelayLine[] = [];
  private done = false;
  private readonly dropWhileHeld = (chunk: Buffer): void => {
    this.toTarget.dropped += chunk.length;
  };

  constructor(
    private readonly client: Socket,
    private readonly target: { host: string; port: number },
    private readonly link: LinkConditions,
    private readonly toTarget: LineCounts,
    private readonly toClient: LineCounts,
    private readonly onDone: (c: ProxiedConnection) => void,
  ) {
    client.on('error', () => this.reset());
    client.once('close', () => this.closed(client));
    if (link.blackholed) client.on('data', this.dropWhileHeld); // invariant 3: held
    else this.open();
  }

  get held(): boolean {
    return this.upstream === undefined;
  }

  /** Connects to the target and starts both lines (invariant 1). */
  open(): void {
    if (this.upstream || this.client.destroyed) return;
    this.client.off('data', this.dropWhileHeld);
    const upstream = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => this.reset());
    upstream.once('close', () => this.closed(upstream));
    this.lines = [new DelayLine(this.client, upstream, this.link, this.toTarget), new DelayLine(upstream, this.client, this.link, this.toClient)];
  }

  /** Destroys both sockets with an RST (invariant 4). */
  reset(): void {
    for (const line of this.lines) line.destroy();
    for (const s of [this.client, this.upstream]) {
      if (!s || s.destroyed) continue;
      if (s.connecting) s.destroy();
      else s.resetAndDestroy();
    }
  }

  /** A side closed: without a FIN from its peer the other is reset (invariant 4); once both are gone, done. */
  private closed(side: Socket): void {
    if (!side.readableEnded) this.reset();
    if (this.done || !this.client.destroyed || (this.upstream && !this.upstream.destroyed)) return;
    this.done = true;
    for (const line of this.lines) line.destroy();
    this.onDone(this);
  }
}

/**
 * Starts a proxy on a free loopback port that forwards every connection to `target`.
 *
 * @example
 * const proxy = await startTcpProxy({ target: { port: 4222 } });
 * const nc = await connect({ servers: proxy.url('nats') });
 * proxy.latency(50, 10); // every chunk 40-60 ms late
 * proxy.blackhole(true); // the client's pings go unanswered
 * proxy.blackhole(false);
 * proxy.reset(); // the client reconnects
 * await proxy.close();
 */
export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const target = { host: options.target.host ?? '127.0.0.1', port: options.target.port };
  if (!Number.isInteger(target.port) || target.port <= 0 || target.port > 65_535) throw new Error(`TcpProxyOptions.target.port must be a TCP port, got ${target.port}`);
  const link = new LinkConditions();
  const toTarget: LineCounts = { forwarded: 0, dropped: 0 };
  const toClient: LineCounts = { forwarded: 0, dropped: 0 };
  const connections = new Set<ProxiedConnection>();
  const counts = { accepted: 0, refused: 0, reset: 0 };
  let refusing = false;

  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    counts.accepted++;
    if (refusing) {
      counts.refused++;
      client.on('error', () => undefined);
      client.resetAndDestroy(); // invariant 4
      return;
    }
    connections.add(new ProxiedConnection(client, target, link, toTarget, toClient, (c) => connections.delete(c)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => { // invariant 1
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    latency(ms, jitterMs = 0) {
      if (!(ms >= 0) || !Number.isFinite(ms)) throw new Error(`latency ms must be a finite number >= 0, got ${ms}`);
      if (!(jitterMs >= 0) || !Number.isFinite(jitterMs)) throw new Error(`latency jitterMs must be a finite number >= 0, got ${jitterMs}`);
      link.latencyMs = ms;
      link.jitterMs = jitterMs;
    },
    reset() {
      for (const c of connections) {
        counts.reset++;
        c.reset();
      }
    },
    blackhole(on) {
      link.blackholed = on;
      if (!on) for (const c of connections) if (c.held) c.open();
    },
    refuse(on) {
      refusing = on;
    },
    stats: () => ({
      accepted: counts.accepted,
      open: connections.size,
      refused: counts.refused,
      reset: counts.reset,
      bytesToTarget: toTarget.forwarded,
      bytesToClient: toClient.forwarded,
      droppedToTarget: toTarget.dropped,
      droppedToClient: toClient.dropped,
    }),
    async close() {
      const closed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
      for (const c of connections) c.reset();
      await closed;
    },
  };
}
