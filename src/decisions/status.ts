/**
 * `computeStatus`: the EventLog's new status from what the reconciler observed. Pure:
 * every input (live objects, the server's /status, drift findings, the clock) is passed
 * in; nothing is read or written here.
 *
 * Guarantees:
 * - Follows the status contract (docs/api.md, docs/controller.md): every condition
 *   carries the EventLog's generation; `lastTransitionTime` moves only when a
 *   condition's status changes; kstatus invariants hold (Ready=True implies
 *   Reconciling=False and Stalled=False; Stalled=True implies Reconciling=False).
 * - Deterministic: the same inputs (and the same old status) give a deep-equal status,
 *   and messages contain no clock values, so a steady cluster yields
 *   `statusChanged(old, new) === false` and no write.
 * - Log counters (`status.log`) alone cause a write at most once per
 *   `countersMinIntervalMs` (default 30 s); any other change writes at once and brings
 *   the current counters along.
 * - Recovery history: one entry per server boot (`bootId`), newest first, at most
 *   `MAX_RECOVERY_HISTORY`; a boot already recorded is updated in place (a repair re-runs
 *   recovery within the same boot), never added twice.
 * - Drift: `firstSeen` of an item (kind/name/path) is kept while it persists;
 *   `lastDetectedAt` moves only when a new item appears; `corrections` counts corrected
 *   items.
 * - A crash loop, once reported (Ready `ContainerCrashLooping`), stays reported while the
 *   restarted container runs but the server has not answered `/status`, so Ready's
 *   reason and Stalled do not flap with every restart.
 * - The result has no `undefined`-valued keys (it round-trips through JSON unchanged).
 *
 * Caveats: the reconciler decides which differences are drift (see
 * `classifyDifferences`: a spec change is a rollout, not drift; a missing object is
 * drift only if it existed before) and what it did about them (`drift.outcome`).
 */
import {
  APPROVE_REPAIR_ANNOTATION,
  ConditionStatus,
  ConditionType,
  DriftPolicy,
  MAX_DRIFT_ITEMS,
  MAX_RECOVERY_HISTORY,
  Phase,
  ReadyReason,
  ReconcilingReason,
  RecoveredReason,
  RecoveryOutcome,
  DriftedReason,
  StalledReason,
  type Condition,
  type DriftItem,
  type DriftStatus,
  type EventLog,
  type EventLogStatus,
  type LogStats,
  type PodStatus,
  type RecoveryHistoryEntry,
  type RecoveryStatus,
  type Repair,
  type StorageStatus,
} from '../api/eventlog.ts';
import { compareQuantities, isQuantity } from '../kube/quantity.ts';
import { formatTime, getCondition, setCondition, type ConditionInput } from './conditions.ts';
import { CONTAINER_NAME, endpointUrl, podName, pvcName, serviceName } from './desired.ts';
import type { DriftFinding } from './drift.ts';
import { SPEC_HASH_ANNOTATION } from './labels.ts';
import { PollError, parseTerminationMessage, type ServerObservation, type ServerRecovery } from './server-status.ts';

// ---------------------------------------------------------------------------
// Inputs: the parts of live objects we read (raw JSON from the informer cache)
// ---------------------------------------------------------------------------

type Time = string | Date;

export interface LiveMeta {
  name: string;
  uid?: string;
  deletionTimestamp?: Time;
  annotations?: Record<string, string>;
}

export interface LivePvc {
  metadata: LiveMeta;
  spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
  status?: { phase?: string; capacity?: { storage?: string }; conditions?: { type: string; status: string; message?: string }[] };
}

export interface ContainerStateTerminated {
  exitCode?: number;
  signal?: number;
  reason?: string;
  message?: string;
  finishedAt?: Time;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: Time };
  terminated?: ContainerStateTerminated;
}

export interface LiveContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number;
  started?: boolean;
  state?: ContainerState;
  lastState?: ContainerState;
}

export interface LivePod {
  metadata: LiveMeta;
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: LiveContainerStatus[];
  };
}

export interface LiveService {
  metadata: LiveMeta;
}

/** What the reconciler found and did about drift in this pass. */
export interface DriftInput {
  /** Differences classified as drift (not rollout), including "." for a deleted object that existed. */
  items: DriftFinding[];
  /**
   * none: nothing attempted (no drift, driftPolicy Report, or suspended);
   * corrected: every item was put back in this pass;
   * correcting: correction started but takes time (pod recreated);
   * failed: correction attempted and failed (`error`).
   */
  outcome: 'none' | 'corrected' | 'correcting' | 'failed';
  error?: string;
}

