/** The EventLog status schema (what the operator writes and users read). */
import { z } from 'zod';
import { ConditionStatus, Phase, RecoveryOutcome, RolloutState } from './vocabulary.ts';
import { Time, int64 } from './schema-helpers.ts';

// ---------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------

/** metav1.Condition, with the same validations Kubernetes publishes for it. */
export const ConditionSchema = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/)
      .describe('Type of condition in CamelCase.'),
    status: z.enum([ConditionStatus.True, ConditionStatus.False, ConditionStatus.Unknown]).describe('True, False or Unknown.'),
    observedGeneration: int64().optional().describe('metadata.generation the condition was computed from.'),
    lastTransitionTime: Time.describe('When the condition last changed status.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe('Machine-readable CamelCase reason for the last transition.'),
    message: z.string().max(32768).describe('Human-readable detail.'),
  })
  .describe('A metav1.Condition.');

export const CorruptionSchema = z
  .object({
    id: z.string().max(128).describe('Stable identifier of this corruption; the value to put in the eventlog.dev/approve-repair annotation.'),
    segment: z.string().max(256).describe('Segment file where corruption was found.'),
    offset: int64().describe('Byte offset of the first bad record in the segment.'),
    reason: z.string().max(1024).describe('What the server found (e.g. checksum mismatch).'),
  })
  .describe('Interior corruption found by recovery.');

export const RecoveryHistoryEntrySchema = z
  .object({
    bootId: z.string().min(1).max(128).describe('Identifier of the server start that ran this recovery.'),
    outcome: z.enum([RecoveryOutcome.Clean, RecoveryOutcome.TornTailTruncated, RecoveryOutcome.CorruptionDetected]).describe('Outcome of this recovery.'),
    at: Time.describe('When recovery finished.'),
    durationMs: int64().optional().describe('How long recovery took.'),
    recordsRecovered: int64().optional().describe('Records intact after recovery.'),
    bytesTruncated: int64().optional().describe('Bytes cut off a torn tail.'),
    corruptionId: z.string().max(128).optional().describe('Set when outcome is CorruptionDetected.'),
  })
  .describe('One start-up recovery of the log server.');

export const RepairSchema = z
  .object({
    corruptionId: z.string().max(128).describe('The corruption the repair was approved for.'),
    approvedAt: Time.describe('When the operator saw the approve-repair annotation.'),
    completedAt: Time.optional().describe('When the repair finished.'),
    result: z.enum(['Pending', 'Succeeded', 'Failed']).describe('Pending, Succeeded or Failed.'),
    bytesDiscarded: int64().optional().describe('Bytes removed from the log by the repair.'),
    recordsDiscarded: int64().optional().describe('Records removed from the log by the repair.'),
    message: z.string().max(4096).optional().describe('Detail, e.g. the error of a failed repair.'),
  })
  .describe('The last human-approved destructive repair.');

export const MAX_RECOVERY_HISTORY = 10;
export const MAX_DRIFT_ITEMS = 32;

export const RecoveryStatusSchema = z
  .object({
    lastOutcome: z.enum([RecoveryOutcome.Clean, RecoveryOutcome.TornTailTruncated, RecoveryOutcome.CorruptionDetected]).optional().describe('Outcome of the last start-up recovery.'),
    at: Time.optional().describe('When the last recovery finished.'),
    durationMs: int64().optional().describe('How long the last recovery took.'),
    recordsRecovered: int64().optional().describe('Records intact after the last recovery.'),
    bytesTruncated: int64().optional().describe('Bytes cut off a torn tail by the last recovery.'),
    corruption: CorruptionSchema.optional(),
    history: z
      .array(RecoveryHistoryEntrySchema)
      .max(MAX_RECOVERY_HISTORY)
      .optional()
      .meta({ description: `The last ${MAX_RECOVERY_HISTORY} recoveries, newest first, one per server boot.`, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['bootId'] }),
    repair: RepairSchema.optional(),
  })
  .describe('What the log server\'s start-up recovery found.');

