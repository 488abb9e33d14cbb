/**
 * The EventLog API (`eventlog.dev/v1alpha1`, kind `EventLog`, namespaced).
 *
 * This module is the single source of truth for the API: the zod schemas below are
 * what the operator parses objects with, the TypeScript types are inferred from them,
 * and the CRD in `crds/` is generated from them (`src/api/crd.ts`,
 * `scripts/generate-crd.ts`). Descriptions given with `.describe()` / `.meta()` become
 * the `kubectl explain` text; `x-kubernetes-validations` in `.meta()` become CEL rules
 * enforced by the API server.
 *
 * Guarantees:
 * - Parsing a spec applies the same defaults the API server applies from the CRD
 *   (retentionPolicy Retain, durability Fsync, driftPolicy Correct, suspend false), so
 *   code reading a parsed spec never sees those fields missing.
 * - Every CEL rule on the spec has a zod twin (a refinement) with the same message, so
 *   `EventLogSpecSchema.safeParse` rejects what the API server rejects, except:
 *   transition rules (size can only grow, storageClassName immutable) need the old
 *   object and live in `validateSpecUpdate`; and label/annotation key syntax is checked
 *   only by zod (a CEL check per map key is too costly for the API server's budget) -
 *   the Pod API validates it again when the operator applies the pod.
 * - Unknown fields are stripped, not rejected, when parsing: the API server already
 *   prunes them, and an older operator must keep working against a newer CRD.
 *
 * Caveats:
 * - Quantities accept a string or a non-negative integer (like `resource.Quantity`)
 *   and are normalised to a string by parsing; the stored object keeps what the user
 *   wrote.
 * - `podTemplate.affinity` sub-trees are passed through unvalidated (the Pod API
 *   validates them when the pod is applied).
 */
import { z } from 'zod';
import { QUANTITY_PATTERN, compareQuantities, isQuantity, parseQuantity } from '../kube/quantity.ts';

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
  /** True: the PVC is being expanded to the new spec.storage.size. */
  ResizingStorage: 'ResizingStorage',
  /** True: the pod was deleted or failed and is being recreated on the same PVC. */
  RecreatingPod: 'RecreatingPod',
  /** True: a previous PVC is still terminating; waiting for it instead of racing it. */
  WaitingForPVCDeletion: 'WaitingForPVCDeletion',
  /** True: putting drifted fields back (driftPolicy Correct). */
  CorrectingDrift: 'CorrectingDrift',
  /** False: live state matches the spec at status.observedGeneration. */
  Reconciled: 'Reconciled',
  /** False: spec.suspend is true; the operator is not converging on purpose. */
  Suspended: 'Suspended',
  /** False: the operator cannot make progress without a human (see Stalled). */
  Stalled: 'Stalled',
  /** True: the EventLog is being deleted (finalizer running). */
  Deleting: 'Deleting',
} as const;

