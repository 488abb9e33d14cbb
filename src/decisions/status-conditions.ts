/**
 * The condition rules of `computeStatus`: Ready (health), Stalled, Reconciling,
 * Recovered and Drifted, each a pure function of the facts. The kstatus invariants are
 * kept in computeStatus, which combines them.
 */
import type { DriftFinding } from './drift.ts';
import { APPROVE_REPAIR_ANNOTATION, RolloutState, ConditionStatus, ConditionType, DriftPolicy, ReadyReason, ReconcilingReason, RecoveredReason, RecoveryOutcome, DriftedReason, StalledReason, type EventLog } from '../api/eventlog.ts';
import { getCondition, type ConditionInput } from './conditions.ts';
import { CONTAINER_NAME, podName, pvcName, serviceName } from './desired.ts';
import { type ServerObservation } from './server-status.ts';
import { type StatusInput, DEFAULT_CRASH_LOOP_STALL_RESTARTS, pollTimeoutTolerated, IMAGE_PULL_STALL, IMAGE_PULL } from './status-input.ts';
import { truncate, type Facts, describeTermination } from './status-facts.ts';
import { queuedMessage } from './rollout.ts';

// ---------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------

export type Decided = Omit<ConditionInput, 'type' | 'observedGeneration'>;
export const T = ConditionStatus.True;
export const F = ConditionStatus.False;
export const U = ConditionStatus.Unknown;

/** Health of the log, ignoring convergence (Ready before the kstatus adjustment). */
export function health(input: StatusInput, f: Facts): Decided {
  const { pvc, pod, server } = input;
  const claim = pvcName(input.evl);
  if (f.deleting) return { status: F, reason: ReadyReason.Deleting, message: 'the EventLog is being deleted' };
  if (!pvc) return { status: F, reason: ReadyReason.StorageNotBound, message: `PersistentVolumeClaim ${claim} does not exist yet` };
  if (f.classMissing) {
    return { status: F, reason: ReadyReason.StorageClassNotFound, message: `StorageClass ${input.storageClass?.name} does not exist; PersistentVolumeClaim ${claim} cannot be provisioned` };
  }
  if (f.pvcTerminating) return { status: F, reason: ReadyReason.StorageNotBound, message: `PersistentVolumeClaim ${claim} is being deleted` };
  if (f.pvcPhase === 'Lost') return { status: F, reason: ReadyReason.StorageNotBound, message: `PersistentVolumeClaim ${claim} lost its volume` };
  if (f.pvcPhase !== 'Bound') return { status: F, reason: ReadyReason.StorageNotBound, message: `PersistentVolumeClaim ${claim} is ${f.pvcPhase ?? 'not bound yet'}` };
  const pn = podName(input.evl);
  if (!pod) return { status: F, reason: ReadyReason.PodPending, message: `pod ${pn} does not exist yet` };
  if (f.podTerminating) return { status: F, reason: ReadyReason.PodPending, message: `pod ${pn} is being deleted; it will be recreated on the same volume` };
  if (f.corruption || f.serverState === 'corrupt') {
    const c = f.corruption;
    return {
      status: F,
      reason: ReadyReason.CorruptionDetected,
      message: c
        ? `interior corruption in ${c.segment} at offset ${c.offset} (${c.reason}); appends are refused until a repair is approved with the annotation ${APPROVE_REPAIR_ANNOTATION}: ${c.id}`
        : 'the log server reports interior corruption; appends are refused',
    };
  }
  if (f.crashLooping) {
    const restarts = f.container?.restartCount ?? 0;
    const last = describeTermination(f.lastTerminated);
    return { status: F, reason: ReadyReason.ContainerCrashLooping, message: `container ${CONTAINER_NAME} is crash looping (${restarts} restarts)${last ? `; last exit: ${last}` : ''}` };
  }
  if (f.waitingReason && IMAGE_PULL.has(f.waitingReason)) {
    return { status: F, reason: ReadyReason.PodPending, message: `container ${CONTAINER_NAME} cannot start: ${f.waitingReason}${f.waitingMessage ? `: ${truncate(f.waitingMessage, 300)}` : ''}` };
  }
  if (f.unschedulable) return { status: F, reason: ReadyReason.PodPending, message: `pod ${pn} is not scheduled: ${truncate(f.unschedulable, 300)}` };
  const running = f.container?.state?.running !== undefined;
  if (pod.status?.phase === 'Pending' || !running) {
    const why = f.waitingReason ? `${f.waitingReason}${f.waitingMessage ? `: ${truncate(f.waitingMessage, 300)}` : ''}` : (pod.status?.phase ?? 'not started');
    if (pod.status?.phase === 'Pending' || !f.container) return { status: F, reason: ReadyReason.PodPending, message: `pod ${pn} is starting (${why})` };
    return { status: F, reason: ReadyReason.PodNotReady, message: `container ${CONTAINER_NAME} is not running (${why})` };
  }
  if (!server) return { status: F, reason: ReadyReason.ServerUnreachable, message: 'the log server has not been polled yet' };
  if (!server.ok) {
    if (pollTimeoutTolerated(input)) {
      // One slow answer: Ready stays as it was (the reconciler polls again within a second).
      const prev = getCondition(input.evl.status?.conditions, ConditionType.Ready)!;
      return { status: T, reason: prev.reason, message: prev.message };
    }
    return { status: F, reason: ReadyReason.ServerUnreachable, message: `cannot read the log server's /status (${server.error}): ${truncate(server.message, 300)}` };
  }
  const st = server.status;
  if (st.state === 'recovering') {
    return { status: F, reason: ReadyReason.Recovering, message: st.recovery ? 'the log server is running a repair' : `the log server is running start-up recovery (boot ${st.bootId})` };
  }
  if (st.state === 'failed') return { status: F, reason: ReadyReason.WritesRefused, message: 'a storage write or fsync failed; the server refuses writes and is restarting to recover' };
  if (f.full) return { status: F, reason: ReadyReason.StorageFull, message: `the volume is full (${usageText(f)}): appends are refused with 507 while reads are served; ${fullOutlook(f)}` };
  if (!f.podReady) return { status: F, reason: ReadyReason.PodNotReady, message: `pod ${pn} is not Ready yet (readiness probe)` };
  return { status: T, reason: ReadyReason.LogAvailable, message: 'the log server is recovered and accepts appends' };
}

