/**
 * The invariants of a chaos run, checked after it from what the pipeline's backends hold:
 *
 *  - no lost inputs: every input sent took effect at the observed stage;
 *  - no duplicated effects: none took effect twice (exactly-once stages);
 *  - in order per key: a key's effects are in the order its inputs were sent;
 *  - no stale writes accepted: in every stream, the outputs of each source partition carry epochs
 *    that never go back (an output of a fenced owner stored after its successor's would);
 *  - liveness: after the last fault is lifted, every input is delivered within the bound;
 *  - recovery time of every fault: from the fault until every input it delayed (one that took
 *    longer than `lateAfterMs` to reach the observed stage) has arrived.
 */
import { SemanticsChecker, type SemanticsReport } from '../lib/testing/semantics-checker.js';
import type { Transport } from '../lib/transport/transport.js';
import type { FaultRecord, InvariantResult } from './report-types.js';

/** Outputs whose epoch is older than one stored before them for the same source partition. */
export async function staleWrites(transport: Transport, streams: readonly string[]): Promise<{ stale: number; examples: string[] }> {
  let stale = 0;
  const examples: string[] = [];
  const dec = new TextDecoder();
  for (const stream of streams) {
    const maxBy = new Map<string, number>();
    const reader = transport.openReader(stream, {});
    try {
      for (let batch = await reader.next(1000, 100); batch.length > 0; batch = await reader.next(1000, 100)) {
        for (const m of batch) {
          let headers: Record<string, string>;
          try {
            headers = (JSON.parse(dec.decode(m.data)) as { headers?: Record<string, string> }).headers ?? {};
          } catch {
            continue;
          }
          const epoch = Number(headers['warden-epoch'] ?? Number.NaN);
          if (!Number.isFinite(epoch)) continue; // not an output (an input, a record)
          const source = (headers['warden-source'] ?? '').split('@')[0]!;
          const max = maxBy.get(source) ?? 0;
          if (epoch < max) {
            stale++;
            if (examples.length < 10) examples.push(`${stream} seq ${m.seq}: ${source} epoch ${epoch} after epoch ${max}`);
          } else maxBy.set(source, epoch);
        }
      }
    } finally {
      await reader.close();
    }
  }
  return { stale, examples };
}

/**
 * When each input's effect first reached `stream` (the observed stage's input log): the time the
 * log stored the first message of each key and sequence (`seqOf` reads the sequence from its payload).
 */
export async function deliveries(transport: Transport, stream: string, seqOf: (payload: Record<string, unknown>) => number | undefined): Promise<Map<string, number>> {
  const first = new Map<string, number>();
  const dec = new TextDecoder();
  const reader = transport.openReader(stream, {});
  try {
    for (let batch = await reader.next(1000, 100); batch.length > 0; batch = await reader.next(1000, 100)) {
      for (const m of batch) {
        let env: { key?: unknown; payload?: Record<string, unknown> };
        try {
          env = JSON.parse(dec.decode(m.data)) as typeof env;
        } catch {
          continue;
        }
        const seq = env.payload ? seqOf(env.payload) : undefined;
        if (typeof env.key !== 'string' || seq === undefined) continue;
        const id = `${env.key}#${seq}`;
        if (!first.has(id)) first.set(id, m.timestampMs);
      }
    }
  } finally {
    await reader.close();
  }
  return first;
}

/** The lost, duplicated and out-of-order effects, from what was sent and what each key applied. */
export function effects(sent: ReadonlyMap<string, number>, applied: ReadonlyMap<string, readonly number[]>, ordered: boolean): SemanticsReport {
  const checker = new SemanticsChecker();
  for (const [key, last] of sent) for (let seq = 1; seq <= last; seq++) checker.sent(key, seq);
  for (const [key, seqs] of applied) for (const seq of seqs) checker.observe(key, seq, ordered ? 'stage' : String(seq));
  return checker.report();
}

/** When one input was sent and when its effect reached the observed stage (wall clock, ms). */
export interface InputTiming {
  sentAt: number;
  /** Undefined: never delivered. */
  deliveredAt: number | undefined;
}

/**
 * The recovery of each fault, from when each input was sent and delivered. An input is late when
 * it took longer than `lateAfterMs` (or never arrived); from `lateAfterMs` after it was sent until
 * it arrived, the pipeline is behind. A stretch of "behind" belongs to a fault when its first late
 * input was sent between `lateAfterMs` before the fault and `graceMs` after the fault was lifted
 * (a killed node's partitions stay without an owner until its leases expire), or when it still
 * runs when the fault starts. A fault recovered when the last stretch that belongs to it ends:
 * every input it delayed has arrived. A fault that delayed nothing recovered after 0 ms; one whose
 * stretch never ends did not recover. Times are relative to `t0` (the start of the workload).
 */
