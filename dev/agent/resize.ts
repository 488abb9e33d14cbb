/**
 * Volume expansion decisions, the way external-resizer (controller step) and the
 * kubelet (file-system step) split the work, as pure functions:
 *
 *   claim asks for more than the PV has      -> controller step: Resizing,
 *        allocatedResources = request, ControllerResizeInProgress; grow the block
 *        device; PV spec.capacity = new size
 *   PV bigger than the claim's status.capacity -> file-system step: FileSystemResizePending,
 *        NodeResizePending; grow the file system (online, or offline when no pod uses it);
 *        then status.capacity = PV capacity, conditions and allocatedResourceStatuses cleared
 *
 * Guarantees:
 * - `nextResizeStep` never asks to shrink: a request at or below the PV's capacity
 *   starts nothing (the API server refuses smaller requests; recovery from a failed
 *   expansion may lower a request, which then finishes at the PV's size).
 * - The file-system step waits while a pod uses the volume unless both the class
 *   (parameter `eventlog.dev/online-expansion` not "false") and the node (online
 *   growth possible) allow online growth; the wait reason says which one refused.
 * - Condition helpers keep `lastTransitionTime` while a condition holds, so a steady
 *   claim causes no status writes.
 *
 * Caveats: errors are reported with the RecoverVolumeExpansionFailure condition types
 * (`ControllerResizeError`, `NodeResizeError`, Kubernetes >= 1.31) next to the
 * progress condition; no attempt is marked Infeasible — every failure is retried.
 */
import type { V1PersistentVolumeClaimCondition } from '@kubernetes/client-node';
import { compareQuantities, isQuantity } from '../../src/kube/quantity.ts';

export const onlineExpansionParameter = 'eventlog.dev/online-expansion';

export interface ResizeFacts {
  /** pvc.spec.resources.requests.storage */
  requested: string | undefined;
  /** pv.spec.capacity.storage */
  pvCapacity: string | undefined;
  /** pvc.status.capacity.storage (what the file system is known to have) */
  claimCapacity: string | undefined;
  classAllowsExpansion: boolean;
  /** The class allows growing while mounted (parameter not "false"). */
  classOnline: boolean;
  /** This node can grow a mounted file system (directories: always). */
  nodeOnline: boolean;
  /** Why not, when nodeOnline is false. */
  nodeOnlineReason?: string;
  /** A pod on this node uses the volume. */
  inUse: boolean;
}

export type ResizeStep =
  | { kind: 'none' }
  | { kind: 'refused'; message: string }
  | { kind: 'controller'; to: string }
  | { kind: 'filesystem'; capacity: string; online: boolean }
  | { kind: 'wait'; capacity: string; message: string };

const valid = (q: string | undefined): q is string => q !== undefined && isQuantity(q);

/** What to do next for a bound claim and its PV. */
export function nextResizeStep(f: ResizeFacts): ResizeStep {
  if (!valid(f.pvCapacity)) return { kind: 'none' };
  if (valid(f.requested) && compareQuantities(f.requested, f.pvCapacity) > 0) {
    if (!f.classAllowsExpansion) return { kind: 'refused', message: `the StorageClass does not allow volume expansion (allowVolumeExpansion is not true); the volume stays ${f.pvCapacity}` };
    return { kind: 'controller', to: f.requested };
  }
  if (valid(f.claimCapacity) && compareQuantities(f.pvCapacity, f.claimCapacity) > 0) {
    const online = f.classOnline && f.nodeOnline;
    if (!f.inUse) return { kind: 'filesystem', capacity: f.pvCapacity, online };
    if (online) return { kind: 'filesystem', capacity: f.pvCapacity, online: true };
    const why = !f.classOnline
      ? `the StorageClass sets ${onlineExpansionParameter}: "false"`
      : `this node cannot grow a mounted file system (${f.nodeOnlineReason ?? 'online expansion unsupported'})`;
    return { kind: 'wait', capacity: f.pvCapacity, message: `Waiting for user to (re-)start a pod to finish file system resize of volume on node: ${why}, and a pod uses the volume` };
  }
  return { kind: 'none' };
}

type Condition = V1PersistentVolumeClaimCondition;

/** A whole-second Date (the typed client serialises it as metav1.Time). */
const wholeSecond = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

/** One progress condition (Resizing / FileSystemResizePending), plus an optional error condition, keeping transition times. */
export function resizeConditions(existing: readonly Condition[] | undefined, type: 'Resizing' | 'FileSystemResizePending', message: string, now: number, error?: { type: 'ControllerResizeError' | 'NodeResizeError'; message: string }): Condition[] {
  const keep = (t: string, msg: string): Condition => {
    const prev = existing?.find((c) => c.type === t && c.status === 'True');
    return { type: t, status: 'True', lastProbeTime: wholeSecond(now), lastTransitionTime: prev?.lastTransitionTime ?? wholeSecond(now), message: msg };
  };
  const out = [keep(type, message)];
  if (error) out.push(keep(error.type, error.message));
  return out;
}

/** The parts of a claim's status the resize flow owns, in a comparable form (ignores probe times). */
export function resizeStatusKey(status: { conditions?: readonly Condition[] | null; allocatedResourceStatuses?: Record<string, string> | null; allocatedResources?: Record<string, unknown> | null; capacity?: Record<string, unknown> | null } | undefined): string {
  const conds = (status?.conditions ?? []).map((c) => `${c.type}=${c.status}:${c.message ?? ''}`).sort();
  return JSON.stringify({
    conds,
    ars: status?.allocatedResourceStatuses?.storage ?? null,
    ar: status?.allocatedResources?.storage !== undefined ? String(status.allocatedResources.storage) : null,
    cap: status?.capacity?.storage !== undefined ? String(status.capacity.storage) : null,
  });
}
