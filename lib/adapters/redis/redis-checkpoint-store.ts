/**
 * `RedisCheckpointStore`: the production `CheckpointStore`, on Redis (standalone, Sentinel or
 * Cluster) through ioredis. It keeps the invariants of `lib/checkpoint/checkpoint-store.ts`
 * (the contract suite in `test/contract/checkpoint-store.contract.ts` runs the same cases
 * against it and the in-memory twin) as follows:
 *
 *  1. Layout: a partition is three hashes sharing the hash tag `{<operator>/<partition>}`, so they
 *     live in one Cluster slot: `<prefix>:{op/p}:meta` (fields `epoch`, `seq`, `wid`, `body` =
 *     sealed `CheckpointMeta`), `<prefix>:{op/p}:actors` (actor key -> sealed `ActorEntry`) and
 *     `<prefix>:{op/p}:claim` (fields `epoch`, `key`: the claimed epoch and the record key, which
 *     `clear` keeps and `drop` removes).
 *  2. Atomic writes (port invariant 1): one Lua script per write (`lua.ts`, EVALSHA through
 *     ioredis `defineCommand`) checks the fencing, HSETs the entries, HDELs the removed keys and
 *     sets the meta, with `actorCount` taken by HLEN after the changes. Everything that can fail
 *     on the client (serialising snapshots) happens before the script is sent. Entries are
 *     sealed a chunk at a time, with a turn of the event loop between chunks, and every chunk but
 *     the last is sent ahead to a staging hash the script takes in (staging.ts; lua.ts invariant 6),
 *     so a large write holds the loop for one chunk at a time, not for the whole command (the
 *     values handed to `write` must not change meanwhile).
 *  3. Fencing (port invariants 2 and 3) is decided inside the script against the stored epoch
 *     and seq, and reported as `CheckpointFencedError` with the same messages and details as the
 *     in-memory store.
 *  4. Entries are sealed with the shared codec (`sealEntry`: SHA-1 + JSON), so they verify in any
 *     implementation; every read verifies them (`openEntry`) and a mismatch rejects with
 *     `CHECKPOINT_CORRUPT` naming `<operator>/<partition>#<key|meta>` (port invariant 5).
 *  5. `readActors` scans with HSCAN (never one unbounded reply); the meta's write id is read
 *     before and after the scan, and a scan a write landed in is retried, then done with one
 *     HGETALL, so it never returns a mix of two writes.
 *  6. Every method returns a promise and reports every failure by rejecting it; Redis errors
 *     become `WardenError`s (`errors.ts`), with no credential in any message or log line.
 *  7. The store owns the client only if it created it: `close()` quits that client and leaves a
 *     client passed in as `redis` open. A client it creates reconnects forever with bounded,
 *     jittered exponential backoff; a command waiting through more than `maxRetriesPerRequest`
 *     reconnects, or longer than `commandTimeoutMs`, rejects (the partition worker retries its
 *     checkpoint at the next trigger).
 */