export function recoveries(faults: readonly Omit<FaultRecord, 'recoveryMs'>[], inputs: readonly InputTiming[], o: { lateAfterMs: number; graceMs: number; t0: number }): FaultRecord[] {
  const late = inputs
    .filter((i) => i.deliveredAt === undefined || i.deliveredAt - i.sentAt > o.lateAfterMs)
    .map((i) => ({ sent: i.sentAt - o.t0, to: i.deliveredAt === undefined ? Number.POSITIVE_INFINITY : i.deliveredAt - o.t0 }))
    .sort((a, b) => a.sent - b.sent);
  // Stretches: late inputs whose overdue spans [sent + lateAfterMs, to] overlap, merged.
  const stretches: Array<{ firstSent: number; from: number; to: number }> = [];
  for (const i of late) {
    const last = stretches.at(-1);
    if (last && i.sent + o.lateAfterMs <= last.to) last.to = Math.max(last.to, i.to);
    else stretches.push({ firstSent: i.sent, from: i.sent + o.lateAfterMs, to: i.to });
  }
  return faults.map((f) => {
    const mine = stretches.filter((b) => b.to >= f.atMs && (b.from <= f.atMs || (b.firstSent >= f.atMs - o.lateAfterMs && b.firstSent <= f.endMs + o.graceMs)));
    if (mine.length === 0) return { ...f, recoveryMs: 0 };
    const end = Math.max(...mine.map((b) => b.to));
    return { ...f, recoveryMs: Number.isFinite(end) ? Math.max(0, Math.round(end - f.atMs)) : undefined };
  });
}

/** The p-th percentile of `xs` (nearest rank). */
export function percentile(xs: readonly number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** The invariant table of a run. */
export function verdicts(o: {
  report: SemanticsReport;
  exactlyOnce: boolean;
  ordered: boolean;
  stale: { stale: number; examples: string[] };
  liveness: { deliveredAllAfterMs: number | undefined; boundMs: number };
  faults: readonly FaultRecord[];
  /** When set, a fault that took longer than this to recover fails the invariant. */
  recoveryBoundMs?: number | undefined;
  /** The API's own count of applied idempotency keys, and orders recorded as not charged (`failed`, when the pipeline keeps that count). */
  api?: { effects: number; repeats: number; orders: number; failed?: number } | undefined;
}): InvariantResult[] {
  const { report: r } = o;
  const out: InvariantResult[] = [
    { name: 'no lost inputs', passed: r.lost === 0, value: `${r.lost} lost of ${r.sent}`, ...(r.lost ? { examples: r.examples.lost } : {}) },
    {
      name: 'no duplicated effects',
      passed: !o.exactlyOnce || r.duplicated === 0,
      value: `${r.duplicated} duplicated${o.exactlyOnce ? '' : ' (not checked: not every stage is exactly-once)'}`,
      ...(r.duplicated ? { examples: r.examples.duplicated } : {}),
    },
    {
      name: 'in order per key',
      passed: !o.ordered || r.outOfOrder === 0,
      value: o.ordered ? `${r.outOfOrder} out of order` : 'not checked: effects of a key take different paths',
      ...(r.outOfOrder ? { examples: r.examples.outOfOrder } : {}),
    },
    { name: 'no stale writes accepted', passed: o.stale.stale === 0, value: `${o.stale.stale} outputs of a fenced epoch stored after a newer one`, ...(o.stale.stale ? { examples: o.stale.examples } : {}) },
    {
      name: 'liveness',
      passed: o.liveness.deliveredAllAfterMs !== undefined && o.liveness.deliveredAllAfterMs <= o.liveness.boundMs,
      value: o.liveness.deliveredAllAfterMs === undefined
        ? `inputs still undelivered ${o.liveness.boundMs / 1000} s after the workload ended and every fault was lifted`
        : `every input delivered ${(o.liveness.deliveredAllAfterMs / 1000).toFixed(1)} s after the workload ended and every fault was lifted (bound ${o.liveness.boundMs / 1000} s)`,
    },
  ];
  const bound = o.recoveryBoundMs ?? Number.POSITIVE_INFINITY;
  const unrecovered = o.faults.filter((f) => f.recoveryMs === undefined || f.recoveryMs > bound);
  const times = o.faults.flatMap((f) => (f.recoveryMs === undefined ? [] : [f.recoveryMs]));
  const boundNote = o.recoveryBoundMs === undefined ? '' : ` (bound ${o.recoveryBoundMs} ms)`;
  out.push({
    name: 'recovery time',
    passed: unrecovered.length === 0,
    value: o.faults.length === 0 ? 'no faults' : `${times.length} of ${o.faults.length} recovered; max ${Math.max(0, ...times)} ms, p99 ${percentile(times, 99) ?? '-'} ms${boundNote}`,
    ...(unrecovered.length
      ? { examples: unrecovered.slice(0, 10).map((f) => `${f.kind} ${f.target} at ${f.atMs} ms: ${f.recoveryMs === undefined ? 'never recovered' : `recovered after ${f.recoveryMs} ms`}`) }
      : {}),
  });
  if (o.api) {
    out.push({
      name: 'no duplicated external effects',
      passed: o.api.effects <= o.api.orders,
      value: `${o.api.effects} charges applied for ${o.api.orders} orders (${o.api.repeats} retried requests absorbed by idempotency keys${o.api.failed ? `; ${o.api.failed} orders recorded as not charged: breaker open or out of retries` : ''})`,
    });
  }
  return out;
}