/** Reasons for `Stalled`. */
export const StalledReason = {
  /** True: the spec passed the API server but cannot work (message says what to fix). */
  InvalidSpec: 'InvalidSpec',
  /** True: spec.storage.storageClassName names a StorageClass that does not exist. */
  StorageClassNotFound: 'StorageClassNotFound',
  /** True: the PVC cannot be expanded (its StorageClass does not allow expansion). */
  StorageNotExpandable: 'StorageNotExpandable',
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

type ValuesOf<T> = T[keyof T];
export type ReadyReason = ValuesOf<typeof ReadyReason>;
export type ReconcilingReason = ValuesOf<typeof ReconcilingReason>;
export type StalledReason = ValuesOf<typeof StalledReason>;
export type RecoveredReason = ValuesOf<typeof RecoveredReason>;
export type DriftedReason = ValuesOf<typeof DriftedReason>;
export type ConditionReason = ReadyReason | ReconcilingReason | StalledReason | RecoveredReason | DriftedReason;

// ---------------------------------------------------------------------------
// Reusable pieces
// ---------------------------------------------------------------------------

/** A CEL validation rule as it appears in `x-kubernetes-validations`. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Quote a string (typically a regex source) as a single-quoted CEL string literal. */
export function celString(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** Non-negative quantity pattern: Kubernetes' Quantity pattern without a leading minus. */
const NONNEGATIVE_QUANTITY = new RegExp(QUANTITY_PATTERN.source.replace('^(\\+|-)?', '^\\+?'));
const QUANTITY_MAX_LENGTH = 64;

/**
 * A Kubernetes quantity (string like "10Gi"/"500m", or a non-negative integer),
 * normalised to a string. In the CRD: `x-kubernetes-int-or-string` with the pattern.
 */
function quantity(description: string, options: { positive?: string } = {}) {
  const positive = options.positive;
  return z
    .union(
      [
        z
          .string()
          .max(QUANTITY_MAX_LENGTH)
          .regex(NONNEGATIVE_QUANTITY, { message: 'must be a Kubernetes quantity such as "10Gi", "500Mi" or "250m"' }),
        z.int().min(0),
      ],
      { error: 'must be a Kubernetes quantity: a string such as "10Gi" or a non-negative integer' },
    )
    .transform((v) => String(v))
    .refine((v) => positive === undefined || (parseQuantity(v)?.num ?? 0n) > 0n, { message: positive ?? '' })
    .meta({ 'x-kubernetes-int-or-string': true, description });
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes qualified name (label/annotation key): optional DNS prefix + "/" + name (<= 63). */
export const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** DNS-1035 label: what a Service name must be. */
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_NAME_LENGTH = 63;

function dnsSubdomain(description: string) {
  return z
    .string()
    .min(1)
    .max(253)
    .regex(DNS1123_SUBDOMAIN, { message: 'must be a lowercase DNS subdomain (a-z, 0-9, "-", ".")' })
    .describe(description);
}

const noReservedKeys: CelRule = {
  rule: `self.all(k, !k.startsWith(${celString(RESERVED_PREFIX)}))`,
  message: `keys with the prefix "${RESERVED_PREFIX}" are reserved for the operator`,
};

/**
 * Check map keys with readable messages (zod's own record-key errors only say
 * "Invalid key in record"). `reserved`: also refuse keys under RESERVED_PREFIX.
 */
function checkKeys(reserved: boolean, maxEntries: number) {
  return (m: Record<string, string>, ctx: z.core.$RefinementCtx<Record<string, string>>) => {
    const keys = Object.keys(m);
    if (keys.length > maxEntries) ctx.addIssue({ code: 'custom', message: `at most ${maxEntries} entries (got ${keys.length})` });
    for (const k of keys) {
      if (k.length > 317 || !QUALIFIED_NAME.test(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `key "${k}" must be a qualified name such as "team" or "example.com/team" (name part at most 63 characters)` });
      } else if (reserved && k.startsWith(RESERVED_PREFIX)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `key "${k}": keys with the prefix "${RESERVED_PREFIX}" are reserved for the operator` });
      }
    }
  };
}

const labelValue = z
  .string()
  .max(63)
  .regex(LABEL_VALUE, { message: 'must be a label value: at most 63 characters a-z, A-Z, 0-9, "-", "_", "." starting and ending alphanumeric' });

/** A label map (labels, nodeSelector, matchLabels). */
function labelMap(description: string, maxProperties: number, reserved: boolean) {
  return z
    .record(z.string(), labelValue)
    .superRefine(checkKeys(reserved, maxProperties))
    .meta({ description, maxProperties, ...(reserved ? { 'x-kubernetes-validations': [noReservedKeys] } : {}) });
}



/** A metav1.Time (RFC 3339). */
const Time = z.iso.datetime({ offset: true });
const int64 = () => z.int().min(0);

// ---------------------------------------------------------------------------
// Spec
// ---------------------------------------------------------------------------

export const StorageSpecSchema = z
  .object({
    size: quantity(
      'Size of the PersistentVolumeClaim that holds the log, e.g. "10Gi". Can only grow; growing it expands the PVC (the StorageClass must allow volume expansion).',
      { positive: 'storage.size must be greater than zero' },
    ).meta({
      'x-kubernetes-validations': [
        {
          rule: "!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",
          message: 'storage.size must be greater than zero',
        },
        {
          rule: '!isQuantity(string(self)) || !isQuantity(string(oldSelf)) || quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0',
          message: 'storage.size can only grow: a PersistentVolumeClaim cannot be shrunk',
        },
      ] satisfies CelRule[],
    }),
    storageClassName: dnsSubdomain(
      'StorageClass for the PVC. Omit to use the cluster default. Immutable after creation (it cannot be added, changed or removed).',
    ).optional(),
    retentionPolicy: z
      .enum([RetentionPolicy.Retain, RetentionPolicy.Delete])
      .default(RetentionPolicy.Retain)
      .describe('What happens to the PVC (and the data) when the EventLog is deleted: Retain keeps it (owner reference removed), Delete lets it be garbage-collected.'),
  })
  .meta({
    description: 'The persistent volume that holds the log.',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
        message: 'storage.storageClassName is immutable: it cannot be added, changed or removed after creation',
        fieldPath: '.storageClassName',
      },
    ] satisfies CelRule[],
  });