export interface StatusOptions {
  /** Minimum interval between writes caused by log counters alone. Default 30 000. */
  countersMinIntervalMs?: number;
  /** Restarts in CrashLoopBackOff after which the crash loop is Stalled. Default 3. */
  crashLoopStallRestarts?: number;
  /** Server port, for the endpoint URL. Default 8080. */
  port?: number;
  /**
   * Timed-out polls in a row that leave a Ready log Ready (its pod still Ready). Default 1:
   * one slow answer on a busy node is not an outage; a refused connection always counts.
   */
  pollTimeoutsTolerated?: number;
}

export interface StatusInput {
  /** The EventLog (parsed: spec defaults applied). Its `status` is the old status. */
  evl: Pick<EventLog, 'metadata' | 'spec' | 'status'>;
  pvc?: LivePvc;
  pod?: LivePod;
  service?: LiveService;
  /** The StorageClass the PVC asks for; undefined when not checked or none named. */
  storageClass?: { name: string; found: boolean; allowVolumeExpansion?: boolean };
  /** Result of polling the server's /status; undefined when not polled. */
  server?: ServerObservation;
  /** Polls that timed out in a row, this one included (0 or absent: this one did not). */
  pollTimeoutsInARow?: number;
  drift?: DriftInput;
  /** `eventlog.dev/spec-hash` of the desired pod, to tell a pending rollout. */
  desiredPodHash?: string;
  /** The spec passed the API server but cannot work (message says what to fix). */
  specError?: string;
  /** The repair record when the reconciler approved/ran one in this pass. */
  repair?: Repair;
  /** Token Secret clients need, when the server is configured with one. */
  tokenSecret?: { name: string; key: string };
  now: Date;
  options?: StatusOptions;
}

export const DEFAULT_COUNTERS_MIN_INTERVAL_MS = 30_000;
export const DEFAULT_CRASH_LOOP_STALL_RESTARTS = 3;
export const DEFAULT_POLL_TIMEOUTS_TOLERATED = 1;