export const DriftItemSchema = z
  .object({
    kind: z.enum(['PersistentVolumeClaim', 'Pod', 'Service', 'Secret', 'NetworkPolicy']).describe('Kind of the owned object.'),
    name: z.string().max(253).describe('Name of the owned object.'),
    path: z.string().max(1024).describe('Field path that differs (e.g. spec.containers[name=server].image); "." when the whole object is missing.'),
    expected: z.string().max(1024).optional().describe('What the operator set (JSON for non-scalars, truncated).'),
    actual: z.string().max(1024).optional().describe('What is live (absent if the field was removed; "deleted" when the whole object is missing).'),
    firstSeen: Time.describe('When this difference was first observed.'),
  })
  .describe('One field of an owned object that differs from what the operator set.');

export const DriftStatusSchema = z
  .object({
    detected: z.boolean().optional().describe('Whether drift is present now.'),
    items: z.array(DriftItemSchema).max(MAX_DRIFT_ITEMS).optional().describe(`Differences present now (at most ${MAX_DRIFT_ITEMS}).`),
    lastDetectedAt: Time.optional().describe('When drift was last found.'),
    lastCorrectedAt: Time.optional().describe('When drift was last put back.'),
    corrections: int64().optional().describe('How many corrections the operator has made in total.'),
  })
  .describe('Changes to owned objects made by someone other than the operator.');

export const PodStatusSchema = z
  .object({
    name: z.string().max(253).optional().describe('Name of the log pod.'),
    uid: z.string().max(64).optional().describe('UID of the current pod (changes when it is recreated).'),
    phase: z.string().max(32).optional().describe('Pod phase.'),
    ready: z.boolean().optional().describe('Whether the pod is Ready.'),
    restarts: int64().optional().describe('Container restart count of the current pod.'),
    bootId: z.string().max(128).optional().describe('Identifier of the running server process start.'),
    startedAt: Time.optional().describe('When the server container started.'),
    ip: z.string().max(64).optional().describe('Pod IP (the operator polls the server there).'),
    lastTermination: z
      .object({
        exitCode: z.int().optional().describe('Exit code of the last terminated server container.'),
        signal: z.int().optional().describe('Signal that ended it, if any.'),
        reason: z.string().max(256).optional().describe('Kubelet reason (Error, OOMKilled, Completed).'),
        message: z.string().max(4096).optional().describe('Termination message (the server writes a JSON line on corruption or storage failure).'),
        finishedAt: Time.optional().describe('When it ended.'),
      })
      .optional()
      .describe('The last termination of the server container (crash loops, corruption, storage failure).'),
  })
  .describe('The log pod.');

export const MAX_GROWTH_HISTORY = 10;

export const StorageGrowthSchema = z
  .object({
    from: z.string().max(64).describe('PVC request before.'),
    to: z.string().max(64).describe('PVC request after.'),
    at: Time.describe('When the operator asked for it.'),
    reason: z.string().max(512).describe('Why (the usage that triggered it).'),
  })
  .describe('One automatic growth of the PVC.');

export const StorageStatusSchema = z
  .object({
    pvcName: z.string().max(253).optional().describe('Name of the PVC.'),
    storageClassName: z.string().max(253).optional().describe('StorageClass the PVC uses.'),
    phase: z.string().max(32).optional().describe('PVC phase (Pending, Bound, Lost).'),
    requested: z.string().max(64).optional().describe('Size requested on the PVC (may exceed spec.storage.size after auto-grow or a manual expansion: that is not drift).'),
    capacity: z.string().max(64).optional().describe('Actual capacity of the bound volume.'),
    resizing: z.boolean().optional().describe('Whether a volume expansion is in progress (the PVC asks for more than it has).'),
    resizeStatus: z
      .string()
      .max(64)
      .optional()
      .describe('While expanding: Resizing (the volume is being grown) or FileSystemResizePending (waiting for the file system; see spec.storage.restartPodForResize).'),
    filesystemBytes: int64().optional().describe('Size of the log\'s file system as the server sees it (statfs).'),
    usedBytes: int64().optional().describe('Bytes used on that file system.'),
    availableBytes: int64().optional().describe('Bytes still available to the log server.'),
    usedPercent: z.int().min(0).max(100).optional().describe('usedBytes as a percentage of filesystemBytes.'),
    reserveBytes: int64().optional().describe('Free space the server keeps: appends that would go below it are refused (507, Ready=False/StorageFull).'),
    nearlyFull: z.boolean().optional().describe('usedPercent reached the operator\'s warning threshold (--storage-warning-percent; off again 5 points below it).'),
    projectedFullAt: Time.optional().describe('While the log grows: when it will be full at the growth rate observed recently (absent when it does not grow).'),
    growth: z.array(StorageGrowthSchema).max(MAX_GROWTH_HISTORY).optional().describe('Automatic growths (spec.storage.autoGrow), newest first.'),
    updatedAt: Time.optional().describe('When the usage figures were read (refreshed at a bounded rate).'),
  })
  .describe('The PVC that holds the log, and how full it is.');