const ResourceListSchema = z
  .object({
    cpu: quantity('CPU, e.g. "500m" or "1".').optional(),
    memory: quantity('Memory, e.g. "256Mi".').optional(),
  })
  .describe('CPU and memory quantities.');

function requestWithinLimit(res: string): CelRule {
  return {
    rule: `!has(self.requests) || !has(self.limits) || !has(self.requests.${res}) || !has(self.limits.${res}) || !isQuantity(string(self.requests.${res})) || !isQuantity(string(self.limits.${res})) || quantity(string(self.requests.${res})).compareTo(quantity(string(self.limits.${res}))) <= 0`,
    message: `resources.requests.${res} must not exceed resources.limits.${res}`,
    fieldPath: `.requests.${res}`,
  };
}

export const ResourcesSchema = z
  .object({
    requests: ResourceListSchema.optional().describe('Minimum resources the log server is scheduled with.'),
    limits: ResourceListSchema.optional().describe('Maximum resources the log server may use.'),
  })
  .superRefine((r, ctx) => {
    for (const res of ['cpu', 'memory'] as const) {
      const req = r.requests?.[res];
      const lim = r.limits?.[res];
      // Only compare well-formed values; malformed ones already have their own issue.
      if (req !== undefined && lim !== undefined && isQuantity(req) && isQuantity(lim) && compareQuantities(req, lim) > 0) {
        ctx.addIssue({ code: 'custom', path: ['requests', res], message: `resources.requests.${res} must not exceed resources.limits.${res}` });
      }
    }
  })
  .meta({
    description: 'Compute resources of the log server container.',
    'x-kubernetes-validations': [requestWithinLimit('cpu'), requestWithinLimit('memory')],
  });

