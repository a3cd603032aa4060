/**
 * The ownership port of a node: which partitions it runs, under which epochs. A node alone owns
 * every partition of its pipeline (the default, no port); in a cluster an implementation in
 * `lib/cluster` decides through leases and tells the node to start and stop partitions.
 *
 * Invariants an implementation keeps:
 *  1. `gain` is called for a partition only while the node may run it, and `lose` before anyone
 *     else may (a handoff: the worker stops gracefully first); after `lose` the partition is not
 *     the node's until the next `gain`.
 *  2. `epochFor` gives every incarnation of a partition's worker an epoch higher than any given
 *     before to anyone, or rejects (`LEASE_LOST`) when the node no longer owns the partition.
 *  3. `valid` turns false no later than the moment another node may own the partition.
 */

/** What an ownership reports, as node events. */
export type OwnershipEvent =
  | { type: 'lease-acquired'; partition: string; epoch: number }
  | { type: 'lease-released'; partition: string }
  | { type: 'lease-lost'; partition: string; error: string }
  /** A renewal failed (the lease store did not answer) while the lease was still valid: tried again at the next renewal. */
  | { type: 'lease-renew-failed'; partition: string; error: string }
  | { type: 'members-changed'; members: string[] };

/** What the node lends its ownership to start and stop partitions. */
export interface PartitionControl {
  gain(stage: string, partition: number): Promise<void>;
  /** Stops the partition's worker (gracefully: final checkpoint, when the lease still allows it). */
  lose(stage: string, partition: number): Promise<void>;
  /** Reports an event to the node's listeners. */
  report(event: OwnershipEvent): void;
}

/** Who owns a partition, for status displays. */
export interface PartitionOwner {
  stage: string;
  partition: number;
  node: string;
  epoch: number;
}

/** The ownership of a node's partitions. */
export interface PartitionOwnership {
  /** This node's id in its cluster. */
  readonly nodeId: string;
  /** Starts deciding; `control` starts and stops partitions. Resolves once the first decisions are made. */
  start(control: PartitionControl): Promise<void>;
  /** Invariant 2. */
  epochFor(stage: string, partition: number): Promise<number>;
  /** Invariant 3: may this node still write for the partition? */
  valid(stage: string, partition: number): boolean;
  /** Every partition's owner as the cluster knows it now. */
  owners(): Promise<PartitionOwner[]>;
  /**
   * The partition's worker stopped writing because `valid` said no (its lease ran out for it,
   * a stalled process): the ownership gives the partition up here and decides again, so it runs
   * again (here or elsewhere) under a new epoch instead of staying down.
   */
  lapsed?(stage: string, partition: number): void;
  /** Hands every owned partition over and leaves. */
  stop(): Promise<void>;
}