const FULL_REMEDY = 'free space with spec.retention, grow the PVC (kubectl patch pvc, or spec.storage.size / spec.storage.autoGrow), or delete events you no longer need';

function usageText(f: Facts): string {
  const u = f.usage;
  return u ? `${u.usedPercent}% used, ${u.availableBytes} bytes available, reserve ${u.reserveBytes ?? 0}` : 'no usage figures';
}

/** What happens next to a full log. */
function fullOutlook(f: Facts): string {
  switch (f.growth.kind) {
    case 'grow':
      return `growing the PVC from ${f.growth.from} to ${f.growth.to}`;
    case 'inProgress':
      return f.growth.state === 'FileSystemResizePending' ? 'the PVC was expanded; its file system waits for a resize' : 'the PVC is being expanded';
    case 'blocked':
      return `it cannot grow automatically: ${f.growth.message}`;
    case 'none':
      return 'appends resume by themselves when space comes back';
  }
}

export function stalled(input: StatusInput, f: Facts): Decided {
  if (input.specError) return { status: T, reason: StalledReason.InvalidSpec, message: truncate(input.specError, 2000) };
  const cls = input.storageClass?.name;
  if (f.classMissing) {
    return {
      status: T,
      reason: StalledReason.StorageClassNotFound,
      message: `StorageClass ${cls} does not exist: create it (storage.storageClassName is immutable; to use another class, recreate the EventLog)`,
    };
  }
  if (f.pvcPhase === 'Lost') return { status: T, reason: StalledReason.StorageLost, message: `the volume of PersistentVolumeClaim ${pvcName(input.evl)} is lost; restore it or recreate the EventLog` };
  if (f.resizeBlocked) {
    return { status: T, reason: StalledReason.StorageNotExpandable, message: `storage.size ${input.evl.spec.storage.size} needs a volume expansion, but StorageClass ${cls} does not allow it (allowVolumeExpansion)` };
  }
  if (f.growth.kind === 'blocked' && f.growth.block === 'ExpansionNotAllowed') {
    // autoGrow asks for more room and the class refuses it: say so before the log is full.
    const state = f.full ? `the volume is full (${usageText(f)})` : `the volume is ${f.usage?.usedPercent ?? '?'}% used, at or above autoGrow.usedPercent`;
    return { status: T, reason: StalledReason.StorageNotExpandable, message: `${state} and autoGrow cannot grow it: StorageClass ${cls} does not allow volume expansion (allowVolumeExpansion); ${FULL_REMEDY}` };
  }
  if (f.full && f.growth.kind === 'blocked') {
    return { status: T, reason: StalledReason.StorageFull, message: `the volume is full (${usageText(f)}) and cannot grow automatically: ${f.growth.message}; ${FULL_REMEDY}` };
  }
  if (f.corruption && !f.repairPending) {
    const c = f.corruption;
    if (f.repair?.result === 'Failed' && f.repair.corruptionId === c.id) {
      return { status: T, reason: StalledReason.RepairFailed, message: `the approved repair of corruption ${c.id} failed: ${truncate(f.repair.message ?? 'no detail', 1000)}` };
    }
    const approval = input.evl.metadata.annotations?.[APPROVE_REPAIR_ANNOTATION];
    const refused = approval !== undefined && approval !== c.id ? `; the approval "${truncate(approval, 128)}" does not match this corruption and was refused` : '';
    return {
      status: T,
      reason: StalledReason.CorruptionDetected,
      message: `interior corruption ${c.id} in ${c.segment} at offset ${c.offset} (${c.reason}); data is untouched. To truncate the log at the corrupt record (cut bytes are kept aside), set the annotation ${APPROVE_REPAIR_ANNOTATION}=${c.id}${refused}`,
    };
  }
  if (!f.corruption && f.crashLooping && (f.container?.restartCount ?? 0) >= (input.options?.crashLoopStallRestarts ?? DEFAULT_CRASH_LOOP_STALL_RESTARTS)) {
    const last = describeTermination(f.lastTerminated);
    return { status: T, reason: StalledReason.ContainerCrashLooping, message: `container ${CONTAINER_NAME} keeps crashing (${f.container?.restartCount ?? 0} restarts)${last ? `; last exit: ${last}` : ''}` };
  }
  if (f.waitingReason && IMAGE_PULL_STALL.has(f.waitingReason)) {
    return { status: T, reason: StalledReason.ImagePullFailed, message: `${f.waitingReason}: ${truncate(f.waitingMessage ?? 'the image cannot be pulled', 500)}; check spec.image` };
  }
  return { status: F, reason: StalledReason.NotStalled, message: 'nothing blocks convergence' };
}