export const LogStatsSchema = z
  .object({
    records: int64().optional().describe('Records in the log.'),
    bytes: int64().optional().describe('Bytes the log occupies on disk.'),
    lastSequence: int64().optional().describe('Sequence number of the last record.'),
    firstSequence: int64().optional().describe('First sequence still kept (retention removes older segments; readers behind it get 410 Gone).'),
    removedBytes: int64().optional().describe('Bytes retention has removed since the server started.'),
    updatedAt: Time.optional().describe('When these figures were read (refreshed at a bounded rate).'),
  })
  .describe('Log statistics reported by the server.');

const TemplateHash = z.string().max(64);

export const RolloutStatusSchema = z
  .object({
    state: z.enum(RolloutState).describe('UpToDate, Queued (an older template waits for a rollout slot), RollingOut (holds a slot until the new server answers) or Outdated (an older template nothing rolls now, e.g. suspended).'),
    desired: TemplateHash.describe('Template (eventlog.dev/spec-hash) of the pod the operator wants now: spec, --default-image and the operator version.'),
    current: TemplateHash.optional().describe('Template of the live pod (absent while there is none).'),
    upToDate: z.boolean().describe('No pod of this EventLog runs an older template.'),
    since: Time.describe('When state last changed.'),
    replacing: z
      .object({
        template: TemplateHash.optional().describe('Template of the pod being replaced.'),
        podUid: z.string().max(64).optional().describe('UID of the pod being replaced.'),
        bootId: z.string().max(128).optional().describe('Boot of the log server being replaced: the rollout ends when another boot answers on the desired template.'),
        restarts: int64().optional().describe('Container restarts of that pod when the rollout started.'),
        image: z.string().max(512).optional().describe('Image of its log server container: a pod patched in place keeps its server (and the rollout ends without a new boot) unless the image changed.'),
      })
      .optional()
      .describe('While RollingOut: what is being replaced (recorded before the pod is touched, so a restarted operator knows the rollout is in flight).'),
  })
  .describe('Whether the log pod runs the current template, and the rollout that replaces it (at most --max-concurrent-rollouts EventLogs at once).');

export const EventLogStatusSchema = z
  .object({
    observedGeneration: int64().optional().describe('metadata.generation the status was computed from.'),
    conditions: z
      .array(ConditionSchema)
      .max(16)
      .optional()
      .meta({ description: 'Ready, Reconciling, Stalled, Recovered, Drifted (kstatus conventions).', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
    phase: z
      .enum(Phase)
      .optional()
      .describe('One-word summary for humans; automation should read conditions.'),
    endpoint: z.string().max(512).optional().describe('In-cluster URL of the log server (through the Service).'),
    tokenSecret: z
      .object({
        name: z.string().max(253).describe('Name of the Secret in the EventLog\'s namespace.'),
        key: z.string().max(253).describe('Key of the bearer token in the Secret.'),
      })
      .optional()
      .describe('Secret holding the bearer token clients must send to the endpoint as "Authorization: Bearer <token>" (absent until the operator created it).'),
    pod: PodStatusSchema.optional(),
    storage: StorageStatusSchema.optional(),
    recovery: RecoveryStatusSchema.optional(),
    drift: DriftStatusSchema.optional(),
    log: LogStatsSchema.optional(),
    rollout: RolloutStatusSchema.optional(),
  })
  .describe('Observed state of the EventLog.');