export const TolerationSchema = z
  .object({
    key: z.string().max(317).optional().describe('Taint key; empty with operator Exists matches every taint.'),
    operator: z.enum(['Exists', 'Equal']).optional().describe('Exists or Equal (default Equal).'),
    value: z.string().max(63).optional().describe('Taint value for operator Equal; must be empty for Exists.'),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional().describe('Taint effect to match; empty matches all effects.'),
    tolerationSeconds: z.int().optional().describe('For NoExecute: how long the pod stays bound after the taint appears.'),
  })
  .superRefine((t, ctx) => {
    if (t.operator === 'Exists' && t.value) ctx.addIssue({ code: 'custom', path: ['value'], message: 'value must be empty when operator is Exists' });
    if (!t.key && t.operator !== 'Exists') ctx.addIssue({ code: 'custom', path: ['operator'], message: 'operator must be Exists when key is empty' });
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') {
      ctx.addIssue({ code: 'custom', path: ['tolerationSeconds'], message: 'tolerationSeconds is only allowed with effect NoExecute' });
    }
  })
  .meta({
    description: 'A toleration, as in a Pod spec.',
    'x-kubernetes-validations': [
      { rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''", message: 'value must be empty when operator is Exists', fieldPath: '.value' },
      { rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')", message: 'operator must be Exists when key is empty', fieldPath: '.operator' },
      { rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')", message: 'tolerationSeconds is only allowed with effect NoExecute', fieldPath: '.tolerationSeconds' },
    ] satisfies CelRule[],
  });

const PreservedObject = (description: string) => z.looseObject({}).describe(description);

export const AffinitySchema = z
  .object({
    nodeAffinity: PreservedObject('Node affinity, as in a Pod spec (passed through; the Pod API validates it).').optional(),
    podAffinity: PreservedObject('Pod affinity, as in a Pod spec (passed through).').optional(),
    podAntiAffinity: PreservedObject('Pod anti-affinity, as in a Pod spec (passed through).').optional(),
  })
  .describe('Scheduling affinity of the log pod, as in a Pod spec.');

export const PodTemplateSchema = z
  .object({
    labels: labelMap('Extra labels for the log pod. Keys under "eventlog.dev/" are reserved.', 64, true).optional(),
    annotations: z
      .record(z.string(), z.string())
      .superRefine(checkKeys(true, 64))
      .meta({ description: 'Extra annotations for the log pod. Keys under "eventlog.dev/" are reserved.', maxProperties: 64, 'x-kubernetes-validations': [noReservedKeys] })
      .optional(),
    nodeSelector: labelMap('Node labels the log pod must be scheduled on.', 32, false).optional(),
    tolerations: z.array(TolerationSchema).max(32).optional().describe('Tolerations of the log pod.'),
    affinity: AffinitySchema.optional(),
    priorityClassName: dnsSubdomain('PriorityClass of the log pod.').optional(),
  })
  .describe('What a user may set on the log pod. Everything else about the pod is owned by the operator.');

export const LabelSelectorRequirementSchema = z
  .object({
    key: z.string().min(1).max(317).describe('Label key.'),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']).describe('In, NotIn, Exists or DoesNotExist.'),
    values: z.array(z.string().max(63)).max(64).optional().describe('Values for In/NotIn (non-empty); must be empty for Exists/DoesNotExist.'),
  })
  .superRefine((r, ctx) => {
    const n = r.values?.length ?? 0;
    if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0) ctx.addIssue({ code: 'custom', path: ['values'], message: 'values must be non-empty for operator In or NotIn' });
    if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0) ctx.addIssue({ code: 'custom', path: ['values'], message: 'values must be empty for operator Exists or DoesNotExist' });
  })
  .meta({
    description: 'A label selector requirement (metav1.LabelSelectorRequirement).',
    'x-kubernetes-validations': [
      { rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)", message: 'values must be non-empty for operator In or NotIn', fieldPath: '.values' },
      { rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0", message: 'values must be empty for operator Exists or DoesNotExist', fieldPath: '.values' },
    ] satisfies CelRule[],
  });

export const LabelSelectorSchema = z
  .object({
    matchLabels: labelMap('Labels a pod must have (ANDed with matchExpressions).', 64, false).optional(),
    matchExpressions: z.array(LabelSelectorRequirementSchema).max(32).optional().describe('Label selector requirements (ANDed).'),
  })
  .meta({ description: 'A label selector (metav1.LabelSelector). An empty selector selects every pod in the namespace.', 'x-kubernetes-map-type': 'atomic' });

export const ClientsSchema = z
  .object({
    podSelector: LabelSelectorSchema.optional().describe(
      'Pods in the EventLog\'s namespace allowed to connect to the log server (the NetworkPolicy the operator owns admits them and the operator\'s namespace). Omit to allow every pod in the namespace; {} also selects every pod. Clients still need the bearer token (status.tokenSecret).',
    ),
  })
  .describe('Who may talk to the log server.');

export const EventLogSpecSchema = z
  .object({
    storage: StorageSpecSchema,
    durability: z
      .enum([Durability.Fsync, Durability.Interval, Durability.None])
      .default(Durability.Fsync)
      .describe(
        'When an append is acknowledged. Fsync: after the bytes are fsync\'d (group commit; survives power loss). Interval: after the write, fsync\'d on a short timer (a crash of the node can lose the last interval). None: after the write, never explicitly fsync\'d (survives a process crash, not a node crash).',
      ),
    image: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^\S+$/, { message: 'must be an image reference without whitespace' })
      .optional()
      .describe('Container image of the log server. Default: the operator\'s own image.'),
    resources: ResourcesSchema.optional(),
    podTemplate: PodTemplateSchema.optional(),
    clients: ClientsSchema.optional(),
    driftPolicy: z
      .enum([DriftPolicy.Correct, DriftPolicy.Report])
      .default(DriftPolicy.Correct)
      .describe('What to do when someone changes the owned PVC, pod, Service, token Secret or NetworkPolicy: Correct puts it back and records it; Report only marks Drifted=True and lists it.'),
    suspend: z
      .boolean()
      .default(false)
      .describe('Stop reconciling: the operator leaves owned objects alone (the log keeps running) and reports Reconciling=False/Suspended.'),
  })
  .describe('Desired state of the EventLog.');

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

export const StorageStatusSchema = z
  .object({
    pvcName: z.string().max(253).optional().describe('Name of the PVC.'),
    storageClassName: z.string().max(253).optional().describe('StorageClass the PVC uses.'),
    phase: z.string().max(32).optional().describe('PVC phase (Pending, Bound, Lost).'),
    requested: z.string().max(64).optional().describe('Size requested on the PVC.'),
    capacity: z.string().max(64).optional().describe('Actual capacity of the bound volume.'),
    resizing: z.boolean().optional().describe('Whether an expansion to spec.storage.size is in progress.'),
  })
  .describe('The PVC that holds the log.');

export const LogStatsSchema = z
  .object({
    records: int64().optional().describe('Records in the log.'),
    bytes: int64().optional().describe('Bytes the log occupies on disk.'),
    lastSequence: int64().optional().describe('Sequence number of the last record.'),
    updatedAt: Time.optional().describe('When these figures were read (refreshed at a bounded rate).'),
  })
  .describe('Log statistics reported by the server.');

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
  })
  .describe('Observed state of the EventLog.');

// ---------------------------------------------------------------------------
// The whole object
// ---------------------------------------------------------------------------

