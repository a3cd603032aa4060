/**
 * Suite `transport`: publish + in-order consume of 100k 256-byte messages (each with a msgId)
 * through `JetStreamTransport`, versus the fastest raw way to do the same work with the NATS
 * client, on the same server (`WARDEN_NATS_URL`, default nats://127.0.0.1:4222), in one run:
 *
 * - warden: `transport.publish(subject, body, { msgId })` with up to WINDOW publishes in flight
 *   (each awaited through its promise), and `transport.openReader(stream).next(...)` checking
 *   that sequences come 1, 2, 3...
 * - raw: core `nc.publish(subject, body, { reply: <inbox>.<n>, headers: Nats-Msg-Id })` with
 *   the same window, every PubAck parsed and counted on ONE wildcard subscription; consume with
 *   an ordered consumer (`js.consumers.get` + `consume({ callback })`, the client's fastest
 *   form), checking the same sequence order, with the same pull batch as warden's reader.
 *
 * Each round starts its reader first and ends when the last message was consumed; each side
 * runs once per round on a fresh file-storage stream, the side going first alternating between
 * rounds (after a 300 ms pause), after one warm-up run each; medians are reported. Knobs:
 * `BENCH_TRANSPORT_N`, `_WINDOW` (publishes in flight, default 1024), `_BATCH` (pull batch,
 * default 1024), `_ROUNDS` (default 6).
 */
import { randomBytes } from 'node:crypto';
import { connect, createInbox, headers } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { JetStreamTransport } from '../../../lib/adapters/nats/index.js';
import { fmt, median, type Suite } from '../suite.js';

const URL = process.env.WARDEN_NATS_URL ?? 'nats://127.0.0.1:4222';
const N = Number(process.env.BENCH_TRANSPORT_N ?? 100_000);
const SIZE = 256;
const WINDOW = Number(process.env.BENCH_TRANSPORT_WINDOW ?? 1_024);
const BATCH = Number(process.env.BENCH_TRANSPORT_BATCH ?? 1_024);
const ROUNDS = Number(process.env.BENCH_TRANSPORT_ROUNDS ?? 6);

const body = randomBytes(SIZE);

/**
 * A counter of in-flight publishes. The producer awaits only when the window is full, so the
 * publishes of one turn leave in one socket write (awaiting before each publish would cost a
 * write per message, for either side).
 */
