/**
 * The EventLog API's names and vocabulary: group, kind, reserved annotations, the
 * enums of the spec and every condition type and reason (docs/api.md lists them).
 */
// ---------------------------------------------------------------------------
// Identity constants
// ---------------------------------------------------------------------------

export const GROUP = 'eventlog.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'EventLog';
export const LIST_KIND = 'EventLogList';
export const PLURAL = 'eventlogs';
export const SINGULAR = 'eventlog';
export const SHORT_NAMES = ['evl'] as const;
export const CATEGORIES = ['eventlogs'] as const;
export const CRD_NAME = `${PLURAL}.${GROUP}`;
/** The EventLog resource (group, version, plural) for API paths. */
export const EVENTLOG_RESOURCE = { group: GROUP, version: VERSION, plural: PLURAL } as const;

/** The operator's finalizer; the only metadata the operator writes on an EventLog. */
export const FINALIZER = 'eventlog.dev/finalizer';
/**
 * Annotation a human sets to approve a destructive repair of a corrupted log. Its value
 * must equal `status.recovery.corruption.id` (so an approval cannot apply to a different,
 * later corruption). The operator records what it did in `status.recovery.repair`.
 */
export const APPROVE_REPAIR_ANNOTATION = 'eventlog.dev/approve-repair';
/** Label and annotation keys under this prefix are reserved for the operator. */
export const RESERVED_PREFIX = 'eventlog.dev/';

// ---------------------------------------------------------------------------
// Enumerations (as const objects, not TS enums)
// ---------------------------------------------------------------------------

export const RetentionPolicy = { Retain: 'Retain', Delete: 'Delete' } as const;
export type RetentionPolicy = (typeof RetentionPolicy)[keyof typeof RetentionPolicy];

export const Durability = { Fsync: 'Fsync', Interval: 'Interval', None: 'None' } as const;
export type Durability = (typeof Durability)[keyof typeof Durability];

export const DriftPolicy = { Correct: 'Correct', Report: 'Report' } as const;
export type DriftPolicy = (typeof DriftPolicy)[keyof typeof DriftPolicy];

export const RecoveryOutcome = {
  Clean: 'Clean',
  TornTailTruncated: 'TornTailTruncated',
  CorruptionDetected: 'CorruptionDetected',
} as const;
export type RecoveryOutcome = (typeof RecoveryOutcome)[keyof typeof RecoveryOutcome];