import { randomBytes } from 'node:crypto';
import { SystemClock, type Clock } from '../../core/clock.js';
import { CheckpointFencedError, WardenError, ConfigError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/logger.js';
import {
  scopeId,
  type ActorEntry,
  type Claim,
  type CheckpointMeta,
  type CheckpointScope,
  type CheckpointStore,
  type CheckpointWrite,
  type WriteResult,
} from '../../checkpoint/checkpoint-store.js';
import { openEntry, openSettled } from '../../checkpoint/codec.js';
import { sealAndStage, type SealedEntries } from './staging.js';
import { createClient, type RedisCheckpointStoreOptions, type ScriptedClient } from './client.js';
import { storeClosedError, translateRedisError, type RedisErrorContext } from './errors.js';
import { CLAIM_COMMAND, CLAIM_SCRIPT, CLEAR_COMMAND, CLEAR_SCRIPT, WRITE_COMMAND, WRITE_SCRIPT } from './lua.js';

export { backoff, type RedisCheckpointStoreOptions, type RedisConnectionOptions, type RedisRetryOptions } from './client.js';

interface Keys {
  meta: string;
  actors: string;
  claim: string;
}

const FENCED = /^WARDEN_FENCED (epoch|seq|claim) (\S+)/;

function isNonNegativeInteger(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The numeric options: each a finite number in its range, or a `ConfigError` naming it. */
function checkNumbers(o: RedisCheckpointStoreOptions): void {
  const rules: Array<[keyof RedisCheckpointStoreOptions, number, boolean]> = [
    ['connectTimeoutMs', 1, false], ['commandTimeoutMs', 1, false], ['maxRetriesPerRequest', 0, true], ['scanCount', 1, true], ['scanAttempts', 1, true],
  ];
  for (const [field, min, integer] of rules) {
    const v = o[field];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      throw new ConfigError(field, `must be a finite ${integer ? 'integer' : 'number'} >= ${min}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v)}`);
    }
  }
}

/**
 * A `CheckpointStore` on Redis: one Lua script per atomic partition write, epoch and sequence
 * fencing in the script, SHA-1 sealed entries, hash-tagged keys that work on Redis Cluster.
 *
 * @example
 * const store = await RedisCheckpointStore.connect({ url: process.env.WARDEN_REDIS_URL });
 * const node = await startNode({ pipeline, transport, checkpointStore: store });
 * // ...
 * await node.stop();
 * await store.close();
 */
export class RedisCheckpointStore implements CheckpointStore {
  /** Writes accepted by this store instance, for tests and metrics. */
  writes = 0;

  private readonly client: ScriptedClient;
  private readonly owned: boolean;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly target: string;
  private readonly secrets: string[];
  /** `connect()` is waiting for the first connection: its errors reject it and are not logged. */
  private connecting = false;
  private readonly scanCount: number;
  private readonly scanAttempts: number;
  private readonly writerId = randomBytes(6).toString('hex');
  private writeCounter = 0;
  private closed = false;
  private lastConnectError: Error | undefined;

  /**
   * Creates the store. A client it creates connects on first use (commands queue until it is
   * ready); `RedisCheckpointStore.connect` connects first and fails fast.
   *
   * @example
   * const store = new RedisCheckpointStore({ url: 'redis://127.0.0.1:6379', keyPrefix: 'shop' });
   */
  constructor(options: RedisCheckpointStoreOptions = {}) {
    checkNumbers(options);
    this.prefix = options.keyPrefix ?? 'warden';
    if (this.prefix.includes('{') || this.prefix.includes('}')) {
      throw new ConfigError('keyPrefix', 'may not contain { or } (they would break the hash tag that keeps a partition in one slot)');
    }
    const created = createClient(options);
    this.client = created.client;
    this.owned = created.owned;
    this.target = created.target;
    this.secrets = created.secrets;
    this.clock = options.clock ?? new SystemClock();
    this.logger = (options.logger ?? createLogger()).child({ component: 'redis-checkpoint-store', target: this.target });
    this.scanCount = options.scanCount ?? 1000;
    this.scanAttempts = options.scanAttempts ?? 3;
    this.client.defineCommand(WRITE_COMMAND, { numberOfKeys: 4, lua: WRITE_SCRIPT });
    this.client.defineCommand(CLAIM_COMMAND, { numberOfKeys: 2, lua: CLAIM_SCRIPT });
    this.client.defineCommand(CLEAR_COMMAND, { numberOfKeys: 3, lua: CLEAR_SCRIPT });
    if (this.owned) this.watch();
  }

  /**
   * Creates the store and waits until its client is connected; rejects (with the URL redacted)
   * if it cannot connect within `connectTimeoutMs` and the allowed reconnect attempts.
   *
   * @example
   * const store = await RedisCheckpointStore.connect({ url: 'rediss://app:pw@cache:6380', connectTimeoutMs: 2000 });
   */
  static async connect(options: RedisCheckpointStoreOptions = {}): Promise<RedisCheckpointStore> {
    const store = new RedisCheckpointStore(options);
    store.connecting = true; // a failed first connect is the rejection, not also a warning in the log
    try {
      await store.ready();
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    } finally {
      store.connecting = false;
    }
    return store;
  }

  /**
   * The keys of a scope (exposed for tests, tooling and the cluster-slot check).
   *
   * @example
   * store.keysOf({ operator: 'sessions', partition: 3 });
   * // { meta: 'warden:{sessions/3}:meta', actors: 'warden:{sessions/3}:actors', claim: 'warden:{sessions/3}:claim' }
   */
  keysOf(scope: CheckpointScope): Keys {
    const base = `${this.prefix}:{${scopeId(scope)}}`;
    return { meta: `${base}:meta`, actors: `${base}:actors`, claim: `${base}:claim` };
  }

  async claim(scope: CheckpointScope, epoch?: number): Promise<Claim> {
    this.ensureOpen('claim');
    const id = scopeId(scope);
    if (epoch !== undefined && (!isNonNegativeInteger(epoch) || epoch === 0)) {
      throw new WardenError('VALIDATION', `claim of ${id} refused: epoch must be a positive integer, got ${String(epoch)}`, { nonRetryable: true, details: { scope: id, epoch } });
    }
    const keys = this.keysOf(scope);
    let reply: [string, string];
    try {
      reply = await this.client[CLAIM_COMMAND](keys.claim, keys.meta, epoch === undefined ? '' : String(epoch), randomBytes(16).toString('hex'));
    } catch (err) {
      const m = err instanceof Error ? FENCED.exec(err.message) : null;
      if (m?.[1] === 'claim') {
        const storedEpoch = Number(m[2]);
        throw new CheckpointFencedError(`claim of ${id} refused: epoch ${String(epoch)} is not newer than claimed epoch ${storedEpoch}`, { scope: id, epoch, storedEpoch });
      }
      throw translateRedisError(err, this.ctx('claim', id));
    }
    return { epoch: Number(reply[0]), recordKey: String(reply[1]) };
  }

  async readClaim(scope: CheckpointScope): Promise<Claim | undefined> {
    this.ensureOpen('readClaim');
    const [epoch, key] = await this.call('readClaim', scopeId(scope), () => this.client.hmget(this.keysOf(scope).claim, 'epoch', 'key'));
    return epoch && key ? { epoch: Number(epoch), recordKey: key } : undefined;
  }

  async write(cp: CheckpointWrite): Promise<WriteResult> {
    this.ensureOpen('write');
    const id = scopeId(cp.scope);
    if (!isNonNegativeInteger(cp.epoch) || !isNonNegativeInteger(cp.seq)) {
      throw new WardenError('VALIDATION', `checkpoint ${id} refused: epoch and seq must be non-negative integers (epoch ${String(cp.epoch)}, seq ${String(cp.seq)})`, {
        nonRetryable: true,
        details: { scope: id, epoch: cp.epoch, seq: cp.seq },
      });
    }
    const actorsSeq = cp.actorsSeq ?? cp.seq;
    if (!isNonNegativeInteger(actorsSeq) || actorsSeq > cp.seq) {
      throw new WardenError('VALIDATION', `checkpoint ${id} refused: actorsSeq must be an integer in 0..seq (${cp.seq}), got ${String(cp.actorsSeq)}`, {
        nonRetryable: true,
        details: { scope: id, seq: cp.seq, actorsSeq: cp.actorsSeq },
      });
    }
    const removed = cp.removed ?? [];
    // The meta JSON around actorCount: JSON.stringify of the whole CheckpointMeta, in its key order.
    const head: Omit<CheckpointMeta, 'actorCount' | 'writtenAtMs'> = {
      scope: { ...cp.scope },
      seq: cp.seq,
      epoch: cp.epoch,
      machineVersion: cp.machineVersion,
      outbox: cp.outbox,
      timers: cp.timers ?? [],
      calls: cp.calls ?? [],
    };
    let before: string;
    try {
      before = `${JSON.stringify(head).slice(0, -1)},"actorCount":`;
    } catch (err) {
      throw new WardenError('VALIDATION', `checkpoint ${id} meta is not serialisable: ${(err as Error).message}`, { cause: err, nonRetryable: true, details: { scope: id } });
    }
    const keys = this.keysOf(cp.scope);
    const wid = `${this.writerId}:${++this.writeCounter}`;
    // Invariant 2: what can fail on the client fails before the script is sent; a large write
    // stages its entries ahead, chunk by chunk (staging.ts).
    const staging = `${keys.actors}:staging:${wid}`;
    let sealed: SealedEntries;
    try {
      sealed = await sealAndStage(this.client, staging, id, cp.actors, cp.machineVersion, actorsSeq);
    } catch (err) {
      throw err instanceof WardenError ? err : this.fencedOrTranslated(err, cp, id);
    }
    const { inline, staged } = sealed;
    let bytes = sealed.bytes;
    const after = `,"writtenAtMs":${JSON.stringify(this.clock.now())}}`;
    let count: number;
    try {
      const reply = await this.client[WRITE_COMMAND](keys.meta, keys.actors, keys.claim, staging, String(cp.epoch), String(cp.seq), wid, before, after, inline.length / 2, ...inline, ...removed);
      count = Number(reply);
    } catch (err) {
      if (staged) this.client.del(staging).catch(() => undefined);
      throw this.fencedOrTranslated(err, cp, id);
    }
    bytes += 40 + before.length + String(count).length + after.length;
    this.writes++;
    return { seq: cp.seq, epoch: cp.epoch, bytes };
  }

  async readMeta(scope: CheckpointScope): Promise<CheckpointMeta | undefined> {
    this.ensureOpen('readMeta');
    const id = scopeId(scope);
    const [body, epoch, seq] = await this.call('readMeta', id, () => this.client.hmget(this.keysOf(scope).meta, 'body', 'epoch', 'seq'));
    if (body === null || body === undefined) {
      if (epoch === null || epoch === undefined) return undefined;
      throw corrupt(`${id}#meta`, 'has fencing fields but no body');
    }
    const meta = openEntry<CheckpointMeta>(body, `${id}#meta`);
    // The fencing fields and the sealed body are written together; disagreeing, one was altered.
    if (String(meta.epoch) !== epoch || String(meta.seq) !== seq) {
      throw corrupt(`${id}#meta`, `fencing fields (epoch ${String(epoch)}, seq ${String(seq)}) disagree with its body`);
    }
    return meta;
  }

  async readActor(scope: CheckpointScope, key: string): Promise<ActorEntry | undefined> {
    this.ensureOpen('readActor');
    const id = scopeId(scope);
    const sealed = await this.call('readActor', id, () => this.client.hget(this.keysOf(scope).actors, key));
    return sealed === null ? undefined : openEntry<ActorEntry>(sealed, `${id}#${key}`);
  }

  /** One `HMGET` for all of `keys`. */
  async readActorsOf(scope: CheckpointScope, keys: readonly string[]): Promise<Array<PromiseSettledResult<ActorEntry | undefined>>> {
    this.ensureOpen('readActorsOf');
    const id = scopeId(scope);
    if (keys.length === 0) return [];
    const sealed = await this.call('readActorsOf', id, () => this.client.hmget(this.keysOf(scope).actors, ...keys));
    return keys.map((key, i) => openSettled<ActorEntry>(sealed[i] ?? null, `${id}#${key}`));
  }

  async readActors(scope: CheckpointScope): Promise<ActorEntry[]> {
    this.ensureOpen('readActors');
    const id = scopeId(scope);
    const keys = this.keysOf(scope);
    let raw: Map<string, string> | undefined;
    // Invariant 5: a scan is kept only if no write landed while it ran.
    for (let attempt = 0; attempt < this.scanAttempts && raw === undefined; attempt++) {
      raw = await this.call('readActors', id, async () => {
        const wid0 = await this.client.hget(keys.meta, 'wid');
        const found = new Map<string, string>();
        let cursor = '0';
        do {
          const [next, flat] = await this.client.hscan(keys.actors, cursor, 'COUNT', this.scanCount);
          for (let i = 0; i + 1 < flat.length; i += 2) found.set(flat[i]!, flat[i + 1]!);
          cursor = next;
        } while (cursor !== '0');
        const wid1 = await this.client.hget(keys.meta, 'wid');
        return wid0 === wid1 ? found : undefined;
      });
    }
    if (raw === undefined) {
      const all = await this.call('readActors', id, () => this.client.hgetall(keys.actors));
      raw = new Map(Object.entries(all));
    }
    return [...raw].map(([key, sealed]) => openEntry<ActorEntry>(sealed, `${id}#${key}`));
  }

  async clear(scope: CheckpointScope): Promise<void> {
    this.ensureOpen('clear');
    const keys = this.keysOf(scope);
    await this.call('clear', scopeId(scope), () => this.client[CLEAR_COMMAND](keys.meta, keys.actors, keys.claim, randomBytes(16).toString('hex')));
  }

  async drop(scope: CheckpointScope): Promise<void> {
    this.ensureOpen('drop');
    const keys = this.keysOf(scope);
    await this.call('drop', scopeId(scope), () => this.client.del(keys.meta, keys.actors, keys.claim));
  }

  /** Quits the client if the store created it (a client passed in stays open). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.owned) return;
    try {
      if (this.client.status === 'ready') await this.client.quit();
      else this.client.disconnect();
    } catch {
      this.client.disconnect();
    }
  }

  /**
   * Test hook: damages the stored bytes of an entry (`key` omitted = the meta body), as the
   * in-memory store's `corrupt` does. Nothing happens if the entry does not exist.
   *
   * @example
   * await store.corrupt({ operator: 'orders', partition: 0 }, 'alice');
   * await store.readActor({ operator: 'orders', partition: 0 }, 'alice'); // rejects CHECKPOINT_CORRUPT
   */
  async corrupt(scope: CheckpointScope, key?: string): Promise<void> {
    this.ensureOpen('corrupt');
    const keys = this.keysOf(scope);
    const [hash, field] = key === undefined ? [keys.meta, 'body'] : [keys.actors, key];
    await this.call('corrupt', scopeId(scope), async () => {
      const v = await this.client.hget(hash, field);
      if (v !== null) await this.client.hset(hash, field, v.slice(0, -2) + 'xx');
    });
  }

  // --- internals -----------------------------------------------------------------------------

  /** Resolves once the owned client is ready; rejects with a translated, redacted error. */
  private async ready(): Promise<void> {
    if (this.client.status === 'ready') return;
    try {
      if (this.client.status === 'wait') await this.client.connect();
      else await this.client.ping();
    } catch (err) {
      // ioredis rejects with a bare "Connection is closed."; the error event before it says why.
      throw translateRedisError(this.lastConnectError ?? err, this.ctx('connect'));
    }
  }

  private watch(): void {
    this.client.on('error', (err: Error) => {
      this.lastConnectError = err;
      if (this.connecting) return;
      const e = translateRedisError(err, this.ctx('connection'));
      this.logger.warn({ code: e.code, reason: e.details.reason, error: e.message }, 'redis client error');
    });
    this.client.on('reconnecting', (delay: unknown) => this.logger.info({ delayMs: delay }, 'redis reconnecting'));
    this.client.on('ready', () => {
      this.lastConnectError = undefined;
      this.logger.debug({}, 'redis ready');
    });
  }

  private ensureOpen(op: string): void {
    if (this.closed) throw storeClosedError(op, this.target);
  }

  private ctx(op: string, scope?: string): RedisErrorContext {
    return scope === undefined ? { op, target: this.target, secrets: this.secrets } : { op, scope, target: this.target, secrets: this.secrets };
  }

  private async call<T>(op: string, scope: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw translateRedisError(err, this.ctx(op, scope));
    }
  }

  private fencedOrTranslated(err: unknown, cp: CheckpointWrite, id: string): WardenError {
    const m = err instanceof Error ? FENCED.exec(err.message) : null;
    if (m?.[1] === 'epoch') {
      const storedEpoch = Number(m[2]);
      return new CheckpointFencedError(`checkpoint ${id} refused: epoch ${cp.epoch} is older than stored epoch ${storedEpoch}`, {
        scope: id, epoch: cp.epoch, storedEpoch,
      });
    }
    if (m?.[1] === 'seq') {
      const storedSeq = Number(m[2]);
      return new CheckpointFencedError(`checkpoint ${id} refused: seq ${cp.seq} goes backwards from stored seq ${storedSeq}`, {
        scope: id, seq: cp.seq, storedSeq,
      });
    }
    return translateRedisError(err, this.ctx('write', id));
  }
}

function corrupt(what: string, why: string): WardenError {
  return new WardenError('CHECKPOINT_CORRUPT', `checkpoint entry ${what} ${why}`, { nonRetryable: true, details: { what } });
}