/** The pod's Ready condition (the kubelet's readiness probe) is True. */
function isPodReady(pod: LivePod | undefined): boolean {
  return pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** True when this failed poll is a tolerated timeout of a log that was Ready (see StatusOptions). */
export function pollTimeoutTolerated(input: StatusInput): boolean {
  const { server } = input;
  if (!server || server.ok || server.error !== PollError.Timeout) return false;
  const inARow = input.pollTimeoutsInARow ?? 1;
  const wasReady = getCondition(input.evl.status?.conditions, ConditionType.Ready)?.status === 'True';
  return wasReady && isPodReady(input.pod) && inARow <= (input.options?.pollTimeoutsTolerated ?? DEFAULT_POLL_TIMEOUTS_TOLERATED);
}

const IMAGE_PULL_STALL = new Set(['ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const IMAGE_PULL = new Set([...IMAGE_PULL_STALL, 'ErrImagePull']);

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function timeString(t: Time | undefined): string | undefined {
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

/** Deep equality of JSON values; object key order and undefined-valued keys are ignored. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
    const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
    return ak.length === bk.length && ak.every((k) => deepEqual(ao[k], bo[k]));
  }
  return false;
}

/** True if the status must be written (anything differs; nothing is ignored). */
export function statusChanged(oldStatus: EventLogStatus | undefined, newStatus: EventLogStatus): boolean {
  return !deepEqual(oldStatus ?? {}, newStatus);
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

function firstLine(s: string | undefined): string {
  return (s ?? '').trim().split('\n')[0] ?? '';
}

// ---------------------------------------------------------------------------
// Facts derived from the inputs
// ---------------------------------------------------------------------------

interface Facts {
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

function facts(input: StatusInput): Facts {
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

function describeTermination(t: ContainerStateTerminated | undefined): string {
  if (!t) return '';
  const parts = [`exit code ${t.exitCode ?? '?'}`];
  if (t.reason) parts.push(t.reason);
  const msg = firstLine(t.message);
  if (msg) parts.push(truncate(msg, 300));
  return parts.join(', ');
}

// ---------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------

type Decided = Omit<ConditionInput, 'type' | 'observedGeneration'>;
const T = ConditionStatus.True;
const F = ConditionStatus.False;
const U = ConditionStatus.Unknown;

/** Health of the log, ignoring convergence (Ready before the kstatus adjustment). */
function health(input: StatusInput, f: Facts): Decided {
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
  if (!f.podReady) return { status: F, reason: ReadyReason.PodNotReady, message: `pod ${pn} is not Ready yet (readiness probe)` };
  return { status: T, reason: ReadyReason.LogAvailable, message: 'the log server is recovered and accepts appends' };
}

function stalled(input: StatusInput, f: Facts): Decided {
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

function reconciling(input: StatusInput, f: Facts, stall: Decided, h: Decided): Decided {
  if (f.deleting) return { status: T, reason: ReconcilingReason.Deleting, message: 'the EventLog is being deleted' };
  if (f.suspended) return { status: F, reason: ReconcilingReason.Suspended, message: 'spec.suspend is true: owned objects are left alone' };
  if (stall.status === T) return { status: F, reason: ReconcilingReason.Stalled, message: `not converging: ${stall.reason} (see Stalled)` };
  if (f.pvcTerminating) return { status: T, reason: ReconcilingReason.WaitingForPVCDeletion, message: `waiting for the old PersistentVolumeClaim ${pvcName(input.evl)} to be deleted` };
  const missing = [!input.pvc && `PersistentVolumeClaim ${pvcName(input.evl)}`, !input.service && `Service ${serviceName(input.evl)}`].filter(Boolean);
  const hadPod = f.old?.pod?.uid !== undefined || (f.old?.recovery?.history?.length ?? 0) > 0;
  if (!input.pod && hadPod && missing.length === 0) return { status: T, reason: ReconcilingReason.RecreatingPod, message: `recreating pod ${podName(input.evl)} on the same volume` };
  if (!input.pod) missing.push(`pod ${podName(input.evl)}`);
  if (missing.length > 0) return { status: T, reason: ReconcilingReason.Provisioning, message: `creating ${missing.join(', ')}` };
  if (f.podTerminating) return { status: T, reason: ReconcilingReason.RecreatingPod, message: `pod ${podName(input.evl)} is being deleted; it will be recreated on the same volume` };
  if (input.drift?.outcome === 'correcting') return { status: T, reason: ReconcilingReason.CorrectingDrift, message: 'putting drifted fields back' };
  if (f.rolloutPending) return { status: T, reason: ReconcilingReason.Progressing, message: `rolling out pod ${podName(input.evl)} for the current spec` };
  if (f.resizeWanted) return { status: T, reason: ReconcilingReason.ResizingStorage, message: `expanding PersistentVolumeClaim ${pvcName(input.evl)} to ${input.evl.spec.storage.size}` };
  if (f.repairPending) return { status: T, reason: ReconcilingReason.Progressing, message: `repairing corruption ${f.corruption?.id} as approved` };
  if (h.status !== T) return { status: T, reason: ReconcilingReason.Progressing, message: `waiting for the log: ${h.reason}` };
  if ((input.drift?.items.length ?? 0) > 0 && input.drift?.outcome !== 'corrected') {
    return { status: F, reason: ReconcilingReason.Reconciled, message: 'converged, except drift left in place (see Drifted)' };
  }
  return { status: F, reason: ReconcilingReason.Reconciled, message: 'owned objects match the spec' };
}

function recovered(f: Facts, server: ServerObservation | undefined): Decided | undefined {
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

function driftCondition(input: StatusInput, f: Facts): Decided {
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

// ---------------------------------------------------------------------------
// Structured status
// ---------------------------------------------------------------------------

function recoveryStatus(input: StatusInput, f: Facts): RecoveryStatus | undefined {
  const old = f.old?.recovery;
  const rec = f.recovery;
  let next: RecoveryStatus | undefined = old ? { ...old } : undefined;
  if (rec) {
    const r = rec.report;
    const startMs = Date.parse(r.startedAt);
    const at = Number.isFinite(startMs) ? formatTime(new Date(startMs + r.durationMs)) : formatTime(input.now);
    const durationMs = Math.round(r.durationMs);
    const entry: RecoveryHistoryEntry = {
      bootId: rec.bootId,
      outcome: r.outcome,
      at,
      durationMs,
      recordsRecovered: r.recordsRecovered,
      bytesTruncated: r.bytesTruncated,
      ...(r.corruption ? { corruptionId: r.corruption.id } : {}),
    };
    const history = [...(old?.history ?? [])];
    const i = history.findIndex((h) => h.bootId === rec.bootId);
    if (i >= 0) history[i] = entry;
    else history.unshift(entry);
    next = {
      lastOutcome: r.outcome,
      at,
      durationMs,
      recordsRecovered: r.recordsRecovered,
      bytesTruncated: r.bytesTruncated,
      ...(r.corruption ? { corruption: { ...r.corruption } } : {}),
      history: history.slice(0, MAX_RECOVERY_HISTORY),
      ...(old?.repair ? { repair: old.repair } : {}),
    };
  }
  if (input.repair) next = { ...(next ?? {}), repair: input.repair };
  return next;
}

function driftStatus(input: StatusInput, f: Facts, nowStr: string): DriftStatus {
  const old = f.old?.drift;
  const items = input.drift?.items ?? [];
  const key = (i: { kind: string; name: string; path: string }) => `${i.kind}\u0000${i.name}\u0000${i.path}`;
  const oldByKey = new Map((old?.items ?? []).map((i) => [key(i), i]));
  const anyNew = items.some((i) => !oldByKey.has(key(i)));
  const out: DriftStatus = { detected: false };
  const lastDetectedAt = items.length > 0 && anyNew ? nowStr : old?.lastDetectedAt;
  if (input.drift?.outcome === 'corrected' && items.length > 0) {
    out.lastDetectedAt = lastDetectedAt;
    out.lastCorrectedAt = nowStr;
    out.corrections = (old?.corrections ?? 0) + items.length;
    return out;
  }
  if (items.length > 0) {
    out.detected = true;
    out.items = items.slice(0, MAX_DRIFT_ITEMS).map(
      (i): DriftItem => ({ kind: i.kind, name: i.name, path: i.path, expected: i.expected, actual: i.actual, firstSeen: oldByKey.get(key(i))?.firstSeen ?? nowStr }),
    );
  }
  out.lastDetectedAt = lastDetectedAt;
  out.lastCorrectedAt = old?.lastCorrectedAt;
  out.corrections = old?.corrections;
  return out;
}

function podStatus(input: StatusInput, f: Facts): PodStatus {
  const pod = input.pod;
  if (!pod) return { name: podName(input.evl) };
  const c = f.container;
  const server = input.server?.ok ? input.server.status : undefined;
  const sameOld = f.old?.pod?.uid !== undefined && f.old.pod.uid === pod.metadata.uid ? f.old.pod : undefined;
  const t = f.lastTerminated;
  return {
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    phase: pod.status?.phase,
    ready: f.podReady,
    restarts: c?.restartCount ?? 0,
    bootId: server?.bootId ?? sameOld?.bootId,
    // Without an answer from the server, the same container run keeps the time the server
    // reported (the kubelet's differs in format): a failed poll alone changes nothing here.
    startedAt: server?.startedAt ?? (sameOld?.restarts === (c?.restartCount ?? 0) ? sameOld?.startedAt : undefined) ?? timeString(c?.state?.running?.startedAt) ?? sameOld?.startedAt,
    ip: pod.status?.podIP,
    lastTermination: t
      ? {
          exitCode: t.exitCode,
          signal: t.signal,
          reason: t.reason,
          message: t.message !== undefined ? truncate(t.message, 4096) : undefined,
          finishedAt: timeString(t.finishedAt),
        }
      : undefined,
  };
}

function storageStatus(input: StatusInput, f: Facts): StorageStatus {
  const pvc = input.pvc;
  if (!pvc) return { pvcName: pvcName(input.evl) };
  return {
    pvcName: pvc.metadata.name,
    storageClassName: pvc.spec?.storageClassName,
    phase: pvc.status?.phase,
    requested: pvc.spec?.resources?.requests?.storage,
    capacity: pvc.status?.capacity?.storage,
    resizing: f.resizeWanted,
  };
}

function phaseOf(f: Facts, ready: Decided, stall: Decided, input: StatusInput): Phase {
  if (f.deleting) return Phase.Terminating;
  if (f.suspended) return Phase.Suspended;
  if (stall.status === T) return Phase.Stalled;
  if (ready.status === T) return Phase.Ready;
  if (ready.reason === ReadyReason.Recovering) return Phase.Recovering;
  const wasReady = f.old?.phase === Phase.Ready || f.old?.phase === Phase.Degraded || getCondition(f.old?.conditions, ConditionType.Ready)?.status === T;
  if (wasReady) return Phase.Degraded;
  if (!input.pvc && !input.pod && !input.service) return Phase.Pending;
  return Phase.Provisioning;
}

function logStats(input: StatusInput, rest: EventLogStatus, nowStr: string): LogStats | undefined {
  const old = input.evl.status?.log;
  const server = input.server?.ok ? input.server.status : undefined;
  if (!server) return old;
  const next = { records: server.stats.total, bytes: server.stats.bytes, lastSequence: server.stats.lastSequence };
  if (old && old.records === next.records && old.bytes === next.bytes && old.lastSequence === next.lastSequence) return old;
  // Something else changed: this write happens anyway, bring the counters along.
  if (statusChanged(input.evl.status, { ...rest, ...(old ? { log: old } : {}) })) return { ...next, updatedAt: nowStr };
  const interval = input.options?.countersMinIntervalMs ?? DEFAULT_COUNTERS_MIN_INTERVAL_MS;
  const last = old?.updatedAt ? Date.parse(old.updatedAt) : Number.NaN;
  if (!Number.isFinite(last) || input.now.getTime() - last >= interval) return { ...next, updatedAt: nowStr };
  return old;
}

/**
 * Milliseconds until changed counters alone will be written (for `requeueAfter`), or
 * undefined when the counters are current (or unknown).
 */
export function countersRefreshDueIn(input: StatusInput, status: EventLogStatus): number | undefined {
  const server = input.server?.ok ? input.server.status : undefined;
  const log = status.log;
  if (!server || !log) return undefined;
  if (log.records === server.stats.total && log.bytes === server.stats.bytes && log.lastSequence === server.stats.lastSequence) return undefined;
  const interval = input.options?.countersMinIntervalMs ?? DEFAULT_COUNTERS_MIN_INTERVAL_MS;
  const last = log.updatedAt ? Date.parse(log.updatedAt) : Number.NaN;
  if (!Number.isFinite(last)) return 0;
  return Math.max(0, last + interval - input.now.getTime());
}

/** The new status (see the module doc). */
export function computeStatus(input: StatusInput): EventLogStatus {
  const f = facts(input);
  const nowStr = formatTime(input.now);
  const gen = f.generation;

  const h = health(input, f);
  const stall = stalled(input, f);
  const rec = reconciling(input, f, stall, h);
  // kstatus: Ready=True only when converged (not Reconciling, not Stalled).
  let ready: Decided = h;
  if (h.status === T && stall.status === T) ready = { status: F, reason: ReadyReason.Stalled, message: `the log serves events, but: ${stall.message}` };
  else if (h.status === T && rec.status === T) ready = { status: F, reason: ReadyReason.Progressing, message: `the log serves events; ${rec.message}` };

  let conditions: Condition[] = [...(f.old?.conditions ?? [])];
  const put = (type: string, d: Decided) => {
    conditions = setCondition(conditions, { type, ...d, ...(gen !== undefined ? { observedGeneration: gen } : {}) }, input.now);
  };
  put(ConditionType.Ready, ready);
  put(ConditionType.Reconciling, rec);
  put(ConditionType.Stalled, stall);
  const recov = recovered(f, input.server);
  const prevRecovered = getCondition(f.old?.conditions, ConditionType.Recovered);
  if (recov) put(ConditionType.Recovered, recov);
  else if (prevRecovered) put(ConditionType.Recovered, { status: prevRecovered.status, reason: prevRecovered.reason, message: prevRecovered.message });
  else put(ConditionType.Recovered, { status: U, reason: RecoveredReason.RecoveryPending, message: 'the log server has not reported a recovery yet' });
  put(ConditionType.Drifted, driftCondition(input, f));

  const rest: EventLogStatus = prune({
    observedGeneration: gen,
    conditions,
    phase: phaseOf(f, ready, stall, input),
    endpoint: input.service ? endpointUrl(input.evl, { port: input.options?.port }) : undefined,
    tokenSecret: input.tokenSecret ? { ...input.tokenSecret } : undefined,
    pod: podStatus(input, f),
    storage: storageStatus(input, f),
    recovery: recoveryStatus(input, f),
    drift: driftStatus(input, f, nowStr),
  });
  const log = logStats(input, rest, nowStr);
  return prune({ ...rest, ...(log ? { log } : {}) });
}