/** `status.phase`: a one-word summary for humans; automation should read conditions. */
export const Phase = {
  /** Accepted, nothing created yet (e.g. finalizer being added). */
  Pending: 'Pending',
  /** PVC/pod/Service being created or the PVC waiting to bind. */
  Provisioning: 'Provisioning',
  /** The log server is running crash recovery. */
  Recovering: 'Recovering',
  /** Ready=True. */
  Ready: 'Ready',
  /** Was ready, is not now (pod restarting, server unreachable); the operator is working on it. */
  Degraded: 'Degraded',
  /** Stalled=True: needs a human. */
  Stalled: 'Stalled',
  /** spec.suspend is true; the operator does not touch owned objects. */
  Suspended: 'Suspended',
  /** Deletion in progress (finalizer running). */
  Terminating: 'Terminating',
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

export const ConditionStatus = { True: 'True', False: 'False', Unknown: 'Unknown' } as const;
export type ConditionStatus = (typeof ConditionStatus)[keyof typeof ConditionStatus];

/** Condition types (kstatus: Ready normal-true; Reconciling, Stalled, Drifted abnormal-true). */
export const ConditionType = {
  /** The log accepts and serves events. */
  Ready: 'Ready',
  /** The operator is still converging on the spec (kstatus "in progress"). */
  Reconciling: 'Reconciling',
  /** The operator cannot converge without a human (kstatus "failed"). */
  Stalled: 'Stalled',
  /** Outcome of the log server's last start-up recovery. */
  Recovered: 'Recovered',
  /** Live owned objects differ from what the spec asks. */
  Drifted: 'Drifted',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** Reasons for `Ready`. */
export const ReadyReason = {
  /** True: the server is up, recovered and accepting appends. */
  LogAvailable: 'LogAvailable',
  /** False: the PVC does not exist yet or is not Bound. */
  StorageNotBound: 'StorageNotBound',
  /** False: the pod does not exist yet or is not scheduled/started. */
  PodPending: 'PodPending',
  /** False: the pod exists but is not Ready (probe failing, restarting). */
  PodNotReady: 'PodNotReady',
  /** False: the operator cannot reach the server's status endpoint. */
  ServerUnreachable: 'ServerUnreachable',
  /** False: the server is running start-up recovery. */
  Recovering: 'Recovering',
  /** False: a storage write or fsync failed (server state `failed`); writes refused, the server restarts to recover. */
  WritesRefused: 'WritesRefused',
  /** False: the EventLog is being deleted. */
  Deleting: 'Deleting',
  /** False: the server container keeps crashing (CrashLoopBackOff); see status.pod.lastTermination. */
  ContainerCrashLooping: 'ContainerCrashLooping',
  /** False: recovery found interior corruption; appends refused until a human approves a repair. */
  CorruptionDetected: 'CorruptionDetected',
  /** False: spec.storage.storageClassName names a StorageClass that does not exist. */
  StorageClassNotFound: 'StorageClassNotFound',
  /** False: the volume is full: appends are refused (507) while reads are served; see status.storage. */
  StorageFull: 'StorageFull',
  /** False: the log may serve events, but the current spec is still being rolled out (see Reconciling). */
  Progressing: 'Progressing',
  /** False: the log may serve events, but the current spec cannot be applied without a human (see Stalled). */
  Stalled: 'Stalled',
} as const;

/** Reasons for `Reconciling`. */
export const ReconcilingReason = {
  /** True: creating the PVC, pod or Service. */
  Provisioning: 'Provisioning',
  /** True: waiting for the PVC to bind or the pod to become ready. */
  Progressing: 'Progressing',
  /** True: the PVC is being expanded (a larger spec.storage.size, or spec.storage.autoGrow). */
  ResizingStorage: 'ResizingStorage',
  /** True: the volume was expanded and waits for its file system to be resized (see spec.storage.restartPodForResize). */
  FileSystemResizePending: 'FileSystemResizePending',
  /** True: the pod was deleted or failed and is being recreated on the same PVC. */
  RecreatingPod: 'RecreatingPod',
  /** True: a previous PVC is still terminating; waiting for it instead of racing it. */
  WaitingForPVCDeletion: 'WaitingForPVCDeletion',
  /** True: putting drifted fields back (driftPolicy Correct). */
  CorrectingDrift: 'CorrectingDrift',
  /** True: the pod runs an older template; waiting for a rollout slot (--max-concurrent-rollouts). */
  RolloutQueued: 'RolloutQueued',
  /** True: the pod is being replaced with the desired template (it holds a rollout slot until the new server answers). */
  RollingOut: 'RollingOut',
  /** False: live state matches the spec at status.observedGeneration. */
  Reconciled: 'Reconciled',
  /** False: spec.suspend is true; the operator is not converging on purpose. */
  Suspended: 'Suspended',
  /** False: the operator cannot make progress without a human (see Stalled). */
  Stalled: 'Stalled',
  /** True: the EventLog is being deleted (finalizer running). */
  Deleting: 'Deleting',
} as const;

/** `status.rollout.state`: does the log pod run the template (spec hash) the operator wants now? */
export const RolloutState = {
  /** The pod runs the desired template (or there is no pod yet: it is created from it). */
  UpToDate: 'UpToDate',
  /** The pod runs an older template and waits for a rollout slot. */
  Queued: 'Queued',
  /** The pod is being replaced with the desired template (holds a rollout slot). */
  RollingOut: 'RollingOut',
  /** The pod runs an older template and nothing rolls it now (suspended, or replaced for another reason). */
  Outdated: 'Outdated',
} as const;
export type RolloutState = (typeof RolloutState)[keyof typeof RolloutState];

/** Reasons for `Stalled`. */
export const StalledReason = {
  /** True: the spec passed the API server but cannot work (message says what to fix). */
  InvalidSpec: 'InvalidSpec',
  /** True: spec.storage.storageClassName names a StorageClass that does not exist. */
  StorageClassNotFound: 'StorageClassNotFound',
  /** True: the PVC cannot be expanded (its StorageClass does not allow expansion): a larger storage.size, or autoGrow at its threshold. */
  StorageNotExpandable: 'StorageNotExpandable',
  /** True: the volume is full and nothing automatic can fix it (no autoGrow, maxSize reached, or expansion not allowed). */
  StorageFull: 'StorageFull',
  /** True: the bound volume is lost (PVC phase Lost). */
  StorageLost: 'StorageLost',
  /** True: the log has interior corruption; repair needs the approve-repair annotation. */
  CorruptionDetected: 'CorruptionDetected',
  /** True: an approved repair ran and failed. */
  RepairFailed: 'RepairFailed',
  /** True: the server container is crash looping on something re-creating the pod cannot fix. */
  ContainerCrashLooping: 'ContainerCrashLooping',
  /** True: the container image cannot be pulled or run (bad spec.image, registry access). */
  ImagePullFailed: 'ImagePullFailed',
  /** False: nothing blocks convergence. */
  NotStalled: 'NotStalled',
} as const;

/** Reasons for `Recovered`. */
export const RecoveredReason = {
  /** True: the last start-up found a clean log. */
  Clean: 'Clean',
  /** True: the last start-up cut off a torn final record (crash mid-append); log appendable. */
  TornTailTruncated: 'TornTailTruncated',
  /** True: an approved repair removed the corrupted range and the log is appendable again. */
  Repaired: 'Repaired',
  /** False: the last start-up found interior corruption; writes are refused. */
  CorruptionDetected: 'CorruptionDetected',
  /** Unknown: the server has not reported a recovery yet (starting, unreachable). */
  RecoveryPending: 'RecoveryPending',
} as const;

/** Reasons for `Drifted`. */
export const DriftedReason = {
  /** False: live owned objects match the spec. */
  NoDrift: 'NoDrift',
  /** False: drift was found and put back (driftPolicy Correct); see status.drift. */
  DriftCorrected: 'DriftCorrected',
  /** True: drift found and left in place (driftPolicy Report, or suspended). */
  DriftDetected: 'DriftDetected',
  /** True: drift found, correction attempted and failed (message has the error). */
  CorrectionFailed: 'CorrectionFailed',
} as const;

/** Every reason, per condition type (for docs, tests and exhaustive checks). */
export const ConditionReasons = {
  Ready: ReadyReason,
  Reconciling: ReconcilingReason,
  Stalled: StalledReason,
  Recovered: RecoveredReason,
  Drifted: DriftedReason,
} as const satisfies Record<ConditionType, Record<string, string>>;

export type ValuesOf<T> = T[keyof T];
export type ReadyReason = ValuesOf<typeof ReadyReason>;
export type ReconcilingReason = ValuesOf<typeof ReconcilingReason>;
export type StalledReason = ValuesOf<typeof StalledReason>;
export type RecoveredReason = ValuesOf<typeof RecoveredReason>;
export type DriftedReason = ValuesOf<typeof DriftedReason>;
export type ConditionReason = ReadyReason | ReconcilingReason | StalledReason | RecoveredReason | DriftedReason;
