/**
 * The outbox of a partition worker (lib/worker/outbox.ts) against a scripted log on a simulated
 * clock. Titles cite its invariants ("outbox invariant N").
 */
import test from 'ava';
import { exponentialBackoff } from '../../lib/core/backoff.js';
import { SimulatedClock, flushMicrotasks } from '../../lib/core/clock.js';
import { WardenError } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/logger.js';
import type { PubAck, PublishOptions, Transport } from '../../lib/transport/transport.js';
import { Outbox } from '../../lib/worker/outbox.js';

/** A log that answers "no responders" while `down` (a stream electing a leader), and stores otherwise. */
class ElectingLog {
  down = false;
  readonly attempts: string[] = [];
  readonly stored: string[] = [];

  publish(_subject: string, _data: Uint8Array, options: PublishOptions = {}): Promise<PubAck> {
    const id = options.msgId ?? '?';
    this.attempts.push(id);
    if (this.down) return Promise.reject(new WardenError('NO_STREAM_FOR_SUBJECT', 'no stream captures subject "out.0"'));
    if (!this.stored.includes(id)) this.stored.push(id);
    return Promise.resolve({ stream: 'out', seq: this.stored.indexOf(id) + 1, duplicate: false });
  }
}

async function settle(clock: SimulatedClock, ms = 0): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
  if (ms > 0) await clock.advanceAsync(ms);
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

function rig() {
  const clock = new SimulatedClock();
  const log = new ElectingLog();
  const outbox = new Outbox({
    transport: log as unknown as Transport, clock, logger: silentLogger, maxSize: 100, retry: exponentialBackoff({ minMs: 10, maxMs: 1_000 }),
  });
  const publish = (id: string): void => outbox.publish({ subject: 'out.0', msgId: id, body: '{}' });
  return { clock, log, outbox, publish };
}

test('outbox invariant 2: while the log answers "no responders", one publish goes per round, and once it is back every output lands in publish order', async (t) => {
  const { clock, log, outbox, publish } = rig();
  publish('a:1');
  await settle(clock);
  t.deepEqual(log.stored, ['a:1'], 'sent at once while the log takes publishes');

  log.down = true;
  for (const id of ['a:2', 'a:3', 'a:4']) publish(id);
  await settle(clock);
  publish('a:5'); // after the failure: held
  await settle(clock);
  const sentBeforeHold = log.attempts.length;
  for (let i = 0; i < 12; i++) await settle(clock, 1_000); // 12 s of "no responders"
  const rounds = log.attempts.length - sentBeforeHold;
  t.true(rounds >= 12 && rounds <= 20, `one probe per round (10 ms doubling to 1 s: about 18 in 12 s): ${rounds}`);
  t.true(log.attempts.slice(sentBeforeHold).every((id) => id === 'a:2'), 'the probe is the oldest pending output');

  log.down = false;
  publish('a:6'); // made while held: waits its turn
  await settle(clock, 1_000); // at most one backoff step
  t.deepEqual(log.stored, ['a:1', 'a:2', 'a:3', 'a:4', 'a:5', 'a:6'], 'in publish order');
  t.is(outbox.size, 0);
  t.true(await outbox.settled());
});

test('outbox invariant 2: an output published after the log is back does not overtake the ones held before it', async (t) => {
  const { clock, log, publish } = rig();
  log.down = true;
  publish('k:1');
  await settle(clock);
  log.down = false; // the leader is elected before the next round
  publish('k:2');
  publish('k:3');
  await settle(clock);
  t.deepEqual(log.stored, [], 'nothing overtakes k:1 while it waits for its retry');
  await settle(clock, 10);
  t.deepEqual(log.stored, ['k:1', 'k:2', 'k:3']);
});

test('outbox invariant 3: a held outbox that closes sends nothing more and leaves no timer', async (t) => {
  const { clock, log, outbox, publish } = rig();
  log.down = true;
  publish('c:1');
  await settle(clock);
  outbox.close();
  const attempts = log.attempts.length;
  log.down = false;
  await settle(clock, 5_000);
  t.is(log.attempts.length, attempts);
  t.is(clock.pending, 0);
});
