/**
 * Facts derived once from the status inputs (storage, pod, server, recovery), so each
 * condition rule reads named facts instead of digging through raw objects.
 */
import { ConditionType, ReadyReason, RecoveryOutcome, type EventLogStatus, type Repair } from '../api/eventlog.ts';
import { compareQuantities, isQuantity } from '../kube/quantity.ts';
import { jsonEqual } from '../common/json.ts';
import { formatTime } from '../kube/time.ts';
import { getCondition } from './conditions.ts';
import { CONTAINER_NAME } from './desired.ts';
import { SPEC_HASH_ANNOTATION } from './labels.ts';
import { parseTerminationMessage, type ServerRecovery } from './server-status.ts';
import { planGrowth, resizeState, storageUsage, type GrowthPlan, type ResizeState, type StorageUsage } from './storage.ts';
import { type Time, type ContainerStateTerminated, type LiveContainerStatus, type StatusInput, isPodReady } from './status-input.ts';

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

export function timeString(t: Time | undefined): string | undefined {
  if (t === undefined) return undefined;
  return typeof t === 'string' ? t : formatTime(t);
}

/** Remove `undefined`-valued keys recursively (a JSON round trip would). */
export function prune<T>(v: T): T {
  if (Array.isArray(v)) return v.map(prune) as T;
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = prune(x);
    return out as T;
  }
  return v;
}


/** True if the status must be written (anything differs; nothing is ignored). */
export function statusChanged(oldStatus: EventLogStatus | undefined, newStatus: EventLogStatus): boolean {
  return !jsonEqual(oldStatus ?? {}, newStatus);
}

export function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

export function firstLine(s: string | undefined): string {
  return (s ?? '').trim().split('\n')[0] ?? '';
}

// ---------------------------------------------------------------------------
// Facts derived from the inputs
// ---------------------------------------------------------------------------

export interface Facts {
  generation: number | undefined;
  deleting: boolean;
  suspended: boolean;
  old: EventLogStatus | undefined;
  // storage
  pvcTerminating: boolean;
  pvcPhase: string | undefined;
  classMissing: boolean;
  resizeWanted: boolean;
  resizeBlocked: boolean;
  /** The server refuses appends for space (state `full`). */
  full: boolean;
  usage: StorageUsage | undefined;
  /** An expansion of the PVC in progress, and what it waits for. */
  resize: ResizeState | undefined;
  /** What auto-grow would do now (blocked: why a full log cannot be fixed automatically). */
  growth: GrowthPlan;
  // pod
  podTerminating: boolean;
  podReady: boolean;
  container: LiveContainerStatus | undefined;
  waitingReason: string | undefined;
  waitingMessage: string | undefined;
  /** CrashLoopBackOff now, or reported before and the server has not answered since. */
  crashLooping: boolean;
  lastTerminated: ContainerStateTerminated | undefined;
  unschedulable: string | undefined;
  rolloutPending: boolean;
  // server
  serverState: string | undefined;
  recovery: { bootId: string; report: ServerRecovery; repairedBy?: string } | undefined;
  corruption: { id: string; segment: string; offset: number; reason: string } | undefined;
  repair: Repair | undefined;
  repairPending: boolean;
}

export function facts(input: StatusInput): Facts {
  const { evl, pvc, pod, server } = input;
  const old = evl.status;
  const container = pod?.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME) ?? pod?.status?.containerStatuses?.[0];
  const scheduled = pod?.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const size = evl.spec.storage.size;
  const requested = pvc?.spec?.resources?.requests?.storage;
  const capacity = pvc?.status?.capacity?.storage;
  const below = (q: string | undefined) => q !== undefined && isQuantity(q) && compareQuantities(q, size) < 0;
  const resizeWanted = pvc !== undefined && (below(requested) || (pvc.status?.phase === 'Bound' && below(capacity)));

  // The recovery report: the live server's, else the one in the termination message.
  let recovery: Facts['recovery'];
  let serverState: string | undefined;
  if (server?.ok) {
    serverState = server.status.state;
    if (server.status.recovery) {
      recovery = { bootId: server.status.bootId, report: server.status.recovery, ...(server.status.repair ? { repairedBy: server.status.repair.corruptionId } : {}) };
    }
  } else if (container?.state?.running === undefined) {
    // The server is not running (crash loop, terminated): its last words may say why.
    const term = parseTerminationMessage(container?.state?.terminated?.message ?? container?.lastState?.terminated?.message);
    if (term) {
      serverState = term.state;
      if (term.recovery && term.bootId) recovery = { bootId: term.bootId, report: term.recovery };
    }
  }
  const corruption =
    recovery?.report.outcome === RecoveryOutcome.CorruptionDetected
      ? recovery.report.corruption
      : serverState === 'corrupt'
        ? old?.recovery?.corruption
        : undefined;
  const repair = input.repair ?? old?.recovery?.repair;
  const usage = storageUsage(server?.ok ? server.status : undefined);
  const repairPending = corruption !== undefined && repair?.result === 'Pending' && repair.corruptionId === corruption.id;

  return {
    generation: evl.metadata.generation,
    deleting: evl.metadata.deletionTimestamp !== undefined,
    suspended: evl.spec.suspend,
    old,
    pvcTerminating: pvc?.metadata.deletionTimestamp !== undefined,
    pvcPhase: pvc?.status?.phase,
    classMissing: input.storageClass?.found === false,
    resizeWanted,
    resizeBlocked: resizeWanted && input.storageClass?.allowVolumeExpansion === false,
    full: serverState === 'full',
    usage,
    resize: resizeState(pvc),
    growth: planGrowth({ evl, pvc, usage, full: serverState === 'full', allowVolumeExpansion: input.storageClass?.allowVolumeExpansion }),
    podTerminating: pod?.metadata.deletionTimestamp !== undefined,
    podReady: isPodReady(pod),
    container,
    waitingReason: container?.state?.waiting?.reason,
    waitingMessage: container?.state?.waiting?.message,
    // Between back-offs the container runs for a moment before it fails again; a crash
    // loop once reported stays reported until the server answers /status, so Ready's
    // reason and Stalled do not flap with every restart.
    crashLooping:
      container?.state?.waiting?.reason === 'CrashLoopBackOff' ||
      ((container?.restartCount ?? 0) > 0 && server?.ok !== true && getCondition(old?.conditions, ConditionType.Ready)?.reason === ReadyReason.ContainerCrashLooping),
    lastTerminated: container?.state?.terminated ?? container?.lastState?.terminated,
    unschedulable: scheduled?.status === 'False' ? (scheduled.message ?? scheduled.reason ?? 'unschedulable') : undefined,
    rolloutPending:
      pod !== undefined && input.desiredPodHash !== undefined && pod.metadata.annotations?.[SPEC_HASH_ANNOTATION] !== input.desiredPodHash,
    serverState,
    recovery,
    corruption,
    repair,
    repairPending,
  };
}

export function describeTermination(t: ContainerStateTerminated | undefined): string {
  if (!t) return '';
  const parts = [`exit code ${t.exitCode ?? '?'}`];
  if (t.reason) parts.push(t.reason);
  const msg = firstLine(t.message);
  if (msg) parts.push(truncate(msg, 300));
  return parts.join(', ');
}
