/**
 * References to children (`ChildRef`): what `startChild` resolves to and `child(id)` /
 * `supervisorOf(id)` return. A reference names its child by id in the supervisor that holds it and
 * looks the child up at every call, so it follows the child across restarts; a `SupervisorRef`
 * makes the calls on the nested supervisor's current incarnation.
 *
 * Invariants:
 *  1. A reference never holds an incarnation: every call resolves the holder, then the child,
 *     then (for a nested supervisor) its running incarnation, at the time of the call.
 *  2. A call that cannot be made is refused with a `SupervisorRefusedError`: `CHILD_NOT_FOUND` when
 *     the id is gone (or names a worker where a supervisor is wanted), `SUPERVISOR_NOT_RUNNING`
 *     when the nested supervisor has no running incarnation. Async calls reject; sync ones throw.
 *  3. `on` listens at the root: it survives restarts of the nested supervisor and of every
 *     supervisor between it and the root, and receives the events of the tree below the nested
 *     supervisor (paths under its own) and its own `escalated` and `supervisor-stopped`.
 */
import { childInfo, type ChildRecord } from './child.js';
import { adminError, notRunningError } from './errors.js';
import type {
  ActorGroupChildSpec,
  ChildCounts,
  ChildInfo,
  ChildRef,
  ChildSpec,
  ChildHandle,
  SupervisionEvent,
  SupervisorAdmin,
  SupervisorChildSpec,
  SupervisorRef,
  TreeNode,
  WorkerChildSpec,
  WorkerRef,
} from './types.js';

/** What a reference needs from the supervisor holding its child (a `SupervisorCore`). */
export interface RefHost extends SupervisorAdmin {
  readonly path: string;
  /** The record of child `id`, if the supervisor has one. */
  recordOf(id: string): ChildRecord | undefined;
  /** The nested supervisor of `rec`'s current incarnation, if it has one. */
  nestedOf(rec: ChildRecord): RefHost | undefined;
}

/** Listens to every event of the whole tree (the root's `on`). */
export type Listen = (listener: (event: SupervisionEvent) => void) => () => void;

/**
 * A reference to the child `id` (of `kind`) of whatever supervisor `holder()` returns now, which
 * sits at `holderPath`.
 */
export function childRef(id: string, kind: ChildSpec['kind'], holder: () => RefHost | undefined, holderPath: string, listen: Listen): ChildRef {
  return kind === 'supervisor' ? new NestedSupervisorRef(id, holder, holderPath, listen) : new WorkerChildRef(id, kind ?? 'worker', holder, holderPath);
}

class WorkerChildRef implements WorkerRef {
  readonly path: string;

  constructor(
    readonly id: string,
    readonly kind: 'worker' | 'actors',
    private readonly holder: () => RefHost | undefined,
    holderPath: string,
  ) {
    this.path = `${holderPath}/${id}`;
  }

  info(): ChildInfo | undefined {
    const rec = this.record();
    return rec ? childInfo(rec) : undefined;
  }

  handle(): ChildHandle | undefined {
    return this.record()?.current?.handle;
  }

  private record(): ChildRecord | undefined {
    const rec = this.holder()?.recordOf(this.id);
    return rec?.spec.kind === this.kind ? rec : undefined;
  }
}

class NestedSupervisorRef implements SupervisorRef {
  readonly kind = 'supervisor' as const;
  readonly path: string;

  constructor(
    readonly id: string,
    private readonly holder: () => RefHost | undefined,
    private readonly holderPath: string,
    private readonly listen: Listen,
  ) {
    this.path = `${holderPath}/${id}`;
  }

  info(): ChildInfo | undefined {
    const rec = this.holder()?.recordOf(this.id);
    return rec?.spec.kind === 'supervisor' ? childInfo(rec) : undefined;
  }

  startChild(spec: SupervisorChildSpec): Promise<SupervisorRef>;
  startChild(spec: WorkerChildSpec | ActorGroupChildSpec): Promise<WorkerRef>;
  startChild(spec: ChildSpec): Promise<ChildRef>;
  async startChild(spec: ChildSpec): Promise<ChildRef> {
    await this.running('startChild', spec.id).startChild(spec);
    return childRef(spec.id, spec.kind, () => this.current(), this.path, this.listen);
  }

  async terminateChild(id: string): Promise<void> {
    return this.running('terminateChild', id).terminateChild(id);
  }

  async restartChild(id: string): Promise<void> {
    return this.running('restartChild', id).restartChild(id);
  }

  async deleteChild(id: string): Promise<void> {
    return this.running('deleteChild', id).deleteChild(id);
  }

  whichChildren(): ChildInfo[] {
    return this.running('whichChildren').whichChildren();
  }

  countChildren(): ChildCounts {
    return this.running('countChildren').countChildren();
  }

  /** The nested supervisor's own tree; between incarnations, its node as its parent shows it. */
  tree(): TreeNode {
    const holder = this.holding('tree');
    const rec = this.recordIn(holder);
    const nested = holder.nestedOf(rec);
    if (nested) return { ...nested.tree(), restarts: rec.restarts };
    const node = holder.tree().children?.find((c) => c.id === this.id);
    if (!node) throw adminError(this.holderPath, this.id, 'not found');
    return node;
  }

  on(listener: (event: SupervisionEvent) => void): () => void {
    const below = `${this.path}/`;
    return this.listen((event) => {
      if (event.path.startsWith(below) || (event.path === this.path && (event.type === 'escalated' || event.type === 'supervisor-stopped'))) listener(event);
    });
  }

  child(id: string): ChildRef {
    const rec = this.running('child', id).recordOf(id);
    if (!rec) throw adminError(this.path, id, 'not found');
    return childRef(id, rec.spec.kind, () => this.current(), this.path, this.listen);
  }

  supervisorOf(id: string): SupervisorRef {
    const rec = this.running('supervisorOf', id).recordOf(id);
    if (!rec) throw adminError(this.path, id, 'not found');
    if (rec.spec.kind !== 'supervisor') throw adminError(this.path, id, 'not a supervisor');
    return new NestedSupervisorRef(id, () => this.current(), this.path, this.listen);
  }

  /** The nested supervisor's current incarnation, or undefined (invariant 1). */
  private current(): RefHost | undefined {
    const holder = this.holder();
    const rec = holder?.recordOf(this.id);
    return holder && rec?.spec.kind === 'supervisor' ? holder.nestedOf(rec) : undefined;
  }

  /** The current incarnation, or a refusal (invariant 2). */
  private running(op: string, id?: string): RefHost {
    const holder = this.holding(op, id);
    const rec = this.recordIn(holder);
    const nested = holder.nestedOf(rec);
    if (!nested) throw notRunningError(this.path, rec.status, op, id);
    return nested;
  }

  private holding(op: string, id?: string): RefHost {
    const holder = this.holder();
    if (!holder) throw notRunningError(this.holderPath, 'between incarnations', op, id);
    return holder;
  }

  private recordIn(holder: RefHost): ChildRecord {
    const rec = holder.recordOf(this.id);
    if (!rec) throw adminError(this.holderPath, this.id, 'not found');
    if (rec.spec.kind !== 'supervisor') throw adminError(this.holderPath, this.id, 'not a supervisor');
    return rec;
  }
}