class Window {
  inFlight = 0;
  private waiter: (() => void) | undefined;
  get full(): boolean {
    return this.inFlight >= WINDOW;
  }
  async free(): Promise<void> {
    while (this.inFlight >= WINDOW) await new Promise<void>((resolve) => (this.waiter = resolve));
  }
  take(): void {
    this.inFlight++;
  }
  release(): void {
    this.inFlight--;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

function streamName(kind: string): { name: string; subject: string } {
  const id = randomBytes(4).toString('hex');
  return { name: `bench_${kind}_${id}`, subject: `bench${kind}${id}` };
}

async function warden(): Promise<number> {
  const transport = await JetStreamTransport.connect({ servers: URL, name: 'warden-bench', readerBatch: BATCH });
  const { name, subject } = streamName('w');
  await transport.ensureStream({ name, subjects: [`${subject}.>`] });
  try {
    const t0 = performance.now();
    const reader = transport.openReader(name, { startSeq: 1 });
    const consumed = (async () => {
      let expected = 1;
      while (expected <= N) {
        const msgs = await reader.next(BATCH, 10_000);
        if (msgs.length === 0) throw new Error(`warden reader stalled at ${expected}`);
        for (const m of msgs) {
          if (m.seq !== expected) throw new Error(`warden reader: seq ${m.seq}, expected ${expected}`);
          expected++;
        }
      }
    })();
    const window = new Window();
    let failed: unknown;
    const acked = (): void => window.release();
    const refused = (err: unknown): void => {
      failed = err;
      window.release();
    };
    for (let i = 0; i < N && failed === undefined; i++) {
      if (window.full) await window.free();
      window.take();
      transport.publish(`${subject}.p`, body, { msgId: `w-${i}` }).then(acked, refused);
    }
    await consumed;
    const ms = performance.now() - t0;
    if (failed !== undefined) throw failed instanceof Error ? failed : new Error(JSON.stringify(failed));
    await reader.close();
    return N / (ms / 1000);
  } finally {
    await transport.deleteStream(name);
    await transport.close();
  }
}

async function raw(): Promise<number> {
  const nc = await connect({ servers: URL, name: 'raw-bench' });
  const jsm = await jetstreamManager(nc);
  const js = jsm.jetstream();
  const { name, subject } = streamName('r');
  await jsm.streams.add({
    name, subjects: [`${subject}.>`], storage: StorageType.File, num_replicas: 1, retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old, max_msgs: -1, max_bytes: -1, duplicate_window: 120_000 * 1_000_000,
  });
  try {
    const t0 = performance.now();
    const consumer = await js.consumers.get(name, { opt_start_seq: 1 });
    // The callback form of `consume` (no per-message promise) is the client's fastest.
    let expected = 1;
    let done!: () => void;
    let fail!: (err: Error) => void;
    const finished = new Promise<void>((resolve, reject) => {
      done = resolve;
      fail = reject;
    });
    const messages = await consumer.consume({
      max_messages: BATCH,
      callback: (m) => {
        if (m.seq !== expected) fail(new Error(`raw reader: seq ${m.seq}, expected ${expected}`));
        else if (++expected > N) done();
      },
    });
    const consumed = finished.finally(() => messages.stop());
    const window = new Window();
    let acked = 0;
    let failed: unknown;
    const inbox = createInbox();
    const sub = nc.subscribe(`${inbox}.*`, {
      callback: (_err, msg) => {
        if (msg.data.length === 0) failed = `status ${msg.headers?.code}`;
        else {
          const ack = msg.json<{ seq?: number; error?: unknown }>();
          if (ack.error !== undefined) failed = ack.error;
        }
        acked++;
        window.release();
      },
    });
    for (let i = 0; i < N && failed === undefined; i++) {
      if (window.full) await window.free();
      window.take();
      const h = headers();
      h.set('Nats-Msg-Id', `r-${i}`);
      nc.publish(`${subject}.p`, body, { reply: `${inbox}.${i}`, headers: h });
    }
    await consumed;
    const ms = performance.now() - t0;
    if (failed !== undefined) throw new Error(`raw publish failed: ${JSON.stringify(failed)}`);
    if (acked < N) await nc.flush();
    sub.unsubscribe();
    return N / (ms / 1000);
  } finally {
    await jsm.streams.delete(name);
    await nc.close();
  }
}

/** Runs `fn` after a short pause that lets the server finish with the previous run's stream. */
async function settled(fn: () => Promise<number>): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  return fn();
}

/**
 * The suite (see the file comment).
 *
 * @example npm run bench -- transport --json
 */
export const transport: Suite = {
  async run(log) {
    log(`transport: ${fmt(N)} x ${SIZE} B with msgIds, publish + in-order consume, window ${WINDOW}, batch ${BATCH}, ` +
      `${ROUNDS} alternating rounds (median) on ${URL}`);
    await warden(); // warm-up (connections, JIT, server files)
    await raw();
    const w: number[] = [];
    const r: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Which side goes first alternates (and the server gets a pause after each run), so
      // neither side always runs right after the other's stream was written and deleted.
      if (i % 2 === 0) {
        w.push(await settled(warden));
        r.push(await settled(raw));
      } else {
        r.push(await settled(raw));
        w.push(await settled(warden));
      }
      log(`  round ${i + 1}: warden ${fmt(w.at(-1)!)}/s  raw ${fmt(r.at(-1)!)}/s`);
    }
    const wardenMsgsPerSec = median(w);
    const rawMsgsPerSec = median(r);
    const ratio = wardenMsgsPerSec / rawMsgsPerSec;
    return {
      rows: [
        ['raw NATS client (pipelined core publish + PubAck inbox, ordered consumer), msgs/s', fmt(rawMsgsPerSec)],
        ['warden JetStreamTransport (publish + openReader), msgs/s', fmt(wardenMsgsPerSec)],
        ['ratio (goal >= 0.9)', ratio.toFixed(3)],
      ],
      figures: { wardenMsgsPerSec: Math.round(wardenMsgsPerSec), rawMsgsPerSec: Math.round(rawMsgsPerSec), ratio: Number(ratio.toFixed(3)) },
    };
  },
};
