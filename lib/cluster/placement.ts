/**
 * Which live node owns which partition: rendezvous (highest-random-weight) hashing with bounded
 * loads. Every node computes the same answer from the same membership, with no coordinator.
 *
 * Invariants:
 *  1. Deterministic: the same members and partitions give the same assignment on every node,
 *     whatever the order they are listed in.
 *  2. Fair: no node gets more than ceil(partitions / members) partitions.
 *  3. Stable: a partition goes to the member ranking it highest that still has room, so when a
 *     node joins or leaves, mostly the partitions that must move (those of the node that left, a
 *     fair share to the node that joined) move; the bound of invariant 2 can move a few more.
 */
import { hash32 } from '../core/ids.js';

/** The score of `member` for `partition`: the member with the highest score is preferred. */
export function score(member: string, partition: string): number {
  return hash32(`${partition}\u0000${member}`);
}

/**
 * Assigns every partition to one member (invariants 1-3); an empty membership assigns nothing.
 *
 * @example
 * assign(['node-a', 'node-b'], ['shop.orders.0', 'shop.orders.1', 'shop.orders.2']);
 * // Map { 'shop.orders.0' => 'node-b', 'shop.orders.1' => 'node-a', 'shop.orders.2' => 'node-b' }
 */
export function assign(members: readonly string[], partitions: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const nodes = [...new Set(members)].sort();
  if (nodes.length === 0) return out;
  const capacity = Math.ceil(partitions.length / nodes.length);
  const load = new Map(nodes.map((n) => [n, 0]));
  const ranked = [...new Set(partitions)].sort().map((p) => {
    const order = nodes.map((n) => ({ n, s: score(n, p) })).sort((a, b) => b.s - a.s || (a.n < b.n ? -1 : 1));
    return { p, order };
  });
  for (const { p, order } of ranked) {
    const pick = order.find((c) => load.get(c.n)! < capacity) ?? order[0]!;
    out.set(p, pick.n);
    load.set(pick.n, load.get(pick.n)! + 1);
  }
  return out;
}