/** The parts of ObjectMeta the operator reads. Other fields pass through. */
export const ObjectMetaSchema = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  generation: z.int().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  deletionTimestamp: z.string().optional(),
  creationTimestamp: z.string().optional(),
});

export const EventLogSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: ObjectMetaSchema,
  spec: EventLogSpecSchema,
  status: EventLogStatusSchema.optional(),
});

/** Root-level CEL rules of the CRD (on the whole object). */
export const ROOT_VALIDATIONS: CelRule[] = [
  {
    rule: `size(self.metadata.name) <= ${MAX_NAME_LENGTH} && self.metadata.name.matches(${celString(DNS1035_LABEL.source)})`,
    message: `metadata.name must be a DNS-1035 label (lowercase letters, digits and "-", starting with a letter, at most ${MAX_NAME_LENGTH} characters): it names the Service and labels the pod`,
    // no fieldPath: the API server only accepts paths declared in the schema, and metadata is opaque
  },
];

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** Spec as written by a user (defaults not applied, quantities string | number). */
export type EventLogSpecInput = z.input<typeof EventLogSpecSchema>;
/** Spec after parsing: defaults applied, quantities as strings. */
export type EventLogSpec = z.output<typeof EventLogSpecSchema>;
export type StorageSpec = z.output<typeof StorageSpecSchema>;
export type Resources = z.output<typeof ResourcesSchema>;
export type PodTemplate = z.output<typeof PodTemplateSchema>;
export type Toleration = z.output<typeof TolerationSchema>;
export type Affinity = z.output<typeof AffinitySchema>;
export type LabelSelector = z.output<typeof LabelSelectorSchema>;
export type Clients = z.output<typeof ClientsSchema>;
export type Condition = z.output<typeof ConditionSchema>;
export type Corruption = z.output<typeof CorruptionSchema>;
export type RecoveryHistoryEntry = z.output<typeof RecoveryHistoryEntrySchema>;
export type Repair = z.output<typeof RepairSchema>;
export type RecoveryStatus = z.output<typeof RecoveryStatusSchema>;
export type DriftItem = z.output<typeof DriftItemSchema>;
export type DriftStatus = z.output<typeof DriftStatusSchema>;
export type PodStatus = z.output<typeof PodStatusSchema>;
export type StorageStatus = z.output<typeof StorageStatusSchema>;
export type LogStats = z.output<typeof LogStatsSchema>;
export type EventLogStatus = z.output<typeof EventLogStatusSchema>;
export type ObjectMeta = z.output<typeof ObjectMetaSchema>;
export type EventLog = z.output<typeof EventLogSchema>;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

export type ParseResult<T> = { success: true; data: T } | { success: false; error: string };

/**
 * Parse an EventLog spec; on failure `error` is a readable, multi-line message naming
 * each bad field (zod's prettified error), prefixed with `where` (e.g. "ns/name").
 */
export function parseEventLogSpec(input: unknown, where = 'spec'): ParseResult<EventLogSpec> {
  const r = EventLogSpecSchema.safeParse(input);
  if (r.success) return { success: true, data: r.data };
  return { success: false, error: `invalid EventLog ${where}:\n${z.prettifyError(r.error)}` };
}

/** Parse a whole EventLog object (e.g. from the informer cache). */
export function parseEventLog(input: unknown): ParseResult<EventLog> {
  const r = EventLogSchema.safeParse(input);
  if (r.success) return { success: true, data: r.data };
  const meta = (input as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
  const where = meta ? `${meta.namespace ?? ''}/${meta.name ?? '?'}` : '<no metadata>';
  return { success: false, error: `invalid EventLog ${where}:\n${z.prettifyError(r.error)}` };
}

/**
 * The transition rules the CRD enforces with `oldSelf`, for code paths that have both
 * objects (tests, a future webhook, a dry-run check). Returns readable messages, empty
 * if the update is allowed. Both specs must already be valid.
 */
export function validateSpecUpdate(oldSpec: EventLogSpecInput, newSpec: EventLogSpecInput): string[] {
  const errors: string[] = [];
  if (compareQuantities(newSpec.storage.size, oldSpec.storage.size) < 0) {
    errors.push('storage.size can only grow: a PersistentVolumeClaim cannot be shrunk');
  }
  if (oldSpec.storage.storageClassName !== newSpec.storage.storageClassName) {
    errors.push('storage.storageClassName is immutable: it cannot be added, changed or removed after creation');
  }
  return errors;
}

/** Find a condition by type. */
export function findCondition(status: EventLogStatus | undefined, type: ConditionType): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}
