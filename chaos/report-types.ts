/**
 * What a chaos run reports (`DIR/report.json`, drawn by `DIR/report.html`): the run, its timeline,
 * its faults with their recovery, and the invariants with their verdicts.
 */

/** One sample of the timeline, taken every `sampleMs` of the run. */
export interface TimelineSample {
  /** Ms since the start of the workload. */
  t: number;
  /** Inputs sent so far. */
  sent: number;
  /** Inputs whose effect reached the observed stage so far. */
  delivered: number;
  /** Inputs per second delivered over the last sample period. */
  throughput: number;
  /** Inputs sent and not yet delivered. */
  lag: number;
}

/** One injected fault. */
export interface FaultRecord {
  /** What was done, e.g. `kill-node`, `pause-node`, `kill-nats-server`. */
  kind: string;
  /** Whom it was done to, e.g. `node 2`, `nats n1`, `redis`. */
  target: string;
  /** Ms since the start of the workload. */
  atMs: number;
  /** When the fault was lifted (a node resumed, a server restarted); equal to `atMs` for an instant fault. */
  endMs: number;
  /** Ms from `atMs` until every input the fault delayed (late by more than the report's `lateAfterMs`) had arrived; 0 if it delayed none; undefined if they never all arrived. */
  recoveryMs: number | undefined;
}

/** One invariant and its verdict. */
export interface InvariantResult {
  /** `no lost inputs`, `no duplicated effects`, `in order per key`, `no stale writes accepted`, `liveness`, `recovery time`. */
  name: string;
  passed: boolean;
  /** The measured value, e.g. `0 lost of 3000`, `lag 0 after 2.1 s (bound 30 s)`. */
  value: string;
  /** Up to 10 examples when it failed. */
  examples?: string[];
}

/** The whole report. */
export interface ChaosReport {
  scenario: string;
  description: string;
  seed: number;
  nodes: number;
  /** Wall-clock time of the start, ISO 8601. */
  startedAt: string;
  durationMs: number;
  sampleMs: number;
  sent: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  staleWritesAccepted: number;
  /** An input counted as delayed by a fault when its effect took longer than this to arrive. */
  lateAfterMs: number;
  /** The longest / 99th percentile of the faults' recovery times; `null` when no fault recovered (none injected, or none came back). */
  recoveryMsMax: number | null;
  recoveryMsP99: number | null;
  /** Every invariant held. */
  passed: boolean;
  faults: FaultRecord[];
  invariants: InvariantResult[];
  timeline: TimelineSample[];
}