export function reconciling(input: StatusInput, f: Facts, stall: Decided, h: Decided): Decided {
  if (f.deleting) return { status: T, reason: ReconcilingReason.Deleting, message: 'the EventLog is being deleted' };
  if (f.suspended) return { status: F, reason: ReconcilingReason.Suspended, message: 'spec.suspend is true: owned objects are left alone' };
  if (stall.status === T) return { status: F, reason: ReconcilingReason.Stalled, message: `not converging: ${stall.reason} (see Stalled)` };
  if (f.pvcTerminating) return { status: T, reason: ReconcilingReason.WaitingForPVCDeletion, message: `waiting for the old PersistentVolumeClaim ${pvcName(input.evl)} to be deleted` };
  const missing = [!input.pvc && `PersistentVolumeClaim ${pvcName(input.evl)}`, !input.service && `Service ${serviceName(input.evl)}`].filter(Boolean);
  // A rollout holds its reason from taking the slot until the new server answers, through
  // the pod's deletion and re-creation (one reason, not RecreatingPod/Progressing in turn).
  const rollout = input.rollout;
  if (rollout?.status.state === RolloutState.RollingOut && missing.length === 0) return { status: T, reason: ReconcilingReason.RollingOut, message: rollingOutMessage(input, f) };
  const hadPod = f.old?.pod?.uid !== undefined || (f.old?.recovery?.history?.length ?? 0) > 0;
  if (!input.pod && hadPod && missing.length === 0) return { status: T, reason: ReconcilingReason.RecreatingPod, message: `recreating pod ${podName(input.evl)} on the same volume` };
  if (!input.pod) missing.push(`pod ${podName(input.evl)}`);
  if (missing.length > 0) return { status: T, reason: ReconcilingReason.Provisioning, message: `creating ${missing.join(', ')}` };
  if (f.podTerminating) return { status: T, reason: ReconcilingReason.RecreatingPod, message: `pod ${podName(input.evl)} is being deleted; it will be recreated on the same volume` };
  if (input.drift?.outcome === 'correcting') return { status: T, reason: ReconcilingReason.CorrectingDrift, message: 'putting drifted fields back' };
  if (rollout?.status.state === RolloutState.Queued && rollout.waitingFor) return { status: T, reason: ReconcilingReason.RolloutQueued, message: queuedMessage(rollout.status, rollout.waitingFor) };
  if (f.rolloutPending) return { status: T, reason: ReconcilingReason.Progressing, message: `rolling out pod ${podName(input.evl)} for the current spec` };
  if (f.resize === 'FileSystemResizePending') {
    const how = input.evl.spec.storage.restartPodForResize ? 'the operator restarts the pod once so the resize completes' : 'restart the pod (delete it) or set spec.storage.restartPodForResize: true to let the operator do it';
    return { status: T, reason: ReconcilingReason.FileSystemResizePending, message: `PersistentVolumeClaim ${pvcName(input.evl)} was expanded to ${input.pvc?.spec?.resources?.requests?.storage}; its file system waits for an offline resize: ${how}` };
  }
  if (f.resizeWanted) return { status: T, reason: ReconcilingReason.ResizingStorage, message: `expanding PersistentVolumeClaim ${pvcName(input.evl)} to ${input.evl.spec.storage.size}` };
  if (f.resize === 'Resizing') return { status: T, reason: ReconcilingReason.ResizingStorage, message: `expanding PersistentVolumeClaim ${pvcName(input.evl)} from ${input.pvc?.status?.capacity?.storage} to ${input.pvc?.spec?.resources?.requests?.storage}` };
  if (f.growth.kind === 'grow') return { status: T, reason: ReconcilingReason.ResizingStorage, message: `growing PersistentVolumeClaim ${pvcName(input.evl)} from ${f.growth.from} to ${f.growth.to} (${f.growth.reason})` };
  if (f.repairPending) return { status: T, reason: ReconcilingReason.Progressing, message: `repairing corruption ${f.corruption?.id} as approved` };
  if (h.status !== T) return { status: T, reason: ReconcilingReason.Progressing, message: `waiting for the log: ${h.reason}` };
  if ((input.drift?.items.length ?? 0) > 0 && input.drift?.outcome !== 'corrected') {
    return { status: F, reason: ReconcilingReason.Reconciled, message: 'converged, except drift left in place (see Drifted)' };
  }
  return { status: F, reason: ReconcilingReason.Reconciled, message: 'owned objects match the spec' };
}

