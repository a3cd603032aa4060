/**
 * The guarded calls of a partition's actors (`fromCall`, lib/actor/calls.ts): which are pending,
 * which this incarnation issued, and which wait until the log has been read far enough.
 *
 * Invariants (worker invariant 12):
 *  1. A call is issued at most once per incarnation, with the idempotency key
 *     `<stage>:<key>:<callId>`; its result or final error goes to the log (`onSettled`), never
 *     straight to the actor.
 *  2. A call started while the worker replays the part of the log that existed when it started
 *     (`settledSeq`) is issued only once that part is applied: its result may be in it.
 *  3. An issued call whose actor left the state that invoked it has its signal aborted.
 *  4. The pending calls of every actor, in memory or not, are listed for the cut (`entries`);
 *     a restored list names the keys to load once the log is read (`takeReloads`).
 */
import type { ActorHost } from '../actor/actor-host.js';
import { callErrorOf, type CallRequest, type CallResult } from '../actor/calls.js';
import type { Json } from '../core/envelope.js';
import { WardenError } from '../core/errors.js';
import { callIdempotencyKey } from '../core/ids.js';
import type { CallIndexEntry } from '../checkpoint/checkpoint-store.js';

export class CallRunner {
  /** Pending calls by key (for the cut). */
  private readonly index = new Map<string, Set<string>>();
  /** Calls this incarnation issued, by `<key>/<id>`. */
  private readonly issued = new Map<string, AbortController>();
  /** Issued calls still running, by key. */
  private readonly inflight = new Map<string, Set<string>>();
  /** Calls waiting for the log to be read up to `settledSeq` (invariant 2). */
  private readonly deferred = new Map<string, { key: string; req: CallRequest }>();
  private reloads = new Set<string>();
  /** The partition's last sequence in the log when this incarnation started. */
  settledSeq = 0;
  issuedCount = 0;

  constructor(
    private readonly stageName: string,
    private readonly onSettled: (key: string, result: CallResult) => void,
  ) {}

  /** Invariant 4: the pending calls a restored cut listed. */
  restore(entries: readonly CallIndexEntry[]): void {
    for (const c of entries) {
      let ids = this.index.get(c.key);
      if (!ids) this.index.set(c.key, (ids = new Set()));
      ids.add(c.id);
      this.reloads.add(c.key);
    }
  }

  get pendingCount(): number {
    let n = 0;
    for (const ids of this.index.values()) n += ids.size;
    return n;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** Invariant 4. */
  entries(): CallIndexEntry[] {
    const out: CallIndexEntry[] = [];
    for (const [key, ids] of this.index) for (const id of ids) out.push({ key, id });
    return out;
  }

  /** Keys listed by the restored cut that must be loaded so their calls are issued; empty until the log is read (invariant 2). */
  takeReloads(appliedSeq: number): string[] {
    if (this.reloads.size === 0 || appliedSeq < this.settledSeq) return [];
    const keys = [...this.reloads].filter((key) => this.index.has(key));
    this.reloads = new Set();
    return keys;
  }

  /** After a step of `key`'s actor: index its pending calls, abort the ones it left, run the new ones. */
  sync(key: string, host: ActorHost, appliedSeq: number): void {
    const fresh = host.takeCallRequests();
    const pending = host.pendingCalls();
    const ids = new Set(pending.map((r) => r.id));
    if (ids.size > 0) this.index.set(key, ids);
    else this.index.delete(key);
    const running = this.inflight.get(key);
    if (running) {
      for (const id of running) {
        if (ids.has(id)) continue;
        this.issued.get(`${key}/${id}`)?.abort(); // invariant 3
        running.delete(id);
      }
      if (running.size === 0) this.inflight.delete(key);
    }
    for (const req of fresh) {
      const k = `${key}/${req.id}`;
      if (this.issued.has(k)) continue; // invariant 1: its result is on its way
      if (appliedSeq < this.settledSeq) this.deferred.set(k, { key, req }); // invariant 2
      else this.issue(key, req);
    }
  }

  /** Invariant 2: once the log is read up to `settledSeq`, the deferred calls still pending are issued. */
  caughtUp(appliedSeq: number): void {
    if (this.deferred.size === 0 || appliedSeq < this.settledSeq) return;
    for (const [k, { key, req }] of this.deferred) {
      this.deferred.delete(k);
      if (this.index.get(key)?.has(req.id)) this.issue(key, req);
    }
  }

  /** Aborts every call this incarnation issued (the worker ended). */
  abortAll(): void {
    for (const ac of this.issued.values()) ac.abort();
  }

  private issue(key: string, req: CallRequest): void {
    const k = `${key}/${req.id}`;
    const ac = new AbortController();
    this.issued.set(k, ac);
    this.deferred.delete(k);
    this.issuedCount++;
    let running = this.inflight.get(key);
    if (!running) this.inflight.set(key, (running = new Set()));
    running.add(req.id);
    const done = (): void => {
      running.delete(req.id);
      if (running.size === 0 && this.inflight.get(key) === running) this.inflight.delete(key);
    };
    let call: Promise<unknown>;
    try {
      call = req.target.call(req.input, { idempotencyKey: callIdempotencyKey(this.stageName, key, req.id), signal: ac.signal });
    } catch (err) {
      call = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    call.then(
      (output) => {
        done();
        let json: Json;
        try {
          json = JSON.parse(JSON.stringify(output ?? null)) as Json;
        } catch (err) {
          this.onSettled(key, { call: req.id, ok: false, error: callErrorOf(new WardenError('VALIDATION', `output of call ${req.name} is not a JSON value: ${(err as Error).message}`)) });
          return;
        }
        this.onSettled(key, { call: req.id, ok: true, output: json });
      },
      (err: unknown) => {
        done();
        this.onSettled(key, { call: req.id, ok: false, error: callErrorOf(err) });
      },
    );
  }
}
