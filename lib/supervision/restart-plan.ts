/**
 * Pending restarts. A restart plan is a group of children (by the strategy) that start again, in
 * spec order, when its timer fires on the clock. A child is in at most one plan; taking it into
 * a new plan (or terminating it) takes it out of the old one, and a plan left empty is cancelled.
 */
import type { Clock } from '../core/clock.js';
import type { ChildRecord, RestartPlan } from './child.js';
import type { Strategy } from './types.js';

/**
 * The children that restart when `trigger` must: one-for-one the child alone; one-for-all every
 * child whose spec is kept; rest-for-one the child and the kept ones after it. In spec order.
 * As OTP's `restart_multiple_children`, that includes a transient child that had exited normally
 * (it starts again with its group); children stopped through `terminateChild` are left out.
 */
export function restartGroup(strategy: Strategy, children: readonly ChildRecord[], trigger: ChildRecord): ChildRecord[] {
  const active = (rec: ChildRecord): boolean => rec === trigger || !rec.held;
  switch (strategy) {
    case 'one-for-one':
      return [trigger];
    case 'one-for-all':
      return children.filter(active);
    case 'rest-for-one':
      return children.slice(Math.max(0, children.indexOf(trigger))).filter(active);
  }
}

/** The pending restart plans of one supervisor, as timers on its clock. */
export class RestartPlans {
  private readonly pending = new Set<RestartPlan>();

  constructor(private readonly clock: Clock) {}

  /** Puts `members` (taken out of older plans) into a new plan that calls `fire` after `delayMs`. */
  schedule(trigger: ChildRecord, members: ChildRecord[], delayMs: number, fire: (plan: RestartPlan) => void): RestartPlan {
    const plan: RestartPlan = { trigger: trigger.spec.id, members: [...members], timer: undefined };
    for (const rec of members) {
      this.detach(rec);
      rec.plan = plan;
      rec.status = 'restarting';
    }
    this.pending.add(plan);
    plan.timer = this.clock.setTimeout(() => {
      plan.timer = undefined;
      fire(plan);
    }, delayMs);
    return plan;
  }

  /** Claims a plan whose timer fired; false if it was cancelled meanwhile. */
  take(plan: RestartPlan): boolean {
    return this.pending.delete(plan);
  }

  /** Takes `rec` out of its plan, if any; a plan left empty is cancelled. */
  detach(rec: ChildRecord): void {
    const plan = rec.plan;
    rec.plan = undefined;
    if (!plan) return;
    plan.members = plan.members.filter((r) => r !== rec);
    if (plan.members.length === 0) this.cancel(plan);
  }

  /** Cancels every pending plan (its members keep their status; the caller settles them). */
  cancelAll(): void {
    for (const plan of [...this.pending]) {
      for (const rec of plan.members) rec.plan = undefined;
      this.cancel(plan);
    }
  }

  private cancel(plan: RestartPlan): void {
    if (plan.timer !== undefined) this.clock.clearTimeout(plan.timer);
    plan.timer = undefined;
    this.pending.delete(plan);
  }
}