function rollingOutMessage(input: StatusInput, f: Facts): string {
  const r = input.rollout!.status;
  const pn = podName(input.evl);
  const to = `rolling pod ${pn} from template ${r.replacing?.template ?? '?'} to ${r.desired}`;
  if (!input.pod) return `${to}: the old pod is gone; creating the new one on the same volume`;
  if (f.podTerminating) return `${to}: the old pod is being deleted`;
  if (r.current !== r.desired) return `${to}: replacing the pod`;
  return `${to}: waiting for the new log server to become Ready and answer`;
}

export function recovered(f: Facts, server: ServerObservation | undefined): Decided | undefined {
  if (f.recovery) {
    const r = f.recovery.report;
    if (r.outcome === RecoveryOutcome.CorruptionDetected) {
      return { status: F, reason: RecoveredReason.CorruptionDetected, message: r.corruption ? `corruption ${r.corruption.id} in ${r.corruption.segment} at offset ${r.corruption.offset}: ${r.corruption.reason}` : 'interior corruption found' };
    }
    if (f.recovery.repairedBy) return { status: T, reason: RecoveredReason.Repaired, message: `repair of corruption ${f.recovery.repairedBy} done; ${r.recordsRecovered} records intact` };
    if (r.outcome === RecoveryOutcome.TornTailTruncated) {
      return { status: T, reason: RecoveredReason.TornTailTruncated, message: `a torn final record was cut off (${r.bytesTruncated} bytes kept aside); ${r.recordsRecovered} records intact` };
    }
    return { status: T, reason: RecoveredReason.Clean, message: `clean start-up; ${r.recordsRecovered} records` };
  }
  if (server?.ok && server.status.recovery === null) {
    return { status: U, reason: RecoveredReason.RecoveryPending, message: `start-up recovery of boot ${server.status.bootId} is running` };
  }
  return undefined; // keep the previous condition
}

export function driftCondition(input: StatusInput, f: Facts): Decided {
  const d = input.drift;
  const items = d?.items ?? [];
  const list = (xs: DriftFinding[]) => truncate(xs.map((i) => `${i.kind} ${i.name} ${i.path === '.' ? 'deleted' : i.path}`).join(', '), 2000);
  if (items.length === 0) {
    const prev = getCondition(f.old?.conditions, ConditionType.Drifted);
    if (prev?.reason === DriftedReason.DriftCorrected) return { status: F, reason: prev.reason, message: prev.message };
    return { status: F, reason: DriftedReason.NoDrift, message: 'owned objects match what the operator set' };
  }
  if (d?.outcome === 'corrected') return { status: F, reason: DriftedReason.DriftCorrected, message: `put back: ${list(items)}` };
  if (d?.outcome === 'failed') return { status: T, reason: DriftedReason.CorrectionFailed, message: `correcting ${list(items)} failed: ${truncate(d.error ?? 'unknown error', 1000)}` };
  const why =
    d?.outcome === 'correcting'
      ? 'being corrected'
      : f.suspended
        ? 'left in place (suspended)'
        : input.evl.spec.driftPolicy === DriftPolicy.Report
          ? 'left in place (driftPolicy Report)'
          : 'not corrected yet';
  return { status: T, reason: DriftedReason.DriftDetected, message: `${list(items)}: ${why}` };
}

