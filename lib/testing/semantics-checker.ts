/**
 * `SemanticsChecker`: proves processing guarantees from what reached a sink (the idea of
 * Flink's SemanticsCheckMapper). Every test event carries a key and a per-key sequence; the
 * checker is told what was sent and what was observed, and reports what was lost, what took
 * effect more than once, and what arrived out of order.
 */

/** The checker's verdict. */
export interface SemanticsReport {
  /** Distinct events sent. */
  sent: number;
  /** Observations in all (duplicates included). */
  observed: number;
  /** Distinct sent events observed at least once. */
  applied: number;
  /** Sent events never observed. */
  lost: number;
  /** Extra observations of events already observed. */
  duplicated: number;
  /** Observations whose sequence is lower than an earlier one of the same key in the same lane. */
  outOfOrder: number;
  /** Observations of events that were never sent. */
  unexpected: number;
  /** Up to 10 examples of each problem, as `key#seq`. */
  examples: { lost: string[]; duplicated: string[]; outOfOrder: string[]; unexpected: string[] };
}

/**
 * @example
 * const checker = new SemanticsChecker();
 * checker.sent('alice', 1); checker.sent('alice', 2);
 * checker.observe('alice', 1); checker.observe('alice', 2);
 * checker.report(); // { lost: 0, duplicated: 0, outOfOrder: 0, ... }
 */
export class SemanticsChecker {
  private readonly expected = new Set<string>();
  private readonly seen = new Map<string, number>();
  private readonly lastInLane = new Map<string, number>();
  private observations = 0;
  private outOfOrder = 0;
  private readonly ooExamples: string[] = [];

  /** Records that event `seq` of `key` was sent. */
  sent(key: string, seq: number): void {
    this.expected.add(`${key}#${seq}`);
  }

  /**
   * Records that event `seq` of `key` took effect. Order is checked per key within `lane`
   * (for example one sink aggregate); pass the order in which the lane applied them.
   */
  observe(key: string, seq: number, lane = ''): void {
    const id = `${key}#${seq}`;
    this.observations++;
    this.seen.set(id, (this.seen.get(id) ?? 0) + 1);
    const laneKey = `${lane}\u0000${key}`;
    const last = this.lastInLane.get(laneKey);
    if (last !== undefined && seq < last) {
      this.outOfOrder++;
      if (this.ooExamples.length < 10) this.ooExamples.push(`${id} after #${last}${lane ? ` in ${lane}` : ''}`);
    }
    if (last === undefined || seq > last) this.lastInLane.set(laneKey, seq);
  }

  report(): SemanticsReport {
    const lost: string[] = [];
    const duplicated: string[] = [];
    const unexpected: string[] = [];
    let dupCount = 0;
    let applied = 0;
    for (const id of this.expected) {
      const n = this.seen.get(id) ?? 0;
      if (n === 0) lost.push(id);
      else applied++;
    }
    for (const [id, n] of this.seen) {
      if (n > 1) {
        dupCount += n - 1;
        duplicated.push(id);
      }
      if (!this.expected.has(id)) unexpected.push(id);
    }
    return {
      sent: this.expected.size,
      observed: this.observations,
      applied,
      lost: lost.length,
      duplicated: dupCount,
      outOfOrder: this.outOfOrder,
      unexpected: unexpected.length,
      examples: { lost: lost.slice(0, 10), duplicated: duplicated.slice(0, 10), outOfOrder: [...this.ooExamples], unexpected: unexpected.slice(0, 10) },
    };
  }
}
